"""Property tests against the real sops binary, both directions, per store.

For each generated input file (YAML, JSON, dotenv, INI, binary):

* sopsflow encrypts it and sops encrypts it; ``sops decrypt`` of sopsflow's
  file must print exactly what ``sops decrypt`` prints for sops' own file
  (sopsflow -> sops);
* ``sopsflow decrypt`` of sops' file must print exactly what ``sops decrypt``
  prints (sops -> sopsflow);
* both encrypted files must have the same layout once the random parts are
  masked (ENC[] values reduced to their data length and type, metadata
  removed): switching tools must not produce whole-file diffs;
* an input sops refuses, sopsflow refuses with the same exit code and writes
  nothing.

To stay fast, every hypothesis example is a file of several independent
random subtrees (YAML: up to three documents; JSON: up to six top-level keys;
INI: up to three sections; dotenv: up to twelve lines), and the independent
tool runs of a step are started together: two encryptions, then three
decryptions. ``test_edge_inputs_both_directions`` adds fixed inputs that
would void a whole batch (refusals) or that found differences before.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ..vectors import AGE_RECIPIENT
from . import Run, age_env, flow_argv, layout, mask_enc, run_all, sops_argv

#: Examples per store and test; raise it for a deeper local run
#: (SOPSFLOW_COMPAT_EXAMPLES=200 pytest tests/compat/test_roundtrip_property.py).
EXAMPLES = int(os.environ.get("SOPSFLOW_COMPAT_EXAMPLES", "15"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
SUFFIX = {"yaml": ".yaml", "json": ".json", "dotenv": ".env", "ini": ".ini", "binary": ".bin"}


# --- the check ---------------------------------------------------------------------------------


def check_both_directions(store: str, data: bytes) -> str:
    """Run the comparison on one input; returns what happened (for hypothesis' statistics)."""
    env = age_env()
    with tempfile.TemporaryDirectory(prefix="sopsflow-compat-") as tmp:
        work = Path(tmp)
        src = work / ("input" + SUFFIX[store])
        src.write_bytes(data)
        by_sops = work / ("sops.enc" + SUFFIX[store])
        by_flow = work / ("flow.enc" + SUFFIX[store])
        enc_sops, enc_flow = run_all(
            [
                sops_argv(["encrypt", "--age", AGE_RECIPIENT, "--output", str(by_sops), str(src)]),
                flow_argv(["encrypt", "--age", AGE_RECIPIENT, "--output", str(by_flow), str(src)]),
            ],
            env=env,
            cwd=work,
        )
        if enc_sops.rc != 0:
            assert enc_flow.rc == enc_sops.rc, f"sops refused the input, sopsflow did not:\n{enc_sops.why()}\n{enc_flow.why()}"
            assert not by_flow.exists(), "sopsflow wrote output for an input it refused"
            _one_line_error(enc_flow)
            return "refused"
        assert enc_flow.rc == 0, enc_flow.why()
        sops_of_sops, sops_of_flow, flow_of_sops = run_all(
            [
                sops_argv(["decrypt", str(by_sops)]),
                sops_argv(["decrypt", str(by_flow)]),
                flow_argv(["decrypt", str(by_sops)]),
            ],
            env=env,
            cwd=work,
        )
        # same file layout, same plaintext lengths and types
        assert layout(store, by_flow.read_bytes()) == layout(store, by_sops.read_bytes())
        if sops_of_sops.rc != 0 and b"panic:" in sops_of_sops.err:
            # sops crashes writing the plaintext (go-ini indexes an empty
            # comment line): sopsflow refuses cleanly instead, with its own code.
            assert sops_of_flow.rc == sops_of_sops.rc, sops_of_flow.why()
            assert flow_of_sops.rc != 0, "sopsflow printed what sops cannot"
            _one_line_error(flow_of_sops)
            return "sops panics"
        if sops_of_sops.rc != 0:
            # sops cannot read its own file back (e.g. an unencrypted -0.0
            # changes type on the way, so the MAC no longer matches): sopsflow
            # must fail the same way on both files.
            assert (sops_of_flow.rc, flow_of_sops.rc) == (sops_of_sops.rc, sops_of_sops.rc), (
                f"{sops_of_sops.why()}\n{sops_of_flow.why()}\n{flow_of_sops.why()}"
            )
            return "sops fails on its own file"
        # sopsflow -> sops. A comment that go-yaml re-attaches elsewhere on
        # reading cannot be decrypted (its AAD changed) and is printed as the
        # ENC[] text it is, in both tools: compare such leftovers masked.
        assert sops_of_flow.rc == 0, sops_of_flow.why()
        assert mask_enc(sops_of_flow.out.decode(errors="surrogateescape")) == mask_enc(
            sops_of_sops.out.decode(errors="surrogateescape")
        )
        # sops -> sopsflow (the same file: byte for byte)
        assert flow_of_sops.rc == 0, flow_of_sops.why()
        assert flow_of_sops.out == sops_of_sops.out
    return "ok"


def _one_line_error(run: Run) -> None:
    text = run.err.decode(errors="replace")
    assert "Traceback" not in text, text
    assert 1 <= len(text.strip().splitlines()) <= 4, text


# --- scalars -----------------------------------------------------------------------------------

SPECIAL_STRINGS = [
    "", " ", "yes", "No", "on", "y", "null", "Null", "~", "true", "False", "0x1F", "0o17", "017", "1_000", "1e3",
    "-.5", ".inf", "NaN", "2024-01-02", "2024-01-02T03:04:05Z", " lead", "trail ", "a: b", "a #b", "#x", "-",
    "- x", "? q", "@at", "`tick", "!tag", "&anchor", "*alias", "%pct", "{a: 1}", "[a]", "'q'", '"dq"', "tab\there",
    "multi\nline", "ends with newline\n", "\n", "cr\r\nlf", "😀 emoji", "é ✓ ü", "\u2028sep", "<&>", "back\\slash",
    "literal \\n", "ENC[AES256_GCM,data:x]", "x" * 200, "\x00nul", "\x7fdel", "\ufeffbom",
]
SPECIAL_KEYS = ["a:b", "a:", ":", "x: y", "key_unencrypted", "k.v", "with space", "ñ", "1", "true", "-", "dup"]

texts = st.one_of(
    st.sampled_from(SPECIAL_STRINGS),
    st.text(st.characters(codec="utf-8"), max_size=12),
)
keys = st.one_of(
    st.sampled_from(SPECIAL_KEYS),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
)
big_ints = st.sampled_from([2**63 - 1, -(2**63), 2**64, 10**30, -(10**25)])
ints = st.one_of(st.integers(-(2**63), 2**63 - 1), big_ints)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e20, 1e21, 1.5e-7, 1e-6, -0.0, 0.1, 123456.0, 1e100, 5e-324, 1.7976931348623157e308]),
)


