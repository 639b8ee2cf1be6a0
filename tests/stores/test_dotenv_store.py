"""dotenv store against sops 3.11.0: vectors byte for byte and the real binary
as the oracle for the line rules."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow.errors import SopsError
from sopsflow.stores.dotenv_store import DotenvStore
from sopsflow.tree import Comment, Time, TreeMap

from ..conftest import base_env, run_sops
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT, GENERATED, UPSTREAM, external

ENC_VECTORS = [
    GENERATED / "dotenv/edge.enc.env",
    GENERATED / "shamir/secrets.enc.env",
    external(UPSTREAM / "functional-tests/res/format.enc.env"),
]
PLAIN_VECTORS = [
    (GENERATED / "dotenv/edge.input.env", GENERATED / "dotenv/edge.plain.env"),
    (GENERATED / "shamir/secrets.input.env", GENERATED / "shamir/secrets.plain.env"),
    external(None, UPSTREAM / "expected/functional-tests/res/format.enc.plain.env"),
]


def _env() -> dict[str, str]:
    return base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))


def sops_round_trip(data: bytes) -> tuple[int, bytes]:
    """``sops encrypt`` then ``sops decrypt`` of a .env file."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "f.env").write_bytes(data)
        enc = run_sops(["encrypt", "--age", AGE_RECIPIENT, "f.env"], env=_env(), cwd=work)
        if enc.returncode:
            return enc.returncode, b""
        (work / "g.env").write_bytes(enc.stdout)
        dec = run_sops(["decrypt", "g.env"], env=_env(), cwd=work)
        return dec.returncode, dec.stdout


def mine(data: bytes) -> bytes:
    store = DotenvStore()
    return store.dump_plain(store.load_plain(data))


@pytest.mark.parametrize("path", ENC_VECTORS, ids=lambda p: p.name)
def test_encrypted_vector_round_trips_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    store = DotenvStore()
    branches, meta = store.load_encrypted(data)
    assert meta is not None
    assert not any(k.startswith("sops_") for k in branches[0].keys_())
    assert store.dump_encrypted(branches, meta) == data


@pytest.mark.parametrize(("source", "plain"), PLAIN_VECTORS, ids=lambda p: p.name if p else "-")
def test_plain_vectors(source: Path | None, plain: Path) -> None:
    expected = plain.read_bytes()
    assert mine(expected) == expected
    if source is not None:
        assert mine(source.read_bytes()) == expected


def test_edge_vector_tree() -> None:
    branch = DotenvStore().load_plain((GENERATED / "dotenv/edge.input.env").read_bytes())[0]
    assert branch[0] == Comment(" a comment line")
    assert branch.get("DOUBLE") == '"in double quotes"'
    assert branch.get("EQUALS") == "x=y==z="
    assert branch.get("NOTHING") == ""
    assert branch.get("MULTILINE") == "first\nsecond"
    assert branch.get("INTEGER") == "1234"
    assert branch.get("  PADDED_KEY ") == " padded value "
    assert branch.get("export EXPORTED") == "yes"
    assert branch[-1] == Comment("closing comment")


def test_shamir_metadata() -> None:
    _, meta = DotenvStore().load_encrypted((GENERATED / "shamir/secrets.enc.env").read_bytes())
    assert meta is not None
    assert meta["shamir_threshold"] == 2
    assert len(meta["key_groups"]) == 2


def test_no_metadata_is_none() -> None:
    branches, meta = DotenvStore().load_encrypted(b"A=b\n#c\n")
    assert meta is None and branches[0] == [("A", "b"), Comment("c")]


ORACLE_CASES = [
    b"",
    b"\n\n",
    b"A=1",
    b"#c\n",
    b" #c=1\n",
    b"=x\n",
    b"A=b\\nc\\\\nd\n",
    b"A=b\r\nB=c\r\n",
    b'export A="x" \n',
    b"A=\xff\xfe\n",
    b"#\n",
    b"A==\n",
    b"A=1\nA=2\n",
]


def test_output_matches_sops_round_trip() -> None:
    for case in ORACLE_CASES:
        code, expected = sops_round_trip(case)
        assert code == 0, case
        assert mine(case) == expected, case


@pytest.mark.parametrize("case", [b"A\n", b"A=1\nB\n", b"\r\n", b" \n"])
def test_line_without_equals_fails_as_in_sops(case: bytes) -> None:
    code, _ = sops_round_trip(case)
    assert code == 2
    with pytest.raises(SopsError) as err:
        DotenvStore().load_plain(case)
    assert err.value.code == 2
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "f.env").write_bytes(case)
        assert run_sops(["decrypt", "f.env"], env=_env(), cwd=tmp).returncode == 1
    with pytest.raises(SopsError) as err:
        DotenvStore().load_encrypted(case)
    assert err.value.code == 1


def test_values_from_other_formats() -> None:
    branch = TreeMap(
        [
            ("f", 1.0),
            ("big", 1e21),
            ("small", 1.5e-7),
            ("t", Time("2024-01-02T03:04:05.5Z")),
            ("n", None),
            ("b", True),
            ("i", 5),
            Comment(" c"),
            ("s", "a\nb"),
        ]
    )
    # Same bytes as `sops decrypt --output-type dotenv` of the equivalent YAML.
    assert DotenvStore().dump_plain([branch]) == (
        b"f=1.0\nbig=1E+21\nsmall=1.5E-07\nt=2024-01-02T03:04:05Z\nn=<nil>\nb=true\ni=5\n# c\ns=a\\nb\n"
    )


def test_complex_value_is_refused() -> None:
    for value in (TreeMap([("b", "c")]), ["x"]):
        with pytest.raises(SopsError) as err:
            DotenvStore().dump_plain([TreeMap([("a", value)])])
        assert err.value.code == 4
        assert "cannot use complex value in dotenv file" in err.value.message


def test_dump_value() -> None:
    store = DotenvStore()
    assert store.dump_value("x\ny") == b"x\ny"
    assert store.dump_value(TreeMap([("a", "b")])) == b"a=b\n"
    for value, name in [(1.0, "float64"), (None, "<nil>"), (True, "bool"), (Time("2024-01-02T00:00:00Z"), "time.Time")]:
        with pytest.raises(SopsError) as err:
            store.dump_value(value)
        assert err.value.code == 4 and err.value.message.endswith(f"got {name}")


_KEY = st.text(min_size=1, max_size=8).filter(lambda k: "=" not in k and "\n" not in k and k[0] != "#")
_VALUE = st.text(max_size=16)
_ENTRY = st.one_of(
    st.tuples(_KEY.filter(lambda k: not k.startswith("sops_")), _VALUE),
    st.text(max_size=10).filter(lambda c: "\n" not in c).map(Comment),
)


@settings(max_examples=25, deadline=None)
@given(st.lists(_ENTRY, max_size=6).map(TreeMap))
def test_random_files_survive_real_sops(branch: TreeMap) -> None:
    data = DotenvStore().dump_plain([branch])
    assert mine(data) == data
    code, decrypted = sops_round_trip(data)
    assert code == 0
    assert decrypted == data
