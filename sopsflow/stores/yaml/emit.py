"""Byte-exact YAML output as sops 3.11 writes it (go.yaml.in/yaml/v3 encoder).

sops turns its tree into yaml.Node objects (comments become head comments of
the next key/item, trailing ones foot comments of the last) and encodes them
with go-yaml's emitter. This module walks the tree in the same order and
mirrors the emitter's state machine: the same indentation arithmetic, the same
comment buffers (a foot comment can surface later than expected, a blank line
follows a foot comment at the same indentation), the same scalar styles.
Every "why" that is not obvious is a go-yaml quirk reproduced on purpose.
"""

from __future__ import annotations

import math

from ...lazyre import compile_lazy
from ...tree import Comment, Time, TreeMap, go_float_g
from .resolve import STR_TAG, is_base60_float, is_old_bool, plain_tag

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

PLAIN, SINGLE, DOUBLE, LITERAL, SINGLE_BREAKS = 0, 1, 2, 3, 4

_BREAKS = "\r\n\x85\u2028\u2029"
_OTHER_BREAKS = compile_lazy("[\r\x85\u2028\u2029]")  # line breaks other than "\n"
# Printable ASCII strings whose first character cannot start a YAML indicator or
# another type: plain in block context unless ": ", " #", a trailing space or
# colon, or a reserved word says otherwise (checked in string_style).
_SAFE_PLAIN = compile_lazy(r"[A-Za-z_/(][ -~]*\Z")
_HINT_LETTERS = frozenset("yYnNtTfFoO")
_RESERVED_WORDS = frozenset(("true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL",
                             "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
                             "n", "N", "no", "No", "NO", "off", "Off", "OFF"))
_ESCAPES = {0x00: "0", 0x07: "a", 0x08: "b", 0x09: "t", 0x0A: "n", 0x0B: "v", 0x0C: "f", 0x0D: "r",
            0x1B: "e", 0x22: '"', 0x5C: "\\", 0x85: "N", 0xA0: "_", 0x2028: "L", 0x2029: "P"}
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")


def _printable(cp: int) -> bool:
    return (cp == 0x0A or 0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xD7FF
            or (0xE000 <= cp <= 0xFFFD and cp != 0xFEFF))


# Multi-line printable ASCII whose lines neither start nor end with a space (age
# and PGP armour, certificates): go-yaml allows single quotes and a literal
# block, never plain. One regex instead of a character loop over kilobytes.
_CLEAN_LINES = compile_lazy(r"[!-~](?:[ -~]*[!-~])?(?:\n(?:[!-~](?:[ -~]*[!-~])?)?)*\Z")


def _analyze(s: str) -> tuple[bool, bool, bool, bool]:
    """go-yaml's yaml_emitter_analyze_scalar: (multiline, block_plain_allowed,
    single_quoted_allowed, block_allowed). Flow context is never needed here."""
    if "\n" in s and _CLEAN_LINES.match(s):
        return True, False, True, True
    return analyze_chars(s)


def analyze_chars(s: str) -> tuple[bool, bool, bool, bool]:
    """:func:`_analyze` character by character, as go-yaml does it."""
    if not s:
        return False, True, True, False
    block_ind = s.startswith("---") or s.startswith("...")
    line_breaks = special = tabs = False
    leading_space = leading_break = trailing_space = trailing_break = False
    break_space = space_break = False
    prev_space = prev_break = False
    preceded_ws = True
    n = len(s)
    for i, ch in enumerate(s):
        followed_ws = i + 1 >= n or s[i + 1] in " \t"
        if i == 0:
            if ch in _FIRST_INDICATORS:
                block_ind = True
            elif ch in "?:":
                if followed_ws:
                    block_ind = True
            elif ch == "-" and followed_ws:
                block_ind = True
        elif ch == ":":
            if followed_ws:
                block_ind = True
        elif ch == "#" and preceded_ws:
            block_ind = True
        cp = ord(ch)
        if ch == "\t":
            tabs = True
        elif not _printable(cp):
            special = True
        if ch == " ":
            if i == 0:
                leading_space = True
            if i == n - 1:
                trailing_space = True
            if prev_break:
                break_space = True
            prev_space, prev_break = True, False
        elif ch in _BREAKS:
            line_breaks = True
            if i == 0:
                leading_break = True
            if i == n - 1:
                trailing_break = True
            if prev_space:
                space_break = True
            prev_space, prev_break = False, True
        else:
            prev_space = prev_break = False
        preceded_ws = ch in " \t" or ch in _BREAKS
    plain_ok = single_ok = block_ok = True
    if leading_space or leading_break or trailing_space or trailing_break:
        plain_ok = False
    if trailing_space:
        block_ok = False
    if break_space:
        plain_ok = single_ok = False
    if space_break or tabs or special:
        plain_ok = single_ok = False
    if space_break or special:
        block_ok = False
    if line_breaks or block_ind:
        plain_ok = False
    return line_breaks, plain_ok, single_ok, block_ok


