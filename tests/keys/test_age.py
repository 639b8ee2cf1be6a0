"""age keys: unwrapping sops' vectors, wrapping that sops accepts, and
identity discovery from every source sops 3.11 reads (sops' `age/keysource.go`)."""

# The fixtures imported from .fixtures are used as test parameters (pytest's injection).
# ruff: noqa: F811

from __future__ import annotations

import base64
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml

from sopsflow.errors import SopsError
from sopsflow.keys import age
from sopsflow.keys.age import AgeKey, parse_age_recipients
from sopsflow.keys.base import KeyFailure

from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT, GENERATED, manifest
from .fixtures import (
    SPLICE_PLAIN,
    SPLICE_VECTOR,
    clean_env,
    decrypt_value,
    empty_gnupg_home,  # noqa: F401 - a fixture
    respliced,
    run_sops,
    sops_metadata,
    sops_path,
    vector_data_key,
)

REPO = Path(__file__).resolve().parents[2]
VECTOR_KEY = AGE_KEY_FILE.read_text()


def _yaml_vectors() -> list[dict[str, Any]]:
    return [v for v in manifest()["vectors"] if v["format"] == "yaml"]


def _first_age_entry(path: Path) -> dict[str, Any]:
    docs = list(yaml.safe_load_all(path.read_text()))
    meta = docs[0]["sops"]
    if "age" in meta:
        return dict(meta["age"][0])
    return dict(next(g for g in meta["key_groups"] if g.get("age"))["age"][0])


def _new_identity() -> tuple[str, str]:
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


# --------------------------------------------------------------------------
# unwrapping sops' own files


@pytest.mark.parametrize("vector", _yaml_vectors(), ids=lambda v: v["id"])
def test_unwrap_vector_data_keys(vector: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))
    entry = _first_age_entry(GENERATED / vector["encrypted"])
    key = AgeKey(entry["recipient"], entry["enc"])
    expected = (
        bytes.fromhex(vector["shamir_shares_hex"][0])
        if vector["shamir_shares_hex"]
        else bytes.fromhex(vector["data_key_hex"])
    )
    assert key.decrypt() == expected


# --------------------------------------------------------------------------
# wrapping


def test_armour_layout_and_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    secret, public = _new_identity()
    monkeypatch.setenv("SOPS_AGE_KEY", secret)
    for size in (32, 33):
        key = AgeKey(public)
        payload = os.urandom(size)
        key.encrypt(payload)
        lines = key.enc.split("\n")
        assert lines[0] == "-----BEGIN AGE ENCRYPTED FILE-----"
        assert lines[-2:] == ["-----END AGE ENCRYPTED FILE-----", ""]
        body = lines[1:-2]
        assert all(len(line) == 64 for line in body[:-1]) and 0 < len(body[-1]) <= 64
        raw = base64.b64decode("".join(body))
        assert raw.startswith(b"age-encryption.org/v1\n-> X25519 ")
        # The payload is the raw key bytes, not base64 (pyrage is the independent decoder).
        assert pyrage.decrypt(raw, [pyrage.x25519.Identity.from_str(secret)]) == payload
        assert key.decrypt() == payload
    assert key.to_dict() == {"recipient": public, "enc": key.enc}
    assert list(key.to_dict()) == ["recipient", "enc"]
    assert key.identity() == public


