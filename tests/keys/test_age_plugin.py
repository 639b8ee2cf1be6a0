"""age plugins over the stdio protocol, with a test plugin written in Python
(tests/plugins/age-plugin-sfltest) that the pinned sops binary also drives:
what it accepts proves the plugin speaks the protocol, not only our reading."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sopsflow.keys.ageplugin import plugin_name
from sopsflow.keys.bech32 import bech32_encode

from ..conftest import REPO, base_env, run_sops, run_sopsflow
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT

PLUGIN = REPO / "tests" / "plugins" / "age-plugin-sfltest"


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test plugin on its own PATH entry, run by this interpreter."""
    directory = tmp_path_factory.mktemp("plugins")
    text = PLUGIN.read_text().split("\n", 1)[1]
    target = directory / PLUGIN.name
    target.write_text(f"#!{sys.executable}\n{text}")
    target.chmod(0o755)
    return directory


def _keypair(tmp_path: Path, name: str) -> tuple[str, Path]:
    secret = X25519PrivateKey.generate()
    recipient = bech32_encode("age1sfltest", secret.public_key().public_bytes_raw())
    path = tmp_path / f"{name}.txt"
    path.write_text(bech32_encode("AGE-PLUGIN-SFLTEST-", secret.private_bytes_raw()) + "\n")
    return recipient, path


def _env(plugin_dir: Path, keys: Path | None = None, **extra: str) -> dict[str, str]:
    env = base_env(**extra)
    env["PATH"] = f"{plugin_dir}{os.pathsep}{env.get('PATH', '')}"
    if keys is not None:
        env["SOPS_AGE_KEY_FILE"] = str(keys)
    return env


def test_names() -> None:
    assert plugin_name("age1yubikey1qwerty") == "yubikey"
    assert plugin_name("AGE-PLUGIN-YUBIKEY-1QWERTY") == "yubikey"
    assert plugin_name("age1qwerty") is None and plugin_name("AGE-SECRET-KEY-1X") is None
    assert plugin_name("age1../x1qq") is None


@pytest.mark.parametrize("writer", ["sopsflow", "sops"])
def test_encrypt_and_decrypt_both_ways(writer: str, tmp_path: Path, plugin_dir: Path) -> None:
    recipient, keys = _keypair(tmp_path, "me")
    path = tmp_path / "s.yaml"
    path.write_text("a: secret\n")
    write = run_sopsflow if writer == "sopsflow" else run_sops
    done = write(["encrypt", "-i", "--age", f"{recipient},{AGE_RECIPIENT}", str(path)], env=_env(plugin_dir))
    assert done.returncode == 0, done.stderr
    assert "-> sfltest " not in path.read_text()  # the stanza lives inside the armored enc
    for read in (run_sopsflow, run_sops):
        out = read(["decrypt", str(path)], env=_env(plugin_dir, keys))
        assert out.returncode == 0, (read, out.stderr)
        assert out.stdout == b"a: secret\n"


def test_missing_plugin_fails_cleanly(tmp_path: Path, plugin_dir: Path) -> None:
    recipient, keys = _keypair(tmp_path, "me")
    path = tmp_path / "s.yaml"
    path.write_text("a: secret\n")
    ours = run_sopsflow(["encrypt", "--age", recipient, str(path)], env=base_env())
    theirs = run_sops(["encrypt", "--age", recipient, str(path)], env=base_env())
    assert ours.returncode == theirs.returncode == 1
    assert ours.stdout == b""
    lines = ours.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and 'exec: "age-plugin-sfltest": executable file not found in $PATH' in lines[0]
    assert lines[0] == theirs.stderr.decode().strip().splitlines()[-1]
    # decrypting: the report names the binary, exit 128 as sops
    assert run_sopsflow(["encrypt", "-i", "--age", recipient, str(path)], env=_env(plugin_dir)).returncode == 0
    out = run_sopsflow(["decrypt", str(path)], env=base_env(SOPS_AGE_KEY_FILE=str(keys)))
    assert out.returncode == 128
    assert "age-plugin-sfltest" in " ".join(out.stderr.decode().replace("|", " ").split())


