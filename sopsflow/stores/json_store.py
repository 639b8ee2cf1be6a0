"""JSON store: Go ``encoding/json`` semantics as sops 3.11 uses them (sops' `stores/json/store.go`).

Reading keeps key order and duplicate keys and makes every number a float
(3.11 decodes JSON numbers as float64). Writing reproduces sops' output: the
tree is marshalled value by value with Go's escaping and float format, then
re-indented (tab by default), with a final newline.
"""

from __future__ import annotations

import math
import sys

from ..errors import COULD_NOT_READ_INPUT_FILE, ERROR_DUMPING_TREE, GENERIC, SopsError
from ..lazyre import compile_lazy
from ..tree import Branches, Comment, Time, TreeMap, go_float_f, go_float_g

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..tree import RawMetadata, TreeValue

_JSON_SPACE = " \t\n\r"
# Characters Go's json.Marshal escapes that Python's json.dumps(ensure_ascii=False)
# leaves alone. Surrogates stand for invalid UTF-8 bytes (surrogateescape); Go
# writes each such byte as \ufffd.
_GO_EXTRA_ESCAPES = compile_lazy("[<>&\u2028\u2029\ud800-\udfff]")
_GO_EXTRA_TABLE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_SURROGATE = compile_lazy("[\ud800-\udfff]")
# A \u escape of a surrogate: Python keeps unpaired ones, Go turns them into U+FFFD.
_SURROGATE_ESCAPE = compile_lazy(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _NumberOutOfRange(ValueError):
    pass


class _NotGoJson(ValueError):
    """A literal Python's json accepts but Go's rejects (NaN, Infinity)."""


def _go_number(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NumberOutOfRange(text)
    return value


def _reject_constant(text: str) -> TreeValue:
    raise _NotGoJson(text)


class _ScanContext:
    """What ``json.JSONDecoder`` hands its scanner: strict strings, objects as
    TreeMaps (order and duplicate keys kept), numbers as Go's float64."""

    strict = True
    object_hook = None
    object_pairs_hook = TreeMap
    parse_float = staticmethod(_go_number)
    parse_int = staticmethod(_go_number)
    parse_constant = staticmethod(_reject_constant)
    memo: dict[str, str] = {}


# The json package is not imported: json.decoder and json.encoder compile six
# patterns and build their Python fallbacks at import (~1.5 ms of every JSON
# command's start), and the store needs only the C scanner and string escaper
# they wrap. The scanner raises json.decoder.JSONDecodeError, which it looks
# up in sys.modules; see _raw_decode for the document that fails to parse.
try:
    from _json import encode_basestring as _encode_basestring
    from _json import make_scanner as _make_scanner
except ImportError:  # pragma: no cover - an interpreter without the C accelerator
    from json.encoder import py_encode_basestring as _encode_basestring
    from json.scanner import make_scanner as _make_scanner

_scan_once = _make_scanner(_ScanContext())  # type: ignore[arg-type]  # any object with JSONDecoder's attributes


def _raw_decode(text: str, start: int) -> tuple[TreeValue, int]:
    """``json.JSONDecoder.raw_decode`` with the context above."""
    try:
        return _scan_once(text, start)
    except StopIteration as err:
        from json import JSONDecodeError

        raise JSONDecodeError("Expecting value", text, err.value) from None
    except SystemError:
        # A syntax error with json.decoder not loaded yet: the C scanner finds no
        # JSONDecodeError to raise and fails without an exception. Load it and
        # scan again, which raises the real error.
        if "json.decoder" in sys.modules:
            raise
        import json.decoder  # noqa: F401

        return _raw_decode(text, start)
    finally:
        _ScanContext.memo.clear()  # the Python scanner's key cache (the C one clears its own)


# --- reading -----------------------------------------------------------------


def parse_object(data: bytes, code: int, *, whole: bool) -> TreeMap:
    """Parse a JSON document whose top level must be an object.

    ``whole`` demands that nothing but whitespace follows the object (sops'
    json.Unmarshal when reading an encrypted file); without it trailing bytes
    are ignored, as sops' token reader does for plaintext input.
    """
    prefix = "Error unmarshalling input json" if whole else "Could not unmarshal input data"
    try:
        # Valid UTF-8 decodes without surrogates: no search of the text for them.
        text = data.decode("utf-8")
        surrogates = False
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
        surrogates = True
    start = _skip_space(text, 0)
    if start == len(text):
        raise SopsError(code, f"{prefix}: {'unexpected end of JSON input' if whole else 'EOF'}")
    first = text[start]
    if first != "{":
        raise SopsError(code, f"{prefix}: {_describe_start(first)}")
    try:
        value, end = _raw_decode(text, start)
    except _NumberOutOfRange:
        raise SopsError(code, f"{prefix}: cannot unmarshal number into Go value of type float64") from None
    except _NotGoJson:
        raise SopsError(code, f"{prefix}: invalid character looking for beginning of value") from None
    except ValueError as exc:
        from json import JSONDecodeError  # loaded by the scanner that raised it

        if not isinstance(exc, JSONDecodeError):
            raise
        raise SopsError(code, f"{prefix}: {exc.msg} at offset {exc.pos}") from None
    except RecursionError:
        raise SopsError(code, f"{prefix}: exceeded max depth") from None
    if whole and _skip_space(text, end) != len(text):
        raise SopsError(code, f"{prefix}: invalid character after top-level value at offset {end}")
    # The escape regex scans only texts with a "\\u" in them (a fast substring
    # search): a 13 MB binary value would otherwise cost ~0.1 s of regex.
    if surrogates or ("\\u" in text and _SURROGATE_ESCAPE.search(text)):
        value = _replace_surrogates(value)
    return value  # type: ignore[no-any-return]


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _JSON_SPACE:
        pos += 1
    return pos


def _describe_start(first: str) -> str:
    # Go names the token it found; the value itself is left out (it may be secret).
    if first == "[":
        return "Expected JSON object start, got delimiter [ instead"
    kinds = {'"': "string", "t": "bool", "f": "bool", "n": "<nil>"}
    kind = kinds.get(first, "float64" if first in "-0123456789" else "")
    if kind:
        return f"Expected JSON object start, got {kind} value instead"
    return "invalid character looking for beginning of value"


def _replace_surrogates(node: TreeValue) -> TreeValue:
    """Go decodes invalid UTF-8 and unpaired surrogate escapes as U+FFFD."""
    if isinstance(node, str):
        return _SURROGATE.sub("\ufffd", node)
    if isinstance(node, TreeMap):
        return TreeMap((_replace_surrogates(k), _replace_surrogates(v)) for k, v in node)
    if isinstance(node, list):
        return [_replace_surrogates(item) for item in node]
    return node


def plain_python(node: TreeValue) -> TreeValue:
    """A parsed metadata subtree -> plain dicts/lists (last duplicate key wins,
    as with Go's json.Unmarshal); integral floats become ints because the
    metadata's numbers (``shamir_threshold``) are Go ints."""
    if isinstance(node, TreeMap):
        return {k: plain_python(v) for k, v in node}
    if isinstance(node, list):
        return [plain_python(item) for item in node]
    if isinstance(node, float) and node.is_integer():
        return int(node)
    return node


# --- writing -----------------------------------------------------------------


#: Printable ASCII that Go's json.Marshal writes as is (not quote, backslash or the HTML characters).
_AS_IS = bytes(c for c in range(0x20, 0x80) if chr(c) not in '"\\<>&')
#: Strings longer than this try the as-is check first.
_LONG = 4096


def go_json_string(text: str) -> str:
    """Go ``json.Marshal`` of a string (HTML-safe escaping, raw non-ASCII)."""
    # encode_basestring is json's C escaper for ensure_ascii=False: it escapes
    # quote, backslash and control characters exactly as Go does (\b \f \n \r \t, else \u00XX).
    if len(text) > _LONG and text.isascii() and not text.encode("ascii").translate(None, _AS_IS):
        # A long value with nothing to escape (the base64 of a binary file's
        # ENC[]): a byte-table check is several times faster than the escaper.
        return f'"{text}"'
    out = _encode_basestring(text)
    if out.isascii():
        # Fast path (isascii is a flag check): only the HTML characters can need work.
        if "<" in out or ">" in out or "&" in out:
            out = out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return out
    if _GO_EXTRA_ESCAPES.search(out):
        out = _GO_EXTRA_ESCAPES.sub(lambda m: _GO_EXTRA_TABLE.get(m.group(), "\\ufffd"), out)
    return out


def go_json_float(value: float) -> str:
    """Go ``json.Marshal`` of a float64: plain decimal for 1e-6 <= |x| < 1e21,
    otherwise shortest exponent form with e-07 shortened to e-7."""
    if math.isnan(value) or math.isinf(value):
        raise SopsError(ERROR_DUMPING_TREE, f"Error marshaling to json: json: unsupported value: {go_float_g(value)}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        # repr() uses the exponent form throughout this range, with Go's digits.
        mantissa, _, exponent = repr(value).partition("e")
        if exponent.startswith("-0"):
            exponent = "-" + exponent[2:]
        return f"{mantissa}e{exponent}"
    return go_float_f(value)


def go_json_scalar(value: TreeValue) -> str:
    if isinstance(value, str):
        return go_json_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return go_json_float(value)
    if value is None:
        return "null"
    if isinstance(value, Time):
        return go_json_string(value.text)
    raise SopsError(ERROR_DUMPING_TREE, f"Error marshaling to json: unsupported type {type(value).__name__}")


def _key_text(key: TreeValue) -> str:
    if type(key) is not str and not isinstance(key, str):
        raise SopsError(ERROR_DUMPING_TREE, "Error marshaling to json: mapping key is not a string")
    return go_json_string(key)


def _encode(value: TreeValue, parts: list[str], level: int, indent: str) -> None:
    """Append the indented encoding of ``value``; comments are dropped.

    Written for speed (this is the whole JSON output path): strings, the most
    common leaves, are handled inline without another call.
    """
    if isinstance(value, (TreeMap, dict)):
        pairs: Any = value.items() if isinstance(value, dict) else [e for e in value if type(e) is tuple]
        if not pairs:
            parts.append("{}")
            return
        first = "\n" + indent * (level + 1)
        rest = "," + first
        parts.append("{")
        for key, member in pairs:
            parts.append(first)
            first = rest
            parts.append(_key_text(key))
            parts.append(": ")
            if type(member) is str:
                parts.append(go_json_string(member))
            else:
                _encode(member, parts, level + 1, indent)
        parts.append("\n" + indent * level + "}")
    elif isinstance(value, list):
        items = [item for item in value if type(item) is not Comment]
        if not items:
            parts.append("[]")
            return
        first = "\n" + indent * (level + 1)
        rest = "," + first
        parts.append("[")
        for item in items:
            parts.append(first)
            first = rest
            if type(item) is str:
                parts.append(go_json_string(item))
            else:
                _encode(item, parts, level + 1, indent)
        parts.append("\n" + indent * level + "]")
    elif type(value) is Comment:
        # a type:comment tag edited onto a value, read with --ignore-mac:
        # encoding/json marshals sops' Comment{Value} struct by its field name
        _encode({"Value": value.text}, parts, level, indent)
    else:
        parts.append(go_json_scalar(value))


def encode_indented(value: TreeValue, indent: int) -> str:
    """sops' ``encodeValue`` + ``reindentJSON`` (json.Indent with no prefix)."""
    if indent < -1:
        raise SopsError(
            ERROR_DUMPING_TREE, "Error marshaling to json: JSON Indentation parameter smaller than -1 is not accepted"
        )
    unit = "\t" if indent == -1 else " " * indent
    parts: list[str] = []
    try:
        _encode(value, parts, 0, unit)
    except RecursionError:
        raise SopsError(ERROR_DUMPING_TREE, "Error marshaling to json: document nested too deeply") from None
    return "".join(parts)


def go_json_marshal(value: TreeValue) -> str:
    """Compact Go ``json.Marshal`` of an arbitrary tree value, with sops' tree
    types marshalled as Go structs (how the INI store's EmitValue prints them)."""
    if isinstance(value, TreeMap):
        return "[" + ",".join(_tree_item(e) for e in value) + "]"
    if isinstance(value, list):
        return "[" + ",".join(go_json_marshal(item) for item in value) + "]"
    if isinstance(value, Comment):
        return '{"Value":' + go_json_string(value.text) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_key_text(k)}:{go_json_marshal(v)}" for k, v in value.items()) + "}"
    return go_json_scalar(value)


def _tree_item(entry: TreeValue) -> str:
    if isinstance(entry, Comment):
        return '{"Key":' + go_json_marshal(entry) + ',"Value":null}'
    key, value = entry
    return '{"Key":' + go_json_marshal(key) + ',"Value":' + go_json_marshal(value) + "}"


# --- the store ---------------------------------------------------------------


class JsonStore:
    """sops' JSON store. ``indent`` -1 = tab, N >= 0 = N spaces, < -1 = error on output."""

    name = "json"

    def __init__(self, indent: int = -1) -> None:
        self.indent = indent

    def load_plain(self, data: bytes) -> Branches:
        return [parse_object(data, COULD_NOT_READ_INPUT_FILE, whole=False)]

    def load_encrypted(self, data: bytes) -> tuple[Branches, RawMetadata | None]:
        # sops first json.Unmarshals the whole file (strict: no trailing data);
        # its errors surface as exit 1 from decrypt and friends.
        branch = parse_object(data, GENERIC, whole=True)
        raw: Any = None
        kept = TreeMap()
        for entry in branch:
            if type(entry) is tuple and entry[0] == "sops":
                raw = entry[1]
            else:
                kept.append(entry)
        if raw is None:
            return [kept], None
        if not isinstance(raw, TreeMap):
            raise SopsError(
                GENERIC,
                "Error unmarshalling input json: cannot unmarshal non-object into Go struct field SopsFile.sops",
            )
        return [kept], plain_python(raw)

    def dump_plain(self, branches: Branches) -> bytes:
        return self._dump(branches[0])

    def dump_encrypted(self, branches: Branches, metadata: RawMetadata) -> bytes:
        branch = TreeMap(branches[0])
        branch.append(("sops", metadata))
        return self._dump(branch)

    def metadata_tail(self, metadata: RawMetadata) -> bytes:
        """What :meth:`dump_encrypted` writes after the data members: the
        ``"sops"`` member and the closing brace (see ``updater.splice_metadata``)."""
        alone = self._dump(TreeMap([("sops", metadata)]))
        return alone[2:]  # without the opening "{\n"

    def dump_value(self, value: TreeValue) -> bytes:
        """``decrypt --extract``: a mapping as a document, a string raw, else JSON."""
        if isinstance(value, TreeMap):
            return self.dump_plain([value])
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        return encode_indented(value, self.indent).encode("utf-8", "surrogateescape")

    def _dump(self, branch: TreeMap) -> bytes:
        return (encode_indented(branch, self.indent) + "\n").encode("utf-8", "surrogateescape")
