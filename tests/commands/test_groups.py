"""`sopsflow groups add|delete` checked with the real sops binary: same layout
as `sops groups`, Shamir re-split so that sops decrypts with (and only with)
enough groups. `add` leaves values/mac/lastmodified untouched; `delete`
rotates the data key (unlike sops), each value keeping its IV."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..conftest import base_env, run_sops, run_sopsflow
from ..conftest import sops_encrypted_copy as _encrypt
from ..keys.fixtures import gnupg_home  # noqa: F401 - pytest fixture
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT, GENERATED
from .test_rotate import layout

PLAIN_YAML = "a: 1\nb:\n    - x\n    # c\n    - 2.5\nc:\n    d: true\n"
PLAIN_JSON = '{"a": 1, "b": ["x", 2.5], "c": {"d": true}}'


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, object]:
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    new_file = tmp_path / "new-key.txt"
    new_file.write_text(str(identity) + "\n")
    both = tmp_path / "both-keys.txt"
    both.write_text(AGE_KEY_FILE.read_text() + "\n" + str(identity) + "\n")
    return {
        "recipient": str(identity.to_public()),
        "new": base_env(SOPS_AGE_KEY_FILE=str(new_file), HOME=str(tmp_path)),
        "both": base_env(SOPS_AGE_KEY_FILE=str(both), HOME=str(tmp_path)),
    }


def _outside_key_envelopes(text: str) -> list[str]:
    """The lines that groups must leave byte-identical: values, lastmodified, mac, options."""
    from .test_rotate import ARMOR

    text = ARMOR.sub("ARMOR", text)
    keep = []
    for line in text.splitlines():
        stripped = line.strip().strip('"')
        if stripped.startswith(("lastmodified", "mac", "version", "unencrypted_suffix")) or "ENC[" in line:
            keep.append(line.strip().rstrip(","))
    return keep


@pytest.mark.parametrize(("name", "text"), [("g.yaml", PLAIN_YAML), ("g.json", PLAIN_JSON)])
def test_add_then_delete_group(
    name: str, text: str, tmp_path: Path, age_env: dict[str, str], keys: dict[str, object]
) -> None:
    recipient = str(keys["recipient"])
    both, only_new = keys["both"], keys["new"]
    assert isinstance(both, dict) and isinstance(only_new, dict)
    enc = _encrypt(tmp_path, name, text, age_env)
    plain = run_sops(["decrypt", str(enc)], env=age_env).stdout

    ours = run_sopsflow(["groups", "add", "--file", str(enc), "--age", recipient], env=age_env)
    theirs = run_sops(["groups", "add", "--file", str(enc), "--age", recipient], env=age_env)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert layout(ours.stdout.decode()) == layout(theirs.stdout.decode())
    assert _outside_key_envelopes(ours.stdout.decode()) == _outside_key_envelopes(enc.read_text())
    added = tmp_path / ("added-" + name)
    added.write_bytes(ours.stdout)
    assert run_sops(["decrypt", str(added)], env=both).stdout == plain
    # threshold 2 of 2: one group alone is not enough any more
    assert run_sops(["decrypt", str(added)], env=age_env).returncode == 128
    assert run_sops(["decrypt", str(added)], env=only_new).returncode == 128

    # deleting a group below the threshold: refused by both, nothing written
    before = added.read_bytes()
    for tool in (run_sops, run_sopsflow):
        done = tool(["groups", "delete", "-i", "--file", str(added), "0"], env=both)
        assert done.returncode == 1, done.stderr
    assert added.read_bytes() == before

    args = ["groups", "delete", "--file", str(added), "--shamir-secret-sharing-threshold", "1", "0"]
    ours = run_sopsflow(args, env=both)
    theirs = run_sops(args, env=both)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert layout(ours.stdout.decode()) == layout(theirs.stdout.decode())
    remaining = tmp_path / ("remaining-" + name)
    remaining.write_bytes(ours.stdout)
    assert run_sops(["decrypt", str(remaining)], env=only_new).stdout == plain
    assert run_sops(["decrypt", str(remaining)], env=age_env).returncode == 128
    # delete rotated the data key: every value has new data and tag under its old IV
    assert b"the data key was rotated" in ours.stderr
    new_values, old_values = _values(remaining.read_text()), _values(enc.read_text())
    assert [iv for iv, _ in new_values] == [iv for iv, _ in old_values]
    assert all(a != b for (_, a), (_, b) in zip(new_values, old_values, strict=True))


def _values(text: str) -> list[tuple[str, str]]:
    """(iv, data and tag) of every ENC[] value, in order (not the MAC: a new one has a new IV)."""
    import re

    pattern = re.compile(r"ENC\[AES256_GCM,data:([^,]*),iv:([^,]*),tag:([^,]*),")
    return [(m.group(2), m.group(1) + m.group(3)) for line in text.splitlines()
            if not line.strip().strip('"').startswith("mac") for m in pattern.finditer(line)]


def test_in_place_and_shamir_vector(
    tmp_path: Path,
    age_env: dict[str, str],
    keys: dict[str, object],
    gnupg_home: Path,  # noqa: F811
) -> None:
    env = dict(age_env, GNUPGHOME=str(gnupg_home))
    target = tmp_path / "secrets.enc.yaml"
    shutil.copyfile(GENERATED / "shamir" / "secrets.enc.yaml", target)
    args = ["groups", "add", "-i", "--file", str(target), "--age", str(keys["recipient"])]
    done = run_sopsflow(args, env=env)
    assert done.returncode == 0 and done.stdout == b"", done.stderr
    source = str(GENERATED / "shamir" / "secrets.enc.yaml")
    theirs = run_sops(["groups", "add", "--file", source, "--age", str(keys["recipient"])], env=env)
    assert layout(target.read_text()) == layout(theirs.stdout.decode())
    assert "shamir_threshold: 2" in target.read_text()  # the file's threshold is kept
    expected = (GENERATED / "shamir" / "secrets.plain.yaml").read_bytes()
    assert run_sops(["decrypt", str(target)], env=env).stdout == expected


def test_argument_errors_match_sops(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "e.yaml", PLAIN_YAML, age_env)
    original = enc.read_bytes()
    cases = [
        (["groups", "delete", "--file", str(enc), "x"], 1),
        (["groups", "delete", "--file", str(enc), "-1"], 1),
        (["groups", "delete", "--file", str(enc), "99999999999"], 1),
        (["groups", "delete", "--file", str(enc)], 1),
        (["groups", "delete", "--file", str(enc), "0", "1"], 1),
        (["groups", "delete", "--file", str(enc), "5"], 2),
        (["groups", "add", "--file", str(enc), "--age", AGE_RECIPIENT, "extra"], 1),
        (["groups", "add", "--file", str(tmp_path / "missing.yaml"), "--age", AGE_RECIPIENT], 2),
    ]
    for args, code in cases:
        ours, theirs = run_sopsflow(args, env=age_env), run_sops(args, env=age_env)
        assert ours.returncode == theirs.returncode == code, (args, ours.stderr, theirs.stderr[:200])
        assert ours.stdout == b"" and b"Traceback" not in ours.stderr
    # no key available: sops says exit 1 (not 128) for groups
    no_key = base_env(HOME=str(tmp_path))
    args = ["groups", "add", "--file", str(enc), "--age", AGE_RECIPIENT]
    assert run_sopsflow(args, env=no_key).returncode == run_sops(args, env=no_key).returncode == 1
    assert enc.read_bytes() == original


def test_refuses_what_sops_would_write_broken(tmp_path: Path, age_env: dict[str, str]) -> None:
    # sops 3.11 exits 0 here but writes a file nobody can decrypt; we refuse.
    enc = _encrypt(tmp_path, "e.yaml", PLAIN_YAML, age_env)
    original = enc.read_bytes()
    for args in (
        ["groups", "add", "-i", "--file", str(enc)],
        ["groups", "add", "-i", "--file", str(enc), "--age", AGE_RECIPIENT, "--shamir-secret-sharing-threshold", "5"],
        ["groups", "delete", "-i", "--file", str(enc), "0"],
    ):
        done = run_sopsflow(args, env=age_env)
        assert done.returncode == 1, (args, done.stderr)
        assert enc.read_bytes() == original
