"""AWS KMS keys against a real moto server (KMS + STS), cross-checked with sops."""

# The fixtures imported from .fixtures are used as test parameters (pytest's injection).
# ruff: noqa: F811

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import yaml

from sopsflow.errors import SopsError
from sopsflow.keys import kms
from sopsflow.keys.base import KeyFailure
from sopsflow.keys.kms import KmsKey, parse_encryption_context, parse_kms_arns, sts_session_name
from sopsflow.keys.registry import key_from_entry

from ..conftest import run_sopsflow
from ..vectors import GENERATED
from .fixtures import (  # noqa: F401 - fixtures
    SPLICE_PLAIN,
    SPLICE_VECTOR,
    Moto,
    clean_env,
    decrypt_value,
    kms_env,
    moto_server,
    respliced,
    run_sops,
    vector_data_key,
)

ROLE = "arn:aws:iam::123456789012:role/sops-tests"
FOREIGN_ROLE = "arn:aws:iam::999999999999:role/elsewhere"


# --------------------------------------------------------------------------
# parsing and formatting (no server)


def test_parse_kms_arns_splits_roles() -> None:
    arn1 = "arn:aws:kms:us-east-1:123456789012:key/one"
    arn2 = "arn:aws:kms:eu-west-1:123456789012:alias/two"
    keys = parse_kms_arns(f"{arn1}+{ROLE}, {arn2} ,", {"app": "web"}, "dev")
    assert [(k.arn, k.role, k.context, k.aws_profile) for k in keys] == [
        (arn1, ROLE, {"app": "web"}, "dev"),
        (arn2, "", {"app": "web"}, "dev"),
    ]
    # sops 3.12+ (and the pinned binary) split at any "+arn:", so roles of the
    # China and GovCloud partitions are found; 3.11 kept them in the ARN.
    cn = "arn:aws-cn:kms:cn-north-1:123456789012:key/one"
    (china,) = parse_kms_arns(f"{cn}+arn:aws-cn:iam::1:role/x")
    assert (china.arn, china.role) == (cn, "arn:aws-cn:iam::1:role/x")
    gov = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/a"
    (govcloud,) = parse_kms_arns(f"{gov} + arn:aws-us-gov:iam::123456789012:role/r")
    assert (govcloud.arn, govcloud.role) == (gov, "arn:aws-us-gov:iam::123456789012:role/r")
    assert parse_kms_arns("") == []


def test_parse_encryption_context() -> None:
    assert parse_encryption_context("k1:v1,k2:v2") == {"k1": "v1", "k2": "v2"}
    assert parse_encryption_context("") == {}
    assert parse_encryption_context(":v") == {"": "v"}
    for bad in ("bad", "a:b:c", "a:b,"):
        with pytest.raises(SopsError) as failed:
            parse_encryption_context(bad)
        assert failed.value.code == 6
        assert failed.value.message == "Invalid KMS encryption context format"


def test_entry_layout_and_identity() -> None:
    arn = "arn:aws:kms:us-east-1:123456789012:key/k"
    full = KmsKey(arn, ROLE, {"z": "1", "a": "2"}, "dev", enc="RU5D", created_at="2026-01-01T00:00:00Z")
    assert list(full.to_dict()) == ["arn", "role", "context", "created_at", "enc", "aws_profile"]
    assert list(full.to_dict()["context"]) == ["a", "z"]
    assert full.identity() == f"{arn}+{ROLE}|a:2,z:1|dev"
    bare = KmsKey(arn, enc="RU5D", created_at="2026-01-01T00:00:00Z")
    assert bare.to_dict() == {"arn": arn, "created_at": "2026-01-01T00:00:00Z", "enc": "RU5D", "aws_profile": ""}
    assert bare.identity() == arn
    assert KmsKey(arn, aws_profile="dev").identity() == f"{arn}||dev"
    assert KmsKey(arn, context={"a": "b"}).identity() == f"{arn}|a:b"


def test_entry_order_matches_the_sops_vector() -> None:
    raw = yaml.safe_load((GENERATED / "kms" / "kms-format.enc.yaml").read_text())["sops"]["kms"][0]
    key = key_from_entry("kms", raw)
    assert list(key.to_dict().items()) == list(raw.items())


