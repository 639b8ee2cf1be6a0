"""JSON store against sops 3.11.0: its vectors byte for byte, and the real
binary as the oracle for parsing, escaping, float format and indentation."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow.errors import SopsError
from sopsflow.stores.json_store import JsonStore
from sopsflow.tree import Comment, Time, TreeMap

from ..conftest import base_env, run_sops
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT, GENERATED, PGP_FP, UPSTREAM, external, needs_external

ENC_VECTORS = [
    GENERATED / "json/edge.enc.json",
    GENERATED / "partial/json-encrypted-regex.enc.json",
    external(UPSTREAM / "functional-tests/res/format.enc.json"),
    external(UPSTREAM / "example.json"),
]
PLAIN_VECTORS = [
    (GENERATED / "json/edge.input.json", GENERATED / "json/edge.plain.json"),
    (GENERATED / "partial/config.input.json", GENERATED / "partial/json-encrypted-regex.plain.json"),
    external(None, UPSTREAM / "expected/functional-tests/res/format.enc.plain.json"),
    external(None, UPSTREAM / "expected/example.plain.json"),
]


def _env() -> dict[str, str]:
    return base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))


def sops_round_trip(data: bytes, name: str = "f.json", config: str | None = None) -> tuple[int, bytes]:
    """``sops encrypt`` then ``sops decrypt``: (exit code of the failing step or 0, decrypted bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if config is not None:
            (work / ".sops.yaml").write_text(config)
        (work / name).write_bytes(data)
        args = ["encrypt"] if config else ["encrypt", "--age", AGE_RECIPIENT]
        enc = run_sops([*args, name], env=_env(), cwd=work)
        if enc.returncode:
            return enc.returncode, b""
        (work / f"enc-{name}").write_bytes(enc.stdout)
        dec = run_sops(["decrypt", f"enc-{name}"], env=_env(), cwd=work)
        return dec.returncode, dec.stdout


def sops_decrypt_code(data: bytes, name: str = "f.json") -> int:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / name).write_bytes(data)
        return run_sops(["decrypt", name], env=_env(), cwd=tmp).returncode


def mine(data: bytes, indent: int = -1) -> bytes:
    store = JsonStore(indent)
    return store.dump_plain(store.load_plain(data))


# --- vectors ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ENC_VECTORS, ids=lambda p: p.name)
def test_encrypted_vector_round_trips_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    store = JsonStore()
    branches, meta = store.load_encrypted(data)
    assert meta is not None and not branches[0].has("sops")
    out = store.dump_encrypted(branches, meta)
    if path.name == "example.json":
        # Written by sops 3.5.0, which did not end the file with a newline.
        assert out == data + b"\n"
    else:
        assert out == data


@pytest.mark.parametrize(("source", "plain"), PLAIN_VECTORS, ids=lambda p: p.name if p else "-")
def test_plain_vectors(source: Path | None, plain: Path) -> None:
    expected = plain.read_bytes()
    assert mine(expected) == expected
    if source is not None:
        # The input given to sops, re-emitted, is what `sops decrypt` printed.
        assert mine(source.read_bytes()) == expected


def test_edge_vector_tree_types() -> None:
    branch = JsonStore().load_plain((GENERATED / "json/edge.input.json").read_bytes())[0]
    assert branch.get("whole") == 7.0 and type(branch.get("whole")) is float
    assert branch.get("beyond_int64") == 98765432109876543210.0
    assert branch.get("nothing") is None and branch.get("flag") is False
    assert branch.get("escapes") == "\u00fc\U0001f511 \u2028 \u2029"
    assert [k for k in branch.keys_() if k == "twice"] == ["twice", "twice"]
    nested = branch.get("tree")
    assert type(nested) is TreeMap and type(nested.get("items")) is list


def test_metadata_is_plain_python() -> None:
    _, meta = JsonStore().load_encrypted((GENERATED / "json/edge.enc.json").read_bytes())
    assert meta is not None
    assert type(meta) is dict and type(meta["pgp"]) is list and type(meta["pgp"][0]) is dict
    assert meta["pgp"][0]["fp"] == PGP_FP
    assert list(meta) == ["age", "lastmodified", "mac", "pgp", "unencrypted_suffix", "version"]


