"""YAML text -> sops tree, with sops 3.11's rules (go-yaml v3 underneath).

Two readers produce the same tree:

* a fast one on PyYAML's libyaml event stream, used when the text holds no
  comment (no ``#`` at all, or each ``#`` inside a scalar), and
* :mod:`.yaml_goparse`, a port of go-yaml's scanner and parser that keeps
  comments exactly where go-yaml puts them, used otherwise.

Both expand aliases under a budget (go-yaml's "excessive aliasing" rule), so
an alias bomb fails fast instead of eating memory.

sops reads the first document twice: once into ``map[string]interface{}``
(duplicate keys, bad tagged scalars, bad merges and excessive aliasing are
errors there) and once as yaml.Node trees for all documents (no such checks).
``strict`` marks the first document.
"""

from __future__ import annotations

import base64
import binascii

from ...tree import Comment, TreeMap
from .resolve import (
    BINARY_TAG,
    MERGE_TAG,
    NULL_TAG,
    STR_TAG,
    ResolveError,
    plain_scalar,
    resolve_plain,
    resolve_tagged,
    short_tag,
)

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

ALIAS_LOW = 400_000
ALIAS_HIGH = 4_000_000


class YamlError(ValueError):
    """The input is not YAML sops can read; the store turns it into SopsError
    with the exit code of the command that read it."""


def parse_error(message: str) -> YamlError:
    return YamlError(f"yaml: {message}")


class AliasBudget:
    """go-yaml's decoder limit on alias expansion, counted in expanded nodes."""

    __slots__ = ("decoded", "aliased")

    def __init__(self) -> None:
        self.decoded = 0
        self.aliased = 0

    def expand(self, size: int) -> None:
        self.decoded += size
        self.aliased += size
        if self.aliased > 100 and self.decoded > 1000 and self.aliased / self.decoded > _allowed_ratio(self.decoded):
            raise parse_error("document contains excessive aliasing")


def _allowed_ratio(count: int) -> float:
    if count <= ALIAS_LOW:
        return 0.99
    if count >= ALIAS_HIGH:
        return 0.10
    return 0.99 - 0.89 * (count - ALIAS_LOW) / (ALIAS_HIGH - ALIAS_LOW)


def tree_size(value: Any) -> int:
    """Nodes in a tree value (keys included), as go-yaml's decoder counts them."""
    if type(value) is TreeMap:
        return 1 + sum(1 + tree_size(e[1]) for e in value if type(e) is not Comment)
    if type(value) is list:
        return 1 + sum(tree_size(v) for v in value if type(v) is not Comment)
    return 1


def copy_value(value: Any) -> Any:
    """Deep copy of a tree value (an expanded alias must not share objects)."""
    if type(value) is TreeMap:
        out = TreeMap()
        for entry in value:
            out.append(entry if type(entry) is Comment else (entry[0], copy_value(entry[1])))
        return out
    if type(value) is list:
        return [copy_value(v) for v in value]
    return value


def tagged_scalar(tag: str, value: str, strict: bool, line: int) -> Any:
    """An explicitly tagged scalar as go-yaml's decoder sees it (``! x`` is untagged)."""
    stag = short_tag(tag)
    if stag == STR_TAG:
        return value
    if stag == BINARY_TAG:
        try:
            data = base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
        except (binascii.Error, ValueError):
            if strict:
                raise parse_error(f"line {line}: !!binary value contains invalid base64 data") from None
            return None
        return data.decode("utf-8", "surrogateescape")
    try:
        return resolve_tagged(stag, value)[1]
    except ResolveError as exc:
        if strict:
            raise parse_error(f"line {line}: {exc}") from None
        # sops ignores node.Decode's error here and keeps a nil value.
        return None


def check_merge_value(value: Any, line: int) -> None:
    if type(value) is TreeMap:
        return
    if type(value) is list and all(type(v) is TreeMap for v in value):
        return
    raise parse_error(f"line {line}: map merge requires map or sequence of maps as the value")


def root_branch(value: Any, is_null: bool) -> TreeMap:
    if type(value) is TreeMap:
        return value
    if type(value) is list:
        raise parse_error("YAML documents that are sequences are not supported")
    if is_null:
        return TreeMap()
    raise parse_error("YAML documents that are values are not supported")


# --- fast path: libyaml events --------------------------------------------------------

_SCALAR, _MAP, _SEQ, _ALIAS = 1, 2, 3, 4

# yaml.Node kinds, as numbered in yaml_goparse (kept here so that the comment-free
# path does not import the port).
DOCUMENT_NODE, SEQUENCE_NODE, MAPPING_NODE, SCALAR_NODE, ALIAS_NODE = 1, 2, 4, 8, 16


