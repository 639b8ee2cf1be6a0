"""A port of go-yaml v3's scanner, parser and node builder (go.yaml.in/yaml/v3 3.0.4).

Only used for texts that may contain comments: where a comment ends up
(head, line or foot comment of which node) depends on go-yaml's token queue,
its look-ahead timing and its indentation bookkeeping, so the port keeps the
structure of the Go code (function by function, same names) rather than
re-deriving the rules. Hot loops (plain and quoted scalar bodies, comment
text, block scalar lines) use regexes or str.find instead of char-by-char
reads; they consume exactly what the Go loops consume.

Marks are (index, line, column) tuples; the index counts characters, which
is what go-yaml's mark.index counts too.
"""

from __future__ import annotations

from ...lazyre import compile_lazy

# token types
STREAM_START, STREAM_END, VERSION_DIRECTIVE, TAG_DIRECTIVE, DOCUMENT_START, DOCUMENT_END, \
    BLOCK_SEQUENCE_START, BLOCK_MAPPING_START, BLOCK_END, FLOW_SEQUENCE_START, FLOW_SEQUENCE_END, \
    FLOW_MAPPING_START, FLOW_MAPPING_END, BLOCK_ENTRY, FLOW_ENTRY, KEY, VALUE, ALIAS, ANCHOR, TAG, \
    SCALAR = range(1, 22)

# scalar styles (yaml_scalar_style_t bit values)
PLAIN_STYLE, SINGLE_QUOTED_STYLE, DOUBLE_QUOTED_STYLE, LITERAL_STYLE, FOLDED_STYLE = 1, 2, 4, 8, 16
BLOCK_STYLE, FLOW_STYLE = 1, 2

# events
EV_STREAM_START, EV_STREAM_END, EV_DOCUMENT_START, EV_DOCUMENT_END, EV_ALIAS, EV_SCALAR, \
    EV_SEQUENCE_START, EV_SEQUENCE_END, EV_MAPPING_START, EV_MAPPING_END, EV_TAIL_COMMENT = range(1, 12)

# node kinds
DOCUMENT_NODE, SEQUENCE_NODE, MAPPING_NODE, SCALAR_NODE, ALIAS_NODE = 1, 2, 4, 8, 16
# node styles
TAGGED_STYLE, DOUBLE_QUOTED_NODE, SINGLE_QUOTED_NODE, LITERAL_NODE, FOLDED_NODE, FLOW_NODE = 1, 2, 4, 8, 16, 32

ZERO = (0, 0, 0)
BREAKS = "\r\n\x85\u2028\u2029"
BREAKZ = BREAKS + "\0"
BLANKZ = " \t" + BREAKZ
_ALPHA = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")
_HEX = frozenset("0123456789ABCDEFabcdef")
_URI_CHARS = _ALPHA | frozenset(";/?:@&=+$,.!~*'()[]%")
_PLAIN_START_BAD = frozenset("-?:,[]{}#&*!|>'\"%@`")
_GAP_CHARS = frozenset(" \t#\ufeff" + BREAKS)

_PLAIN_RUN_BLOCK = compile_lazy(r"(?:[^ \t\r\n\0\x85\u2028\u2029:]|:(?![ \t\r\n\0\x85\u2028\u2029]))+")
_PLAIN_RUN_FLOW = compile_lazy(r"(?:[^ \t\r\n\0\x85\u2028\u2029:,?\[\]{}]|:(?![ \t\r\n\0\x85\u2028\u2029]))+")
_SINGLE_RUN = compile_lazy(r"[^' \t\r\n\0\x85\u2028\u2029]+")
_DOUBLE_RUN = compile_lazy(r"[^\"\\ \t\r\n\0\x85\u2028\u2029]+")
_TO_BREAKZ = compile_lazy(r"[^\r\n\0\x85\u2028\u2029]*")
_ESCAPES = {"0": "\0", "a": "\x07", "b": "\x08", "t": "\t", "\t": "\t", "n": "\n", "v": "\x0b", "f": "\x0c",
            "r": "\r", "e": "\x1b", " ": " ", '"': '"', "'": "'", "\\": "\\", "N": "\x85", "_": "\xa0",
            "L": "\u2028", "P": "\u2029"}
_CODE_LENGTHS = {"x": 2, "u": 4, "U": 8}

MAX_INDENTS = 10000
MAX_FLOW_LEVEL = 10000


class YAMLSyntaxError(Exception):
    """A go-yaml scanner or parser error; ``line`` is 1-based as go-yaml reports it."""

    def __init__(self, problem: str, line: int) -> None:
        super().__init__(f"line {line}: {problem}" if line else problem)
        self.problem = problem
        self.line = line


class Token:
    __slots__ = ("typ", "start", "end", "value", "style", "suffix", "prefix", "major", "minor")

    def __init__(self, typ: int, start: tuple[int, int, int], end: tuple[int, int, int],
                 value: str = "", style: int = 0) -> None:
        self.typ = typ
        self.start = start
        self.end = end
        self.value = value
        self.style = style
        self.suffix = ""
        self.prefix = ""
        self.major = 0
        self.minor = 0


class SimpleKey:
    __slots__ = ("possible", "required", "token_number", "mark")

    def __init__(self, possible: bool = False, required: bool = False, token_number: int = 0,
                 mark: tuple[int, int, int] = ZERO) -> None:
        self.possible = possible
        self.required = required
        self.token_number = token_number
        self.mark = mark


class CommentRec:
    __slots__ = ("scan_mark", "token_mark", "start_mark", "end_mark", "head", "line", "foot")

    def __init__(self, scan_mark: tuple[int, int, int], token_mark: tuple[int, int, int],
                 start_mark: tuple[int, int, int], end_mark: tuple[int, int, int],
                 head: str = "", line: str = "", foot: str = "") -> None:
        self.scan_mark = scan_mark
        self.token_mark = token_mark
        self.start_mark = start_mark
        self.end_mark = end_mark
        self.head = head
        self.line = line
        self.foot = foot

    def clear(self) -> None:
        self.scan_mark = self.token_mark = self.start_mark = self.end_mark = ZERO
        self.head = self.line = self.foot = ""


class Event:
    __slots__ = ("typ", "start", "end", "anchor", "tag", "value", "implicit", "quoted_implicit", "style",
                 "head", "line", "foot", "tail", "version")

    def __init__(self, typ: int, start: tuple[int, int, int], end: tuple[int, int, int]) -> None:
        self.typ = typ
        self.start = start
        self.end = end
        self.anchor = ""
        self.tag = ""
        self.value = ""
        self.implicit = False
        self.quoted_implicit = False
        self.style = 0
        self.head = ""
        self.line = ""
        self.foot = ""
        self.tail = ""
        self.version: tuple[int, int] | None = None


# parser states
(S_STREAM_START, S_IMPLICIT_DOCUMENT_START, S_DOCUMENT_START, S_DOCUMENT_CONTENT, S_DOCUMENT_END, S_BLOCK_NODE,
 S_BLOCK_NODE_OR_INDENTLESS_SEQUENCE, S_FLOW_NODE, S_BLOCK_SEQUENCE_FIRST_ENTRY, S_BLOCK_SEQUENCE_ENTRY,
 S_INDENTLESS_SEQUENCE_ENTRY, S_BLOCK_MAPPING_FIRST_KEY, S_BLOCK_MAPPING_KEY, S_BLOCK_MAPPING_VALUE,
 S_FLOW_SEQUENCE_FIRST_ENTRY, S_FLOW_SEQUENCE_ENTRY, S_FLOW_SEQUENCE_ENTRY_MAPPING_KEY,
 S_FLOW_SEQUENCE_ENTRY_MAPPING_VALUE, S_FLOW_SEQUENCE_ENTRY_MAPPING_END, S_FLOW_MAPPING_FIRST_KEY,
 S_FLOW_MAPPING_KEY, S_FLOW_MAPPING_VALUE, S_FLOW_MAPPING_EMPTY_VALUE, S_END) = range(24)

DEFAULT_TAG_DIRECTIVES = (("!", "!"), ("!!", "tag:yaml.org,2002:"))


