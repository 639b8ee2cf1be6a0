"""Whole-document operations shared by the CLI, the Python API and the
repository tools: load + decrypt, encrypt + dump, re-wrap keys, rotate."""

from __future__ import annotations

import os

from . import errors
from .cipher import Cipher, parse_sealed
from .engine import decrypt_branches, encrypt_branches, encrypt_mac, verify_mac
from .errors import SopsError
from .keys.base import MasterKey
from .lazyre import compile_lazy
from .metadata import Metadata, now_lastmodified
from .tree import Branches, TreeMap, TreeValue

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import TypeAlias

    from .stores import Store
else:  # the same classes without importing dataclasses (start-up time)
    from .records import dataclass


@dataclass
class Decrypted:
    """A decrypted document with what is needed to write it back encrypted
    with the same data key (and the same IVs for unchanged values)."""

    branches: Branches
    metadata: Metadata
    data_key: bytes
    cipher: Cipher
    encrypted_branches: Branches


def load_metadata(store: Store, data: bytes, *, raw_strings: bool = False) -> tuple[Branches, Metadata]:
    """Parse an encrypted document without decrypting anything. ``raw_strings``:
    a store that can (binary: ``load_encrypted_raw``) hands over the value it
    recognises as already-decoded ENC[] fields, for ``decrypt_branches(raw_strings=True)``."""
    loaded = None
    if raw_strings:
        fast = getattr(store, "load_encrypted_raw", None)
        if fast is not None:
            loaded = fast(data, parse_sealed)
    branches, raw = store.load_encrypted(data) if loaded is None else loaded
    if raw is None:
        raise SopsError(errors.GENERIC, "sops metadata not found")
    return branches, Metadata.from_dict(raw)


def decrypt_document(
    store: Store,
    data: bytes,
    *,
    ignore_mac: bool = False,
    decryption_order: list[str] | None = None,
    data_key: bytes | None = None,
    check_version: bool = False,
    raw_strings: bool = False,
) -> Decrypted:
    """``check_version``: refuse a ``version`` that is not semver before asking
    any key, as sops' decrypt/edit/set/unset/rotate/exec-* do (exit 1).
    ``raw_strings``: string values stay bytes (see ``engine.decrypt_branches``),
    and ``encrypted_branches`` may hold the binary store's
    :class:`~sopsflow.tree.SealedValue`: only for writing the plaintext out."""
    branches, meta = load_metadata(store, data, raw_strings=raw_strings)
    if check_version:
        check_sops_version(meta.version)
    if data_key is None:
        from .keys.groups import get_data_key

        data_key = get_data_key(meta, decryption_order)
    cipher = Cipher(data_key)
    plain, computed = decrypt_branches(branches, cipher, meta, raw_strings)
    if not ignore_mac:
        verify_mac(cipher, meta, computed)
    return Decrypted(plain, meta, data_key, cipher, branches)


def encrypt_document(
    store: Store,
    branches: Branches,
    meta: Metadata,
    data_key: bytes,
    cipher: Cipher | None = None,
) -> bytes:
    """Encrypt ``branches`` under ``data_key`` with a fresh lastmodified and MAC.
    The master keys in ``meta`` must already wrap ``data_key``."""
    # One piece unless a raw bytes value went in; joining one piece copies nothing.
    return b"".join(encrypt_document_pieces(store, branches, meta, data_key, cipher))


def encrypt_document_pieces(
    store: Store,
    branches: Branches,
    meta: Metadata,
    data_key: bytes,
    cipher: Cipher | None = None,
) -> list[bytes]:
    """:func:`encrypt_document`'s output in pieces that are written in turn: a
    store with ``dump_encrypted_pieces`` (binary) leaves the base64 of a ``bytes`` value
    (``load_plain_raw``) as a piece of its own instead of copying it into one
    more string and one more joined document."""
    cipher = cipher or Cipher(data_key)
    dump_pieces = getattr(store, "dump_encrypted_pieces", None)
    enc_branches, mac_hex = encrypt_branches(branches, cipher, meta, raw_strings=dump_pieces is not None)
    meta.lastmodified = now_lastmodified()
    meta.mac = encrypt_mac(cipher, mac_hex, meta.lastmodified)
    metadata = meta.to_dict(json_style=store.name != "yaml")
    if dump_pieces is not None:
        pieces: list[bytes] = dump_pieces(enc_branches, metadata)
        return pieces
    out: bytes = store.dump_encrypted(enc_branches, metadata)
    return [out]


