"""File reading and atomic writing."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from . import errors
from .errors import SopsError


def read_input(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise SopsError(errors.NO_FILE_SPECIFIED, f"Error: cannot operate on non-existent file {path}") from None
    except IsADirectoryError:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"Error reading file {path}: is a directory") from None
    except OSError as exc:
        raise SopsError(
            errors.COULD_NOT_READ_INPUT_FILE, f"Error reading file {path}: {exc.strerror}"
        ) from None


def atomic_write(path: str | Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file,
    never a partial one: temp file in the same directory, fsync, rename.
    The existing file's permission bits are kept (0600 for a new file unless
    ``mode`` says otherwise)."""
    target = Path(path)
    fd, tmp = _write_temp(target, data, mode)
    try:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as exc:
        _discard(tmp)
        if isinstance(exc, OSError):
            raise _write_error(target, exc) from None
        raise
    _sync_directory(_parent(target))


#: Files written per group in atomic_write_many (each holds a descriptor until renamed).
_GROUP = 256


def atomic_write_many(items: list[tuple[Path, bytes]], *, threads: int = 8) -> list[SopsError | None]:
    """:func:`atomic_write` for many files, with each file's outcome (None = written).

    Same guarantee per file - a reader, or a kill at any moment, sees the old
    file or the new one - but the work is grouped: every temp file is written
    first, then all are flushed to disk together (fsync waits overlap in a few
    threads), then each is renamed over its target, and each directory is
    synced once at the end instead of once per file.
    """
    results: list[SopsError | None] = []
    for start in range(0, len(items), _GROUP):
        results.extend(_write_group(items[start:start + _GROUP], threads))
    return results


def _write_group(items: list[tuple[Path, bytes]], threads: int) -> list[SopsError | None]:
    results: list[SopsError | None] = [None] * len(items)
    directories: set[Path] = set()
    written: list[tuple[int, str]] = []  # (item index, temp path)
    open_fds: list[int] = []
    unfinished: set[str] = set()  # temp files neither renamed nor removed yet
    try:
        for index, (target, data) in enumerate(items):
            try:
                fd, tmp = _write_temp(target, data)
            except SopsError as exc:
                results[index] = exc
                continue
            open_fds.append(fd)
            unfinished.add(tmp)
            written.append((index, tmp))
        for position, error in _fsync_all(open_fds, threads):
            index = written[position][0]
            results[index] = _write_error(items[index][0], error)
        while open_fds:
            os.close(open_fds.pop())
        for index, tmp in written:
            target = items[index][0]
            if results[index] is None:
                try:
                    os.replace(tmp, target)
                    directories.add(_parent(target))
                except OSError as exc:
                    results[index] = _write_error(target, exc)
            if results[index] is not None:
                _discard(tmp)
            unfinished.discard(tmp)
    finally:  # interrupted: the files not renamed yet stay as they were
        for fd in open_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        for tmp in unfinished:
            _discard(tmp)
    for directory in directories:
        _sync_directory(directory)
    return results


def _write_temp(target: Path, data: bytes, mode: int | None = None) -> tuple[int, str]:
    """An open temp file next to ``target`` holding ``data``, with ``mode`` or
    else target's permission bits (0600 for a new file)."""
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = 0o600
        except OSError as exc:
            raise _write_error(target, exc) from None
    try:
        fd, tmp = _create_temp(target)
    except OSError as exc:
        raise _write_error(target, exc) from None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
    except BaseException as exc:
        os.close(fd)
        _discard(tmp)
        if isinstance(exc, OSError):
            raise _write_error(target, exc) from None
        raise
    return fd, tmp


def _create_temp(target: Path) -> tuple[int, str]:
    """``.NAME.XXXXXXXX.sopsflow-tmp`` next to ``target``, created exclusively
    and private (0600) - what tempfile.mkstemp does, without importing
    tempfile (and shutil, random...) on every start."""
    import binascii

    for _ in range(100):
        token = binascii.hexlify(os.urandom(4)).decode()
        tmp = os.path.join(_parent(target), f".{target.name}.{token}.sopsflow-tmp")
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(target))


def _fsync_all(fds: list[int], threads: int) -> list[tuple[int, OSError]]:
    """fsync every descriptor; (position, error) of those that failed."""
    import threading

    failed: list[tuple[int, OSError]] = []
    work = iter(enumerate(fds))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                job = next(work, None)
            if job is None:
                return
            try:
                os.fsync(job[1])
            except OSError as exc:
                with lock:
                    failed.append((job[0], exc))

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(threads, len(fds))))]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return failed


def _parent(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def _write_error(target: Path, exc: OSError) -> SopsError:
    return SopsError(errors.COULD_NOT_WRITE_OUTPUT_FILE, f"Could not write {target}: {exc.strerror}")


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _sync_directory(directory: Path) -> None:
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
