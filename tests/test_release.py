"""A release a user can install.

* The commit sha that README.md, docs/ci.md and the sample pre-commit config pin
  is one commit of this repository's history, the same everywhere, and carries
  the current version.
* The wheel ``make dist`` builds installs into a fresh virtualenv (not editable,
  this repository not on ``sys.path``) and its ``sopsflow`` runs: ``--version``,
  a decrypt of a file the real sops encrypted, ``check`` in a git repository.
* The install command docs/ci.md gives runs as written, against a ``git+file://``
  URL of a clone of this repository standing in for the placeholder.

One virtualenv serves the whole test; pip's own cache is used, so dependencies
are not downloaded again on each run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sopsflow

from .conftest import REPO, base_env, run_sops

# Captured at import, before the autouse fixture points HOME at a temp dir.
_PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")

PLACEHOLDER = "SOPSFLOW_GIT_URL"
SHA = re.compile(r"\b[0-9a-f]{40}\b")
# Where a user copies the pinned rev from.
PINNING_FILES = ("README.md", "docs/ci.md", "sample-repo/.pre-commit-config.yaml")


def _git(*args: str, cwd: Path = REPO) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in base_env().items() if not k.startswith("GIT_")})
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def _documented_install_command() -> str:
    """The one command docs/ci.md installs sopsflow with (the snippets repeat it)."""
    text = (REPO / "docs" / "ci.md").read_text()
    commands = set()
    for line in text.splitlines():
        if "pip install" in line:
            command = line[line.index("pip install"):]
            commands.add(command.split("   #", 1)[0].strip())
    assert len(commands) == 1, f"docs/ci.md installs sopsflow in more than one way: {sorted(commands)}"
    return commands.pop()


def _pinned_shas() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for rel in PINNING_FILES:
        text = (REPO / rel).read_text()
        shas = {m for line in text.splitlines() if "rev:" in line or "git+" in line for m in SHA.findall(line)}
        found[rel] = shas
    return found


def test_pinned_rev_is_one_commit_of_this_history_at_this_version() -> None:
    found = _pinned_shas()
    assert all(found.values()), f"a file pins no commit sha: {found}"
    shas = set().union(*found.values())
    assert len(shas) == 1, f"the files pin different commits: {found}"
    sha = shas.pop()
    assert _git("cat-file", "-t", sha).strip() == "commit"
    # In this history (an ancestor of HEAD), not merely somewhere in the object store.
    ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", sha, "HEAD"], cwd=REPO, timeout=60)
    assert ancestor.returncode == 0, f"{sha} is not in the history of HEAD"
    at_rev = _git("show", f"{sha}:sopsflow/__init__.py")
    assert f'__version__ = "{sopsflow.__version__}"' in at_rev, "the pinned commit is not this version"
    command = _documented_install_command()
    assert command == f'pip install "git+${{{PLACEHOLDER}}}@{sha}"'
    for rel in ("README.md", "docs/ci.md"):
        assert "commit sha" in (REPO / rel).read_text(), f"{rel} does not say the rev is a commit sha"


def test_version_is_declared_once() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "sopsflow.__version__" }' in pyproject
    assert not re.search(r'(?m)^version\s*=\s*"', pyproject)
    assert f"## {sopsflow.__version__}" in (REPO / "CHANGELOG.md").read_text()


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the wheel built from this tree installed (and no
    sopsflow on any path of its own besides that)."""
    dist = tmp_path_factory.mktemp("dist")
    env = base_env(PIP_CACHE_DIR=_PIP_CACHE)
    env.pop("PYTHONPATH", None)
    # As `make dist` does: the sdist first, then the wheel built from it.
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], env=env,
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels = list(dist.glob(f"sopsflow-{sopsflow.__version__}-*.whl"))
    assert len(wheels) == 1 and list(dist.glob(f"sopsflow-{sopsflow.__version__}.tar.gz")), sorted(dist.iterdir())
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheels[0])], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv


def _user_env(venv: Path, **extra: str) -> dict[str, str]:
    """What a user's shell has: the venv's bin first, no PYTHONPATH, no git config."""
    env = {k: v for k, v in base_env().items() if not k.startswith("GIT_") and k != "PYTHONPATH"}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", PIP_CACHE_DIR=_PIP_CACHE,
               GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com")
    env.update(extra)
    return env