def string_style(s: str) -> tuple[int, bool]:
    """The style go-yaml finally uses for a string value, and whether it is multi-line.

    sops builds the node with Node.Encode, i.e. emits the string once as a
    document root and parses it back, so the style chosen there sticks."""
    if (_SAFE_PLAIN.match(s) and s[-1] != " " and s[-1] != ":" and ": " not in s and " #" not in s
            and (s[0] not in _HINT_LETTERS or s not in _RESERVED_WORDS)):
        return PLAIN, False
    multiline, plain_ok, single_ok, block_ok = _analyze(s)
    if "\n" in s:
        style = LITERAL
    elif plain_tag(s) == STR_TAG and not (is_base60_float(s) or is_old_bool(s)):
        style = PLAIN
    else:
        style = DOUBLE
    if style == PLAIN and not plain_ok:
        style = SINGLE
    if style == SINGLE and not single_ok:
        style = DOUBLE
    if style == LITERAL and not block_ok:
        style = DOUBLE
    return style, multiline


def double_quoted(s: str) -> str:
    """go-yaml's double-quoted writer without line folding (best_width is unlimited)."""
    escape_all = s.startswith("\ufeff")  # go-yaml checks the BOM at the start of the value for every char
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if escape_all or not _printable(cp) or ch in _BREAKS or ch == '"' or ch == "\\":
            short = _ESCAPES.get(cp)
            if short is not None:
                out.append("\\" + short)
            elif cp <= 0xFF:
                out.append(f"\\x{cp:02X}")
            elif cp <= 0xFFFF:
                out.append(f"\\u{cp:04X}")
            else:
                out.append(f"\\U{cp:08X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def scalar_text(value: Any) -> tuple[int, str, str, bool]:
    """(style, text-or-raw-string, tag, multiline) for a tree scalar. For PLAIN,
    SINGLE and DOUBLE the text is final; for LITERAL it is the raw string."""
    if isinstance(value, str):
        if not value.isascii() and _has_surrogates(value):
            return _binary(value)
        style, multiline = string_style(value)
        if style == PLAIN:
            # A plain "<<" re-parses as a merge key, so go-yaml tags it.
            return PLAIN, value, ("!!merge" if value == "<<" else ""), False
        if style == SINGLE:
            if multiline:
                # LS/PS: go-yaml writes the break and re-indents the next line.
                return SINGLE_BREAKS, value, "", True
            return SINGLE, "'" + value.replace("'", "''") + "'", "", False
        if style == DOUBLE:
            return DOUBLE, double_quoted(value), "", multiline
        if value[0] == "\t":
            # Node.Encode's own parser rejects this literal block ("found a tab
            # character where an indentation space is expected"); sops ignores
            # the error and the zero node is written as null.
            return PLAIN, "null", "", False
        return LITERAL, value, "", True
    if value is None:
        return PLAIN, "null", "", False
    if value is True:
        return PLAIN, "true", "", False
    if value is False:
        return PLAIN, "false", "", False
    if isinstance(value, int):
        return PLAIN, str(int(value)), "", False
    if isinstance(value, float):
        if math.isnan(value):
            return PLAIN, ".nan", "", False
        if math.isinf(value):
            return PLAIN, ".inf" if value > 0 else "-.inf", "", False
        return PLAIN, go_float_g(value), "", False
    if isinstance(value, Time):
        return PLAIN, value.text, "", False
    raise TypeError(f"cannot emit {type(value).__name__} as YAML")


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _binary(value: str) -> tuple[int, str, str, bool]:
    """Bytes that are not UTF-8 (kept as surrogate escapes): go-yaml writes them
    base64-encoded with a !!binary tag, in 70-column lines when long."""
    import base64

    encoded = base64.b64encode(value.encode("utf-8", "surrogateescape")).decode("ascii")
    if len(encoded) < 70:
        return PLAIN, encoded, "!!binary", False
    lines = [encoded[i:i + 70] for i in range(0, len(encoded), 70)]
    return LITERAL, "\n".join(lines) + "\n", "!!binary", True


def inline_text(value: Any) -> str | None:
    """The text of a scalar written on one line (tag included), None for literal blocks."""
    style, text, tag, _ = scalar_text(value)
    if style == LITERAL or style == SINGLE_BREAKS:
        return None
    return tag + " " + text if tag else text


_KEY_CACHE: dict[Any, str | None] = {}


def key_text(key: Any) -> str | None:
    """Inline text of a key that go-yaml writes as a simple key, else None."""
    if type(key) is str:
        found = _KEY_CACHE.get(key, False)
        if found is not False:
            return found  # type: ignore[return-value]
    text = inline_text(key) if _simple_key(key) else None
    if type(key) is str:
        if len(_KEY_CACHE) > 20000:
            _KEY_CACHE.clear()
        _KEY_CACHE[key] = text
    return text


def _join(comments: list[str]) -> str:
    return "#" + "\n#".join(comments) if comments else ""


def _prepend(parent: str, own: str) -> str:
    if parent and own:
        return parent + "\n" + own
    return parent or own


class _Emitter:
    """Mirror of go-yaml's emitter for block documents built from a sops tree."""

    def __init__(self, best_indent: int) -> None:
        self.best = best_indent if 2 <= best_indent <= 9 else 2
        self.out: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True
        self.indent = -1
        self.indents: list[int] = []
        self.foot_indent = -1
        self.head = ""
        self.foot = ""
        self.tail = ""

    # -- low level writers --------------------------------------------------------------
    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0
        self.indention = True

    def write_indent(self) -> None:
        indent = self.indent if self.indent > 0 else 0
        if not self.indention or self.column > indent or (self.column == indent and not self.whitespace):
            self.put_break()
        if self.foot_indent == indent:
            self.put_break()
        if self.column < indent:
            self.out.append(" " * (indent - self.column))
            self.column = indent
        self.whitespace = True
        self.foot_indent = -1

    def write_indicator(self, text: str, need_ws: bool, is_ws: bool, is_indention: bool) -> None:
        if need_ws and not self.whitespace:
            self.out.append(" ")
            self.column += 1
        self.out.append(text)
        self.column += len(text)
        self.whitespace = is_ws
        self.indention = self.indention and is_indention

    def write_comment(self, comment: str) -> None:
        breaks = False
        pound = False
        start = 0
        n = len(comment)
        i = 0
        while i < n:
            ch = comment[i]
            if ch in _BREAKS:
                self._write_break(ch)
                breaks = True
                pound = False
                i += 1
                continue
            if breaks:
                self.write_indent()
            if not pound:
                if ch != "#":
                    self.out.append("# ")
                    self.column += 2
                pound = True
            start = i
            while i < n and comment[i] not in _BREAKS:
                i += 1
            self.out.append(comment[start:i])
            self.column += i - start
            self.indention = False
            breaks = False
        if not breaks:
            self.put_break()
        self.whitespace = True

    def _write_break(self, ch: str) -> None:
        if ch == "\n":
            self.put_break()
        else:
            self.out.append(ch)
            self.column = 0
            self.indention = True

    # -- comment buffers ----------------------------------------------------------------
    def analyze(self, head: str = "", foot: str = "", tail: str = "") -> None:
        # go-yaml copies only non-empty comments, so older pending ones survive.
        if head:
            self.head = head
        if foot:
            self.foot = foot
        if tail:
            self.tail = tail

    def process_head(self) -> None:
        if self.tail:
            self.write_indent()
            self.write_comment(self.tail)
            self.tail = ""
            self.foot_indent = self.indent if self.indent > 0 else 0
        if not self.head:
            return
        self.write_indent()
        self.write_comment(self.head)
        self.head = ""

    def process_foot(self) -> None:
        if not self.foot:
            return
        self.write_indent()
        self.write_comment(self.foot)
        self.foot = ""
        self.foot_indent = self.indent if self.indent > 0 else 0

    # -- indentation --------------------------------------------------------------------
    def increase_indent(self, flow: bool, in_seq_item: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = self.best if flow else 0
        elif in_seq_item:
            self.indent += 2
        else:
            self.indent = self.best * ((self.indent + self.best) // self.best)

    def pop_indent(self) -> None:
        self.indent = self.indents.pop()

    # -- scalars ------------------------------------------------------------------------
    def scalar(self, value: Any, in_seq_item: bool) -> None:
        style, text, tag, _ = scalar_text(value)
        if tag:
            if not self.whitespace:
                self.out.append(" ")
                self.column += 1
            self.out.append(tag)
            self.column += len(tag)
            self.whitespace = False
            self.indention = False
        self.increase_indent(True, in_seq_item)
        if style == LITERAL:
            self.literal(text)
        elif style == SINGLE_BREAKS:
            self.single_quoted(text)
        else:
            if not self.whitespace:
                self.out.append(" ")
                self.column += 1
            self.out.append(text)
            self.column += len(text)
            self.whitespace = False
            self.indention = False
        self.pop_indent()

    def single_quoted(self, value: str) -> None:
        """go-yaml's single-quoted writer for a value holding LS/PS line breaks."""
        self.write_indicator("'", True, False, False)
        breaks = False
        for ch in value:
            if ch == " ":
                self.out.append(ch)
                self.column += 1
            elif ch in _BREAKS:
                if not breaks and ch == "\n":
                    self.put_break()
                self._write_break(ch)
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                if ch == "'":
                    self.out.append("'")
                    self.column += 1
                self.out.append(ch)
                self.column += 1
                self.indention = False
                breaks = False
        self.write_indicator("'", False, False, False)
        self.whitespace = False
        self.indention = False

    def literal(self, value: str) -> None:
        self.write_indicator("|", True, False, False)
        if value[0] == " " or value[0] in _BREAKS:
            self.write_indicator(str(self.best), False, False, False)
        last = value[-1]
        if last not in _BREAKS:
            self.write_indicator("-", False, False, False)
        elif len(value) == 1 or value[-2] in _BREAKS:
            self.write_indicator("+", False, False, False)
        self.put_break()
        self.whitespace = True
        if not _OTHER_BREAKS.search(value):
            self._literal_lines(value)
            return
        breaks = True
        i = 0
        n = len(value)
        while i < n:
            ch = value[i]
            if ch in _BREAKS:
                self._write_break(ch)
                breaks = True
                i += 1
                continue
            if breaks:
                self.write_indent()
            j = i
            while j < n and value[j] not in _BREAKS:
                j += 1
            self.out.append(value[i:j])
            self.column += j - i
            self.indention = False
            breaks = False
            i = j

    def _literal_lines(self, value: str) -> None:
        """The loop of :meth:`literal` for text whose only break is "\\n" (armoured
        keys, certificates): whole lines at a time instead of characters."""
        breaks = True
        for number, line in enumerate(value.split("\n")):
            if number:
                self.put_break()
                breaks = True
            if line:
                if breaks:
                    self.write_indent()
                self.out.append(line)
                self.column += len(line)
                self.indention = False
                breaks = False

    # -- nodes ------------------------------------------------------------------------
    def prepare(self, value: Any, parent_head: str, parent_foot: str) -> tuple[Any, ...]:
        """Analyze the first event of a node (go-yaml does this before the state
        function of the enclosing collection runs) and return what emit() needs."""
        if isinstance(value, list):
            lead, items, pres, trail = _split(value)
            self.analyze(head=_prepend(parent_head, _join(lead)))
            return ("m" if isinstance(value, TreeMap) else "q", items, pres, _join(trail), parent_foot)
        self.analyze(head=parent_head, foot=parent_foot)
        return ("s", value)

    def emit(self, info: tuple[Any, ...], in_seq_item: bool) -> tuple[Any, ...] | None:
        """Handle a node's first event; return the rest (children and end event)."""
        if info[0] == "s":
            self.scalar(info[1], in_seq_item)
            return None
        return info

    def rest(self, info: tuple[Any, ...], in_seq_item: bool) -> None:
        kind, items, pres, trail, foot = info
        if kind == "m":
            if items:
                self.block_mapping(items, pres, trail, foot, in_seq_item)
            else:
                self.flow_empty("{", "}", foot, in_seq_item)
        elif items:
            self.block_sequence(items, pres, trail, foot, in_seq_item)
        else:
            self.flow_empty("[", "]", foot, in_seq_item)

    def _fast_indent(self) -> None:
        """write_indent with the state updates inlined (indent >= 0 here)."""
        indent = self.indent
        if not self.indention or self.column > indent or (self.column == indent and not self.whitespace):
            self.out.append("\n")
            self.column = 0
        if self.foot_indent == indent:
            self.out.append("\n")
            self.column = 0
        if self.column < indent:
            self.out.append(" " * (indent - self.column))
            self.column = indent
        self.foot_indent = -1

    def block_mapping(self, items: list[Any], pres: dict[int, list[str]], tail: str, foot: str,
                      in_seq_item: bool) -> None:
        out = self.out
        # go-yaml analyzes the first key before raising the indentation; with
        # no comment on the way the order does not matter.
        first_pre = pres.get(0)
        if first_pre:
            self.analyze(head=_join(first_pre))
        self.increase_indent(False, in_seq_item)
        for i, (key, value) in enumerate(items):
            if type(value) is Comment:
                value = comment_struct(value)
            pre = pres.get(i) if pres else None
            if not pre and not self.head and not self.foot and not self.tail and not isinstance(key, list):
                ktext = key_text(key)
                if ktext is not None:
                    # Common case: "key:" with nothing pending, written directly.
                    if not isinstance(value, list):
                        vtext = inline_text(value)
                        if vtext is not None:
                            self._fast_indent()
                            out.append(ktext)
                            out.append(": ")
                            out.append(vtext)
                            self.column += len(ktext) + 2 + len(vtext)
                            self.whitespace = False
                            self.indention = False
                            continue
                    self._fast_indent()
                    out.append(ktext)
                    out.append(":")
                    self.column += len(ktext) + 1
                    self.whitespace = False
                    self.indention = False
                    info = self.prepare(value, "", "")
                    rest = self.emit(info, False)
                    self.process_foot()
                    if rest is not None:
                        self.rest(rest, False)
                    continue
            if i:
                self.analyze(head=_join(pre or []))
            self.process_head()
            self.write_indent()
            if isinstance(key, list):
                # A collection key (only from odd input; sops refuses to encrypt it).
                self.write_indicator("?", True, False, True)
                key_rest = self.emit(self.prepare(key, "", ""), False)
                self.process_foot()
                if key_rest is not None:
                    self.rest(key_rest, False)
                info = self.prepare(value, "", "")
                self.write_indent()
                self.write_indicator(":", True, False, True)
            elif key_text(key) is not None:
                self.scalar(key, False)
                info = self.prepare(value, "", "")
                self.write_indicator(":", False, False, False)
            else:
                self.write_indicator("?", True, False, True)
                self.scalar(key, False)
                info = self.prepare(value, "", "")
                self.write_indent()
                self.write_indicator(":", True, False, True)
            rest = self.emit(info, False)
            self.process_foot()
            if rest is not None:
                self.rest(rest, False)
        # MAPPING-END: the last key's foot comment travels as the tail comment.
        self.analyze(tail=tail, foot=foot)
        self.process_head()
        self.pop_indent()

    def block_sequence(self, items: list[Any], pres: dict[int, list[str]], trail: str, foot: str,
                       in_seq_item: bool) -> None:
        last = len(items) - 1
        out = self.out
        for i, item in enumerate(items):
            pre = pres.get(i) if pres else None
            if i and not pre and (i != last or not trail) and not self.head and not self.foot \
                    and not self.tail and not isinstance(item, list):
                text = inline_text(item)
                if text is not None:
                    self._fast_indent()
                    out.append("- ")
                    out.append(text)
                    self.column += 2 + len(text)
                    self.whitespace = False
                    self.indention = False
                    continue
            info = self.prepare(item, _join(pre or []), trail if i == last else "")
            if i == 0:
                self.increase_indent(False, in_seq_item)
            self.process_head()
            self.write_indent()
            self.write_indicator("-", True, False, True)
            rest = self.emit(info, True)
            self.process_foot()
            if rest is not None:
                self.rest(rest, True)
        self.analyze(foot=foot)
        self.pop_indent()

    def flow_empty(self, open_: str, close: str, foot: str, in_seq_item: bool) -> None:
        """An empty collection: go-yaml switches to flow style."""
        self.analyze(foot=foot)
        self.write_indicator(open_, True, True, False)
        self.increase_indent(True, in_seq_item)
        if close == "}":
            self.process_head()
        self.pop_indent()
        if close == "]" and self.column == 0:
            self.write_indent()
        self.write_indicator(close, False, False, False)
        self.process_foot()

    def document(self, value: Any, first: bool) -> None:
        if not first:
            self.write_indent()
            self.write_indicator("---", True, False, False)
            self.write_indent()
        if self.head:
            self.process_head()
            self.put_break()
        info = self.prepare(value, "", "")
        self.process_head()
        rest = self.emit(info, False)
        self.process_foot()
        if rest is not None:
            self.rest(rest, False)
        # DOCUMENT-END: go-yaml forces a separation for a pending foot comment.
        self.foot_indent = 0
        self.process_foot()
        self.foot_indent = -1
        self.write_indent()

    def text(self) -> str:
        return "".join(self.out)


def _simple_key(key: Any) -> bool:
    """go-yaml's check_simple_key for a scalar key: one line and at most 128 bytes
    (value plus tag)."""
    style, text, tag, multiline = scalar_text(key)
    if multiline:
        return False
    raw = key if isinstance(key, str) else text
    size = len(raw) if raw.isascii() else len(raw.encode("utf-8", "surrogatepass"))
    if tag:
        size += len(tag)  # handle "!!" plus suffix
    return size <= 128


def emit_documents(branches: list[Any], indent: int) -> str:
    """The text sops' EmitPlainFile/EmitEncryptedFile write for these documents."""
    em = _Emitter(indent)
    for i, branch in enumerate(branches):
        em.document(branch, i == 0)
    return em.text()


def comment_struct(comment: Comment) -> TreeMap:
    """A comment in a value's place (only a ``type:comment`` tag edited onto a
    value, read with ``--ignore-mac``, puts it there): go-yaml marshals sops'
    ``Comment{Value}`` struct as a mapping with the field name lowercased."""
    return TreeMap([("value", comment.text)])


def emit_value(value: Any) -> str:
    """yaml.Marshal of one tree value (sops' EmitValue): always indent 4."""
    if type(value) is Comment:
        value = comment_struct(value)
    em = _Emitter(4)
    em.document(value, True)
    return em.text()


def _split(container: list[Any]) -> tuple[list[str], list[Any], dict[int, list[str]], list[str]]:
    """sops' appendTreeBranch/appendSequence grouping: comments before the first
    entry, the entries, the comments right before entry i (pres[i]), comments
    after the last entry."""
    for entry in container:
        if type(entry) is Comment:
            break
    else:
        return [], container, {}, []  # no comment at all: the common case
    lead: list[str] = []
    items: list[Any] = []
    pres: dict[int, list[str]] = {}
    pending: list[str] = []
    for entry in container:
        if type(entry) is Comment:
            pending.append(entry.text)
            continue
        if not items:
            lead = pending
        elif pending:
            pres[len(items)] = pending
        pending = []
        items.append(entry)
    if not items:
        return pending, items, pres, []
    return lead, items, pres, pending