class Scanner:
    """yaml_parser_t: scanner and parser state together, as in go-yaml."""

    def __init__(self, text: str) -> None:
        # NUL padding stands in for go-yaml's zero-filled look-ahead buffer.
        self.s = text + "\0\0\0\0\0\0\0\0"
        self.end = len(text)
        self.pos = 0
        self.line = 0
        self.col = 0
        self.newlines = 0
        self.tokens: list[Token] = []
        self.head = 0  # == tokens_parsed: the list keeps every token
        self.token_available = False
        self.stream_start_produced = False
        self.stream_end_produced = False
        self.indent = -1
        self.indents: list[int] = []
        self.flow_level = 0
        self.simple_key_allowed = False
        self.simple_keys: list[SimpleKey] = []
        self.simple_keys_by_tok: dict[int, int] = {}
        self.comments: list[CommentRec] = []
        self.comments_head = 0
        # parser
        self.state = S_STREAM_START
        self.states: list[int] = []
        self.marks: list[tuple[int, int, int]] = []
        self.tag_directives: list[tuple[str, str]] = []
        self.head_comment = ""
        self.line_comment = ""
        self.foot_comment = ""
        self.tail_comment = ""
        self.stem_comment: str | None = None

    # -- errors / marks -----------------------------------------------------------------
    def mark(self) -> tuple[int, int, int]:
        return (self.pos, self.line, self.col)

    def scanner_error(self, context_mark: tuple[int, int, int], problem: str) -> YAMLSyntaxError:
        # go-yaml reports scanner errors at context_mark.line + 1 (or problem mark).
        line = context_mark[1] + 1 if context_mark[1] else (self.line + 1 if self.line else 0)
        return YAMLSyntaxError(problem, line)

    def parser_error(self, problem: str, mark: tuple[int, int, int],
                     context_mark: tuple[int, int, int] | None = None) -> YAMLSyntaxError:
        line = context_mark[1] if context_mark is not None and context_mark[1] else mark[1]
        return YAMLSyntaxError(problem, line)

    # -- reading primitives ---------------------------------------------------------------
    def skip(self) -> None:
        if self.s[self.pos] not in " \t":
            self.newlines = 0
        self.pos += 1
        self.col += 1

    def skip_line(self) -> None:
        s, p = self.s, self.pos
        if s[p] == "\r" and s[p + 1] == "\n":
            self.pos += 2
        elif s[p] in BREAKS:
            self.pos += 1
        else:
            return
        self.col = 0
        self.line += 1
        self.newlines += 1

    def read_line(self) -> str:
        s, p = self.s, self.pos
        c = s[p]
        if c == "\r" and s[p + 1] == "\n":
            self.pos += 2
            out = "\n"
        elif c in "\r\n\x85":
            self.pos += 1
            out = "\n"
        elif c in "\u2028\u2029":
            self.pos += 1
            out = c
        else:
            return ""
        self.col = 0
        self.line += 1
        self.newlines += 1
        return out

    def read_run(self, end: int) -> str:
        """Read characters up to index ``end`` (none of them a line break)."""
        text = self.s[self.pos:end]
        if text.strip(" \t"):
            self.newlines = 0
        self.col += end - self.pos
        self.pos = end
        return text

    # -- token queue ----------------------------------------------------------------------
    def insert_token(self, pos: int, token: Token) -> None:
        if pos < 0:
            self.tokens.append(token)
        else:
            self.tokens.insert(self.head + pos, token)

    def fetch_more_tokens(self) -> None:
        while True:
            # The comment logic needs two tokens of look-ahead.
            if self.head < len(self.tokens) - 2:
                idx = self.simple_keys_by_tok.get(self.head)
                if idx is None:
                    break
                if not self.simple_key_is_valid(self.simple_keys[idx]):
                    break
            self.fetch_next_token()
        self.token_available = True

    def fetch_next_token(self) -> None:
        if not self.stream_start_produced:
            self.fetch_stream_start()
            return
        scan_mark = (self.pos, self.line, self.col)
        self.scan_to_next_token()
        self.unroll_indent(self.col, scan_mark)
        s, p = self.s, self.pos
        c = s[p]
        if c == "\0" and p >= self.end:
            self.fetch_stream_end()
            return
        if self.col == 0 and c == "%":
            self.fetch_directive()
            return
        if self.col == 0 and c == "-" and s[p + 1] == "-" and s[p + 2] == "-" and s[p + 3] in BLANKZ:
            self.fetch_document_indicator(DOCUMENT_START)
            return
        if self.col == 0 and c == "." and s[p + 1] == "." and s[p + 2] == "." and s[p + 3] in BLANKZ:
            self.fetch_document_indicator(DOCUMENT_END)
            return
        comment_mark = (self.pos, self.line, self.col)
        if self.tokens and (self.flow_level == 0 and c == ":" or self.flow_level > 0 and c == ","):
            # Associate any following comments with the prior token.
            comment_mark = self.tokens[-1].start
        self.dispatch(c, s[p + 1])
        if self.tokens and self.tokens[-1].typ == BLOCK_ENTRY:
            # Sequence indicators alone have no line comments.
            return
        self.scan_line_comment(comment_mark)

    def dispatch(self, c: str, nxt: str) -> None:
        flow = self.flow_level > 0
        if c == "[":
            self.fetch_flow_collection_start(FLOW_SEQUENCE_START)
        elif c == "{":
            self.fetch_flow_collection_start(FLOW_MAPPING_START)
        elif c == "]":
            self.fetch_flow_collection_end(FLOW_SEQUENCE_END)
        elif c == "}":
            self.fetch_flow_collection_end(FLOW_MAPPING_END)
        elif c == ",":
            self.fetch_flow_entry()
        elif c == "-" and nxt in BLANKZ:
            self.fetch_block_entry()
        elif c == "?" and (flow or nxt in BLANKZ):
            self.fetch_key()
        elif c == ":" and (flow or nxt in BLANKZ):
            self.fetch_value()
        elif c == "*":
            self.fetch_anchor(ALIAS)
        elif c == "&":
            self.fetch_anchor(ANCHOR)
        elif c == "!":
            self.fetch_tag()
        elif c == "|" and not flow:
            self.fetch_block_scalar(True)
        elif c == ">" and not flow:
            self.fetch_block_scalar(False)
        elif c == "'":
            self.fetch_flow_scalar(True)
        elif c == '"':
            self.fetch_flow_scalar(False)
        elif (not (c in BLANKZ or c in _PLAIN_START_BAD) or (c == "-" and nxt not in " \t")
              or (not flow and c in "?:" and nxt not in BLANKZ)):
            self.fetch_plain_scalar()
        else:
            raise self.scanner_error(self.mark(), "found character that cannot start any token")

    def simple_key_is_valid(self, key: SimpleKey) -> bool:
        if not key.possible:
            return False
        if key.mark[1] < self.line or key.mark[0] + 1024 < self.pos:
            if key.required:
                raise self.scanner_error(key.mark, "could not find expected ':'")
            key.possible = False
            return False
        return True

    def save_simple_key(self) -> None:
        required = self.flow_level == 0 and self.indent == self.col
        if self.simple_key_allowed:
            key = SimpleKey(True, required, len(self.tokens), (self.pos, self.line, self.col))
            self.remove_simple_key()
            self.simple_keys[-1] = key
            self.simple_keys_by_tok[key.token_number] = len(self.simple_keys) - 1

    def remove_simple_key(self) -> None:
        key = self.simple_keys[-1]
        if key.possible:
            if key.required:
                raise self.scanner_error(key.mark, "could not find expected ':'")
            key.possible = False
            self.simple_keys_by_tok.pop(key.token_number, None)

    def increase_flow_level(self) -> None:
        self.simple_keys.append(SimpleKey(False, False, len(self.tokens), self.mark()))
        self.flow_level += 1
        if self.flow_level > MAX_FLOW_LEVEL:
            raise self.scanner_error(self.simple_keys[-1].mark, f"exceeded max depth of {MAX_FLOW_LEVEL}")

    def decrease_flow_level(self) -> None:
        if self.flow_level > 0:
            self.flow_level -= 1
            last = self.simple_keys.pop()
            self.simple_keys_by_tok.pop(last.token_number, None)

    def roll_indent(self, column: int, number: int, typ: int, mark: tuple[int, int, int]) -> None:
        if self.flow_level > 0:
            return
        if self.indent < column:
            self.indents.append(self.indent)
            self.indent = column
            if len(self.indents) > MAX_INDENTS:
                raise self.scanner_error(self.simple_keys[-1].mark, f"exceeded max depth of {MAX_INDENTS}")
            token = Token(typ, mark, mark)
            if number > -1:
                number -= self.head
            self.insert_token(number, token)

    def unroll_indent(self, column: int, scan_mark: tuple[int, int, int]) -> None:
        if self.flow_level > 0:
            return
        block_mark = (scan_mark[0] - 1, scan_mark[1], scan_mark[2])
        comments = self.comments
        while self.indent > column:
            # Reposition the end token before foot comments of parent blocks.
            stop_index = block_mark[0]
            for i in range(len(comments) - 1, -1, -1):
                comment = comments[i]
                if comment.end_mark[0] < stop_index:
                    break
                if comment.start_mark[2] == self.indent + 1:
                    block_mark = comment.start_mark
                stop_index = comment.scan_mark[0]
            self.tokens.append(Token(BLOCK_END, block_mark, block_mark))
            self.indent = self.indents.pop()

    # -- fetchers -------------------------------------------------------------------------
    def fetch_stream_start(self) -> None:
        self.indent = -1
        self.simple_keys.append(SimpleKey())
        self.simple_keys_by_tok = {}
        self.simple_key_allowed = True
        self.stream_start_produced = True
        self.tokens.append(Token(STREAM_START, self.mark(), self.mark()))

    def fetch_stream_end(self) -> None:
        if self.col != 0:
            self.col = 0
            self.line += 1
        self.unroll_indent(-1, self.mark())
        self.remove_simple_key()
        self.simple_key_allowed = False
        self.tokens.append(Token(STREAM_END, self.mark(), self.mark()))

    def fetch_directive(self) -> None:
        self.unroll_indent(-1, self.mark())
        self.remove_simple_key()
        self.simple_key_allowed = False
        self.tokens.append(self.scan_directive())

    def fetch_document_indicator(self, typ: int) -> None:
        self.unroll_indent(-1, self.mark())
        self.remove_simple_key()
        self.simple_key_allowed = False
        start = self.mark()
        self.skip()
        self.skip()
        self.skip()
        self.tokens.append(Token(typ, start, self.mark()))

    def fetch_flow_collection_start(self, typ: int) -> None:
        self.save_simple_key()
        self.increase_flow_level()
        self.simple_key_allowed = True
        self.push_indicator(typ)

    def fetch_flow_collection_end(self, typ: int) -> None:
        self.remove_simple_key()
        self.decrease_flow_level()
        self.simple_key_allowed = False
        self.push_indicator(typ)

    def push_indicator(self, typ: int) -> None:
        """Consume one indicator character (never blank, go-yaml's skip()) as a token."""
        start = (self.pos, self.line, self.col)
        self.pos += 1
        self.col += 1
        self.newlines = 0
        self.tokens.append(Token(typ, start, (self.pos, self.line, self.col)))

    def fetch_flow_entry(self) -> None:
        self.remove_simple_key()
        self.simple_key_allowed = True
        self.push_indicator(FLOW_ENTRY)

    def fetch_block_entry(self) -> None:
        if self.flow_level == 0:
            if not self.simple_key_allowed:
                raise self.scanner_error(ZERO, "block sequence entries are not allowed in this context")
            self.roll_indent(self.col, -1, BLOCK_SEQUENCE_START, self.mark())
        self.remove_simple_key()
        self.simple_key_allowed = True
        self.push_indicator(BLOCK_ENTRY)

    def fetch_key(self) -> None:
        if self.flow_level == 0:
            if not self.simple_key_allowed:
                raise self.scanner_error(ZERO, "mapping keys are not allowed in this context")
            self.roll_indent(self.col, -1, BLOCK_MAPPING_START, self.mark())
        self.remove_simple_key()
        self.simple_key_allowed = self.flow_level == 0
        self.push_indicator(KEY)

    def fetch_value(self) -> None:
        key = self.simple_keys[-1]
        if self.simple_key_is_valid(key):
            self.insert_token(key.token_number - self.head, Token(KEY, key.mark, key.mark))
            self.roll_indent(key.mark[2], key.token_number, BLOCK_MAPPING_START, key.mark)
            key.possible = False
            self.simple_keys_by_tok.pop(key.token_number, None)
            self.simple_key_allowed = False
        else:
            if self.flow_level == 0:
                if not self.simple_key_allowed:
                    raise self.scanner_error(ZERO, "mapping values are not allowed in this context")
                self.roll_indent(self.col, -1, BLOCK_MAPPING_START, self.mark())
            self.simple_key_allowed = self.flow_level == 0
        self.push_indicator(VALUE)

    def fetch_anchor(self, typ: int) -> None:
        self.save_simple_key()
        self.simple_key_allowed = False
        self.tokens.append(self.scan_anchor(typ))

    def fetch_tag(self) -> None:
        self.save_simple_key()
        self.simple_key_allowed = False
        self.tokens.append(self.scan_tag())

    def fetch_block_scalar(self, literal: bool) -> None:
        self.remove_simple_key()
        self.simple_key_allowed = True
        self.tokens.append(self.scan_block_scalar(literal))

    def fetch_flow_scalar(self, single: bool) -> None:
        self.save_simple_key()
        self.simple_key_allowed = False
        self.tokens.append(self.scan_flow_scalar(single))

    def fetch_plain_scalar(self) -> None:
        self.save_simple_key()
        self.simple_key_allowed = False
        self.tokens.append(self.scan_plain_scalar())

    # -- whitespace and comments ----------------------------------------------------------
    def scan_to_next_token(self) -> None:
        s = self.s
        if s[self.pos] not in _GAP_CHARS and not self.comments:
            return  # already at a token and no comment bookkeeping to do
        scan_mark = (self.pos, self.line, self.col)
        while True:
            if self.col == 0 and s[self.pos] == "\ufeff":
                self.skip()
            tabs_ok = self.flow_level > 0 or not self.simple_key_allowed
            p = self.pos
            while s[p] == " " or (tabs_ok and s[p] == "\t"):
                p += 1
            if p != self.pos:  # blanks: go-yaml's skip() leaves newlines alone
                self.col += p - self.pos
                self.pos = p
            # A line comment under a sequence entry that looks more like a
            # header of the following content becomes a head comment.
            if self.comments and len(self.tokens) > 1:
                token_a, token_b = self.tokens[-2], self.tokens[-1]
                comment = self.comments[-1]
                if (token_a.typ == BLOCK_SEQUENCE_START and token_b.typ == BLOCK_ENTRY and comment.line
                        and s[self.pos] not in BREAKS):
                    comment.head = comment.line
                    comment.line = ""
                    if comment.start_mark[1] == self.line - 1:
                        comment.token_mark = self.mark()
            if s[self.pos] == "#":
                self.scan_comments(scan_mark)
            if s[self.pos] in BREAKS:
                self.skip_line()
                if self.flow_level == 0:
                    self.simple_key_allowed = True
            else:
                break

    def read_comment_line(self, seen: int) -> str:
        """go-yaml's "consume until after the comment line": skip up to index
        ``seen`` (blanks and empty lines), then read the text up to the break."""
        s = self.s
        while self.pos < seen:
            if s[self.pos] in BREAKZ:
                if s[self.pos] == "\0" and self.pos >= self.end:
                    return ""
                self.skip_line()
            else:
                self.skip()
        m = _TO_BREAKZ.match(s, self.pos)
        assert m is not None
        return self.read_run(m.end())

    def scan_line_comment(self, token_mark: tuple[int, int, int]) -> None:
        if self.newlines > 0:
            return
        s = self.s
        start_mark = ZERO
        text = ""
        peek = 0
        while peek < 512:
            c = s[self.pos + peek]
            if c in " \t":
                peek += 1
                continue
            if c == "#":
                seen = self.pos + peek
                while self.pos < seen:
                    if s[self.pos] in BREAKZ:
                        break
                    self.skip()
                if self.pos >= seen:
                    start_mark = self.mark()
                    m = _TO_BREAKZ.match(s, self.pos)
                    assert m is not None
                    text = self.read_run(m.end())
            break
        if text:
            self.comments.append(CommentRec(ZERO, token_mark, start_mark, ZERO, line=text))

    def scan_comments(self, scan_mark: tuple[int, int, int]) -> None:
        s = self.s
        token = self.tokens[-1]
        if token.typ == FLOW_ENTRY and len(self.tokens) > 1:
            token = self.tokens[-2]
        token_mark = token.start
        start_mark = ZERO
        next_indent = self.indent if self.indent > 0 else 0
        recent_empty = False
        first_empty = self.newlines <= 1
        line = self.line
        column = self.col
        text = ""
        # The foot line is where a comment must start to still be a foot of
        # the prior content; with content on the current line, the line below.
        foot_line = -1
        if scan_mark[1] > 0:
            foot_line = self.line - self.newlines + 1
            if self.newlines == 0 and self.col > 1:
                foot_line += 1
        peek = 0
        while peek < 512:
            column += 1
            p = self.pos + peek
            c = s[p]
            if c in " \t":
                peek += 1
                continue
            close_flow = self.flow_level > 0 and c in "]}"
            if close_flow or c in BREAKZ:
                if close_flow or not recent_empty:
                    if close_flow or first_empty and (start_mark[1] == foot_line and token.typ != VALUE
                                                      or start_mark[2] - 1 < next_indent):
                        # The first empty line after the comment: the part so far is a
                        # foot of the prior token rather than a head of the next one.
                        if text:
                            if start_mark[2] - 1 < next_indent:
                                token_mark = start_mark  # dedented: unrelated to the prior token
                            end = (p, line, column)
                            self.comments.append(CommentRec(scan_mark, token_mark, start_mark, end, foot=text))
                            scan_mark = end
                            token_mark = scan_mark
                            text = ""
                    elif text and not (c == "\0" and p >= self.end):
                        text += "\n"
                if c not in BREAKS:
                    break
                first_empty = False
                recent_empty = True
                column = 0
                line += 1
                peek += 1
                continue
            if text and (close_flow or column - 1 < next_indent and column != start_mark[2]):
                # A comment at another indentation is a foot of the preceding data.
                end = (p, line, column)
                self.comments.append(CommentRec(scan_mark, token_mark, start_mark, end, foot=text))
                scan_mark = end
                token_mark = scan_mark
                text = ""
            if c != "#":
                break
            if not text:
                start_mark = (p, line, column)
            else:
                text += "\n"
            recent_empty = False
            text += self.read_comment_line(p)
            peek = 0
            column = 0
            line = self.line
            next_indent = self.indent if self.indent > 0 else 0
            peek += 1
        if text:
            end = (self.pos + peek - 1, line, column)
            self.comments.append(CommentRec(scan_mark, start_mark, start_mark, end, head=text))

    # -- scalars and other tokens -----------------------------------------------------------
    def scan_directive(self) -> Token:
        s = self.s
        start = self.mark()
        self.skip()
        name = self.scan_directive_name(start)
        if name == "YAML":
            major, minor = self.scan_version_directive_value(start)
            token = Token(VERSION_DIRECTIVE, start, self.mark())
            token.major, token.minor = major, minor
        elif name == "TAG":
            handle, prefix = self.scan_tag_directive_value(start)
            token = Token(TAG_DIRECTIVE, start, self.mark(), handle)
            token.prefix = prefix
        else:
            raise self.scanner_error(start, "found unknown directive name")
        while s[self.pos] in " \t":
            self.skip()
        if s[self.pos] == "#":
            while s[self.pos] not in BREAKZ:
                self.skip()
        if s[self.pos] not in BREAKZ:
            raise self.scanner_error(start, "did not find expected comment or line break")
        if s[self.pos] in BREAKS:
            self.skip_line()
        return token

    def scan_directive_name(self, start: tuple[int, int, int]) -> str:
        s = self.s
        begin = self.pos
        while s[self.pos] in _ALPHA:
            self.skip()
        name = s[begin:self.pos]
        if not name:
            raise self.scanner_error(start, "could not find expected directive name")
        if s[self.pos] not in BLANKZ:
            raise self.scanner_error(start, "found unexpected non-alphabetical character")
        return name

    def scan_version_directive_value(self, start: tuple[int, int, int]) -> tuple[int, int]:
        s = self.s
        while s[self.pos] in " \t":
            self.skip()
        major = self.scan_version_directive_number(start)
        if s[self.pos] != ".":
            raise self.scanner_error(start, "did not find expected digit or '.' character")
        self.skip()
        return major, self.scan_version_directive_number(start)

    def scan_version_directive_number(self, start: tuple[int, int, int]) -> int:
        s = self.s
        value = length = 0
        while "0" <= s[self.pos] <= "9":
            length += 1
            if length > 2:
                raise self.scanner_error(start, "found extremely long version number")
            value = value * 10 + int(s[self.pos])
            self.skip()
        if length == 0:
            raise self.scanner_error(start, "did not find expected version number")
        return value

    def scan_tag_directive_value(self, start: tuple[int, int, int]) -> tuple[str, str]:
        s = self.s
        while s[self.pos] in " \t":
            self.skip()
        handle = self.scan_tag_handle(True, start)
        if s[self.pos] not in " \t":
            raise self.scanner_error(start, "did not find expected whitespace")
        while s[self.pos] in " \t":
            self.skip()
        prefix = self.scan_tag_uri(True, "", start)
        if s[self.pos] not in BLANKZ:
            raise self.scanner_error(start, "did not find expected whitespace or line break")
        return handle, prefix

    def scan_anchor(self, typ: int) -> Token:
        s = self.s
        start = self.mark()
        self.skip()
        begin = self.pos
        while s[self.pos] in _ALPHA:
            self.skip()
        value = s[begin:self.pos]
        end = self.mark()
        c = s[self.pos]
        if not value or not (c in BLANKZ or c in "?:,]}%@`"):
            raise self.scanner_error(start, "did not find expected alphabetic or numeric character")
        return Token(typ, start, end, value)

    def scan_tag(self) -> Token:
        s = self.s
        start = self.mark()
        if s[self.pos + 1] == "<":
            self.skip()
            self.skip()
            handle = ""
            suffix = self.scan_tag_uri(False, "", start)
            if s[self.pos] != ">":
                raise self.scanner_error(start, "did not find the expected '>'")
            self.skip()
        else:
            handle = self.scan_tag_handle(False, start)
            if handle[0] == "!" and len(handle) > 1 and handle[-1] == "!":
                suffix = self.scan_tag_uri(False, "", start)
            else:
                suffix = self.scan_tag_uri(False, handle, start)
                handle = "!"
                if not suffix:
                    handle, suffix = suffix, handle
        if s[self.pos] not in BLANKZ:
            raise self.scanner_error(start, "did not find expected whitespace or line break")
        token = Token(TAG, start, self.mark(), handle)
        token.suffix = suffix
        return token

    def scan_tag_handle(self, directive: bool, start: tuple[int, int, int]) -> str:
        s = self.s
        if s[self.pos] != "!":
            raise self.scanner_error(start, "did not find expected '!'")
        begin = self.pos
        self.skip()
        while s[self.pos] in _ALPHA:
            self.skip()
        if s[self.pos] == "!":
            self.skip()
        elif directive and s[begin:self.pos] != "!":
            raise self.scanner_error(start, "did not find expected '!'")
        return s[begin:self.pos]

    def scan_tag_uri(self, directive: bool, head: str, start: tuple[int, int, int]) -> str:
        s = self.s
        has_tag = len(head) > 0
        out = head[1:] if len(head) > 1 else ""
        parts = [out]
        while s[self.pos] in _URI_CHARS:
            if s[self.pos] == "%":
                parts.append(self.scan_uri_escapes(start))
            else:
                parts.append(s[self.pos])
                self.skip()
            has_tag = True
        if not has_tag:
            raise self.scanner_error(start, "did not find expected tag URI")
        return "".join(parts)

    def scan_uri_escapes(self, start: tuple[int, int, int]) -> str:
        s = self.s
        octets = bytearray()
        width = 1024
        while width > 0:
            if not (s[self.pos] == "%" and s[self.pos + 1] in _HEX and s[self.pos + 2] in _HEX):
                raise self.scanner_error(start, "did not find URI escaped octet")
            octet = int(s[self.pos + 1:self.pos + 3], 16)
            if width == 1024:
                width = _utf8_width(octet)
                if width == 0:
                    raise self.scanner_error(start, "found an incorrect leading UTF-8 octet")
            elif octet & 0xC0 != 0x80:
                raise self.scanner_error(start, "found an incorrect trailing UTF-8 octet")
            octets.append(octet)
            self.skip()
            self.skip()
            self.skip()
            width -= 1
        return octets.decode("utf-8", "surrogateescape")

    def scan_block_scalar(self, literal: bool) -> Token:
        s = self.s
        start = self.mark()
        self.skip()
        chomping = increment = 0
        c = s[self.pos]
        if c in "+-":
            chomping = 1 if c == "+" else -1
            self.skip()
            if "0" <= s[self.pos] <= "9":
                if s[self.pos] == "0":
                    raise self.scanner_error(start, "found an indentation indicator equal to 0")
                increment = int(s[self.pos])
                self.skip()
        elif "0" <= c <= "9":
            if c == "0":
                raise self.scanner_error(start, "found an indentation indicator equal to 0")
            increment = int(c)
            self.skip()
            if s[self.pos] in "+-":
                chomping = 1 if s[self.pos] == "+" else -1
                self.skip()
        while s[self.pos] in " \t":
            self.skip()
        if s[self.pos] == "#":
            self.scan_line_comment(start)
            while s[self.pos] not in BREAKZ:
                self.skip()
        if s[self.pos] not in BREAKZ:
            raise self.scanner_error(start, "did not find expected comment or line break")
        if s[self.pos] in BREAKS:
            self.skip_line()
        end_mark = self.mark()
        indent = 0
        if increment > 0:
            indent = self.indent + increment if self.indent >= 0 else increment
        chunks: list[str] = []
        leading_break = ""
        indent, trailing_breaks, end_mark = self.scan_block_scalar_breaks(indent, start, end_mark)
        leading_blank = False
        while self.col == indent and not (s[self.pos] == "\0" and self.pos >= self.end):
            trailing_blank = s[self.pos] in " \t"
            if not literal and not leading_blank and not trailing_blank and leading_break[:1] == "\n":
                if not trailing_breaks:
                    chunks.append(" ")
            else:
                chunks.append(leading_break)
            leading_break = ""
            chunks.append(trailing_breaks)
            trailing_breaks = ""
            leading_blank = s[self.pos] in " \t"
            m = _TO_BREAKZ.match(s, self.pos)
            assert m is not None
            chunks.append(self.read_run(m.end()))
            leading_break = self.read_line()
            indent, trailing_breaks, end_mark = self.scan_block_scalar_breaks(indent, start, end_mark)
        if chomping != -1:
            chunks.append(leading_break)
        if chomping == 1:
            chunks.append(trailing_breaks)
        return Token(SCALAR, start, end_mark, "".join(chunks), LITERAL_STYLE if literal else FOLDED_STYLE)

    def scan_block_scalar_breaks(self, indent: int, start: tuple[int, int, int],
                                 end_mark: tuple[int, int, int]) -> tuple[int, str, tuple[int, int, int]]:
        s = self.s
        end_mark = self.mark()
        breaks = []
        max_indent = 0
        while True:
            while (indent == 0 or self.col < indent) and s[self.pos] == " ":
                self.skip()
            if self.col > max_indent:
                max_indent = self.col
            if (indent == 0 or self.col < indent) and s[self.pos] == "\t":
                raise self.scanner_error(start, "found a tab character where an indentation space is expected")
            if s[self.pos] not in BREAKS:
                break
            breaks.append(self.read_line())
            end_mark = self.mark()
        if indent == 0:
            indent = max_indent
            if indent < self.indent + 1:
                indent = self.indent + 1
            if indent < 1:
                indent = 1
        return indent, "".join(breaks), end_mark

    def scan_flow_scalar(self, single: bool) -> Token:
        s = self.s
        start = self.mark()
        self.skip()
        chunks: list[str] = []
        run = _SINGLE_RUN if single else _DOUBLE_RUN
        while True:
            p = self.pos
            if (self.col == 0 and (s.startswith("---", p) or s.startswith("...", p)) and s[p + 3] in BLANKZ):
                raise self.scanner_error(start, "found unexpected document indicator")
            if s[p] == "\0" and p >= self.end:
                raise self.scanner_error(start, "found unexpected end of stream")
            leading_blanks = False
            while s[self.pos] not in BLANKZ or (s[self.pos] == "\0" and self.pos < self.end):
                p = self.pos
                c = s[p]
                if single and c == "'" and s[p + 1] == "'":
                    chunks.append("'")
                    self.skip()
                    self.skip()
                elif single and c == "'":
                    break
                elif not single and c == '"':
                    break
                elif not single and c == "\\" and s[p + 1] in BREAKS:
                    self.skip()
                    self.skip_line()
                    leading_blanks = True
                    break
                elif not single and c == "\\":
                    chunks.append(self.scan_escape(start))
                else:
                    m = run.match(s, p)
                    end = m.end() if m is not None else p + 1
                    chunks.append(self.read_run(end))
            c = s[self.pos]
            if c == ("'" if single else '"'):
                break
            whitespaces = ""
            leading_break = ""
            trailing_breaks = ""
            while s[self.pos] in " \t" or s[self.pos] in BREAKS:
                if s[self.pos] in " \t":
                    if not leading_blanks:
                        whitespaces += s[self.pos]
                    self.skip()
                elif not leading_blanks:
                    whitespaces = ""
                    leading_break = self.read_line()
                    leading_blanks = True
                else:
                    trailing_breaks += self.read_line()
            if leading_blanks:
                if leading_break[:1] == "\n":
                    chunks.append(" " if not trailing_breaks else trailing_breaks)
                else:
                    chunks.append(leading_break + trailing_breaks)
            else:
                chunks.append(whitespaces)
        self.skip()
        return Token(SCALAR, start, self.mark(), "".join(chunks),
                     SINGLE_QUOTED_STYLE if single else DOUBLE_QUOTED_STYLE)

    def scan_escape(self, start: tuple[int, int, int]) -> str:
        s = self.s
        c = s[self.pos + 1]
        code_length = _CODE_LENGTHS.get(c, 0)
        out = _ESCAPES.get(c)
        if out is None and not code_length:
            raise self.scanner_error(start, "found unknown escape character")
        self.skip()
        self.skip()
        if not code_length:
            assert out is not None
            return out
        digits = s[self.pos:self.pos + code_length]
        if len(digits) < code_length or not set(digits) <= _HEX:
            raise self.scanner_error(start, "did not find expected hexdecimal number")
        value = int(digits, 16)
        if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
            raise self.scanner_error(start, "found invalid Unicode character escape code")
        for _ in range(code_length):
            self.skip()
        return chr(value)

    def scan_plain_scalar(self) -> Token:
        s = self.s
        chunks: list[str] = []
        leading_blanks = False
        leading_break = trailing_breaks = whitespaces = ""
        indent = self.indent + 1
        start = end_mark = self.mark()
        run = _PLAIN_RUN_FLOW if self.flow_level > 0 else _PLAIN_RUN_BLOCK
        while True:
            p = self.pos
            if self.col == 0 and (s.startswith("---", p) or s.startswith("...", p)) and s[p + 3] in BLANKZ:
                break
            if s[p] == "#":
                break
            m = run.match(s, p)
            if m is not None:
                if leading_blanks or whitespaces:
                    if leading_blanks:
                        if leading_break[:1] == "\n":
                            chunks.append(" " if not trailing_breaks else trailing_breaks)
                        else:
                            chunks.append(leading_break + trailing_breaks)
                        trailing_breaks = leading_break = ""
                        leading_blanks = False
                    else:
                        chunks.append(whitespaces)
                        whitespaces = ""
                chunks.append(self.read_run(m.end()))
                end_mark = self.mark()
            c = s[self.pos]
            if not (c in " \t" or c in BREAKS):
                break
            while s[self.pos] in " \t" or s[self.pos] in BREAKS:
                c = s[self.pos]
                if c == " ":
                    p = self.pos + 1
                    while s[p] == " ":
                        p += 1
                    if not leading_blanks:
                        whitespaces += s[self.pos:p]
                    self.col += p - self.pos
                    self.pos = p
                elif c == "\t":
                    if leading_blanks and self.col < indent:
                        raise self.scanner_error(start, "found a tab character that violates indentation")
                    if not leading_blanks:
                        whitespaces += c
                    self.skip()
                elif not leading_blanks:
                    whitespaces = ""
                    leading_break = self.read_line()
                    leading_blanks = True
                else:
                    trailing_breaks += self.read_line()
            if self.flow_level == 0 and self.col < indent:
                break
        if leading_blanks:
            self.simple_key_allowed = True
        return Token(SCALAR, start, end_mark, "".join(chunks), PLAIN_STYLE)


