"""Publishing decrypted SOPS files to secret stores, planned before any write.

sops-compatible part: ``destination_rules`` in `.sops.yaml` pick, per file,
a Vault/OpenBao KV destination; the secret there holds the file's decrypted
top-level keys, exactly as ``sops publish`` sends them (nested mappings as
JSON objects, lists as arrays).

Deliberate differences from sops: every target is read first and compared
with what would be sent, so an unchanged secret is never written again (no
new KV v2 version); the plan lists, per destination, what would be created,
updated (key names only) or left alone; and one failing target does not stop
the others - each gets its own line in the report.

Plaintext stays in memory: nothing here writes a file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from .. import errors
from ..errors import SopsError
from ..logs import logger
from ..tree import Comment, Time, TreeMap

if TYPE_CHECKING:
    from ..config.rules import Config, DestinationRule
    from ..operations import Decrypted
    from ..stores import Store
    from ..tree import TreeValue
    from .publish_aws import AwsRule, S3Object

#: A JSON value as a store holds it.
Json: TypeAlias = None | bool | int | float | str | list["Json"] | dict[str, "Json"]

CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"
FAILED = "failed"
#: An S3 object the publisher's keys cannot decrypt: written only with --force.
UNKNOWN = "unknown"


class DestinationError(Exception):
    """A store could not be read or written; the message names no secret value."""


class Destination(Protocol):
    def label(self) -> str:
        """Where the destination is, for the report (no credentials)."""

    def target(self, name: str) -> str:
        """The store path one file's secret is written to."""

    def read(self, name: str, keys: list[str], like: dict[str, Json]) -> dict[str, Json] | None:
        """The values stored for ``name`` (per-key stores: for ``keys``, decoded
        like the values in ``like``); None when nothing is stored."""

    def write(self, name: str, data: dict[str, Json], keys: list[str], tags: dict[str, str],
              exists: set[str] | None) -> None:
        """Store ``data``; per-key stores write only ``keys``. ``exists``: the
        keys already stored, None when nothing is stored for ``name``."""


# --- what sops sends ----------------------------------------------------------------


def emit_as_map(branches: Iterable[TreeMap]) -> dict[str, Json]:
    """The decrypted document as sops' ``EmitAsMap`` builds it: the keys of
    every branch (a later YAML document wins), comments dropped, nested
    mappings as objects."""
    data: dict[str, Json] = {}
    for branch in branches:
        for entry in branch:
            if type(entry) is Comment:
                continue
            key, value = entry
            data[str(key)] = _map_value(value)
    return data


def _map_value(node: TreeValue) -> Json:
    if type(node) is TreeMap:
        return emit_as_map([node])
    return _go_json(node)


def _go_json(node: TreeValue) -> Json:
    """A value as Go's encoding/json writes sops' tree. Inside a list, sops
    keeps its own node types, so a mapping there becomes a list of
    ``{"Key", "Value"}`` items and a comment ``{"Value": text}``; we send
    the same so both tools store the same secret."""
    if type(node) is TreeMap:
        items: list[Json] = []
        for entry in node:
            if type(entry) is Comment:
                items.append({"Key": {"Value": entry.text}, "Value": None})
            else:
                items.append({"Key": _go_json(entry[0]), "Value": _go_json(entry[1])})
        return items
    if type(node) is list:
        return [_go_json(item) for item in node]
    if type(node) is Comment:
        return {"Value": node.text}
    if type(node) is Time:
        return node.text
    if isinstance(node, bool) or node is None or isinstance(node, str):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        if not math.isfinite(node):
            # Go's encoder refuses these too, so sops cannot publish them either.
            raise SopsError(errors.GENERIC, f"json: unsupported value: {_go_nonfinite(node)}")
        # Go writes an integral float below 1e21 without a fraction ("1", not
        # "1.0"), so the store gets a JSON integer.
        if node.is_integer() and abs(node) < 1e21:
            return int(node)
        return node
    return str(node)


