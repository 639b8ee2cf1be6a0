"""PGP keys through the real gpg binary (sops' `pgp/keysource.go`)."""

# The fixtures imported from .fixtures are used as test parameters (pytest's injection).
# ruff: noqa: F811

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sopsflow.keys.base import KeyFailure
from sopsflow.keys.pgp import PgpKey, held_secret_fingerprints, parse_pgp_fingerprints

from ..vectors import GENERATED, PGP_FP, UPSTREAM, manifest, needs_external
from .fixtures import (  # noqa: F401 - fixtures
    HELD_PGP_FPS,
    SPLICE_PLAIN,
    SPLICE_VECTOR,
    UPSTREAM_PGP_FP,
    UPSTREAM_SECOND_FP,
    clean_env,
    empty_gnupg_home,
    gnupg_home,
    gpg_env,
    respliced,
    run_sops,
    vector_data_key,
)


def _pgp_entries(path: Path) -> list[dict[str, Any]]:
    meta = next(iter(yaml.safe_load_all(path.read_text())))["sops"]
    if "pgp" in meta:
        return [dict(e) for e in meta["pgp"]]
    return [dict(e) for g in meta["key_groups"] for e in g.get("pgp") or []]


def _key(entry: dict[str, Any]) -> PgpKey:
    return PgpKey(entry["fp"], entry["enc"], entry["created_at"])


@pytest.mark.parametrize(
    "vector",
    [v for v in manifest()["vectors"] if v["format"] == "yaml" and not v["id"].startswith("kms")],
    ids=lambda v: v["id"],
)
def test_unwrap_vector_data_keys(vector: dict[str, Any], gpg_env: Path) -> None:
    (entry,) = _pgp_entries(GENERATED / vector["encrypted"])
    if vector["shamir_shares_hex"]:
        expected = bytes.fromhex(vector["shamir_shares_hex"][1])
    else:
        expected = bytes.fromhex(vector["data_key_hex"])
    assert _key(entry).decrypt() == expected


@needs_external
@pytest.mark.parametrize("name", ["example.yaml", "functional-tests/res/multiple_keys.yaml"])
def test_upstream_files_with_two_pgp_keys_agree(name: str, gpg_env: Path) -> None:
    entries = _pgp_entries(UPSTREAM / name)
    assert [e["fp"] for e in entries] == [UPSTREAM_PGP_FP, UPSTREAM_SECOND_FP]
    keys = [_key(e).decrypt() for e in entries]
    assert len(keys[0]) == 32 and keys[0] == keys[1]


def test_wrap_format_and_round_trip(gpg_env: Path) -> None:
    key = PgpKey(PGP_FP)
    payload = os.urandom(33)
    key.encrypt(payload)
    assert key.enc.startswith("-----BEGIN PGP MESSAGE-----\n\n")
    assert key.enc.endswith("-----END PGP MESSAGE-----")  # trimmed: no trailing newline
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", key.created_at)
    assert list(key.to_dict()) == ["created_at", "enc", "fp"]
    assert key.identity() == PGP_FP
    # The payload is the raw bytes, in a literal-data packet (gpg is the independent reader).
    packets = subprocess.run(
        ["gpg", "--list-packets"], input=key.enc.encode(), capture_output=True, check=False
    ).stdout.decode()
    assert "raw data: 33 bytes" in packets
    assert key.decrypt() == payload


def test_fingerprint_with_spaces(gpg_env: Path) -> None:
    spaced = " ".join(PGP_FP[i : i + 4] for i in range(0, 40, 4))
    key = PgpKey(spaced)
    assert key.fp == PGP_FP
    key.encrypt(b"x" * 32)
    assert key.decrypt() == b"x" * 32
    assert [k.fp for k in parse_pgp_fingerprints(f"{spaced}, {UPSTREAM_PGP_FP},")] == [PGP_FP, UPSTREAM_PGP_FP]


