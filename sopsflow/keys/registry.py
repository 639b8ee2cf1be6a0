"""Build the right master-key object from one metadata entry."""

from __future__ import annotations

import sys

from .. import errors
from ..errors import SopsError
from ..lazyre import compile_lazy
from .base import MasterKey

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    import datetime
    import re
    from typing import Any

#: Key types a creation rule can name (``config.KeySpec``). Entries of any
#: other type (hckms, types newer sops versions add) are kept verbatim: they
#: can be neither judged against a rule nor wrapped afresh.
RULE_KEY_TYPES = frozenset({"age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"})

_RFC3339 = compile_lazy(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})\Z")
_GO_LAYOUT = "2006-01-02T15:04:05Z07:00"


def key_from_entry(type_name: str, entry: dict[str, Any]) -> MasterKey:
    """The master key for ``entry`` of the metadata list ``type_name``.

    Unknown types (gcp_kms, azure_kv, hckms, ...) become an OpaqueKey that
    keeps the entry verbatim. A bad ``created_at`` fails to load, as in sops.
    """
    if type_name == "age":
        from .age import AgeKey

        return AgeKey(_text(entry.get("recipient")), enc=_text(entry.get("enc")))
    if type_name == "pgp":
        from .pgp import PgpKey

        key = PgpKey(_text(entry.get("fp")), enc=_text(entry.get("enc")))
        # The stored fingerprint is kept as written (PgpKey strips spaces for new keys).
        key.fp = _text(entry.get("fp"))
        key.created_at = normalize_created_at(entry.get("created_at"))
        return key
    if type_name == "kms":
        from .kms import KmsKey

        return KmsKey(
            _text(entry.get("arn")),
            role=_text(entry.get("role")),
            context=_context(entry.get("context")),
            aws_profile=_text(entry.get("aws_profile")),
            enc=_text(entry.get("enc")),
            created_at=normalize_created_at(entry.get("created_at")),
        )
    if type_name == "hc_vault":
        from .hcvault import VaultKey

        return VaultKey(
            _text(entry.get("vault_address")),
            _text(entry.get("engine_path")),
            _text(entry.get("key_name")),
            enc=_text(entry.get("enc")),
            created_at=normalize_created_at(entry.get("created_at")),
        )
    from .opaque import OpaqueKey

    if type_name in ("gcp_kms", "azure_kv"):
        normalize_created_at(entry.get("created_at"))
    return OpaqueKey(type_name, entry)


def normalize_created_at(value: Any) -> str:
    """``created_at`` as sops writes it back after loading: whole seconds, the
    offset kept, ``Z`` for UTC. SopsError (exit 1) when it is not RFC 3339."""
    loaded = sys.modules.get("datetime")  # not imported: value cannot be a datetime
    if loaded is not None and isinstance(value, loaded.datetime):
        return _format_datetime(value)
    text = _text(value)
    match = _RFC3339.match(text)
    if match is None or not _valid_date(match):
        raise SopsError(errors.GENERIC, f'parsing time "{text}" as "{_GO_LAYOUT}": not an RFC 3339 time')
    year, month, day, hour, minute, second, zone = match.groups()
    if zone in ("+00:00", "-00:00"):
        zone = "Z"
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}{zone}"


def _valid_date(match: re.Match[str]) -> bool:
    from .base import is_civil_time

    year, month, day, hour, minute, second, zone = match.groups()
    if not is_civil_time(int(year), int(month), int(day), int(hour), int(minute), int(second)):
        return False
    return zone == "Z" or (int(zone[1:3]) < 24 and int(zone[4:6]) < 60)


def _format_datetime(value: datetime.datetime) -> str:
    import datetime

    # YAML loaders may hand over timestamps already parsed; naive means UTC.
    if value.tzinfo is None or value.utcoffset() == datetime.timedelta(0):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    offset = value.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return value.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _context(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    # sops drops null values when it sends the context to KMS.
    return {str(k): _text(v) for k, v in value.items() if v is not None}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