def _go_nonfinite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def same_json(a: Json, b: Json) -> bool:
    """Equality that tells ``1`` from ``1.0`` and ``true`` from ``1``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# --- Vault / OpenBao KV ---------------------------------------------------------------


def _default_vault_address() -> str:
    # The Vault API client's default: VAULT_ADDR, else the local dev address.
    return os.environ.get("VAULT_ADDR") or "https://127.0.0.1:8200"


@dataclass
class VaultKV:
    """A KV v1 or v2 destination, normalised as sops does: the path and mount
    end with "/", the mount defaults to ``secret/``, any version but 1 is 2."""

    address: str
    path: str
    mount: str = "secret/"
    version: int = 2
    _client: Any = field(default=None, repr=False)

    @classmethod
    def from_rule(cls, address: str, path: str, mount: str, version: int) -> VaultKV:
        if not path.endswith("/"):
            path += "/"
        mount = mount or "secret/"
        if not mount.endswith("/"):
            mount += "/"
        return cls(address, path, mount, version if version in (1, 2) else 2)

    def _address(self) -> str:
        return self.address or _default_vault_address()

    def label(self) -> str:
        return f"vault {self._address()}/v1/{self.target('')}"

    def target(self, name: str) -> str:
        if self.version == 1:
            return f"{self.mount}{self.path}{name}"
        return f"{self.mount}data/{self.path}{name}"

    def client(self) -> Any:
        if self._client is None:
            from ..keys.hcvault import _client

            self._client = _client(self._address())
        return self._client

    def read(self, name: str, keys: list[str], like: dict[str, Json]) -> dict[str, Json] | None:
        import hvac.exceptions

        try:
            response = self.client().adapter.get(f"/v1/{self.target(name)}")
        except hvac.exceptions.InvalidPath:
            return None  # no secret, or (KV v2) its latest version is deleted
        except Exception as exc:
            raise DestinationError(f"cannot read {self.target(name)}: {_reason(exc)}") from None
        data = response.get("data") if isinstance(response, dict) else None
        if self.version == 2 and isinstance(data, dict):
            data = data.get("data")
        return data if isinstance(data, dict) else None

    def write(self, name: str, data: dict[str, Json], keys: list[str], tags: dict[str, str],
              exists: set[str] | None) -> None:
        # Vault KV holds no tags: the whole secret is written, as sops does.
        payload: dict[str, Json] = dict(data) if self.version == 1 else {"data": data}
        try:
            self.client().adapter.post(f"/v1/{self.target(name)}", json=payload)
        except Exception as exc:
            raise DestinationError(f"cannot write {self.target(name)}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    # hvac and requests errors carry the URL and the server's error text; the
    # request body (the secret) is never part of them.
    text = str(exc).strip().splitlines()
    return (text[0] if text else "") or type(exc).__name__


# --- rules and names ------------------------------------------------------------------


def match_destination(config: Config, file_path: str) -> DestinationRule:
    for rule in config.destination_rules:
        if rule.matches(file_path):
            return rule
    raise SopsError(errors.GENERIC, "error loading config: no matching destination found in config")


def destination_for(rule: DestinationRule) -> Destination:
    chosen = [name for name, value in (("s3", rule.s3_bucket), ("gcs", rule.gcs_bucket), ("vault", rule.vault_path))
              if value]
    if len(chosen) > 1:
        raise SopsError(errors.GENERIC, "error loading config: more than one destinations were found in a single "
                                        "destination rule, you can only use one per rule")
    if not chosen:
        raise SopsError(errors.GENERIC, "no destination configured for this file")
    if chosen[0] == "gcs":
        raise SopsError(errors.GENERIC, "gcs_bucket destinations are not supported by sopsflow publish; "
                                        "use sops publish for them")
    if chosen[0] == "s3":
        from .publish_aws import S3Object

        return S3Object(rule.s3_bucket, rule.s3_prefix, rule.recreation_rule)
    return VaultKV.from_rule(rule.vault_address, rule.vault_path, rule.vault_kv_mount_name, rule.vault_kv_version)


def go_ext(path: str) -> str:
    """Go's ``filepath.Ext``: from the last dot of the last element (".env" included)."""
    for i in range(len(path) - 1, -1, -1):
        if path[i] == "/":
            break
        if path[i] == ".":
            return path[i:]
    return ""


def destination_name(file_path: str, *, recursive: bool, omit_extensions: bool) -> str:
    """The secret's name under the destination path, as sops computes it:
    the file's base name, or with ``--recursive`` the path as walked (sops
    takes it relative to an empty root, so an absolute one is refused)."""
    from ..config.discovery import go_abs, go_clean

    absolute = go_abs(file_path)
    if recursive:
        if file_path.startswith("/"):
            raise SopsError(errors.GENERIC, f"Rel: can't make {file_path} relative to ")
        name = go_clean(file_path)
    else:
        name = absolute.rsplit("/", 1)[-1]
    ext = go_ext(absolute)
    if omit_extensions and ext and name.endswith(ext):
        name = name[: -len(ext)]
    return name


def walk(root: str) -> list[str]:
    """Go's ``filepath.Walk`` order: names sorted per directory, symlinks not
    followed (a link is published as a file), joined with "/"."""
    from ..config.discovery import go_clean

    root = go_clean(root)
    if not os.path.isdir(root) or os.path.islink(root):
        return [root]
    out: list[str] = []
    for name in sorted(os.listdir(root)):
        child = go_clean(root + "/" + name)  # Go's filepath.Join
        if os.path.isdir(child) and not os.path.islink(child):
            out.extend(walk(child))
        else:
            out.append(child)
    return out


