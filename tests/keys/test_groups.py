"""Key groups: data-key recovery (order, Shamir, failure report) and wrapping,
checked against the sops vectors and the real sops binary."""

# The fixtures imported from .fixtures are used as test parameters (pytest's injection).
# ruff: noqa: F811

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml

from sopsflow import shamir
from sopsflow.errors import SopsError
from sopsflow.keys.age import AgeKey
from sopsflow.keys.base import KeyFailure
from sopsflow.keys.groups import (
    FAILED_MESSAGE,
    decrypt_group,
    get_data_key,
    go_wordwrap,
    parse_decryption_order,
    wrap_data_key,
)
from sopsflow.keys.hcvault import VaultKey
from sopsflow.keys.kms import KmsKey
from sopsflow.keys.opaque import OpaqueKey
from sopsflow.keys.pgp import PgpKey
from sopsflow.keys.registry import key_from_entry, normalize_created_at

from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT, GENERATED, PGP_FP, manifest
from .fixtures import (  # noqa: F401 - fixtures
    HELD_PGP_FPS,
    SPLICE_PLAIN,
    SPLICE_VECTOR,
    Meta,
    Moto,
    clean_env,
    empty_gnupg_home,
    gnupg_home,
    gpg_env,
    kms_env,
    load_meta,
    moto_server,
    respliced,
    run_sops,
    sops_path,
    vector_data_key,
)

SHAMIR_VECTOR = GENERATED / "shamir" / "secrets.enc.yaml"
AGE_SECRET = next(line for line in AGE_KEY_FILE.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))


class FakeKey:
    """A master key whose unwrap fails with a fixed reason (for layout tests)."""

    def __init__(self, type_name: str, name: str, reason: str) -> None:
        self.type_name = type_name
        self.enc = ""
        self.name = name
        self.reason = reason

    def encrypt(self, data_key: bytes) -> None:
        raise KeyFailure(self.reason)

    def decrypt(self) -> bytes:
        raise KeyFailure(self.reason)

    def to_dict(self) -> dict[str, Any]:
        return {}

    def identity(self) -> str:
        return self.name


def _vector(vector_id: str) -> dict[str, Any]:
    return next(v for v in manifest()["vectors"] if v["id"] == vector_id)


def _without_note(detail: str) -> str:
    # Our report = sops' report + one extra paragraph about the identities held.
    head, _, note = detail.rpartition("\n\n")
    assert note.startswith("You hold")
    return head


def _flat(detail: str) -> str:
    """The report on one line, with the "- | " / "| " wrap markers removed."""
    words = []
    for line in detail.splitlines():
        text = line.strip()
        for marker in ("- | ", "| "):
            if text.startswith(marker):
                text = text[len(marker) :]
                break
        words.append(text)
    return " ".join(" ".join(words).split())


def _new_identity() -> tuple[str, str]:
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


# --------------------------------------------------------------------------
# recovering data keys of sops' vectors


YAML_VECTORS = [v for v in manifest()["vectors"] if v["format"] == "yaml"]


@pytest.mark.parametrize("vector", YAML_VECTORS, ids=lambda v: v["id"])
def test_vectors_with_age_identity(vector: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))
    meta = load_meta(GENERATED / vector["encrypted"])
    expected = bytes.fromhex(vector["data_key_hex"])
    if vector["shamir_shares_hex"]:
        with pytest.raises(SopsError) as failed:
            get_data_key(meta)
        assert failed.value.code == 128
        return
    assert get_data_key(meta) == expected