def new_data_key() -> bytes:
    return os.urandom(32)


def wrap_keys(meta: Metadata, data_key: bytes) -> None:
    """(Re-)wrap ``data_key`` for every master key in ``meta``; Shamir-splits for
    two or more groups and records the threshold."""
    from .keys.groups import wrap_data_key

    if not meta.key_groups or not any(meta.key_groups):
        raise SopsError(
            errors.GENERIC,
            "config file not found, or has no creation rules, and no keys provided through command line options",
        )
    if any(len(g) == 0 for g in meta.key_groups):
        raise SopsError(errors.GENERIC, "empty key group provided")
    meta.shamir_threshold = wrap_data_key(data_key, meta.key_groups, meta.shamir_threshold)


def encrypt_new(
    store: Store,
    branches: Branches,
    key_groups: list[list[MasterKey]],
    *,
    selection: dict[str, str] | None = None,
    mac_only_encrypted: bool = False,
    shamir_threshold: int = 0,
) -> bytes:
    """Encrypt a plaintext document for the first time (``sops encrypt``)."""
    meta, data_key = new_file_metadata(
        store,
        key_groups,
        selection=selection,
        mac_only_encrypted=mac_only_encrypted,
        shamir_threshold=shamir_threshold,
    )
    return encrypt_document(store, branches, meta, data_key)


def new_file_metadata(
    store: Store,
    key_groups: list[list[MasterKey]],
    *,
    selection: dict[str, str] | None = None,
    mac_only_encrypted: bool = False,
    shamir_threshold: int = 0,
) -> tuple[Metadata, bytes]:
    """Metadata for a new file plus a fresh data key already wrapped by every
    master key (``encrypt``, and ``edit`` of a file that does not exist yet)."""
    meta = Metadata(key_groups=key_groups, shamir_threshold=shamir_threshold)
    options = dict(selection or {})
    if store.name == "binary":
        # The binary store ignores selection options (with a warning in sops).
        options = {}
        mac_only_encrypted = False
    elif not options:
        options = {"unencrypted_suffix": "_unencrypted"}
    if len(options) > 1:
        raise SopsError(
            errors.CONFLICTING_PARAMETERS,
            "Error: cannot use more than one of " + ", ".join(sorted(options)),
        )
    meta.set_selection(options)
    meta.mac_only_encrypted = mac_only_encrypted
    data_key = new_data_key()
    wrap_keys(meta, data_key)
    return meta, data_key


def has_sops_metadata(store: Store, branches: Branches) -> bool:
    """Whether a plaintext load already carries sops metadata (exit 203 on encrypt)."""
    if store.name == "dotenv":
        return any(isinstance(k, str) and k.startswith("sops_") for b in branches for k in b.keys_())
    return any(b.has("sops") for b in branches[:1])


def to_plain_python(node: TreeValue) -> object:
    """Tree -> plain dicts/lists (the Python API's result)."""
    from .tree import Comment, Time

    if type(node) is TreeMap:
        return {k: to_plain_python(v) for k, v in node.items_()}
    if type(node) is list:
        return [to_plain_python(v) for v in node if type(v) is not Comment]
    if type(node) is Time:
        return node.text
    return node


# --- rotate ---------------------------------------------------------------------


def rotate_document(
    store: Store,
    doc: Decrypted,
    add_keys: list[MasterKey] | None = None,
    remove_keys: list[MasterKey] | None = None,
) -> bytes:
    """``sops rotate``: add keys to group 0, remove keys (matched by identity)
    from every group, wrap a new data key and re-encrypt every value under it.

    Each value keeps its IV (the new cipher inherits the decryption IV cache),
    so only data and tag change; lastmodified and MAC are new, ``version`` is
    kept as sops keeps it. Keys that stay keep their metadata (created_at).
    """
    meta = doc.metadata
    if add_keys:
        meta.key_groups[0].extend(add_keys)
    if remove_keys:
        gone = {k.identity() for k in remove_keys}
        meta.key_groups = [[k for k in g if k.identity() not in gone] for g in meta.key_groups]
    if not meta.key_groups or any(len(g) == 0 for g in meta.key_groups):
        raise SopsError(errors.GENERIC, "Could not generate data key: [empty key group provided]")
    return rotate_data_key(store, doc)


