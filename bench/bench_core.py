"""Benchmark: ``sopsflow encrypt/decrypt`` against the real sops binary.

Both tools run as command lines (interpreter / process start-up included) on
the same generated files, alternately (sopsflow then sops, then sops then
sopsflow, ...) so that load changes on the machine hit both alike. Each case
prints the median wall time of both and the sopsflow/sops ratio next to its
target (``TARGETS``); the CPU-time ratio (user+sys of the child) is printed as
well because it is much less sensitive to other load on the machine.

Cases (values = leaf values of the document):

* YAML and JSON with 10,000 values, decrypt and encrypt, in two shapes:
  nested (100 mappings of 100 values, with lists) and flat (one mapping of
  10,000 keys; sops' time per value grows with the width of a mapping);
* binary files of random bytes, 10 MiB and 1 MiB, decrypt and encrypt;
* 100 values (YAML and JSON; start-up bound), 1,000 values (YAML and JSON,
  10 mappings of 100) and a 1,000-line dotenv file, decrypt and encrypt;
* rotate (a new data key, printed) of the nested 10,000-value YAML file;
* informational (no target): the 10,000-value YAML file with comments.

Decrypt cases decrypt one file written by sops; the outputs of both tools are
compared once (a difference is reported, it is not a benchmark failure).

    python bench/bench_core.py [--repeat 5] [--cases yaml-decrypt,small-encrypt] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib

ROOT = Path(__file__).resolve().parents[1]

#: sopsflow/sops wall-time targets. The 10,000-value targets apply to both
#: shapes: nested (100 mappings of 100 values) and flat (one mapping of 10,000
#: keys); sops' cost per value grows with the width of a mapping.
TARGETS = {
    "yaml-decrypt": 0.4,
    "yaml-encrypt": 0.5,
    "json-decrypt": 0.5,
    "json-encrypt": 0.4,
    "yaml-flat-decrypt": 0.4,
    "yaml-flat-encrypt": 0.5,
    "json-flat-decrypt": 0.5,
    "json-flat-encrypt": 0.4,
    "binary-decrypt": 0.2,
    "binary-encrypt": 0.4,
    "binary1m-decrypt": 0.6,
    "binary1m-encrypt": 0.8,
    "small-decrypt": 1.3,
    "small-encrypt": 1.3,
    "small-json-decrypt": 1.3,
    "small-json-encrypt": 1.3,
    "yaml1k-decrypt": 1.0,
    "yaml1k-encrypt": 1.0,
    "json1k-decrypt": 1.0,
    "json1k-encrypt": 1.0,
    "dotenv1k-decrypt": 1.3,
    "dotenv1k-encrypt": 1.3,
    "yaml-rotate": 0.6,
}
#: Which row of the performance table each case belongs to (bench/targets.py).
ROWS = {
    "100 values": ("small-decrypt", "small-encrypt", "small-json-decrypt", "small-json-encrypt"),
    "1,000 values": ("yaml1k-decrypt", "yaml1k-encrypt", "json1k-decrypt", "json1k-encrypt"),
    "dotenv, 1,000 values": ("dotenv1k-decrypt", "dotenv1k-encrypt"),
    "YAML 10,000 values, encrypt": ("yaml-encrypt", "yaml-flat-encrypt"),
    "YAML 10,000 values, decrypt": ("yaml-decrypt", "yaml-flat-decrypt"),
    "binary 1 MiB, encrypt": ("binary1m-encrypt",),
    "binary 1 MiB, decrypt": ("binary1m-decrypt",),
    "binary 10 MiB, encrypt": ("binary-encrypt",),
    "binary 10 MiB, decrypt": ("binary-decrypt",),
    "rotate, 10,000 values": ("yaml-rotate",),
}
INFO_CASES = ("yaml-comments-decrypt", "yaml-comments-encrypt")
ALL_CASES = tuple(TARGETS) + INFO_CASES


def sopsflow_command(explicit: str | None) -> list[str]:
    """The sopsflow command line: --sopsflow, else this checkout started as the
    installed script starts it (a ``sopsflow`` script on PATH may belong to
    another copy)."""
    if explicit:
        return explicit.split()
    return benchlib.sopsflow_command()


# --- generated inputs ------------------------------------------------------------------


def _scalar(rng: random.Random, i: int, j: int) -> Any:
    kind = j % 10
    if kind < 6:
        return f"secret-{i:03d}-{j:03d}-{rng.getrandbits(64):016x}"
    if kind == 6:
        return rng.randrange(1, 10**9)
    if kind == 7:
        return round(rng.uniform(0, 1000), 3)
    return bool(rng.getrandbits(1))


def make_tree(values: int, seed: int = 1) -> dict[str, Any]:
    """Sections of 100 values: 90 scalars of mixed types and 5 two-item lists."""
    rng = random.Random(seed)
    tree: dict[str, Any] = {}
    for i in range(max(1, values // 100)):
        section: dict[str, Any] = {}
        for j in range(90):
            section[f"key_{j:03d}"] = _scalar(rng, i, j)
        for j in range(5):
            section[f"list_{j}"] = [_scalar(rng, i, j), _scalar(rng, i, j + 1)]
        tree[f"section_{i:03d}"] = section
    return tree


def make_flat(values: int, seed: int = 4) -> dict[str, Any]:
    """One mapping of ``values`` keys (mixed scalar types)."""
    rng = random.Random(seed)
    return {f"key_{j:05d}": _scalar(rng, j // 100, j % 100) for j in range(values)}


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_yaml(tree: dict[str, Any], comments: bool = False) -> bytes:
    """The layout sops writes (4-space indent, lists indented under their key)."""
    lines: list[str] = []
    if comments:
        lines.append("# generated for bench_core.py")
    for name, section in tree.items():
        if not isinstance(section, dict):
            lines.append(f"{name}: {_yaml_scalar(section)}")
            continue
        if comments:
            lines.append(f"# {name}: settings of one service")
        lines.append(f"{name}:")
        for key, value in section.items():
            if isinstance(value, list):
                lines.append(f"    {key}:")
                lines.extend(f"        - {_yaml_scalar(v)}" for v in value)
            else:
                lines.append(f"    {key}: {_yaml_scalar(value)}")
    return ("\n".join(lines) + "\n").encode()


def write_inputs(work: Path) -> dict[str, Path]:
    big = make_tree(10_000)
    flat = make_flat(10_000)
    files = {
        "yaml": work / "values-10k.yaml",
        "json": work / "values-10k.json",
        "yaml-flat": work / "flat-10k.yaml",
        "json-flat": work / "flat-10k.json",
        "binary": work / "random-10MiB.bin",
        "small": work / "values-100.yaml",
        "yaml-comments": work / "values-10k-comments.yaml",
        "small-json": work / "values-100.json",
        "yaml1k": work / "values-1k.yaml",
        "json1k": work / "values-1k.json",
        "dotenv1k": work / "values-1k.env",
        "binary1m": work / "random-1MiB.bin",
    }
    files["yaml"].write_bytes(to_yaml(big))
    files["json"].write_text(json.dumps(big, indent=4) + "\n")
    files["yaml-flat"].write_bytes(to_yaml(flat))
    files["json-flat"].write_text(json.dumps(flat, indent=4) + "\n")
    files["binary"].write_bytes(random.Random(2).randbytes(10 * 1024 * 1024))
    files["small"].write_bytes(to_yaml(make_tree(100, seed=3)))
    files["yaml-comments"].write_bytes(to_yaml(big, comments=True))
    files["small-json"].write_text(json.dumps(make_tree(100, seed=3), indent=4) + "\n")
    files["yaml1k"].write_bytes(to_yaml(make_tree(1000, seed=5)))
    files["json1k"].write_text(json.dumps(make_tree(1000, seed=5), indent=4) + "\n")
    flat1k = make_flat(1000, seed=6)
    files["dotenv1k"].write_text("".join(f"{k.upper()}={_yaml_scalar(v)}\n" for k, v in flat1k.items()))
    files["binary1m"].write_bytes(random.Random(3).randbytes(1024 * 1024))
    return files


def age_identity(work: Path) -> tuple[Path, str]:
    """A throwaway age identity: (key file, recipient)."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    key_file = work / "age-key.txt"
    key_file.write_text(f"# bench only\n{identity}\n")
    return key_file, str(identity.to_public())


