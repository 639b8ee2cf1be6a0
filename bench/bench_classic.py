"""Benchmark: what the classic command line costs at start-up.

``sops -d FILE`` (sopsflow called as ``sops``) parses sops' top-level flags
and then runs the same code as ``sopsflow decrypt FILE``. The budget is at
most +2 ms, or +3 %, over ``sopsflow decrypt`` on a 100-value file: the
median of 21 runs of each, alternating, in this one process.

Each run is measured as the CPU time of the child (user + system), which
other load on the machine barely moves, and as wall time.

    python bench/bench_classic.py [--runs 21] [--values 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import child_cpu

ROOT = Path(__file__).resolve().parents[1]
AS_SOPS = "import sys; from sopsflow.main import run; sys.argv[0] = 'sops'; run()"
AS_SOPSFLOW = "import sys; from sopsflow.main import run; sys.argv[0] = 'sopsflow'; run()"


def build(directory: Path, values: int) -> tuple[Path, dict[str, str]]:
    """A YAML file of ``values`` values, encrypted for a fresh age key."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    keys = directory / "keys.txt"
    keys.write_text(f"{identity}\n")
    plain = directory / "secrets.yaml"
    plain.write_text("".join(f"key{i:03d}: value number {i}\n" for i in range(values)))
    env = dict(os.environ, SOPS_AGE_KEY_FILE=str(keys), PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", AS_SOPSFLOW, "encrypt", "-i", "--age", str(identity.to_public()),
                    str(plain)], env=env, check=True)
    return plain, env


def one_run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    cpu, wall = child_cpu(), time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return child_cpu() - cpu, time.perf_counter() - wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21, help="runs of each command (alternating)")
    parser.add_argument("--values", type=int, default=100, help="values in the file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path, env = build(Path(tmp), args.values)
        commands = {
            "sopsflow decrypt FILE": [sys.executable, "-c", AS_SOPSFLOW, "decrypt", str(path)],
            "sops -d FILE (classic)": [sys.executable, "-c", AS_SOPS, "-d", str(path)],
        }
        for command in commands.values():  # warm the page cache and the bytecode
            one_run(command, env)
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        wall: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                c, w = one_run(command, env)
                cpu[name].append(c)
                wall[name].append(w)
    base, classic = (statistics.median(cpu[name]) for name in commands)
    base_wall, classic_wall = (statistics.median(wall[name]) for name in commands)
    extra_ms = (classic - base) * 1000
    ratio = classic / base
    print(f"{args.values}-value YAML file, median of {args.runs} alternating runs (child CPU; wall in brackets)")
    for name in commands:
        print(f"  {name:<24} {statistics.median(cpu[name]) * 1000:7.1f} ms  "
              f"[{statistics.median(wall[name]) * 1000:7.1f} ms]")
    print(f"  classic / decrypt ratio  {ratio:.3f}  ({extra_ms:+.1f} ms CPU, "
          f"{(classic_wall - base_wall) * 1000:+.1f} ms wall)")
    within = extra_ms <= 2.0 or ratio <= 1.03
    print(f"  budget +2 ms or +3 %: {'met' if within else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
