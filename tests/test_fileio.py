"""sopsflow.fileio: atomic writes, one file at a time and many together."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sopsflow import errors, fileio
from sopsflow.gitops import updatekeys as updater


def _temps(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".sopsflow-tmp"))


def test_many_files_written_with_their_modes_kept(tmp_path: Path) -> None:
    targets = []
    for n in range(300):  # more than one group of descriptors
        path = tmp_path / f"d{n % 3}" / f"f{n}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"old")
        path.chmod(0o640 if n % 2 else 0o600)
        targets.append(path)
    new = tmp_path / "d0" / "new.yaml"  # a file that does not exist yet: private
    results = fileio.atomic_write_many([(p, f"new {p.name}".encode()) for p in [*targets, new]])
    assert results == [None] * 301
    for n, path in enumerate(targets):
        assert path.read_bytes() == f"new {path.name}".encode()
        assert stat.S_IMODE(path.stat().st_mode) == (0o640 if n % 2 else 0o600)
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    assert all(not _temps(tmp_path / f"d{n}") for n in range(3))


def test_one_failure_does_not_stop_the_others(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_bytes(b"old")
    missing_dir = tmp_path / "nowhere" / "x.yaml"
    is_dir = tmp_path / "adir"
    is_dir.mkdir()
    results = fileio.atomic_write_many([(missing_dir, b"a"), (good, b"new"), (is_dir, b"b")])
    assert results[1] is None and good.read_bytes() == b"new"
    for failed, message in ((results[0], "Could not write"), (results[2], "is a directory")):
        assert failed is not None and failed.code == errors.COULD_NOT_WRITE_OUTPUT_FILE
        assert message in failed.message
    assert is_dir.is_dir() and not _temps(tmp_path)


def test_interrupt_before_renaming_leaves_targets_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [tmp_path / f"f{n}.json" for n in range(5)]
    for p in paths:
        p.write_bytes(b"old")

    def interrupted(fds: list[int], threads: int) -> list[tuple[int, OSError]]:
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio, "_fsync_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write_many([(p, b"new") for p in paths])
    assert all(p.read_bytes() == b"old" for p in paths)
    assert not _temps(tmp_path)


def temp_of_ended_process(target: Path, plaintext: bool = False) -> Path:
    """A temp file created for ``target`` by a process that has exited since
    (what a hard kill between creating and renaming leaves)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        fd, tmp = fileio._create_temp(target, plaintext)
        os.close(fd)
        os.write(write_end, tmp.encode())
        os._exit(0)
    os.close(write_end)
    name = os.read(read_end, 4096).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    return Path(name)


def test_temp_names_match_the_stray_cleanup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill between creating and renaming leaves names updatekeys removes
    later - once their process is gone; a live writer's temp file stays."""
    target = tmp_path / "a.yaml"
    target.write_bytes(b"old")
    fd, live = fileio._create_temp(target)
    os.close(fd)
    assert stat.S_IMODE(os.stat(live).st_mode) == 0o600
    stray = temp_of_ended_process(target)
    assert updater.remove_stray_temp_files(target) == [stray]
    assert os.path.exists(live) and not stray.exists()


@pytest.mark.parametrize("threads", [1, 8])
def test_interrupt_while_renaming_leaves_each_file_old_or_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              threads: int) -> None:
    paths = [tmp_path / f"f{n}.json" for n in range(6)]
    for p in paths:
        p.write_bytes(b"old")
    real_replace = os.replace
    calls = [0]

    interrupted: list[object] = []

    def flaky(src: str, dst: object) -> None:
        calls[0] += 1
        if calls[0] == 3:
            interrupted.append(dst)
            raise KeyboardInterrupt
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(fileio.os, "replace", flaky)
    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write_many([(p, b"new") for p in paths], threads=threads)
    contents = [p.read_bytes() for p in paths]
    if threads == 1:  # one rename after the other: the rest were never started
        assert contents == [b"new", b"new"] + [b"old"] * 4
    else:  # renames overlap: those under way finish, none starts after the interrupt
        assert set(contents) <= {b"new", b"old"} and contents.count(b"new") >= 2
        assert (tmp_path / interrupted[0]).read_bytes() == b"old"  # type: ignore[operator]
    assert not _temps(tmp_path)


def test_many_file_writes_refuse_a_fifo_and_leave_it(tmp_path: Path) -> None:
    # updatekeys rewrites repository files: a FIFO among them is reported, not
    # opened (no reader would come) and not replaced.
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    good = tmp_path / "good.yaml"
    good.write_bytes(b"old")
    results = fileio.atomic_write_many([(fifo, b"a"), (good, b"new")])
    assert results[1] is None and good.read_bytes() == b"new"
    failed = results[0]
    assert failed is not None and failed.code == errors.COULD_NOT_WRITE_OUTPUT_FILE
    assert "not a regular file" in failed.message
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and not _temps(tmp_path)
