"""Key specifications of `.sops.yaml` rules and key flags: one parser per key type.

A rule or flag names keys as strings (comma-joined lists, or per-key mappings in
key groups); each key module owns its string syntax, and this module turns a
rule's keys into :class:`KeySpec` values and master keys.
"""

from __future__ import annotations

import posixpath

from ..lazyre import compile_lazy

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from ..records import NamedTuple

if TYPE_CHECKING:
    from dataclasses import dataclass, field

    from ..keys.base import MasterKey
else:  # the same classes without importing dataclasses (start-up time)
    from ..records import dataclass, field


#: Environment variables that stand in for the key flags (sops' `cmd/sops/main.go`). Any of
#: them (or the flags) replaces the matching rule's keys completely; sops
#: then builds one group in this order: kms, gcp_kms, hckms, azure_kv, pgp, hc_vault, age.
KEY_ENV_VARS: dict[str, str] = {
    "SOPS_KMS_ARN": "kms",
    "SOPS_GCP_KMS_IDS": "gcp_kms",
    "SOPS_HUAWEICLOUD_KMS_IDS": "hckms",
    "SOPS_AZURE_KEYVAULT_URLS": "azure_kv",
    "SOPS_PGP_FP": "pgp",
    "SOPS_VAULT_URIS": "hc_vault",
    "SOPS_AGE_RECIPIENTS": "age",
}


class KeySpec(NamedTuple):
    """A master key named by a rule, before any key object exists.

    ``value`` per type: age/pgp: the recipient / fingerprint; hc_vault: the URI;
    kms: ``{"arn", "role", "context" (dict or None), "aws_profile"}``;
    gcp_kms: ``{"resource_id"}``; azure_kv: ``{"vault_url", "name", "version"}``;
    hckms: ``{"key_id"}``.
    """

    type_name: str
    value: str | dict[str, Any]

    def identity(self) -> str:
        """sops' ``ToString`` of the key: what updatekeys prints and compares."""
        return _identity(self.type_name, self.value)


def _identity(type_name: str, value: str | dict[str, Any]) -> str:
    if isinstance(value, str):
        if type_name == "hc_vault":
            address, engine, name = parse_vault_uri(value)
            return f"{address}/v1/{engine}/keys/{name}"
        return value
    if type_name == "kms":
        arn_role = value["arn"] + ("+" + value["role"] if value.get("role") else "")
        context = ",".join(f"{k}:{v}" for k, v in sorted((value.get("context") or {}).items()))
        if value.get("aws_profile"):
            return f"{arn_role}|{context}|{value['aws_profile']}"
        return f"{arn_role}|{context}" if context else arn_role
    if type_name == "gcp_kms":
        return str(value["resource_id"])
    if type_name == "azure_kv":
        return f"{value['vault_url']}/keys/{value['name']}/{value['version']}"
    if type_name == "hckms":
        return str(value["key_id"])
    # A type no rule can name (a newer sops' key kept from a file): its
    # identity is the one its metadata entry gives.
    from ..keys.opaque import OpaqueKey

    return OpaqueKey(type_name, value).identity()


#: Key types a creation rule (or a key flag) can name. A file's keys of any
#: other type cannot be listed in `.sops.yaml`, so a rule never removes them.
RULE_KEY_TYPES = frozenset({"age", "pgp", "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault"})


class KeySpecError(Exception):
    """A key entry sops would refuse; turned into a SopsError naming the file."""


_VAULT_PREFIXED = compile_lazy(r"/[^/]+/v[0-9]+/[^/]+/[^/]+/[^/]+")
_VAULT_PATH = compile_lazy(r"/v[0-9]+/[^/]+/[^/]+/[^/]+")