class Date(str):
    """A YAML timestamp written unquoted (sops types it ``time``)."""


dates = st.sampled_from(
    ["2024-01-02", "2024-1-2", "2024-01-02 03:04:05", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456789+02:00"]
).map(Date)


def trees(scalars: st.SearchStrategy[Any], top_keys: st.SearchStrategy[str] = keys) -> st.SearchStrategy[dict[str, Any]]:
    """Nested mappings with lists (and lists of lists) down to ``scalars``."""
    nodes = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(keys, inner, max_size=4),
        ),
        max_leaves=12,
    )
    return st.dictionaries(top_keys.filter(lambda k: k != "sops"), nodes, max_size=6)


# --- YAML -------------------------------------------------------------------------------------

_PLAIN_OK = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*(?: [A-Za-z0-9_./-]+)*")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _yaml_printable(ch: str) -> bool:
    # What go-yaml accepts raw inside a double-quoted scalar (no line breaks:
    # NEL, LS and PS break lines in YAML 1.1 readers).
    o = ord(ch)
    return 0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF or (0xE000 <= o <= 0xFFFD and o != 0xFEFF) or o >= 0x10000


def yaml_double_quoted(text: str) -> str:
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif _yaml_printable(ch):
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def yaml_string(text: str, style: int) -> str:
    """A string scalar: plain when safe, else single- or double-quoted."""
    if style == 0 and _PLAIN_OK.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    if style == 1 and text and all(_yaml_printable(c) for c in text):
        return "'" + text.replace("'", "''") + "'"
    return yaml_double_quoted(text)