def _utf8_width(octet: int) -> int:
    if octet & 0x80 == 0x00:
        return 1
    if octet & 0xE0 == 0xC0:
        return 2
    if octet & 0xF0 == 0xE0:
        return 3
    if octet & 0xF8 == 0xF0:
        return 4
    return 0


class Parser(Scanner):
    """go-yaml's event parser (parserc.go) on top of the scanner."""

    def peek_token(self) -> Token:
        if not self.token_available:
            self.fetch_more_tokens()
        token = self.tokens[self.head]
        if self.comments_head < len(self.comments):
            self.unfold_comments(token)
        return token

    def skip_token(self) -> None:
        self.token_available = False
        self.stream_end_produced = self.tokens[self.head].typ == STREAM_END
        self.head += 1

    def unfold_comments(self, token: Token) -> None:
        """Join the comments queued before ``token`` into the parser's buffers."""
        comments = self.comments
        index = token.start[0]
        while self.comments_head < len(comments) and index >= comments[self.comments_head].token_mark[0]:
            comment = comments[self.comments_head]
            if comment.head:
                if token.typ == BLOCK_END:
                    break  # no heads on ends: keep it for a follow-up token
                self.head_comment = self.head_comment + "\n" + comment.head if self.head_comment else comment.head
            if comment.foot:
                self.foot_comment = self.foot_comment + "\n" + comment.foot if self.foot_comment else comment.foot
            if comment.line:
                self.line_comment = self.line_comment + "\n" + comment.line if self.line_comment else comment.line
            comment.clear()
            self.comments_head += 1

    def set_event_comments(self, ev: Event) -> None:
        ev.head = self.head_comment
        ev.line = self.line_comment
        ev.foot = self.foot_comment
        self.head_comment = self.line_comment = self.foot_comment = self.tail_comment = ""
        self.stem_comment = None

    def parse(self) -> Event | None:
        if self.stream_end_produced or self.state == S_END:
            return None
        return _STATES[self.state](self)

    # -- states ---------------------------------------------------------------------------
    # state functions without arguments, for the dispatch table
    def parse_implicit_document_start(self) -> Event:
        return self.parse_document_start(True)

    def parse_explicit_document_start(self) -> Event:
        return self.parse_document_start(False)

    def parse_block_node(self) -> Event:
        return self.parse_node(True, False)

    def parse_block_node_or_indentless_sequence(self) -> Event:
        return self.parse_node(True, True)

    def parse_flow_node(self) -> Event:
        return self.parse_node(False, False)

    def parse_block_sequence_first_entry(self) -> Event:
        return self.parse_block_sequence_entry(True)

    def parse_block_mapping_first_key(self) -> Event:
        return self.parse_block_mapping_key(True)

    def parse_flow_sequence_first_entry(self) -> Event:
        return self.parse_flow_sequence_entry(True)

    def parse_flow_mapping_first_key(self) -> Event:
        return self.parse_flow_mapping_key(True)

    def parse_flow_mapping_empty_value(self) -> Event:
        return self.parse_flow_mapping_value(True)

    def parse_stream_start(self) -> Event:
        token = self.peek_token()
        if token.typ != STREAM_START:
            raise self.parser_error("did not find expected <stream-start>", token.start)
        self.state = S_IMPLICIT_DOCUMENT_START
        ev = Event(EV_STREAM_START, token.start, token.end)
        self.skip_token()
        return ev

    def parse_document_start(self, implicit: bool) -> Event:
        token = self.peek_token()
        if not implicit:
            while token.typ == DOCUMENT_END:
                self.skip_token()
                token = self.peek_token()
        if implicit and token.typ not in (VERSION_DIRECTIVE, TAG_DIRECTIVE, DOCUMENT_START, STREAM_END):
            self.process_directives()
            self.states.append(S_DOCUMENT_END)
            self.state = S_BLOCK_NODE
            head = ""
            hc = self.head_comment
            if hc:
                # The part before the last empty line is the document's header.
                for i in range(len(hc) - 1, 0, -1):
                    if hc[i] == "\n":
                        if i == len(hc) - 1:
                            head, self.head_comment = hc[:i], hc[i + 1:]
                            break
                        if hc[i - 1] == "\n":
                            head, self.head_comment = hc[:i - 1], hc[i + 1:]
                            break
            ev = Event(EV_DOCUMENT_START, token.start, token.end)
            ev.head = head
            return ev
        if token.typ != STREAM_END:
            start = token.start
            version = self.process_directives()
            token = self.peek_token()
            if token.typ != DOCUMENT_START:
                raise self.parser_error("did not find expected <document start>", token.start)
            self.states.append(S_DOCUMENT_END)
            self.state = S_DOCUMENT_CONTENT
            ev = Event(EV_DOCUMENT_START, start, token.end)
            ev.version = version
            self.skip_token()
            return ev
        self.state = S_END
        ev = Event(EV_STREAM_END, token.start, token.end)
        self.skip_token()
        return ev

    def parse_document_content(self) -> Event:
        token = self.peek_token()
        if token.typ in (VERSION_DIRECTIVE, TAG_DIRECTIVE, DOCUMENT_START, DOCUMENT_END, STREAM_END):
            self.state = self.states.pop()
            return self.empty_scalar(token.start)
        return self.parse_node(True, False)

    def parse_document_end(self) -> Event:
        token = self.peek_token()
        start = end = token.start
        implicit = True
        if token.typ == DOCUMENT_END:
            end = token.end
            self.skip_token()
            implicit = False
        self.tag_directives = []
        self.state = S_DOCUMENT_START
        ev = Event(EV_DOCUMENT_END, start, end)
        ev.implicit = implicit
        self.set_event_comments(ev)
        if ev.head and not ev.foot:
            ev.foot, ev.head = ev.head, ""
        return ev

    def parse_node(self, block: bool, indentless_sequence: bool) -> Event:
        token = self.peek_token()
        if token.typ == ALIAS:
            self.state = self.states.pop()
            ev = Event(EV_ALIAS, token.start, token.end)
            ev.anchor = token.value
            self.set_event_comments(ev)
            self.skip_token()
            return ev
        start = end = token.start
        tag_token = False
        tag_handle = tag_suffix = anchor = ""
        tag_mark = ZERO
        if token.typ == ANCHOR:
            anchor, start, end = token.value, token.start, token.end
            self.skip_token()
            token = self.peek_token()
            if token.typ == TAG:
                tag_token = True
                tag_handle, tag_suffix, tag_mark, end = token.value, token.suffix, token.start, token.end
                self.skip_token()
                token = self.peek_token()
        elif token.typ == TAG:
            tag_token = True
            tag_handle, tag_suffix, start, tag_mark, end = token.value, token.suffix, token.start, token.start, token.end
            self.skip_token()
            token = self.peek_token()
            if token.typ == ANCHOR:
                anchor, end = token.value, token.end
                self.skip_token()
                token = self.peek_token()
        tag = ""
        if tag_token:
            if not tag_handle:
                tag = tag_suffix
            else:
                for handle, prefix in self.tag_directives:
                    if handle == tag_handle:
                        tag = prefix + tag_suffix
                        break
                if not tag:
                    raise self.parser_error("found undefined tag handle", tag_mark, start)
        implicit = not tag
        if indentless_sequence and token.typ == BLOCK_ENTRY:
            self.state = S_INDENTLESS_SEQUENCE_ENTRY
            return self._collection_start(EV_SEQUENCE_START, start, token.end, anchor, tag, implicit, BLOCK_STYLE)
        if token.typ == SCALAR:
            self.state = self.states.pop()
            ev = Event(EV_SCALAR, start, token.end)
            ev.anchor, ev.tag, ev.value, ev.style = anchor, tag, token.value, token.style
            if (not tag and token.style == PLAIN_STYLE) or tag == "!":
                ev.implicit = True
            elif not tag:
                ev.quoted_implicit = True
            self.set_event_comments(ev)
            self.skip_token()
            return ev
        if token.typ == FLOW_SEQUENCE_START:
            self.state = S_FLOW_SEQUENCE_FIRST_ENTRY
            ev = self._collection_start(EV_SEQUENCE_START, start, token.end, anchor, tag, implicit, FLOW_STYLE)
            self.set_event_comments(ev)
            return ev
        if token.typ == FLOW_MAPPING_START:
            self.state = S_FLOW_MAPPING_FIRST_KEY
            ev = self._collection_start(EV_MAPPING_START, start, token.end, anchor, tag, implicit, FLOW_STYLE)
            self.set_event_comments(ev)
            return ev
        if block and token.typ in (BLOCK_SEQUENCE_START, BLOCK_MAPPING_START):
            is_seq = token.typ == BLOCK_SEQUENCE_START
            self.state = S_BLOCK_SEQUENCE_FIRST_ENTRY if is_seq else S_BLOCK_MAPPING_FIRST_KEY
            ev = self._collection_start(EV_SEQUENCE_START if is_seq else EV_MAPPING_START, start, token.end,
                                        anchor, tag, implicit, BLOCK_STYLE)
            if self.stem_comment is not None:
                ev.head = self.stem_comment
                self.stem_comment = None
            return ev
        if anchor or tag:
            self.state = self.states.pop()
            ev = Event(EV_SCALAR, start, end)
            ev.anchor, ev.tag, ev.implicit, ev.style = anchor, tag, implicit, PLAIN_STYLE
            return ev
        raise self.parser_error("did not find expected node content", token.start, start)

    @staticmethod
    def _collection_start(typ: int, start: tuple[int, int, int], end: tuple[int, int, int], anchor: str, tag: str,
                          implicit: bool, style: int) -> Event:
        ev = Event(typ, start, end)
        ev.anchor, ev.tag, ev.implicit, ev.style = anchor, tag, implicit, style
        return ev

    def empty_scalar(self, mark: tuple[int, int, int]) -> Event:
        ev = Event(EV_SCALAR, mark, mark)
        ev.implicit = True
        ev.style = PLAIN_STYLE
        return ev

    def split_stem_comment(self, stem_len: int) -> None:
        """A head comment read before a sequence entry that holds a collection
        belongs to that collection as a whole (the "stem")."""
        if stem_len == 0:
            return
        token = self.peek_token()
        if token.typ not in (BLOCK_SEQUENCE_START, BLOCK_MAPPING_START):
            return
        self.stem_comment = self.head_comment[:stem_len]
        if len(self.head_comment) == stem_len:
            self.head_comment = ""
        else:
            self.head_comment = self.head_comment[stem_len + 1:]

    def parse_block_sequence_entry(self, first: bool = False) -> Event:
        if first:
            token = self.peek_token()
            self.marks.append(token.start)
            self.skip_token()
        token = self.peek_token()
        if token.typ == BLOCK_ENTRY:
            mark = token.end
            prior_head_len = len(self.head_comment)
            self.skip_token()
            self.split_stem_comment(prior_head_len)
            token = self.peek_token()
            if token.typ not in (BLOCK_ENTRY, BLOCK_END):
                self.states.append(S_BLOCK_SEQUENCE_ENTRY)
                return self.parse_node(True, False)
            self.state = S_BLOCK_SEQUENCE_ENTRY
            return self.empty_scalar(mark)
        if token.typ == BLOCK_END:
            self.state = self.states.pop()
            self.marks.pop()
            ev = Event(EV_SEQUENCE_END, token.start, token.end)
            self.skip_token()
            return ev
        context = self.marks.pop()
        raise self.parser_error("did not find expected '-' indicator", token.start, context)

    def parse_indentless_sequence_entry(self) -> Event:
        token = self.peek_token()
        if token.typ == BLOCK_ENTRY:
            mark = token.end
            prior_head_len = len(self.head_comment)
            self.skip_token()
            self.split_stem_comment(prior_head_len)
            token = self.peek_token()
            if token.typ not in (BLOCK_ENTRY, KEY, VALUE, BLOCK_END):
                self.states.append(S_INDENTLESS_SEQUENCE_ENTRY)
                return self.parse_node(True, False)
            self.state = S_INDENTLESS_SEQUENCE_ENTRY
            return self.empty_scalar(mark)
        self.state = self.states.pop()
        return Event(EV_SEQUENCE_END, token.start, token.start)

    def parse_block_mapping_key(self, first: bool = False) -> Event:
        if first:
            token = self.peek_token()
            self.marks.append(token.start)
            self.skip_token()
        token = self.peek_token()
        if token.typ == KEY:
            mark = token.end
            self.skip_token()
            token = self.peek_token()
            if token.typ not in (KEY, VALUE, BLOCK_END):
                self.states.append(S_BLOCK_MAPPING_VALUE)
                return self.parse_node(True, True)
            self.state = S_BLOCK_MAPPING_VALUE
            return self.empty_scalar(mark)
        if token.typ == BLOCK_END:
            self.state = self.states.pop()
            self.marks.pop()
            ev = Event(EV_MAPPING_END, token.start, token.end)
            self.set_event_comments(ev)
            self.skip_token()
            return ev
        context = self.marks.pop()
        raise self.parser_error("did not find expected key", token.start, context)

    def parse_block_mapping_value(self) -> Event:
        token = self.peek_token()
        if token.typ == VALUE:
            mark = token.end
            self.skip_token()
            token = self.peek_token()
            if token.typ not in (KEY, VALUE, BLOCK_END):
                self.states.append(S_BLOCK_MAPPING_KEY)
                return self.parse_node(True, True)
            self.state = S_BLOCK_MAPPING_KEY
            return self.empty_scalar(mark)
        self.state = S_BLOCK_MAPPING_KEY
        return self.empty_scalar(token.start)

    def parse_flow_sequence_entry(self, first: bool = False) -> Event:
        if first:
            token = self.peek_token()
            self.marks.append(token.start)
            self.skip_token()
        token = self.peek_token()
        if token.typ != FLOW_SEQUENCE_END:
            if not first:
                if token.typ == FLOW_ENTRY:
                    self.skip_token()
                    token = self.peek_token()
                else:
                    context = self.marks.pop()
                    raise self.parser_error("did not find expected ',' or ']'", token.start, context)
            if token.typ == KEY:
                self.state = S_FLOW_SEQUENCE_ENTRY_MAPPING_KEY
                ev = self._collection_start(EV_MAPPING_START, token.start, token.end, "", "", True, FLOW_STYLE)
                self.skip_token()
                return ev
            if token.typ != FLOW_SEQUENCE_END:
                self.states.append(S_FLOW_SEQUENCE_ENTRY)
                return self.parse_node(False, False)
        self.state = self.states.pop()
        self.marks.pop()
        ev = Event(EV_SEQUENCE_END, token.start, token.end)
        self.set_event_comments(ev)
        self.skip_token()
        return ev

    def parse_flow_sequence_entry_mapping_key(self) -> Event:
        token = self.peek_token()
        if token.typ not in (VALUE, FLOW_ENTRY, FLOW_SEQUENCE_END):
            self.states.append(S_FLOW_SEQUENCE_ENTRY_MAPPING_VALUE)
            return self.parse_node(False, False)
        mark = token.end
        self.skip_token()
        self.state = S_FLOW_SEQUENCE_ENTRY_MAPPING_VALUE
        return self.empty_scalar(mark)

    def parse_flow_sequence_entry_mapping_value(self) -> Event:
        token = self.peek_token()
        if token.typ == VALUE:
            self.skip_token()
            inner = self.peek_token()
            if inner.typ not in (FLOW_ENTRY, FLOW_SEQUENCE_END):
                self.states.append(S_FLOW_SEQUENCE_ENTRY_MAPPING_END)
                return self.parse_node(False, False)
        self.state = S_FLOW_SEQUENCE_ENTRY_MAPPING_END
        return self.empty_scalar(token.start)

    def parse_flow_sequence_entry_mapping_end(self) -> Event:
        token = self.peek_token()
        self.state = S_FLOW_SEQUENCE_ENTRY
        return Event(EV_MAPPING_END, token.start, token.start)

    def parse_flow_mapping_key(self, first: bool = False) -> Event:
        if first:
            token = self.peek_token()
            self.marks.append(token.start)
            self.skip_token()
        token = self.peek_token()
        if token.typ != FLOW_MAPPING_END:
            if not first:
                if token.typ == FLOW_ENTRY:
                    self.skip_token()
                    token = self.peek_token()
                else:
                    context = self.marks.pop()
                    raise self.parser_error("did not find expected ',' or '}'", token.start, context)
            if token.typ == KEY:
                self.skip_token()
                token = self.peek_token()
                if token.typ not in (VALUE, FLOW_ENTRY, FLOW_MAPPING_END):
                    self.states.append(S_FLOW_MAPPING_VALUE)
                    return self.parse_node(False, False)
                self.state = S_FLOW_MAPPING_VALUE
                return self.empty_scalar(token.start)
            if token.typ != FLOW_MAPPING_END:
                self.states.append(S_FLOW_MAPPING_EMPTY_VALUE)
                return self.parse_node(False, False)
        self.state = self.states.pop()
        self.marks.pop()
        ev = Event(EV_MAPPING_END, token.start, token.end)
        self.set_event_comments(ev)
        self.skip_token()
        return ev

    def parse_flow_mapping_value(self, empty: bool = False) -> Event:
        token = self.peek_token()
        if empty:
            self.state = S_FLOW_MAPPING_KEY
            return self.empty_scalar(token.start)
        if token.typ == VALUE:
            self.skip_token()
            token = self.peek_token()
            if token.typ not in (FLOW_ENTRY, FLOW_MAPPING_END):
                self.states.append(S_FLOW_MAPPING_KEY)
                return self.parse_node(False, False)
        self.state = S_FLOW_MAPPING_KEY
        return self.empty_scalar(token.start)

    def process_directives(self) -> tuple[int, int] | None:
        version: tuple[int, int] | None = None
        token = self.peek_token()
        while token.typ in (VERSION_DIRECTIVE, TAG_DIRECTIVE):
            if token.typ == VERSION_DIRECTIVE:
                if version is not None:
                    raise self.parser_error("found duplicate %YAML directive", token.start)
                if token.major != 1 or token.minor != 1:
                    raise self.parser_error("found incompatible YAML document", token.start)
                version = (token.major, token.minor)
            else:
                self.append_tag_directive(token.value, token.prefix, False, token.start)
            self.skip_token()
            token = self.peek_token()
        for handle, prefix in DEFAULT_TAG_DIRECTIVES:
            self.append_tag_directive(handle, prefix, True, token.start)
        return version

    def append_tag_directive(self, handle: str, prefix: str, allow_duplicates: bool,
                             mark: tuple[int, int, int]) -> None:
        for existing, _ in self.tag_directives:
            if existing == handle:
                if allow_duplicates:
                    return
                raise self.parser_error("found duplicate %TAG directive", mark)
        self.tag_directives.append((handle, prefix))


