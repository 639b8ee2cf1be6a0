"""INI store (sops' `stores/ini/store.go`): the parsing and writing rules of go-ini v1.67.1 as sops
3.11 configures it (non-unique sections, ``=`` and ``:`` delimiters, inline
comments, quotes, ``\"\"\"`` multi-line values, backslash continuation lines).

Tree shape: one entry per section, ``(name, TreeMap)``, always starting with
the implicit ``DEFAULT`` section. Inside a section the section comment comes
first, then each key followed by its comment (go-ini attaches the comment
lines above a key, plus an inline comment, to the key; the writer puts it back
above the key). Values are strings.
"""

from __future__ import annotations

import re

from ..errors import COULD_NOT_READ_INPUT_FILE, ERROR_DUMPING_TREE, GENERIC, SopsError
from ..lazyre import compile_lazy
from ..tree import Branches, Comment, Time, TreeMap, go_float_g, val_to_string
from .flatten import flatten, unflatten

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from ..tree import RawMetadata, TreeValue

DEFAULT_SECTION = "DEFAULT"
# Go's unicode.IsSpace (Python's str.isspace also counts \x1c-\x1f).
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_DELIMITER = compile_lazy("[=:]")
_COMMENT_MARK = compile_lazy("[#;]")


class _IniError(Exception):
    pass


def go_trim_space(text: str) -> str:
    return text.strip(GO_SPACE)


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


class _Key:
    __slots__ = ("name", "value", "comment")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value
        self.comment = ""


class _Section:
    __slots__ = ("name", "comment", "keys")

    def __init__(self, name: str) -> None:
        self.name = name
        self.comment = ""
        self.keys: dict[str, _Key] = {}

    def new_key(self, name: str, value: str) -> _Key:
        # go-ini: a repeated key keeps its place and takes the new value.
        key = self.keys.get(name)
        if key is None:
            key = self.keys[name] = _Key(name, value)
        else:
            key.value = value
        return key


# --- parsing -------------------------------------------------------------------


class _Parser:
    """go-ini's line parser, on text decoded with surrogateescape."""

    def __init__(self, data: bytes) -> None:
        if data[:2] in (b"\xfe\xff", b"\xff\xfe"):
            data = data[2:]
        elif data[:3] == b"\xef\xbb\xbf":
            data = data[3:]
        self.text = data.decode("utf-8", "surrogateescape")
        self.pos = 0
        self.eof = False
        self.comment: list[str] = []

    def read_line(self) -> str:
        """The next line with its newline; sets ``eof`` when no newline was left."""
        end = self.text.find("\n", self.pos)
        if end == -1:
            line = self.text[self.pos :]
            self.pos = len(self.text)
            self.eof = True
            return line
        line = self.text[self.pos : end + 1]
        self.pos = end + 1
        return line

    def take_comment(self) -> str:
        text = go_trim_space("".join(self.comment))
        self.comment.clear()
        return text

    def parse(self) -> list[_Section]:
        sections = [_Section(DEFAULT_SECTION)]
        section = sections[0]
        counter = 1
        while not self.eof:
            line = self.read_line().lstrip(GO_SPACE)
            if not line:
                continue
            if line[0] in "#;":
                self.comment.append(line)
                continue
            if line[0] == "[":
                section = self._section_header(line)
                sections.append(section)
                counter = 1
                continue
            name, offset = _read_key_name(line)
            if name == "-":
                name = f"#{counter}"
                counter += 1
            value = self._read_value(line[offset:])
            if not name:
                raise _IniError("error creating new key: empty key name")
            section.new_key(name, value).comment = self.take_comment()
        return sections

    def _section_header(self, line: str) -> _Section:
        close = line.rfind("]")
        if close == -1:
            raise _IniError("unclosed section")
        name = line[1:close]
        if not name:
            raise _IniError("empty section name")
        section = _Section(name)
        mark = _COMMENT_MARK.search(line, close + 1)
        if mark:
            self.comment.append(line[mark.start() :])
        section.comment = self.take_comment()
        return section

    def _read_value(self, raw: str) -> str:
        line = raw.lstrip(GO_SPACE)
        if not line:
            return ""
        quote = '"""' if len(line) > 3 and line.startswith('"""') else "`" if line[0] == "`" else ""
        if quote:
            body = line[len(quote) :]
            end = body.rfind(quote)
            if end == -1:
                return self._read_multiline(body, quote)
            return body[:end]
        line = go_trim_space(line)
        if line[-1] == "\\":
            return self._read_continuation(line[:-1])
        mark = _COMMENT_MARK.search(line)
        if mark:
            self.comment.append(line[mark.start() :])
            line = go_trim_space(line[: mark.start()])
        if _surrounded_by(line, "'") or _surrounded_by(line, '"'):
            line = line[1:-1]
        return line

    def _read_multiline(self, value: str, quote: str) -> str:
        while True:
            line = self.read_line()
            end = line.rfind(quote)
            # go-ini 1.67.1 (the version in the sops 3.11.0 binary) reads a line
            # ending in a backslash as part of the value even if it holds the quote.
            if end > -1 and not go_trim_space(line).endswith("\\"):
                value += line[:end]
                mark = _COMMENT_MARK.search(line, end)
                if mark:
                    self.comment.append(go_trim_space(line[mark.start() :]))
                return value
            value += line
            if self.eof:
                raise _IniError("missing closing key quote")

    def _read_continuation(self, value: str) -> str:
        while True:
            line = go_trim_space(self.read_line())
            if not line:
                return value
            value += line
            if value[-1] != "\\":
                return value
            value = value[:-1]


