"""The YAML store: sops 3.11's stores/yaml on top of go-yaml v3, byte for byte.

Reading: see :mod:`.yaml_load` (libyaml events for comment-free text, a port
of go-yaml's scanner/parser otherwise). Writing: see :mod:`.yaml_emit`.
"""

from __future__ import annotations

import gc

from ...errors import (
    COULD_NOT_READ_INPUT_FILE,
    ERROR_DUMPING_TREE,
    GENERIC,
    NEED_AT_LEAST_ONE_DOCUMENT,
    SopsError,
)
from ...lazyre import compile_lazy
from ...tree import Branches, Comment, Time, TreeMap, UInt64
from .emit import emit_documents, emit_value
from .load import YamlError, load_events, load_nodes

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from ...tree import RawMetadata, TreeValue

SOPS_KEY = "sops"
DEFAULT_INDENT = 4

# go-yaml's reader refuses these code points ("control characters are not allowed").
_CONTROL = compile_lazy("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


class YamlStore:
    """sops' YAML store. ``indent`` is ``stores.yaml.indent`` (0 means the default 4)."""

    name = "yaml"

    def __init__(self, indent: int = DEFAULT_INDENT) -> None:
        self.indent = indent

    # -- reading --------------------------------------------------------------------------
    def load_plain(self, data: bytes) -> Branches:
        if not data:
            raise SopsError(NEED_AT_LEAST_ONE_DOCUMENT,
                            "File cannot be completely empty, it must contain at least one document")
        try:
            branches = _load(data, strict=2)
        except YamlError as exc:
            raise SopsError(COULD_NOT_READ_INPUT_FILE, f"Error unmarshalling file: {exc}") from None
        if not branches:
            # sops' first Decode into a map hits the end of the stream.
            raise SopsError(COULD_NOT_READ_INPUT_FILE, "Error unmarshalling file: EOF")
        return branches

    def load_encrypted(self, data: bytes) -> tuple[Branches, RawMetadata | None]:
        if not data:
            return [], None
        try:
            branches = _load(data, strict=1)
        except YamlError as exc:
            # Every sops command reading an encrypted file exits 1 here.
            raise SopsError(GENERIC, f"Error unmarshalling input yaml: {exc}") from None
        metadata = None
        if branches:
            raw = branches[0].get(SOPS_KEY)
            if raw is not None:
                metadata = plain_value(raw)
                if not isinstance(metadata, dict):
                    metadata = None
        return [_without_sops(b) for b in branches], metadata

    # -- writing --------------------------------------------------------------------------
    def _indent(self) -> int:
        if self.indent < 0:
            raise SopsError(ERROR_DUMPING_TREE, "Error dumping file: YAML Negative indentation not accepted")
        return self.indent or DEFAULT_INDENT

    def dump_plain(self, branches: Branches) -> bytes:
        return _encode(_emit(list(branches), self._indent()))

    def dump_encrypted(self, branches: Branches, metadata: RawMetadata) -> bytes:
        meta = tree_value(metadata)
        docs = []
        for branch in branches:
            doc = TreeMap(branch)
            doc.append((SOPS_KEY, meta))
            docs.append(doc)
        return _encode(_emit(docs, self._indent()))

    def metadata_tail(self, metadata: RawMetadata) -> bytes:
        """What :meth:`dump_encrypted` writes after a single document's data: the
        top-level ``sops:`` block (see ``updater.splice_metadata``)."""
        return _encode(_emit([TreeMap([(SOPS_KEY, tree_value(metadata))])], self._indent()))

    def dump_value(self, value: TreeValue) -> bytes:
        """``decrypt --extract`` output of one value."""
        if isinstance(value, str):
            return _encode(value)
        if isinstance(value, (TreeMap, dict)):
            return _encode(_emit([tree_value(value)], self._indent()))
        try:
            return _encode(emit_value(tree_value(value)))
        except RecursionError:
            raise SopsError(ERROR_DUMPING_TREE, "Error dumping tree: nesting is too deep") from None


def _emit(docs: list[TreeValue], indent: int) -> str:
    try:
        return emit_documents(docs, indent)
    except RecursionError:
        raise SopsError(ERROR_DUMPING_TREE, "Error dumping file: nesting is too deep") from None


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _decode(data: bytes) -> str:
    """go-yaml's reader: a BOM picks UTF-16 or UTF-8, otherwise UTF-8."""
    try:
        if data.startswith(b"\xff\xfe"):
            text = data[2:].decode("utf-16-le")
        elif data.startswith(b"\xfe\xff"):
            text = data[2:].decode("utf-16-be")
        elif data.startswith(b"\xef\xbb\xbf"):
            text = data[3:].decode("utf-8")
        else:
            text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"yaml: invalid {exc.encoding} data") from None
    bad = _CONTROL.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        raise YamlError(f"yaml: line {line}: control characters are not allowed")
    return text