class _Frame:
    __slots__ = ("container", "is_map", "anchor", "key", "idents", "key_lines", "merge")

    def __init__(self, container: Any, is_map: bool, anchor: str | None) -> None:
        self.container = container
        self.is_map = is_map
        self.anchor = anchor
        self.key: Any = _NO_KEY
        # strict checks: raw key texts (go-yaml compares node kind and text), key lines
        self.idents: list[Any] | None = None
        self.key_lines: list[int] = []
        self.merge = False


_NO_KEY = object()


def load_events(text: str, strict: int = 2, hashes: bool = False) -> list[TreeMap] | None:
    """Documents of a comment-free text, read with libyaml's event parser.

    ``strict`` applies to the first document: 2 = the checks of sops' decode into
    a map (plain files), 1 = top-level keys only (the metadata struct decode of
    encrypted files). With ``hashes`` the text holds a ``#``; the result is None
    when one of them is a comment (then only the go-yaml port will do)."""
    from ...lazyre import import_yaml

    import_yaml()
    import yaml
    from yaml._yaml import CParser

    parser = CParser(text)
    # go-yaml keeps anchors for the whole stream, so a later document may use them.
    anchors: dict[str, tuple[Any, int, int]] = {}
    spans: list[tuple[int, int, str]] | None = [] if hashes else None
    try:
        parser.get_event()  # stream start
        docs: list[TreeMap] = []
        while True:
            event = parser.get_event()
            if type(event) is yaml.StreamEndEvent:
                break
            version = getattr(event, "version", None)
            if version is not None and tuple(version) != (1, 1):
                raise parse_error("found incompatible YAML document")
            docs.append(_document(parser, strict if not docs else 0, anchors, spans))
            parser.get_event()  # document end
    except yaml.MarkedYAMLError as exc:
        if hashes:
            return None  # let the go-yaml port judge (and word the error)
        raise parse_error(_libyaml_message(exc)) from None
    except yaml.YAMLError as exc:
        if hashes:
            return None
        raise parse_error(str(exc).splitlines()[0] if str(exc) else "invalid YAML") from None
    if spans is not None and _has_comment(text, spans):
        return None
    return docs


def _has_comment(text: str, spans: list[tuple[int, int, str]]) -> bool:
    """Whether some ``#`` lies outside every scalar: go-yaml would read a comment
    there. Plain scalars end before a comment, quoted ones cannot hold one, and
    a block scalar's body starts on the line after its header."""
    import bisect

    starts: list[int] = []
    ends: list[int] = []
    for start, end, style in spans:
        if style in ("|", ">"):
            line_end = min((i for i in (text.find("\n", start), text.find("\r", start)) if i >= 0), default=end)
            start = min(line_end, end)
        starts.append(start)
        ends.append(end)
    pos = text.find("#")
    while pos >= 0:
        i = bisect.bisect_right(starts, pos) - 1
        if i < 0 or pos >= ends[i]:
            return True
        pos = text.find("#", pos + 1)
    return False


def _libyaml_message(exc: Any) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


def _document(parser: Any, strict: int, anchors: dict[str, tuple[Any, int, int]],
              spans: list[tuple[int, int, str]] | None = None) -> TreeMap:
    """One document from the event stream. Written as one flat loop because it
    runs once per event of every comment-free file."""
    import yaml

    scalar_t, alias_t = yaml.ScalarEvent, yaml.AliasEvent
    map_start, seq_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
    get = parser.get_event
    resolve = plain_scalar
    open_anchors: set[str] = set()
    budget = AliasBudget()
    full = strict == 2
    stack: list[_Frame] = []
    parent: _Frame | None = None
    no_key = _NO_KEY
    events = 0
    while True:
        event = get()
        events += 1
        etype = type(event)
        if etype is scalar_t:
            tag = event.tag
            if tag is None or tag == "!":
                value: Any = event.value if event.style else resolve(event.value)
            else:
                value = tagged_scalar(tag, event.value, full, event.start_mark.line + 1)
            if event.anchor is not None:
                anchors[event.anchor] = (value, 1, _SCALAR)
            if spans is not None:
                spans.append((event.start_mark.index, event.end_mark.index, event.style))
            kind = _SCALAR
        elif etype is map_start or etype is seq_start:
            is_map = etype is map_start
            frame = _Frame(TreeMap() if is_map else [], is_map, event.anchor)
            if event.anchor is not None:
                open_anchors.add(event.anchor)
            if is_map and (full or (strict and not stack)):
                frame.idents = []
            stack.append(frame)
            parent = frame
            continue
        elif etype is alias_t:
            name = event.anchor
            if name in open_anchors:
                raise parse_error(f"anchor '{name}' value contains itself")
            target = anchors.get(name)
            if target is None:
                raise parse_error(f"line {event.start_mark.line + 1}: unknown anchor '{name}' referenced")
            size = target[1]
            if size < 0:
                size = tree_size(target[0])
                anchors[name] = (target[0], size, target[2])
            budget.decoded = events + budget.aliased
            budget.expand(size)
            value = copy_value(target[0])
            kind = _ALIAS
        else:  # mapping or sequence end
            frame = stack.pop()
            value = frame.container
            kind = _MAP if frame.is_map else _SEQ
            if frame.idents is not None and len(set(frame.idents)) != len(frame.idents):
                _duplicate_error(frame)
            if frame.anchor is not None:
                open_anchors.discard(frame.anchor)
                anchors[frame.anchor] = (value, -1, kind)  # size counted on first use
            if not stack:
                return root_branch(value, False)
            parent = stack[-1]
        if parent is None:
            return root_branch(value, kind == _SCALAR and _is_null_scalar(event))
        if not parent.is_map:
            parent.container.append(value)
        elif parent.key is no_key:
            parent.key = value
            if parent.idents is not None:
                if kind == _SCALAR:
                    parent.idents.append(event.value)
                    parent.merge = event.value == "<<" and _is_merge_key(event)
                else:
                    _check_collection_key(parent, kind, value, event)
                parent.key_lines.append(event.start_mark.line)
        else:
            if parent.merge:
                check_merge_value(value, event.start_mark.line + 1)
                parent.merge = False
            parent.container.append((parent.key, value))
            parent.key = no_key