def test_shamir_vector_needs_both_groups(gpg_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vector = _vector("shamir-2of2-yaml")
    meta = load_meta(SHAMIR_VECTOR)
    assert meta.shamir_threshold == 2 and [len(g) for g in meta.key_groups] == [1, 1]
    # PGP alone: one share of two.
    with pytest.raises(SopsError) as failed:
        get_data_key(meta)
    assert failed.value.code == 128 and failed.value.message == FAILED_MESSAGE
    detail = failed.value.detail or ""
    assert "Group 0: FAILED" in detail and "Group 1: SUCCESS" in detail
    assert "Shamir threshold of 2, but only 1 part(s)" in _flat(detail)
    assert detail.endswith(
        "\n\nYou hold no age identities.\nYou hold PGP secret keys for: "
        f"{', '.join(HELD_PGP_FPS)}; "
        f"recipients of this file among them: {PGP_FP}."
    )
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))
    assert get_data_key(meta) == bytes.fromhex(vector["data_key_hex"])
    # Each group unwraps exactly the manifest's share (x byte last).
    parts = [decrypt_group(group, ["age", "pgp"]).part for group in meta.key_groups]
    assert [p.hex() if p else None for p in parts] == vector["shamir_shares_hex"]


# --------------------------------------------------------------------------
# the failure report against the real sops


def test_report_matches_sops_for_age_only_file(tmp_path: Path, empty_gnupg_home: Path) -> None:
    secret, public = _new_identity()
    key = AgeKey(public)
    key.encrypt(vector_data_key(SPLICE_VECTOR))
    target = tmp_path / "age-only.enc.yaml"
    target.write_text(respliced(SPLICE_VECTOR, {"age": [key.to_dict()]}))
    meta = load_meta(target)
    wrong_secret, _ = _new_identity()
    for extra in ({}, {"SOPS_AGE_KEY": wrong_secret}):
        env = clean_env(tmp_path / "home", **extra)
        done = run_sops(["decrypt", str(target)], env)
        assert done.returncode == 128
        with pytest.MonkeyPatch.context() as patch:
            for name, value in extra.items():
                patch.setenv(name, value)
            patch.setenv("HOME", str(tmp_path / "home"))
            with pytest.raises(SopsError) as failed:
                get_data_key(meta)
        ours = failed.value.message + "\n" + _without_note(failed.value.detail or "") + "\n"
        assert ours == done.stderr.decode()
        assert wrong_secret not in (failed.value.detail or "")


def test_report_layout_matches_sops_for_groups(tmp_path: Path, empty_gnupg_home: Path) -> None:
    """Shamir (two groups) and one group with two keys: byte-identical layout.
    The PGP reason is sops' own text (its Go OpenPGP part cannot come from us)."""
    home = tmp_path / "home"
    gpg_stderr = _gpg_decrypt_stderr(SHAMIR_VECTOR)  # also creates the keybox, as sops would
    sops_pgp_reason = (
        "could not decrypt data key with PGP key: github.com/ProtonMail/go-crypto/openpgp error: could not load "
        f"secring: open {empty_gnupg_home}/pubring.gpg: no such file or directory; GnuPG binary error: failed to "
        f"decrypt sops data key with pgp: {gpg_stderr}"
    )
    for path in (SHAMIR_VECTOR, GENERATED / "yaml" / "comments.enc.yaml"):
        done = run_sops(["decrypt", str(path)], clean_env(home, GNUPGHOME=str(empty_gnupg_home)))
        assert done.returncode == 128
        meta = load_meta(path)
        groups = [
            [FakeKey("pgp", k.identity(), sops_pgp_reason) if k.type_name == "pgp" else k for k in group]
            for group in meta.key_groups
        ]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HOME", str(home))
            with pytest.raises(SopsError) as failed:
                get_data_key(Meta(groups, meta.shamir_threshold))
        ours = failed.value.message + "\n" + _without_note(failed.value.detail or "") + "\n"
        assert ours == done.stderr.decode(), path.name


def _gpg_decrypt_stderr(path: Path) -> str:
    enc = yaml.safe_load(path.read_text())["sops"]["key_groups"][1]["pgp"][0]["enc"]
    subprocess.run(["gpg", "-d"], input=enc.encode(), capture_output=True, check=False)
    done = subprocess.run(["gpg", "-d"], input=enc.encode(), capture_output=True, check=False)
    return done.stderr.decode().strip()