@needs_external
def test_old_metadata_is_plain_python() -> None:
    _, old = JsonStore().load_encrypted((UPSTREAM / "example.json").read_bytes())
    assert old is not None and old["kms"] is None


# --- the binary as oracle ------------------------------------------------------------

ORACLE_CASES = [
    b'{"a": "b"} trailing garbage',
    b'{"a":"b"}{"c":1}',
    b'{"x": 1e-7, "y": 1e21, "z": 123456789012345678901234567890, "w": -0.0, "v": 0.000001, "u": 1.5e300}',
    b'{"a": 1e20, "b": 123456.0, "c": 1.5e-7, "d": 5e-324, "e": 1.7976931348623157e308, "f": 123456789.123456789}',
    b'{"s": "\\u0000\\u001f\\u007f\\b\\f\\n\\r\\t\\"\\\\/ <a href=\\"x\\">&</a> \\u2028\\u2029 \\u00e9\\ud83d\\ude00"}',
    b'{"lone": "\\ud800", "low": "\\udc00x", "bad": "\xff\xfe\xe2\x82a", "\xc3": 1}',
    b'{"a": [], "b": {}, "c": [[]], "d": [{}], "e": [1, [2, [3]], {"deep": null}]}',
    b'{"dup": 1, "dup": 2, "t": true, "f": false}',
    b"{}",
]


def test_output_matches_sops_round_trip() -> None:
    for case in ORACLE_CASES:
        code, expected = sops_round_trip(case)
        assert code == 0, case
        assert mine(case) == expected, case


BAD_INPUTS = [
    b"",
    b"   \n",
    b"[1]",
    b'"str"',
    b"42",
    b"null",
    b'{"a": 1e400}',
    b'{"a": -1e400}',
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a":1',
    b'{"a": "b",}',
    b"{a: 1}",
    b'{"a": 01}',
    b'{"a": "\t"}',
    b"\xef\xbb\xbf{}",
]


def test_bad_input_exit_codes_match_sops() -> None:
    for case in BAD_INPUTS:
        code, _ = sops_round_trip(case)
        assert code == 2, case
        with pytest.raises(SopsError) as err:
            JsonStore().load_plain(case)
        assert err.value.code == 2, case


def test_bad_encrypted_input_exit_codes_match_sops() -> None:
    enc = (GENERATED / "json/edge.enc.json").read_bytes()
    for case in [enc + b"garbage", b"", b"[1]", b'{"a": 1', b'{"a": "b", "sops": "x"}']:
        assert sops_decrypt_code(case) == 1, case
        with pytest.raises(SopsError) as err:
            JsonStore().load_encrypted(case)
        assert err.value.code == 1, case


def test_missing_metadata_is_none() -> None:
    for case in [b'{"a": "b"}', b'{"a": "b", "sops": null}']:
        assert sops_decrypt_code(case) == 1  # "sops metadata not found"
        branches, meta = JsonStore().load_encrypted(case)
        assert meta is None and branches[0].keys_() == ["a"]


@pytest.mark.parametrize("indent", [0, 2, 4, -1])
def test_indent_matches_sops_config(indent: int) -> None:
    data = b'{"a": {"b": [1, {}, [true]]}, "c": []}'
    config = f"stores:\n  json:\n    indent: {indent}\ncreation_rules:\n  - age: {AGE_RECIPIENT}\n"
    code, expected = sops_round_trip(data, config=config)
    assert code == 0
    assert mine(data, indent) == expected


def test_indent_below_minus_one_fails_on_output() -> None:
    store = JsonStore(-2)
    branches = store.load_plain(b'{"a": 1}')
    with pytest.raises(SopsError) as err:
        store.dump_plain(branches)
    assert err.value.code == 4


# --- writing trees that did not come from JSON -----------------------------------------