def test_updatekeys_starts_each_plugin_once_per_run(tmp_path: Path, plugin_dir: Path) -> None:
    old, old_keys = _keypair(tmp_path, "old")
    new, new_keys = _keypair(tmp_path, "new")
    repo = tmp_path / "repo"
    repo.mkdir()
    names = [f"s{i}.yaml" for i in range(4)]
    for name in names:
        (repo / name).write_text(f"a: {name}\n")
        done = run_sops(["encrypt", "-i", "--age", f"{old},{AGE_RECIPIENT}", name], env=_env(plugin_dir), cwd=repo)
        assert done.returncode == 0, done.stderr
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / ".sops.yaml").write_text(f"creation_rules:\n  - age: {old},{new},{AGE_RECIPIENT}\n")
    log = tmp_path / "starts.log"
    # only the old plugin identity: every file key comes from the plugin
    env = _env(plugin_dir, old_keys, SFLTEST_LOG=str(log))
    done = run_sopsflow(["updatekeys", "-y", *names], env=env, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert sorted(log.read_text().splitlines()) == ["--age-plugin=identity-v1", "--age-plugin=recipient-v1"]
    assert "rotate" not in done.stdout.decode()
    for name in names:
        out = run_sops(["decrypt", name], env=_env(plugin_dir, new_keys), cwd=repo)
        assert out.returncode == 0, out.stderr
        assert out.stdout == f"a: {name}\n".encode()
    # removing the old recipients rotates: the new one wraps four new data keys in one session
    # (wrapping runs once per plugin recipient: each has its own age file per data key)
    log.write_text("")
    (repo / ".sops.yaml").write_text(f"creation_rules:\n  - age: {new}\n")
    done = run_sopsflow(["updatekeys", "-y", *names], env=_env(plugin_dir, new_keys, SFLTEST_LOG=str(log)),
                        cwd=repo)
    assert done.returncode == 0, done.stderr
    assert sorted(log.read_text().splitlines()) == ["--age-plugin=identity-v1", "--age-plugin=recipient-v1"]
    for name in names:
        assert old not in (repo / name).read_text()
        out = run_sops(["decrypt", name], env=_env(plugin_dir, new_keys), cwd=repo)
        assert out.stdout == f"a: {name}\n".encode(), out.stderr
        denied = run_sops(["decrypt", name], env=_env(plugin_dir, old_keys), cwd=repo)
        assert denied.returncode == 128


def test_x25519_files_never_start_a_plugin(tmp_path: Path, plugin_dir: Path) -> None:
    _recipient, keys = _keypair(tmp_path, "me")
    path = tmp_path / "s.yaml"
    path.write_text("a: secret\n")
    assert run_sopsflow(["encrypt", "-i", "--age", AGE_RECIPIENT, str(path)], env=base_env()).returncode == 0
    both = tmp_path / "both.txt"
    both.write_text(keys.read_text() + AGE_KEY_FILE.read_text())
    log = tmp_path / "starts.log"
    out = run_sopsflow(["decrypt", str(path)], env=_env(plugin_dir, both, SFLTEST_LOG=str(log)))
    assert out.returncode == 0 and out.stdout == b"a: secret\n", out.stderr
    assert not log.exists()


def test_tag_recipients_wrap_without_a_plugin(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from sopsflow.keys import agefmt
    from sopsflow.keys.age import dearmor

    public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    tag = bech32_encode("age1tag", public)
    path = tmp_path / "s.yaml"
    path.write_text("a: secret\n")
    # The pinned binary wants an age-plugin-tag binary for this; pyrage wraps natively.
    done = run_sopsflow(["encrypt", "-i", "--age", f"{tag},{AGE_RECIPIENT}", str(path)], env=base_env())
    assert done.returncode == 0, done.stderr
    import yaml

    entries = {e["recipient"]: e["enc"] for e in yaml.safe_load(path.read_text())["sops"]["age"]}
    assert "p256tag" in agefmt.stanza_types(dearmor(entries[tag].encode()))
    out = run_sops(["decrypt", str(path)], env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
    assert out.returncode == 0 and out.stdout == b"a: secret\n", out.stderr