def _read_key_name(line: str) -> tuple[str, int]:
    """Key name and the offset just past its delimiter (go-ini readKeyName)."""
    quote = ""
    if line[0] == '"':
        quote = '"""' if _byte_len(line) > 6 and line.startswith('"""') else '"'
    elif line[0] == "`":
        quote = "`"
    if quote:
        start = len(quote)
        close = line.find(quote, start)
        if close == -1:
            raise _IniError("missing closing key quote")
        delimiter = _DELIMITER.search(line, close + start)
        if delimiter is None:
            raise _IniError("key-value delimiter not found")
        return go_trim_space(line[start:close]), delimiter.start() + 1
    delimiter = _DELIMITER.search(line)
    if delimiter is None:
        raise _IniError("key-value delimiter not found")
    if delimiter.start() == 0:
        raise _IniError("empty key name")
    return go_trim_space(line[: delimiter.start()]), delimiter.start() + 1


def _surrounded_by(text: str, quote: str) -> bool:
    return len(text) >= 2 and text[0] == quote and text[-1] == quote and text.find(quote, 1) == len(text) - 1


def strip_comment_char(comment: str) -> str:
    if comment.startswith(";"):
        return comment.lstrip("; ")
    if comment.startswith("#"):
        return comment.lstrip("# ")
    return comment


def _parse_sections(data: bytes, code: int) -> list[_Section]:
    try:
        return _Parser(data).parse()
    except _IniError as exc:
        raise SopsError(code, f"Could not unmarshal input data: {exc}") from None


def _section_tree(section: _Section) -> TreeMap:
    items = TreeMap()
    if section.comment:
        items.append(Comment(strip_comment_char(section.comment)))
    for key in section.keys.values():
        items.append((key.name, key.value))
        if key.comment:
            items.append(Comment(strip_comment_char(key.comment)))
    return items


# --- writing -------------------------------------------------------------------


def _sections_from_tree(branches: Branches) -> list[_Section]:
    sections: list[_Section] = []
    for branch in branches:
        for entry in branch:
            if type(entry) is not tuple:
                continue
            name, body = entry
            if not isinstance(name, str) or not name:
                problem = "empty section name" if name == "" else "section name is not a string"
                raise SopsError(ERROR_DUMPING_TREE, f"Error marshaling to ini: Error encoding section: {problem}")
            if not isinstance(body, TreeMap):
                raise SopsError(
                    ERROR_DUMPING_TREE,
                    "Error marshaling to ini: Error encoding section: Section values should always be TreeBranches",
                )
            sections.append(_section_from_tree(name, body))
    return sections


def _section_from_tree(name: str, body: TreeMap) -> _Section:
    section = _Section(name)
    start = 0
    if body and isinstance(body[0], Comment):
        section.comment = body[0].text
        start = 1
    last: _Key | None = None
    for entry in body[start:]:
        if isinstance(entry, Comment):
            # A comment belongs to the key before it; one before any key is lost.
            if last is not None:
                last.comment = entry.text
            continue
        key, value = entry
        if not isinstance(key, str) or not key:
            problem = "error creating new key: empty key name" if key == "" else "key is not a string"
            raise SopsError(ERROR_DUMPING_TREE, f"Error marshaling to ini: Error encoding key: {problem}")
        last = section.new_key(key, ini_value_text(value))
    return section


