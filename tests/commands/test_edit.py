"""`sopsflow edit` with scripted editors, checked against the real sops
binary: what the editor is shown, where (0700 dir, 0600 file, base name
kept, removed afterwards), exit codes, and that untouched values keep their
exact ciphertext."""

from __future__ import annotations

import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import REPO, base_env, run_sops, run_sopsflow
from ..vectors import AGE_RECIPIENT
from .test_set_unset import normalise

EDITOR_SCRIPT = """#!/bin/sh
for last; do :; done
stat -c '%a' "$(dirname "$last")" > "$RECORD.dir"
stat -c '%a' "$last" > "$RECORD.file"
printf '%s\\n' "$last" > "$RECORD.path"
printf '[%s]\\n' "$@" > "$RECORD.args"
cp "$last" "$RECORD.content"
count=$(cat "$RECORD.count" 2>/dev/null || echo 0)
echo $((count + 1)) > "$RECORD.count"
if [ -n "$EDIT_FIRST" ] && [ "$count" = 0 ]; then printf '%s' "$EDIT_FIRST" > "$last"; exit 0; fi
if [ -n "$EDIT_SED" ]; then sed -i "$EDIT_SED" "$last"; fi
if [ -n "$EDIT_APPEND" ]; then printf '%s' "$EDIT_APPEND" >> "$last"; fi
if [ -n "$EDIT_SLEEP" ]; then exec sleep "$EDIT_SLEEP"; fi
exit 0
"""

PLAIN = "a: 1\nb:\n    - x\n    # list comment\n    - 2.5\nc:\n    d: true\n# top\nkeep_unencrypted: plain\nz: last\n"


class Editor:
    def __init__(self, tmp: Path, tag: str) -> None:
        self.script = tmp / "editor.sh"
        if not self.script.exists():
            self.script.write_text(EDITOR_SCRIPT)
            self.script.chmod(0o755)
        self.record = tmp / f"record-{tag}"

    def env(self, base: dict[str, str], **extra: str) -> dict[str, str]:
        return dict(base, EDITOR=str(self.script), RECORD=str(self.record), **extra)

    def seen(self, what: str) -> str:
        return Path(f"{self.record}.{what}").read_text()

    def seen_bytes(self) -> bytes:
        return Path(f"{self.record}.content").read_bytes()


def _encrypt(tmp: Path, name: str, text: str, env: dict[str, str]) -> Path:
    src = tmp / ("plain-" + name)
    src.write_text(text)
    done = run_sops(["encrypt", "--age", AGE_RECIPIENT, "--filename-override", name, str(src)], env=env)
    assert done.returncode == 0, done.stderr
    out = tmp / name
    out.write_bytes(done.stdout)
    return out


def _copies(tmp: Path, source: Path) -> tuple[Path, Path]:
    out = []
    for side in ("sops", "ours"):
        (tmp / side).mkdir(exist_ok=True)
        target = tmp / side / source.name
        shutil.copyfile(source, target)
        out.append(target)
    return out[0], out[1]


def test_edit_changes_one_value_and_keeps_the_rest(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "secret.yaml", PLAIN, age_env)
    # an older version field (outside the MAC) is brought up to date by edit
    enc.write_text(enc.read_text().replace("version: 3.11.0", "version: 3.7.3"))
    theirs_file, ours_file = _copies(tmp_path, enc)
    # lastmodified has whole seconds: let one pass so the edit must change it
    time.sleep(1.05)
    sed = "s/^a: 1$/a: 2/"
    ed_theirs, ed_ours = Editor(tmp_path, "sops"), Editor(tmp_path, "ours")
    theirs = run_sops(["edit", str(theirs_file)], env=ed_theirs.env(age_env, EDIT_SED=sed))
    ours = run_sopsflow(["edit", str(ours_file)], env=ed_ours.env(age_env, EDIT_SED=sed))
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    # the editor saw the same plaintext, in a private place named like the file
    assert ed_ours.seen_bytes() == ed_theirs.seen_bytes()
    assert ed_ours.seen("dir").strip() == "700" and ed_ours.seen("file").strip() == "600"
    temp_path = Path(ed_ours.seen("path").strip())
    assert temp_path.name == "secret.yaml" and temp_path.parent != ours_file.parent
    assert not temp_path.parent.exists(), "the plaintext directory must be removed"
    # only the edited value, lastmodified, mac and version changed
    before, after = enc.read_text().splitlines(), ours_file.read_text().splitlines()
    changed = [y.split(":")[0].strip() for x, y in zip(before, after, strict=True) if x != y]
    assert changed == ["a", "lastmodified", "mac", "version"]
    assert after[-1].strip() == "version: 3.11.0"
    original = set(before)
    assert normalise(ours_file.read_text(), original) == normalise(theirs_file.read_text(), original)
    decrypted = run_sops(["decrypt", str(ours_file)], env=age_env)
    assert decrypted.stdout == run_sops(["decrypt", str(theirs_file)], env=age_env).stdout
    assert decrypted.stdout.startswith(b"a: 2\n")