def _ssh_keypair(home: Path, kind: str) -> str:
    """Write ~/.ssh/id_<kind> (unencrypted) with cryptography; return the public line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    private: Any = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else rsa.generate_private_key(65537, 2048)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    path = ssh_dir / f"id_{kind}"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode() + " test@sopsflow"


def test_sops_accepts_our_wraps_for_x25519_and_ssh_recipients(tmp_path: Path) -> None:
    """Unwrap a sops vector's data key, re-wrap it with our code for fresh
    recipients, splice the entries in, and let the real sops decrypt."""
    home = Path(os.environ["HOME"])
    data_key = vector_data_key(SPLICE_VECTOR)
    secret, public = _new_identity()
    ed_public = _ssh_keypair(home, "ed25519")
    rsa_home = tmp_path / "rsa-home"
    rsa_home.mkdir()
    rsa_public = _ssh_keypair(rsa_home, "rsa")
    keys = [AgeKey(public), AgeKey(ed_public), AgeKey(rsa_public)]
    for key in keys:
        key.encrypt(data_key)
    target = tmp_path / "spliced.enc.yaml"
    target.write_text(respliced(SPLICE_VECTOR, {"age": [k.to_dict() for k in keys]}))
    expected = SPLICE_PLAIN.read_bytes()
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    runs = {
        "x25519": run_sops(["decrypt", str(target)], clean_env(empty_home, SOPS_AGE_KEY=secret)),
        "ssh-ed25519 (~/.ssh/id_ed25519)": run_sops(["decrypt", str(target)], clean_env(home)),
        "ssh-rsa (SOPS_AGE_SSH_PRIVATE_KEY_FILE)": run_sops(
            ["decrypt", str(target)],
            clean_env(empty_home, SOPS_AGE_SSH_PRIVATE_KEY_FILE=str(rsa_home / ".ssh" / "id_rsa")),
        ),
        "nothing": run_sops(["decrypt", str(target)], clean_env(empty_home)),
    }
    for name, done in runs.items():
        if name == "nothing":
            assert done.returncode == 128, done.stderr
        else:
            assert done.returncode == 0, (name, done.stderr.decode())
            assert done.stdout == expected, name
    # The recipient string is stored verbatim, comment included.
    assert sops_metadata(target)["age"][1]["recipient"] == ed_public


def test_we_decrypt_sops_wraps_for_ssh_recipients(tmp_path: Path) -> None:
    home = Path(os.environ["HOME"])
    ed_public = _ssh_keypair(home, "ed25519")
    rsa_public = _ssh_keypair(home, "rsa")
    plain = tmp_path / "plain.yaml"
    plain.write_text("secret: hello\n")
    done = run_sops(["encrypt", "--age", f"{ed_public},{rsa_public}", str(plain)], clean_env(tmp_path / "nohome"))
    assert done.returncode == 0, done.stderr.decode()
    loaded = yaml.safe_load(done.stdout)
    entries = loaded["sops"]["age"]
    assert [e["recipient"] for e in entries] == [ed_public, rsa_public]
    for entry in entries:
        data_key = AgeKey(entry["recipient"], entry["enc"]).decrypt()
        assert decrypt_value(loaded["secret"], data_key, "secret:") == b"hello"
    assert ed_public.rsplit(" ", 1)[0] in age.held_recipients()
    assert rsa_public.rsplit(" ", 1)[0] in age.held_recipients()


def test_parse_age_recipients(tmp_path: Path) -> None:
    _, first = _new_identity()
    _, second = _new_identity()
    keys = parse_age_recipients(f" {first} , {second}")
    assert [k.recipient for k in keys] == [first, second]
    for text in (f"{first},,{second}", f"{first},", f"{first}, "):
        # sops refuses an empty item (checked against the binary in tests/compat/test_one_rule.py)
        with pytest.raises(SopsError, match='unknown recipient type: ""'):
            parse_age_recipients(text)
    assert parse_age_recipients("") == []
    ssh = _ssh_keypair(tmp_path, "ed25519")
    assert parse_age_recipients(ssh)[0].recipient == ssh
    with pytest.raises(SopsError) as bad:
        parse_age_recipients(f"{first},age1notbech32")
    assert bad.value.code == 1
    assert "failed to parse input as Bech32-encoded age public key" in bad.value.message
    with pytest.raises(SopsError, match="unknown recipient type"):
        parse_age_recipients("AGE-SECRET-KEY-1ABC")


def test_recipients_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    _, public = _new_identity()
    monkeypatch.setenv("SOPS_AGE_RECIPIENTS", f"{public},{AGE_RECIPIENT}")
    assert [k.recipient for k in age.recipients_from_env()] == [public, AGE_RECIPIENT]


def test_malformed_plugin_recipient_fails_clearly() -> None:
    # plugins are supported (tests/keys/test_age_plugin.py); a bad checksum is not
    key = AgeKey("age1yubikey1qwertyuiopasdfghjklzxcvbnm")
    with pytest.raises(KeyFailure, match="failed to parse input as age key from age plugin"):
        key.encrypt(b"k" * 32)


# --------------------------------------------------------------------------
# identity discovery


def _wrapped(public: str, payload: bytes = b"K" * 32) -> AgeKey:
    key = AgeKey(public)
    key.encrypt(payload)
    return key


def test_every_identity_source_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(os.environ["HOME"])
    identities = [_new_identity() for _ in range(5)]
    keys = [_wrapped(public) for _, public in identities]
    monkeypatch.setenv("SOPS_AGE_KEY", f"# comment\n\n{identities[0][0]}\n")
    key_file = tmp_path / "keys.txt"
    key_file.write_text(identities[1][0] + "\r\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    cmd_file = tmp_path / "cmd keys.txt"
    cmd_file.write_text(identities[2][0] + "\n")
    monkeypatch.setenv("SOPS_AGE_KEY_CMD", f"cat '{cmd_file}'")
    default = home / ".config" / "sops" / "age" / "keys.txt"
    default.parent.mkdir(parents=True)
    default.write_text(identities[3][0] + "\n")
    ssh_public = _ssh_keypair(tmp_path, "ed25519")
    monkeypatch.setenv("SOPS_AGE_SSH_PRIVATE_KEY_FILE", str(tmp_path / ".ssh" / "id_ed25519"))
    for key in keys[:4]:
        assert key.decrypt() == b"K" * 32
    assert _wrapped(ssh_public).decrypt() == b"K" * 32
    found = age.load_identities()
    assert set(found.recipients) >= {public for _, public in identities[:4]}
    assert not found.errors
    # ~/.ssh defaults are missing: they are the only unused locations.
    assert found.unused == [str(home / ".ssh" / "id_ed25519"), str(home / ".ssh" / "id_rsa")]
    with pytest.raises(KeyFailure) as failed:
        keys[4].decrypt()
    message = str(failed.value)
    assert message.startswith("failed to create reader for decrypting sops data key with age: ")
    assert "did not match any of the recipients" in message
    assert all(secret not in message for secret, _ in identities)


def test_xdg_config_home_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret, public = _new_identity()
    xdg = tmp_path / "xdg"
    (xdg / "sops" / "age").mkdir(parents=True)
    (xdg / "sops" / "age" / "keys.txt").write_text(secret + "\n")
    home_default = Path(os.environ["HOME"]) / ".config" / "sops" / "age" / "keys.txt"
    other_secret, other_public = _new_identity()
    home_default.parent.mkdir(parents=True)
    home_default.write_text(other_secret + "\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert _wrapped(public).decrypt() == b"K" * 32
    with pytest.raises(KeyFailure):
        _wrapped(other_public).decrypt()


def test_sops_age_key_holds_several_keys_per_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong, _ = _new_identity()
    right, public = _new_identity()
    key = _wrapped(public)
    monkeypatch.setenv("SOPS_AGE_KEY", f"{wrong}\n{right}")
    assert key.decrypt() == b"K" * 32
    # sops 3.13 reads every whitespace-separated word of SOPS_AGE_KEY as a key
    # (3.11 took the whole line as one malformed identity).
    monkeypatch.setenv("SOPS_AGE_KEY", f"# team keys\n{wrong} \t{right}  \n")
    assert key.decrypt() == b"K" * 32
    # only there: a key file still holds one key per line
    monkeypatch.delenv("SOPS_AGE_KEY")
    listed = tmp_path / "keys.txt"
    listed.write_text(f"{wrong} {right}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(listed))
    with pytest.raises(KeyFailure) as failed:
        key.decrypt()
    message = str(failed.value)
    assert "failed to parse 'SOPS_AGE_KEY_FILE' age identities: malformed secret key" in message
    assert wrong not in message and right not in message


def test_unknown_identity_line_fails_that_source_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret, public = _new_identity()
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{secret}\nnot-a-key\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(bad))
    monkeypatch.setenv("SOPS_AGE_KEY", secret)
    assert _wrapped(public).decrypt() == b"K" * 32
    assert age.load_identities().errors == ["failed to parse 'SOPS_AGE_KEY_FILE' age identities: unknown identity type"]


def test_key_command_runs_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret, public = _new_identity()
    counter = tmp_path / "count"
    script = tmp_path / "print-key.sh"
    script.write_text(f"#!/bin/sh\necho run >> '{counter}'\necho '{secret}'\n")
    script.chmod(0o755)
    monkeypatch.setenv("SOPS_AGE_KEY_CMD", str(script))
    keys = [_wrapped(public, bytes([i]) * 32) for i in range(5)]
    assert [k.decrypt() for k in keys] == [bytes([i]) * 32 for i in range(5)]
    assert counter.read_text().count("run") == 1


def test_failing_key_command_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    _, public = _new_identity()
    monkeypatch.setenv("SOPS_AGE_KEY_CMD", "sh -c 'exit 3'")
    with pytest.raises(KeyFailure) as failed:
        _wrapped(public).decrypt()
    assert "failed to execute command sh -c 'exit 3' from SOPS_AGE_KEY_CMD: exit status 3" in str(failed.value)
    monkeypatch.setenv("SOPS_AGE_KEY_CMD", "no-such-binary-for-sopsflow")
    with pytest.raises(KeyFailure, match='exec: "no-such-binary-for-sopsflow": executable file not found'):
        _wrapped(public).decrypt()


def test_missing_key_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, public = _new_identity()
    missing = tmp_path / "missing.txt"
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(missing))
    with pytest.raises(KeyFailure) as failed:
        _wrapped(public).decrypt()
    assert f"failed to open SOPS_AGE_KEY_FILE file: open {missing}: no such file or directory" in str(failed.value)


def test_no_identities_message_matches_sops(empty_gnupg_home: Path) -> None:
    """Our reason text for "nothing found" is the one sops 3.11 prints."""
    home = Path(os.environ["HOME"])
    entry = _first_age_entry(SPLICE_VECTOR)
    with pytest.raises(KeyFailure) as failed:
        AgeKey(entry["recipient"], entry["enc"]).decrypt()
    done = run_sops(["decrypt", str(SPLICE_VECTOR)], clean_env(home, GNUPGHOME=str(empty_gnupg_home)))
    assert done.returncode == 128
    # Undo sops' 60-column wrapping to compare the reason itself.
    stderr = done.stderr.decode()
    age_block = stderr.split(entry["recipient"] + ": FAILED\n", 1)[1].split("\n  \n", 1)[0]
    unwrapped = " ".join(
        line.strip()[2:] if line.strip().startswith("|") else line.strip()[4:] for line in age_block.splitlines()
    )
    assert unwrapped == str(failed.value)


# --------------------------------------------------------------------------
# passphrase-protected sources


def _armoured_scrypt(secret: str, passphrase: str) -> bytes:
    return age.armor(pyrage.passphrase.encrypt(secret.encode() + b"\n", passphrase)).encode()


_CHILD = """
import sys
sys.path.insert(0, {repo!r})
from sopsflow.keys.age import AgeKey
from sopsflow.keys.base import KeyFailure
try:
    print("OK", AgeKey({recipient!r}, {enc!r}).decrypt().hex())
