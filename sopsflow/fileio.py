"""File reading and atomic writing.

What every rewrite of a file guarantees (docs/security.md, "Files on disk"):

* atomic: a temp file next to the target, fsync, rename - a reader or a kill
  sees the old file or the new one;
* the target's permission bits, group and (where the OS lets us) owner are
  kept; a group that cannot be kept loses its permission bits, so a rewrite
  never widens access;
* a symbolic link is followed: its target is replaced and the link stays;
* a target that exists and is not a regular file (a device such as
  /dev/null, a FIFO, /dev/stdout) is opened and written as sops does - never
  replaced, no temp file; a directory is refused (exit 3, sops' message);
* a regular file with more than one hard link is refused (``break_hardlinks``
  writes a new file for the given name only);
* a file read for rewriting (``read_input(..., for_rewrite=True)``) that
  changed on disk before the rename - size, mtime, inode or content - is left
  as it is (:class:`FileChangedError`), whoever changed it;
* sopsflow's own writers serialise that last check and the rename with
  ``flock`` on ``sopsflow.lock`` in the git directory (outside a repository:
  on the target's directory), so between them no update is ever lost;
* temp files are ``.NAME.HOST.pPID.RANDOM.sopsflow-tmp`` (``...RANDOM.plaintext.sopsflow-tmp``
  when they hold plaintext), so that cleanup - after each single-file write,
  and by ``updatekeys`` - only removes those whose process is gone.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from . import errors
from .errors import SopsError

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from .records import NamedTuple

#: The suffix of every temp file a write creates; ``*.sopsflow-tmp`` belongs in .gitignore.
TEMP_SUFFIX = ".sopsflow-tmp"
#: Marks a temp file that holds plaintext (``decrypt -i``, ``decrypt --output``).
PLAINTEXT_MARK = ".plaintext"
#: The lock file sopsflow's writers share, in the git directory.
LOCK_NAME = "sopsflow.lock"


class FileChangedError(SopsError):
    """The file changed on disk after it was read: the write was not done."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(
            errors.GENERIC,
            f"{path} changed on disk while sopsflow was working on it (another writer?); "
            "left it as it is: run the command again",
        )


class Snapshot(NamedTuple):
    """What a file was when it was read: compared before it is replaced."""

    size: int
    mtime_ns: int
    inode: int
    device: int
    sha256: bytes

    @classmethod
    def of(cls, st: os.stat_result, data: bytes) -> Snapshot:
        import hashlib

        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, hashlib.sha256(data).digest())


#: Files read for rewriting in this process: real path -> (stat, content).
#: The content is only hashed if the file is written (reads stay hashlib-free).
_read_for_rewrite: dict[str, tuple[os.stat_result, bytes]] = {}


def read_input(path: str, *, for_rewrite: bool = False) -> bytes:
    try:
        return read_bytes(path, for_rewrite=for_rewrite)
    except FileNotFoundError:
        if not os.path.isabs(path) and errors.working_directory_gone():
            raise errors.getwd_error() from None
        raise SopsError(errors.NO_FILE_SPECIFIED, f"Error: cannot operate on non-existent file {path}") from None
    except IsADirectoryError:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"Error reading file {path}: is a directory") from None
    except OSError as exc:
        raise SopsError(
            errors.COULD_NOT_READ_INPUT_FILE, f"Error reading file {path}: {exc.strerror}"
        ) from None


def read_bytes(path: str | Path, *, for_rewrite: bool = False) -> bytes:
    """The file's content (OSError as raised). ``for_rewrite``: remember what
    was read, so that :func:`atomic_write` to the same file refuses to replace
    it if it changed in the meantime."""
    with open(path, "rb") as handle:
        data = handle.read()
        if for_rewrite:
            _read_for_rewrite[os.path.realpath(path)] = (os.fstat(handle.fileno()), data)
    return data


def snapshot(path: str | Path) -> tuple[bytes, Snapshot]:
    """The file's content and its :class:`Snapshot` (OSError as raised)."""
    with open(path, "rb") as handle:
        data = handle.read()
        st = os.fstat(handle.fileno())
    return data, Snapshot.of(st, data)


def changed_since(path: str | Path, seen: Snapshot) -> bool:
    """Whether the file at ``path`` is no longer what ``seen`` recorded: gone,
    another size, mtime or inode, or other content."""
    try:
        st = os.stat(path)
        if (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev) != seen[:4]:
            return True
        # The same size and mtime can hide a change (a coarse clock, an
        # in-place writer restoring the mtime): compare the content too.
        _, now = snapshot(path)
    except OSError:
        return True
    return now.sha256 != seen.sha256