def test_unchanged_file_exits_200(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "s.json", '{"a": "b"}', age_env)
    theirs_file, ours_file = _copies(tmp_path, enc)
    editor = Editor(tmp_path, "x")
    theirs = run_sops(["edit", str(theirs_file)], env=editor.env(age_env))
    ours = run_sopsflow(["edit", str(ours_file)], env=editor.env(age_env))
    assert ours.returncode == theirs.returncode == 200
    assert ours.stderr.strip() == b"File has not changed, exiting."
    assert ours_file.read_bytes() == enc.read_bytes()
    assert not Path(editor.seen("path").strip()).parent.exists()


def test_editor_problems_exit_201(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "s.yaml", PLAIN, age_env)
    before = enc.read_bytes()
    for editor in ("false", str(tmp_path / "no-such-editor"), "no-such-editor-anywhere", "'unterminated"):
        env = dict(age_env, EDITOR=editor)
        ours, theirs = run_sopsflow(["edit", str(enc)], env=env), run_sops(["edit", str(enc)], env=env)
        assert ours.returncode == theirs.returncode == 201, (editor, ours.stderr, theirs.stderr)
    assert enc.read_bytes() == before


def test_sops_editor_wins_and_is_shell_split(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "s.yaml", PLAIN, age_env)
    editor = Editor(tmp_path, "split")
    env = editor.env(age_env, EDIT_SED="s/^z: last$/z: changed/")
    env["SOPS_EDITOR"] = f"sh {editor.script} 'one arg' two"
    env["EDITOR"] = "false"
    done = run_sopsflow([str(enc)], env=env)  # `sopsflow FILE` is edit, as `sops FILE`
    assert done.returncode == 0, done.stderr
    args = editor.seen("args").splitlines()
    assert args[:2] == ["[one arg]", "[two]"] and args[2].endswith("/s.yaml]")
    assert run_sops(["decrypt", str(enc)], env=age_env).stdout.endswith(b"z: changed\n")


def test_invalid_edit_without_terminal_fails_and_writes_nothing(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "s.yaml", PLAIN, age_env)
    before = enc.read_bytes()
    editor = Editor(tmp_path, "bad")
    done = run_sopsflow(["edit", str(enc)], env=editor.env(age_env, EDIT_FIRST="a: [\n"), input=b"")
    assert done.returncode == 2, done.stderr
    assert b"Traceback" not in done.stderr
    assert enc.read_bytes() == before
    assert editor.seen("count").strip() == "1"
    assert not Path(editor.seen("path").strip()).parent.exists()


def test_invalid_edit_on_a_terminal_reopens_the_editor(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "s.yaml", PLAIN, age_env)
    editor = Editor(tmp_path, "tty")
    env = editor.env(
        age_env, EDIT_FIRST="a: [\n", EDIT_SED="s/^a: \\[$/a: 1/", EDIT_APPEND="added: ok\n", PYTHONPATH=str(REPO)
    )
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sopsflow", "edit", str(enc)],
            env=env,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # Answer once the prompt is out (the editor has exited by then): read stderr up to it.
        assert proc.stderr is not None
        err = b""
        while b"Press Enter" not in err:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            err += chunk
        os.write(master, b"\n")  # "Press Enter to return to the editor"
        _, rest = proc.communicate(timeout=60)
        err += rest
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    assert b"invalid syntax" in err
    assert editor.seen("count").strip() == "2"
    # the second round starts from what the user left (the broken text)
    assert editor.seen_bytes() == b"a: [\n"
    assert b"added: ok" in run_sops(["decrypt", str(enc)], env=age_env).stdout


