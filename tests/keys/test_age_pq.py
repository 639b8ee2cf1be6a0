"""Post-quantum age (``age1pq1...``, the mlkem768x25519 stanza), checked
against the pinned sops binary in both directions and against a file written
by sops 3.12.1 for Flux."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml

from sopsflow.keys import agefmt
from sopsflow.keys.age import AgeKey, armor, clear_identity_cache
from sopsflow.keys.agepq import HybridIdentity, HybridRecipient, PqKeyError
from sopsflow.keys.base import KeyFailure
from sopsflow.keys.bech32 import Bech32Error, bech32_decode, bech32_encode

from ..conftest import base_env, run_sops, run_sopsflow
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT, FLUX_AGE_PQ, PGP_FP, needs_external
from .fixtures import gnupg_home  # noqa: F401 - pytest fixture

FLUX = FLUX_AGE_PQ
needs_flux = needs_external


@pytest.fixture(scope="module")
def pq(tmp_path_factory: pytest.TempPathFactory) -> tuple[HybridIdentity, Path]:
    identity = HybridIdentity.generate()
    path = tmp_path_factory.mktemp("pq") / "keys.txt"
    path.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
    return identity, path


def _enc_bytes(armored: str) -> bytes:
    return base64.b64decode("".join(line for line in armored.splitlines() if not line.startswith("-----")))


# --- the primitive -------------------------------------------------------------------


def test_bech32_round_trip_without_length_limit() -> None:
    data = bytes(range(256)) * 5
    text = bech32_encode("age1pq", data)
    assert len(text) > 90 and bech32_decode(text) == ("age1pq", data)
    upper = bech32_encode("AGE-SECRET-KEY-PQ-", data[:32])
    assert upper.isupper() and bech32_decode(upper) == ("AGE-SECRET-KEY-PQ-", data[:32])
    flipped = text[:-1] + ("q" if text[-1] != "q" else "p")
    with pytest.raises(Bech32Error, match="checksum"):
        bech32_decode(flipped)


@needs_flux
def test_identity_gives_the_published_public_key() -> None:
    text = (FLUX / "age-pq.agekey").read_text()
    secret = next(line for line in text.splitlines() if line.startswith("AGE-SECRET-KEY-PQ-1"))
    public = next(line for line in text.splitlines() if "public key:" in line).split(": ", 1)[1]
    assert str(HybridIdentity.from_str(secret).to_public()) == public
    assert str(HybridRecipient.from_str(public)) == public


def test_wrap_and_unwrap(pq: tuple[HybridIdentity, Path]) -> None:
    identity, _ = pq
    data = agefmt.encrypt(b"k" * 32, [identity.to_public().wrap])
    assert agefmt.stanza_types(data) == ["mlkem768x25519"]
    assert agefmt.decrypt(data, [identity.unwrap]) == b"k" * 32
    with pytest.raises(agefmt.IncorrectIdentity):
        agefmt.decrypt(data, [HybridIdentity.generate().unwrap])


def test_malformed_stanzas_and_tampering_are_refused(pq: tuple[HybridIdentity, Path]) -> None:
    identity, _ = pq
    data = agefmt.encrypt(b"k" * 32, [identity.to_public().wrap])
    stanzas, _covered, _mac, _rest = agefmt.parse_header(data)
    short = agefmt.Stanza("mlkem768x25519", stanzas[0].args, stanzas[0].body[:31])
    with pytest.raises(agefmt.AgeFormatError):
        identity.unwrap(short)
    extra = agefmt.Stanza("mlkem768x25519", [*stanzas[0].args, "x"], stanzas[0].body)
    with pytest.raises(agefmt.AgeFormatError):
        identity.unwrap(extra)
    assert identity.unwrap(agefmt.Stanza("X25519", ["abc"], b"")) is None
    header_end = data.index(b"\n---") + 1
    tampered = data[:header_end - 2] + bytes([data[header_end - 2] ^ 1]) + data[header_end - 1:]
    with pytest.raises((agefmt.AgeFormatError, agefmt.IncorrectIdentity)):
        agefmt.decrypt(tampered, [identity.unwrap])
    flipped = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(agefmt.AgeFormatError, match="payload"):
        agefmt.decrypt(flipped, [identity.unwrap])


def test_secret_key_errors_never_echo_the_key() -> None:
    secret = str(HybridIdentity.generate())
    broken = secret[:-1] + ("Q" if secret[-1] != "Q" else "P")
    with pytest.raises(PqKeyError) as failed:
        HybridIdentity.from_str(broken)
    assert broken not in str(failed.value) and broken[20:40] not in str(failed.value)


def test_age_key_wraps_for_pq_and_reads_identities_files(pq: tuple[HybridIdentity, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    identity, path = pq
    key = AgeKey(str(identity.to_public()))
    key.encrypt(b"d" * 32)
    assert key.enc == armor(_enc_bytes(key.enc))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(path))
    clear_identity_cache()
    assert key.decrypt() == b"d" * 32
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))
    clear_identity_cache()
    with pytest.raises(KeyFailure, match="did not match"):
        key.decrypt()


# --- with the pinned binary ----------------------------------------------------------


@needs_flux
def test_flux_vector_written_by_sops_3_12_decrypts(tmp_path: Path) -> None:
    env = base_env(SOPS_AGE_KEY_FILE=str(FLUX / "age-pq.agekey"))
    ours = run_sopsflow(["decrypt", str(FLUX / "age-pq.enc.yaml")], env=env)
    assert ours.returncode == 0, ours.stderr
    expected = (FLUX / "age-pq.plain.yaml").read_bytes()
    assert yaml.safe_load(ours.stdout) == yaml.safe_load(expected)
    assert yaml.safe_load(ours.stdout)["stringData"]["key"] == "value"
    assert ours.stdout == expected


def _mixed_config(root: Path, pq_recipient: str) -> None:
    (root / ".sops.yaml").write_text(
        "creation_rules:\n"
        "  - shamir_threshold: 2\n"
        "    key_groups:\n"
        f"      - age: [{pq_recipient}, {AGE_RECIPIENT}]\n"
        f"      - pgp: [{PGP_FP}]\n"
        f"        age: [{pq_recipient}]\n"
    )


@pytest.mark.parametrize("writer", ["sopsflow", "sops"])
def test_mixed_groups_round_trip_with_the_binary(writer: str, tmp_path: Path, pq: tuple[HybridIdentity, Path],
                                                 gnupg_home: Path) -> None:  # noqa: F811
    identity, pq_file = pq
    _mixed_config(tmp_path, str(identity.to_public()))
    (tmp_path / "s.yaml").write_text("a: secret\nb: [1, 2]\n")
    env = base_env(GNUPGHOME=str(gnupg_home), SOPS_AGE_KEY_FILE=str(pq_file))
    write = run_sopsflow if writer == "sopsflow" else run_sops
    done = write(["encrypt", "-i", "s.yaml"], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "s.yaml").read_text()
    assert text.count("recipient: age1pq1") == 2
    # the PQ identity alone opens both groups; X25519 + PGP open them too
    only_pq = base_env(GNUPGHOME=str(tmp_path / "no-gpg"), SOPS_AGE_KEY_FILE=str(pq_file))
    classic = base_env(GNUPGHOME=str(gnupg_home), SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    for env_read in (only_pq, classic):
        for read in (run_sopsflow, run_sops):
            out = read(["decrypt", "s.yaml"], env=env_read, cwd=tmp_path)
            assert out.returncode == 0, (read, out.stderr)
            assert yaml.safe_load(out.stdout) == {"a": "secret", "b": [1, 2]}


def test_updatekeys_adds_and_removes_a_pq_recipient(tmp_path: Path, pq: tuple[HybridIdentity, Path]) -> None:
    identity, pq_file = pq
    pq_recipient = str(identity.to_public())
    path = tmp_path / "s.yaml"
    path.write_text("a: secret\n")
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    assert run_sops(["encrypt", "-i", "--age", AGE_RECIPIENT, str(path)], env=env).returncode == 0
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    config = tmp_path / ".sops.yaml"
    config.write_text(f"creation_rules:\n  - age: {AGE_RECIPIENT},{pq_recipient}\n")
    done = run_sopsflow(["updatekeys", "-y", "s.yaml"], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"+{pq_recipient}" in done.stdout.decode()
    pq_env = base_env(SOPS_AGE_KEY_FILE=str(pq_file))
    theirs = run_sops(["decrypt", "s.yaml"], env=pq_env, cwd=tmp_path)
    assert theirs.returncode == 0 and theirs.stdout == b"a: secret\n", theirs.stderr
    # the binary agrees nothing is left to do
    again = run_sops(["updatekeys", "-y", "s.yaml"], env=env, cwd=tmp_path)
    assert again.returncode == 0 and b"already up to date" in again.stderr
    config.write_text(f"creation_rules:\n  - age: {AGE_RECIPIENT}\n")
    done = run_sopsflow(["updatekeys", "-y", "s.yaml"], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "data key rotated" in done.stdout.decode() + done.stderr.decode()
    assert "age1pq1" not in path.read_text()
    assert run_sops(["decrypt", "s.yaml"], env=pq_env, cwd=tmp_path).returncode == 128
    assert run_sops(["decrypt", "s.yaml"], env=env, cwd=tmp_path).stdout == b"a: secret\n"


def test_malformed_pq_recipient_in_a_rule(tmp_path: Path, pq: tuple[HybridIdentity, Path]) -> None:
    good = str(pq[0].to_public())
    bad = good[:-1] + ("q" if good[-1] != "q" else "p")
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {bad}\n")
    (tmp_path / "s.yaml").write_text("a: 1\n")
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    ours = run_sopsflow(["encrypt", "s.yaml"], env=env, cwd=tmp_path)
    theirs = run_sops(["encrypt", "s.yaml"], env=env, cwd=tmp_path)
    assert theirs.returncode != 0 and ours.returncode != 0
    assert ours.stdout == b"" and b"malformed recipient" in ours.stderr
    assert len(ours.stderr.decode().strip().splitlines()) == 1


def test_flux_key_secret_accepts_a_pq_identity(pq: tuple[HybridIdentity, Path]) -> None:
    from sopsflow.gitops.flux import age_recipients

    identity, path = pq
    assert age_recipients(path.read_text()) == [str(identity.to_public())]