def rewrite_target(path: str | Path, break_hardlinks: bool = False) -> tuple[Path, os.stat_result | None]:
    """The file a write to ``path`` replaces, and its stat (None: a new file).
    A symbolic link to a regular file resolves to its target; one to anything
    else (/dev/stdout -> /proc/self/fd/1 -> a pipe) stays as given, for the
    kernel to follow when it is opened. A directory is refused; a regular file
    with more than one hard link is refused unless ``break_hardlinks``."""
    given = Path(path)
    try:
        st = os.lstat(given)
    except FileNotFoundError:
        return given, None
    except OSError as exc:
        raise _write_error(given, exc) from None
    target = given
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(given)
        except FileNotFoundError:
            return Path(os.path.realpath(given)), None  # a dangling link: its target is created
        except OSError as exc:
            raise _write_error(given, exc) from None
        if stat.S_ISREG(st.st_mode) and not _is_handle(given):
            target = Path(os.path.realpath(given))
    if stat.S_ISDIR(st.st_mode):
        raise SopsError(errors.COULD_NOT_WRITE_OUTPUT_FILE,
                        f"Could not open output file for writing: open {given}: is a directory")
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and not break_hardlinks and not _is_handle(given):
        raise SopsError(
            errors.COULD_NOT_WRITE_OUTPUT_FILE,
            f"{given} has {st.st_nlink} hard links; refusing to break them "
            "(--break-hardlinks writes a new file for this name only)",
        )
    return target, st


def _is_handle(path: Path) -> bool:
    """/dev/stdout, /dev/stderr, /dev/fd/N and /proc/... name an open file of
    some process: writing to them must reach that file - even a regular one a
    shell redirected stdout to - not replace it."""
    name = os.path.abspath(path)
    return name in ("/dev/stdout", "/dev/stderr") or name.startswith(("/dev/fd/", "/proc/"))


def _write_all(fd: int, data: bytes | Sequence[bytes]) -> None:
    """Write ``data``, or each of its pieces in turn (a large output left in
    pieces is not joined into one more copy first)."""
    for piece in (data,) if isinstance(data, bytes) else data:
        view = memoryview(piece)
        while view:
            view = view[os.write(fd, view):]