_STATES = {
    S_STREAM_START: Parser.parse_stream_start,
    S_IMPLICIT_DOCUMENT_START: Parser.parse_implicit_document_start,
    S_DOCUMENT_START: Parser.parse_explicit_document_start,
    S_DOCUMENT_CONTENT: Parser.parse_document_content,
    S_DOCUMENT_END: Parser.parse_document_end,
    S_BLOCK_NODE: Parser.parse_block_node,
    S_BLOCK_NODE_OR_INDENTLESS_SEQUENCE: Parser.parse_block_node_or_indentless_sequence,
    S_FLOW_NODE: Parser.parse_flow_node,
    S_BLOCK_SEQUENCE_FIRST_ENTRY: Parser.parse_block_sequence_first_entry,
    S_BLOCK_SEQUENCE_ENTRY: Parser.parse_block_sequence_entry,
    S_INDENTLESS_SEQUENCE_ENTRY: Parser.parse_indentless_sequence_entry,
    S_BLOCK_MAPPING_FIRST_KEY: Parser.parse_block_mapping_first_key,
    S_BLOCK_MAPPING_KEY: Parser.parse_block_mapping_key,
    S_BLOCK_MAPPING_VALUE: Parser.parse_block_mapping_value,
    S_FLOW_SEQUENCE_FIRST_ENTRY: Parser.parse_flow_sequence_first_entry,
    S_FLOW_SEQUENCE_ENTRY: Parser.parse_flow_sequence_entry,
    S_FLOW_SEQUENCE_ENTRY_MAPPING_KEY: Parser.parse_flow_sequence_entry_mapping_key,
    S_FLOW_SEQUENCE_ENTRY_MAPPING_VALUE: Parser.parse_flow_sequence_entry_mapping_value,
    S_FLOW_SEQUENCE_ENTRY_MAPPING_END: Parser.parse_flow_sequence_entry_mapping_end,
    S_FLOW_MAPPING_FIRST_KEY: Parser.parse_flow_mapping_first_key,
    S_FLOW_MAPPING_KEY: Parser.parse_flow_mapping_key,
    S_FLOW_MAPPING_VALUE: Parser.parse_flow_mapping_value,
    S_FLOW_MAPPING_EMPTY_VALUE: Parser.parse_flow_mapping_empty_value,
}