def test_sts_session_name() -> None:
    # "-" falls outside sops' character class ("@-_" is a range), so it is removed.
    assert sts_session_name("build-host_01.example.com") == "sops@buildhost_01.example.com"
    assert sts_session_name("h\u00f6st!") == "sops@hst"
    assert sts_session_name("x" * 100) == "sops@" + "x" * 59
    assert len(sts_session_name("x" * 100)) == 64


def test_invalid_arn_is_reported() -> None:
    key = KmsKey("arn:aws:kms:bad")
    with pytest.raises(KeyFailure, match=re.escape("no valid ARN found in 'arn:aws:kms:bad'")):
        key.encrypt(b"k" * 32)
    # Go's "$" is end-of-text: a trailing newline is not an ARN either.
    with pytest.raises(KeyFailure, match="no valid ARN"):
        KmsKey("arn:aws:kms:us-east-1:1:key/x\n").region()
    assert KmsKey("arn:aws-us-gov:kms:us-gov-west-1:1:alias/x").region() == "us-gov-west-1"


# --------------------------------------------------------------------------
# against moto


def test_round_trip_with_context(kms_env: Moto) -> None:
    arn = kms_env.create_key()
    key = KmsKey(arn, context={"app": "web", "env": "test"})
    key.encrypt(b"d" * 32)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", key.created_at)
    blob = base64.b64decode(key.enc, validate=True)
    # Independent check: moto itself decrypts the blob only with the same context.
    client = kms_env.client("kms")
    assert (
        client.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "web", "env": "test"})["Plaintext"] == b"d" * 32
    )
    assert key.decrypt() == b"d" * 32
    loaded = key_from_entry("kms", key.to_dict())
    assert loaded.decrypt() == b"d" * 32


def test_wrong_context_fails(kms_env: Moto) -> None:
    arn = kms_env.create_key()
    key = KmsKey(arn, context={"app": "web"})
    key.encrypt(b"d" * 32)
    wrong = KmsKey(arn, context={"app": "db"}, enc=key.enc)
    with pytest.raises(KeyFailure) as failed:
        wrong.decrypt()
    assert "failed to decrypt sops data key with AWS KMS" in str(failed.value)
    assert "InvalidCiphertextException" in str(failed.value)
    none = KmsKey(arn, enc=key.enc)
    with pytest.raises(KeyFailure, match="InvalidCiphertextException"):
        none.decrypt()