def test_comments_times_ints_and_nonfinite_floats() -> None:
    tree = TreeMap(
        [
            Comment(" c"),
            ("t", Time("2024-01-02T03:04:05.5Z")),
            ("i", 5),
            ("l", [Comment(" x"), 1.0, "ENC[...,type:comment]"]),
        ]
    )
    assert JsonStore().dump_plain([tree]) == (
        b'{\n\t"t": "2024-01-02T03:04:05.5Z",\n\t"i": 5,\n\t"l": [\n\t\t1,\n\t\t"ENC[...,type:comment]"\n\t]\n}\n'
    )
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(SopsError) as err:
            JsonStore().dump_plain([TreeMap([("a", bad)])])
        assert err.value.code == 4


def test_dump_encrypted_appends_metadata() -> None:
    meta = {"age": [{"recipient": "r", "enc": "a\n<b>"}], "hc_vault": None, "lastmodified": "t", "version": "3.11.0"}
    out = JsonStore(2).dump_encrypted([TreeMap([("k", "v")])], meta)
    assert out == (
        b'{\n  "k": "v",\n  "sops": {\n    "age": [\n      {\n        "recipient": "r",\n'
        b'        "enc": "a\\n\\u003cb\\u003e"\n      }\n    ],\n    "hc_vault": null,\n'
        b'    "lastmodified": "t",\n    "version": "3.11.0"\n  }\n}\n'
    )


def test_dump_value_like_decrypt_extract() -> None:
    store = JsonStore()
    assert store.dump_value("raw \xff") == "raw \xff".encode()
    assert store.dump_value(1.0) == b"1"
    assert store.dump_value(None) == b"null"
    assert store.dump_value(Time("2024-01-02T00:00:00Z")) == b'"2024-01-02T00:00:00Z"'
    assert store.dump_value([1.5e-7, TreeMap([("k", "<")])]) == b'[\n\t1.5e-7,\n\t{\n\t\t"k": "\\u003c"\n\t}\n]'
    assert store.dump_value(TreeMap([("k", "v")])) == b'{\n\t"k": "v"\n}\n'


# --- random documents through the real sops ----------------------------------------------

_KEY = st.text(max_size=6)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**70), 2**70).map(float),
    st.text(max_size=12),
)


def _json_trees() -> st.SearchStrategy[Any]:
    return st.recursive(
        _SCALAR,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.lists(st.tuples(_KEY, inner), max_size=3).map(TreeMap),
        ),
        max_leaves=10,
    )


_DOCUMENTS = st.lists(st.tuples(_KEY.filter(lambda k: k != "sops"), _json_trees()), max_size=5).map(TreeMap)


@settings(max_examples=25, deadline=None)
@given(_DOCUMENTS)
def test_random_documents_survive_real_sops(document: TreeMap) -> None:
    store = JsonStore()
    data = store.dump_plain([document])
    assert store.load_plain(data) == [document]
    code, decrypted = sops_round_trip(data)
    assert code == 0
    assert decrypted == data


_JSON_PIECES = st.sampled_from(['{', '}', '[', ']', ',', ':', '"a"', '"k\\u00e9"', '"\\ud800"', '"x\\n"', '"\x01"',
                                '1', '-0.5', '1e400', '01', 'NaN', 'Infinity', 'true', 'null', ' ', '\n', '"'])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_JSON_PIECES, max_size=12).map("".join),
                 st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5),
                              lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                        max_size=3),
                              max_leaves=8).map(lambda v: __import__("json").dumps({"v": v}))))
def test_scanner_without_the_json_package_acts_as_json_decoder(text: str) -> None:
    """The store drives the C scanner itself (no ``import json`` on the decrypt
    path); it must accept, build and reject exactly as the JSONDecoder it replaces."""
    import json

    from sopsflow.stores import json_store

    decoder = json.JSONDecoder(object_pairs_hook=TreeMap, parse_float=json_store._go_number,
                               parse_int=json_store._go_number, parse_constant=json_store._reject_constant)

    def outcome(decode: Any) -> tuple[Any, ...]:
        try:
            value, end = decode(text, 0)
        except json.JSONDecodeError as exc:
            return ("error", exc.msg, exc.pos)
        except ValueError as exc:  # out-of-range numbers and NaN/Infinity: the store's own
            return ("rejected", type(exc).__name__)
        return ("ok", repr(value), end)

    assert outcome(json_store._raw_decode) == outcome(decoder.raw_decode)
