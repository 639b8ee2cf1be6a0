"""Benchmark: this checkout against another revision of sopsflow, on the same workloads.

A refactoring (a package move, a layering change) must not make the hook, updatekeys
or verify slower. This bench checks the other revision out into a temporary
``git worktree``, then runs each workload alternately (in ABBA order) with that revision
and with this checkout on ``PYTHONPATH``, and prints the median ratio this/other:

* hook - ``sopsflow check`` with one staged SOPS file in a 2,000-file repository;
* updatekeys - ``sopsflow updatekeys -y`` of 100 files after a recipient was added;
* verify - ``sopsflow verify`` of that 2,000-file repository.

    python bench/bench_revisions.py [--rev REV] [--repeat 15] [--json]

Without ``--rev`` the other revision is the one before the package move: the parent of
the first commit listed in ``.git-blame-ignore-revs``.

Target: every ratio at most 1.05. Alternating runs make drift and other load on the
machine hit both revisions alike; the CPU-time ratio (child user + system time) is
printed next to the wall-time ratio because it moves least with that load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_check import generate as generate_hook_repo
from bench_check import stage_one
from bench_updatekeys import build as build_updatekeys_repo
from benchlib import ENTRY_POINT, bench_environment, child_cpu

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.05


def pre_move_revision() -> str:
    """The parent of the first commit in ``.git-blame-ignore-revs`` (the package move)."""
    listed = ROOT / ".git-blame-ignore-revs"
    for line in listed.read_text().splitlines() if listed.exists() else []:
        line = line.split("#", 1)[0].strip()
        if line:
            return f"{line}^"
    raise SystemExit("no --rev given and no commit listed in .git-blame-ignore-revs")


def worktree(rev: str, where: Path) -> Path:
    """``rev`` checked out (detached) at ``where``; removed again by :func:`drop_worktree`."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(where), rev],
                   check=True, capture_output=True)
    return where


def drop_worktree(where: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)],
                   check=False, capture_output=True)


def with_checkout(env: dict[str, str], checkout: Path) -> dict[str, str]:
    """``env`` with ``checkout`` (and not this one) first on PYTHONPATH."""
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p) != ROOT]
    return {**env, "PYTHONPATH": os.pathsep.join([str(checkout), *rest])}


def run_timed(args: list[str], cwd: Path, env: dict[str, str], expect: tuple[int, ...] = (0,)) -> tuple[float, float]:
    cpu0, t0 = child_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-c", ENTRY_POINT, *args], cwd=cwd, env=env, capture_output=True)
    wall, cpu = time.perf_counter() - t0, child_cpu() - cpu0
    if done.returncode not in expect:
        raise SystemExit(f"sopsflow {' '.join(args)} exited {done.returncode} "
                         f"(PYTHONPATH={env['PYTHONPATH']}):\n{done.stderr.decode()[-2000:]}")
    return wall, cpu


def alternate(label: str, checkouts: dict[str, Path], repeat: int,
              one_run: Callable[[dict[str, str]], tuple[float, float]],
              base_env: dict[str, str]) -> dict[str, object]:
    """Median wall and CPU seconds per checkout, runs interleaved in ABBA order."""
    envs = {name: with_checkout(base_env, path) for name, path in checkouts.items()}
    for env in envs.values():  # warm-up: byte code written, page cache filled
        one_run(env)
    walls: dict[str, list[float]] = {name: [] for name in checkouts}
    cpus: dict[str, list[float]] = {name: [] for name in checkouts}
    order = list(envs)
    for round_number in range(repeat):
        # ABBA: whichever revision runs second in a pair may find caches,
        # writeback or CPU frequency left in another state by the first;
        # swapping the order every round cancels that bias.
        for name in order if round_number % 2 == 0 else order[::-1]:
            wall, cpu = one_run(envs[name])
            walls[name].append(wall)
            cpus[name].append(cpu)
    med = {name: statistics.median(v) for name, v in walls.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpus.items()}
    return {
        "workload": label,
        "wall_s": med,
        "cpu_s": med_cpu,
        "ratio_wall": med["this"] / med["other"],
        "ratio_cpu": med_cpu["this"] / med_cpu["other"] if med_cpu["other"] else None,
        "target": TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default=None,
                        help="the revision to compare this checkout with (default: before the package move)")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--files", type=int, default=2000, help="tracked files of the hook/verify repository")
    parser.add_argument("--sops", type=int, default=500, help="SOPS files among them")
    parser.add_argument("--updatekeys-files", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.rev is None:
        args.rev = pre_move_revision()

    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="sopsflow-bench-rev-") as tmp:
        work = Path(tmp)
        other = worktree(args.rev, work / "other")
        try:
            checkouts = {"other": other, "this": ROOT}

            hook_work = work / "hook"
            hook_work.mkdir()
            env = bench_environment(hook_work / "age-key.txt")
            repo = hook_work / "repo"
            sops_paths, recipient = generate_hook_repo(repo, args.files, args.sops, env)
            stage_one(repo, sops_paths[7], recipient, env)
            results.append(alternate("hook: check, 1 staged file", checkouts, args.repeat,
                                     lambda e: run_timed(["check"], repo, e), env))
            subprocess.run(["git", "reset", "-q"], cwd=repo, env=env, check=True)
            subprocess.run(["git", "checkout", "-q", "--", "."], cwd=repo, env=env, check=True)
            results.append(alternate("verify", checkouts, args.repeat,
                                     lambda e: run_timed(["verify", "--format", "json"], repo, e, (0, 1)), env))

            up_work = work / "updatekeys"
            up_work.mkdir()
            template, _files, up_env, new_config = build_updatekeys_repo(up_work, args.updatekeys_files)
            counter = iter(range(10_000))

            def updatekeys(e: dict[str, str]) -> tuple[float, float]:
                target = up_work / f"run-{next(counter):04d}"
                shutil.copytree(template, target, symlinks=True)
                (target / ".sops.yaml").write_text(new_config)
                os.sync()
                return run_timed(["updatekeys", "-y"], target, e)

            results.append(alternate(f"updatekeys, {args.updatekeys_files} files", checkouts,
                                     args.repeat, updatekeys, up_env))
        finally:
            drop_worktree(other)

    if args.json:
        print(json.dumps({"rev": args.rev, "load_average": os.getloadavg()[0], "results": results}, indent=2))
        return 0
    print(f"this checkout / {args.rev} (medians, alternating runs; {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}):")
    for r in results:
        wall, cpu = r["wall_s"], r["cpu_s"]
        assert isinstance(wall, dict) and isinstance(cpu, dict)
        print(f"  {r['workload']:<28} other {wall['other']:.3f} s  this {wall['this']:.3f} s  "
              f"ratio wall {r['ratio_wall']:.3f}  cpu {r['ratio_cpu']:.3f}  (target <= {TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
