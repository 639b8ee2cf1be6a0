"""Binary store: arbitrary bytes in, the same bytes out; the encrypted form is
sops' JSON wrapper (checked against sops 3.11.0 files and the binary)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow.errors import SopsError
from sopsflow.stores.binary_store import BinaryStore
from sopsflow.tree import TreeMap

from ..conftest import base_env, run_sops
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT, GENERATED, UPSTREAM, external, needs_external


def test_blob_vector_round_trips_byte_for_byte() -> None:
    data = (GENERATED / "binary/blob.enc.bin").read_bytes()
    store = BinaryStore()
    branches, meta = store.load_encrypted(data)
    assert meta is not None and "unencrypted_suffix" not in meta
    assert branches[0].keys_() == ["data"]
    assert store.dump_encrypted(branches, meta) == data


@needs_external
def test_upstream_example_round_trips() -> None:
    data = (UPSTREAM / "example.txt").read_bytes()
    store = BinaryStore()
    branches, meta = store.load_encrypted(data)
    assert meta is not None
    # Written by sops 3.5.0, which left out the final newline.
    assert store.dump_encrypted(branches, meta) == data + b"\n"


@pytest.mark.parametrize(
    ("source", "plain"),
    [
        (GENERATED / "binary/blob.input.bin", GENERATED / "binary/blob.plain.bin"),
        external(UPSTREAM / "expected/example.plain.txt", UPSTREAM / "expected/example.plain.txt"),
    ],
    ids=lambda p: p.name,
)
def test_plain_vectors(source: Path, plain: Path) -> None:
    store = BinaryStore()
    assert store.dump_plain(store.load_plain(source.read_bytes())) == plain.read_bytes()


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_survive_and_encode_back_exactly(data: bytes) -> None:
    store = BinaryStore()
    branches = store.load_plain(data)
    value = branches[0].get("data")
    assert isinstance(value, str)
    # This is how the engine turns the str into the plaintext it encrypts.
    assert value.encode("utf-8", "surrogateescape") == data
    assert store.dump_plain(branches) == data


@settings(max_examples=10, deadline=None)
@given(st.binary(max_size=48))
def test_real_sops_decrypts_to_the_same_bytes(data: bytes) -> None:
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "f.bin").write_bytes(data)
        enc = run_sops(["encrypt", "--age", AGE_RECIPIENT, "f.bin"], env=env, cwd=tmp)
        assert enc.returncode == 0
        branches, meta = BinaryStore().load_encrypted(enc.stdout)
        assert meta is not None and branches[0].keys_() == ["data"]
        assert BinaryStore().dump_encrypted(branches, meta) == enc.stdout
        (Path(tmp) / "g.bin").write_bytes(enc.stdout)
        dec = run_sops(["decrypt", "g.bin"], env=env, cwd=tmp)
        assert dec.returncode == 0 and dec.stdout == data


def test_indent_applies_to_the_wrapper() -> None:
    meta = {"age": [{"recipient": "r", "enc": "e"}], "lastmodified": "t", "mac": "m", "version": "3.11.0"}
    out = BinaryStore(2).dump_encrypted([TreeMap([("data", "ENC[x]")])], meta)
    assert out.startswith(b'{\n  "data": "ENC[x]",\n  "sops": {\n    "age": [\n')
    assert json.loads(out)["sops"] == meta


@pytest.mark.parametrize(
    "branches",
    [[TreeMap([("other", "x")])], [TreeMap([("data", 1.0)])], [TreeMap([("data", "a")]), TreeMap([("data", "b")])]],
)
def test_dump_plain_needs_one_string_data_value(branches: list[TreeMap]) -> None:
    with pytest.raises(SopsError) as err:
        BinaryStore().dump_plain(branches)
    assert err.value.code == 4
    assert err.value.message.startswith("error emitting binary store: ")
    assert err.value.detail and "--output-type" in err.value.detail


def test_dump_value() -> None:
    store = BinaryStore()
    assert store.dump_value("a\udcff") == b"a\xff"
    assert store.dump_value(TreeMap([("data", "x")])) == b"x"
    with pytest.raises(SopsError) as err:
        store.dump_value(1.0)
    assert err.value.code == 4