def test_go_wordwrap() -> None:
    assert go_wordwrap("aaa bbb ccc", 7) == "aaa bbb\nccc"
    assert go_wordwrap("a " + "x" * 10 + " b", 5) == "a\n" + "x" * 10 + "\nb"
    assert go_wordwrap("one\ntwo three", 5) == "one\ntwo\nthree"
    assert go_wordwrap("", 10) == ""


# --------------------------------------------------------------------------
# decryption order


def test_decryption_order(gpg_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))
    meta = load_meta(GENERATED / "yaml" / "comments.enc.yaml")
    (group,) = meta.key_groups
    assert [k.type_name for k in group] == ["pgp", "age"]  # flat layout load order
    expected = bytes.fromhex(_vector("yaml-comments")["data_key_hex"])
    first_used = {}
    for order in (["age", "pgp"], ["pgp", "age"], []):
        result = decrypt_group(group, order)
        assert result.part == expected
        first_used[",".join(order)] = result.attempts[0].identity
    assert first_used == {"age,pgp": AGE_RECIPIENT, "pgp,age": PGP_FP, "": PGP_FP}
    # Unlisted types keep their place, after the listed ones.
    kms = FakeKey("kms", "arn:kms", "no")
    gcp = FakeKey("gcp_kms", "projects/x", "no")
    result = decrypt_group([kms, group[0], gcp, group[1]], ["age"])
    assert result.part == expected and result.attempts[0].identity == AGE_RECIPIENT
    result = decrypt_group([kms, group[0], gcp, group[1]], ["hc_vault"])
    assert [a.identity for a in result.attempts] == ["arn:kms", PGP_FP]
    monkeypatch.setenv("SOPS_DECRYPTION_ORDER", "pgp,age")
    assert get_data_key(meta) == expected


def test_duplicate_decryption_order() -> None:
    assert parse_decryption_order("") == ["age", "pgp"]
    with pytest.raises(SopsError) as failed:
        parse_decryption_order("pgp,age,pgp")
    assert failed.value.code == 112 and failed.value.message == "Duplicate decryption key type: pgp"
    with pytest.raises(SopsError, match="Duplicate"):
        get_data_key(Meta([[FakeKey("age", "a", "x")]]), ["age", "age"])


# --------------------------------------------------------------------------
# wrapping