@needs_external  # the second PGP key is the upstream one
def test_sops_accepts_our_wraps(gpg_env: Path, tmp_path: Path) -> None:
    data_key = vector_data_key(SPLICE_VECTOR)
    keys = [PgpKey(UPSTREAM_PGP_FP), PgpKey(PGP_FP)]
    for key in keys:
        key.encrypt(data_key)
    target = tmp_path / "spliced.enc.yaml"
    target.write_text(respliced(SPLICE_VECTOR, {"pgp": [k.to_dict() for k in keys]}))
    done = run_sops(["decrypt", str(target)], clean_env(tmp_path, GNUPGHOME=str(gpg_env)))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == SPLICE_PLAIN.read_bytes()


def test_held_secret_fingerprints(gpg_env: Path) -> None:
    held = held_secret_fingerprints()
    assert sorted(held) == sorted(HELD_PGP_FPS)
    with_subkeys = held_secret_fingerprints(include_subkeys=True)
    assert set(held) < set(with_subkeys) and len(with_subkeys) == 2 * len(HELD_PGP_FPS)  # one subkey each


def test_unknown_fingerprint_fails_clearly(gpg_env: Path) -> None:
    key = PgpKey("0" * 40)
    with pytest.raises(KeyFailure) as failed:
        key.encrypt(b"k" * 32)
    message = str(failed.value)
    assert message.startswith("could not encrypt data key with PGP key: GnuPG binary error: ")
    assert "No public key" in message and "import it with gpg --import" in message
    assert key.enc == "" and key.created_at == ""


def test_missing_secret_key_fails_clearly(empty_gnupg_home: Path) -> None:
    entry = _pgp_entries(SPLICE_VECTOR)[0]
    with pytest.raises(KeyFailure) as failed:
        _key(entry).decrypt()
    message = str(failed.value)
    assert "failed to decrypt sops data key with pgp" in message
    assert "No secret key" in message and str(empty_gnupg_home) in message


def test_missing_gpg_binary(gpg_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_GPG_EXEC", "/nonexistent/gpg-for-sopsflow")
    with pytest.raises(KeyFailure, match="executable file not found .*SOPS_GPG_EXEC"):
        PgpKey(PGP_FP).encrypt(b"k" * 32)
    entry = _pgp_entries(SPLICE_VECTOR)[0]
    with pytest.raises(KeyFailure, match="cannot run '/nonexistent/gpg-for-sopsflow'"):
        _key(entry).decrypt()


def test_sops_gpg_exec_is_used(gpg_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "calls"
    wrapper = tmp_path / "gpg-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec gpg "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("SOPS_GPG_EXEC", str(wrapper))
    key = PgpKey(PGP_FP)
    key.encrypt(b"k" * 32)
    assert key.decrypt() == b"k" * 32
    calls = log.read_text().splitlines()
    # sops' exact encryption arguments (plus --batch), and a plain "gpg -d" for the agent's sake.
    assert calls == [
        f"--batch --no-default-recipient --yes --encrypt -a -r {PGP_FP} --trusted-key {PGP_FP[-16:]} --no-encrypt-to",
        "-d",
    ]


@pytest.fixture()
def expired_key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    home = tmp_path / "gnupg-expired"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    common = [
        "gpg",
        "--batch",
        "--faked-system-time",
        "20200101T000000!",
        "--passphrase",
        "",
        "--pinentry-mode",
        "loopback",
    ]
    subprocess.run(
        [*common, "--quick-gen-key", "Expired <expired@example.invalid>", "ed25519", "sign,cert", "1d"],
        env=env,
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(["gpg", "--with-colons", "--list-keys"], env=env, capture_output=True, check=True)
    fp = next(line.split(":")[9] for line in listing.stdout.decode().splitlines() if line.startswith("fpr"))
    subprocess.run([*common, "--quick-add-key", fp, "cv25519", "encr", "1d"], env=env, check=True, capture_output=True)
    monkeypatch.setenv("GNUPGHOME", str(home))
    yield fp
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)


def test_expired_key_fails_clearly(expired_key_home: str) -> None:
    with pytest.raises(KeyFailure) as failed:
        PgpKey(expired_key_home).encrypt(b"k" * 32)
    message = str(failed.value)
    assert "Unusable public key" in message and "expired" in message
