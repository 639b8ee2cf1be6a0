"""Run every ``bench/bench_*.py`` in turn (whichever are present).

    python bench/run_all.py [--only core,verify] [-- ARGS passed to every script]

Each script runs in its own interpreter with this checkout on PYTHONPATH;
a failing script is reported and the others still run. The exit code is the
number of scripts that failed (0 when all ran).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(BENCH.glob("bench_*.py"))
    if only:
        wanted = {f"bench_{name.removeprefix('bench_').removesuffix('.py')}.py" for name in only}
        found = [p for p in found if p.name in wanted]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated script names (core, verify, ... or bench_core.py)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="arguments after -- go to every script")
    args = parser.parse_args(argv)
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    selected = scripts(only)
    if not selected:
        print("no bench_*.py scripts found" + (f" matching {args.only}" if only else ""), file=sys.stderr)
        return 0
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    failed = []
    for script in selected:
        print(f"=== {script.name}", flush=True)
        start = time.monotonic()
        done = subprocess.run([sys.executable, str(script), *rest], env=env, check=False)
        print(f"=== {script.name}: exit {done.returncode} after {time.monotonic() - start:.0f} s\n", flush=True)
        if done.returncode != 0:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