def compile_package() -> None:
    """Byte-compile sopsflow first, as a pip-installed package would be: with
    PYTHONDONTWRITEBYTECODE set, every changed module would otherwise be
    compiled from source on every timed run."""
    import compileall

    compileall.compile_dir(str(ROOT / "sopsflow"), quiet=1)


def environment(key_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "AWS_", "VAULT_"))}
    env.pop("GNUPGHOME", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({
        "SOPS_AGE_KEY_FILE": str(key_file),
        "SOPS_DISABLE_VERSION_CHECK": "1",
        "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    })
    return env


# --- timing --------------------------------------------------------------------------


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def run_once(cmd: list[str], env: dict[str, str], timing: Timing | None) -> bytes:
    cpu0 = benchlib.child_cpu()
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr.decode(errors='replace')}")
    if timing is not None:
        timing.wall.append(wall)
        timing.cpu.append(benchlib.child_cpu() - cpu0)
    return done.stdout


#: Runs argv[1:] in a child of a small interpreter and prints that child's peak
#: RSS (KiB). The child of a fork inherits its parent's peak across exec, so a
#: command started straight from this (large) process would report at least
#: this process's size; started from a small launcher it reports its own.
_PEAK_RSS_LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    fd = os.open(os.devnull, os.O_WRONLY)\n"
    "    os.dup2(fd, 1); os.dup2(fd, 2)\n"
    "    try:\n"
    "        os.execvp(sys.argv[1], sys.argv[1:])\n"
    "    finally:\n"
    "        os._exit(127)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def peak_rss_kib(cmd: list[str], env: dict[str, str]) -> int:
    """The peak resident set size of one run of ``cmd`` (untimed), in KiB."""
    done = subprocess.run([sys.executable, "-S", "-c", _PEAK_RSS_LAUNCHER, *cmd], env=env, capture_output=True,
                          check=True)
    code, kib = (int(x) for x in done.stdout.split())
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}")
    return kib


@dataclass
class Result:
    case: str
    flow: Timing
    sops: Timing
    target: float | None
    same_output: bool | None
    #: peak RSS of one run of each tool, KiB
    flow_rss_kib: int = 0
    sops_rss_kib: int = 0

    @property
    def ratio(self) -> float:
        return statistics.median(self.flow.wall) / statistics.median(self.sops.wall)

    @property
    def cpu_ratio(self) -> float:
        return statistics.median(self.flow.cpu) / statistics.median(self.sops.cpu)

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "sopsflow_median_s": statistics.median(self.flow.wall),
            "sops_median_s": statistics.median(self.sops.wall),
            "ratio": self.ratio,
            "cpu_ratio": self.cpu_ratio,
            "sopsflow_peak_rss_kib": self.flow_rss_kib,
            "sops_peak_rss_kib": self.sops_rss_kib,
            "target": self.target,
            "met": None if self.target is None else self.ratio <= self.target,
            "same_output": self.same_output,
        }