def ini_value_text(value: TreeValue) -> str:
    """sops' ValToString; nested values print as Go's ``%v`` does (sops writes them so)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (TreeMap, list)):
        return go_sprint(value)
    try:
        return val_to_string(value)
    except TypeError:
        return go_sprint(value)


def go_sprint(value: TreeValue) -> str:
    """Go ``fmt.Sprintf("%v")`` of a tree value."""
    if isinstance(value, TreeMap):
        return "[" + " ".join(_sprint_entry(e) for e in value) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_sprint(item) for item in value) + "]"
    if isinstance(value, Comment):
        return "{" + value.text + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return go_float_g(value)
    if value is None:
        return "<nil>"
    if isinstance(value, Time):
        return _go_time_string(value.text)
    return str(value)


def _sprint_entry(entry: TreeValue) -> str:
    if isinstance(entry, Comment):
        return "{" + go_sprint(entry) + " <nil>}"
    key, value = entry
    return "{" + go_sprint(key) + " " + go_sprint(value) + "}"


def _go_time_string(text: str) -> str:
    """RFC 3339 text -> Go's ``time.Time.String()`` layout."""
    match = re.fullmatch(r"(\d{4,}-\d\d-\d\d)T(\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:\d\d)", text)
    if not match:
        return text
    date, clock, zone = match.groups()
    if zone == "Z":
        return f"{date} {clock} +0000 UTC"
    offset = zone.replace(":", "")
    return f"{date} {clock} {offset} {offset}"


def _comment_lines(comment: str, trim_plain: bool) -> list[str]:
    lines = []
    for line in comment.split("\n"):
        if not line:
            # go-ini indexes line[0] and panics here.
            raise SopsError(ERROR_DUMPING_TREE, "Error marshaling to ini: empty line in a comment")
        if line[0] in "#;":
            lines.append(line[0] + " " + go_trim_space(line[1:]) + "\n")
        else:
            lines.append("; " + (go_trim_space(line) if trim_plain else line) + "\n")
    return lines


def _display_key(name: str) -> str:
    if '"' in name or _DELIMITER.search(name):
        return "`" + name + "`"
    if "`" in name:
        return '"""' + name + '"""'
    return name


def _display_value(value: str) -> str:
    if "\n" in value or "`" in value:
        return '"""' + value + '"""'
    if _COMMENT_MARK.search(value):
        return "`" + value + "`"
    if go_trim_space(value) != value:
        return '"' + value + '"'
    return value


def _write_sections(sections: list[_Section]) -> str:
    out: list[str] = []
    last = len(sections) - 1
    for index, section in enumerate(sections):
        if section.comment:
            out.extend(_comment_lines(section.comment, trim_plain=False))
        if index > 0 or section.name.upper() != DEFAULT_SECTION:
            out.append(f"[{section.name}]\n")
        elif not section.keys:
            # An empty leading DEFAULT section is not written, nor the blank line after it.
            continue
        names = [_display_key(key.name) for key in section.keys.values()]
        width = max((_byte_len(n) for n in names), default=0)
        for key, name in zip(section.keys.values(), names, strict=True):
            if key.comment:
                out.extend(_comment_lines(key.comment, trim_plain=True))
            out.append(name + " " * (width - _byte_len(name)) + " = " + _display_value(key.value) + "\n")
        if index != last:
            out.append("\n")
    return "".join(out)


# --- the store -----------------------------------------------------------------


class IniStore:
    name = "ini"

    def load_plain(self, data: bytes) -> Branches:
        sections = _parse_sections(data, COULD_NOT_READ_INPUT_FILE)
        return [TreeMap((s.name, _section_tree(s)) for s in sections)]

    def load_encrypted(self, data: bytes) -> tuple[Branches, RawMetadata | None]:
        # sops' decrypt reports load failures with exit 1.
        sections = _parse_sections(data, GENERIC)
        sops_sections = [s for s in sections if s.name == "sops"]
        branch = TreeMap((s.name, _section_tree(s)) for s in sections if s.name != "sops")
        if not sops_sections:
            return [branch], None
        # Like go-ini's KeysHash of the first [sops]: the last value of each key.
        flat = {key.name: key.value for key in sops_sections[0].keys.values()}
        return [branch], unflatten(flat)

    def dump_plain(self, branches: Branches) -> bytes:
        return _write_sections(_sections_from_tree(branches)).encode("utf-8", "surrogateescape")

    def dump_encrypted(self, branches: Branches, metadata: RawMetadata) -> bytes:
        flat = flatten(metadata)
        # sops 3.11 writes [sops] in random (Go map) order; sorted is one of those orders.
        sops_section = TreeMap((key, flat[key]) for key in sorted(flat))
        return self.dump_plain([*branches, TreeMap([("sops", sops_section)])])

    def metadata_tail(self, metadata: RawMetadata) -> bytes:
        """The ``[sops]`` section :meth:`dump_encrypted` writes after the data
        sections (sops itself writes its lines in any order)."""
        return self.dump_encrypted([], metadata)

    def dump_value(self, value: TreeValue) -> bytes:
        """``decrypt --extract``: a mapping as a document, a string raw, else Go JSON."""
        if isinstance(value, TreeMap):
            return self.dump_plain([value])
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        from .json_store import go_json_marshal

        return go_json_marshal(value).encode("utf-8", "surrogateescape")
