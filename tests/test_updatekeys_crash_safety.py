"""SIGKILL during ``sopsflow updatekeys``: every file stays fully old or fully new.

A real subprocess updates 40 files (the recipient is swapped, so every file
gets a new data key and every value is re-encrypted) and is killed with
SIGKILL 20 times, alternating the target recipient: half of the kills at a
random delay after the start, half as soon as a random few files have been
renamed into place (updatekeys builds every file first and then renames them
all within milliseconds, so only watching the renames lands a kill inside
that window however slow the machine is). After each kill every file must load,
carry exactly one of the two recipient sets, decrypt with that recipient's
identity, pass its MAC and hold the original values. Stray temp files a kill
may leave are never picked up as targets and are gone after a complete run.

The random choices (delays, rename counts) come from a seed the test prints;
``SOPSFLOW_CRASH_SEED=N`` replays them.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from .conftest import REPO, base_env
from .updatefixtures import AgeId, commit_all, encrypt_with_sopsflow, git, new_age_id, write_key_file

FILES = 40
KILLS = 20


def _config(ident: AgeId) -> str:
    return f"creation_rules:\n  - path_regex: ^secrets/\n    age: {ident.recipient}\n"


def _plain(n: int) -> bytes:
    if n % 2:
        pairs = ", ".join(f'"key{i}": "value-{n}-{i}"' for i in range(40))
        return ("{" + pairs + ', "nested": {"list": [1, 2, 3], "flag": true}}').encode()
    body = "".join(f"    key{i}: value-{n}-{i}\n" for i in range(40))
    return f"# file {n}\ndata:\n{body}list:\n    - a\n    - {n}\n".encode()


def _name(n: int) -> str:
    return f"secrets/app-{n:02d}.{'json' if n % 2 else 'yaml'}"


def _spawn(root: Path, env: dict[str, str], args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "sopsflow", "updatekeys", "-y", *args], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _state(root: Path, a: AgeId, b: AgeId, keys: dict[str, Path], expected: Mapping[str, object]) -> dict[str, str]:
    """Which recipient each file is encrypted for, after proving it decrypts."""
    from sopsflow.keys.age import clear_identity_cache
    from sopsflow.operations import decrypt_document, load_metadata
    from sopsflow.stores import store_for_path

    owners = {a.recipient: a.name, b.recipient: b.name}
    state = {}
    for n in range(FILES):
        rel = _name(n)
        data = (root / rel).read_bytes()
        store = store_for_path(rel)
        _, meta = load_metadata(store, data)
        recipients = [k.identity() for g in meta.key_groups for k in g]
        assert len(recipients) == 1 and recipients[0] in owners, (rel, recipients)
        owner = owners[recipients[0]]
        os.environ["SOPS_AGE_KEY_FILE"] = str(keys[owner])
        clear_identity_cache()
        doc = decrypt_document(store, data)  # unwraps, decrypts every value, checks the MAC
        assert doc.branches == expected[rel], rel
        state[rel] = owner
    return state


def _kill_after_replaced(proc: subprocess.Popen[bytes], paths: list[Path], count: int) -> None:
    """SIGKILL as soon as ``count`` of ``paths`` have been renamed into place
    (inode changed). Counting files rather than sleeping keeps the kill inside
    the write phase however loaded the machine is."""
    inodes = {p: p.stat().st_ino for p in paths}
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        if sum(1 for p in paths if p.stat().st_ino != inodes[p]) >= count:
            break
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)


def _strays(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.endswith(".sopsflow-tmp"))


@pytest.mark.slow
def test_sigkill_leaves_every_file_old_or_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sopsflow.operations import decrypt_document
    from sopsflow.stores import store_for_path

    a, b = new_age_id("a"), new_age_id("b")
    keys = {"a": write_key_file(tmp_path / "a.txt", [a]), "b": write_key_file(tmp_path / "b.txt", [b])}
    both = write_key_file(tmp_path / "ab.txt", [a, b])
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".sops.yaml").write_text(_config(a))
    for n in range(FILES):
        encrypt_with_sopsflow(root / _name(n), _plain(n), [[a]])
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "initial")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys["a"]))
    expected = {
        _name(n): decrypt_document(store_for_path(_name(n)), (root / _name(n)).read_bytes()).branches
        for n in range(FILES)
    }
    env = base_env(SOPS_AGE_KEY_FILE=str(both), PYTHONPATH=str(REPO))

    # Calibrate: when does a complete run write its first and last file?
    (root / ".sops.yaml").write_text(_config(b))
    mtimes = {n: (root / _name(n)).stat().st_mtime_ns for n in range(FILES)}
    t0 = time.monotonic()
    proc = _spawn(root, env, [])
    first = last = None
    while proc.poll() is None:
        changed = sum(1 for n in range(FILES) if (root / _name(n)).stat().st_mtime_ns != mtimes[n])
        now = time.monotonic() - t0
        if changed and first is None:
            first = now
        if changed == FILES and last is None:
            last = now
        time.sleep(0.002)
    assert proc.returncode == 0
    total = time.monotonic() - t0
    first = first if first is not None else total * 0.5
    last = last if last is not None else total
    assert set(_state(root, a, b, keys, expected).values()) == {"b"}

    # Replay a failure with SOPSFLOW_CRASH_SEED=<the seed printed below>.
    seed = int(os.environ.get("SOPSFLOW_CRASH_SEED") or int.from_bytes(os.urandom(4), "big"))
    print(f"crash test seed: {seed} (replay: SOPSFLOW_CRASH_SEED={seed})")
    rng = random.Random(seed)
    target = a
    mixed = strays_seen = 0
    paths = [root / _name(n) for n in range(FILES)]
    for i in range(KILLS):
        (root / ".sops.yaml").write_text(_config(target))
        proc = _spawn(root, env, [] if i % 4 < 2 else ["."])  # git discovery and a directory walk
        if i % 2:
            time.sleep(rng.uniform(0.0, last + 0.05))
            proc.send_signal(signal.SIGKILL)
        else:
            _kill_after_replaced(proc, paths, rng.randint(1, 4))
        proc.wait(timeout=30)
        state = _state(root, a, b, keys, expected)
        if len(set(state.values())) == 2:
            mixed += 1
        strays_seen += len(_strays(root))
        target = b if target is a else a
    print(f"kills={KILLS} mixed_states={mixed} strays_seen={strays_seen} write_window={first:.2f}-{last:.2f}s")
    # Kills must land inside the write phase, or the test proves nothing.
    assert mixed >= 3, (f"only {mixed} of {KILLS} kills interrupted an update (write window {first:.2f}-{last:.2f}s, "
                        f"SOPSFLOW_CRASH_SEED={seed})")

    # A complete run converges, cleans stray temp files and reports success.
    (root / ".sops.yaml").write_text(_config(a))
    done = subprocess.run([sys.executable, "-m", "sopsflow", "updatekeys", "-y", "."], cwd=root, env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    # Strays left by the kills (seen: strays_seen) are not planned as files.
    assert "ERROR" not in done.stdout.decode() and "sopsflow-tmp" not in done.stdout.decode()
    assert set(_state(root, a, b, keys, expected).values()) == {"a"}
    assert _strays(root) == []