# --- the plan -------------------------------------------------------------------------


@dataclass
class Entry:
    """One file's secret at one destination."""

    source: str
    destination: Destination | None
    name: str = ""
    data: dict[str, Json] = field(default_factory=dict, repr=False)
    status: str = FAILED
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    error: SopsError | None = None
    written: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    stored: set[str] = field(default_factory=set)
    #: The decrypted file, for destinations that store it encrypted (S3).
    document: Source | None = field(default=None, repr=False)
    #: What changed besides key values ("recipients", "layout"), for the report.
    note: str = ""

    def where(self) -> str:
        return self.destination.target(self.name) if self.destination is not None else ""

    def key_summary(self) -> str:
        parts = [f"+{k}" for k in self.added] + [f"~{k}" for k in self.changed] + [f"-{k}" for k in self.removed]
        if self.note:
            parts.append(self.note)
        return " ".join(parts)


@dataclass
class Source:
    """One decrypted SOPS file, kept in memory only."""

    path: str
    raw: bytes = field(repr=False)
    store: Store = field(repr=False)
    doc: Decrypted = field(repr=False)


@dataclass
class Plan:
    entries: list[Entry]
    #: Overwrite objects the publisher's keys cannot decrypt (status UNKNOWN).
    force: bool = False

    @property
    def changes(self) -> list[Entry]:
        wanted = (CREATE, UPDATE, UNKNOWN) if self.force else (CREATE, UPDATE)
        return [e for e in self.entries if e.status in wanted]

    @property
    def unknown(self) -> list[Entry]:
        return [e for e in self.entries if e.status == UNKNOWN and not e.written]

    @property
    def failures(self) -> list[Entry]:
        return [e for e in self.entries if e.status == FAILED]

    def exit_code(self) -> int:
        if self.failures:
            first = self.failures[0].error
            return first.code if first is not None and first.code else errors.GENERIC
        if self.unknown:
            return errors.GENERIC  # not done: the object may hold anything
        return 0

    def report(self, *, applied: bool) -> list[str]:
        """Lines grouped by destination; key names only, never values."""
        groups: dict[str, list[Entry]] = {}
        for entry in self.entries:
            label = entry.destination.label() if entry.destination is not None else "(no destination)"
            groups.setdefault(label, []).append(entry)
        done = {CREATE: "created", UPDATE: "updated", UNCHANGED: "unchanged", FAILED: "failed",
                UNKNOWN: "replaced"}
        lines: list[str] = []
        for label, entries in groups.items():
            lines.append(label)
            for e in entries:
                status = done[e.status] if applied and (e.written or e.status != UNKNOWN) else e.status
                if e.status == FAILED:
                    message = e.error.message if e.error is not None else "failed"
                    lines.append(f"  {status:<9} {e.source}: {message}")
                    continue
                line = f"  {status:<9} {e.where()} <- {e.source}"
                if e.status in (CREATE, UPDATE) and e.key_summary():
                    line += f"  ({e.key_summary()})"
                if e.status == UNKNOWN and not e.written:
                    line += "  (your keys cannot decrypt the stored object; --force overwrites it)"
                lines.append(line)
        return lines


def _diff(entry: Entry, stored: dict[str, Json] | None) -> None:
    entry.stored = set(stored or ())
    if stored is None:
        entry.status = CREATE
        entry.added = sorted(entry.data)
        return
    entry.added = sorted(k for k in entry.data if k not in stored)
    entry.removed = sorted(k for k in stored if k not in entry.data)
    entry.changed = sorted(k for k in entry.data if k in stored and not same_json(entry.data[k], stored[k]))
    entry.status = UPDATE if entry.added or entry.removed or entry.changed else UNCHANGED


def _decrypt(path: str, decryption_order: list[str] | None) -> Source:
    from ..operations import decrypt_document
    from ..stores import store_for_path

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE,
                        f"Error reading file: open {path}: {(exc.strerror or 'cannot read').lower()}") from None
    store = store_for_path(path, None)
    doc = decrypt_document(store, data, decryption_order=decryption_order, check_version=True)
    return Source(path, data, store, doc)


