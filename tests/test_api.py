"""The Python API: decrypt_file, decrypt, encrypt, encrypt_file."""

from __future__ import annotations

from pathlib import Path

import pytest

import sopsflow
from sopsflow import errors

from .conftest import base_env, run_sops
from .vectors import AGE_KEY_FILE, AGE_RECIPIENT, GENERATED


@pytest.fixture(autouse=True)
def _age_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))


def test_decrypt_file_returns_plain_python() -> None:
    data = sopsflow.decrypt_file(GENERATED / "yaml" / "edge-types.enc.yaml")
    assert data["count"] == 17
    assert data["nesting"] == {"middle": {"bottom": "value"}}
    assert data["day"] == "2023-05-06T00:00:00Z"
    assert data["matrix"][0] == [7, 8]


def test_decrypt_bytes_by_format() -> None:
    raw = (GENERATED / "json" / "edge.enc.json").read_bytes()
    expected = sopsflow.decrypt_file(GENERATED / "json" / "edge.enc.json")
    assert sopsflow.decrypt(raw, "json") == expected
    assert "sops" not in expected


def test_decrypt_error_carries_sops_exit_code() -> None:
    raw = (GENERATED / "json" / "edge.enc.json").read_bytes().replace(b'"mac": "ENC', b'"mac": "XNC')
    with pytest.raises(sopsflow.SopsError) as err:
        sopsflow.decrypt(raw, "json")
    assert err.value.code == errors.MAC_MISMATCH


def test_encrypt_file_is_read_by_real_sops(tmp_path: Path) -> None:
    plain = tmp_path / "secret.yaml"
    plain.write_text("user: admin\npassword: hunter2\n")
    out = sopsflow.encrypt_file(plain, output=tmp_path / "secret.enc.yaml", age=[AGE_RECIPIENT])
    text = out.read_text()
    assert "hunter2" not in text and "ENC[AES256_GCM" in text
    done = run_sops(["decrypt", str(out)], env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
    assert done.returncode == 0, done.stderr
    assert done.stdout == plain.read_bytes()
    assert sopsflow.decrypt_file(out) == {"user": "admin", "password": "hunter2"}


def test_encrypt_uses_creation_rules(tmp_path: Path) -> None:
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: \\.env$\n    age: {AGE_RECIPIENT}\n"
    )
    result = sopsflow.encrypt(b"TOKEN=abc\n", "dotenv", filename=str(tmp_path / "app.env"),
                              config=tmp_path / ".sops.yaml")
    assert b"sops_age__list_0__map_recipient=" + AGE_RECIPIENT.encode() in result
    assert sopsflow.decrypt(result, "dotenv") == {"TOKEN": "abc"}


def test_encrypting_an_encrypted_file_is_refused(tmp_path: Path) -> None:
    raw = (GENERATED / "yaml" / "multidoc.enc.yaml").read_bytes()
    with pytest.raises(sopsflow.SopsError) as err:
        sopsflow.encrypt(raw, "yaml", age=[AGE_RECIPIENT])
    assert err.value.code == errors.FILE_ALREADY_ENCRYPTED