def yaml_scalar(value: Any, style: int) -> str:
    if isinstance(value, Date):
        return str(value)
    if isinstance(value, str):
        return yaml_string(value, style)
    if value is None:
        return ["null", "~", "Null"][style]
    if isinstance(value, bool):
        return [["false", "False", "FALSE"], ["true", "True", "TRUE"]][value][style]
    if isinstance(value, int):
        return hex(value) if style == 2 and value >= 0 else str(value)
    assert isinstance(value, float)
    if math.isnan(value):
        return [".nan", ".NaN", ".NAN"][style]
    if math.isinf(value):
        return ("-" if value < 0 else "") + [".inf", ".Inf", ".INF"][style]
    return repr(value) if style != 2 else f"{value:e}"


class YamlWriter:
    """Block-style YAML with comments on their own lines and after values;
    every line is complete (no multi-line scalars), so a comment may go
    between any two lines."""

    def __init__(self, draw: Any, indent: int) -> None:
        self.draw = draw
        self.indent = indent
        self.lines: list[str] = []

    def style(self) -> int:
        return int(self.draw(st.integers(0, 2)))

    def comment(self, pad: str) -> None:
        if self.draw(st.integers(0, 5)) == 0:
            self.lines.append(f"{pad}#{self.draw(COMMENT_TEXT)}")

    def inline(self) -> str:
        return f" #{self.draw(COMMENT_TEXT)}" if self.draw(st.integers(0, 6)) == 0 else ""

    def value_text(self, value: Any) -> str | None:
        if isinstance(value, dict) and not value:
            return "{}"
        if isinstance(value, list) and not value:
            return "[]"
        if isinstance(value, (dict, list)):
            return None
        return yaml_scalar(value, self.style())

    def mapping(self, node: dict[str, Any], depth: int, first_comment: bool = True) -> None:
        pad = " " * depth
        for i, (key, value) in enumerate(node.items()):
            if i or first_comment:
                self.comment(pad)
            key_text = yaml_string(key, self.style())
            text = self.value_text(value)
            if text is not None:
                self.lines.append(f"{pad}{key_text}: {text}{self.inline()}")
            elif isinstance(value, dict):
                self.lines.append(f"{pad}{key_text}:{self.inline()}")
                self.mapping(value, depth + self.indent)
            else:
                self.lines.append(f"{pad}{key_text}:{self.inline()}")
                # indentless sequences ("key:\n- a") are valid YAML too
                self.sequence(value, depth + self.indent * self.draw(st.integers(0, 1)))

    def sequence(self, node: list[Any], depth: int) -> None:
        pad = " " * depth
        for item in node:
            self.comment(pad)
            text = self.value_text(item)
            if text is not None:
                self.lines.append(f"{pad}- {text}{self.inline()}")
            elif isinstance(item, dict):
                # compact "- key: value" with the other keys lined up under it
                start = len(self.lines)
                self.mapping(item, depth + 2, first_comment=False)
                self.lines[start] = pad + "- " + self.lines[start][depth + 2 :]
            else:
                self.lines.append(f"{pad}-{self.inline()}")
                self.sequence(item, depth + self.indent)


COMMENT_TEXT = st.one_of(
    st.sampled_from(["", " a comment", " sops:enc", " key: value", " 😀 ü", "#", " trailing  "]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=15),
)


