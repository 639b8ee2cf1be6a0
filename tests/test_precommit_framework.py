"""The hooks of `.pre-commit-hooks.yaml`, run by the real pre-commit framework
against this repository at its HEAD commit.

pre-commit installs the hook repository into a fresh virtualenv with pip (the
environment's pip settings - find-links, indexes - apply). ``try-repo`` does
that in a throwaway store on every call, so it runs once; the other cases use
a `.pre-commit-config.yaml` and one PRE_COMMIT_HOME shared by the session, so
the environment is built once more in all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.gitfixtures import OTHER_RECIPIENT, commit, git, git_env, init_repo, sops_encrypt, stage, write

pytestmark = pytest.mark.slow

PLAIN = "password: hunter2\n"


@pytest.fixture(scope="session")
def hook_repo() -> tuple[Path, str]:
    """This repository at its HEAD commit, as a user's config names it: pre-commit
    clones it at that sha (uncommitted changes in the work tree are not used)."""
    return REPO, git(REPO, "rev-parse", "HEAD").stdout.decode().strip()


@pytest.fixture(scope="session")
def pc_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def pc_env(pc_home: Path) -> dict[str, str]:
    env = git_env(PRE_COMMIT_HOME=str(pc_home))
    env.pop("PYTHONPATH", None)  # the hook must run from the environment pre-commit built
    return env


def pre_commit(repo: Path, pc_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=repo, env=pc_env(pc_home),
                          capture_output=True, text=True, timeout=1200)


def consumer(path: Path, hook_repo: tuple[Path, str]) -> Path:
    repo_path, sha = hook_repo
    config = (
        f"repos:\n  - repo: {repo_path}\n    rev: {sha}\n    hooks:\n"
        "      - id: sopsflow-check\n      - id: sopsflow-check-strict\n        stages: [manual]\n"
    )
    return init_repo(path, {"README.md": "Rotate the password regularly.\n", ".pre-commit-config.yaml": config})


def test_manifest_is_valid() -> None:
    done = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest", str(REPO / ".pre-commit-hooks.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_try_repo_refuses_plaintext_and_symlinks(tmp_path: Path, hook_repo: tuple[Path, str], pc_home: Path) -> None:
    repo = init_repo(tmp_path / "consumer", {"README.md": "Rotate the password regularly.\n"})
    write(repo, "secrets/db.yaml", PLAIN)
    write(repo, "vault/real.yaml", sops_encrypt("real.yaml", PLAIN))
    os.symlink("../vault/real.yaml", repo / "secrets/linked.yaml")
    write(repo, "docs/notes.md", "The API token lives in secrets/.\n")
    stage(repo, ".")
    path, sha = hook_repo
    done = pre_commit(repo, pc_home, "try-repo", str(path), "sopsflow-check", "--ref", sha)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "secrets/db.yaml:1: error: not encrypted" in out
    # pre-commit passes symlinks to the hook (types: [], types_or: [file, symlink])
    assert "secrets/linked.yaml: error: symbolic link" in out
    assert "docs/notes.md:" not in out and "README.md:" not in out
    assert "4 files checked" in out


def test_installed_hook_blocks_git_commit(tmp_path: Path, hook_repo: tuple[Path, str], pc_home: Path) -> None:
    repo = consumer(tmp_path / "consumer", hook_repo)
    installed = pre_commit(repo, pc_home, "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    write(repo, "secrets/db.yaml", PLAIN)
    stage(repo, "secrets/db.yaml")
    refused = git(repo, "commit", "-q", "-m", "plaintext", env=pc_env(pc_home), check=False)
    out = (refused.stdout + refused.stderr).decode()
    assert refused.returncode != 0 and "secrets/db.yaml:1: error: not encrypted" in out, out
    write(repo, "secrets/db.yaml", sops_encrypt("db.yaml", PLAIN))
    stage(repo, "secrets/db.yaml")
    done = git(repo, "commit", "-q", "-m", "encrypted", env=pc_env(pc_home), check=False)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


def test_strict_hook_and_pre_push(tmp_path: Path, hook_repo: tuple[Path, str], pc_home: Path) -> None:
    repo = consumer(tmp_path / "consumer", hook_repo)
    base = git(repo, "rev-parse", "HEAD").stdout.decode().strip()
    write(repo, "team/t.yaml", sops_encrypt("t.yaml", "a: b\n"))  # the team rule names two recipients
    stage(repo, "team/t.yaml")
    assert pre_commit(repo, pc_home, "run", "sopsflow-check").returncode == 0
    strict = pre_commit(repo, pc_home, "run", "sopsflow-check-strict", "--hook-stage", "manual")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert f"+{OTHER_RECIPIENT}" in strict.stdout and "sopsflow updatekeys team/t.yaml" in strict.stdout

    git(repo, "rm", "-q", "--cached", "team/t.yaml")
    write(repo, "secrets/db.yaml", PLAIN)
    stage(repo, "secrets/db.yaml")
    commit(repo, "bypassed the hook")
    write(repo, "secrets/db.yaml", sops_encrypt("db.yaml", PLAIN))
    stage(repo, "secrets/db.yaml")  # the index is fixed; the commit being pushed is not
    pushed = pre_commit(repo, pc_home, "run", "sopsflow-check", "--hook-stage", "pre-push",
                        "--from-ref", base, "--to-ref", "HEAD")
    assert pushed.returncode == 1, pushed.stdout + pushed.stderr
    assert "(commit HEAD)" in pushed.stdout and "secrets/db.yaml:1: error" in pushed.stdout