def _load(data: bytes, strict: int) -> Branches:
    text = _decode(data)
    # Building the tree allocates one container per node and frees none; the
    # cyclic collector would rescan the growing tree again and again.
    paused = gc.isenabled()
    gc.disable()
    try:
        if "#" not in text:
            return load_events(text, strict) or []
        # A "#" inside values only (URLs, passwords) still allows the fast reader.
        docs = load_events(text, strict, hashes=True)
        return docs if docs is not None else load_nodes(text, strict)
    except RecursionError:
        raise YamlError("yaml: document nesting is too deep") from None
    finally:
        if paused:
            gc.enable()


def metadata_comments(data: bytes) -> list[str]:
    """The comments inside the ``sops`` mapping of the first document (sops
    writes none there, and drops them on any rewrite; the audit flags them).
    Empty when the file does not load."""
    try:
        branches = _load(data, strict=1)
    except YamlError:
        return []
    raw = branches[0].get(SOPS_KEY) if branches else None
    found: list[str] = []
    _collect_comments(raw, found, 0)
    return found


def _collect_comments(value: TreeValue, found: list[str], depth: int) -> None:
    if depth > 50:
        return
    items = list(value) if isinstance(value, (TreeMap, list)) else []
    for entry in items:
        if type(entry) is Comment:
            found.append(entry.text)
        elif isinstance(value, TreeMap) and type(entry) is tuple:
            _collect_comments(entry[1], found, depth + 1)
        else:
            _collect_comments(entry, found, depth + 1)


def _without_sops(branch: TreeMap) -> TreeMap:
    """sops removes the ``sops`` key while ranging over the same slice in Go;
    mirror that loop (an adjacent second ``sops`` key survives)."""
    items = list(branch)
    length = len(items)
    for i in range(len(items)):
        if i >= length:
            break
        entry = items[i]
        if type(entry) is tuple and entry[0] == SOPS_KEY and isinstance(entry[0], str):
            items[i:length - 1] = items[i + 1:length]
            length -= 1
    return TreeMap(items[:length])


def plain_value(value: TreeValue) -> TreeValue:
    """A tree value as plain Python for the metadata block (comments dropped)."""
    if isinstance(value, TreeMap):
        return {k: plain_value(v) for k, v in value.items_()}
    if isinstance(value, list):
        return [plain_value(v) for v in value if type(v) is not Comment]
    if isinstance(value, Time):
        return value.text
    if isinstance(value, UInt64):
        return int(value)
    return value


def tree_value(value: TreeValue) -> TreeValue:
    """Plain dicts (metadata) as TreeMaps; tree values unchanged."""
    if isinstance(value, TreeMap):
        return value
    if isinstance(value, dict):
        return TreeMap((k, tree_value(v)) for k, v in value.items())
    if isinstance(value, list):
        return [v if type(v) is Comment else tree_value(v) for v in value]
    return value
