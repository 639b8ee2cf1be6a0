"""The keys and options of a new SOPS file (sops' creation path).

A new file (``encrypt``, ``edit`` of a missing file, the Python API) gets its
master keys and options from two places: keys named explicitly (the key
flags, or the ``SOPS_*`` variables standing in for them) replace the matching
creation rule's keys; each selection option, ``mac_only_encrypted`` and the
Shamir threshold come from the explicit value first, then the rule.
:func:`creation_settings` applies that rule once for every caller.
"""

from __future__ import annotations

import os

from . import errors
from .errors import SopsError
from .metadata import SELECTION_OPTIONS

TYPE_CHECKING = False  # neither typing nor dataclasses at run time (start-up time)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from dataclasses import dataclass, field

    from .config.rules import Config
    from .keys.base import MasterKey
    from .metadata import Metadata
    from .stores import Store
    from .tree import Branches
else:  # the same classes without importing dataclasses (start-up time)
    from .records import dataclass, field


@dataclass(frozen=True)
class KeyOptions:
    """Master keys named explicitly, each a comma-separated list as sops' key
    flags take it; an empty field falls back to its ``SOPS_*`` variable."""

    kms: str = ""
    gcp_kms: str = ""
    hckms: str = ""
    azure_kv: str = ""
    pgp: str = ""
    hc_vault_transit: str = ""
    age: str = ""
    aws_profile: str = ""
    #: KMS encryption context ``k1:v1,k2:v2``; also applies to the rule's KMS keys.
    encryption_context: str = ""


#: The variable each :class:`KeyOptions` list falls back to.
_KEY_ENV = {
    "kms": "SOPS_KMS_ARN",
    "gcp_kms": "SOPS_GCP_KMS_IDS",
    "hckms": "SOPS_HUAWEICLOUD_KMS_IDS",
    "azure_kv": "SOPS_AZURE_KEYVAULT_URLS",
    "pgp": "SOPS_PGP_FP",
    "hc_vault_transit": "SOPS_VAULT_URIS",
    "age": "SOPS_AGE_RECIPIENTS",
}


@dataclass(frozen=True)
class CreationOptions:
    """What the caller sets explicitly for a new file; unset values come from the rule."""

    keys: KeyOptions = field(default_factory=KeyOptions)
    #: Selection options (metadata.SELECTION_OPTIONS names) given explicitly; empty values are unset.
    selection: Mapping[str, str | None] = field(default_factory=dict)
    mac_only_encrypted: bool | None = None
    shamir_threshold: int | None = None


@dataclass
class CreationSettings:
    """The resolved keys and options of a new file."""

    key_groups: list[list[MasterKey]]
    selection: dict[str, str] = field(default_factory=dict)
    mac_only_encrypted: bool = False
    shamir_threshold: int = 0

    def encrypt(self, store: Store, branches: Branches) -> bytes:
        """``branches`` (plaintext) encrypted as a new file under a fresh data key."""
        from .operations import encrypt_new

        return encrypt_new(store, branches, self.key_groups, selection=self.selection,
                           mac_only_encrypted=self.mac_only_encrypted, shamir_threshold=self.shamir_threshold)

    def new_metadata(self, store: Store) -> tuple[Metadata, bytes]:
        """The metadata of a new file and its fresh data key, wrapped for every key."""
        from .operations import new_file_metadata

        return new_file_metadata(store, self.key_groups, selection=self.selection,
                                 mac_only_encrypted=self.mac_only_encrypted, shamir_threshold=self.shamir_threshold)


def _listed(options: KeyOptions, name: str) -> str:
    value: str = getattr(options, name)
    return value or os.environ.get(_KEY_ENV[name], "")


def explicit_keys(options: KeyOptions) -> list[MasterKey]:
    """The keys named in ``options`` or the ``SOPS_*`` variables, in the order
    sops builds its single group: kms, gcp_kms, hckms, azure_kv, pgp, hc_vault, age."""
    keys: list[MasterKey] = []
    kms = _listed(options, "kms")
    if kms:
        from .keys.kms import parse_encryption_context, parse_kms_arns

        context = parse_encryption_context(options.encryption_context) if options.encryption_context else None
        keys.extend(parse_kms_arns(kms, context, options.aws_profile))
    gcp = _listed(options, "gcp_kms")
    if gcp:
        keys.extend(make_keys("gcp_kms", [gcp]))
    hckms = _listed(options, "hckms")
    if hckms:
        keys.extend(hckms_keys(hckms.split(",")))
    azure = _listed(options, "azure_kv")
    if azure:
        keys.extend(make_keys("azure_kv", [azure]))
    pgp = _listed(options, "pgp")
    if pgp:
        keys.extend(make_keys("pgp", [pgp]))
    vault = _listed(options, "hc_vault_transit")
    if vault:
        keys.extend(make_keys("hc_vault", [vault]))
    age = _listed(options, "age")
    if age:
        from .keys.age import parse_age_recipients

        keys.extend(parse_age_recipients(age))
    return keys


