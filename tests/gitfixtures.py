"""Real git repositories in temp dirs, and SOPS files made by the real sops.

Helpers (plain functions, importable from any test):

* :func:`git_env` - an environment with no inherited ``GIT_*`` variables and
  no user/system git config, a fixed author, and the repo on PYTHONPATH;
* :func:`init_repo`, :func:`write`, :func:`git`, :func:`commit` - build repositories;
* :func:`sops_encrypt` - encrypt text with the real sops binary (age key of the
  test vectors), cached per session so each distinct file is made once;
* :data:`RULES_YAML` - a `.sops.yaml` covering the usual cases.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import REPO, base_env, run_sops
from tests.vectors import AGE_KEY_FILE, AGE_RECIPIENT

#: A second age recipient (public half only; never decrypts anything here).
OTHER_RECIPIENT = "age12rdna6yywavjnw5nmp9h9k5vellyhlwfer0p8dkhysgakrcyg4zswasmn7"

RULES_YAML = f"""\
creation_rules:
  - path_regex: ^secrets/.*\\.(yaml|json|env|ini)$
    age: {AGE_RECIPIENT}
  - path_regex: (^|/)k8s/.*secret.*\\.yaml$
    encrypted_regex: ^(data|stringData)$
    age: {AGE_RECIPIENT}
  - path_regex: ^blobs/
    age: {AGE_RECIPIENT}
  - path_regex: ^team/
    age: {AGE_RECIPIENT},{OTHER_RECIPIENT}
"""

_SCRUB_PREFIXES = ("GIT_",)


def git_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in base_env().items() if not k.startswith(_SCRUB_PREFIXES) and not k.startswith("PRE_COMMIT")}
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
        SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE),
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    env.update(extra)
    return env


def git(repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
        input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(["git", *args], cwd=repo, env=env or git_env(), capture_output=True, input=input,
                          timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
    return done


def init_repo(path: Path, files: dict[str, str | bytes] | None = None, *, commit_message: str | None = "init",
              rules: str | None = RULES_YAML) -> Path:
    """A new repository at ``path`` holding ``files`` (and a `.sops.yaml`),
    committed unless ``commit_message`` is None."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    if rules is not None:
        write(path, ".sops.yaml", rules)
    for rel, content in (files or {}).items():
        write(path, rel, content)
    if commit_message is not None:
        git(path, "add", "-A")
        commit(path, commit_message)
    return path


def write(repo: Path, rel: str, content: str | bytes) -> Path:
    target = repo / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content.encode() if isinstance(content, str) else content)
    return target


def stage(repo: Path, *rels: str) -> None:
    git(repo, "add", "--", *rels)


def commit(repo: Path, message: str = "change") -> None:
    git(repo, "commit", "-q", "--no-verify", "--allow-empty", "-m", message)


_CACHE: dict[str, bytes] = {}


def sops_encrypt(name: str, text: str | bytes, *flags: str, recipients: str = AGE_RECIPIENT,
                 global_flags: tuple[str, ...] = ()) -> bytes:
    """``text`` encrypted by the real sops as a file called ``name`` (its suffix
    picks the store), for ``recipients``, with extra ``encrypt`` ``flags``
    (``--encrypted-regex`` ...) or ``global_flags`` (3.11 takes the comment
    regexes and --mac-only-encrypted only as global flags of ``sops -e``)."""
    data = text.encode() if isinstance(text, str) else text
    key = hashlib.sha256(repr((name, data, flags, recipients, global_flags)).encode()).hexdigest()
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory() as tmp:
        # an empty .sops.yaml counts as "no config": only the flags decide
        Path(tmp, ".sops.yaml").write_text("")
        src = Path(tmp, name.rsplit("/", 1)[-1])
        src.write_bytes(data)
        # sops 3.11 honours the global-only flags in its legacy `-e` form only
        command = [*global_flags, "-e"] if global_flags else ["encrypt"]
        done = run_sops([*command, "--age", recipients, *flags, src.name], cwd=tmp,
                        env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
    if done.returncode != 0:
        raise AssertionError(f"sops encrypt {name} failed: {done.stderr.decode(errors='replace')}")
    _CACHE[key] = done.stdout
    return done.stdout


def run_check(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``sopsflow check ARGS`` in ``repo``, text output."""
    import sys

    done = subprocess.run([sys.executable, "-m", "sopsflow", "check", *args], cwd=repo, env=env or git_env(),
                          capture_output=True, timeout=120)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8", "replace"),
                                       done.stderr.decode("utf-8", "replace"))
