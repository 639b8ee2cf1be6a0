"""The ``sops`` metadata block: key groups, selection options, MAC, version."""

from __future__ import annotations

import time

from . import errors
from .errors import SopsError
from .keys.base import MasterKey, is_civil_time
from .lazyre import compile_lazy

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from dataclasses import dataclass, field

    from .tree import RawMetadata, TreeValue
else:  # the same classes without importing dataclasses (start-up time)
    from .records import dataclass, field

#: The version string written into files. Files we write are meant to be
#: indistinguishable from sops 3.11's, so we record the format version we
#: reproduce rather than our own package version.
SOPS_VERSION = "3.11.0"

SELECTION_OPTIONS = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)
DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"

# Flat layout: the order lists are read into the single group (decryption
# order fallback depends on it) and the order they are written in.
# hckms (sops 3.12+) sits between gcp_kms and azure_kv, where the sops binary
# writes it.
_FLAT_LOAD_ORDER = ("kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "pgp", "age")
_FLAT_WRITE_ORDER = ("kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age")
_GROUP_WRITE_ORDER = ("pgp", "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age")
_GROUP_ALWAYS = ("hc_vault", "age")
KEY_TYPES = frozenset(_FLAT_LOAD_ORDER)
_NON_KEY_FIELDS = frozenset(
    {"shamir_threshold", "key_groups", "lastmodified", "mac", "mac_only_encrypted", "version", *SELECTION_OPTIONS}
)

_RFC3339 = compile_lazy(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


@dataclass
class Metadata:
    key_groups: list[list[MasterKey]] = field(default_factory=list)
    shamir_threshold: int = 0
    lastmodified: str = ""
    mac: str = ""
    unencrypted_suffix: str = ""
    encrypted_suffix: str = ""
    unencrypted_regex: str = ""
    encrypted_regex: str = ""
    unencrypted_comment_regex: str = ""
    encrypted_comment_regex: str = ""
    mac_only_encrypted: bool = False
    version: str = SOPS_VERSION

    # -- selection options -------------------------------------------------

    def selection(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in SELECTION_OPTIONS if getattr(self, name)}

    def set_selection(self, options: dict[str, str]) -> None:
        for name in SELECTION_OPTIONS:
            setattr(self, name, options.get(name, "") or "")

    # -- serialisation -------------------------------------------------------

    @classmethod
    def from_dict(cls, raw: object) -> Metadata:
        """Build from the raw ``sops`` mapping a store read. Raises SopsError(1) as
        sops does for metadata it cannot load."""
        if not isinstance(raw, dict):
            raise SopsError(errors.GENERIC, "Error unmarshalling file: sops metadata is not a mapping")
        meta = cls(version=_text(raw.get("version")))
        meta.lastmodified = _text(raw.get("lastmodified"))
        meta.mac = _text(raw.get("mac"))
        options = raw_selection(raw)
        meta.set_selection(options)
        meta.mac_only_encrypted = _truthy(raw.get("mac_only_encrypted"))
        meta.shamir_threshold = _int(raw.get("shamir_threshold"))
        chosen = list(options)
        if len(chosen) > 1:
            raise SopsError(
                errors.GENERIC,
                "Error unmarshalling file: Cannot use more than one of "
                + ", ".join(chosen),
            )
        if not chosen:
            meta.unencrypted_suffix = DEFAULT_UNENCRYPTED_SUFFIX
        meta.key_groups = _load_groups(raw)
        if not any(meta.key_groups):
            raise SopsError(errors.GENERIC, "Error unmarshalling file: No keys found in file")
        if meta.lastmodified:
            lastmodified_aad(meta.lastmodified)  # validates
        else:
            raise SopsError(errors.GENERIC, "Error unmarshalling file: lastmodified is missing")
        return meta

    def to_dict(self, json_style: bool = False) -> RawMetadata:
        """The metadata mapping in sops 3.11's field order. ``json_style`` writes
        empty always-present group members as null (JSON and the flattened
        formats), YAML writes them as ``[]``."""
        out: RawMetadata = {}
        if self.shamir_threshold:
            out["shamir_threshold"] = self.shamir_threshold
        groups = [g for g in self.key_groups]
        if len(groups) >= 2:
            out["key_groups"] = [_group_dict(g, json_style) for g in groups]
        flat = _by_type(groups[0]) if len(groups) == 1 else {}
        for name in _FLAT_WRITE_ORDER:
            if flat.get(name):
                out[name] = [k.to_dict() for k in flat[name]]
        for name in sorted(set(flat) - KEY_TYPES):
            out[name] = [k.to_dict() for k in flat[name]]
        out["lastmodified"] = self.lastmodified
        out["mac"] = self.mac
        if flat.get("pgp"):
            out["pgp"] = [k.to_dict() for k in flat["pgp"]]
        for name in SELECTION_OPTIONS:
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.mac_only_encrypted:
            out["mac_only_encrypted"] = True
        out["version"] = self.version
        return out

    def all_keys(self) -> list[MasterKey]:
        return [k for g in self.key_groups for k in g]


def _group_dict(group: list[MasterKey], json_style: bool) -> RawMetadata:
    typed = _by_type(group)
    out: RawMetadata = {}
    for name in _GROUP_WRITE_ORDER:
        entries = [k.to_dict() for k in typed.get(name, [])]
        if entries:
            out[name] = entries
        elif name in _GROUP_ALWAYS:
            out[name] = None if json_style else []
    for name in sorted(set(typed) - KEY_TYPES):
        out[name] = [k.to_dict() for k in typed[name]]
    return out


def _by_type(group: list[MasterKey]) -> dict[str, list[MasterKey]]:
    typed: dict[str, list[MasterKey]] = {}
    for key in group:
        typed.setdefault(key.type_name, []).append(key)
    return typed


def _load_group(raw: RawMetadata) -> list[MasterKey]:
    from .keys.registry import key_from_entry

    group: list[MasterKey] = []
    # Key types from newer sops versions are kept as opaque keys.
    names = list(_FLAT_LOAD_ORDER) + sorted(
        n for n, v in raw.items() if n not in KEY_TYPES and n not in _NON_KEY_FIELDS and isinstance(v, list)
    )
    for name in names:
        entries = raw.get(name) or []
        if not isinstance(entries, list):
            raise SopsError(errors.GENERIC, f"Error unmarshalling file: sops.{name} is not a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise SopsError(errors.GENERIC, f"Error unmarshalling file: bad entry in sops.{name}")
            group.append(key_from_entry(name, entry))
    return group


def _load_groups(raw: RawMetadata) -> list[list[MasterKey]]:
    flat = _load_group(raw)
    if flat:
        return [flat]
    groups = raw.get("key_groups") or []
    if not isinstance(groups, list):
        raise SopsError(errors.GENERIC, "Error unmarshalling file: sops.key_groups is not a list")
    out = []
    for g in groups:
        if not isinstance(g, dict):
            raise SopsError(errors.GENERIC, "Error unmarshalling file: bad key group")
        out.append(_load_group(g))
    return out


def raw_selection(raw: RawMetadata) -> dict[str, str]:
    """The selection options a raw ``sops`` mapping sets (non-empty ones, in
    SELECTION_OPTIONS order), read as :meth:`Metadata.from_dict` reads them."""
    return {name: text for name in SELECTION_OPTIONS if (text := _text(raw.get(name)))}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value)


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _int(value: TreeValue) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):  # OverflowError: a number beyond float64
        raise SopsError(errors.GENERIC, "Error unmarshalling file: bad shamir_threshold") from None


def _rfc3339_fields(stamp: str) -> tuple[str, str, str, str, str, str, str | None, str] | None:
    """``_RFC3339.match(stamp).groups()``, None when it does not match. The
    form sops writes ("2006-01-02T15:04:05Z") is split without compiling the
    pattern (~0.2 ms of every decrypt's start)."""
    if (len(stamp) == 20 and stamp[19] in "Zz" and stamp[10] in "Tt"
            and stamp[4] + stamp[7] + stamp[13] + stamp[16] == "--::"):
        digits = stamp[:4] + stamp[5:7] + stamp[8:10] + stamp[11:13] + stamp[14:16] + stamp[17:19]
        if digits.isascii() and digits.isdigit():
            return (stamp[:4], stamp[5:7], stamp[8:10], stamp[11:13], stamp[14:16], stamp[17:19], None, stamp[19])
    m = _RFC3339.match(stamp)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    return year, month, day, hour, minute, second, fraction, zone


def lastmodified_aad(stamp: str) -> str:
    """The MAC's additional data: lastmodified parsed as RFC 3339 and rendered
    again with whole seconds (offset kept, ``Z`` for a zero offset)."""
    fields = _rfc3339_fields(stamp)
    if fields is None:
        raise SopsError(errors.GENERIC, "Error unmarshalling file: could not parse lastmodified")
    year, month, day, hour, minute, second, _frac, zone = fields
    if not is_civil_time(int(year), int(month), int(day), int(hour), int(minute), int(second)):
        raise SopsError(errors.GENERIC, "Error unmarshalling file: could not parse lastmodified")
    if zone in ("Z", "z", "+00:00", "-00:00"):
        zone = "Z"
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}{zone}"


def now_lastmodified() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
