"""External Secrets Operator manifests that read back what ``publish`` wrote.

Per published file, one YAML file with two documents: a namespaced
``SecretStore`` (the store's address, mount or region - never a value or a
credential) and an ``ExternalSecret`` whose ``target`` is the Kubernetes
Secret the SOPS file described.

- A SOPS-encrypted Kubernetes ``Secret`` manifest keeps its ``metadata.name``,
  ``metadata.namespace``, ``type`` and its ``data``/``stringData`` keys;
  ``data`` values were base64 in the file, so they are read back with
  ``decodingStrategy: Base64`` and land in the Secret unchanged.
- Any other file becomes a Secret named after its path, with one key per
  top-level key (nested values arrive as JSON text, as ESO renders them).

``SecretStore`` rather than ``ClusterSecretStore``: a namespace's Secrets are
read through a store that lives in that namespace, so access to a path in the
store is granted per namespace and one team cannot point an ExternalSecret at
another team's store. Its name is derived from the store's settings, so every
file published to the same place shares it.

S3 objects hold SOPS-encrypted files, which ESO cannot decrypt: no manifest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .. import errors
from ..errors import SopsError

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from ..tree import TreeValue
    from .publish import Entry, Json

API_VERSION = "external-secrets.io/v1"
#: Where a SecretStore for Vault expects the token (a Secret in the same namespace).
VAULT_TOKEN_SECRET = {"name": "vault-token", "key": "token"}
REFRESH_INTERVAL = "1h"

_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_GJSON_SPECIAL = re.compile(r"([.*?|#@\\!=<>%])")


@dataclass
class Manifest:
    """The manifests for one source file."""

    source: str
    filename: str
    documents: list[dict[str, TreeValue]]

    def render(self) -> bytes:
        import yaml

        return "---\n".join(yaml.safe_dump(doc, sort_keys=False) for doc in self.documents).encode()


@dataclass
class _Item:
    secret_key: str
    path: list[str]  # the top-level key, then (Secret manifests) the key inside data/stringData
    base64: bool


def gjson_path(parts: list[str]) -> str:
    """A gjson path (what ESO's ``property`` is) selecting ``parts`` literally."""
    return ".".join(_GJSON_SPECIAL.sub(r"\\\1", part) for part in parts)


def _kubernetes_secret(data: dict[str, Json]) -> tuple[str, str, str, list[_Item]] | None:
    """(name, namespace, type, items) when the file is a v1 Secret manifest."""
    meta = data.get("metadata")
    if data.get("apiVersion") != "v1" or data.get("kind") != "Secret" or not isinstance(meta, dict):
        return None
    name, namespace = meta.get("name"), meta.get("namespace") or ""
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    items: dict[str, _Item] = {}
    for field, base64 in (("data", True), ("stringData", False)):
        block = data.get(field)
        if isinstance(block, dict):
            for key in block:
                # Kubernetes merges stringData over data: the same key wins from stringData.
                items[key] = _Item(key, [field, key], base64)
    kind = data.get("type")
    return name, namespace, kind if isinstance(kind, str) else "", list(items.values())


def _name_from_path(relative: str) -> str:
    stem = relative.rsplit(".", 1)[0] if "." in relative.rsplit("/", 1)[-1] else relative
    name = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:253].strip("-")
    return name or "secret"


def _store(entry: Entry) -> tuple[str, dict[str, TreeValue]] | None:
    """(kind label, SecretStore provider) for the entry's destination; None for S3."""
    from .publish import VaultKV
    from .publish_aws import SecretsManager, SsmParameters

    dest = entry.destination
    if isinstance(dest, VaultKV):
        return "vault", {"vault": {
            "server": dest._address(),
            "path": dest.mount.rstrip("/"),
            "version": f"v{dest.version}",
            "auth": {"tokenSecretRef": dict(VAULT_TOKEN_SECRET)},
        }}
    if isinstance(dest, (SecretsManager, SsmParameters)):
        region = dest.region or str(dest.client().meta.region_name or "")
        if not region:
            raise SopsError(errors.GENERIC, "cannot write the SecretStore: no AWS region (set `region` in "
                                            ".sopsflow.yaml or the SDK's region)")
        # No auth block: the operator's own AWS credentials (its service account's role).
        service = "SecretsManager" if isinstance(dest, SecretsManager) else "ParameterStore"
        return service.lower(), {"aws": {"service": service, "region": region}}
    return None