def _write_into(target: Path, data: bytes | Sequence[bytes]) -> None:
    """Write ``data`` into an existing file that is not a regular one (a
    device, a FIFO): there is nothing to rename over - replacing /dev/null
    would turn it into a file - so it is opened and written, as sops does.
    Opened write-only without O_CREAT: a FIFO waits for its reader (sops opens
    it read-write and loses the data when no one reads yet) and a node that
    vanished is not recreated as a regular file."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _write_error(target, exc) from None
    try:
        _write_all(fd, data)
    except OSError as exc:
        # Opened but the write failed (/dev/full): sops' exit code for that is 1.
        raise SopsError(errors.GENERIC, f"Could not write {target}: {exc.strerror}") from None
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes | Sequence[bytes], mode: int | None = None, *, plaintext: bool = False,
                 break_hardlinks: bool = False, expect: Snapshot | None = None) -> None:
    """Write ``data`` to ``path`` with the guarantees of this module: temp file
    in the target's directory, fsync, checks, rename. The existing file's mode,
    group and owner are kept (0600 for a new file unless ``mode`` says
    otherwise). ``expect``: what the file must still be (default: what
    ``read_input(..., for_rewrite=True)`` read, if it read this file).
    ``data`` may be a sequence of pieces, written one after the other."""
    target, st = rewrite_target(path, break_hardlinks)
    read = _read_for_rewrite.pop(os.path.realpath(target), None)
    if st is not None and (not stat.S_ISREG(st.st_mode) or _is_handle(target)):
        _write_into(target, data)
        return
    if expect is None and read is not None:
        expect = Snapshot.of(*read)
    fd, tmp = _write_temp(target, data, mode, st, plaintext)
    try:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with WriteLock([target]):
            if expect is not None and changed_since(target, expect):
                raise FileChangedError(path)
            os.replace(tmp, target)
    except BaseException as exc:
        _discard(tmp)
        if isinstance(exc, OSError):
            raise _write_error(target, exc) from None
        raise
    _sync_directory(_parent(target))
    # What an earlier, killed write of this file left (a `decrypt -i` leaves plaintext).
    remove_stray_temp_files([target])


#: Files written per group in atomic_write_many (each holds a descriptor until renamed).
_GROUP = 256
#: Threads per phase of atomic_write_many, measured on ext4 (100 files in one
#: directory, 2 CPUs; quiet disk / another process writing and fsyncing):
#: fsyncs overlap well (1 thread 21 / 211 ms, 8 threads 8 / 30 ms); renames
#: into one directory take its lock in turn, so threads barely help and cost
#: CPU (1 thread 18 / 120 ms, 4 threads 15 / 100 ms, 8 threads 17 / 150 ms);
#: creations gain nothing and threads only contend (1 thread 5 ms, 8 threads
#: 18 ms and 4x the CPU), so they run one after the other.
_FSYNC_THREADS = 8
_RENAME_THREADS = 4


def atomic_write_many(items: list[tuple[Path, bytes]], *, threads: int = _FSYNC_THREADS,
                      expect: Sequence[Snapshot | None] | None = None,
                      break_hardlinks: bool = False) -> list[SopsError | None]:
    """:func:`atomic_write` for many files, with each file's outcome (None = written).

    Same guarantees per file - a reader, or a kill at any moment, sees the old
    file or the new one; ``expect[i]`` is what file i must still be - but the
    work is grouped: every temp file is written first, then all are flushed to
    disk together, then each is checked and renamed over its target under one
    lock (the flushes in up to ``threads`` threads, whose waits on the disk
    overlap, the renames in up to ``_RENAME_THREADS`` of them), and each
    directory is synced once at the end instead of once per file.
    """
    expected: list[Snapshot | None] = list(expect) if expect is not None else [None] * len(items)
    results: list[SopsError | None] = []
    for start in range(0, len(items), _GROUP):
        results.extend(_write_group(items[start:start + _GROUP], expected[start:start + _GROUP], threads,
                                    break_hardlinks))
    return results


def _write_group(items: list[tuple[Path, bytes]], expected: list[Snapshot | None], threads: int,
                 break_hardlinks: bool) -> list[SopsError | None]:
    results: list[SopsError | None] = [None] * len(items)
    targets: list[Path] = [path for path, _ in items]
    directories: set[Path] = set()
    written: list[tuple[int, str]] = []  # (item index, temp path)
    open_fds: list[int] = []
    unfinished: set[str] = set()  # temp files neither renamed nor removed yet
    created: list[tuple[int, int, str] | None] = [None] * len(items)  # (index, fd, temp path)

    def create(index: int) -> None:
        given, data = items[index]
        try:
            target, st = rewrite_target(given, break_hardlinks)
            targets[index] = target
            if st is not None and not stat.S_ISREG(st.st_mode):
                # Many-file writes are for repository files: never a device or FIFO.
                raise SopsError(errors.COULD_NOT_WRITE_OUTPUT_FILE, f"{given} is not a regular file: not written")
            fd, tmp = _write_temp(target, data, None, st)
        except SopsError as exc:
            results[index] = exc
            return
        created[index] = (index, fd, tmp)

    try:
        try:
            for index in range(len(items)):  # in threads they only contend (see _FSYNC_THREADS)
                create(index)
        finally:  # interrupted: every temp file created so far is cleaned up below
            for entry in created:
                if entry is not None:
                    open_fds.append(entry[1])
                    unfinished.add(entry[2])
                    written.append((entry[0], entry[2]))
        for position, error in _fsync_all(open_fds, threads):
            index = written[position][0]
            results[index] = _write_error(items[index][0], error)
        while open_fds:
            os.close(open_fds.pop())

        def replace(position: int) -> None:
            index, tmp = written[position]
            target = targets[index]
            seen = expected[index]
            if results[index] is None and seen is not None and changed_since(target, seen):
                results[index] = FileChangedError(items[index][0])
            if results[index] is None:
                try:
                    os.replace(tmp, target)
                    directories.add(_parent(target))
                except OSError as exc:
                    results[index] = _write_error(target, exc)
            if results[index] is not None:
                _discard(tmp)
            unfinished.discard(tmp)

        with WriteLock(targets[index] for index, _ in written):
            # Each file is checked and renamed on its own, so the renames may
            # overlap: a rename over an existing file can wait on the file
            # system's journal (freeing the old inode); a few threads overlap
            # those waits, more only contend for the directory's lock.
            _in_threads(replace, len(written), min(threads, _RENAME_THREADS))
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


def _write_temp(target: Path, data: bytes | Sequence[bytes], mode: int | None = None,
                st: os.stat_result | None = None,
                plaintext: bool = False) -> tuple[int, str]:
    """An open temp file next to ``target`` holding ``data``, with ``mode`` or
    else target's permission bits (0600 for a new file), and target's owner
    and group as far as permitted. ``st``: target's stat (None: new file)."""
    try:
        fd, tmp = _create_temp(target, plaintext)
    except OSError as exc:
        raise _write_error(target, exc) from None
    try:
        _write_all(fd, data)
        if st is not None:
            if not _keep_owner(fd, st) and mode is None:
                # The group could not be kept: give its access to no one else.
                mode = stat.S_IMODE(st.st_mode) & ~0o070
            if mode is None:
                mode = stat.S_IMODE(st.st_mode)
        # After the chown, which may clear set-id bits.
        os.fchmod(fd, 0o600 if mode is None else mode)
    except BaseException as exc:
        os.close(fd)
        _discard(tmp)
        if isinstance(exc, OSError):
            raise _write_error(target, exc) from None
        raise
    return fd, tmp


