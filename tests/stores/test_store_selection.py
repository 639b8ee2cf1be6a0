"""Store choice by file name and type name, checked against what sops 3.11.0
picks for the same names."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from sopsflow.stores import store_by_name, store_for_path
from sopsflow.stores.binary_store import BinaryStore
from sopsflow.stores.json_store import JsonStore

from ..conftest import base_env, run_sops
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT

CONTENT = {
    "yaml": b"k: v\n",
    "json": b'{"k": "v"}\n',
    "dotenv": b"k=v\n",
    "ini": b"[s]\nk=v\n",
    "binary": b"k: v\n",
}
NAMES = {
    "a.yaml": "yaml",
    "dir.json/a.yml": "yaml",
    "a.json": "json",
    "a.env": "dotenv",
    "a.ini": "ini",
    "a.YAML": "binary",
    "a.Json": "binary",
    "x.env.local": "binary",
    "a.txt": "binary",
    "noext": "binary",
    "a.yaml.bak": "binary",
}


def _kind_of_sops_output(out: bytes) -> str:
    """Which store wrote an encrypted file."""
    if b"\nsops:\n" in out:
        return "yaml"
    if b"[sops]\n" in out:
        return "ini"
    if b"\nsops_version=" in out:
        return "dotenv"
    doc = json.loads(out)
    return "binary" if set(doc) == {"data", "sops"} else "json"


def _sops_encrypt(name: str, data: bytes, *flags: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
        result = run_sops(["encrypt", "--age", AGE_RECIPIENT, *flags, name], env=env, cwd=tmp)
        assert result.returncode == 0, result.stderr
        return result.stdout


def test_suffixes_match_sops() -> None:
    for name, expected in NAMES.items():
        assert store_for_path(name).name == expected, name
        assert _kind_of_sops_output(_sops_encrypt(name, CONTENT[expected])) == expected, name


def test_known_type_override_wins_and_unknown_is_ignored() -> None:
    assert store_for_path("a.json", "dotenv").name == "dotenv"
    assert store_for_path("a.json", "bogus").name == "json"
    assert store_for_path("a.txt", None).name == "binary"
    out = _sops_encrypt("a.json", b"k=v\n", "--input-type", "dotenv", "--output-type", "dotenv")
    assert _kind_of_sops_output(out) == "dotenv"
    out = _sops_encrypt("a.json", CONTENT["json"], "--input-type", "bogus", "--output-type", "bogus")
    assert _kind_of_sops_output(out) == "json"


@pytest.mark.parametrize("name", ["yaml", "json", "dotenv", "ini", "binary"])
def test_store_by_name(name: str) -> None:
    assert store_by_name(name).name == name


def test_unknown_name_gives_binary() -> None:
    assert store_by_name("toml").name == "binary"


def test_indent_reaches_json_and_binary() -> None:
    json_store = store_by_name("json", indent=2)
    assert isinstance(json_store, JsonStore) and json_store.indent == 2
    default = store_by_name("json")
    assert isinstance(default, JsonStore) and default.indent == -1
    binary = store_for_path("blob", indent=0)
    assert isinstance(binary, BinaryStore) and binary.indent == 0
    assert store_for_path("a.yml", indent=2).name == "yaml"
