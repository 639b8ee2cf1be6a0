"""The one place that decides whether a file is safe to commit.

:func:`audit_file` classifies the bytes of one file (as staged, committed or
on disk; the caller decides) without any private key:

* **inside a creation rule** (sops' own path matching, :mod:`sopsflow.config`):
  a file whose values the rule selects for encryption must be a well-formed
  SOPS document in the store its name implies: metadata present and loadable,
  at least one key, ``mac`` and ``lastmodified`` present, every ``ENC[...]``
  well-formed, and every value that must be encrypted encrypted - judged per
  value by the rule's selection options *and* the file's recorded ones (a file
  whose recorded options encrypt less than its rule demands is plaintext where
  it matters), across every YAML document. A plaintext file in which the
  rule selects no value (a Deployment under ``path_regex: .*\\.yaml`` with
  ``encrypted_regex: ^(data|stringData)$``) holds nothing to protect and passes;
* **outside the rules**: the detectors of :mod:`sopsflow.gitops.detectors` (private
  keys, age identities, Kubernetes Secrets, dotenv credentials); a SOPS file
  there is fine for a commit (``unmatched-sops-file`` is a warning) but must
  still be consistent with its own recorded options;
* private keys and age identities (also UTF-16 or base64 encoded) and
  provider tokens are looked for in every file, so one pasted into an
  ``_unencrypted`` value of a SOPS file is caught too;
* comments are judged as sops judges them: a plaintext comment the file's
  own options would have encrypted is ``partly-plaintext``, and so is any
  value or comment sops never writes into the ``sops`` block; a file of
  comments only is plaintext at a rule path;
* `.sops.yaml` and `.sopsflow.yaml` are exempt only for the keys they define:
  any other top-level key is data under the rule that matches the file, and
  the detectors run on the whole file. A `.sops.yml` (which sops ignores) is
  an ``ignored-config`` warning.

A recipient recorded in a SOPS file that its rule does not name
(``recipients-outside-rule``) is always an error: whoever holds that key reads
every value, and a hosted merge button or a fast-forward brings such a file
in without any driver or hook. Only ``allow.recipients`` of ``.sopsflow.yaml``
makes a deliberate extra recipient acceptable. Entries of key types the rule
parser does not know (``hckms``, newer types) cannot be judged and are a
warning. Missing recipients and differently arranged key groups
(``stale-recipients``) are an error with ``settings.strict``, else a warning.
Identities are compared as strings from ``CreationRule.key_specs()``; no key
objects are built.

Findings suppressed by the ``allow`` list of ``.sopsflow.yaml`` move to
``FileAudit.allowed`` with the reason, so callers can show them.

Speed: YAML documents are composed with PyYAML's C loader and walked as
nodes (line numbers for free); the full ruamel-based store is only used when
comment-driven selection options need the comments. Other formats use their
stores, which are cheap.
"""

from __future__ import annotations

from pathlib import Path

from ..cipher import parse as parse_enc
from ..engine import Policy
from ..errors import SopsError
from ..keys.registry import RULE_KEY_TYPES
from ..lazyre import compile_lazy
from ..metadata import DEFAULT_UNENCRYPTED_SUFFIX, Metadata, raw_selection
from ..stores import format_for_path, store_for_path
from ..tree import Comment, TreeMap
from . import detectors
from .drift import format_group_diffs, recipient_diff, rule_checked, rule_identities
from .settings import SETTINGS_SECTIONS, AuditSettings

TYPE_CHECKING = False  # neither typing nor dataclasses at run time (hook start-up)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from dataclasses import dataclass, field
    from typing import Any, NamedTuple, TypeAlias

    import yaml

    from ..tree import RawMetadata, TreeValue

    #: A parser frame of :func:`_first_required_plain_yaml`: [is_mapping,
    #: expecting_key, key_or_index, path, parts], updated in place per event.
    _Frame: TypeAlias = list[Any]
else:
    from ..records import NamedTuple, dataclass, field

if TYPE_CHECKING:
    from ..config.rules import Config, CreationRule
    from ..git.snapshot import ConfigRef
    from ..stores import Store

ERROR = "error"
WARNING = "warning"

PLAINTEXT_SECRET = "plaintext-secret"
PARTLY_PLAINTEXT = "partly-plaintext"
BROKEN_SOPS = "broken-sops"
LEAKED_SECRET = "leaked-secret"
STALE_RECIPIENTS = "stale-recipients"
RECIPIENTS_OUTSIDE_RULE = "recipients-outside-rule"
SYMLINK_AT_RULE_PATH = "symlink-at-rule-path"
UNMATCHED_SOPS_FILE = "unmatched-sops-file"
INVALID_CONFIG = "invalid-config"
TEMP_FILE = "sopsflow-temp-file"
IGNORED_CONFIG = "ignored-config"
OLD_FINGERPRINT = "old-fingerprint"

KINDS = (
    PLAINTEXT_SECRET,
    PARTLY_PLAINTEXT,
    BROKEN_SOPS,
    LEAKED_SECRET,
    STALE_RECIPIENTS,
    RECIPIENTS_OUTSIDE_RULE,
    SYMLINK_AT_RULE_PATH,
    UNMATCHED_SOPS_FILE,
    INVALID_CONFIG,
    TEMP_FILE,
    IGNORED_CONFIG,
    OLD_FINGERPRINT,
)

#: Files that configure sops/sopsflow. Only the values under the keys each
#: defines are exempt from the rules; anything else in them is data.
CONFIG_NAMES = (".sops.yaml", ".sopsflow.yaml")
CONFIG_KEYS: dict[str, frozenset[str]] = {
    ".sops.yaml": frozenset({"creation_rules", "destination_rules", "stores"}),
    ".sopsflow.yaml": SETTINGS_SECTIONS,
}
#: Names the tools do not read, that look as if they did (the reader named).
IGNORED_CONFIG_NAMES = {".sops.yml": "sops", ".sopsflow.yml": "sopsflow"}
#: Findings per file for individual plaintext values before they are summed up.
MAX_VALUE_FINDINGS = 10
#: Nodes visited per byte of a YAML file before its aliases count as a bomb
#: (without aliases a node needs at least two bytes).
MAX_YAML_NODES_PER_BYTE = 10
#: The release up to which allow-list entries holding a finding's old
#: (ordinal) fingerprint are still honoured, with a warning naming the new one.
OLD_FINGERPRINTS_UNTIL = "0.4"
#: ``FileAudit.allowed`` reasons of inline markers start with this.
INLINE_REASON = "inline"

_ENC_PREFIX = "ENC[AES256_GCM,data:"


class Finding(NamedTuple):
    kind: str  # one of KINDS (verify adds its own)
    path: str  # repo-relative
    message: str  # one line, never a secret value
    severity: str  # "error" | "warning"
    line: int | None  # 1-based where known
    fix: str | None  # the command that fixes it
    #: stable id for allow-listing (``allow.fingerprints`` in .sopsflow.yaml)
    fingerprint: str = ""


@dataclass
class FileAudit:
    path: str
    #: "encrypted" | "plaintext" | "partial" | "broken" | "not-sops"
    status: str = "not-sops"
    findings: list[Finding] = field(default_factory=list)
    rule: CreationRule | None = None
    metadata: Metadata | None = None
    store_name: str = ""
    #: findings the allow-list (or an inline marker: the reason starts with
    #: INLINE_REASON) suppressed, each with the entry or marker that allowed it
    allowed: list[tuple[Finding, str]] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)


def fingerprint(kind: str, path: str, anchor: str) -> str:
    """16 hex digits naming one finding: its kind, file and a secret-free anchor
    (a key path, a detector id), so it survives edits elsewhere in the file."""
    import hashlib  # only when there is a finding: most hook runs have none

    text = f"{kind}\0{path}\0{anchor}".encode("utf-8", "surrogateescape")
    return hashlib.sha256(text).hexdigest()[:16]


def _q(path: str) -> str:
    import shlex  # only for the text of a fix

    return shlex.quote(path)


def _is_temp_file(rel_path: str) -> bool:
    from ..fileio import is_temp_file

    return is_temp_file(rel_path.rsplit("/", 1)[-1])


def is_config_file(rel_path: str) -> bool:
    return rel_path.rsplit("/", 1)[-1] in CONFIG_NAMES