def alternate(flow_cmd: list[str], sops_cmd: list[str], env: dict[str, str], repeat: int) -> tuple[Timing, Timing]:
    flow, sops = Timing(), Timing()
    run_once(flow_cmd, env, None)  # warm-up: page cache, .pyc files
    run_once(sops_cmd, env, None)
    for rep in range(repeat):
        pair: list[tuple[list[str], Timing]] = [(flow_cmd, flow), (sops_cmd, sops)]
        for cmd, timing in pair if rep % 2 == 0 else reversed(pair):
            run_once(cmd, env, timing)
    return flow, sops


# --- cases -----------------------------------------------------------------------------


def case_runner(
    files: dict[str, Path], work: Path, flow: list[str], sops: str, recipient: str, env: dict[str, str]
) -> Callable[[str, int], Result]:
    encrypted: dict[str, Path] = {}

    def sops_encrypted(kind: str) -> Path:
        if kind not in encrypted:
            src = files[kind]
            out = work / ("sops-enc." + src.name)
            out.write_bytes(run_once([sops, "encrypt", "--age", recipient, str(src)], env, None))
            encrypted[kind] = out
        return encrypted[kind]

    def run(case: str, repeat: int) -> Result:
        kind, action = case.rsplit("-", 1)
        same: bool | None = None
        if action == "decrypt":
            path = str(sops_encrypted(kind))
            flow_cmd, sops_cmd = [*flow, "decrypt", path], [sops, "decrypt", path]
            same = run_once(flow_cmd, env, None) == run_once(sops_cmd, env, None)
        elif action == "rotate":
            # a new data key for every value, printed (neither tool rewrites the file)
            path = str(sops_encrypted(kind))
            flow_cmd, sops_cmd = [*flow, "rotate", path], [sops, "rotate", path]
        else:
            path = str(files[kind])
            flow_cmd = [*flow, "encrypt", "--age", recipient, path]
            sops_cmd = [sops, "encrypt", "--age", recipient, path]
        flow_t, sops_t = alternate(flow_cmd, sops_cmd, env, repeat)
        return Result(case, flow_t, sops_t, TARGETS.get(case), same,
                      peak_rss_kib(flow_cmd, env), peak_rss_kib(sops_cmd, env))

    return run


