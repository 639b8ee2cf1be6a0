"""Files that also hold GCP KMS / Azure Key Vault entries (no local server
exists for them): they decrypt through age, and the entries survive."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyrage

from ..conftest import base_env, run_sops, run_sopsflow
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT

GCP = "projects/p/locations/l/keyRings/r/cryptoKeys/k"
AZURE = "https://v.vault.azure.net/keys/k/abc"
ENTRIES = (
    "sops:\n"
    "    gcp_kms:\n"
    f"        - resource_id: {GCP}\n"
    '          created_at: "2026-01-01T00:00:00Z"\n'
    "          enc: Q2lRQUFBQUE=\n"
    "    azure_kv:\n"
    "        - vault_url: https://v.vault.azure.net\n"
    "          name: k\n"
    "          version: abc\n"
    '          created_at: "2026-01-01T00:00:00Z"\n'
    "          enc: QUJD\n"
)


def _file_with_opaque_entries(tmp_path: Path, env: dict[str, str]) -> Path:
    path = tmp_path / "f.yaml"
    path.write_text("a: secret\nb: 2\n")
    done = run_sopsflow(["encrypt", "-i", "--age", AGE_RECIPIENT, str(path)], env=env)
    assert done.returncode == 0, done.stderr
    # metadata is outside the MAC: splice the entries in as another sops would have written them
    path.write_text(path.read_text().replace("sops:\n", ENTRIES, 1))
    return path


def _opaque_lines(path: Path) -> list[str]:
    text = path.read_text()
    block = text[text.index("    gcp_kms:") :]
    return [line for line in block.splitlines() if "gcp_kms" in line or "resource_id" in line
            or "azure_kv" in line or "vault_url" in line or "enc: Q2lR" in line or "enc: QUJD" in line]


def test_decrypts_through_age_with_both_tools(tmp_path: Path) -> None:
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    path = _file_with_opaque_entries(tmp_path, env)
    ours = run_sopsflow(["decrypt", str(path)], env=env)
    theirs = run_sops(["decrypt", str(path)], env=env)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout == b"a: secret\nb: 2\n"


def test_updatekeys_keeps_the_entries_and_sops_reads_the_result(tmp_path: Path) -> None:
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    path = _file_with_opaque_entries(tmp_path, env)
    before = _opaque_lines(path)
    newcomer = pyrage.x25519.Identity.generate()
    (tmp_path / ".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: f\\.yaml$\n"
        f"    age: {AGE_RECIPIENT},{newcomer.to_public()}\n"
        f"    gcp_kms: {GCP}\n"
        f"    azure_keyvault: {AZURE}\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    done = run_sopsflow(["updatekeys", "-y", "f.yaml"], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _opaque_lines(path) == before  # entries kept verbatim (same data key)
    assert str(newcomer.to_public()) in path.read_text()
    key_file = tmp_path / "new.txt"
    key_file.write_text(f"{newcomer}\n")
    theirs = run_sops(["decrypt", str(path)], env=base_env(SOPS_AGE_KEY_FILE=str(key_file)))
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == b"a: secret\nb: 2\n"


def test_rotate_refuses_like_sops_and_leaves_the_file(tmp_path: Path) -> None:
    """A new data key cannot be wrapped for GCP/Azure here (nor by sops without
    their credentials): both refuse, and the file keeps every entry."""
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    path = _file_with_opaque_entries(tmp_path, env)
    original = path.read_bytes()
    ours = run_sopsflow(["rotate", "-i", str(path)], env=env)
    assert ours.returncode == 1
    assert b"gcp_kms" in ours.stderr and b"Traceback" not in ours.stderr
    assert path.read_bytes() == original
    copy = tmp_path / "g.yaml"
    copy.write_bytes(original)
    theirs = run_sops(["rotate", "-i", str(copy)], env=env)
    assert theirs.returncode == ours.returncode
    assert copy.read_bytes() == original