def config_error_finding(config_rel_path: str, exc: SopsError, checked_path: str | None = None) -> Finding:
    """The ``invalid-config`` finding for a `.sops.yaml` (or `.sopsflow.yaml`)
    that does not load: the hook fails closed on it."""
    message = f"{exc.message}; every file under it is refused until it loads"
    fix = f"sopsflow rules {_q(checked_path)}" if checked_path else f"fix {config_rel_path}"
    import re

    line = re.search(r"\bline (\d+)", exc.message)
    return Finding(INVALID_CONFIG, config_rel_path, message, ERROR, int(line.group(1)) if line else None, fix,
                   fingerprint(INVALID_CONFIG, config_rel_path, ""))


def rule_label(rule: CreationRule) -> str:
    where = f"creation_rules[{rule.index}]"
    return f"{where} (path_regex '{rule.path_regex}')" if rule.path_regex else f"{where} (no path_regex: every file)"


# --- rules and recipients --------------------------------------------------------------


def match_rule(config: Config, file_path: str) -> CreationRule | None:
    """``config.match(file_path)`` (same rules, same errors) without redoing
    the chosen rule's checks for every file."""
    relative = config.relative_path(file_path)
    for rule in config.rules:
        if rule.matches(relative):  # raises for a bad regex, as sops does
            if not rule_checked(rule):
                chosen = config.match(file_path)
                assert chosen is rule
                rule_identities(rule)
            return rule
    return None


# --- documents -------------------------------------------------------------------------


class _Leaf(NamedTuple):
    path: tuple[str, ...]  # mapping keys only: what selection options see
    parts: list[str | int]  # keys and list indices
    kind: str  # "enc" | "null" | "empty" | "plain"
    text: str  # the ENC text for "enc" (never shown), "" otherwise
    line: int | None
    doc: int  # 0-based document index
    stack: tuple[tuple[str, ...], ...] | None  # comment stack when needed

    @property
    def shown(self) -> str:
        """For people: ``data.items[2].password``."""
        text = ""
        for p in self.parts:
            text += f"[{p}]" if isinstance(p, int) else ("." if text else "") + p
        return text or "(document)"

    @property
    def set_path(self) -> str:
        """For ``sopsflow set``: ``["data"]["items"][2]["password"]``."""
        return "".join(f"[{p}]" if isinstance(p, int) else '["' + p.replace('"', '\\"') + '"]' for p in self.parts)


class _CommentLeaf(NamedTuple):
    """A comment of a parsed file: judged as sops judges it, as a value at its
    parent's path (its text is never shown)."""

    path: tuple[str, ...]
    shown: str  # the parent, for people
    text: str
    stack: tuple[tuple[str, ...], ...]  # the comment stack, this comment included
    doc: int
    ordinal: int  # n-th comment of the file: a secret-free anchor

    @property
    def encrypted(self) -> bool:
        """One ENC[] value and nothing else (the INI store joins a run of
        comment lines: a plaintext line after an encrypted one is plaintext)."""
        text = self.text.strip()
        return text.startswith("ENC[AES256_GCM,") and text.endswith("]") and "\n" not in text


class _Doc:
    """A parsed file: its leaves and raw metadata (None without a sops block)."""

    def __init__(self, leaves: list[_Leaf], raw_meta: RawMetadata | None, has_meta: bool, problems: list[tuple[str, int | None]],
                 lines: _LineFinder | None = None, comments: list[_CommentLeaf] | None = None):
        self.leaves = leaves
        #: None when the parser does not see comments (the fast YAML path)
        self.comments = comments
        self.raw_meta = raw_meta
        self.has_meta = has_meta
        #: structural problems sops would refuse (duplicate YAML keys, sops block
        #: outside the first document, ...)
        self.problems = problems
        self._lines = lines

    def line_of(self, leaf: _Leaf) -> int | None:
        """The leaf's line: known for YAML, searched (only when needed) otherwise."""
        if leaf.line is not None or self._lines is None:
            return leaf.line
        return self._lines.find(leaf.path)


class _BrokenConfig(Exception):
    """The matching config could not decide (already reported as invalid-config)."""


class _ParseFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _leaf_kind(value: TreeValue) -> tuple[str, str]:
    if value is None:
        return "null", ""
    if type(value) is str:
        if value == "":
            return "empty", ""
        if value.startswith(_ENC_PREFIX):
            return "enc", value
    return "plain", ""


# YAML through PyYAML nodes -------------------------------------------------------


def _yaml_nodes(data: bytes) -> list[yaml.Node]:
    try:
        return detectors.compose_documents(data)
    except ValueError as exc:
        raise _ParseFailure(str(exc)) from None


def _node_null(node: yaml.Node) -> bool:
    return bool(node.tag == "tag:yaml.org,2002:null")


def _node_python(node: yaml.Node, depth: int = 0) -> TreeValue:
    """Metadata as plain Python, every scalar a string (Metadata.from_dict
    converts): timestamps stay text, as sops reads them."""
    if depth > 50:
        raise _ParseFailure("sops metadata nests too deep")
    cls = type(node).__name__
    if cls == "MappingNode":
        return {str(k.value): _node_python(v, depth + 1) for k, v in node.value if type(k).__name__ == "ScalarNode"}
    if cls == "SequenceNode":
        return [_node_python(v, depth + 1) for v in node.value]
    return None if _node_null(node) else node.value


def _load_yaml_fast(data: bytes) -> _Doc:
    docs = _yaml_nodes(data)
    leaves: list[_Leaf] = []
    problems: list[tuple[str, int | None]] = []
    raw_meta: RawMetadata | None = None
    has_meta = False
    budget = [MAX_YAML_NODES_PER_BYTE * len(data) + 10_000]
    for index, doc in enumerate(docs):
        cls = type(doc).__name__
        if cls == "ScalarNode" and _node_null(doc):
            continue
        if cls != "MappingNode":
            problems.append((f"document {index + 1} is not a mapping", doc.start_mark.line + 1))
            continue
        entries = []
        for key, value in doc.value:
            if type(key).__name__ == "ScalarNode" and key.value == "sops":
                if index == 0:
                    has_meta = True
                    raw_meta = _node_python(value)
                elif not has_meta:
                    problems.append((f"sops metadata only in document {index + 1}: sops reads the first", key.start_mark.line + 1))
                continue
            entries.append((key, value))
        _walk_mapping(entries, (), [], index, leaves, problems, budget)
    return _Doc(leaves, raw_meta, has_meta, problems)


def _walk_mapping(entries: list[tuple[yaml.Node, yaml.Node]], path: tuple[str, ...], shown: list[str | int], doc: int,
                  leaves: list[_Leaf], problems: list[tuple[str, int | None]], budget: list[int]) -> None:
    seen: set[str] = set()
    for key, value in entries:
        name = str(key.value) if type(key).__name__ == "ScalarNode" else "?"
        if name in seen:
            problems.append((f"duplicate key {'.'.join(path + (name,))!r} (sops refuses the file)", key.start_mark.line + 1))
        seen.add(name)
        _walk_node(value, path + (name,), shown + [name], doc, leaves, problems, budget)