def _remote_ref(entry: Entry, item: _Item) -> dict[str, str]:
    from .publish import VaultKV

    dest = entry.destination
    top, inner = item.path[0], item.path[1:]
    if isinstance(dest, VaultKV):
        return {"key": dest.path + entry.name, "property": gjson_path(item.path)}
    assert dest is not None and hasattr(dest, "per_key")
    if not dest.per_key:
        return {"key": entry.name, "property": gjson_path(item.path)}
    ref = {"key": entry.name.replace("{key}", top)}  # as the per-key write names it
    if inner:
        ref["property"] = gjson_path(inner)
    return ref


def build(entry: Entry, relative: str) -> Manifest | None:
    """The manifests for one published entry; None when ESO cannot read its store."""
    store = _store(entry)
    if store is None:
        return None
    label, provider = store
    secret = _kubernetes_secret(entry.data)
    if secret is not None:
        name, namespace, kind, items = secret
    else:
        name, namespace, kind = _name_from_path(relative), "", ""
        items = []
        taken: set[str] = set()
        for key in entry.data:
            secret_key = key if _SECRET_KEY.match(key) else re.sub(r"[^-._a-zA-Z0-9]", "_", key)
            if secret_key in taken:
                raise SopsError(errors.GENERIC, f"{relative}: keys {key!r} and another one map to the same "
                                                f"Secret key {secret_key!r}")
            taken.add(secret_key)
            items.append(_Item(secret_key, [key], False))
    if not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        raise SopsError(errors.GENERIC, f"{relative}: {name!r} is not a valid Kubernetes Secret name")
    digest = hashlib.sha256(json.dumps(provider, sort_keys=True).encode()).hexdigest()[:8]
    store_name = f"sopsflow-{label}-{digest}"
    meta: dict[str, str] = {"name": store_name}
    if namespace:
        meta["namespace"] = namespace
    secret_store = {"apiVersion": API_VERSION, "kind": "SecretStore", "metadata": meta, "spec": {"provider": provider}}
    data = []
    for item in items:
        ref = _remote_ref(entry, item)
        if item.base64:
            ref["decodingStrategy"] = "Base64"
        data.append({"secretKey": item.secret_key, "remoteRef": ref})
    target: dict[str, TreeValue] = {"name": name, "creationPolicy": "Owner"}
    if kind:
        target["template"] = {"type": kind}
    es_meta = {"name": name, **({"namespace": namespace} if namespace else {}),
               "annotations": {"sopsflow/source": relative}}
    external = {"apiVersion": API_VERSION, "kind": "ExternalSecret", "metadata": es_meta, "spec": {
        "refreshInterval": REFRESH_INTERVAL,
        "secretStoreRef": {"name": store_name, "kind": "SecretStore"},
        "target": target,
        "data": data,
    }}
    filename = f"{namespace}-{name}.yaml" if namespace else f"{name}.yaml"
    return Manifest(relative, filename, [secret_store, external])


def manifests(entries: list[Entry], relative: dict[str, str]) -> tuple[list[Manifest], list[tuple[str, str]]]:
    """One set per source file, from its first destination ESO can read
    (`.sops.yaml`'s Vault rule, then Secrets Manager, then SSM). Returns the
    manifests and (source, reason) for files that get none."""
    from .publish import FAILED

    out: list[Manifest] = []
    skipped: list[tuple[str, str]] = []
    by_name: dict[str, str] = {}
    sources = list(dict.fromkeys(e.source for e in entries))
    for source in sources:
        candidates = [e for e in entries if e.source == source and e.status != FAILED and e.destination is not None]
        manifest = None
        try:
            for entry in candidates:
                manifest = build(entry, relative.get(source, source))
                if manifest is not None:
                    break
        except SopsError as exc:
            skipped.append((source, exc.message))
            continue
        if manifest is None:
            if not candidates:
                skipped.append((source, "not published"))
            else:
                skipped.append((source, "its store (S3) holds encrypted files, which ESO cannot read"))
            continue
        if manifest.filename in by_name:
            skipped.append((source, f"{manifest.filename} is already written for {by_name[manifest.filename]}"))
            continue
        by_name[manifest.filename] = source
        out.append(manifest)
    return out, skipped


def write(directory: Path, items: list[Manifest]) -> list[Path]:
    """Write each manifest file atomically; one whose content is already there
    is left alone. Returns the files written."""
    from ..fileio import atomic_write

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SopsError(errors.COULD_NOT_WRITE_OUTPUT_FILE,
                        f"cannot create {directory}: {(exc.strerror or 'error').lower()}") from None
    written: list[Path] = []
    for item in items:
        path = directory / item.filename
        body = item.render()
        try:
            if path.is_file() and path.read_bytes() == body:
                continue
        except OSError:
            pass
        # Manifests hold no values: a normal file mode, as for any manifest in the repository.
        atomic_write(path, body, 0o644)
        written.append(path)
    return written
