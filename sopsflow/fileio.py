"""File reading and atomic writing."""

from __future__ import annotations

import os
import stat
import tempfile
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
    directory = target.parent if str(target.parent) else Path(".")
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = 0o600
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".sopsflow-tmp", dir=directory)
    except OSError as exc:
        raise SopsError(errors.COULD_NOT_WRITE_OUTPUT_FILE, f"Could not write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise SopsError(
                errors.COULD_NOT_WRITE_OUTPUT_FILE, f"Could not write {path}: {exc.strerror}"
            ) from None
        raise
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
