"""The Python API: decrypt/encrypt files and bytes, returning plain Python data."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SopsError

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from .tree import TreeValue


def decrypt(data: bytes, format: str, *, ignore_mac: bool = False) -> dict[str, TreeValue]:
    """Decrypt SOPS ``data`` in ``format`` (yaml, json, dotenv, ini, binary).

    Returns the first document as plain dicts/lists; timestamps come back as
    RFC 3339 strings; a binary file comes back as ``{"data": str}``.
    Raises :class:`SopsError` (with ``.code`` = sops' exit code)."""
    from .operations import decrypt_document, to_plain_python
    from .stores import store_by_name

    doc = decrypt_document(store_by_name(format), data, ignore_mac=ignore_mac)
    result = to_plain_python(doc.branches[0]) if doc.branches else {}
    return result if isinstance(result, dict) else {}


def decrypt_file(path: str | os.PathLike[str], *, format: str | None = None, ignore_mac: bool = False) -> dict[str, TreeValue]:
    """Decrypt the SOPS file at ``path``; the format follows the file name unless given."""
    from .fileio import read_input
    from .stores import store_for_path

    name = os.fspath(path)
    store_name = format or store_for_path(name).name
    return decrypt(read_input(name), store_name, ignore_mac=ignore_mac)


def encrypt(
    data: bytes,
    format: str,
    *,
    filename: str | None = None,
    age: list[str] | None = None,
    pgp: list[str] | None = None,
    kms: list[str] | None = None,
    config: str | os.PathLike[str] | None = None,
) -> bytes:
    """Encrypt plaintext ``data``. Keys come from ``age``/``pgp``/``kms`` when given,
    otherwise from the creation rule in ``.sops.yaml`` matching ``filename``."""
    from .config.decoder import config_in_effect
    from .creation import CreationOptions, KeyOptions, creation_settings, load_unencrypted
    from .stores import store_by_name

    cfg = config_in_effect(config)
    store = store_by_name(format)
    branches = load_unencrypted(store, data, filename or "input")
    keys = KeyOptions(age=",".join(age or []), pgp=",".join(pgp or []), kms=",".join(kms or []))
    settings = creation_settings(filename or f"input.{format}", cfg, CreationOptions(keys=keys))
    return settings.encrypt(store, branches)


def encrypt_file(
    path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    age: list[str] | None = None,
    pgp: list[str] | None = None,
    kms: list[str] | None = None,
    config: str | os.PathLike[str] | None = None,
) -> Path:
    """Encrypt the plaintext file at ``path`` (in place unless ``output``), atomically.
    Returns the path written."""
    from .fileio import atomic_write, read_input
    from .stores import store_for_path

    name = os.fspath(path)
    store = store_for_path(name)
    source = read_input(name, for_rewrite=output is None)
    result = encrypt(source, store.name, filename=name, age=age, pgp=pgp, kms=kms, config=config)
    target = Path(output) if output else Path(name)
    atomic_write(target, result)
    return target


__all__ = ["SopsError", "decrypt", "decrypt_file", "encrypt", "encrypt_file"]