def test_wrap_single_group(gpg_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret, public = _new_identity()
    monkeypatch.setenv("SOPS_AGE_KEY", secret)
    group: list[Any] = [AgeKey(public), PgpKey(PGP_FP)]
    data_key = bytes(range(32))
    assert wrap_data_key(data_key, [group], 0) == 0
    assert wrap_data_key(data_key, [group], 3) == 3  # kept as given, unused with one group
    assert [k.decrypt() for k in group] == [data_key, data_key]


def test_wrap_shamir_and_sops_decrypts(gpg_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_a, public_a = _new_identity()
    secret_b, public_b = _new_identity()
    data_key = vector_data_key(SPLICE_VECTOR)
    groups: list[list[Any]] = [[AgeKey(public_a)], [AgeKey(public_b)], [PgpKey(PGP_FP)]]
    assert wrap_data_key(data_key, groups, 2) == 2
    monkeypatch.setenv("SOPS_AGE_KEY", f"{secret_a}\n{secret_b}")
    shares = [group[0].decrypt() for group in groups]
    assert [s[-1] for s in shares] == [1, 2, 3] and all(len(s) == 33 for s in shares)
    assert shamir.combine(shares[1:]) == data_key
    layout = {
        "shamir_threshold": 2,
        "key_groups": [
            {
                "pgp": [k.to_dict() for k in g if k.type_name == "pgp"],
                "age": [k.to_dict() for k in g if k.type_name == "age"],
            }
            for g in groups
        ],
    }
    target = tmp_path / "shamir.enc.yaml"
    target.write_text(respliced(SPLICE_VECTOR, layout))
    expected = SPLICE_PLAIN.read_bytes()
    empty = tmp_path / "empty-gnupg"
    empty.mkdir(mode=0o700)
    runs = {
        "two age groups": clean_env(tmp_path, SOPS_AGE_KEY=f"{secret_a}\n{secret_b}", GNUPGHOME=str(empty)),
        "age b + pgp": clean_env(tmp_path, SOPS_AGE_KEY=secret_b, GNUPGHOME=str(gpg_env)),
        "only one group": clean_env(tmp_path, SOPS_AGE_KEY=secret_a, GNUPGHOME=str(empty)),
    }
    results = {name: run_sops(["decrypt", str(target)], env) for name, env in runs.items()}
    subprocess.run(["gpgconf", "--homedir", str(empty), "--kill", "gpg-agent"], capture_output=True, check=False)
    assert results["two age groups"].stdout == expected, results["two age groups"].stderr
    assert results["age b + pgp"].stdout == expected, results["age b + pgp"].stderr
    assert results["only one group"].returncode == 128
    # And our own recovery from the same file.
    monkeypatch.setenv("SOPS_AGE_KEY", secret_b)
    assert get_data_key(load_meta(target)) == data_key


def test_wrap_threshold_zero_means_all_groups() -> None:
    secret, public = _new_identity()
    groups = [[AgeKey(public)], [AgeKey(public)], [AgeKey(public)]]
    assert wrap_data_key(b"k" * 32, groups, 0) == 3
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOPS_AGE_KEY", secret)
        assert get_data_key(Meta(groups, 3)) == b"k" * 32
        # A file that recorded threshold 0 needs every group as well.
        broken: list[list[Any]] = [groups[0], groups[1], [FakeKey("age", "age1gone", "unavailable")]]
        with pytest.raises(SopsError) as failed:
            get_data_key(Meta(broken, 0))
        assert "Shamir threshold of 3, but only 2 part(s)" in _flat(failed.value.detail or "")


def test_wrap_failures(gpg_env: Path) -> None:
    _, public = _new_identity()
    with pytest.raises(SopsError) as failed:
        wrap_data_key(
            b"k" * 32, [[AgeKey(public), PgpKey("0" * 40), OpaqueKey("gcp_kms", {"resource_id": "projects/p"})]], 0
        )
    assert failed.value.code == 1
    message = failed.value.message
    assert message.startswith('Could not generate data key: [failed to encrypt new data key with master key "0000')
    assert 'master key "projects/p": sopsflow cannot use gcp_kms keys' in message
    with pytest.raises(SopsError, match="parts cannot be less than threshold"):
        wrap_data_key(b"k" * 32, [[AgeKey(public)], [AgeKey(public)]], 3)
    with pytest.raises(SopsError, match="empty key group provided"):
        wrap_data_key(b"k" * 32, [[AgeKey(public)], []], 0)


# --------------------------------------------------------------------------
# failures name every group and key, and nothing secret


def test_failure_report_for_kms_and_pgp(
    kms_env: Moto, gpg_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, public = _new_identity()
    monkeypatch.setenv("SOPS_AGE_KEY", secret)
    data_key = bytes(range(100, 132))
    arn = kms_env.create_key()
    good_context = KmsKey(arn, context={"app": "web"})
    role_key = KmsKey(arn, role="arn:aws:iam::999999999999:role/elsewhere")
    groups: list[list[Any]] = [[good_context, role_key], [AgeKey(public)], [PgpKey(PGP_FP)]]
    # Wrap with the right settings, then break each group the way users do.
    role_key.role = ""
    _, stranger = _new_identity()
    groups[1] = [AgeKey(stranger)]  # a recipient we hold no identity for
    assert wrap_data_key(data_key, groups, 3) == 3
    role_key.role = "arn:aws:iam::999999999999:role/elsewhere"  # a role that cannot see the key
    good_context.context = {"app": "db"}  # wrong context
    no_keys = tmp_path / "gnupg-without-secret-keys"
    no_keys.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(no_keys))  # the PGP secret key is not available
    with pytest.raises(SopsError) as failed:
        get_data_key(Meta(groups, 3))
    assert failed.value.code == 128
    detail = failed.value.detail or ""
    flat = _flat(detail)
    for expected in (
        "Group 0: FAILED",
        "Group 1: FAILED",
        "Group 2: FAILED",
        f"{arn}|app:db: FAILED",
        f"{arn}+arn:aws:iam::999999999999:role/elsewhere: FAILED",
        "InvalidCiphertextException",
        "NotFoundException",
        f"{stranger}: FAILED",
        f"{PGP_FP}: FAILED",
        "No secret key",
        "Shamir threshold of 3, but only 0 part(s)",
        f"You hold age identities for: {public}; none of them is a recipient of this file.",
        f"You hold no PGP secret keys (GnuPG home {no_keys}).",
    ):
        assert expected in flat, expected
    subprocess.run(["gpgconf", "--homedir", str(no_keys), "--kill", "gpg-agent"], capture_output=True, check=False)
    for secret_text in (secret, data_key.hex(), data_key.hex().upper(), "testing"):
        assert secret_text not in detail


def test_stopped_kms_endpoint_in_report(kms_env: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    key = KmsKey(kms_env.create_key())
    wrap_data_key(b"k" * 32, [[key]], 0)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9")
    with pytest.raises(SopsError) as failed:
        get_data_key(Meta([[key]], 0))
    detail = failed.value.detail or ""
    assert "Group 0: FAILED" in detail and f"{key.arn}: FAILED" in detail
    assert "Could not connect" in _flat(detail)
    assert "no master key was able to decrypt the file" in _flat(detail)


def test_corrupted_share(gpg_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))
    data_key = bytes.fromhex(_vector("shamir-2of2-yaml")["data_key_hex"])
    # A damaged wrap: that group fails, and one share is not enough.
    meta = load_meta(SHAMIR_VECTOR)
    age_key = meta.key_groups[0][0]
    lines = age_key.enc.split("\n")
    lines[2] = lines[2][:10] + ("A" if lines[2][10] != "A" else "B") + lines[2][11:]
    age_key.enc = "\n".join(lines)
    with pytest.raises(SopsError) as failed:
        get_data_key(meta)
    detail = failed.value.detail or ""
    assert "Group 0: FAILED" in detail and "Group 1: SUCCESS" in detail
    assert f"recipients of this file among them: {AGE_RECIPIENT}." in detail
    assert AGE_SECRET not in detail
    # A well-wrapped but wrong share: Shamir cannot notice; the data key is wrong
    # (the file's MAC check is what catches it, as in sops).
    meta = load_meta(SHAMIR_VECTOR)
    share = bytearray(meta.key_groups[0][0].decrypt())
    share[0] ^= 0xFF
    meta.key_groups[0][0].encrypt(bytes(share))
    assert get_data_key(meta) != data_key


def test_opaque_keys_fall_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))
    age_entry = yaml.safe_load(SPLICE_VECTOR.read_text())["sops"]["age"][0]
    gcp = key_from_entry(
        "gcp_kms",
        {
            "resource_id": "projects/p/locations/l/keyRings/r/cryptoKeys/k",
            "created_at": "2026-01-01T00:00:00Z",
            "enc": "Q0lQSEVS",
        },
    )
    assert isinstance(gcp, OpaqueKey)
    assert get_data_key(Meta([[gcp, key_from_entry("age", age_entry)]])) == vector_data_key(SPLICE_VECTOR)
    with pytest.raises(SopsError) as failed:
        get_data_key(Meta([[gcp]]))
    assert "sopsflow cannot use gcp_kms keys" in _flat(failed.value.detail or "")