except KeyFailure as exc:
    print("FAIL", exc)
"""


def _child_code(key: AgeKey) -> str:
    return _CHILD.format(repo=str(REPO), recipient=key.recipient, enc=key.enc)


def _run_without_tty(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
        timeout=60,
        check=True,
    )
    return done.stdout.decode()


def _run_with_tty(code: str, answer: str) -> tuple[str, str]:
    """Run ``code`` with a pseudo-terminal as its controlling terminal and answer the prompt."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        os.execve(sys.executable, [sys.executable, "-c", code], dict(os.environ))
    output = b""
    prompt = ""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if not prompt and b"Enter passphrase" in output:
                prompt = output.decode().strip()
                output = b""
                os.write(fd, answer.encode() + b"\n")
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    return prompt, output.decode()


PASSPHRASE = "correct horse"


@pytest.fixture(scope="module")
def scrypt_identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    """(secret, recipient, path) of an armoured scrypt-protected identities file.
    Made once: scrypt at age's default work factor takes seconds."""
    secret, public = _new_identity()
    path = tmp_path_factory.mktemp("scrypt") / "protected.txt"
    path.write_bytes(_armoured_scrypt(secret, PASSPHRASE))
    return secret, public, path


def test_scrypt_identity_file_without_tty_fails_clearly(
    scrypt_identity: tuple[str, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, public, protected = scrypt_identity
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(protected))
    out = _run_without_tty(_child_code(_wrapped(public)))
    assert out.startswith("FAIL failed to create reader for decrypting sops data key with age: ")
    assert "could not read passphrase: standard input is not a terminal, and /dev/tty is not available" in out
    assert secret not in out


def test_scrypt_identity_file_unlocks_through_a_terminal(
    scrypt_identity: tuple[str, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, public, protected = scrypt_identity
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(protected))
    key = _wrapped(public)
    prompt, out = _run_with_tty(_child_code(key), PASSPHRASE)
    assert prompt == "Enter passphrase for identity 'SOPS_AGE_KEY_FILE':"
    assert ("OK " + (b"K" * 32).hex()) in out
    prompt, out = _run_with_tty(_child_code(key), "wrong")
    assert "FAIL" in out and "incorrect passphrase" in out


def test_sops_prompts_for_the_same_scrypt_file(scrypt_identity: tuple[str, str, Path], tmp_path: Path) -> None:
    """The real sops accepts our armoured scrypt identities file through a terminal too."""
    _, public, protected = scrypt_identity
    key = _wrapped(public, vector_data_key(SPLICE_VECTOR))
    target = tmp_path / "spliced.enc.yaml"
    target.write_text(respliced(SPLICE_VECTOR, {"age": [key.to_dict()]}))
    env = clean_env(tmp_path, SOPS_AGE_KEY_FILE=str(protected), GNUPGHOME=str(tmp_path / "no-gnupg"))
    argv = [sops_path(), "decrypt", str(target)]
    code = f"import os; os.execve({argv[0]!r}, {argv!r}, {env!r})"
    prompt, out = _run_with_tty(code, PASSPHRASE)
    assert "Enter passphrase for identity 'SOPS_AGE_KEY_FILE':" in prompt
    assert "greeting: good morning" in out


def _encrypted_pem_rsa(path: Path, passphrase: bytes) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(65537, 2048)
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    Path(str(path) + ".pub").write_text(public.decode() + " me@host\n")
    return public.decode() + " me@host"


def test_encrypted_ssh_key_prompts_only_for_its_own_recipient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ssh_key = tmp_path / "id_rsa_protected"
    public = _encrypted_pem_rsa(ssh_key, b"ssh-pass")
    monkeypatch.setenv("SOPS_AGE_SSH_PRIVATE_KEY_FILE", str(ssh_key))
    assert public.rsplit(" ", 1)[0] in age.held_recipients()
    key = _wrapped(public)
    prompt, out = _run_with_tty(_child_code(key), "ssh-pass")
    assert prompt == f'Enter passphrase for "{ssh_key}":'
    assert ("OK " + (b"K" * 32).hex()) in out
    out = _run_without_tty(_child_code(key))
    assert f'could not read passphrase for "{ssh_key}"' in out
    # A file for someone else: no prompt at all, just "did not match".
    _, other = _new_identity()
    out = _run_without_tty(_child_code(_wrapped(other)))
    assert "did not match any of the recipients" in out and "passphrase" not in out


def test_encrypted_openssh_key_uses_embedded_public_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ssh_key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "open-sesame", "-C", "c@h", "-f", str(ssh_key)],
        check=True,
        capture_output=True,
    )
    public = (tmp_path / "id_ed25519.pub").read_text().strip()
    (tmp_path / "id_ed25519.pub").unlink()  # the public key must come from the private file itself
    monkeypatch.setenv("SOPS_AGE_SSH_PRIVATE_KEY_FILE", str(ssh_key))
    assert public.rsplit(" ", 1)[0] in age.held_recipients()
    key = _wrapped(public)
    prompt, out = _run_with_tty(_child_code(key), "open-sesame")
    assert prompt == f'Enter passphrase for "{ssh_key}":'
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        assert "install the Python package 'bcrypt'" in out
    else:
        assert ("OK " + (b"K" * 32).hex()) in out
