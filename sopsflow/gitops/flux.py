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
import posixpath
import shlex
import stat
import sys
from pathlib import Path

from .. import errors
from ..errors import SopsError
from ..lazyre import compile_lazy

TYPE_CHECKING = False  # typing is not imported at run time (hook start-up)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, NamedTuple, TypeAlias

    from .check import Finding

    #: What :func:`generator_findings` needs to know of a file: "sops" (a SOPS
    #: file), "plaintext" (data, not yet refused), "public" (certificates or
    #: public keys only), "reported" (already refused, e.g. plaintext at a rule
    #: path), "empty", or None (not in the tree). :func:`file_state` words it.
    FileState: TypeAlias = Callable[[str], "str | None"]
else:
    from ..records import NamedTuple

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
            from ..keys.agepq import HybridIdentity, PqKeyError

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


# --- what the Flux lint reads from manifests ----------------------------------------

#: Flux's per-object decryption policy; ``Disabled`` leaves the object as it is.
DECRYPT_ANNOTATION = "kustomize.toolkit.fluxcd.io/decrypt"
#: The names kustomize reads a kustomization from.
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SECRET_GENERATOR_PLAINTEXT = "secret-generator-plaintext"


def _scalar(node: Any) -> str | None:
    return node.value if type(node).__name__ == "ScalarNode" else None


def _entries(node: Any) -> list[tuple[Any, Any]]:
    return node.value if type(node).__name__ == "MappingNode" else []


def _child(node: Any, key: str) -> Any:
    return next((v for k, v in _entries(node) if _scalar(k) == key), None)


def _documents(data: bytes) -> list[Any]:
    from .detectors import compose_documents

    try:
        return [d for d in compose_documents(data) if type(d).__name__ == "MappingNode"]
    except ValueError:
        return []


def decryption_disabled(data: bytes) -> bool:
    """Whether every Kubernetes object in a YAML (or JSON) file carries
    ``kustomize.toolkit.fluxcd.io/decrypt: Disabled``: Flux then applies them
    as they are, so they need no decryption. The annotation must be in
    plaintext metadata, where Flux reads it."""
    if DECRYPT_ANNOTATION.encode() not in data:
        return False
    objects = [d for d in _documents(data) if _child(d, "kind") is not None]
    if not objects:
        return False
    for doc in objects:
        value = _scalar(_child(_child(_child(doc, "metadata"), "annotations"), DECRYPT_ANNOTATION))
        if value is None or value.strip().lower() != "disabled":
            return False
    return True


class GeneratorSource(NamedTuple):
    """A file a kustomize ``secretGenerator`` reads into a Secret."""

    kustomization: str  # repo-relative path of the kustomization
    generator: str  # the generator's name
    field: str  # "files", "envs" or "env"
    path: str  # repo-relative, normalised
    line: int | None  # of the entry in the kustomization


class GeneratorLiteral(NamedTuple):
    """A ``literals:`` entry of a ``secretGenerator`` that looks like a credential."""

    kustomization: str
    generator: str
    key: str
    reason: str  # "credential", "URL with an embedded password in"
    line: int | None