@st.composite
def yaml_files(draw: Any) -> bytes:
    scalars = st.one_of(texts, ints, floats, st.booleans(), st.none(), dates)
    documents = draw(st.lists(trees(scalars), min_size=1, max_size=3))
    out: list[str] = []
    for doc in documents:
        writer = YamlWriter(draw, draw(st.sampled_from([2, 4])))
        writer.comment("")
        if doc:
            writer.mapping(doc, 0)
        else:
            writer.lines.append("{}")
        writer.comment("")
        out.append("\n".join(writer.lines) + "\n")
    return "---\n".join(out).encode()


# --- JSON -------------------------------------------------------------------------------------


def json_number(value: Any, style: int) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if style == 1:
        return f"{value:e}"
    if style == 2:
        return f"{value:E}"
    return repr(value)


def json_text(node: Any, draw: Any, indent: str | None, depth: int = 0) -> str:
    nl = "" if indent is None else "\n" + indent * (depth + 1)
    end = "" if indent is None else "\n" + indent * depth
    if isinstance(node, dict):
        if not node:
            return "{}"
        items = [f"{json_str(k, draw)}: {json_text(v, draw, indent, depth + 1)}" for k, v in node.items()]
        if len(items) > 1 and draw(st.integers(0, 9)) == 0:
            items.append(items[0])  # duplicate key: sops keeps (and encrypts) both
        return "{" + nl + ("," + nl).join(items) + end + "}"
    if isinstance(node, list):
        if not node:
            return "[]"
        return "[" + nl + ("," + nl).join(json_text(v, draw, indent, depth + 1) for v in node) + end + "]"
    if isinstance(node, str):
        return json_str(node, draw)
    return json_number(node, draw(st.integers(0, 2)))


def json_str(text: str, draw: Any) -> str:
    return json.dumps(text, ensure_ascii=bool(draw(st.booleans())))


@st.composite
def json_files(draw: Any) -> bytes:
    finite = st.floats(allow_nan=False, allow_infinity=False)
    json_ints = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([2**64, 10**30, -(10**25), 2**53 + 1]))
    scalars = st.one_of(texts, json_ints, finite, st.booleans(), st.none())
    body = draw(trees(scalars))
    indent = draw(st.sampled_from([None, "\t", "  ", "    "]))
    return (json_text(body, draw, indent) + "\n").encode()


# --- dotenv -----------------------------------------------------------------------------------

_DOTENV_KEY = st.text(
    st.characters(codec="utf-8", exclude_characters="=\n"), min_size=1, max_size=10
).filter(lambda k: not k.startswith(("#", "sops_")))
_DOTENV_VALUE = st.one_of(
    st.sampled_from(["", "a=b=c==", '"double quoted"', "'single'", "line1\\nline2", " spaced ", "trailing\r", "$HOME"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=12),
)


@st.composite
def dotenv_files(draw: Any) -> bytes:
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append("#" + draw(COMMENT_TEXT))
        elif kind == 1:
            lines.append("")
        else:
            key = draw(st.one_of(_DOTENV_KEY, st.sampled_from(["export EXPORTED", "  SPACED ", "K_unencrypted"])))
            lines.append(f"{key}={draw(_DOTENV_VALUE)}")
    return ("\n".join(lines) + ("\n" if draw(st.booleans()) else "")).encode()


# --- INI --------------------------------------------------------------------------------------

_INI_NAME = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="[]=:;#\"'`\\"), min_size=1, max_size=8
).map(str.strip).filter(lambda s: s and s.lower() not in ("sops", "default"))
_INI_VALUE = st.one_of(
    st.sampled_from(["", "plain value", '"quoted secret"', "v ; inline", "v # hash", "a=b", "ü 😀", "1.5", "true"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\"'`\\;#"), max_size=12),
)