def _plan_s3(entry: Entry, dest: S3Object, source: Source, decryption_order: list[str] | None) -> None:
    """Compare the stored object with the file as a tree: the object is
    decrypted with the publisher's keys (a re-encrypted object differs in
    every byte on every run, so bytes cannot be compared). Unchanged means the
    same plaintext document and the same recipients."""
    from ..operations import decrypt_document

    entry.document = source
    stored = dest.get(entry.name)
    if stored is None:
        _diff(entry, None)
        return
    if stored == source.raw and not dest.key_specs():
        entry.status = UNCHANGED
        return
    try:
        theirs = decrypt_document(source.store, stored, decryption_order=decryption_order)
    except Exception:  # noqa: BLE001 - whatever it holds, we cannot read it: "unknown", never a traceback
        entry.status = UNKNOWN
        return
    try:
        _diff(entry, emit_as_map(theirs.branches))
    except SopsError:
        # The stored document holds a value JSON cannot carry (NaN, infinity)
        # and the file does not: it differs, though no key can be named.
        entry.status, entry.note = UPDATE, "layout"
        return
    from .publish_aws import recipients

    if entry.status == UNCHANGED:
        if recipients(theirs.metadata) != dest.expected_recipients(source):
            entry.status, entry.note = UPDATE, "recipients"
        elif source.store.dump_plain(theirs.branches) != source.store.dump_plain(source.doc.branches):
            entry.status, entry.note = UPDATE, "layout"  # comments, order or value types


def make_plan(
    config: Config,
    files: list[str],
    *,
    recursive: bool,
    omit_extensions: bool,
    decryption_order: list[str] | None = None,
    aws_rules: list[AwsRule] | None = None,
    force: bool = False,
) -> Plan:
    """Decrypt each file, find its destinations and compare with what each
    store holds. Nothing is written. A file or destination that fails gets a
    FAILED entry and the others go on.

    Destinations: the first matching ``destination_rules`` entry of
    `.sops.yaml` and the first matching ``publish`` rule of `.sopsflow.yaml`
    (paths relative to the config's directory)."""
    from ..config.discovery import go_abs
    from .publish_aws import render, source_tags

    entries: list[Entry] = []
    vaults: dict[tuple[str, str, str, int], VaultKV] = {}
    for path in files:
        file_entries: list[Entry] = []
        absolute = go_abs(path)
        prefix = str(config.dir).rstrip("/") + "/"
        relative = absolute[len(prefix):] if absolute.startswith(prefix) else ""
        aws = next((r for r in aws_rules or [] if relative and r.matches(relative)), None)
        try:
            rule = match_destination(config, path)
        except SopsError as exc:
            rule = None
            if aws is None:
                entries.append(Entry(path, None, error=exc))
                continue
        if rule is not None:
            entry = Entry(path, None)
            file_entries.append(entry)
            try:
                dest = destination_for(rule)
                if isinstance(dest, VaultKV):
                    # One client per destination, shared by its files.
                    dest = vaults.setdefault((dest.address, dest.path, dest.mount, dest.version), dest)
                entry.destination = dest
                entry.name = destination_name(path, recursive=recursive,
                                              omit_extensions=omit_extensions or rule.omit_extensions)
            except SopsError as exc:
                entry.error = exc
        if aws is not None:
            tags = source_tags(config.dir, relative)
            for aws_dest in aws.destinations:
                file_entries.append(Entry(path, aws_dest, name=render(aws_dest.template, relative), tags=tags))
        entries.extend(file_entries)
        ready = [e for e in file_entries if e.error is None]
        if not ready:
            continue
        try:
            source = _decrypt(path, decryption_order)
            data = emit_as_map(source.doc.branches)
        except SopsError as exc:
            for e in ready:
                e.error = exc
            continue
        for e in ready:
            assert e.destination is not None
            e.data = data
            try:
                if _is_s3(e.destination):
                    _plan_s3(e, e.destination, source, decryption_order)  # type: ignore[arg-type]
                else:
                    _diff(e, e.destination.read(e.name, sorted(data), data))
            except DestinationError as exc:
                e.error = SopsError(errors.GENERIC, str(exc))
            except SopsError as exc:
                e.error = exc
    return Plan(entries, force=force)


def _is_s3(destination: Destination) -> bool:
    from .publish_aws import S3Object

    return isinstance(destination, S3Object)


def apply_plan(plan: Plan) -> None:
    """Write every created or updated secret; a failed write marks its entry
    FAILED and the rest go on. Unchanged secrets are not touched."""
    for entry in plan.changes:
        assert entry.destination is not None
        try:
            if _is_s3(entry.destination):
                assert entry.document is not None
                s3: S3Object = entry.destination  # type: ignore[assignment]
                s3.put(entry.name, s3.payload(entry.document))
            else:
                entry.destination.write(entry.name, entry.data, entry.added + entry.changed, entry.tags,
                                        None if entry.status == CREATE else entry.stored)
            entry.written = True
            logger(__name__).debug("wrote %s", entry.where())
        except DestinationError as exc:
            entry.status = FAILED
            entry.error = SopsError(errors.GENERIC, str(exc))
        except SopsError as exc:  # re-encryption: a recreation_rule key could not wrap the data key
            entry.status = FAILED
            entry.error = exc
