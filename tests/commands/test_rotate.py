"""`sopsflow rotate` checked with the real sops binary: sops decrypts the
result, every value keeps its IV under a new data key, the layout equals what
`sops rotate` writes, and keys are added/removed as sops does."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ..conftest import base_env, run_sops, run_sopsflow
from ..conftest import sops_encrypted_copy as _encrypt
from ..keys.fixtures import gnupg_home  # noqa: F401 - pytest fixture
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT, GENERATED

ENC = re.compile(r"ENC\[AES256_GCM,data:([^,]*),iv:([^,]*),tag:([^,]*),type:([a-z]*)\]")
ARMOR = re.compile(r"-----BEGIN (AGE ENCRYPTED FILE|PGP MESSAGE)-----.*?-----END \1-----", re.S)
STAMP = re.compile(r'((?:"|\b)(?:lastmodified|created_at|sops_lastmodified)"?\s*[:=]\s*"?)[0-9T:Z-]+')

PLAIN = {
    "r.yaml": (
        "a: 1\nb:\n    - x\n    # list comment\n    - 2.5\nc:\n    d: true\n    e: 2024-01-02T03:04:05Z\n"
        "# top comment\nplain_unencrypted: visible\nempty: ''\nnothing: null\n"
    ),
    "r.json": '{"a": 1, "b": ["x", 2.5], "c": {"d": true}, "s": ""}',
    "r.env": "A=1\n# comment\nB=two words\n",
    "r.ini": "[sec]\na = 1\nb = two\n",
    "r.bin": "binary \x01 payload\n",
}


def layout(text: str) -> str:
    """What rotate must keep: structure, IVs and types; blanked: ciphertexts,
    tags, key envelopes and time stamps (random or time-dependent)."""
    text = ARMOR.sub("ARMOR", text)
    text = re.sub(r'"enc": "[^"]*"', '"enc": "ARMOR"', text)
    text = re.sub(r"(sops_[a-z_]*__enc)=.*", r"\1=ARMOR", text)
    text = re.sub(r"(?m)^(\s*\"?(?:sops_)?mac\"?\s*[:=]\s*).*$", r"\1MAC", text)
    text = STAMP.sub(r"\1STAMP", text)
    text = ENC.sub(lambda m: f"ENC[iv:{m.group(2)},type:{m.group(4)}]", text)
    head, marker, section = text.partition("[sops]\n")
    # sops 3.11 writes the INI [sops] section in random order
    return head + marker + "\n".join(sorted(section.splitlines()))


def value_encs(text: str) -> list[tuple[str, str, str, str]]:
    found = []
    for line in text.splitlines():
        if re.match(r'^\s*"?(sops_)?mac"?\s*[:=]', line):
            continue
        found.extend(ENC.findall(line))
    return found


def data_key(path: Path, monkeypatch: pytest.MonkeyPatch, key_file: Path = AGE_KEY_FILE) -> bytes:
    from sopsflow.keys.groups import get_data_key
    from sopsflow.operations import load_metadata
    from sopsflow.stores import store_for_path

    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    _, meta = load_metadata(store_for_path(str(path)), path.read_bytes())
    return get_data_key(meta)


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_rotate_keeps_ivs_under_a_new_key(
    name: str, tmp_path: Path, age_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = _encrypt(tmp_path, name, PLAIN[name], age_env)
    # version is outside the MAC; rotate must not touch it
    old = tmp_path / ("old-" + name)
    old.write_text(enc.read_text().replace("3.11.0", "3.7.3"))
    ours = run_sopsflow(["rotate", str(old)], env=age_env)
    theirs = run_sops(["rotate", str(old)], env=age_env)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    out = tmp_path / ("out-" + name)
    out.write_bytes(ours.stdout)
    assert old.read_bytes() == enc.read_text().replace("3.11.0", "3.7.3").encode()  # stdout only
    decrypted = run_sops(["decrypt", str(out)], env=age_env)
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == run_sops(["decrypt", str(enc)], env=age_env).stdout
    assert layout(ours.stdout.decode()) == layout(theirs.stdout.decode())
    before, after = value_encs(old.read_text()), value_encs(out.read_text())
    assert before and len(before) == len(after)
    for (_, iv_a, tag_a, type_a), (_, iv_b, tag_b, type_b) in zip(before, after, strict=True):
        assert (iv_a, type_a) == (iv_b, type_b)
        assert tag_a != tag_b
    assert data_key(out, monkeypatch) != data_key(old, monkeypatch)
    assert "3.7.3" in out.read_text() and "3.11.0" not in out.read_text()


def _new_age_identity(tmp: Path) -> tuple[str, Path]:
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    key_file = tmp / "new-key.txt"
    key_file.write_text(str(identity) + "\n")
    return str(identity.to_public()), key_file


def test_add_and_remove_age_keys(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "k.yaml", PLAIN["r.yaml"], age_env)
    recipient, new_key = _new_age_identity(tmp_path)
    only_new = base_env(SOPS_AGE_KEY_FILE=str(new_key), HOME=str(tmp_path))
    only_old = age_env

    target = tmp_path / "ours.yaml"
    shutil.copyfile(enc, target)
    done = run_sopsflow(["rotate", "-i", "--add-age", recipient, str(target)], env=age_env)
    assert done.returncode == 0, done.stderr
    theirs = run_sops(["rotate", "--add-age", recipient, str(enc)], env=age_env)
    assert layout(target.read_text()) == layout(theirs.stdout.decode())
    plain = run_sops(["decrypt", str(enc)], env=age_env).stdout
    assert run_sops(["decrypt", str(target)], env=only_new).stdout == plain
    assert run_sops(["decrypt", str(target)], env=only_old).stdout == plain

    out = tmp_path / "removed.yaml"
    done = run_sopsflow(["rotate", "--rm-age", AGE_RECIPIENT, "--output", str(out), str(target)], env=only_new)
    assert done.returncode == 0, done.stderr
    assert AGE_RECIPIENT not in out.read_text() and recipient in out.read_text()
    assert run_sops(["decrypt", str(out)], env=only_new).stdout == plain
    assert run_sops(["decrypt", str(out)], env=only_old).returncode == 128

    # removing the last key: both refuse with the same exit code, nothing written
    for tool in (run_sops, run_sopsflow):
        done = tool(["rotate", "-i", "--rm-age", recipient, str(out)], env=only_new)
        assert done.returncode == 1, done.stderr
    assert run_sops(["decrypt", str(out)], env=only_new).stdout == plain


def test_shamir_groups_pgp_created_at_kept(
    tmp_path: Path,
    age_env: dict[str, str],
    gnupg_home: Path,  # noqa: F811
) -> None:
    env = dict(age_env, GNUPGHOME=str(gnupg_home))
    source = GENERATED / "shamir" / "secrets.enc.yaml"
    ours = run_sopsflow(["rotate", str(source)], env=env)
    theirs = run_sops(["rotate", str(source)], env=env)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    out = tmp_path / "secrets.enc.yaml"
    out.write_bytes(ours.stdout)
    assert layout(ours.stdout.decode()) == layout(theirs.stdout.decode())
    stamps = re.findall(r"created_at: .*", source.read_text())
    assert stamps and re.findall(r"created_at: .*", out.read_text()) == stamps
    assert "shamir_threshold: 2" in out.read_text()
    assert run_sops(["decrypt", str(out)], env=env).stdout == (GENERATED / "shamir" / "secrets.plain.yaml").read_bytes()


def test_errors_match_sops(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "e.yaml", PLAIN["r.yaml"], age_env)
    bad_mac = tmp_path / "bad.yaml"
    bad_mac.write_text(re.sub(r"(?m)^(a: ENC\[AES256_GCM,data:)[^,]*", r"\1AAAA", enc.read_text()))
    tampered_mac = tmp_path / "badmac.yaml"
    tampered_mac.write_text(re.sub(r"(?m)^(    mac: ENC\[AES256_GCM,data:)(.)", r"\1B\2", enc.read_text()))
    missing = str(tmp_path / "missing.yaml")
    bad_version = tmp_path / "badversion.yaml"
    bad_version.write_text(enc.read_text().replace("version: 3.11.0", "version: banana"))
    cases = [
        (["rotate", str(bad_version)], 1),
        (["rotate", str(bad_mac)], 25),
        (["rotate", str(tampered_mac)], 51),
        (["rotate", missing], 2),
        (["rotate", "--add-age", AGE_RECIPIENT, missing], 49),
        (["rotate", "--rm-pgp", "ABCDEF", missing], 49),
        (["rotate", "-i", "--output", str(tmp_path / "o.yaml"), str(enc)], 8),
        (["rotate"], 100),
    ]
    before = {p: p.read_bytes() for p in (enc, bad_mac, tampered_mac, bad_version)}
    for args, code in cases:
        ours, theirs = run_sopsflow(args, env=age_env), run_sops(args, env=age_env)
        assert ours.returncode == theirs.returncode == code, (args, ours.stderr, theirs.stderr)
        assert ours.stdout == b"" and b"Traceback" not in ours.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "o.yaml").exists() and not Path(missing).exists()
