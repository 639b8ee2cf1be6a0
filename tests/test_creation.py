"""The keys and options of a new file (``sopsflow.creation``), the one place the
CLI and the Python API resolve them: explicit values first, then the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from sopsflow.config.decoder import load_config
from sopsflow.creation import CreationOptions, KeyOptions, creation_settings, load_unencrypted
from sopsflow.errors import SopsError
from sopsflow.keys.base import MasterKey
from sopsflow.operations import decrypt_document
from sopsflow.stores import store_by_name

from .vectors import AGE_KEY_FILE, AGE_RECIPIENT, PGP_FP

#: A second, valid age recipient (no identity needed: nothing here decrypts for it).
OTHER_AGE = "age14spclhp3c4m23p3qsz5384j9eczk584fklvsp08c3ra2nl38js2q5g6nnz"


def _config(tmp_path: Path, text: str) -> Path:
    (tmp_path / ".sops.yaml").write_text(text)
    return tmp_path / ".sops.yaml"


def _identities(groups: list[list[MasterKey]]) -> list[list[str]]:
    return [[key.identity() for key in group] for group in groups]


@pytest.fixture(autouse=True)
def _no_key_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SOPS_KMS_ARN", "SOPS_GCP_KMS_IDS", "SOPS_HUAWEICLOUD_KMS_IDS", "SOPS_AZURE_KEYVAULT_URLS",
                 "SOPS_PGP_FP", "SOPS_VAULT_URIS", "SOPS_AGE_RECIPIENTS"):
        monkeypatch.delenv(name, raising=False)


def test_the_rule_gives_keys_and_options_when_nothing_is_explicit(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, (
        "creation_rules:\n"
        "  - path_regex: other\\.yaml$\n"
        f"    age: {OTHER_AGE}\n"
        "  - path_regex: \\.yaml$\n"
        f"    age: {AGE_RECIPIENT}\n"
        "    encrypted_regex: ^data$\n"
        "    mac_only_encrypted: true\n"
        "    shamir_threshold: 1\n"
    )))
    settings = creation_settings(str(tmp_path / "a.yaml"), config, CreationOptions())
    assert _identities(settings.key_groups) == [[AGE_RECIPIENT]]
    assert settings.selection == {"encrypted_regex": "^data$"}
    assert settings.mac_only_encrypted is True and settings.shamir_threshold == 1


def test_explicit_values_replace_the_rules(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, (
        f"creation_rules:\n  - age: {AGE_RECIPIENT}\n    unencrypted_suffix: _plain\n    mac_only_encrypted: true\n"
    )))
    options = CreationOptions(keys=KeyOptions(age=OTHER_AGE, pgp=PGP_FP), mac_only_encrypted=False,
                              shamir_threshold=0)
    settings = creation_settings(str(tmp_path / "a.yaml"), config, options)
    # One group, in sops' order (pgp before age); the rule's key is gone.
    assert _identities(settings.key_groups) == [[PGP_FP, OTHER_AGE]]
    assert settings.selection == {"unencrypted_suffix": "_plain"}
    assert settings.mac_only_encrypted is False
    # An explicit selection option next to the rule's is two: refused (exit 8).
    with pytest.raises(SopsError) as two:
        creation_settings(str(tmp_path / "a.yaml"), config, CreationOptions(selection={"encrypted_suffix": "_enc"}))
    assert two.value.code == 8
    assert two.value.message == "Error: cannot use more than one of encrypted_suffix, unencrypted_suffix"


def test_an_empty_key_option_falls_back_to_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_RECIPIENTS", OTHER_AGE)
    settings = creation_settings("a.yaml", None, CreationOptions())
    assert _identities(settings.key_groups) == [[OTHER_AGE]]
    settings = creation_settings("a.yaml", None, CreationOptions(keys=KeyOptions(age=AGE_RECIPIENT)))
    assert _identities(settings.key_groups) == [[AGE_RECIPIENT]]


def test_no_keys_anywhere_is_sops_error(tmp_path: Path) -> None:
    with pytest.raises(SopsError) as none:
        creation_settings("a.yaml", None, CreationOptions())
    assert none.value.code == 1 and none.value.message.startswith("config file not found, or has no creation rules")
    config = load_config(_config(tmp_path, f"creation_rules:\n  - path_regex: \\.json$\n    age: {AGE_RECIPIENT}\n"))
    with pytest.raises(SopsError) as unmatched:
        creation_settings(str(tmp_path / "a.yaml"), config, CreationOptions())
    assert unmatched.value.message == "error loading config: no matching creation rules found"


def test_the_settings_encrypt_a_file_that_decrypts_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))
    store = store_by_name("yaml")
    settings = creation_settings("a.yaml", None, CreationOptions(keys=KeyOptions(age=AGE_RECIPIENT),
                                                                 selection={"encrypted_regex": "^pw$"}))
    data = settings.encrypt(store, load_unencrypted(store, b"pw: s3cret\nuser: me\n", "a.yaml"))
    assert b"s3cret" not in data and b"user: me" in data
    assert store.dump_plain(decrypt_document(store, data).branches) == b"pw: s3cret\nuser: me\n"
    with pytest.raises(SopsError) as again:
        load_unencrypted(store, data, "a.yaml")
    assert again.value.code == 203 and again.value.message == "File a.yaml already encrypted"
