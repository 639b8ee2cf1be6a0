"""Repository helpers for the verify tests, built on :mod:`tests.gitfixtures`
(real git repositories; SOPS files made by the real sops 3.11 binary)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from . import gitfixtures
from .vectors import AGE_RECIPIENT


def git(root: Path, *args: str) -> str:
    return gitfixtures.git(root, *args).stdout.decode()


def write(root: Path, files: Mapping[str, str | bytes]) -> None:
    for rel, content in files.items():
        gitfixtures.write(root, rel, content)


def commit_all(root: Path, message: str = "change") -> str:
    git(root, "add", "-A")
    gitfixtures.commit(root, message)
    return git(root, "rev-parse", "HEAD").strip()


def make_repo(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """A repository holding exactly ``files`` (no default `.sops.yaml`), committed."""
    return gitfixtures.init_repo(root, dict(files), rules=None)


def sops_encrypt(name: str, content: str | bytes, *, recipients: str = AGE_RECIPIENT,
                 args: tuple[str, ...] = ()) -> bytes:
    """``content`` encrypted by the real sops for a file called ``name``."""
    return gitfixtures.sops_encrypt(name, content, *args, recipients=recipients)


def new_age_recipient() -> str:
    """A recipient whose identity nobody has (the file's key is unavailable)."""
    import pyrage

    return str(pyrage.x25519.Identity.generate().to_public())


def sops_yaml(*rules: str) -> str:
    """A `.sops.yaml` with one creation rule per path_regex (all for the test age key)."""
    lines = ["creation_rules:"]
    for regex in rules:
        lines.append(f"  - path_regex: {regex}")
        lines.append(f"    age: {AGE_RECIPIENT}")
    return "\n".join(lines) + "\n"