def _is_null_scalar(event: Any) -> bool:
    tag = event.tag
    if tag is None or tag == "!":
        return not event.style and plain_scalar(event.value) is None
    return short_tag(tag) == NULL_TAG


def _is_merge_key(event: Any) -> bool:
    tag = event.tag
    if tag is None or tag == "!":
        return not event.style  # a quoted "<<" is a plain string key
    return short_tag(tag) == MERGE_TAG


def _check_collection_key(frame: _Frame, kind: int, key: Any, event: Any) -> None:
    if kind in (_MAP, _SEQ) or type(key) in (TreeMap, list):
        raise parse_error(f"line {event.start_mark.line + 1}: invalid map key")
    assert frame.idents is not None
    # Scalar idents are plain strings; these tuples never collide with them.
    frame.idents.append((kind, event.anchor))


def _duplicate_error(frame: _Frame) -> None:
    assert frame.idents is not None
    first: dict[Any, int] = {}
    for i, ident in enumerate(frame.idents):
        if ident in first:
            key = frame.container[i][0] if i < len(frame.container) else ident
            raise parse_error(f"line {frame.key_lines[i] + 1}: mapping key {_quote(key)} already defined "
                              f"at line {frame.key_lines[first[ident]] + 1}")
        first[ident] = i


def _quote(key: Any) -> str:
    text = key if isinstance(key, str) else str(key)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- comment path: go-yaml nodes -> sops tree -------------------------------------------

def _add_comments(text: str, out: list[Any]) -> None:
    """sops' appendCommentToList/Map: one Comment per non-empty line, '#' dropped."""
    if text:
        for line in text.split("\n"):
            if line:
                out.append(Comment(line[1:]))