# --------------------------------------------------------------------------
# entries and identities


ENTRIES: dict[str, list[dict[str, Any]]] = {
    "kms": [
        {
            "arn": "arn:aws:kms:us-east-1:123456789012:key/a",
            "role": "arn:aws:iam::123456789012:role/r",
            "context": {"b": "2", "a": "1"},
            "created_at": "2026-01-01T00:00:00Z",
            "enc": "RU5D",
            "aws_profile": "dev",
        },
        {
            "arn": "arn:aws:kms:us-east-1:123456789012:key/b",
            "created_at": "2026-01-01T00:00:00Z",
            "enc": "RU5D",
            "aws_profile": "dev",
        },
        {
            "arn": "arn:aws:kms:us-east-1:123456789012:key/c",
            "context": {"k": "v"},
            "created_at": "2026-01-01T00:00:00Z",
            "enc": "RU5D",
            "aws_profile": "",
        },
    ],
    "gcp_kms": [
        {
            "resource_id": "projects/p/locations/global/keyRings/r/cryptoKeys/k",
            "created_at": "2026-01-01T00:00:00Z",
            "enc": "RU5D",
        }
    ],
    "azure_kv": [
        {
            "vault_url": "https://v.vault.azure.net",
            "name": "key",
            "version": "0123abcd",
            "created_at": "2026-01-01T00:00:00Z",
            "enc": "RU5D",
        }
    ],
    "hc_vault": [
        {
            "vault_address": "http://127.0.0.1:8200",
            "engine_path": "team/transit",
            "key_name": "k",
            "created_at": "2026-01-01T00:00:00Z",
            "enc": "vault:v1:x",
        }
    ],
    "pgp": [{"created_at": "2026-01-01T00:00:00Z", "enc": "x", "fp": PGP_FP}],
    "age": [{"recipient": AGE_RECIPIENT, "enc": "x"}],
}


