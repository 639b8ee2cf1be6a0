"""HuaweiCloud KMS (``hckms``) keys: named in `.sops.yaml` and the environment,
planned like any key, kept byte for byte, and never wrapped without the SDK.

No HuaweiCloud KMS can run here, so files get their hckms entry spliced into
the metadata (it is outside the MAC), as a sops with the SDK writes it; the
pinned sops binary, which has hckms but no credentials here, is the oracle.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sopsflow.config.decoder import parse_config
from sopsflow.errors import SopsError
from sopsflow.keys.hckms import HckmsKeyError, parse_key_id
from sopsflow.metadata import Metadata

from ..conftest import base_env, run_sops, run_sopsflow
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT

KEY_ID = "cn-north-4:0d0466b0-e727-4d9c-b35d-f84bb474a37f"
OTHER_ID = "ap-southeast-1:9a1e7c52-0000-4000-8000-000000000001"
HCKMS_ENTRY = (
    "    hckms:\n"
    f"        - key_id: {KEY_ID}\n"
    '          created_at: "2025-03-04T05:06:07Z"\n'
    "          enc: ZmFrZS1odWF3ZWktd3JhcA==\n"
)


def _env(tmp_path: Path) -> dict[str, str]:
    # HOME without ~/.huaweicloud: the binary has no credentials either.
    return base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), HOME=str(tmp_path))


def _file_with_hckms(tmp_path: Path, env: dict[str, str]) -> Path:
    path = tmp_path / "f.yaml"
    path.write_text("a: secret\nb: 2\n")
    done = run_sops(["encrypt", "-i", "--age", AGE_RECIPIENT, str(path)], env=env)
    assert done.returncode == 0, done.stderr
    # sops writes hckms between gcp_kms and azure_kv, i.e. before age here
    path.write_text(path.read_text().replace("    age:\n", HCKMS_ENTRY + "    age:\n", 1))
    return path


def _rule(tmp_path: Path, hckms: str) -> None:
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {AGE_RECIPIENT}\n    hckms: {hckms}\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)


def _specs(text: str) -> list[list[tuple[str, str]]]:
    config = parse_config(text.encode(), "/r/.sops.yaml")
    rule = config.match("/r/x.yaml")
    assert rule is not None
    return [[(s.type_name, s.identity()) for s in group] for group in rule.key_specs()]


# --- key ID syntax and .sops.yaml -------------------------------------------------


@pytest.mark.parametrize(("key_id", "message"), [
    ("bad", "invalid key ID format: expected 'region:key-uuid', got \"bad\""),
    (":uuid", 'region cannot be empty in key ID: ":uuid"'),
    ("region: ", 'key UUID cannot be empty in key ID: "region:"'),
])
def test_key_id_errors_are_sops_own(key_id: str, message: str) -> None:
    with pytest.raises(HckmsKeyError) as failed:
        parse_key_id(key_id)
    assert str(failed.value) == message


def test_key_id_parts_are_trimmed() -> None:
    assert parse_key_id(" cn-north-4 : abc ") == ("cn-north-4", "abc")


def test_flat_rule_list_joins_in_sops_order() -> None:
    text = (
        "creation_rules:\n"
        "  - hc_vault_transit_uri: https://v:8200/v1/transit/keys/k\n"
        "    azure_keyvault: https://v.vault.azure.net/keys/k/1\n"
        f"    hckms: ['{KEY_ID}', ' , ', '{OTHER_ID}']\n"
        "    gcp_kms: projects/p/locations/l/keyRings/r/cryptoKeys/k\n"
        f"    age: {AGE_RECIPIENT}\n"
    )
    assert [t for t, _ in _specs(text)[0]] == ["age", "gcp_kms", "hckms", "hckms", "azure_kv", "hc_vault"]
    assert [i for t, i in _specs(text)[0] if t == "hckms"] == [KEY_ID, OTHER_ID]


def test_flat_rule_string_is_refused_at_load_as_by_sops() -> None:
    # sops declares the field []string: "cannot unmarshal !!str ... into []string" (exit 1)
    with pytest.raises(SopsError) as failed:
        parse_config(f"creation_rules:\n  - hckms: {KEY_ID}\n".encode(), "/r/.sops.yaml")
    assert "creation_rules[0].hckms: expected a list of strings" in failed.value.message


def test_key_groups_entries() -> None:
    text = (
        "creation_rules:\n"
        "  - key_groups:\n"
        "      - hckms:\n"
        f"          - key_id: {KEY_ID}\n"
        f"          - key_id: {KEY_ID}\n"  # groups are deduplicated, as in sops
        f"        age: [{AGE_RECIPIENT}]\n"
        "      - hckms:\n"
        f"          - key_id: {OTHER_ID}\n"
        "        gcp_kms:\n"
        "          - resource_id: projects/p\n"
    )
    assert _specs(text) == [[("age", AGE_RECIPIENT), ("hckms", KEY_ID)],
                            [("gcp_kms", "projects/p"), ("hckms", OTHER_ID)]]


def test_bad_key_id_in_rule_fails_like_the_binary(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - key_groups:\n      - hckms:\n          - key_id: nocolon\n        age: [{AGE_RECIPIENT}]\n"
    )
    (tmp_path / "p.yaml").write_text("a: 1\n")
    ours = run_sopsflow(["encrypt", "p.yaml"], env=env, cwd=tmp_path)
    theirs = run_sops(["encrypt", "p.yaml"], env=env, cwd=tmp_path)
    assert theirs.returncode == 1
    assert b"invalid key ID format: expected 'region:key-uuid', got \"nocolon\"" in theirs.stderr
    assert ours.returncode != 0 and ours.stdout == b""
    assert b"invalid key ID format: expected 'region:key-uuid', got \"nocolon\"" in ours.stderr
    assert len(ours.stderr.decode().strip().splitlines()) == 1


# --- files ---------------------------------------------------------------------------


def test_entry_loads_and_writes_in_the_binary_position() -> None:
    raw = {
        "azure_kv": [{"vault_url": "https://v", "name": "k", "version": "1", "created_at": "2025-01-01T00:00:00Z",
                      "enc": "YQ=="}],
        "hckms": [{"key_id": KEY_ID, "created_at": "2025-03-04T05:06:07Z", "enc": "Zg==", "future_field": 1}],
        "gcp_kms": [{"resource_id": "projects/p", "created_at": "2025-01-01T00:00:00Z", "enc": "Zw=="}],
        "age": [{"recipient": AGE_RECIPIENT, "enc": "x"}],
        "lastmodified": "2025-01-01T00:00:00Z", "mac": "m", "version": "3.12.1",
    }
    meta = Metadata.from_dict(raw)
    out = meta.to_dict()
    # the binary rewrote the same file as gcp_kms, hckms, azure_kv, age (checked with `sops set`)
    assert [k for k in out if k in raw and isinstance(raw[k], list)] == ["gcp_kms", "hckms", "azure_kv", "age"]
    assert out["hckms"] == raw["hckms"]  # verbatim, an unknown field included
    grouped = Metadata.from_dict({"key_groups": [{k: raw[k] for k in ("hckms", "age")}, {"age": raw["age"]}],
                                  "lastmodified": "2025-01-01T00:00:00Z", "mac": "m", "version": "3.12.1"})
    assert list(grouped.to_dict()["key_groups"][0]) == ["hckms", "hc_vault", "age"]


def test_updatekeys_keeps_the_entry_under_a_rule_that_lists_it(tmp_path: Path) -> None:
    env = _env(tmp_path)
    path = _file_with_hckms(tmp_path, env)
    before = path.read_bytes()
    _rule(tmp_path, f"['{KEY_ID}']")
    ours = run_sopsflow(["updatekeys", "-y", "f.yaml"], env=env, cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert path.read_bytes() == before
    theirs = run_sops(["updatekeys", "-y", "f.yaml"], env=env, cwd=tmp_path)
    assert theirs.returncode == 0 and path.read_bytes() == before


def test_updatekeys_adding_age_keeps_the_hckms_entry_verbatim(tmp_path: Path, second_key: tuple[str, Path]) -> None:
    env = _env(tmp_path)
    path = _file_with_hckms(tmp_path, env)
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - age: {AGE_RECIPIENT},{second_key[0]}\n    hckms: ['{KEY_ID}']\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    ours = run_sopsflow(["updatekeys", "-y", "f.yaml"], env=env, cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert HCKMS_ENTRY in path.read_text()
    theirs = run_sops(["decrypt", "f.yaml"], env=base_env(SOPS_AGE_KEY_FILE=str(second_key[1])), cwd=tmp_path)
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == b"a: secret\nb: 2\n"


def test_updatekeys_removes_only_a_removed_hckms_key(tmp_path: Path) -> None:
    env = _env(tmp_path)
    path = _file_with_hckms(tmp_path, env)
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {AGE_RECIPIENT}\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    ours = run_sopsflow(["updatekeys", "-y", "f.yaml"], env=env, cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert f"-{KEY_ID}" in ours.stdout.decode()
    assert "hckms" not in path.read_text()
    assert run_sops(["decrypt", "f.yaml"], env=env, cwd=tmp_path).stdout == b"a: secret\nb: 2\n"


def test_wrapping_for_a_new_hckms_key_fails_before_writing(tmp_path: Path) -> None:
    env = _env(tmp_path)
    path = _file_with_hckms(tmp_path, env)
    before = path.read_bytes()
    _rule(tmp_path, f"['{KEY_ID}', '{OTHER_ID}']")
    ours = run_sopsflow(["updatekeys", "-y", "f.yaml"], env=env, cwd=tmp_path)
    theirs = run_sops(["updatekeys", "-y", "f.yaml"], env=env, cwd=tmp_path)
    assert (ours.returncode, theirs.returncode) == (1, 1)
    assert path.read_bytes() == before
    assert f'failed to encrypt new data key with master key "{OTHER_ID}"' in ours.stdout.decode() + ours.stderr.decode()
    assert f'failed to encrypt new data key with master key "{OTHER_ID}"'.encode() in theirs.stderr


def test_environment_variable_names_keys_and_fails_without_the_sdk(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["SOPS_HUAWEICLOUD_KMS_IDS"] = f"{KEY_ID}, "
    path = tmp_path / "p.yaml"
    path.write_text("a: secret\n")
    for run in (run_sopsflow, run_sops):
        done = run(["encrypt", "-i", "--age", AGE_RECIPIENT, "p.yaml"], env=env, cwd=tmp_path)
        assert done.returncode == 1, (run, done.stderr)
        assert f'Could not generate data key: [failed to encrypt new data key with master key "{KEY_ID}"'.encode() \
            in done.stderr
        assert path.read_text() == "a: secret\n"


def test_environment_variable_bad_id(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["SOPS_HUAWEICLOUD_KMS_IDS"] = "nocolon"
    (tmp_path / "p.yaml").write_text("a: secret\n")
    ours = run_sopsflow(["encrypt", "--age", AGE_RECIPIENT, "p.yaml"], env=env, cwd=tmp_path)
    theirs = run_sops(["encrypt", "--age", AGE_RECIPIENT, "p.yaml"], env=env, cwd=tmp_path)
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.decode().strip().endswith("invalid key ID format: expected 'region:key-uuid', got \"nocolon\"")
    assert b"invalid key ID format" in theirs.stderr
