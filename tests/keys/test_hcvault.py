"""Vault transit keys against a real OpenBao dev server, cross-checked with sops."""

# The fixtures imported from .fixtures are used as test parameters (pytest's injection).
# ruff: noqa: F811

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
import yaml

from sopsflow.errors import SopsError
from sopsflow.keys.base import KeyFailure
from sopsflow.keys.hcvault import VaultKey, parse_vault_uris
from sopsflow.keys.registry import key_from_entry

from .fixtures import (  # noqa: F401 - fixtures
    SPLICE_PLAIN,
    SPLICE_VECTOR,
    Bao,
    bao_server,
    clean_env,
    decrypt_value,
    free_port,
    respliced,
    run_sops,
    vault_env,
    vector_data_key,
)


def test_from_uri() -> None:
    key = VaultKey.from_uri("https://vault.example.com:8200/v1/transit/keys/keyName")
    assert (key.vault_address, key.engine_path, key.key_name) == (
        "https://vault.example.com:8200",
        "transit",
        "keyName",
    )
    assert key.identity() == "https://vault.example.com:8200/v1/transit/keys/keyName"
    nested = VaultKey.from_uri("http://127.0.0.1:8200/v1/team/a/transit/keys/k1")
    assert (nested.engine_path, nested.key_name) == ("team/a/transit", "k1")
    assert [k.key_name for k in parse_vault_uris("http://h:1/v1/t/keys/a,http://h:1/v1/t/keys/b")] == ["a", "b"]


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("vault.example.com/v1/transit/keys/k", "missing scheme in Vault URL"),
        ("https://h:8200/prefix/v1/transit/keys/k", "prefixed URL is not supported"),
        ("https://h:8200/transit/k", "vault path does not seem to be formatted correctly"),
    ],
)
def test_from_uri_rejects(uri: str, message: str) -> None:
    with pytest.raises(SopsError, match=message) as failed:
        VaultKey.from_uri(uri)
    assert failed.value.code == 1


def test_entry_layout() -> None:
    key = VaultKey("http://h:1", "transit", "k", enc="vault:v1:x", created_at="2026-01-01T00:00:00Z")
    assert list(key.to_dict()) == ["vault_address", "engine_path", "key_name", "created_at", "enc"]
    assert key_from_entry("hc_vault", key.to_dict()).to_dict() == key.to_dict()


def test_round_trip(vault_env: Bao) -> None:
    key = VaultKey.from_uri(f"{vault_env.address}/v1/transit/keys/sops")
    key.encrypt(b"v" * 33)
    assert key.enc.startswith("vault:v1:")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", key.created_at)
    # Independent check: the server decrypts it to base64 of the raw bytes.
    answer = vault_env.client().secrets.transit.decrypt_data("sops", key.enc, mount_point="transit")
    assert answer["data"]["plaintext"] == base64.b64encode(b"v" * 33).decode()
    assert key.decrypt() == b"v" * 33
    nested = VaultKey.from_uri(f"{vault_env.address}/v1/team/transit/keys/nested")
    nested.encrypt(b"n" * 32)
    assert nested.decrypt() == b"n" * 32


def test_token_file(vault_env: Bao, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_TOKEN")
    key = VaultKey.from_uri(f"{vault_env.address}/v1/transit/keys/sops")
    with pytest.raises(
        KeyFailure, match="failed to encrypt sops data key to Vault transit backend 'transit/encrypt/sops'"
    ):
        key.encrypt(b"t" * 32)
    (Path(os.environ["HOME"]) / ".vault-token").write_text(vault_env.token + "\n")
    key.encrypt(b"t" * 32)
    assert key.decrypt() == b"t" * 32


def test_failures_are_reported(vault_env: Bao, monkeypatch: pytest.MonkeyPatch) -> None:
    key = VaultKey.from_uri(f"{vault_env.address}/v1/transit/keys/sops")
    key.encrypt(b"f" * 32)
    unknown = VaultKey(vault_env.address, "transit", "no-such-key", enc=key.enc)
    with pytest.raises(KeyFailure) as failed:
        unknown.decrypt()
    assert "failed to decrypt sops data key from Vault transit backend 'transit/decrypt/no-such-key'" in str(
        failed.value
    )
    stopped = VaultKey(f"http://127.0.0.1:{free_port()}", "transit", "sops", enc=key.enc)
    with pytest.raises(KeyFailure, match="Vault transit backend"):
        stopped.decrypt()
    monkeypatch.setenv("VAULT_TOKEN", "wrong-token")
    with pytest.raises(KeyFailure) as denied:
        key.decrypt()
    assert "permission denied" in str(denied.value)
    assert vault_env.token not in str(denied.value) and "wrong-token" not in str(denied.value)


def test_sops_decrypts_our_vault_wraps(vault_env: Bao, tmp_path: Path) -> None:
    key = VaultKey.from_uri(f"{vault_env.address}/v1/transit/keys/sops")
    key.encrypt(vector_data_key(SPLICE_VECTOR))
    target = tmp_path / "spliced.enc.yaml"
    target.write_text(respliced(SPLICE_VECTOR, {"hc_vault": [key.to_dict()]}))
    done = run_sops(["decrypt", str(target)], clean_env(tmp_path, VAULT_TOKEN=vault_env.token))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == SPLICE_PLAIN.read_bytes()


def test_we_decrypt_sops_vault_wraps(vault_env: Bao, tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text("secret: hello\n")
    uri = f"{vault_env.address}/v1/team/transit/keys/nested"
    done = run_sops(
        ["encrypt", "--hc-vault-transit", uri, str(plain)], clean_env(tmp_path, VAULT_TOKEN=vault_env.token)
    )
    assert done.returncode == 0, done.stderr.decode()
    loaded = yaml.safe_load(done.stdout)
    (entry,) = loaded["sops"]["hc_vault"]
    key = key_from_entry("hc_vault", entry)
    assert list(key.to_dict().items()) == list(entry.items())
    assert key.identity() == uri
    assert decrypt_value(loaded["secret"], key.decrypt(), "secret:") == b"hello"