def test_identities_match_sops_tostring(tmp_path: Path) -> None:
    """sops updatekeys prints every key's ToString; ours must be the same strings."""
    target = tmp_path / "all-types.enc.yaml"
    target.write_text(respliced(SPLICE_VECTOR, ENTRIES))
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {_new_identity()[1]}\n")
    done = subprocess.run(
        [sops_path(), "updatekeys", target.name],
        input=b"n\n",
        capture_output=True,
        cwd=tmp_path,
        env=clean_env(tmp_path),
        timeout=60,
        check=False,
    )
    removed = [line[4:] for line in done.stdout.decode().splitlines() if line.startswith("--- ")]
    order = ("kms", "gcp_kms", "azure_kv", "hc_vault", "pgp", "age")  # sops' flat-layout load order
    ours = [key_from_entry(name, entry).identity() for name in order for entry in ENTRIES[name]]
    assert removed == ours, done.stdout.decode() + done.stderr.decode()


def test_entries_round_trip_verbatim() -> None:
    for name, entries in ENTRIES.items():
        for entry in entries:
            key = key_from_entry(name, entry)
            expected = dict(entry)
            if name == "kms" and "context" in expected:
                expected["context"] = dict(sorted(expected["context"].items()))
            assert list(key.to_dict().items()) == list(expected.items()), name
    assert isinstance(key_from_entry("hckms", {"key_id": "k1", "enc": "x"}), OpaqueKey)
    assert isinstance(key_from_entry("hc_vault", ENTRIES["hc_vault"][0]), VaultKey)
    assert isinstance(key_from_entry("kms", ENTRIES["kms"][0]), KmsKey)


def test_created_at_normalisation() -> None:
    # As sops re-writes it after loading (checked with sops rotate: offset kept, fraction dropped).
    assert normalize_created_at("2026-11-28T23:20:13.5+02:00") == "2026-11-28T23:20:13+02:00"
    assert normalize_created_at("2026-11-28T21:20:13+00:00") == "2026-11-28T21:20:13Z"
    for bad in ("bogus", "2026-02-30T00:00:00Z", "2026-01-01 00:00:00Z"):
        with pytest.raises(SopsError, match=f'parsing time "{bad}"') as failed:
            normalize_created_at(bad)
        assert failed.value.code == 1
    with pytest.raises(SopsError):
        key_from_entry("pgp", {"fp": PGP_FP, "enc": "x", "created_at": "yesterday"})
