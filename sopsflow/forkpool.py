"""``[func(x) for x in items]`` spread over this process and forked workers.

updatekeys' per-file work - parsing, unwrapping and wrapping data keys,
rendering metadata - is CPU-bound Python, which threads only serialise on the
GIL. Forked workers inherit everything already loaded (configuration, plans,
age identities: nothing is sent to them and no passphrase is asked twice)
and send back only their pickled results; this process takes a share itself.

Workers never write the user's files: the parent does, after collecting every
result, so a failing, interrupted or killed worker cannot leave a file half
done. A worker that dies or answers garbage has its items computed again in
the parent.

This module owns the two rules every worker pool of sopsflow follows
(updatekeys, verify, history):

* how many jobs: :func:`job_count` - one per CPU this process may run on, or
  what ``--jobs``/``SOPSFLOW_JOBS`` asks for, never more than the items can
  keep busy (``per_job`` items each), and 1 for small inputs;
* whether to fork at all: :func:`usable` - on Linux only, and only while this
  process runs a single thread; otherwise the items run in this process.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, TypeVar

    _T = TypeVar("_T")
    _R = TypeVar("_R")

#: Fewer items than this per worker are not worth a process.
MIN_ITEMS_PER_WORKER = 8
#: Environment override of the automatic job count (a positive integer).
JOBS_ENV = "SOPSFLOW_JOBS"


def usable() -> bool:
    """The fork-safety rule. Fork only on Linux: macOS system libraries
    (Security, CoreFoundation, the ObjC runtime) abort or deadlock in a forked
    child, and Windows has no fork. And only from a single-threaded process: a
    fork copies just the calling thread, so a lock another thread holds
    (logging, a library's) would stay locked forever in the child. Where this
    is False every pool runs its items serially here."""
    if not (sys.platform.startswith("linux") and hasattr(os, "fork")):
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() <= 1


def cpu_count() -> int:
    """CPUs this process may run on: its affinity mask (a container's or
    taskset's limit), not the machine's total."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def requested_jobs(requested: int | None = None) -> int | None:
    """An explicit job count: the flag's if positive, else ``SOPSFLOW_JOBS``'s
    if a positive integer, else None (automatic)."""
    if requested is not None and requested > 0:
        return requested
    env = os.environ.get(JOBS_ENV, "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else None


def job_count(requested: int | None, n_items: int, *, per_job: int = MIN_ITEMS_PER_WORKER) -> int:
    """The job-count rule of every pool: ``requested`` (a ``--jobs`` flag; None
    or 0 for automatic, then ``SOPSFLOW_JOBS``, then one per usable CPU),
    capped so that each job gets at least ``per_job`` of the ``n_items`` items
    (a process costs more than a few cheap items), hence never more jobs than
    items and 1 for small inputs; 1 wherever :func:`usable` says not to fork."""
    if not usable():
        return 1
    wanted = requested_jobs(requested) or cpu_count()
    return max(1, min(wanted, n_items // max(1, per_job)))


def forked_map(func: Callable[[_T], _R], items: Sequence[_T], *, jobs: int | None = 0,
               progress: Callable[[int, int], None] | None = None,
               per_job: int = MIN_ITEMS_PER_WORKER) -> list[_R]:
    """``[func(x) for x in items]``; ``func`` must catch its own errors and return
    picklable results. ``progress(done, total)`` is called as items finish.
    ``jobs`` and ``per_job`` go to :func:`job_count`."""
    workers = job_count(jobs, len(items), per_job=per_job)
    if workers <= 1:
        return in_order(func, items, progress)
    return _run(func, items, workers, progress)


def in_order(func: Callable[[_T], _R], items: Sequence[_T],
             progress: Callable[[int, int], None] | None = None) -> list[_R]:
    """``[func(x) for x in items]`` here, reporting ``progress(done, total)``."""
    out = []
    for done, item in enumerate(items, 1):
        out.append(func(item))
        if progress:
            progress(done, len(items))
    return out


def _run(func: Callable[[_T], _R], items: Sequence[_T], workers: int,
         progress: Callable[[int, int], None] | None) -> list[_R]:
    """Share 0 runs here while workers 1.. run in forked children: this process
    would otherwise only wait, and its share pays no copy-on-write faults."""
    import pickle
    import selectors

    total = len(items)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # a child must not inherit (and never print) buffered output
    tick_read, tick_write = os.pipe()
    children: dict[int, tuple[int, list[int]]] = {}  # pid -> (result fd, item indexes)
    try:
        for number in range(1, workers):
            indexes = list(range(number, total, workers))
            result_read, result_write = os.pipe()
            try:
                pid = os.fork()
            except OSError:  # no process to spare: this process does the remaining shares
                os.close(result_read)
                os.close(result_write)
                break
            if pid == 0:  # pragma: no cover - runs in the child, reported through the pipe
                os.close(result_read)
                os.close(tick_read)
                _child(func, items, indexes, result_write, tick_write)
            os.close(result_write)
            children[pid] = (result_read, indexes)
    except BaseException:
        _stop(children)
        for fd in [tick_read, tick_write, *(fd for fd, _ in children.values())]:
            os.close(fd)
        raise
    os.close(tick_write)
    os.set_blocking(tick_read, False)
    results: list[Any] = [_MISSING] * total
    chunks: dict[int, list[bytes]] = {fd: [] for fd, _ in children.values()}
    done = 0
    selector = selectors.DefaultSelector()
    try:
        for index in range(0, total, workers):
            results[index] = func(items[index])
            done += 1 + _ticks(tick_read)
            if progress:
                progress(min(done, total), total)
        os.set_blocking(tick_read, True)
        for fd in [*chunks, tick_read]:
            selector.register(fd, selectors.EVENT_READ)
        open_fds = len(chunks) + 1
        while open_fds:
            for key, _ in selector.select():
                data = os.read(key.fd, 1 << 16)
                if not data:
                    selector.unregister(key.fd)
                    open_fds -= 1
                elif key.fd == tick_read:
                    done += len(data)
                    if progress:
                        progress(min(done, total), total)
                else:
                    chunks[key.fd].append(data)
    except BaseException:
        _stop(children)
        raise
    finally:
        selector.close()
        for fd in [*chunks, tick_read]:
            os.close(fd)
    for pid, (fd, indexes) in children.items():
        _, status = os.waitpid(pid, 0)
        answer = _unpickle(pickle, b"".join(chunks[fd])) if status == 0 else None
        if isinstance(answer, list) and len(answer) == len(indexes):
            for index, value in zip(indexes, answer, strict=True):
                results[index] = value
    for index, value in enumerate(results):
        if value is _MISSING:  # that worker died: do its share here
            results[index] = func(items[index])
    return results


def _ticks(fd: int) -> int:
    """Items the workers finished since the last look (non-blocking)."""
    try:
        return len(os.read(fd, 1 << 16))
    except BlockingIOError:
        return 0


_MISSING: Any = object()


def _child(func: Callable[[Any], Any], items: Sequence[Any], indexes: list[int], result_fd: int,
           tick_fd: int) -> None:  # pragma: no cover - runs in the child
    code = 0
    try:
        import gc
        import pickle

        gc.disable()  # short-lived: collecting would only touch (and copy) shared pages
        out = []
        for index in indexes:
            out.append(func(items[index]))
            os.write(tick_fd, b".")
        payload = memoryview(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
        while payload:
            payload = payload[os.write(result_fd, payload):]
    except BaseException:  # Ctrl-C, a broken pipe, an unpicklable result: the parent redoes the work
        code = 1
    finally:
        os._exit(code)


def _unpickle(pickle: Any, data: bytes) -> Any:
    try:
        return pickle.loads(data)
    except Exception:
        return None


def _stop(children: dict[int, tuple[int, list[int]]]) -> None:
    import signal

    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