@pytest.mark.parametrize("name", ["new.yaml", "new.json", "new.env", "new.ini", "new.bin"])
def test_new_file_from_the_example(name: str, tmp_path: Path, age_env: dict[str, str]) -> None:
    theirs_file, ours_file = tmp_path / "sops" / name, tmp_path / "ours" / name
    theirs_file.parent.mkdir()
    ours_file.parent.mkdir()
    ed_theirs, ed_ours = Editor(tmp_path, "sops"), Editor(tmp_path, "ours")
    append = "\n" if name.endswith(".bin") else ""
    sed = "s/example_value/edited/"
    args = ["edit", "--age", AGE_RECIPIENT]
    theirs = run_sops([*args, str(theirs_file)], env=ed_theirs.env(age_env, EDIT_SED=sed, EDIT_APPEND=append))
    ours = run_sopsflow([*args, str(ours_file)], env=ed_ours.env(age_env, EDIT_SED=sed, EDIT_APPEND=append))
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ed_ours.seen_bytes() == ed_theirs.seen_bytes()
    decrypted = run_sops(["decrypt", str(ours_file)], env=age_env)
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == run_sops(["decrypt", str(theirs_file)], env=age_env).stdout

    def shape(text: str) -> str:
        text = re.sub(r"ENC\[AES256_GCM,[^\]]*type:([a-z]+)\]", r"ENC[\1]", text)
        text = re.sub(r"-----BEGIN AGE.*?-----END AGE ENCRYPTED FILE-----", "AGE", text, flags=re.S)
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", text)
        head, marker, section = text.partition("[sops]\n")
        return head + marker + "\n".join(sorted(section.splitlines()))

    assert shape(ours_file.read_text()) == shape(theirs_file.read_text())
    # unchanged new file: nothing is created
    untouched = tmp_path / "ours" / ("untouched-" + name)
    done = run_sopsflow([*args, str(untouched)], env=Editor(tmp_path, "u").env(age_env))
    assert done.returncode == 200 and not untouched.exists()


def test_new_file_needs_keys(tmp_path: Path) -> None:
    env = base_env(HOME=str(tmp_path))
    editor = Editor(tmp_path, "nokeys")
    target = tmp_path / "new.yaml"
    ours = run_sopsflow(["edit", str(target)], env=editor.env(env, EDIT_APPEND="x: 1\n"), cwd=tmp_path)
    theirs = run_sops(["edit", str(target)], env=editor.env(env, EDIT_APPEND="x: 1\n"), cwd=tmp_path)
    assert ours.returncode == theirs.returncode == 1
    assert not target.exists()
    assert not Path(f"{editor.record}.count").exists(), "no editor before the keys are known"