class Node:
    """go-yaml's yaml.Node, the parts sops reads."""

    __slots__ = ("kind", "tag", "value", "style", "anchor", "alias", "content", "head", "line", "foot",
                 "line_no", "column")

    def __init__(self, kind: int, tag: str, value: str, style: int) -> None:
        self.kind = kind
        self.tag = tag
        self.value = value
        self.style = style
        self.anchor = ""
        self.alias: Node | None = None
        self.content: list[Node] = []
        self.head = ""
        self.line = ""
        self.foot = ""
        self.line_no = 0
        self.column = 0


class NodeBuilder:
    """decode.go's parser: events to yaml.Node trees, moving foot comments the
    way go-yaml does. Anchors live for the whole stream, as in go-yaml."""

    def __init__(self, text: str) -> None:
        self.p = Parser(text)
        self.event: Event | None = None
        self.anchors: dict[str, Node] = {}
        self.started = False

    def peek(self) -> int:
        if self.event is None:
            self.event = self.p.parse()
            if self.event is None:
                raise YAMLSyntaxError("attempted to parse unknown event", 0)
        return self.event.typ

    def expect(self, typ: int) -> Event:
        self.peek()
        ev = self.event
        assert ev is not None
        if ev.typ == EV_STREAM_END and typ != EV_STREAM_END:
            raise YAMLSyntaxError("attempted to go past the end of stream; corrupted value?", 0)
        if ev.typ != typ:
            raise YAMLSyntaxError(f"expected event {typ} but got {ev.typ}", 0)
        self.event = None
        return ev

    def documents(self) -> list[Node]:
        docs: list[Node] = []
        while True:
            doc = self.parse()
            if doc is None:
                return docs
            docs.append(doc)

    def parse(self) -> Node | None:
        if not self.started:
            self.expect(EV_STREAM_START)
            self.started = True
        typ = self.peek()
        if typ == EV_SCALAR:
            return self.scalar()
        if typ == EV_ALIAS:
            return self.alias()
        if typ == EV_MAPPING_START:
            return self.mapping()
        if typ == EV_SEQUENCE_START:
            return self.sequence()
        if typ == EV_DOCUMENT_START:
            return self.document()
        if typ == EV_STREAM_END:
            return None
        raise YAMLSyntaxError("internal error: unexpected event", 0)

    def node(self, kind: int, default_tag: str, tag: str, value: str) -> Node:
        ev = self.event
        assert ev is not None
        style = 0
        if tag and tag != "!":
            if tag.startswith("tag:yaml.org,2002:"):
                tag = "!!" + tag[len("tag:yaml.org,2002:"):]
            style = TAGGED_STYLE
        elif default_tag:
            tag = default_tag
        else:
            tag = ""  # resolved lazily: only plain untagged scalars get here
        n = Node(kind, tag, value, style)
        n.line_no = ev.start[1] + 1
        n.column = ev.start[2] + 1
        n.head, n.line, n.foot = ev.head, ev.line, ev.foot
        return n

    def document(self) -> Node:
        n = self.node(DOCUMENT_NODE, "", "", "")
        self.expect(EV_DOCUMENT_START)
        self.child(n)
        if self.peek() == EV_DOCUMENT_END:
            assert self.event is not None
            n.foot = self.event.foot
        self.expect(EV_DOCUMENT_END)
        return n

    def child(self, parent: Node) -> Node:
        c = self.parse()
        if c is None:
            raise YAMLSyntaxError("attempted to go past the end of stream; corrupted value?", 0)
        parent.content.append(c)
        return c

    def alias(self) -> Node:
        ev = self.event
        assert ev is not None
        n = self.node(ALIAS_NODE, "", "", ev.anchor)
        n.alias = self.anchors.get(n.value)
        if n.alias is None:
            raise YAMLSyntaxError(f"unknown anchor '{n.value}' referenced", 0)
        self.expect(EV_ALIAS)
        return n

    def scalar(self) -> Node:
        ev = self.event
        assert ev is not None
        st = ev.style
        node_style = 0
        if st & DOUBLE_QUOTED_STYLE:
            node_style = DOUBLE_QUOTED_NODE
        elif st & SINGLE_QUOTED_STYLE:
            node_style = SINGLE_QUOTED_NODE
        elif st & LITERAL_STYLE:
            node_style = LITERAL_NODE
        elif st & FOLDED_STYLE:
            node_style = FOLDED_NODE
        default_tag = ""
        if node_style == 0:
            if ev.value == "<<":
                default_tag = "!!merge"
        else:
            default_tag = "!!str"
        n = self.node(SCALAR_NODE, default_tag, ev.tag, ev.value)
        n.style |= node_style
        if ev.anchor:
            n.anchor = ev.anchor
            self.anchors[ev.anchor] = n
        self.expect(EV_SCALAR)
        return n

    def sequence(self) -> Node:
        ev = self.event
        assert ev is not None
        n = self.node(SEQUENCE_NODE, "!!seq", ev.tag, "")
        if ev.style == FLOW_STYLE:
            n.style |= FLOW_NODE
        if ev.anchor:
            n.anchor = ev.anchor
            self.anchors[ev.anchor] = n
        self.expect(EV_SEQUENCE_START)
        while self.peek() != EV_SEQUENCE_END:
            self.child(n)
        end = self.expect(EV_SEQUENCE_END)
        n.line, n.foot = end.line, end.foot
        return n

    def mapping(self) -> Node:
        ev = self.event
        assert ev is not None
        n = self.node(MAPPING_NODE, "!!map", ev.tag, "")
        block = ev.style != FLOW_STYLE
        if not block:
            n.style |= FLOW_NODE
        if ev.anchor:
            n.anchor = ev.anchor
            self.anchors[ev.anchor] = n
        self.expect(EV_MAPPING_START)
        while self.peek() != EV_MAPPING_END:
            k = self.child(n)
            if block and k.foot:
                # Must be a foot comment for the prior value when being dedented.
                if len(n.content) > 2:
                    n.content[-3].foot = k.foot
                    k.foot = ""
            v = self.child(n)
            if not k.foot and v.foot:
                k.foot, v.foot = v.foot, ""
        end = self.expect(EV_MAPPING_END)
        n.line, n.foot = end.line, end.foot
        if block and n.foot and len(n.content) > 1:
            n.content[-2].foot = n.foot
            n.foot = ""
        return n
