"""Flux helpers: the decryption Secret Flux's kustomize-controller reads.

Flux decrypts SOPS files with the keys in the Secret named by a
Kustomization's ``spec.decryption.secretRef``; it takes age identities from
data keys ending in ``.agekey`` (PGP keys from ``.asc``). That Secret holds a
private key, so it is made here as text for ``kubectl apply -f -`` and is
never written into a git work tree. It is not offered encrypted either: Flux
cannot decrypt its own decryption key, so a copy in the repository would
serve nobody but an attacker who gets hold of one of its recipients' keys.
"""

from __future__ import annotations

import base64
import os
import stat
import sys
from pathlib import Path

from . import errors
from .errors import SopsError
from .lazyre import compile_lazy

DEFAULT_NAME = "sops-age"
DEFAULT_NAMESPACE = "flux-system"
#: Flux reads age identities from data keys with this suffix.
AGE_KEY_SUFFIX = ".agekey"
DEFAULT_DATA_KEY = "age" + AGE_KEY_SUFFIX

_IDENTITY_PREFIX = "AGE-SECRET-KEY-1"
_PQ_IDENTITY_PREFIX = "AGE-SECRET-KEY-PQ-1"
# Kubernetes object names (DNS-1123 subdomain) and namespaces (DNS-1123 label).
_DNS_SUBDOMAIN = compile_lazy(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = compile_lazy(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Secret data keys: letters, digits, '-', '_' and '.'.
_DATA_KEY = compile_lazy(r"^[-._a-zA-Z0-9]+$")


def age_recipients(key_text: str) -> list[str]:
    """The public keys of the age identities in ``key_text`` (an age key file:
    identities, ``#`` comments, blank lines - what Flux accepts).

    Raises SopsError(2) when the text holds no identity, or a line Flux
    could not parse; the message names the line, never its content.
    """
    import pyrage

    recipients = []
    for number, raw in enumerate(key_text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("age1"):
            raise SopsError(
                errors.COULD_NOT_READ_INPUT_FILE,
                f"line {number} of the key file is an age recipient (public key); Flux needs the identity "
                f"({_IDENTITY_PREFIX}...)",
            )
        if line.startswith(_PQ_IDENTITY_PREFIX):
            # Flux links sops 3.13, which reads post-quantum identities too.
            from .keys.agepq import HybridIdentity, PqKeyError

            try:
                recipients.append(str(HybridIdentity.from_str(line).to_public()))
            except PqKeyError:
                raise SopsError(
                    errors.COULD_NOT_READ_INPUT_FILE, f"line {number} of the key file is not a valid age identity"
                ) from None
            continue
        if not line.startswith(_IDENTITY_PREFIX):
            raise SopsError(
                errors.COULD_NOT_READ_INPUT_FILE,
                f"line {number} of the key file is not an age X25519 identity; Flux reads only "
                f"{_IDENTITY_PREFIX}... lines, comments and blank lines",
            )
        try:
            identity = pyrage.x25519.Identity.from_str(line)
        except Exception:
            raise SopsError(
                errors.COULD_NOT_READ_INPUT_FILE, f"line {number} of the key file is not a valid age identity"
            ) from None
        recipients.append(str(identity.to_public()))
    if not recipients:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, "the key file holds no age identity")
    return recipients


def check_names(name: str, namespace: str, data_key: str = DEFAULT_DATA_KEY) -> None:
    """Refuse what Kubernetes or Flux would refuse later, with a clearer message."""
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise SopsError(errors.GENERIC, f"invalid Secret name {name!r}: lowercase letters, digits, '-' and '.'")
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise SopsError(errors.GENERIC, f"invalid namespace {namespace!r}: lowercase letters, digits and '-'")
    if not data_key.endswith(AGE_KEY_SUFFIX) or not _DATA_KEY.match(data_key) or len(data_key) > 253:
        raise SopsError(errors.GENERIC, f"invalid data key {data_key!r}: Flux reads age keys only from keys "
                                        f"ending in {AGE_KEY_SUFFIX}")


def age_secret_manifest(key_data: bytes, *, name: str = DEFAULT_NAME, namespace: str = DEFAULT_NAMESPACE,
                        data_key: str = DEFAULT_DATA_KEY) -> str:
    """The Secret manifest Flux expects for an age key file: the file's bytes,
    base64-encoded, under ``data.<data_key>``."""
    check_names(name, namespace, data_key)
    try:
        text = key_data.decode("utf-8")
    except UnicodeDecodeError:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, "the key file is not UTF-8 text") from None
    recipients = age_recipients(text)
    encoded = base64.b64encode(key_data).decode("ascii")
    lines = [
        "# Flux SOPS decryption key (age). IT CONTAINS A PRIVATE KEY: apply it to the",
        "# cluster (`kubectl apply -f -`), never commit it.",
        "# Recipients to list in .sops.yaml for this cluster:",
        *(f"#   {r}" for r in recipients),
        "apiVersion: v1",
        "kind: Secret",
        "metadata:",
        f"  name: {name}",
        f"  namespace: {namespace}",
        "type: Opaque",
        "data:",
        f"  {data_key}: {encoded}",
    ]
    return "\n".join(lines) + "\n"


# --- keeping the key out of git --------------------------------------------------------


def git_work_tree(path: Path) -> Path | None:
    """The git work tree (or git directory) that contains ``path``, if any.

    Looks for ``.git`` (a directory, or the file of a linked work tree or
    submodule) in ``path`` and every parent; a path inside a ``.git``
    directory or a bare repository counts as inside too.
    """
    current = Path(os.path.abspath(path))
    for candidate in (current, *current.parents):
        if (candidate / ".git").exists():
            return candidate
        if candidate.name == ".git" or _is_bare_repo(candidate):
            return candidate
    return None


def _is_bare_repo(directory: Path) -> bool:
    return (directory / "HEAD").is_file() and (directory / "objects").is_dir() and (directory / "refs").is_dir()


def stdout_file() -> Path | None:
    """The regular file stdout writes to (a shell redirection), else None
    (a terminal, a pipe, or a platform where the path cannot be known)."""
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
    except (OSError, ValueError, AttributeError):
        return None
    return _fd_path(fd)


def _fd_path(fd: int) -> Path | None:
    proc = Path(f"/proc/self/fd/{fd}")
    try:
        return Path(os.readlink(proc))
    except OSError:
        pass
    if sys.platform == "darwin":
        import fcntl

        try:
            # F_GETPATH (50): the path of an open file on macOS.
            raw = fcntl.fcntl(fd, 50, b"\0" * 1024)
            return Path(raw.split(b"\0", 1)[0].decode())
        except OSError:
            return None
    return None


def refuse_git_destination(target: Path, how: str) -> None:
    """SopsError(3) when ``target`` lies inside a git work tree (by its path or,
    through symlinks, by its real location)."""
    for candidate in (Path(os.path.abspath(target)), Path(os.path.realpath(target))):
        tree = git_work_tree(candidate if candidate.is_dir() else candidate.parent)
        if tree is None:
            continue
        note = ""
        if how == "stdout" and _is_empty(candidate):
            note = " (your shell created it empty before sopsflow ran; remove it)"
        raise SopsError(
            errors.COULD_NOT_WRITE_OUTPUT_FILE,
            f"refusing to write a private key into the git work tree {tree}: {how} is {target}{note}; "
            "pipe it to the cluster instead: sopsflow flux age-secret --key-file KEY | kubectl apply -f -",
        )


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False