def _walk_node(node: yaml.Node, path: tuple[str, ...], shown: list[str | int], doc: int,
               leaves: list[_Leaf], problems: list[tuple[str, int | None]], budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _ParseFailure("too many values (an alias bomb?)")
    cls = type(node).__name__
    if cls == "MappingNode":
        _walk_mapping(node.value, path, shown, doc, leaves, problems, budget)
    elif cls == "SequenceNode":
        for i, item in enumerate(node.value):
            _walk_node(item, path, shown + [i], doc, leaves, problems, budget)
    else:
        if _node_null(node):
            kind, text = "null", ""
        elif node.value == "":
            kind, text = "empty", ""
        elif node.value.startswith(_ENC_PREFIX) and node.tag == "tag:yaml.org,2002:str":
            kind, text = "enc", node.value
        else:
            kind, text = "plain", ""
        leaves.append(_Leaf(path, shown, kind, text, node.start_mark.line + 1, doc, None))


def _first_required_plain_yaml(data: bytes, required: Callable[[tuple[str, ...]], bool]) -> tuple[list[str | int], int] | None:
    """For a YAML file without sops metadata: the first plaintext value whose
    key path ``required(path)`` selects, read as a stream of parser events so
    a multi-megabyte file stops at its first such value. None: no value is
    selected. _ParseFailure for anything unusual (the full walk decides)."""
    import yaml

    loader = detectors.yaml_loader(data)
    # frames: [is_mapping, expecting_key, key_or_index, path, parts]
    frames: list[_Frame] = []
    try:
        while loader.check_event():
            event = loader.get_event()
            kind = type(event)
            if kind in (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentStartEvent, yaml.DocumentEndEvent):
                continue
            if kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
                frames.pop()
                _value_done(frames)
                continue
            if not frames:
                if kind is yaml.MappingStartEvent:
                    frames.append([True, True, None, (), []])
                    continue
                if kind is yaml.ScalarEvent and event.implicit[0] and event.value in detectors.NULLS:
                    continue  # an empty document
                raise _ParseFailure("a document is not a mapping")
            top = frames[-1]
            if top[0] and top[1]:  # a mapping key
                if kind is not yaml.ScalarEvent:
                    raise _ParseFailure("a complex mapping key")
                top[1], top[2] = False, event.value
                continue
            path = top[3] + (str(top[2]),) if top[0] else top[3]
            parts = top[4] + [top[2]]
            if kind is yaml.MappingStartEvent:
                frames.append([True, True, None, path, parts])
            elif kind is yaml.SequenceStartEvent:
                frames.append([False, False, 0, path, parts])
            else:
                plain = kind is yaml.AliasEvent or not (
                    event.value == "" or (event.implicit[0] and event.value in detectors.NULLS))
                if plain and required(path):
                    return parts, event.start_mark.line + 1
                _value_done(frames)
        return None
    except yaml.YAMLError:
        raise _ParseFailure("does not parse as YAML") from None
    finally:
        loader.dispose()


def _value_done(frames: list[_Frame]) -> None:
    if frames:
        top = frames[-1]
        if top[0]:
            top[1] = True
        else:
            top[2] += 1


# Any store through its document tree ------------------------------------------------


def _load_with_store(store: Store, data: bytes, need_stack: bool) -> _Doc:
    try:
        branches, raw = store.load_encrypted(data)
    except SopsError as exc:
        raise _ParseFailure(f"does not load as {store.name}: {exc.message}") from None
    except (RecursionError, ValueError, UnicodeError):
        raise _ParseFailure(f"does not load as {store.name}") from None
    leaves: list[_Leaf] = []
    comments: list[_CommentLeaf] = []
    lines = _LineFinder(data, store.name)
    for index, branch in enumerate(branches):
        _walk_tree(branch, (), [], [] if need_stack else None, index, leaves, comments)
    return _Doc(leaves, raw, raw is not None, [], lines, comments)


def _walk_tree(node: TreeMap | list[TreeValue], path: tuple[str, ...], shown: list[str | int], stack: list[list[str]] | None,
               doc: int, leaves: list[_Leaf], comments: list[_CommentLeaf]) -> None:
    if stack is not None:
        stack = stack + [[]]
    level = stack[-1] if stack is not None else None
    items: list[Any]
    if type(node) is TreeMap:
        items = list(node)
    else:
        items = [(None, v) for v in node]
    for i, entry in enumerate(items):
        text: str | None = None
        if type(entry) is Comment:
            text = entry.text
        else:
            key, value = entry
            if key is None and type(value) is Comment:
                text = value.text
            elif (key is None and type(value) is str and value.startswith(_ENC_PREFIX)
                  and value.rstrip().endswith(",type:comment]")):
                text = value  # an encrypted comment inside a list
        if text is not None:
            if level is not None:
                level.append(text)
            snapshot = tuple(tuple(lv) for lv in stack) if stack is not None else ()
            where = _Leaf(path, shown, "plain", "", None, doc, None).shown
            comments.append(_CommentLeaf(path, where, text, snapshot, doc, len(comments)))
            continue
        child_path = path if key is None else path + (str(key),)
        child_shown = shown + [i if key is None else str(key)]
        if type(value) is TreeMap or type(value) is list:
            _walk_tree(value, child_path, child_shown, stack, doc, leaves, comments)
        else:
            kind, enc_text = _leaf_kind(value)
            snapshot_stack = tuple(tuple(lv) for lv in stack) if stack is not None else None
            leaves.append(_Leaf(child_path, child_shown, kind, enc_text, None, doc, snapshot_stack))
        if level is not None:
            level.clear()


def _may_hold_plain_comments(data: bytes, store_name: str) -> bool:
    """Whether a file can hold a comment that is not ``ENC[...]``: sops writes
    ``#`` (``;`` in INI) only before an encrypted comment, or alone."""
    if store_name in ("json", "binary"):
        return False
    markers = data.count(b"#") + (data.count(b";") if store_name == "ini" else 0)
    return markers > data.count(b"#ENC[AES256_GCM,") + data.count(b"; ENC[AES256_GCM,") + data.count(b"#\n")


def _comment_line(data: bytes, comment: _CommentLeaf) -> int | None:
    """The line of a plaintext comment (best effort: the first line holding its first line)."""
    lines = [t.strip().lstrip("#;").strip() for t in comment.text.split("\n")]
    first = next((t for t in lines if t and not t.startswith("ENC[AES256_GCM,")), None)
    if first is None:
        return None
    for number, raw in enumerate(data.decode("utf-8", "replace").split("\n"), start=1):
        body = raw.strip()
        if body[:1] in ("#", ";") and body.lstrip("#;").strip() == first:
            return number
    return None


def _comments_only(data: bytes, store_name: str) -> bool:
    """A text whose only content is comments (sops cannot encrypt such a YAML
    file, drops them from INI and encrypts them in dotenv)."""
    found = False
    for raw in data.split(b"\n"):
        body = raw.strip()
        if not body or body == b"---":
            continue
        if body[:1] == b"#" or (store_name == "ini" and body[:1] == b";"):
            found = found or bool(body[1:].strip())
            continue
        return False
    return found


class _LineFinder:
    """Best-effort line numbers for formats parsed without positions: the first
    line, after the parent keys' lines, that names the key."""

    def __init__(self, data: bytes, store_name: str) -> None:
        self._lines = data.decode("utf-8", "replace").split("\n") if len(data) < 4_000_000 else []
        self._store = store_name

    def find(self, path: tuple[str, ...]) -> int | None:
        if not self._lines or not path:
            return None
        start = 0
        for key in path:
            found = self._find_key(key, start)
            if found is None:
                return None
            start = found
        return start + 1

    def _find_key(self, key: str, start: int) -> int | None:
        if self._store in ("json", "binary"):
            needle = '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
            hit = lambda line: needle in line  # noqa: E731
        elif self._store == "ini":
            hit = lambda line: line.strip() == f"[{key}]" or line.lstrip().startswith(key)  # noqa: E731
        elif self._store == "dotenv":
            hit = lambda line: line.startswith(key + "=")  # noqa: E731
        else:
            hit = lambda line: line.lstrip(" -").startswith((key + ":", f'"{key}":', f"'{key}':"))  # noqa: E731
        for i in range(start, len(self._lines)):
            if hit(self._lines[i]):
                return i
        return None


# --- the audit -----------------------------------------------------------------------------


#: Policies by selection options, shared across files so their per-path
#: caches (and compiled regexes) are reused.
_POLICIES: dict[tuple[tuple[str, str], ...], Policy] = {}


def _policy(selection: dict[str, str]) -> Policy:
    key = tuple(sorted(selection.items()))
    policy = _POLICIES.get(key)
    if policy is None:
        meta = Metadata()
        meta.set_selection(selection)
        policy = _POLICIES[key] = Policy(meta)
    return policy


class _Policies:
    """What must be encrypted: the file's recorded options and its rule's."""

    def __init__(self, file_meta: Metadata | None, rule: CreationRule | None, store_name: str) -> None:
        self.file = _policy(file_meta.selection()) if file_meta is not None else None
        self.rule = None
        self.rule_selection: dict[str, str] = {}
        if rule is not None:
            # The binary store ignores selection options (sops warns and encrypts everything).
            selection = {} if store_name == "binary" else dict(rule.selection)
            self.rule_selection = selection or {"unencrypted_suffix": "_unencrypted"}
            self.rule = _policy(self.rule_selection)
        self.need_stack = any(p is not None and p.uses_comments for p in (self.file, self.rule))

    def required(self, leaf: _Leaf, policy: Policy | None) -> bool:
        if policy is None:
            return False
        if policy.uses_comments:
            stack = [list(level) for level in (leaf.stack or ())]
            return bool(policy.encrypted(leaf.path, stack, False))
        return bool(policy.path_encrypted(leaf.path))

    @staticmethod
    def comment_required(comment: _CommentLeaf, policy: Policy | None) -> bool:
        """Whether sops would have encrypted this comment (the engine's own
        rule: the comment sits in its stack; an encrypted_comment_regex marker
        stays plain)."""
        if policy is None:
            return False
        if policy.uses_comments:
            return bool(policy.encrypted(comment.path, [list(level) for level in comment.stack], True))
        return bool(policy.path_encrypted(comment.path))


#: Type tags sops 3.11 writes into ENC[] values.
ENC_TYPES = frozenset({"str", "int", "float", "bool", "time", "comment"})
#: Top-level entries of the sops metadata (3.11, plus hckms of 3.12+).
_METADATA_KEYS = frozenset({
    "shamir_threshold", "key_groups", "kms", "gcp_kms", "azure_kv", "hc_vault", "age", "lastmodified", "mac", "pgp",
    "unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex", "unencrypted_comment_regex",
    "encrypted_comment_regex", "mac_only_encrypted", "version", "hckms",
})


#: The fields sops writes for each key type it knows; the entries of other
#: (newer) key types are kept opaque, as every rewrite keeps them.
_KEY_FIELDS: dict[str, frozenset[str]] = {
    "age": frozenset({"recipient", "enc"}),
    "pgp": frozenset({"fp", "created_at", "enc"}),
    "kms": frozenset({"arn", "role", "context", "created_at", "enc", "aws_profile"}),
    "gcp_kms": frozenset({"resource_id", "created_at", "enc"}),
    "azure_kv": frozenset({"vault_url", "name", "version", "created_at", "enc"}),
    "hc_vault": frozenset({"vault_address", "engine_path", "key_name", "created_at", "enc"}),
}


def _hidden_in_metadata(raw: RawMetadata) -> Iterator[str]:
    """Where the sops block holds a value sops never writes there (an unknown
    field, at the top, in a key group or in a key entry)."""
    for name, value in raw.items():
        if name == "key_groups" and isinstance(value, list):
            for i, group in enumerate(value):
                if isinstance(group, dict):
                    yield from _hidden_in_keys(group, f"key_groups[{i}].")
        elif name in _KEY_FIELDS:
            yield from _hidden_in_entries(name, value, "")
        elif name not in _METADATA_KEYS and not _blank(value) and not _opaque_key_list(value):
            yield name


def _hidden_in_keys(group: RawMetadata, prefix: str) -> Iterator[str]:
    for name, value in group.items():
        if name in _KEY_FIELDS:
            yield from _hidden_in_entries(name, value, prefix)
        elif not _blank(value) and not _opaque_key_list(value):
            yield prefix + name


def _hidden_in_entries(name: str, entries: TreeValue, prefix: str) -> Iterator[str]:
    if not isinstance(entries, list):
        return
    for i, entry in enumerate(entries):
        if isinstance(entry, dict):
            for field_name, value in entry.items():
                if field_name not in _KEY_FIELDS[name] and not _blank(value):
                    yield f"{prefix}{name}[{i}].{field_name}"


def _opaque_key_list(value: TreeValue) -> bool:
    """A list of entries with an ``enc``: a key type of a newer sops, kept as it is."""
    return isinstance(value, list) and bool(value) and all(isinstance(e, dict) and "enc" in e for e in value)


def _blank(value: TreeValue) -> bool:
    if isinstance(value, dict):
        return all(_blank(v) for v in value.values())
    if isinstance(value, list):
        return all(_blank(v) for v in value)
    return value is None or value == ""


def enc_problem(text: str) -> str:
    """Why an ENC[] string cannot be decrypted by sops ("" when well-formed)."""
    try:
        _ct, iv, tag, type_tag = parse_enc(text)
    except SopsError:
        return "not sops' data format or bad base64"
    if not iv:
        return "empty iv"
    if len(tag) != 16:
        return "the tag is not 16 bytes"
    if type_tag not in ENC_TYPES:
        return f"unknown type {type_tag!r}"
    return ""


def _sops_markers(data: bytes) -> bool:
    """Traces of a SOPS document, so a file that fails to load is reported as a
    broken SOPS file rather than as plaintext."""
    return b"ENC[AES256_GCM," in data or (b"sops" in data and b"lastmodified" in data)


def _options_text(selection: dict[str, str] | None) -> str:
    return ", ".join(f"{k} '{v}'" for k, v in (selection or {}).items()) or "none"


class _Auditor:
    def __init__(self, rel_path: str, data: bytes, config: Config | None, settings: AuditSettings,
                 is_symlink: bool, repo_root: Path | None) -> None:
        self.path = rel_path
        self.data = data
        self.config = config
        self.settings = settings
        self.is_symlink = is_symlink
        self.repo_root = repo_root
        self.result = FileAudit(rel_path)
        self._value_findings = 0
        self._extra_values = 0
        self._extra_kind = PARTLY_PLAINTEXT
        #: fingerprint -> the fingerprint older versions gave the same finding
        self._old_fingerprints: dict[str, str] = {}

    # -- findings ----------------------------------------------------------------

    def add(self, kind: str, message: str, *, severity: str = ERROR, line: int | None = None,
            fix: str | None = None, anchor: str = "") -> None:
        self.result.findings.append(
            Finding(kind, self.path, message, severity, line, fix, fingerprint(kind, self.path, anchor))
        )

    def add_value(self, kind: str, doc: _Doc, leaf: _Leaf, message: str, fix: str) -> None:
        if self._value_findings >= MAX_VALUE_FINDINGS:
            if not self._extra_values:
                self._extra_kind = kind
            self._extra_values += 1
            return
        self._value_findings += 1
        self.add(kind, message, line=doc.line_of(leaf), fix=fix, anchor=f"{leaf.doc}:{leaf.shown}")

    # -- steps ---------------------------------------------------------------------

    def run(self) -> FileAudit:
        self.result.store_name = format_for_path(self.path)
        if _is_temp_file(self.path):
            # Whatever it holds (a killed `decrypt -i` leaves plaintext in one),
            # it is a write in progress, never something to commit: not allow-listable.
            self.add(TEMP_FILE, "sopsflow temp file (an interrupted write; may hold plaintext)",
                     fix=f"git rm --cached {_q(self.path)}, delete it and add '*.sopsflow-tmp' to .gitignore")
            return self.result
        try:
            self._judge()
        except _BrokenConfig:
            return self.result  # invalid-config: never allow-listed
        if self._extra_values:
            self.add(self._extra_kind, f"{self._extra_values} more value(s) like the above not listed", anchor="more")
        self._apply_allow_list()
        return self.result

    def _judge(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        if name in IGNORED_CONFIG_NAMES:
            self.add(IGNORED_CONFIG, f"{IGNORED_CONFIG_NAMES[name]} reads only {name.replace('.yml', '.yaml')}: "
                     "this file is ignored", severity=WARNING,
                     fix=f"git mv {_q(self.path)} {_q(self.path[: -len('.yml')] + '.yaml')}", anchor="name")
        if is_config_file(self.path) and self._config_file(name):
            return
        rule = self.result.rule = self._match()
        if self.is_symlink:
            if rule is not None:
                self.result.status = "plaintext"
                self.add(SYMLINK_AT_RULE_PATH,
                         f"symbolic link where {rule_label(rule)} requires an encrypted file "
                         "(git commits the link, not an encrypted document)",
                         fix=f"git rm --cached {_q(self.path)} and commit the encrypted file itself")
        elif rule is not None:
            self._inside_rule(rule)
        else:
            self._outside_rules()

    # -- config files ----------------------------------------------------------------

    def _config_file(self, name: str) -> bool:
        """A `.sops.yaml` or `.sopsflow.yaml`: the values under the keys it
        defines configure and are exempt; any other top-level key is data,
        judged under the rule that matches the file; the detectors run on the
        whole file. False when it is no YAML mapping (then it is judged as
        any other file: a broken name is no exemption)."""
        if self.is_symlink:
            return True  # sops follows the link to a config; the link itself holds no data
        try:
            docs = [d for d in detectors.compose_documents(self.data)
                    if not (type(d).__name__ == "ScalarNode" and _node_null(d))]
        except ValueError:
            return False
        if len(docs) > 1 or (docs and type(docs[0]).__name__ != "MappingNode"):
            return False
        defined = CONFIG_KEYS[name]
        extra = [(k, v) for k, v in (docs[0].value if docs else [])
                 if not (type(k).__name__ == "ScalarNode" and k.value in defined)]
        if extra:
            rule = self.result.rule = self._match()
            if rule is not None and not self.is_symlink:
                leaves: list[_Leaf] = []
                budget = [MAX_YAML_NODES_PER_BYTE * len(self.data) + 10_000]
                try:
                    _walk_mapping(extra, (), [], 0, leaves, [], budget)
                except _ParseFailure:
                    leaves = [_Leaf(("?",), ["?"], "plain", "", None, 0, None)]
                policy = _Policies(None, rule, self.result.store_name).rule
                first = next((leaf for leaf in leaves if leaf.kind == "plain"
                              and (policy is None or policy.path_encrypted(leaf.path))), None)
                if first is not None:
                    self.result.status = "plaintext"
                    self.add(PLAINTEXT_SECRET, f"{first.shown!r} is not a key {name} defines, so it is data, in "
                             f"plaintext where {rule_label(rule)} requires it encrypted",
                             line=first.line, fix=f"move it out of {_q(self.path)} into an encrypted file",
                             anchor=f"config-data:{first.shown}")
        self._detect("in plaintext")
        return True

    # -- comments ----------------------------------------------------------------------

    def _with_comments(self, doc: _Doc, need_stack: bool) -> _Doc:
        """``doc`` with its comments (the fast YAML path has none; parsed
        again only when the text can hold a plaintext comment)."""
        if doc.comments is not None or not _may_hold_plain_comments(self.data, self.result.store_name):
            return doc
        try:
            full = _load_with_store(store_for_path(self.path), self.data, need_stack)
        except _ParseFailure:
            return doc
        full.problems = doc.problems
        return full

    def _judge_comments(self, doc: _Doc, policies: _Policies) -> None:
        """A plaintext comment where the file's own options encrypt comments
        (sops encrypts every comment its options select, so this one was
        added by hand: ``# old password was hunter2``)."""
        if policies.file is None or self.result.store_name == "binary":
            return
        for comment in doc.comments or ():
            if comment.encrypted or not comment.text.strip():
                continue  # sops leaves an empty comment as it is
            if policies.comment_required(comment, policies.file):
                self._add_comment(comment, f"plaintext comment in {comment.shown!r} where the file's own options "
                                  "encrypt comments (hand-added to an encrypted file?)")

    def _metadata_comments(self) -> None:
        """A comment inside the YAML ``sops:`` block: metadata is never encrypted."""
        if self.result.store_name != "yaml" or not _may_hold_plain_comments(self.data, "yaml"):
            return
        from ..stores.yaml.store import metadata_comments

        if any(text.strip() for text in metadata_comments(self.data)):
            self.add(PARTLY_PLAINTEXT, "plaintext comment inside the sops metadata, which is never encrypted",
                     fix=f"remove it from {_q(self.path)}", anchor="metadata:comment")

    def _add_comment(self, comment: _CommentLeaf, message: str) -> None:
        if self._value_findings >= MAX_VALUE_FINDINGS:
            self._extra_values += 1
            return
        self._value_findings += 1
        self.add(PARTLY_PLAINTEXT, message, line=_comment_line(self.data, comment),
                 fix=f"remove it, then re-add it with: sopsflow edit {_q(self.path)}",
                 anchor=f"comment:{comment.doc}:{comment.ordinal}")

    def _comments_at_rule(self, rule: CreationRule, policies: _Policies, doc: _Doc | None) -> bool:
        """For a plaintext file in which the rule selects no value: refuse it
        when it holds only comments, or a comment the rule would encrypt."""
        store_name = self.result.store_name
        if store_name in ("json", "binary") or not self.data.strip():
            return False
        if _comments_only(self.data, store_name):
            self.result.status = "plaintext"
            self.add(PLAINTEXT_SECRET, f"not encrypted: the file holds only comments, in plaintext, and "
                     f"{rule_label(rule)} requires it encrypted", fix=f"sopsflow encrypt -i {_q(self.path)}")
            return True
        if doc is None or doc.comments is None:
            if not _may_hold_plain_comments(self.data, store_name):
                return False
            try:
                doc = _load_with_store(store_for_path(self.path), self.data, policies.need_stack)
            except _ParseFailure:
                return False
        first = next((c for c in doc.comments or () if not c.encrypted and c.text.strip()
                      and policies.comment_required(c, policies.rule)), None)
        if first is None:
            return False
        self.result.status = "plaintext"
        self.add(PLAINTEXT_SECRET, f"not encrypted: {rule_label(rule)} requires it encrypted (a plaintext "
                 f"comment in {first.shown!r})", line=_comment_line(self.data, first),
                 fix=f"sopsflow encrypt -i {_q(self.path)}")
        return True

    def _accidental_note(self, rule: CreationRule) -> str:
        """A note when the rule's regex matches only part of a word of the file
        name (``.*\\.env`` matching ``.envrc``): an unanchored regex that most
        likely was not meant for this file. Empty otherwise."""
        if self.config is None or not rule.path_regex:
            return ""
        base = self.repo_root if self.repo_root is not None else self.config.dir
        subject = self.config.relative_path(f"{base}/{self.path}")
        try:
            found = rule.search(subject)
        except SopsError:
            return ""
        if found is None:
            return ""
        end = found[1]
        if not 0 < end < len(subject) or "/" in subject[end:]:
            return ""
        if not (subject[end - 1].isalnum() and subject[end].isalnum()):
            return ""
        name = subject.rsplit("/", 1)[-1]
        return (f" (the rule matches only {found[2].rsplit('/', 1)[-1]!r} of the name {name!r}: an unanchored "
                "path_regex that may match by accident; end it with $ if this file is not meant)")

    def _match(self) -> CreationRule | None:
        config = self.config
        if config is None or not config.has_creation_rules:
            return None
        base = self.repo_root if self.repo_root is not None else config.dir
        try:
            return match_rule(config, f"{base}/{self.path}")
        except SopsError as exc:
            rel = config.path.name
            try:
                rel = config.path.relative_to(base).as_posix()
            except ValueError:
                pass
            self.result.status = "broken"
            self.result.findings.append(config_error_finding(rel, exc, self.path))
            raise _BrokenConfig from None

    def _parse(self, policies: _Policies | None) -> _Doc:
        store_name = self.result.store_name
        need_stack = policies.need_stack if policies is not None else False
        if store_name == "yaml" and not need_stack:
            try:
                return _load_yaml_fast(self.data)
            except _ParseFailure:
                pass  # the real store decides (and words the error)
        return _load_with_store(store_for_path(self.path), self.data, need_stack)

    def _metadata(self, doc: _Doc) -> Metadata | None:
        """Load the recorded metadata; broken-sops findings for what sops would refuse."""
        fix = f"sopsflow encrypt -i {_q(self.path)} (re-create it from the plaintext)"
        if isinstance(doc.raw_meta, dict):
            # metadata is never encrypted: a value hidden here, at any depth, is plaintext
            for name in _hidden_in_metadata(doc.raw_meta):
                self.add(PARTLY_PLAINTEXT, f"unexpected entry {name!r} in the sops metadata, which is never "
                         "encrypted", fix=f"remove it from {_q(self.path)}", anchor=f"metadata:{name}")
        try:
            meta = Metadata.from_dict(doc.raw_meta)
        except SopsError as exc:
            self.add(BROKEN_SOPS, f"SOPS metadata does not load: {exc.message}", fix=fix, anchor="metadata")
            return None
        if not meta.mac:
            self.add(BROKEN_SOPS, "SOPS metadata has no mac: sops refuses to decrypt it", fix=fix, anchor="mac")
        elif enc_problem(meta.mac):
            self.add(BROKEN_SOPS, f"the sops mac is not a well-formed ENC[] value ({enc_problem(meta.mac)})",
                     fix=fix, anchor="mac")
        if not any(k.enc for k in meta.all_keys()):
            self.add(BROKEN_SOPS, "no master key holds a wrapped data key (every enc is empty)", fix=fix, anchor="enc")
        for i, group in enumerate(meta.key_groups):
            if not group and len(meta.key_groups) > 1:
                self.add(BROKEN_SOPS, f"key group {i + 1} has no keys", severity=WARNING, anchor=f"group{i}")
        return meta

    def _inside_rule(self, rule: CreationRule) -> None:
        policies = _Policies(None, rule, self.result.store_name)
        rule_policy = policies.rule
        if (self.result.store_name == "yaml" and rule_policy is not None and not policies.need_stack
                and b"sops" not in self.data and b"$patch" not in self.data):
            # cannot be a SOPS document: find the first value the rule wants encrypted, stop there
            try:
                first = _first_required_plain_yaml(self.data, rule_policy.path_encrypted)
            except _ParseFailure:
                pass
            else:
                if first is None:
                    if not self._comments_at_rule(rule, policies, None):
                        self._detect("in plaintext")
                else:
                    self._refuse_plaintext(rule, _Leaf((), first[0], "plain", "", first[1], 0, None), first[1])
                return
        try:
            doc = self._parse(policies)
        except _ParseFailure as exc:
            if _sops_markers(self.data):
                self.result.status = "broken"
                self.add(BROKEN_SOPS, f"looks like a SOPS file but {exc.reason}; {rule_label(rule)} requires it encrypted",
                         fix=f"sopsflow encrypt -i {_q(self.path)} (re-create it from the plaintext)", anchor="parse")
            elif self.data.strip():
                # The store's parse error ("Error unmarshalling input json" for
                # a file with no known extension) tells a user nothing: say what
                # the file is, and where the rule may have matched by accident.
                self.result.status = "plaintext"
                self.add(PLAINTEXT_SECRET, f"at {rule_label(rule)} but not a SOPS file{self._accidental_note(rule)}; "
                         "the rule requires it encrypted", fix=f"sopsflow encrypt -i {_q(self.path)}")
            return
        if not doc.has_meta:
            self._plaintext_at_rule(doc, policies, rule)
            return
        self._sops_file(doc, rule)

    def _plaintext_at_rule(self, doc: _Doc, policies: _Policies, rule: CreationRule) -> None:
        binary = self.result.store_name == "binary"
        # A `$patch: delete` document tells kustomize to remove an object: it
        # names it and carries no data, so there is nothing to encrypt in it.
        deletes = detectors.delete_patch_documents(self.data) if b"$patch" in self.data and not binary else set()
        first = next((leaf for leaf in doc.leaves if leaf.kind == "plain" and leaf.doc not in deletes
                      and (binary or policies.required(leaf, policies.rule))), None)
        if first is None and doc.problems:
            problem, line = doc.problems[0]
            self.result.status = "plaintext"
            self.add(PLAINTEXT_SECRET, f"not encrypted ({problem}: sops cannot encrypt it as YAML); "
                     f"{rule_label(rule)} requires it encrypted", line=line, fix=f"sopsflow encrypt -i {_q(self.path)}")
        elif first is None:
            self.result.status = "not-sops"
            if not self._comments_at_rule(rule, policies, doc):
                self._detect("in plaintext")
        else:
            self._refuse_plaintext(rule, None if binary else first, doc.line_of(first))

    def _refuse_plaintext(self, rule: CreationRule, first: _Leaf | None, line: int | None) -> None:
        self.result.status = "plaintext"
        where = "" if first is None else f" (first plaintext value it selects: {first.shown!r})"
        self.add(PLAINTEXT_SECRET, f"not encrypted: {rule_label(rule)} requires it encrypted{where}"
                 f"{self._accidental_note(rule)}",
                 line=line, fix=f"sopsflow encrypt -i {_q(self.path)}")

    def _sops_file(self, doc: _Doc, rule: CreationRule | None) -> None:
        meta = self._metadata(doc)
        self.result.metadata = meta
        policies = _Policies(meta, rule, self.result.store_name)
        if policies.need_stack and not any(leaf.stack is not None for leaf in doc.leaves) and doc.leaves:
            doc = self._reparse_with_comments(doc)
        doc = self._with_comments(doc, policies.need_stack)
        for message, line in doc.problems:
            self.add(BROKEN_SOPS, message, line=line, fix=f"sopsflow encrypt -i {_q(self.path)} (re-create it)",
                     anchor=f"problem:{message}")
        self._judge_values(doc, policies, rule, meta)
        self._judge_comments(doc, policies)
        self._metadata_comments()
        if meta is not None and rule is not None:
            self._recipients(meta, rule)
        if rule is None:
            self.add(UNMATCHED_SOPS_FILE, "SOPS file that no creation rule of .sops.yaml matches",
                     severity=WARNING, fix=f"sopsflow rules {_q(self.path)}")
        # Which values stay plain is the options' (and the rule's) call; only
        # unambiguous key material is looked for in what they leave plain.
        self._detect("in plaintext in a SOPS file", skip_structured=True)
        if any(f.kind == BROKEN_SOPS and f.severity == ERROR for f in self.result.findings):
            self.result.status = "broken"
        elif any(f.kind == PARTLY_PLAINTEXT for f in self.result.findings):
            self.result.status = "partial"
        else:
            self.result.status = "encrypted"

    def _reparse_with_comments(self, doc: _Doc) -> _Doc:
        try:
            return _load_with_store(store_for_path(self.path), self.data, True)
        except _ParseFailure as exc:
            self.add(BROKEN_SOPS, f"SOPS file {exc.reason}", anchor="parse")
            return doc

    def _judge_values(self, doc: _Doc, policies: _Policies, rule: CreationRule | None, meta: Metadata | None) -> None:
        multi = len({leaf.doc for leaf in doc.leaves}) > 1

        def where(leaf: _Leaf) -> str:
            return f"{leaf.shown!r}" + (f" (document {leaf.doc + 1})" if multi else "")

        for leaf in doc.leaves:
            if leaf.kind == "enc":
                problem = enc_problem(leaf.text)
                if problem:
                    self.add_value(BROKEN_SOPS, doc, leaf, f"value at {where(leaf)} is a malformed ENC[] string ({problem})",
                                   f"remove it, then: sopsflow set {_q(self.path)} {_q(leaf.set_path)} VALUE")
                continue
            if leaf.kind != "plain":
                continue
            if self.result.store_name == "binary" or policies.required(leaf, policies.file):
                self.add_value(PARTLY_PLAINTEXT, doc, leaf,
                               f"plaintext value at {where(leaf)} where the file's own options encrypt values "
                               "(hand-added to an encrypted file?)",
                               f"remove it, then: sopsflow set {_q(self.path)} {_q(leaf.set_path)} VALUE")
            elif rule is not None and policies.required(leaf, policies.rule):
                self.add_value(PARTLY_PLAINTEXT, doc, leaf,
                               f"plaintext value at {where(leaf)}: the file's options "
                               f"({_options_text(meta.selection() if meta else None)}) leave it plaintext but "
                               f"{rule_label(rule)} requires it encrypted ({_options_text(policies.rule_selection)})",
                               f"sopsflow decrypt -i {_q(self.path)} && sopsflow encrypt -i {_q(self.path)}")

    def _recipients(self, meta: Metadata, rule: CreationRule) -> None:
        try:
            diffs = recipient_diff(meta, rule)
        except SopsError as exc:
            self.add(INVALID_CONFIG, exc.message, fix=f"sopsflow rules {_q(self.path)}")
            return
        allowed = set(self.settings.allowed_recipients(self.path))
        if allowed:
            diffs = [d._replace(removed=[x for x in d.removed if x not in allowed]) for d in diffs]
            diffs = [d for d in diffs if d.added or d.removed]
        if not diffs:
            return
        outside = self._outside_rule(meta, rule, allowed)
        if outside:
            self.add(RECIPIENTS_OUTSIDE_RULE,
                     f"recipients that {rule_label(rule)} does not name: {', '.join(outside)} "
                     "(they can read every value)",
                     fix=f"sopsflow updatekeys {_q(self.path)} (or allow-list them in .sopsflow.yaml)",
                     anchor="outside:" + ",".join(outside))
        strict = self.settings.strict
        self.add(STALE_RECIPIENTS,
                 f"recipients differ from {rule_label(rule)}: {format_group_diffs(diffs)}",
                 severity=ERROR if strict else WARNING, fix=f"sopsflow updatekeys {_q(self.path)}",
                 anchor="recipients")

    @staticmethod
    def _outside_rule(meta: Metadata, rule: CreationRule, allowed: set[str]) -> list[str]:
        """Identities of the file's keys that the rule names in no group, minus
        the ones ``allow.recipients`` accepts for this file."""
        named = {ident for group in rule_identities(rule) for ident in group}
        return list(dict.fromkeys(
            k.identity() for group in meta.key_groups for k in group
            if k.type_name in RULE_KEY_TYPES and (k.type_name, k.identity()) not in named
            and k.identity() not in allowed
        ))

    def _outside_rules(self) -> None:
        if _sops_markers(self.data):
            try:
                doc = self._parse(None)
            except _ParseFailure:
                doc = None
            if doc is not None and doc.has_meta:
                self._sops_file(doc, None)
                return
        self._detect("outside every creation rule")

    def _detect(self, where: str, skip_structured: bool = False) -> None:
        if self.result.metadata is not None:
            fix = f"sopsflow edit {_q(self.path)} and keep it only in values the file encrypts"
        else:
            fix = (f"git rm --cached {_q(self.path)}; keep it only in an encrypted file "
                   "(a creation rule + sopsflow encrypt -i)")
        if skip_structured:
            found = detectors.find_key_material(self.data)
            named = {d.line for d in found}
            found += [d for d in detectors.find_provider_tokens(self.data) if d.line not in named]
        else:
            found = detectors.scan(self.path, self.data)
        reported = {f.line for f in self.result.findings if f.kind == PARTLY_PLAINTEXT}
        # Inline markers silence heuristic findings only, and never at a rule
        # path: there the rule decides, and a pragma must not pass plaintext.
        markers = detectors.InlineMarkers(self.data) if self.result.rule is None else None
        for d in found:
            if d.line in reported:
                continue  # the same value is already named as plaintext
            finding = Finding(LEAKED_SECRET, self.path, f"{d.what} {where}", ERROR, d.line, fix,
                              fingerprint(LEAKED_SECRET, self.path, d.anchor))
            if d.legacy:
                self._old_fingerprints[finding.fingerprint] = fingerprint(LEAKED_SECRET, self.path, d.legacy)
            marker = markers.at(d.line) if markers is not None and detectors.is_heuristic(d.anchor) else None
            if marker is not None:
                self.result.allowed.append((finding, f"{INLINE_REASON} `{marker}`"))
            else:
                self.result.findings.append(finding)

    def _apply_allow_list(self) -> None:
        settings = self.settings
        if not settings.allow_paths and not settings.allow_fingerprints:
            return
        pattern = settings.allows_path(self.path)
        kept = []
        for f in self.result.findings:
            if f.kind == INVALID_CONFIG:
                kept.append(f)
            elif pattern is not None:
                self.result.allowed.append((f, f"path {pattern}"))
            elif settings.allows_fingerprint(f.fingerprint):
                self.result.allowed.append((f, f"fingerprint {f.fingerprint}"))
            elif settings.allows_fingerprint(self._old_fingerprints.get(f.fingerprint, "")):
                old = self._old_fingerprints[f.fingerprint]
                self.result.allowed.append((f, f"old fingerprint {old}"))
                kept.append(Finding(
                    OLD_FINGERPRINT, self.path,
                    f"allow.fingerprints entry {old} is the old fingerprint of {f.message!r}, honoured until "
                    f"sopsflow {OLD_FINGERPRINTS_UNTIL}: its fingerprint is now {f.fingerprint}",
                    WARNING, f.line, f"replace {old} with {f.fingerprint} in .sopsflow.yaml",
                    fingerprint(OLD_FINGERPRINT, self.path, old)))
            else:
                kept.append(f)
        self.result.findings = kept


def audit_file(rel_path: str, data: bytes, *, config: Config | None, settings: AuditSettings,
               is_symlink: bool = False, repo_root: Path | None = None) -> FileAudit:
    """Classify one file. ``rel_path`` is repo-relative with ``/`` separators;
    rules are matched on ``repo_root / rel_path`` (default: the config's
    directory, right for a `.sops.yaml` at the repository root)."""
    return _Auditor(rel_path, data, config, settings, is_symlink, repo_root).run()


def audit_governed(rel_path: str, data: bytes, governing: ConfigRef, *, settings: AuditSettings,
                   is_symlink: bool = False, repo_root: Path | None = None) -> FileAudit:
    """:func:`audit_file` under the config a :class:`~sopsflow.git.snapshot.Snapshot`
    resolved for the file: the one judgement of ``check`` and ``verify``.

    A fail-closed config refuses the file (``invalid-config``, named by the
    config's path); the rules of it that still load judge the file as well, so
    a plaintext file under one of them is named too."""
    config = governing.rules
    audit = audit_file(rel_path, data, config=config, settings=settings, is_symlink=is_symlink,
                       repo_root=repo_root)
    if governing.error is None or governing.path is None:
        return audit
    if audit.status == "broken" and any(f.kind == INVALID_CONFIG and f.path != rel_path for f in audit.findings):
        # the file reached a rule of the broken config that does not load:
        # judged as outside the rules as well (the detectors still run)
        audit = audit_file(rel_path, data, config=None, settings=settings, is_symlink=is_symlink,
                           repo_root=repo_root)
    audit.status = "broken"
    audit.findings.insert(0, config_error_finding(governing.path, governing.error, rel_path))
    return audit


# --- a shortcut for judging many committed versions (history) ------------------------------

#: The finding kinds :func:`holds_no_plaintext` vouches for: what `sopsflow
#: history` reports as a secret exposed in a commit.
PLAINTEXT_KINDS = (PLAINTEXT_SECRET, PARTLY_PLAINTEXT, LEAKED_SECRET)


def governing_rule(rel_path: str, config: Config | None, repo_root: Path | None = None) -> CreationRule | None:
    """The creation rule :func:`audit_file` judges ``rel_path`` under (None:
    outside every rule). Raises SopsError where the audit reports the config
    as ``invalid-config`` (a rule's regex that does not compile)."""
    if config is None or not config.has_creation_rules:
        return None
    base = repo_root if repo_root is not None else config.dir
    return match_rule(config, f"{base}/{rel_path}")


#: One line of the YAML subset :func:`_sops_yaml_subset` reads: an indent,
#: then ``key:`` or ``key: value`` (either after ``- ``), or ``- value``, or
#: other text (legal only inside a ``|`` block: group 6). Keys are plain, of
#: safe characters, within libyaml's limit for a simple key; values are plain
#: scalars libyaml reads as the same text in a block context (no indicator
#: first; no blank, ``#``, quote, anchor, tag or brace; no ``:`` last),
#: quoted ones without escapes, ``|``, ``|-``, ``[]``, ``{}`` or ``~``.
_SUBSET_LINE = compile_lazy(
    r"( *)(?:(- )?([A-Za-z0-9_][A-Za-z0-9_./-]{0,999}):(?: (VALUE))?|- (VALUE)|(\S.*))\Z".replace(
        "VALUE", r"""[A-Za-z0-9_./+=](?:[A-Za-z0-9_./+=,:\[\]@~^()-]*[A-Za-z0-9_./+=,\[\]@~^()-])?"""
        r"""|"[^"\\]*"|'[^']*'|\|-?|\[\]|\{\}|~"""))
#: The bytes the subset may hold (printable ASCII and newlines): deleting
#: them from a copy must leave nothing.
_SUBSET_BYTES = bytes(range(0x20, 0x7F)) + b"\n"

#: An open block collection of the subset reader: [column, is a mapping, key
#: path, its raw metadata (dict or list; None in the data), keys seen].
_Open = list  # of Any


def _subset_put(holder: _Open, key: str | None, value: TreeValue) -> None:
    if holder[1]:
        holder[3][key] = value
    else:
        holder[3].append(value)


def _subset_value(holder: _Open, key: str | None, text: str | None, paths: list[tuple[str, ...]]) -> None:
    """A scalar (None: an empty plain one) as :func:`_node_python` gives it in
    the metadata; in the data, the key path of any that is not ``ENC[...]``."""
    if holder[3] is None:
        if text is None or not (text.startswith(_ENC_PREFIX) or text in ("[]", "{}")):
            paths.append(holder[2] + (key,) if key is not None else holder[2])
        return
    if text is None or text in detectors.NULLS or text == "~":
        value: TreeValue = None
    elif text[0] in "\"'":
        value = text[1:-1]
    elif text in ("[]", "{}"):
        value = [] if text == "[]" else {}
    else:
        value = text
    _subset_put(holder, key, value)


def _sops_yaml_subset(data: bytes) -> tuple[list[tuple[str, ...]], RawMetadata | None] | None:
    """For YAML as sops writes it (block mappings and sequences, one entry a
    line), read line by line without composing nodes: the key paths of the
    values that are not plain ``ENC[...]`` scalars, and the raw sops metadata
    (None without any). For the text it reads, this is what
    :func:`_load_yaml_fast` gives (the paths of its "plain" leaves are among
    these, its raw metadata is this one, and it finds no problem); None for
    anything else (comments, flow collections, anchors, tags, several
    documents, duplicate keys, a sequence at its key's column, non-ASCII,
    tabs, blank-only lines, ...), which the caller parses in full."""
    if data.translate(None, _SUBSET_BYTES) or b"#" in data:
        return None
    match = _SUBSET_LINE.match
    root: _Open = [0, True, (), None, set()]
    stack = [root]
    paths: list[tuple[str, ...]] = []
    meta: RawMetadata | None = None
    pending: tuple[_Open, str] | None = None  # a "key:" whose value starts on a later line
    block: tuple[_Open, str | None, bool, int] | None = None  # an open "|": holder, key, keep newline, column
    body: list[str] = []
    body_indent = 0
    for line in data.decode("ascii").split("\n") + ["\0"]:  # the sentinel closes what is open
        if block is not None:
            if not line:
                body.append("")  # leading ones are kept, trailing ones dropped (clipped)
                continue
            depth = len(line) - len(line.lstrip(" "))
            if depth > block[3]:
                if depth == len(line):
                    return None  # blanks only
                if not body_indent:
                    body_indent = depth
                elif depth < body_indent:
                    return None
                body.append(line[body_indent:])
                continue
            holder, key, keep, _ = block
            if holder[3] is not None:
                if line == "\0" and body and body[-1] and not data.endswith(b"\n"):
                    keep = False  # the last line has no line break to keep
                while body and not body[-1]:
                    body.pop()
                _subset_put(holder, key, "\n".join(body) + ("\n" if keep and body else ""))
            block, body, body_indent = None, [], 0
        if not line:
            continue
        m = match(line) if line != "\0" else None
        if m is not None:
            spaces, dash, key, value, item, other = m.groups()
            indent = len(spaces)
        else:
            indent = -1
        if pending is not None:
            holder, parent = pending
            pending = None
            if indent > holder[0]:
                opened: dict[str, TreeValue] | list[TreeValue] | None = None
                at_meta = holder is root and parent == "sops"
                if holder[3] is not None or at_meta:
                    opened = {} if dash is None and item is None else []
                    if at_meta:
                        meta = opened  # type: ignore[assignment]
                    else:
                        _subset_put(holder, parent, opened)
                stack.append([indent, dash is None and item is None, holder[2] + (parent,), opened, set()])
            elif indent == holder[0] and (dash is not None or item is not None):
                return None  # a sequence at its key's column
            elif holder is root and parent == "sops":
                return None  # metadata that is no mapping: the full parse says what it is
            else:
                _subset_value(holder, parent, None, paths)
        if m is None:
            if line != "\0":
                return None
            break
        if other is not None:
            return None  # text outside a block
        while indent < stack[-1][0]:
            stack.pop()
        top = stack[-1]
        if indent != top[0]:
            return None
        if not top[1]:  # a sequence: "- key: ..." opens a mapping two columns in
            if dash is not None:
                entry: dict[str, TreeValue] | None = {} if top[3] is not None else None
                if entry is not None:
                    top[3].append(entry)
                top = [indent + 2, True, top[2], entry, set()]
                stack.append(top)
            elif item is not None:
                if item[0] == "|":
                    block = (top, None, item == "|", indent)
                    if top[3] is None:
                        paths.append(top[2])
                else:
                    _subset_value(top, None, item, paths)
                continue
            else:
                return None
        elif dash is not None or item is not None:
            return None
        if key is None or key in top[4]:
            return None  # a duplicate: the full parse reports it
        top[4].add(key)
        if top is root and key == "sops":
            if value is not None:
                return None  # metadata that is no mapping
            pending = (top, key)
        elif value is None:
            pending = (top, key)
        elif value[0] == "|":
            block = (top, key, value == "|", top[0])
            if top[3] is None:
                paths.append(top[2] + (key,))
        else:
            _subset_value(top, key, value, paths)
    return paths, meta


#: The rule's half of :class:`_Policies` (no file metadata), by rule and store.
_RULE_POLICIES: dict[tuple[int, str], tuple[CreationRule | None, _Policies]] = {}


def _rule_policies(rule: CreationRule | None, store_name: str) -> _Policies:
    cached = _RULE_POLICIES.get((id(rule), store_name))
    if cached is None or cached[0] is not rule:
        cached = _RULE_POLICIES[(id(rule), store_name)] = (rule, _Policies(None, rule, store_name))
    return cached[1]


def holds_no_plaintext(rel_path: str, data: bytes, rule: CreationRule | None, *, is_symlink: bool = False) -> bool:
    """True only when :func:`audit_file`, with ``rule`` the one
    :func:`governing_rule` gives, certainly reports no finding of
    ``PLAINTEXT_KINDS``: an intact SOPS document whose every value its own
    options and its rule select is ``ENC[...]``, with no plaintext comment, no
    unexpected metadata entry and nothing the key and token detectors find.

    It skips what cannot produce such a finding (well-formedness of each
    ``ENC[]``, the MAC and key entries, recipients), which is most of the
    audit's time. False means "judge it with audit_file": anything unusual
    (a plaintext value it selects, no sops metadata, a file that does not
    parse, comment-driven options, a detector hit, a config file, a symbolic
    link) - not that the file is unsafe."""
    name = rel_path.rsplit("/", 1)[-1]
    if is_symlink or (name[:1] == "." and (_is_temp_file(rel_path) or name in CONFIG_NAMES)):
        return False
    if name in IGNORED_CONFIG_NAMES:
        return False
    store_name = format_for_path(rel_path)
    if rule is None and not _sops_markers(data):
        return False  # judged by every detector outside the rules
    if store_name == "yaml" and b"#" in data and _may_hold_plain_comments(data, store_name):
        return False
    policies = _rule_policies(rule, store_name)
    if policies.need_stack:
        return False
    quick = _sops_yaml_subset(data) if store_name == "yaml" else None
    if quick is not None:
        plain, raw = quick  # plain: a superset of the paths of plain values
        comments: list[_CommentLeaf] = []
    else:
        try:
            doc = (_load_yaml_fast(data) if store_name == "yaml"
                   else _load_with_store(store_for_path(rel_path), data, False))
        except _ParseFailure:
            return False
        if doc.problems or not doc.has_meta:
            return False
        raw, comments = doc.raw_meta, doc.comments or []
        plain = [leaf.path for leaf in doc.leaves if leaf.kind == "plain"]
    if not isinstance(raw, dict) or next(_hidden_in_metadata(raw), None):
        return False
    # The file's own options as Metadata.from_dict reads them. Where it
    # refuses the metadata the audit judges values by the rule alone: asking
    # both here is stricter, never looser.
    selection = raw_selection(raw)
    if len(selection) > 1:
        return False
    own = _policy(selection or {"unencrypted_suffix": DEFAULT_UNENCRYPTED_SUFFIX})
    if own.uses_comments:
        return False
    by_rule = policies.rule
    for path in plain:
        if store_name == "binary" or own.path_encrypted(path) or (by_rule is not None and by_rule.path_encrypted(path)):
            return False
    if any(not c.encrypted and c.text.strip() for c in comments):
        return False
    return not detectors.find_key_material(data) and not detectors.find_provider_tokens(data)