def _keep_owner(fd: int, st: os.stat_result) -> bool:
    """Give the temp file target's owner and group; the owner only where the
    OS permits (root, or our own file). False when the group could not be kept.
    Any refusal (EPERM; a file system without owners) is an answer, not an error."""
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
        return True
    except OSError:
        pass
    try:
        os.fchown(fd, -1, st.st_gid)
    except OSError:
        return os.fstat(fd).st_gid == st.st_gid
    return True


# --- temp file names -----------------------------------------------------------------


class TempName(NamedTuple):
    """A parsed temp file name: whose file, which process, what it holds."""

    owner: str  # the name of the file it was to replace
    host: str | None  # None: an older name without host and pid
    pid: int | None
    plaintext: bool


def is_temp_file(name: str) -> bool:
    """Whether ``name`` (a base name) is a sopsflow temp file of any kind."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX) and len(name) > len(TEMP_SUFFIX) + 1


def parse_temp_name(name: str) -> TempName | None:
    if not is_temp_file(name):
        return None
    stem = name[1:-len(TEMP_SUFFIX)]
    plaintext = stem.endswith(PLAINTEXT_MARK)
    if plaintext:
        stem = stem[:-len(PLAINTEXT_MARK)]
    parts = stem.rsplit(".", 3)
    if len(parts) == 4 and _is_random(parts[3]) and parts[2][:1] == "p" and parts[2][1:].isdigit() \
            and parts[1] and _host_part(parts[1]) == parts[1] and parts[0]:
        return TempName(parts[0], parts[1], int(parts[2][1:]), plaintext)
    legacy = stem.rsplit(".", 1)
    if not plaintext and len(legacy) == 2 and legacy[0] and _is_random(legacy[1]):
        return TempName(legacy[0], None, None, False)
    return None


def temp_process_gone(temp: TempName) -> bool:
    """Whether the process that created ``temp`` has ended, so that the file
    is a stray. Unknown (another host, or no permission to ask) counts as
    alive; a name without host and pid (older sopsflow) counts as gone."""
    if temp.host is None or temp.pid is None:
        return True
    if temp.host != _host_part(os.uname().nodename) or temp.pid == os.getpid():
        return False
    try:
        os.kill(temp.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def remove_stray_temp_files(paths: Iterable[Path]) -> list[Path]:
    """Delete the temp files (``.NAME.HOST.pPID.XXXXXXXX[.plaintext].sopsflow-tmp``)
    next to each of ``paths`` whose process is gone - a kill left them (each
    directory is listed once). Those of a live process, or of another host,
    are another writer's work in progress and stay."""
    by_dir: dict[Path, set[str]] = {}
    for path in paths:
        by_dir.setdefault(_parent(path), set()).add(path.name)
    removed: list[Path] = []
    for directory, names in by_dir.items():
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            temp = parse_temp_name(entry)
            if temp is None or temp.owner not in names or not temp_process_gone(temp):
                continue
            stray = directory / entry
            try:
                if stat.S_ISREG(os.lstat(stray).st_mode):
                    os.unlink(stray)
                    removed.append(stray)
            except OSError:
                pass
    return removed


