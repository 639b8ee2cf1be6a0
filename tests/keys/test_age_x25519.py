"""X25519 stanzas opened with cryptography's primitives (``keys.age.unwrap_x25519``,
which updatekeys switches on for many files): the data key pyrage gives, for
what the real sops and pyrage write, and never a key for a file pyrage
refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest
import yaml
from pyrage import x25519

from sopsflow.keys import age
from sopsflow.keys.base import KeyFailure

from ..gitfixtures import sops_encrypt
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT

OTHER = x25519.Identity.generate()


def _identity() -> x25519.Identity:
    line = next(line for line in AGE_KEY_FILE.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))
    return x25519.Identity.from_str(line)


def _sops_encs(name: str, text: str, recipients: str) -> list[tuple[str, bytes]]:
    """(recipient, enc) of every age entry of a file the real sops encrypted."""
    data = sops_encrypt(name, text, recipients=recipients)
    meta = yaml.safe_load(data) if name.endswith(".yaml") else json.loads(data)
    return [(entry["recipient"], entry["enc"].encode()) for entry in meta["sops"]["age"]]


@pytest.mark.parametrize("name", ["a.yaml", "a.json"])
def test_sops_written_keys_open_to_what_pyrage_gives(name: str) -> None:
    mine = _identity()
    recipients = f"{OTHER.to_public()},{AGE_RECIPIENT}"
    encs = _sops_encs(name, "key: value\n" if name.endswith(".yaml") else '{"key": "value"}', recipients)
    assert len(encs) == 2
    for recipient, enc in encs:
        expected = bytes(pyrage.decrypt(enc, [mine if recipient == AGE_RECIPIENT else OTHER]))
        holder = mine if recipient == AGE_RECIPIENT else OTHER
        assert age.unwrap_x25519(enc, [holder]) == expected
        assert len(expected) == 32
        # The other identity fits no stanza: pyrage's own answer, without pyrage.
        stranger = OTHER if holder is mine else mine
        with pytest.raises(KeyFailure, match="No matching keys found"):
            age.unwrap_x25519(enc, [stranger])
        with pytest.raises(pyrage.DecryptError, match="No matching keys found"):
            pyrage.decrypt(enc, [stranger])


def test_pyrage_written_files_with_several_stanzas_and_grease() -> None:
    ids = [x25519.Identity.generate() for _ in range(3)]
    for _ in range(20):  # rage adds grease stanzas at random
        key = os.urandom(32)
        enc = age.armor(pyrage.encrypt(key, [ids[0].to_public(), ids[1].to_public()])).encode()
        assert age.unwrap_x25519(enc, [ids[1]]) == key
        assert age.unwrap_x25519(enc, [ids[2], ids[0]]) == key
        with pytest.raises(KeyFailure, match="No matching keys found"):
            age.unwrap_x25519(enc, [ids[2]])


def test_what_it_does_not_take_goes_to_pyrage() -> None:
    ident = x25519.Identity.generate()
    key = os.urandom(32)
    enc = age.armor(pyrage.encrypt(key, [ident.to_public()])).encode()
    # no X25519 identity; armour that is not age's own; a payload of two chunks
    assert age.unwrap_x25519(enc, []) is None
    assert age.unwrap_x25519(enc.replace(b"\n", b"\r\n"), [ident]) is None
    big = age.armor(pyrage.encrypt(os.urandom(70_000), [ident.to_public()])).encode()
    assert age.unwrap_x25519(big, [ident]) is None
    assert age.unwrap_x25519(b"not age at all", [ident]) is None


def test_never_a_key_that_pyrage_refuses() -> None:
    """Every one-character change of an armoured file: whenever the native path
    answers with a key, pyrage gives the same key."""
    ident = x25519.Identity.generate()
    key = os.urandom(32)
    enc = age.armor(pyrage.encrypt(key, [ident.to_public()]))
    assert age.unwrap_x25519(enc.encode(), [ident]) == key  # the untouched file opens
    accepted = refused = 0
    for position in range(len(enc)):
        for replacement in {"A", "a", "0", "/", "=", "-", " ", "\n"} - {enc[position]}:
            changed = (enc[:position] + replacement + enc[position + 1:]).encode()
            try:
                native = age.unwrap_x25519(changed, [ident])
            except KeyFailure:
                native = None
            if native is None:
                refused += 1
                continue
            accepted += 1
            assert bytes(pyrage.decrypt(changed, [ident])) == native
    assert refused > accepted  # nearly every change breaks the MAC, a tag or the encoding


def test_sops_decrypts_what_updatekeys_wrote_with_the_native_path(tmp_path: Path) -> None:
    """The real sops reads a file that a native-path run rewrote: its data key
    is the one the native path opened."""
    from tests.conftest import base_env, run_sops

    work = tmp_path
    enc_file = work / "s.yaml"
    enc_file.write_bytes(sops_encrypt("s.yaml", "password: hunter2\n"))
    (work / ".sops.yaml").write_text(f"creation_rules:\n  - age: {AGE_RECIPIENT},{OTHER.to_public()}\n")
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    script = ("import sys; from sopsflow.keys import age; age.expect_many_unwraps(); "
              "from sopsflow.main import main; sys.exit(main(['updatekeys', '-y', 's.yaml']))")
    done = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert str(OTHER.to_public()) in enc_file.read_text()
    shown = run_sops(["decrypt", "s.yaml"], env=env, cwd=work)
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout) == {"password": "hunter2"}
    other_key = tmp_path / "other.txt"
    other_key.write_text(str(OTHER) + "\n")
    by_other = run_sops(["decrypt", "s.yaml"], env=base_env(SOPS_AGE_KEY_FILE=str(other_key)), cwd=work)
    assert by_other.returncode == 0, by_other.stderr