@st.composite
def ini_files(draw: Any) -> bytes:
    lines: list[str] = []
    sections = draw(st.lists(_INI_NAME, max_size=3, unique=True))
    for index, name in enumerate([None, *sections]):
        if name is not None:
            if draw(st.integers(0, 4)) == 0:
                lines.append(draw(st.sampled_from([";", "#"])) + draw(COMMENT_TEXT))
            lines.append(f"[{name}]")
        section_keys = draw(st.lists(_INI_NAME, max_size=4 if index else 2, unique=True))
        for key in section_keys:
            if draw(st.integers(0, 4)) == 0:
                lines.append(draw(st.sampled_from(["; ", "# "])) + draw(COMMENT_TEXT))
            sep = draw(st.sampled_from(["=", " = ", " =", "= "]))
            lines.append(f"{key}{sep}{draw(_INI_VALUE)}")
    return ("\n".join(lines) + "\n").encode()


# --- binary -----------------------------------------------------------------------------------

binary_files = st.one_of(
    st.binary(max_size=300),
    texts.map(lambda t: t.encode("utf-8")),
    st.sampled_from([b"", b"\xff\xfe\x00", b'{"data": "x", "sops": {}}', b"a: 1\nsops: x\n"]),
)


# --- the tests --------------------------------------------------------------------------------


@PROPERTY
@given(data=yaml_files())
def test_yaml_both_directions(data: bytes) -> None:
    event(check_both_directions("yaml", data))


@PROPERTY
@given(data=json_files())
def test_json_both_directions(data: bytes) -> None:
    event(check_both_directions("json", data))


@PROPERTY
@given(data=dotenv_files())
def test_dotenv_both_directions(data: bytes) -> None:
    event(check_both_directions("dotenv", data))


@PROPERTY
@given(data=ini_files())
def test_ini_both_directions(data: bytes) -> None:
    event(check_both_directions("ini", data))


@settings(PROPERTY, max_examples=max(1, EXAMPLES * 3 // 5))
@given(data=binary_files)
def test_binary_both_directions(data: bytes) -> None:
    event(check_both_directions("binary", data))


# Inputs sops refuses (or accepts) for reasons the generators above avoid so
# that one refusal does not void a whole batch: checked one by one.
EDGE_INPUTS = [
    ("yaml", b"big: 18446744073709551615\n"),  # uint64: exit 23 in both
    ("yaml", b"big: 9223372036854775808\n"),
    ("yaml", b"n: 1\n---\n"),
    ("yaml", b"---\n"),
    ("yaml", b"# only a comment\n"),
    ("yaml", b"a: !!binary aGVsbG8=\nb: !!str 123\nc: 0o17\n"),
    ("yaml", b"base: &b {x: 1}\nderived:\n    <<: *b\n    y: 2\n"),
    ("yaml", b"a: >\n    folded\n    text\nb: |\n    literal\n"),
    ("yaml", b"t: 2024-01-02T03:04:05+0100\nu: 2024-01-02t03:04:05z\n"),
    ("json", b'{"a": 1e400}\n'),
    ("json", b'{"a": 12345678901234567890, "b": -0.0, "c": 1E+2}\n'),
    ("json", b'{"a": "\\ud83d\\ude00 \\u00e9 \\u2028 <&>"}\n'),
    ("json", b"{}\n"),
    ("yaml", b"a:\n    - 1\n    #\n    - 2\nb: 1 #\n"),  # empty comments: "#" in a mapping, `- ""` in a list
    ("yaml", b"a:\n  - x: null #\n"),
    ("dotenv", b"#\nA=1\n"),
    ("ini", b"[s]\n;\na = 1\n"),
    ("ini", b"; \n0=v ; inline\n"),  # sops panics on decrypt (exit 2), sopsflow exits 4 with a message
    ("dotenv", b"NOEQUALS\n"),
    ("dotenv", b"=empty key\n"),
    ("ini", b"[a]\nk = v\n[a]\nk2 = w\n"),
    ("ini", b'k = """multi\nline"""\n'),
]


@pytest.mark.parametrize(("store", "data"), EDGE_INPUTS, ids=[f"{s}-{i}" for i, (s, _) in enumerate(EDGE_INPUTS)])
def test_edge_inputs_both_directions(store: str, data: bytes) -> None:
    check_both_directions(store, data)
