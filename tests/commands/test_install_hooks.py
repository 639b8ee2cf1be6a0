"""`sopsflow install-hooks` and the native hook, exercised through real `git commit`s."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sopsflow.commands.install_hooks import HOOK_SCRIPT, MARKER, MERGE_HOOK_SCRIPT, hook_script
from tests.conftest import REPO
from tests.gitfixtures import git, git_env, init_repo, sops_encrypt, stage, write

PLAIN = "password: hunter2\n"


def install(repo: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "sopsflow", "install-hooks", *args], cwd=cwd or repo,
                          env=git_env(), capture_output=True, text=True, timeout=60)
    return done


def try_commit(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return git(repo, "commit", "-q", "-m", "change", *args, env=env, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", {"README.md": "docs\n"})


def test_shipped_hook_is_the_installed_script() -> None:
    shipped = REPO / "hooks" / "pre-commit"
    assert shipped.read_text() == HOOK_SCRIPT
    assert os.access(shipped, os.X_OK)
    assert MARKER in HOOK_SCRIPT
    assert "SOPSFLOW_PYTHON_DEFAULT='/x y/python'" in hook_script("/x y/python")
    shipped_merge = REPO / "hooks" / "pre-merge-commit"
    assert shipped_merge.read_text() == MERGE_HOOK_SCRIPT and os.access(shipped_merge, os.X_OK)
    assert MARKER in MERGE_HOOK_SCRIPT


def test_install_then_commits_are_judged(repo: Path) -> None:
    done = install(repo)
    assert done.returncode == 0, done.stderr
    hook = repo / ".git" / "hooks" / "pre-commit"
    merge_hook = repo / ".git" / "hooks" / "pre-merge-commit"
    assert done.stdout.splitlines() == [f"installed {hook}", f"installed {merge_hook}"]
    assert os.access(hook, os.X_OK) and f"SOPSFLOW_PYTHON_DEFAULT={sys.executable}" in hook.read_text()
    assert os.access(merge_hook, os.X_OK) and MARKER in merge_hook.read_text()
    assert install(repo).stdout.splitlines() == [f"{hook} is already up to date",
                                                 f"{merge_hook} is already up to date"]
    write(repo, "secrets/db.yaml", PLAIN)
    stage(repo, "secrets/db.yaml")
    refused = try_commit(repo)
    assert refused.returncode != 0
    out = refused.stdout.decode() + refused.stderr.decode()
    assert "secrets/db.yaml:1: error: not encrypted" in out and "Commit refused" in out
    write(repo, "secrets/db.yaml", sops_encrypt("db.yaml", PLAIN))
    stage(repo, "secrets/db.yaml")
    ok = try_commit(repo)
    assert ok.returncode == 0, ok.stderr
    # `git commit -a` judges its temporary index: a plaintext edit of a tracked file is refused
    write(repo, "secrets/db.yaml", PLAIN)
    refused = try_commit(repo, "-a")
    assert refused.returncode != 0 and b"secrets/db.yaml" in refused.stdout + refused.stderr
    # so is `git commit PATH` (a partial commit)
    refused = try_commit(repo, "secrets/db.yaml")
    assert refused.returncode != 0
    head = git(repo, "show", "HEAD:secrets/db.yaml").stdout
    assert b"ENC[AES256_GCM" in head and b"hunter2" not in head


def test_core_hooks_path_is_respected(repo: Path) -> None:
    git(repo, "config", "core.hooksPath", ".githooks")
    (repo / "sub").mkdir()
    done = install(repo, cwd=repo / "sub")
    assert done.returncode == 0, done.stderr
    assert (repo / ".githooks" / "pre-commit").is_file()
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    write(repo, "secrets/db.yaml", PLAIN)
    stage(repo, "secrets/db.yaml")
    assert try_commit(repo).returncode != 0


def test_foreign_hook_refused_forced_or_chained(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    foreign = "#!/bin/sh\necho ran > \"$(git rev-parse --show-toplevel)/local-ran\"\nexit ${LOCAL_EXIT:-0}\n"
    (hooks / "pre-commit").write_text(foreign)
    (hooks / "pre-commit").chmod(0o755)
    refused = install(repo)
    assert refused.returncode == 1 and "--chain" in refused.stderr and "--force" in refused.stderr
    assert (hooks / "pre-commit").read_text() == foreign
    assert install(repo, "--chain", "--force").returncode != 0  # one or the other

    chained = install(repo, "--chain")
    assert chained.returncode == 0, chained.stderr
    assert (hooks / "pre-commit.local").read_text() == foreign and MARKER in (hooks / "pre-commit").read_text()
    write(repo, "notes.txt", "fine\n")
    stage(repo, "notes.txt")
    assert try_commit(repo).returncode == 0 and (repo / "local-ran").exists()
    write(repo, "notes.txt", "again\n")
    stage(repo, "notes.txt")
    assert try_commit(repo, env=git_env(LOCAL_EXIT="3")).returncode != 0  # the chained hook still decides
    write(repo, "secrets/db.yaml", PLAIN)
    stage(repo, "secrets/db.yaml")
    assert try_commit(repo).returncode != 0  # and so does sopsflow
    assert install(repo, "--chain").stdout.strip().endswith("is already up to date")

    (hooks / "pre-commit").write_text(foreign)
    forced = install(repo, "--force")
    assert forced.returncode == 0 and "replaced the existing hook" in forced.stdout
    assert (hooks / "pre-commit.sopsflow-backup").read_text() == foreign


def test_pre_commit_framework_hook_gets_a_hint(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit").write_text("#!/usr/bin/env bash\n# File generated by pre-commit: https://pre-commit.com\n")
    done = install(repo)
    assert done.returncode == 1 and "sopsflow-check hook to .pre-commit-config.yaml" in done.stderr


def test_hook_fails_closed_without_sopsflow(repo: Path, tmp_path: Path) -> None:
    hook = REPO / "hooks" / "pre-commit"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(["/bin/sh", str(hook)], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "sopsflow not found" in done.stderr and "commit refused" in done.stderr


def test_hook_uses_the_sopsflow_variable(repo: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake-sopsflow"
    fake.write_text("#!/bin/sh\necho \"fake $*\"\nexit 0\n")
    fake.chmod(0o755)
    env = git_env(SOPSFLOW=str(fake))
    done = subprocess.run(["/bin/sh", str(REPO / "hooks" / "pre-commit")], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "fake check"


def test_merge_commits_are_judged_and_a_foreign_merge_hook_is_chained(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    foreign = "#!/bin/sh\necho ran > \"$(git rev-parse --show-toplevel)/merge-local-ran\"\n"
    (hooks / "pre-merge-commit").write_text(foreign)
    (hooks / "pre-merge-commit").chmod(0o755)
    refused = install(repo)
    assert refused.returncode == 1 and "pre-merge-commit exists" in refused.stderr
    assert not (hooks / "pre-commit").exists()  # nothing is installed when one hook is refused
    assert install(repo, "--chain").returncode == 0
    assert (hooks / "pre-merge-commit.local").read_text() == foreign
    # a branch that adds a plaintext secret, merged without a conflict: pre-merge-commit refuses
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "secrets/db.yaml", PLAIN)
    stage(repo, "secrets/db.yaml")
    git(repo, "commit", "-q", "--no-verify", "-m", "plaintext")
    git(repo, "checkout", "-q", "main")
    write(repo, "notes.txt", "main\n")
    stage(repo, "notes.txt")
    assert try_commit(repo).returncode == 0
    before = git(repo, "rev-parse", "HEAD").stdout
    done = git(repo, "merge", "--no-edit", "feature", check=False)
    assert done.returncode != 0 and b"secrets/db.yaml" in done.stdout + done.stderr
    assert git(repo, "rev-parse", "HEAD").stdout == before and (repo / "merge-local-ran").exists()