def _installed(venv: Path, cwd: Path) -> dict[str, str]:
    code = ("import json, sopsflow, importlib.metadata as m; d = m.distribution('sopsflow');"
            "print(json.dumps({'file': sopsflow.__file__, 'version': d.version,"
            " 'direct_url': d.read_text('direct_url.json') or ''}))")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=cwd, env=_user_env(venv),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info: dict[str, str] = json.loads(done.stdout)
    return info


@pytest.mark.slow
def test_wheel_installs_and_runs_then_the_documented_command_installs(fresh_venv: Path, tmp_path: Path) -> None:
    import pyrage

    venv, work = fresh_venv, tmp_path / "user"
    work.mkdir()
    sopsflow_bin = str(venv / "bin" / "sopsflow")

    info = _installed(venv, work)
    assert Path(info["file"]).is_relative_to(venv), info  # the installed copy, not this tree
    assert not Path(info["file"]).is_relative_to(REPO)
    assert info["version"] == sopsflow.__version__
    assert '"editable": true' not in info["direct_url"] and ".whl" in info["direct_url"], info

    version = subprocess.run([sopsflow_bin, "--version"], cwd=work, env=_user_env(venv), capture_output=True,
                             text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith(f"sopsflow {sopsflow.__version__} "), version

    # decrypt: a file the real sops encrypted, for an identity made here
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    keys = work / "keys.txt"
    keys.write_text(f"{identity}\n")
    plain = "user: admin\npassword: hunter2\n"
    (work / "db.yaml").write_text(plain)
    encrypted = run_sops(["encrypt", "--age", recipient, "db.yaml"], cwd=work)
    assert encrypted.returncode == 0, encrypted.stderr
    (work / "db.enc.yaml").write_bytes(encrypted.stdout)
    decrypted = subprocess.run([sopsflow_bin, "decrypt", "db.enc.yaml"], cwd=work,
                               env=_user_env(venv, SOPS_AGE_KEY_FILE=str(keys)), capture_output=True, timeout=120)
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout.decode() == plain

    # check: an encrypted file at a rule path passes, a plaintext one is refused
    repo = work / "repo"
    (repo / "secrets").mkdir(parents=True)
    (repo / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: ^secrets/\n    age: {recipient}\n")
    (repo / "secrets" / "db.yaml").write_bytes(encrypted.stdout)
    user = _user_env(venv)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=user, check=True, timeout=60)
    subprocess.run(["git", "add", "-A"], cwd=repo, env=user, check=True, timeout=60)
    passed = subprocess.run([sopsflow_bin, "check"], cwd=repo, env=user, capture_output=True, text=True, timeout=120)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    (repo / "secrets" / "plain.yaml").write_text(plain)
    subprocess.run(["git", "add", "secrets/plain.yaml"], cwd=repo, env=user, check=True, timeout=60)
    refused = subprocess.run([sopsflow_bin, "check"], cwd=repo, env=user, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "secrets/plain.yaml:1: error: not encrypted" in refused.stdout + refused.stderr

    # The install command of docs/ci.md, as written, with a clone of this repository for the placeholder.
    command = _documented_install_command()
    sha = SHA.findall(command)[0]
    clone = tmp_path / "clone"
    _git("clone", "-q", "--no-local", str(REPO), str(clone))
    uninstalled = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", "sopsflow"],
                                 env=user, capture_output=True, text=True, timeout=300)
    assert uninstalled.returncode == 0, uninstalled.stderr
    installed = subprocess.run(["bash", "-c", command], cwd=work, env=dict(user, **{PLACEHOLDER: clone.as_uri()}),
                               capture_output=True, text=True, timeout=1200)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    info = _installed(venv, work)
    assert Path(info["file"]).is_relative_to(venv), info
    direct = json.loads(info["direct_url"])
    assert direct["url"] == clone.as_uri() and direct["vcs_info"]["commit_id"] == sha, direct
    version = subprocess.run([sopsflow_bin, "--version"], cwd=work, env=user, capture_output=True, text=True,
                             timeout=120)
    assert version.returncode == 0 and version.stdout.startswith(f"sopsflow {sopsflow.__version__} "), version