class NodeConverter:
    """sops 3.11's nodeToTreeValue / appendYamlNodeToTreeBranch over go-yaml nodes."""

    def __init__(self, budget: AliasBudget) -> None:
        self.budget = budget
        self.strict = 0
        self.map_depth = 0
        self.alias_depth = 0
        self.active: set[int] = set()

    def count(self) -> None:
        budget = self.budget
        budget.decoded += 1
        if self.alias_depth:
            budget.aliased += 1
            if budget.aliased > 100 and budget.decoded > 1000 and \
                    budget.aliased / budget.decoded > _allowed_ratio(budget.decoded):
                raise parse_error("document contains excessive aliasing")

    def document(self, doc: Any, strict: int) -> TreeMap:
        self.strict = strict
        root = doc.content[0] if doc.content else None
        if root is not None and root.kind == SEQUENCE_NODE:
            raise parse_error("YAML documents that are sequences are not supported")
        if root is not None and root.kind == SCALAR_NODE and not self.is_null(root):
            raise parse_error("YAML documents that are values are not supported")
        return self.branch(doc, TreeMap(), False)

    @staticmethod
    def is_null(node: Any) -> bool:
        tag = node.tag
        if tag == "":
            return resolve_plain(node.value)[0] == NULL_TAG
        return short_tag(tag) == NULL_TAG

    def alias(self, node: Any) -> Any:
        key = id(node)
        if key in self.active:
            raise parse_error(f"anchor '{node.value}' value contains itself")
        self.active.add(key)
        self.alias_depth += 1
        return key

    def end_alias(self, key: int) -> None:
        self.active.discard(key)
        self.alias_depth -= 1

    def value(self, node: Any, handled: bool) -> Any:
        kind = node.kind
        if kind == SCALAR_NODE and not self.alias_depth:
            self.budget.decoded += 1
            tag = node.tag
            if tag == "":
                return plain_scalar(node.value)
            return self.scalar(node)
        self.count()
        if kind == SCALAR_NODE:
            return self.scalar(node)
        if kind == MAPPING_NODE:
            return self.branch(node, TreeMap(), handled)
        if kind == SEQUENCE_NODE:
            result: list[Any] = []
            if not handled:
                _add_comments(node.head, result)
                _add_comments(node.line, result)
            for item in node.content:
                _add_comments(item.head, result)
                _add_comments(item.line, result)
                result.append(self.value(item, True))
                _add_comments(item.foot, result)
            if not handled:
                _add_comments(node.foot, result)
            return result
        if kind == ALIAS_NODE:
            token = self.alias(node)
            try:
                return self.value(node.alias, False)
            finally:
                self.end_alias(token)
        return None

    def scalar(self, node: Any) -> Any:
        tag = node.tag
        if tag == "":
            return plain_scalar(node.value)
        if tag == STR_TAG or (tag == MERGE_TAG and node.value == "<<"):
            return node.value
        return tagged_scalar(tag, node.value, self.strict == 2, node.line_no)

    def branch(self, node: Any, branch: TreeMap, handled: bool) -> TreeMap:
        if not handled:
            _add_comments(node.head, branch)
            _add_comments(node.line, branch)
        kind = node.kind
        if kind == DOCUMENT_NODE:
            for item in node.content:
                self.branch(item, branch, False)
        elif kind == MAPPING_NODE:
            self.mapping_items(node, branch)
        elif kind == SEQUENCE_NODE:
            raise parse_error("YAML documents that are sequences are not supported")
        elif kind == SCALAR_NODE:
            if self.is_null(node):
                return branch
            raise parse_error("YAML documents that are values are not supported")
        elif kind == ALIAS_NODE:
            token = self.alias(node)
            try:
                self.branch(node.alias, branch, False)
            finally:
                self.end_alias(token)
        if not handled:
            _add_comments(node.foot, branch)
        return branch

    def mapping_items(self, node: Any, branch: TreeMap) -> None:
        content = node.content
        self.map_depth += 1
        checked = self.strict == 2 or (self.strict == 1 and self.map_depth == 1)
        seen: dict[tuple[int, str], int] | None = {} if checked else None
        for i in range(0, len(content) - 1, 2):
            key, val = content[i], content[i + 1]
            _add_comments(key.head, branch)
            _add_comments(key.line, branch)
            handle_value = val.kind in (SCALAR_NODE, ALIAS_NODE)
            if handle_value:
                _add_comments(val.head, branch)
                _add_comments(val.line, branch)
            if seen is not None:
                ident = (key.kind, key.value)
                if ident in seen:
                    raise parse_error(f"line {key.line_no}: mapping key {_quote(key.value)} already defined "
                                      f"at line {seen[ident]}")
                seen[ident] = key.line_no
                target = key.alias if key.kind == ALIAS_NODE else key
                if target is not None and target.kind in (MAPPING_NODE, SEQUENCE_NODE):
                    raise parse_error(f"line {key.line_no}: invalid map key")
            self.count()
            k = self.scalar(key) if key.kind == SCALAR_NODE else self.value(key, True)
            v = self.value(val, handle_value)
            if seen is not None and key.kind == SCALAR_NODE and key.value == "<<" and \
                    (key.tag in ("", "!") or short_tag(key.tag) == MERGE_TAG):
                check_merge_value(v, key.line_no)
            branch.append((k, v))
            if handle_value:
                _add_comments(val.foot, branch)
            _add_comments(key.foot, branch)
        self.map_depth -= 1


def load_nodes(text: str, strict: int = 2) -> list[TreeMap]:
    """Documents of a text that may hold comments, through the go-yaml port."""
    from .goparse import NodeBuilder, YAMLSyntaxError

    try:
        builder = NodeBuilder(text)
        converter = NodeConverter(AliasBudget())
        docs: list[TreeMap] = []
        while True:
            node = builder.parse()
            if node is None:
                return docs
            converter.budget = AliasBudget()  # one budget per document, as the fast path
            docs.append(converter.document(node, strict if not docs else 0))
    except YAMLSyntaxError as exc:
        raise parse_error(str(exc)) from None
    except RecursionError:
        raise parse_error("document nesting is too deep") from None
