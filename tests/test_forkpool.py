"""sopsflow.forkpool: results in order, real parallelism, a dying worker's
share redone here, progress, and the in-process fallback."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from sopsflow import forkpool

# Off Linux the pool always runs in this process; on Linux it must be usable, and a
# test process where it is not (a stray thread) fails rather than skips.
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers are used on Linux only")


@pytest.fixture(autouse=True)
def _pool_is_usable() -> None:
    assert forkpool.usable(), "on Linux the fork pool must be usable (is another thread running?)"


def test_usable_on_linux() -> None:
    assert forkpool.usable()
    assert forkpool.job_count(2, 100) == 2


def test_results_in_input_order_and_computed_in_several_processes() -> None:
    here = os.getpid()
    out = forkpool.forked_map(lambda n: (n * n, os.getpid()), list(range(40)), jobs=3)
    assert [square for square, _ in out] == [n * n for n in range(40)]
    pids = {pid for _, pid in out}
    assert here in pids and len(pids) == 3  # this process takes a share too


def test_small_inputs_stay_in_this_process() -> None:
    here = os.getpid()
    out = forkpool.forked_map(lambda n: os.getpid(), list(range(forkpool.MIN_ITEMS_PER_WORKER)), jobs=4)
    assert set(out) == {here}
    assert forkpool.job_count(1, 100) == 1
    assert forkpool.job_count(4, 100) == 4
    assert forkpool.job_count(8, 2 * forkpool.MIN_ITEMS_PER_WORKER) == 2


def test_a_dying_worker_has_its_items_done_here() -> None:
    here = os.getpid()

    def work(n: int) -> int:
        if os.getpid() != here and n == 7:
            os.kill(os.getpid(), signal.SIGKILL)  # a worker crashes mid-way
        return n + 1

    assert forkpool.forked_map(work, list(range(32)), jobs=2) == [n + 1 for n in range(32)]


def test_unpicklable_results_fall_back_to_this_process() -> None:
    here = os.getpid()
    out = forkpool.forked_map(lambda n: (lambda: n) if os.getpid() != here else n, list(range(16)), jobs=2)
    assert [o if isinstance(o, int) else o() for o in out] == list(range(16))


def test_progress_reaches_the_total() -> None:
    seen: list[tuple[int, int]] = []
    forkpool.forked_map(lambda n: n, list(range(30)), jobs=2, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (30, 30)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_workers_run_at_the_same_time(tmp_path: Path) -> None:
    """Each process announces itself, then waits until another one has: this
    only finishes in time when they run together."""

    def meet(n: int) -> bool:
        (tmp_path / f"started-{os.getpid()}").touch()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if len(list(tmp_path.glob("started-*"))) >= 2:
                return True
            time.sleep(0.005)
        return False

    assert all(forkpool.forked_map(meet, list(range(16)), jobs=2))


def test_children_do_not_print_buffered_output(capfd: pytest.CaptureFixture[str]) -> None:
    sys.stdout.write("said once")
    forkpool.forked_map(lambda n: n, list(range(32)), jobs=2)
    sys.stdout.flush()
    assert capfd.readouterr().out.count("said once") == 1


def test_a_process_running_threads_does_not_fork() -> None:
    import threading

    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, daemon=True)
    helper.start()
    try:
        assert not forkpool.usable()
        here = os.getpid()
        assert set(forkpool.forked_map(lambda n: os.getpid(), list(range(40)), jobs=2)) == {here}
    finally:
        stop.set()
        helper.join()
    assert forkpool.usable()


def test_when_fork_fails_this_process_does_every_share(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(forkpool.os, "fork", no_fork)
    assert forkpool.forked_map(lambda n: n * 3, list(range(40)), jobs=4) == [n * 3 for n in range(40)]


# --- the one job-count rule ------------------------------------------------------------


def test_job_count_defaults_to_the_cpus_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(forkpool.JOBS_ENV, raising=False)
    monkeypatch.setattr(forkpool.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(forkpool.os, "cpu_count", lambda: 64)
    assert forkpool.cpu_count() == 3
    assert forkpool.job_count(None, 1000) == 3
    assert forkpool.job_count(0, 1000) == 3  # 0 means automatic, as --jobs 0 does


def test_job_count_flag_beats_environment_and_environment_beats_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forkpool.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setenv(forkpool.JOBS_ENV, "5")
    assert forkpool.job_count(None, 1000) == 5
    assert forkpool.job_count(7, 1000) == 7
    for junk in ("0", "-3", "many", ""):
        monkeypatch.setenv(forkpool.JOBS_ENV, junk)
        assert forkpool.job_count(None, 1000) == 2  # ignored: automatic


def test_job_count_never_exceeds_what_the_items_keep_busy() -> None:
    assert forkpool.job_count(16, 3, per_job=1) == 3  # never more jobs than items
    assert forkpool.job_count(16, 0, per_job=1) == 1
    assert forkpool.job_count(16, 250, per_job=100) == 2
    assert forkpool.job_count(16, 99, per_job=100) == 1  # small inputs: this process
    assert forkpool.job_count(None, forkpool.MIN_ITEMS_PER_WORKER - 1) == 1


def test_job_count_is_one_where_fork_is_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forkpool.sys, "platform", "darwin")
    assert not forkpool.usable()
    assert forkpool.job_count(8, 10_000) == 1
    here = os.getpid()
    assert set(forkpool.forked_map(lambda n: os.getpid(), list(range(100)), jobs=4)) == {here}
