"""HuaweiCloud KMS keys (``hckms``, sops 3.12+): named, planned and kept, never used.

sopsflow has no HuaweiCloud SDK. A file's ``hckms`` entries are kept
verbatim (an :class:`~.opaque.OpaqueKey`), a rule's ``hckms`` keys take part
in updatekeys' plan like any other key, and wrapping a data key for a key the
file does not already hold fails before anything is written - with the same
"Could not generate data key" error and exit code the sops binary gives
without HuaweiCloud credentials.

The key ID syntax is sops': ``region:key-uuid``, both parts trimmed and
non-empty; a comma-separated list skips empty items.
"""

from __future__ import annotations

from .base import now_rfc3339
from .opaque import OpaqueKey

TYPE_NAME = "hckms"
ENV_VAR = "SOPS_HUAWEICLOUD_KMS_IDS"


class HckmsKeyError(ValueError):
    """A key ID sops would refuse; the message is sops' own."""


def parse_key_id(key_id: str) -> tuple[str, str]:
    """(region, key UUID) of ``region:key-uuid``; HckmsKeyError as sops words it."""
    key_id = key_id.strip()
    region, sep, uuid = key_id.partition(":")
    if not sep:
        raise HckmsKeyError(f"invalid key ID format: expected 'region:key-uuid', got {_go_quote(key_id)}")
    if not region.strip():
        raise HckmsKeyError(f"region cannot be empty in key ID: {_go_quote(key_id)}")
    if not uuid.strip():
        raise HckmsKeyError(f"key UUID cannot be empty in key ID: {_go_quote(key_id)}")
    return region.strip(), uuid.strip()


def parse_key_ids(text: str) -> list[str]:
    """The key IDs of a comma-separated list (flag, variable or flat rule),
    each checked; empty items are skipped, as sops does."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        parse_key_id(item)
        out.append(item)
    return out


def new_key(key_id: str) -> OpaqueKey:
    """A key a rule or flag names, not yet wrapping anything. Its entry has
    sops' field order (key_id, created_at, enc) should it ever be written."""
    parse_key_id(key_id)
    return OpaqueKey(TYPE_NAME, {"key_id": key_id, "created_at": now_rfc3339(), "enc": ""})


def keys_from_string(text: str) -> list[OpaqueKey]:
    """``--hckms`` / ``SOPS_HUAWEICLOUD_KMS_IDS``: one new key per listed ID."""
    return [new_key(key_id) for key_id in parse_key_ids(text)]


def _go_quote(text: str) -> str:
    # Go's %q for the printable text a key ID is.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