def test_show_master_keys(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "s.yaml", PLAIN, age_env)
    theirs_file, ours_file = _copies(tmp_path, enc)
    ed_theirs, ed_ours = Editor(tmp_path, "sops"), Editor(tmp_path, "ours")
    sed = "s/^z: last$/z: shown/"
    theirs = run_sops(["edit", "--show-master-keys", str(theirs_file)], env=ed_theirs.env(age_env, EDIT_SED=sed))
    ours = run_sopsflow(["edit", "-s", str(ours_file)], env=ed_ours.env(age_env, EDIT_SED=sed))
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ed_ours.seen_bytes() == ed_theirs.seen_bytes()
    assert b"\nsops:\n" in ed_ours.seen_bytes()
    # sops 3.11 drops edits made in this mode; sopsflow keeps them
    assert run_sops(["decrypt", str(ours_file)], env=age_env).stdout.endswith(b"z: shown\n")
    assert run_sops(["decrypt", str(theirs_file)], env=age_env).stdout.endswith(b"z: last\n")
    assert ours_file.read_text().count("\nsops:\n") == 1

    # changing the recipients in the shown metadata re-wraps the same data key
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "new-key.txt"
    key_file.write_text(str(identity) + "\n")
    swap = f"s/{AGE_RECIPIENT}/{identity.to_public()}/"
    done = run_sopsflow(["edit", "-s", str(ours_file)], env=ed_ours.env(age_env, EDIT_SED=swap))
    assert done.returncode == 0, done.stderr
    new_env = base_env(SOPS_AGE_KEY_FILE=str(key_file), HOME=str(tmp_path))
    assert run_sops(["decrypt", str(ours_file)], env=new_env).stdout.endswith(b"z: shown\n")
    assert run_sops(["decrypt", str(ours_file)], env=age_env).returncode == 128


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_removes_the_plaintext(signum: int, tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypt(tmp_path, "s.yaml", PLAIN, age_env)
    before = enc.read_bytes()
    editor = Editor(tmp_path, "sig")
    env = editor.env(age_env, EDIT_SLEEP="60", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sopsflow", "edit", str(enc)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not Path(f"{editor.record}.content").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    temp_path = Path(editor.seen("path").strip())
    assert temp_path.exists()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode not in (0, None), err
    assert b"Traceback" not in err
    assert not temp_path.parent.exists()
    assert enc.read_bytes() == before


@pytest.mark.parametrize(
    ("version", "code", "after"),
    [("banana", 1, "banana"), ("", 1, ""), ("3.12.0", 0, "3.12.0"), ("1.0", 0, "3.11.0"), ("v3.0.0-rc1", 0, "3.11.0")],
)
def test_version_rules_and_plain_file(
    version: str, code: int, after: str, tmp_path: Path, age_env: dict[str, str]
) -> None:
    enc = _encrypt(tmp_path, "v.yaml", PLAIN, age_env)
    enc.write_text(enc.read_text().replace("version: 3.11.0", f"version: {version}"))
    theirs_file, ours_file = _copies(tmp_path, enc)
    editor = Editor(tmp_path, "v")
    env = editor.env(age_env, EDIT_SED="s/^z: last$/z: other/")
    theirs = run_sops(["edit", str(theirs_file)], env=env)
    ours = run_sopsflow(["edit", str(ours_file)], env=env)
    assert ours.returncode == theirs.returncode == code, ours.stderr
    assert ours_file.read_text().rstrip().endswith(f"version: {after}".rstrip())
    assert theirs_file.read_text().rstrip().endswith(f"version: {after}".rstrip())
    plain = tmp_path / "plain.yaml"
    plain.write_text(PLAIN)
    assert run_sopsflow(["edit", str(plain)], env=env).returncode == run_sops(["edit", str(plain)], env=env).returncode
    assert plain.read_text() == PLAIN


def test_show_master_keys_on_a_new_file(tmp_path: Path, age_env: dict[str, str]) -> None:
    armor = re.compile(r"-----BEGIN AGE ENCRYPTED FILE-----.*?-----END AGE ENCRYPTED FILE-----", re.S)
    shown = []
    for side, tool in (("sops", run_sops), ("ours", run_sopsflow)):
        editor = Editor(tmp_path, side)
        target = tmp_path / f"{side}.yaml"
        done = tool(["edit", "-s", "--age", AGE_RECIPIENT, str(target)], env=editor.env(age_env, EDIT_APPEND="x: 1\n"))
        assert done.returncode == 0, done.stderr
        shown.append(armor.sub("AGE", editor.seen("content")))
        assert run_sops(["decrypt", str(target)], env=age_env).returncode == 0
    assert shown[0] == shown[1]
    assert 'lastmodified: "0001-01-01T00:00:00Z"' in shown[1]
    assert run_sops(["decrypt", str(tmp_path / "ours.yaml")], env=age_env).stdout.endswith(b"x: 1\n")