def print_table(results: list[Result], repeat: int) -> None:
    print(f"sopsflow vs sops, median of {repeat} alternating runs (wall seconds)")
    header = (f"{'case':24} {'sopsflow':>9} {'sops':>9} {'ratio':>7} {'target':>7} {'':6} {'cpu ratio':>9}"
              f"  {'peak RSS MiB (sopsflow / sops)':>30}")
    print(header)
    print("-" * len(header))
    for r in results:
        d = r.as_dict()
        target = f"{r.target:.2f}" if r.target is not None else "-"
        status = "-" if d["met"] is None else ("ok" if d["met"] else "MISS")
        note = "" if r.same_output in (None, True) else "  (outputs differ!)"
        print(
            f"{r.case:24} {d['sopsflow_median_s']:9.3f} {d['sops_median_s']:9.3f} {r.ratio:7.2f} "
            f"{target:>7} {status:6} {r.cpu_ratio:9.2f}"
            f"  {r.flow_rss_kib / 1024:19.1f} / {r.sops_rss_kib / 1024:6.1f}"
            f"{'  (above sops)' if r.flow_rss_kib > r.sops_rss_kib else ''}{note}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per tool and case (default 5)")
    parser.add_argument("--cases", default=",".join(ALL_CASES), help="comma-separated subset of: " + ", ".join(ALL_CASES))
    parser.add_argument("--sopsflow", help="sopsflow command line (default: this checkout, started like the sopsflow script)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and print where")
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown:
        parser.error("unknown case(s): " + ", ".join(unknown))
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="sopsflow-bench-core-"))
    try:
        files = write_inputs(work)
        key_file, recipient = age_identity(work)
        env = environment(key_file)
        run = case_runner(files, work, sopsflow_command(args.sopsflow), benchlib.sops_binary(), recipient, env)
        results = []
        for case in cases:
            results.append(run(case, args.repeat))
            if not args.json:
                print(f"  measured {case}", file=sys.stderr)
        if args.json:
            print(json.dumps([r.as_dict() for r in results], indent=2))
        else:
            print_table(results, args.repeat)
    finally:
        if args.keep:
            print(f"files kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