def rotate_data_key(store: Store, doc: Decrypted) -> bytes:
    """``doc`` encrypted under a new data key wrapped for its key groups as
    they are now. Taking a recipient out of an existing file needs this
    (``rotate --rm-*`` and ``groups delete`` come here; ``edit -s`` and
    ``updatekeys`` do the same in their own flow): with the old data key, the
    removed recipient's wrapped copy in git history would open every later value. Each value keeps its IV (the new
    cipher inherits the decryption IV cache), so only data and tag change."""
    data_key = new_data_key()
    rewrap_keys(doc.metadata, data_key)
    cipher = Cipher(data_key)
    cipher.iv_cache = doc.cipher.iv_cache
    return encrypt_document(store, doc.branches, doc.metadata, data_key, cipher)


def removed_recipients(before: list[list[MasterKey]], after: list[list[MasterKey]]) -> list[str]:
    """Identities in ``before``'s key groups that none of ``after``'s has, in order."""
    kept = {k.identity() for group in after for k in group}
    return list(dict.fromkeys(k.identity() for group in before for k in group if k.identity() not in kept))


def rewrap_keys(meta: Metadata, data_key: bytes) -> None:
    """wrap_keys for a file's existing keys (rotate, groups, edit): sops only
    replaces the wrapped key, so keys that had a created_at keep it; keys new
    to the file get the time of wrapping."""
    stamps = [(key, getattr(key, "created_at", "")) for key in meta.all_keys()]
    stamps = [(key, stamp) for key, stamp in stamps if stamp]
    wrap_keys(meta, data_key)
    for key, stamp in stamps:
        setattr(key, "created_at", stamp)  # noqa: B010 - not every MasterKey has one


# --- the version recorded in files -------------------------------------------------

_SEMVER = compile_lazy(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\Z"
)


def decryption_order(raw: str | None) -> list[str] | None:
    """The key types to try first (``--decryption-order``, else
    ``$SOPS_DECRYPTION_ORDER``), e.g. ``age,pgp``; None when neither is set."""
    from .keys.groups import check_decryption_order

    raw = raw or os.environ.get("SOPS_DECRYPTION_ORDER")
    if not raw:
        return None
    # Blank items are skipped, as sops does; a repeated type is its error 112.
    return check_decryption_order([p.strip() for p in raw.split(",") if p.strip()])


if TYPE_CHECKING:
    #: A release sorts as (1,), a pre-release as (0, its identifiers' keys).
    _PreReleaseKey: TypeAlias = "tuple[int] | tuple[int, tuple[tuple[int, int, str], ...]]"


def semver_key(text: str) -> tuple[int, int, int, _PreReleaseKey]:
    """Sort key of a semantic version as blang/semver (sops' parser) reads it;
    ValueError with its message when the text is not one. A leading "v" is allowed."""
    text = text[1:] if text.startswith("v") else text
    if not text:
        raise ValueError("Version string empty")
    parts = text.split(".")
    if len(parts) == 3 and all(p.isascii() and p.isdigit() and (p == "0" or p[0] != "0") for p in parts):
        # a plain release ("3.11.0", what every file carries) matches the pattern
        # below with no pre-release: its ~0.5 ms compile is left to other versions
        return (int(parts[0]), int(parts[1]), int(parts[2]), (1,))
    if text.count(".") < 2:
        raise ValueError("No Major.Minor.Patch elements found")
    m = _SEMVER.match(text)
    if not m:
        raise ValueError(f"Invalid semantic version {text!r}")
    major, minor, patch, pre = m.groups()
    # A release sorts after its pre-releases; numeric identifiers before alphanumeric ones.
    pre_key: _PreReleaseKey = (1,)
    if pre:
        pre_key = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (int(major), int(minor), int(patch), pre_key)


def version_is_newer(a: str, b: str) -> bool:
    """sops' version.AIsNewerThanB: anything "1.x" is older without parsing."""
    if b.startswith("1."):
        return True
    return semver_key(a) > semver_key(b)


def check_sops_version(version: str) -> None:
    """sops compares a file's version with 3.3.0 on load (the KMS encryption
    context bug check), so a version that is not semver fails with exit 1."""
    if version.startswith("1."):
        return
    try:
        semver_key(version)
    except ValueError as exc:
        raise SopsError(errors.GENERIC, str(exc)) from None