def _is_random(text: str) -> bool:
    return len(text) == 8 and all(c in "0123456789abcdef" for c in text)


def _host_part(host: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in host)[:40] or "host"


def _create_temp(target: Path, plaintext: bool = False) -> tuple[int, str]:
    """``.NAME.HOST.pPID.XXXXXXXX[.plaintext].sopsflow-tmp`` next to
    ``target``, created exclusively and private (0600) - what
    tempfile.mkstemp does, without importing tempfile (and shutil, random...)
    on every start."""
    import binascii

    prefix = f".{target.name}.{_host_part(os.uname().nodename)}.p{os.getpid()}."
    suffix = (PLAINTEXT_MARK if plaintext else "") + TEMP_SUFFIX
    for _ in range(100):
        token = binascii.hexlify(os.urandom(4)).decode()
        tmp = os.path.join(_parent(target), prefix + token + suffix)
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(target))


# --- the write lock --------------------------------------------------------------------


class WriteLock:
    """``flock`` held by sopsflow's writers while they check a file and rename
    over it: on ``sopsflow.lock`` in the git directory of each file's
    repository, or - outside a repository - on the file's directory itself. Locks are taken in sorted order,
    so two writers never wait on each other in a cycle. A lock file that
    cannot be opened (a read-only git directory) is skipped: the change
    check still runs."""

    def __init__(self, targets: Iterable[Path]) -> None:
        self._paths = sorted({_lock_path(_parent(Path(t))) for t in targets})
        self._fds: list[int] = []

    def __enter__(self) -> WriteLock:
        if not self._paths:
            return self
        import fcntl

        try:
            for path in self._paths:
                fd = _open_lock(path)
                if fd is None:
                    continue
                self._fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        while self._fds:
            os.close(self._fds.pop())  # closing releases the flock


def _lock_path(directory: Path) -> str:
    """The lock for files in ``directory``: the git directory's lock file, else the directory."""
    current = os.path.abspath(directory)
    while True:
        dotgit = os.path.join(current, ".git")
        if os.path.isdir(dotgit):
            return os.path.join(dotgit, LOCK_NAME)
        if os.path.isfile(dotgit):  # a worktree or submodule: "gitdir: PATH"
            try:
                with open(dotgit, encoding="utf-8") as handle:
                    line = handle.readline().strip()
            except (OSError, UnicodeDecodeError):
                line = ""
            if line.startswith("gitdir:"):
                return os.path.join(current, line[len("gitdir:"):].strip(), LOCK_NAME)
        parent = os.path.dirname(current)
        if parent == current:
            return os.path.abspath(directory)
        current = parent


def _open_lock(path: str) -> int | None:
    """A descriptor to flock: the lock file (created if need be) or the
    directory; None when it cannot be opened (a read-only git directory)."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    try:
        if os.path.basename(path) == LOCK_NAME:
            return os.open(path, flags | os.O_CREAT, 0o644)
        return os.open(path, flags)
    except OSError:
        return None


def _fsync_all(fds: list[int], threads: int) -> list[tuple[int, OSError]]:
    """fsync every descriptor; (position, error) of those that failed."""
    failed: list[tuple[int, OSError]] = []

    def sync(position: int) -> None:
        try:
            os.fsync(fds[position])
        except OSError as exc:
            failed.append((position, exc))

    _in_threads(sync, len(fds), threads)
    return failed


def _in_threads(job: Callable[[int], None], count: int, threads: int) -> None:
    """``job(0) .. job(count - 1)`` in up to ``threads`` threads (here alone
    for a single job or thread): for system calls that mostly wait on the
    disk, which release the GIL. Once a job raises, or this thread is
    interrupted, no further job starts; the ones under way finish, then the
    first exception is raised here."""
    if count <= 1 or threads <= 1:
        for position in range(count):
            job(position)
        return
    import threading

    work = iter(range(count))
    lock = threading.Lock()
    raised: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                position = None if raised else next(work, None)
            if position is None:
                return
            try:
                job(position)
            except BaseException as exc:  # re-raised in the calling thread
                with lock:
                    raised.append(exc)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(min(threads, count))]
    for thread in pool:
        thread.start()
    try:
        for thread in pool:
            thread.join()
    except BaseException as exc:  # Ctrl-C while waiting: let the jobs under way finish
        with lock:
            raised.insert(0, exc)
        for thread in pool:
            thread.join()
    if raised:
        raise raised[0]


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
