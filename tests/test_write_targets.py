"""Writing to a target that is not a regular file.

The real sops (checked with strace) opens an existing output or in-place file
with O_CREAT|O_TRUNC and writes into it: /dev/null stays /dev/null, a FIFO's
reader gets the content, and a directory is "Could not open output file for
writing: open PATH: is a directory" with exit 3. sopsflow does the same for
every command that takes --output or -i (no temp file, no rename over a
device node), except that it opens a FIFO write-only, so it waits for the
reader instead of losing the content when nobody reads yet.

Real device nodes and real FIFOs throughout; a FIFO's other end is a thread
of the test, whose blocking opens order the exchange (nothing is timed).
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, base_env, run_sops, run_sopsflow
from .gitfixtures import sops_encrypt
from .vectors import AGE_KEY_FILE, AGE_RECIPIENT

PLAIN = "password: hunter2\nuser: admin\n"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")


def env() -> dict[str, str]:
    return base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {AGE_RECIPIENT}\n")
    (tmp_path / "plain.yaml").write_text(PLAIN)
    (tmp_path / "enc.yaml").write_bytes(sops_encrypt("enc.yaml", PLAIN))
    # Two key groups, both for the test identity: `groups delete` has one to delete.
    done = run_sops(["groups", "add", "-f", "enc.yaml", "--age", AGE_RECIPIENT], env=env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "enc2.yaml").write_bytes(done.stdout)
    (tmp_path / "editor.py").write_text("import sys\nwith open(sys.argv[1], 'a') as f:\n    f.write('extra: added\\n')\n")
    return tmp_path


#: Commands that write to --output (or the like): name -> argv with {out} for the target.
OUTPUT_COMMANDS: dict[str, list[str]] = {
    "decrypt --output": ["decrypt", "--output", "{out}", "enc.yaml"],
    "encrypt --output": ["encrypt", "--age", AGE_RECIPIENT, "--output", "{out}", "plain.yaml"],
    "rotate --output": ["rotate", "--output", "{out}", "enc.yaml"],
    "flux age-secret --output": ["flux", "age-secret", "--key-file", str(AGE_KEY_FILE), "--output", "{out}"],
    "updatekeys --report": ["updatekeys", "-y", "--report", "{out}", "enc.yaml"],
}
#: The ones the real sops has too.
SOPS_OUTPUT_COMMANDS = ["decrypt --output", "encrypt --output", "rotate --output"]


def argv(command: str, out: Path | str) -> list[str]:
    return [a.replace("{out}", str(out)) for a in OUTPUT_COMMANDS[command]]


def temp_files(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".sopsflow-tmp")]


def check_output(command: str, data: bytes) -> None:
    """The written content is what the command produces."""
    if command == "decrypt --output":
        assert yaml.safe_load(data) == {"password": "hunter2", "user": "admin"}
    elif command in ("encrypt --output", "rotate --output"):
        done = run_sops(["decrypt", "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"],
                        env=env(), input=data)
        assert done.returncode == 0, done.stderr
        assert yaml.safe_load(done.stdout) == {"password": "hunter2", "user": "admin"}
    elif command == "flux age-secret --output":
        assert yaml.safe_load(data)["kind"] == "Secret"
    else:
        assert isinstance(yaml.safe_load(data), dict)


def restore_device(path: str = "/dev/null", minor: int = 3) -> None:
    """A sopsflow that replaced /dev/null (the bug this file holds off) broke it
    for the whole machine: put the device back before failing."""
    if stat.S_ISCHR(os.lstat(path).st_mode) or os.geteuid() != 0:
        return
    os.unlink(path)
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    os.chmod(path, 0o666)


@pytest.mark.parametrize("command", list(OUTPUT_COMMANDS))
def test_dev_null_stays_a_character_device(command: str, work: Path) -> None:
    before = os.stat("/dev/null")
    try:
        done = run_sopsflow(argv(command, "/dev/null"), env=env(), cwd=work)
        after = os.lstat("/dev/null")
    finally:
        restore_device()
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert not [name for name in os.listdir("/dev") if name.startswith(".null.")]


@as_root
@pytest.mark.parametrize("command", list(OUTPUT_COMMANDS))
def test_a_device_node_in_a_directory_is_written_not_replaced(command: str, work: Path) -> None:
    node = work / "null-device"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the null device, under another name
    inode = os.stat(node).st_ino
    done = run_sopsflow(argv(command, node), env=env(), cwd=work)
    assert done.returncode == 0, done.stderr
    st = os.lstat(node)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) and st.st_ino == inode
    assert temp_files(work) == []


class FifoReader(threading.Thread):
    """Reads a FIFO to its end; ``feed``: first writes that into it (the input
    of an in-place command), then opens it again for the command's output."""

    def __init__(self, path: Path, feed: bytes | None = None) -> None:
        super().__init__(daemon=True)
        self.path, self.feed, self.data = path, feed, b""

    def run(self) -> None:
        if self.feed is not None:
            with open(self.path, "wb") as handle:
                handle.write(self.feed)
        with open(self.path, "rb") as handle:
            self.data = handle.read()