def test_region_comes_from_the_arn(kms_env: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = kms_env.create_key(region="eu-west-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    key = KmsKey(arn)
    key.encrypt(b"r" * 32)
    assert key.decrypt() == b"r" * 32
    # The same key id in another region does not exist.
    other = KmsKey(arn.replace("eu-west-1", "us-east-1"), enc=key.enc)
    with pytest.raises(KeyFailure, match="NotFoundException|InvalidCiphertextException"):
        other.decrypt()


def test_role_is_assumed(kms_env: Moto) -> None:
    arn = kms_env.create_key()
    key = KmsKey(arn, role=ROLE)
    key.encrypt(b"r" * 32)
    assert key.decrypt() == b"r" * 32
    # The STS session name sops uses.
    import boto3

    session = kms._assume_role(boto3.session.Session(region_name="us-east-1"), "us-east-1", ROLE)
    caller = session.client("sts").get_caller_identity()["Arn"]
    assert caller.endswith("/" + sts_session_name())


def test_wrong_role_fails(kms_env: Moto) -> None:
    arn = kms_env.create_key()
    key = KmsKey(arn)
    key.encrypt(b"r" * 32)
    # A role in another account cannot see this account's key.
    foreign = KmsKey(arn, role=FOREIGN_ROLE, enc=key.enc)
    with pytest.raises(KeyFailure, match="NotFoundException"):
        foreign.decrypt()
    broken = KmsKey(arn, role="arn:aws:iam::1:r", enc=key.enc)
    with pytest.raises(KeyFailure, match=re.escape("failed to assume role 'arn:aws:iam::1:r'")):
        broken.decrypt()


def test_profile(kms_env: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text("[profile dev]\nregion = ap-south-1\n")
    credentials = tmp_path / "credentials"
    credentials.write_text("[dev]\naws_access_key_id = devkey\naws_secret_access_key = devsecret\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    arn = kms_env.create_key()
    key = KmsKey(arn, aws_profile="dev")
    key.encrypt(b"p" * 32)
    assert key.decrypt() == b"p" * 32
    missing = KmsKey(arn, aws_profile="nope", enc=key.enc)
    with pytest.raises(KeyFailure, match=r"could not load AWS config: .*nope"):
        missing.decrypt()


def test_stopped_endpoint_fails_with_a_clear_error(kms_env: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = kms_env.create_key()
    key = KmsKey(arn)
    key.encrypt(b"s" * 32)
    from .fixtures import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(KeyFailure) as failed:
        key.decrypt()
    assert "failed to decrypt sops data key with AWS KMS" in str(failed.value)
    assert "Could not connect to the endpoint URL" in str(failed.value)
    assert "testing" not in str(failed.value)  # no credentials in messages


# --------------------------------------------------------------------------
# cross-checks with the real sops


def test_sops_decrypts_our_kms_wraps(kms_env: Moto, tmp_path: Path) -> None:
    data_key = vector_data_key(SPLICE_VECTOR)
    keys = [
        KmsKey(kms_env.create_key(), role=ROLE, context={"app": "web", "env": "test"}),
        KmsKey(kms_env.create_key(region="eu-west-1"), context={"team": "a"}),
    ]
    for key in keys:
        key.encrypt(data_key)
    expected = SPLICE_PLAIN.read_bytes()
    for index, key in enumerate(keys):
        target = tmp_path / f"spliced{index}.enc.yaml"
        target.write_text(respliced(SPLICE_VECTOR, {"kms": [key.to_dict()]}))
        done = run_sops(["decrypt", str(target)], clean_env(tmp_path, **kms_env.env()))
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout == expected


@pytest.mark.parametrize(("region", "partition"), [("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn")])
def test_role_arns_outside_the_aws_partition(kms_env: Moto, tmp_path: Path, region: str, partition: str) -> None:
    # The pinned binary predates the split (sops 3.12.0 added it), so sopsflow
    # follows 3.13.2 when it writes, and the binary reads the result.
    arn = kms_env.create_key(region=region)
    assert arn.startswith(f"arn:{partition}:kms:{region}:")
    role = f"arn:{partition}:iam::123456789012:role/sops-tests"
    plain = tmp_path / "plain.yaml"
    plain.write_text("secret: hello\n")
    env = clean_env(tmp_path, **kms_env.env())
    ours = run_sopsflow(["encrypt", "-i", "--kms", f"{arn}+{role}", str(plain)], env=env)
    assert ours.returncode == 0, ours.stderr.decode()
    (entry,) = yaml.safe_load(plain.read_text())["sops"]["kms"]
    assert (entry["arn"], entry["role"]) == (arn, role)
    theirs = run_sops(["decrypt", str(plain)], env)
    assert theirs.returncode == 0, theirs.stderr.decode()
    assert theirs.stdout == b"secret: hello\n"


def test_we_decrypt_sops_kms_wraps(kms_env: Moto, tmp_path: Path) -> None:
    arn = kms_env.create_key()
    plain = tmp_path / "plain.yaml"
    plain.write_text("secret: hello\n")
    done = run_sops(
        ["encrypt", "--kms", f"{arn}+{ROLE}", "--encryption-context", "app:web,env:test", str(plain)],
        clean_env(tmp_path, **kms_env.env()),
    )
    assert done.returncode == 0, done.stderr.decode()
    loaded = yaml.safe_load(done.stdout)
    (entry,) = loaded["sops"]["kms"]
    key = key_from_entry("kms", entry)
    # Field order and values as sops wrote them.
    assert list(key.to_dict().items()) == list(entry.items())
    data_key = key.decrypt()
    assert decrypt_value(loaded["secret"], data_key, "secret:") == b"hello"


def test_rule_splits_roles_in_every_partition() -> None:
    from sopsflow.config.decoder import parse_config

    gov = "arn:aws-us-gov:kms:us-gov-east-1:123456789012:key/k"
    role = "arn:aws-us-gov:iam::123456789012:role/r"
    config = parse_config(f"creation_rules:\n  - kms: '{gov}+{role}'\n".encode(), "/r/.sops.yaml")
    rule = config.match("/r/x.yaml")
    assert rule is not None
    ((spec,),) = rule.key_specs()
    assert (spec.value["arn"], spec.value["role"]) == (gov, role)
    assert spec.identity() == f"{gov}+{role}"
