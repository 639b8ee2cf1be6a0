"""Variables of sops 3.12-3.13: SOPS_AGE_RECIPIENT for the key commands,
SOPS_AGE_SSH_PRIVATE_KEY_CMD and SOPS_HC_VAULT_ALLOWLIST.

SOPS_AGE_RECIPIENT is checked against the pinned binary; it predates the
other two, which follow sops 3.13.2's source (the tests say what they expect).
"""

# The fixtures imported from .fixtures are used as test parameters (pytest's injection).
# ruff: noqa: F811

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyrage
import pytest

from sopsflow.keys.base import KeyFailure
from sopsflow.keys.hcvault import VaultKey

from ..conftest import base_env, run_sops, run_sopsflow
from .fixtures import Bao, bao_server, vault_env  # noqa: F401 - fixtures

KEY_CMD = """#!{python}
import os, sys
recipient = os.environ.get("SOPS_AGE_RECIPIENT", "<unset>")
with open({log!r}, "a") as log:
    log.write(recipient + "\\n")
if recipient == {wanted!r}:
    sys.stdout.write({secret!r} + "\\n")
"""


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_key_command_is_told_the_recipient_like_the_binary(tmp_path: Path) -> None:
    first = pyrage.x25519.Identity.generate()
    second = pyrage.x25519.Identity.generate()
    path = tmp_path / "s.yaml"
    path.write_text("a: secret\n")
    recipients = f"{first.to_public()},{second.to_public()}"
    done = run_sops(["encrypt", "-i", "--age", recipients, str(path)], env=base_env())
    assert done.returncode == 0, done.stderr
    logs = {}
    for name, run in (("sops", run_sops), ("sopsflow", run_sopsflow)):
        log = tmp_path / f"{name}.log"
        # Only the second recipient's identity is handed out: the first key
        # finds none, the second opens the file.
        command = _script(tmp_path / f"{name}-cmd", KEY_CMD.format(
            python=sys.executable, log=str(log), wanted=str(second.to_public()), secret=str(second)))
        out = run(["decrypt", str(path)], env=base_env(SOPS_AGE_KEY_CMD=command))
        assert out.returncode == 0, (name, out.stderr)
        assert out.stdout == b"a: secret\n"
        logs[name] = log.read_text().splitlines()
    assert logs["sopsflow"] == logs["sops"] == [str(first.to_public()), str(second.to_public())]


def _ssh_key(tmp_path: Path, passphrase: str = "") -> tuple[Path, str]:
    key = tmp_path / ("id_pass" if passphrase else "id_plain")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "", "-f", str(key)], check=True)
    public = " ".join(Path(str(key) + ".pub").read_text().split()[:2])
    return key, public


def test_ssh_private_key_command(tmp_path: Path) -> None:
    key, public = _ssh_key(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text("a: secret\n")
    assert run_sopsflow(["encrypt", "-i", "--age", public, str(path)], env=base_env()).returncode == 0
    log = tmp_path / "seen"
    command = _script(tmp_path / "ssh-cmd", f"#!/bin/sh\necho \"$SOPS_AGE_RECIPIENT\" >> {log}\ncat {key}\n")
    # The pinned binary predates this variable (sops 3.13.0 added it), so
    # only sopsflow is checked; the binary's own reading of the file is the oracle
    # for the file itself.
    out = run_sopsflow(["decrypt", str(path)], env=base_env(SOPS_AGE_SSH_PRIVATE_KEY_CMD=command))
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"a: secret\n"
    assert log.read_text().splitlines() == [public]
    theirs = run_sops(["decrypt", str(path)], env=base_env(SOPS_AGE_SSH_PRIVATE_KEY_FILE=str(key)))
    assert theirs.stdout == b"a: secret\n"


def test_ssh_private_key_command_with_a_passphrase_is_refused(tmp_path: Path) -> None:
    key, public = _ssh_key(tmp_path, passphrase="hunter2hunter2")
    path = tmp_path / "s.yaml"
    path.write_text("a: secret\n")
    assert run_sopsflow(["encrypt", "-i", "--age", public, str(path)], env=base_env()).returncode == 0
    out = run_sopsflow(["decrypt", str(path)], env=base_env(SOPS_AGE_SSH_PRIVATE_KEY_CMD=f"cat {key}"))
    assert out.returncode == 128
    # the report wraps lines and prefixes them with "|"
    flat = " ".join(out.stderr.decode().replace("|", " ").split())
    assert "the SSH key returned by running SOPS_AGE_SSH_PRIVATE_KEY_CMD is password protected" in flat
    assert "hunter2" not in flat


def test_vault_allowlist(vault_env: Bao, monkeypatch: pytest.MonkeyPatch) -> None:
    key = VaultKey.from_uri(f"{vault_env.address}/v1/transit/keys/allow")
    key.encrypt(b"v" * 32)
    for allowed in ("", "all", f"{vault_env.address}", f"https://elsewhere, {vault_env.address}/"):
        monkeypatch.setenv("SOPS_HC_VAULT_ALLOWLIST", allowed)
        assert key.decrypt() == b"v" * 32, allowed
    # a string prefix with "/" appended: a longer port is not a match
    for refused in ("none", f"{vault_env.address}0", "http://localhost"):
        monkeypatch.setenv("SOPS_HC_VAULT_ALLOWLIST", refused)
        with pytest.raises(KeyFailure) as failed:
            key.decrypt()
        assert str(failed.value) == f"Allowlist does not allow {vault_env.address}"
        with pytest.raises(KeyFailure):
            VaultKey.from_uri(f"{vault_env.address}/v1/transit/keys/allow").encrypt(b"w" * 32)
    monkeypatch.setenv("SOPS_HC_VAULT_ALLOWLIST", f"{vault_env.address}, ,x")
    with pytest.raises(KeyFailure, match="SOPS_HC_VAULT_ALLOWLIST's entry 2 is empty"):
        key.decrypt()