def creation_settings(name_path: str, config: Config | None, options: CreationOptions) -> CreationSettings:
    """Keys and options for a new file at ``name_path``: explicit keys replace
    the matching rule's keys; selection options, mac_only_encrypted and the
    threshold come from ``options``, then the rule."""
    rule = None
    if config is not None and config.has_creation_rules:
        rule = config.match(os.path.abspath(name_path))
    flag_keys = explicit_keys(options.keys)
    if flag_keys:
        groups = [flag_keys]
    elif rule is not None:
        ctx_text = options.keys.encryption_context
        if ctx_text:
            from .keys.kms import parse_encryption_context

            groups = rule.key_groups(kms_context=parse_encryption_context(ctx_text))
        else:
            groups = rule.key_groups()
    else:
        if config is not None and config.has_creation_rules:
            raise SopsError(errors.GENERIC, "error loading config: no matching creation rules found")
        raise SopsError(
            errors.GENERIC,
            "config file not found, or has no creation rules, and no keys provided through command line options",
        )
    selection = dict(rule.selection) if rule is not None else {}
    for name in SELECTION_OPTIONS:
        value = options.selection.get(name)
        if value:
            selection[name] = value
    if len(selection) > 1:
        raise SopsError(
            errors.CONFLICTING_PARAMETERS,
            "Error: cannot use more than one of " + ", ".join(sorted(selection)),
        )
    mac_only = options.mac_only_encrypted
    if mac_only is None:
        mac_only = bool(rule.mac_only_encrypted) if rule is not None else False
    threshold = options.shamir_threshold
    if threshold is None:
        threshold = rule.shamir_threshold if rule is not None else 0
    return CreationSettings(groups, selection, bool(mac_only), int(threshold or 0))


def load_unencrypted(store: Store, data: bytes, name: str, *, raw: bool = False) -> Branches:
    """Plaintext ``data`` as a tree; a file that is already SOPS-encrypted is refused.

    ``raw``: a store that can hand over its bytes as they are (binary) does so,
    with no ``str`` round trip of a large file; every other store's plain tree
    holds ``str`` values either way. Only for a tree that goes straight to
    encryption."""
    from .operations import has_sops_metadata

    branches = getattr(store, "load_plain_raw", store.load_plain)(data) if raw else store.load_plain(data)
    if has_sops_metadata(store, branches):
        raise SopsError(errors.FILE_ALREADY_ENCRYPTED, f"File {name} already encrypted")
    return branches


# --- keys named by value (key flags, rotate --add-*/--rm-*, groups add) ---------------

#: The order sops 3.11 builds key lists from rotate's and groups' flags.
KEY_KINDS = ("kms", "pgp", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age")


def make_keys(
    kind: str, values: list[str], *, context: dict[str, str] | None = None, aws_profile: str = ""
) -> list[MasterKey]:
    """Master keys of one type from flag values; every value may itself be a
    comma-separated list. ``kind`` is a metadata list name (KEY_KINDS)."""
    items = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not items:
        return []
    if kind == "kms":
        from .keys.kms import parse_kms_arns

        return list(parse_kms_arns(",".join(items), context, aws_profile))
    if kind == "pgp":
        from .keys.pgp import PgpKey

        return [PgpKey(fp.replace(" ", "")) for fp in items]
    if kind in ("gcp_kms", "azure_kv"):
        from .keys.opaque import OpaqueKey

        if kind == "gcp_kms":
            return [OpaqueKey("gcp_kms", {"resource_id": r}) for r in items]
        return [OpaqueKey("azure_kv", _azure_entry(u)) for u in items]
    if kind == "hckms":
        return hckms_keys(items)
    if kind == "hc_vault":
        from .keys.hcvault import VaultKey

        return [VaultKey.from_uri(u) for u in items]
    if kind == "age":
        from .keys.age import parse_age_recipients

        return list(parse_age_recipients(",".join(items)))
    raise ValueError(f"unknown key type {kind}")


def hckms_keys(ids: list[str]) -> list[MasterKey]:
    """HuaweiCloud KMS keys (``region:key-uuid``), parsed by their key module.
    sopsflow has no HuaweiCloud client: existing entries are kept, wrapping a
    data key for a new one fails as sops fails without HuaweiCloud credentials."""
    from .keys.hckms import HckmsKeyError, keys_from_string

    try:
        return list(keys_from_string(",".join(ids)))
    except HckmsKeyError as exc:
        raise SopsError(errors.GENERIC, str(exc)) from None


def _azure_entry(url: str) -> dict[str, str]:
    from .keys.opaque import parse_azure_url

    try:
        return parse_azure_url(url)
    except ValueError as exc:
        raise SopsError(errors.GENERIC, str(exc)) from None