@pytest.mark.parametrize("command", list(OUTPUT_COMMANDS))
def test_a_fifo_output_reaches_its_reader(command: str, work: Path) -> None:
    fifo = work / "out.pipe"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    reader.start()
    done = run_sopsflow(argv(command, fifo), env=env(), cwd=work)
    reader.join(timeout=60)
    assert done.returncode == 0, done.stderr
    assert not reader.is_alive()
    check_output(command, reader.data)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert temp_files(work) == []


#: In-place commands: name -> (the file fed in, argv with {f}).
IN_PLACE: dict[str, tuple[str, list[str]]] = {
    "decrypt -i": ("enc.yaml", ["decrypt", "-i", "{f}"]),
    "encrypt -i": ("plain.yaml", ["encrypt", "-i", "--age", AGE_RECIPIENT, "{f}"]),
    "rotate -i": ("enc.yaml", ["rotate", "-i", "{f}"]),
    "set": ("enc.yaml", ["set", "{f}", '["password"]', '"changed"']),
    "unset": ("enc.yaml", ["unset", "{f}", '["user"]']),
    "edit": ("enc.yaml", ["edit", "{f}"]),
    "groups add -i": ("enc.yaml", ["groups", "add", "-i", "-f", "{f}", "--age", AGE_RECIPIENT]),
    "groups delete -i": ("enc2.yaml", ["groups", "delete", "-i", "-f", "{f}",
                                       "--shamir-secret-sharing-threshold", "1", "1"]),
}


@pytest.mark.parametrize("command", list(IN_PLACE))
def test_in_place_on_a_fifo_writes_back_into_it(command: str, work: Path) -> None:
    source, args = IN_PLACE[command]
    fifo = work / "secret.yaml"
    os.mkfifo(fifo)
    peer = FifoReader(fifo, (work / source).read_bytes())
    peer.start()
    editor = f"{shlex.quote(sys.executable)} {shlex.quote(str(work / 'editor.py'))}"
    done = run_sopsflow([a.replace("{f}", str(fifo)) for a in args], env=dict(env(), SOPS_EDITOR=editor), cwd=work)
    peer.join(timeout=60)
    assert done.returncode == 0, done.stderr
    assert not peer.is_alive()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert temp_files(work) == []
    if command == "decrypt -i":
        assert yaml.safe_load(peer.data) == {"password": "hunter2", "user": "admin"}
        return
    result = run_sops(["decrypt", "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"],
                      env=env(), input=peer.data)
    assert result.returncode == 0, result.stderr
    plain = yaml.safe_load(result.stdout)
    expected = {"password": "hunter2", "user": "admin"}
    if command == "set":
        expected["password"] = "changed"
    if command == "unset":
        del expected["user"]
    if command == "edit":
        expected["extra"] = "added"
    assert plain == expected


@pytest.mark.parametrize("command", list(OUTPUT_COMMANDS))
def test_a_directory_is_a_one_line_error_with_exit_3(command: str, work: Path) -> None:
    target = work / "outdir"
    target.mkdir()
    (target / "inside").write_text("kept\n")
    done = run_sopsflow(argv(command, target), env=env(), cwd=work)
    assert done.returncode == 3
    assert done.stderr.decode().strip() == f"Could not open output file for writing: open {target}: is a directory"
    assert b"Traceback" not in done.stderr
    assert sorted(os.listdir(target)) == ["inside"] and temp_files(work) == []
    if command in SOPS_OUTPUT_COMMANDS:
        oracle = run_sops(argv(command, target), env=env(), cwd=work)
        assert oracle.returncode == done.returncode
        assert oracle.stderr.decode().strip() == done.stderr.decode().strip()


@pytest.mark.parametrize("command", SOPS_OUTPUT_COMMANDS)
def test_dev_stdout_is_written_through(command: str, work: Path) -> None:
    # Captured stdout is a pipe: /dev/stdout -> /proc/self/fd/1 -> pipe:[N].
    done = run_sopsflow(argv(command, "/dev/stdout"), env=env(), cwd=work)
    assert done.returncode == 0, done.stderr
    check_output(command, done.stdout)
    oracle = run_sops(argv(command, "/dev/stdout"), env=env(), cwd=work)
    assert oracle.returncode == 0 and oracle.stdout
    if command == "decrypt --output":
        assert done.stdout == oracle.stdout


def test_dev_stdout_redirected_to_a_file_is_written_into_that_file(work: Path) -> None:
    out = work / "redirected.txt"
    with open(out, "wb") as handle:
        inode = os.fstat(handle.fileno()).st_ino
        done = subprocess.run([sys.executable, "-m", "sopsflow", "decrypt", "--output", "/dev/stdout", "enc.yaml"],
                              stdout=handle, stderr=subprocess.PIPE, cwd=work, timeout=120,
                              env=dict(env(), PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    assert os.stat(out).st_ino == inode  # the shell's file, not a new one renamed over it
    assert yaml.safe_load(out.read_text()) == {"password": "hunter2", "user": "admin"}


def test_a_failed_write_into_a_device_is_one_line_with_exit_1(work: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    try:
        done = run_sopsflow(["decrypt", "--output", "/dev/full", "enc.yaml"], env=env(), cwd=work)
    finally:
        restore_device("/dev/full", 7)
    oracle = run_sops(["decrypt", "--output", "/dev/full", "enc.yaml"], env=env(), cwd=work)
    assert done.returncode == oracle.returncode == 1
    assert done.stderr.decode().count("\n") == 1 and b"No space left on device" in done.stderr
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