def parse_vault_uri(uri: str) -> tuple[str, str, str]:
    """(vault_address, engine_path, key_name) as sops' hcvault.NewMasterKeyFromURI."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise KeySpecError(f"invalid Vault URI {uri!r}: {exc}") from None
    if not parts.scheme:
        raise KeySpecError(
            "missing scheme in Vault URL (should be like this: "
            f"https://vault.example.com:8200/v1/transit/keys/keyName), got: {uri}"
        )
    request_uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if _VAULT_PREFIXED.search(request_uri):
        raise KeySpecError("running Vault with a prefixed URL is not supported! (Format has to be like "
                        "https://vault.example.com:8200/v1/transit/keys/keyName)")
    if not _VAULT_PATH.search(request_uri):
        raise KeySpecError("vault path does not seem to be formatted correctly: (eg. "
                        "https://vault.example.com:8200/v1/transit/keys/keyName)")
    dirs = request_uri.strip("/").split("/")
    engine = posixpath.join(*dirs[1:-2]) if len(dirs) > 3 else ""
    # Go's URL.String() with the path dropped keeps any query and fragment.
    return urlunsplit((parts.scheme, parts.netloc, "", parts.query, parts.fragment)), engine, dirs[-1]


# Parsers of one comma-joined string per key type, the way sops' flat rules
# and key flags parse them (MasterKeysFrom...String).


def age_specs(text: str) -> list[KeySpec]:
    from ..keys.age import split_recipients

    try:
        return [KeySpec("age", recipient) for recipient in split_recipients(text)]
    except ValueError as exc:
        raise KeySpecError(str(exc)) from None


def pgp_specs(text: str) -> list[KeySpec]:
    if text == "":
        return []
    specs = []
    for item in text.split(","):
        fp = item.replace(" ", "")
        if not fp:
            # sops would carry an empty fingerprint into gpg and fail there.
            raise KeySpecError("empty PGP fingerprint")
        specs.append(KeySpec("pgp", fp))
    return specs


def kms_specs(text: str, context: dict[str, str] | None, aws_profile: str) -> list[KeySpec]:
    if text == "":
        return []
    specs = []
    from ..keys.kms import split_role

    for item in text.split(","):
        arn, role = split_role(item)
        if not arn:
            raise KeySpecError("empty KMS ARN")
        specs.append(KeySpec("kms", _kms_value(arn, role, context, aws_profile)))
    return specs


def _kms_value(arn: str, role: str, context: dict[str, str] | None, aws_profile: str) -> dict[str, str | dict[str, str] | None]:
    return {"arn": arn, "role": role, "context": dict(context) if context else None, "aws_profile": aws_profile}


def gcp_specs(text: str) -> list[KeySpec]:
    if text == "":
        return []
    specs = []
    for item in text.split(","):
        resource_id = item.replace(" ", "")
        if not resource_id:
            raise KeySpecError("empty GCP KMS resource id")
        specs.append(KeySpec("gcp_kms", {"resource_id": resource_id}))
    return specs


def hckms_specs(text: str) -> list[KeySpec]:
    from ..keys.hckms import HckmsKeyError, parse_key_ids

    try:
        return [KeySpec("hckms", {"key_id": key_id}) for key_id in parse_key_ids(text)]
    except HckmsKeyError as exc:
        raise KeySpecError(str(exc)) from None


def azure_specs(text: str) -> list[KeySpec]:
    if text == "":
        return []
    from ..keys.opaque import parse_azure_url

    try:
        return [KeySpec("azure_kv", parse_azure_url(item)) for item in text.split(",")]
    except ValueError as exc:
        raise KeySpecError(str(exc)) from None


def vault_specs(text: str) -> list[KeySpec]:
    specs = []
    for uri in text.split(","):
        if uri == "":
            continue
        parse_vault_uri(uri)
        specs.append(KeySpec("hc_vault", uri))
    return specs


@dataclass
class GroupSpec:
    """One entry of a rule's ``key_groups`` (or of a ``merge`` list), decoded."""

    merge: list[GroupSpec] = field(default_factory=list)
    kms: list[dict[str, Any]] = field(default_factory=list)
    gcp_kms: list[str] = field(default_factory=list)
    hckms: list[str] = field(default_factory=list)
    azure: list[dict[str, str]] = field(default_factory=list)
    hc_vault: list[str] = field(default_factory=list)
    age: list[str] = field(default_factory=list)
    pgp: list[str] = field(default_factory=list)

    def specs(self) -> list[KeySpec]:
        # sops' extractMasterKeys: merged groups first, then age, pgp, kms,
        # gcp_kms, hckms, azure, hc_vault (checked with updatekeys' diff output).
        out: list[KeySpec] = []
        for sub in self.merge:
            out.extend(sub.specs())
        for entry in self.age:
            out.extend(age_specs(entry))  # a group entry may itself hold "a,b"
        for fp in self.pgp:
            # a group's pgp entry is one fingerprint (no comma split), spaces removed
            if not fp.replace(" ", ""):
                raise KeySpecError("empty PGP fingerprint")
            out.append(KeySpec("pgp", fp.replace(" ", "")))
        for k in self.kms:
            if not k["arn"]:
                raise KeySpecError("KMS entry without arn")
            out.append(KeySpec("kms", _kms_value(k["arn"], k["role"], k["context"], k["aws_profile"])))
        for resource_id in self.gcp_kms:
            out.append(KeySpec("gcp_kms", {"resource_id": resource_id.replace(" ", "")}))
        for key_id in self.hckms:
            # one key ID per entry, not a list: a comma stays part of the ID and fails there
            out.extend(_hckms_one(key_id))
        for a in self.azure:
            out.append(KeySpec("azure_kv", {"vault_url": a["vaultUrl"], "name": a["key"], "version": a["version"]}))
        for uri in self.hc_vault:
            if uri == "":
                raise KeySpecError("empty hc_vault URI")  # sops 3.11 crashes on it
            parse_vault_uri(uri)
            out.append(KeySpec("hc_vault", uri))
        return out


def _hckms_one(key_id: str) -> list[KeySpec]:
    from ..keys.hckms import HckmsKeyError, parse_key_id

    try:
        parse_key_id(key_id)
    except HckmsKeyError as exc:
        raise KeySpecError(str(exc)) from None
    return [KeySpec("hckms", {"key_id": key_id})]


def dedup_specs(group: list[KeySpec]) -> list[KeySpec]:
    # sops dedups groups (not flat rules) by key type and ToString.
    seen: set[tuple[str, str]] = set()
    out = []
    for spec in group:
        ident = (spec.type_name, spec.identity())
        if ident not in seen:
            seen.add(ident)
            out.append(spec)
    return out


def build_key(spec: KeySpec) -> MasterKey:
    """A fresh master key object for ``spec`` (key modules imported lazily)."""
    value = spec.value
    if spec.type_name == "age":
        from ..keys.age import AgeKey

        return AgeKey(str(value))
    if spec.type_name == "pgp":
        from ..keys.pgp import PgpKey

        return PgpKey(str(value))
    if spec.type_name == "hc_vault":
        from ..keys.hcvault import VaultKey

        return VaultKey.from_uri(str(value))
    assert isinstance(value, dict)
    if spec.type_name == "kms":
        from ..keys.kms import KmsKey

        return KmsKey(value["arn"], role=value["role"], context=value["context"], aws_profile=value["aws_profile"])
    if spec.type_name == "hckms":
        from ..keys.hckms import new_key

        return new_key(str(value["key_id"]))
    from ..keys.opaque import OpaqueKey

    return OpaqueKey(spec.type_name, dict(value))