def is_kustomization(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in KUSTOMIZATION_FILES


def secret_generators(rel_path: str, data: bytes) -> tuple[list[GeneratorSource], list[GeneratorLiteral]]:
    """The files (``files:``, ``envs:``, ``env:``) and the credential-like
    literals (``literals:``, judged as dotenv lines are: ``LOG_LEVEL=debug``
    is configuration, ``API_KEY=...`` is not) of the ``secretGenerator``
    entries of a kustomization. Paths outside the repository are left out."""
    from .detectors import credential_reason

    if b"secretGenerator" not in data:
        return [], []
    directory = posixpath.dirname(rel_path)
    sources: list[GeneratorSource] = []
    literals: list[GeneratorLiteral] = []
    for doc in _documents(data)[:1]:
        api = _scalar(_child(doc, "apiVersion")) or ""
        if "toolkit.fluxcd.io" in api:
            continue  # a Flux Kustomization object that happens to use the name
        generators = _child(doc, "secretGenerator")
        for generator in generators.value if type(generators).__name__ == "SequenceNode" else ():
            name = _scalar(_child(generator, "name")) or "?"
            for field_name in ("files", "envs", "env"):
                node = _child(generator, field_name)
                items = node.value if type(node).__name__ == "SequenceNode" else [node] if node is not None else []
                for item in items:
                    text = _scalar(item)
                    if not text:
                        continue
                    if field_name == "files" and "=" in text:
                        text = text.split("=", 1)[1]  # key=path
                    target = posixpath.normpath(posixpath.join(directory, text.strip()))
                    if target.startswith("../") or target == ".." or target.startswith("/"):
                        continue
                    sources.append(GeneratorSource(rel_path, name, field_name, target, item.start_mark.line + 1))
            node = _child(generator, "literals")
            for item in node.value if type(node).__name__ == "SequenceNode" else ():
                text = _scalar(item)
                if not text or "=" not in text:
                    continue
                key, value = text.split("=", 1)
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                    value = value[1:-1]
                reason = credential_reason(key.strip(), value)
                if reason:
                    literals.append(GeneratorLiteral(rel_path, name, key.strip(), reason, item.start_mark.line + 1))
    return sources, literals


_PUBLIC_PEM = compile_lazy(
    rb"-----BEGIN (?:CERTIFICATE|TRUSTED CERTIFICATE|X509 CRL|PUBLIC KEY|RSA PUBLIC KEY)-----\r?\n"
    rb"[A-Za-z0-9+/=\r\n]*-----END (?:CERTIFICATE|TRUSTED CERTIFICATE|X509 CRL|PUBLIC KEY|RSA PUBLIC KEY)-----"
)


def file_state(data: bytes, sops: bool) -> str:
    """The state of a file in the tree that no audit refused (see FileState)."""
    if sops:
        return "sops"
    if not data.strip():
        return "empty"
    # a TLS Secret's tls.crt, a CA bundle: public material, no secret data
    if b"-----BEGIN " in data and not _PUBLIC_PEM.sub(b"", data).strip():
        return "public"
    return "plaintext"


def generator_findings(kustomizations: Iterable[tuple[str, bytes]],
                       state: FileState) -> list[tuple[Finding, str, str | None]]:
    """``secret-generator-plaintext`` findings, each with the kustomization it
    comes from and the inline marker that suppresses it (None: none does): a
    file a secretGenerator reads that is not a SOPS file (Flux decrypts SOPS
    files there; plaintext becomes a Secret from text anyone with the
    repository reads), and each credential-like literal. A literal is a
    heuristic finding, so an inline marker on its line (or a comment line
    before it) suppresses it; a file is not."""
    from .check import ERROR, Finding, fingerprint
    from .detectors import InlineMarkers

    kind = SECRET_GENERATOR_PLAINTEXT
    out: list[tuple[Finding, str, str | None]] = []
    seen: set[str] = set()
    for rel, data in kustomizations:
        sources, literals = secret_generators(rel, data)
        for src in sources:
            if src.path in seen or state(src.path) != "plaintext":
                continue
            seen.add(src.path)
            quoted = shlex.quote(src.path)
            out.append((Finding(
                kind, src.path,
                f"plaintext, but secretGenerator {src.generator!r} of {src.kustomization} ({src.field}) makes it "
                "Kubernetes Secret data", ERROR, None,
                f"cover it with a creation rule, sopsflow encrypt -i {quoted}, and let Flux decrypt it "
                "(spec.decryption of its Kustomization)",
                fingerprint(kind, src.path, f"{src.kustomization}:{src.generator}")), rel, None))
        markers = InlineMarkers(data) if literals else None
        for lit in literals:
            out.append((Finding(
                kind, rel,
                f"secretGenerator {lit.generator!r} literal {lit.key!r}: a {lit.reason.removesuffix(' in')} in plaintext "
                "that becomes "
                "Kubernetes Secret data", ERROR, lit.line,
                "move it into an env file (envs:) encrypted with sopsflow encrypt -i, which Flux decrypts",
                fingerprint(kind, rel, f"literal:{lit.generator}:{lit.key}")), rel,
                markers.at(lit.line) if markers is not None else None))
    return out
