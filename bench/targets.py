"""The performance table: every row with its measured sopsflow/sops ratio, its
target and the machine's load (what ``make bench`` prints).

    python bench/targets.py [--repeat 5] [--only core,updatekeys,check] [--json]

Runs ``bench_core.py``, ``bench_updatekeys.py`` and ``bench_check.py`` with
``--json`` (each in its own interpreter, this checkout on PYTHONPATH) and
prints one line per row: the median wall-time ratio (the rows' measure),
the CPU-time ratio next to it (far less moved by other load on a shared
machine), the target, and the 1-minute load average before and after the
row's script ran. A row made of several cases (YAML and JSON, nested and
flat) shows the worst of them and names it. A last line names the cases where
sopsflow's peak RSS was above sops' (one untimed run of each, from
``bench_core.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from bench_core import ROWS, TARGETS  # noqa: E402

#: Rows measured by the other scripts: (row, script, its JSON ratio key, CPU key, target).
OTHER_ROWS = (
    ("updatekeys, 100 files, vs one sops process", "updatekeys", "ratio_vs_sops_multi", "cpu_ratio_vs_sops_multi",
     0.5),
    ("updatekeys, 100 files, vs a per-file sops loop", "updatekeys", "ratio_vs_sops_loop", "cpu_ratio_vs_sops_loop",
     0.04),
    ("hook, 1 staged file of 2,000, vs sops filestatus of it", "check", "hook_ratio_wall", "hook_ratio_cpu", 2.0),
)


def run_json(script: str, args: list[str]) -> tuple[object, float, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    before = os.getloadavg()[0]
    done = subprocess.run([sys.executable, str(BENCH / f"bench_{script}.py"), *args, "--json"], env=env,
                          capture_output=True, text=True, check=False)
    after = os.getloadavg()[0]
    if done.returncode != 0:
        raise SystemExit(f"bench_{script}.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout), before, after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (bench_core, bench_check)")
    parser.add_argument("--only", default="core,updatekeys,check", help="scripts to run: core, updatekeys, check")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",")}
    rows: list[dict[str, object]] = []
    memory_line = ""

    if "core" in only:
        cases = [case for names in ROWS.values() for case in names]
        results, before, after = run_json("core", ["--repeat", str(args.repeat), "--cases", ",".join(cases)])
        assert isinstance(results, list)
        by_case = {r["case"]: r for r in results}
        heavier = sorted(r["case"] for r in results if r["sopsflow_peak_rss_kib"] > r["sops_peak_rss_kib"])
        largest = max(results, key=lambda r: r["sopsflow_peak_rss_kib"])
        memory_line = (f"peak RSS above sops' in: {', '.join(heavier) or 'no case'} (largest: {largest['case']}, "
                       f"{largest['sopsflow_peak_rss_kib'] / 1024:.1f} MiB against sops' "
                       f"{largest['sops_peak_rss_kib'] / 1024:.1f} MiB)")
        for row, names in ROWS.items():
            worst = max((by_case[n] for n in names), key=lambda r: r["ratio"] / TARGETS[r["case"]])
            rows.append({"row": row, "ratio": worst["ratio"], "cpu_ratio": worst["cpu_ratio"],
                         "target": TARGETS[worst["case"]], "case": worst["case"], "load": (before, after),
                         "same_output": all(by_case[n]["same_output"] in (None, True) for n in names)})
    scripts: dict[str, tuple[object, float, float]] = {}
    if "updatekeys" in only:
        scripts["updatekeys"] = run_json("updatekeys", [])
    if "check" in only:
        scripts["check"] = run_json("check", ["--repeat", str(max(args.repeat, 5)), "--sample", "10"])
    for row, script, key, cpu_key, target in OTHER_ROWS:
        if script not in scripts:
            continue
        result, before, after = scripts[script]
        assert isinstance(result, dict)
        rows.append({"row": row, "ratio": result[key], "cpu_ratio": result[cpu_key], "target": target,
                     "case": script, "load": (before, after), "same_output": True})

    for r in rows:
        r["met"] = float(r["ratio"]) <= float(r["target"])  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"sopsflow/sops, median wall-time ratio per row ({os.cpu_count()} CPUs; load = 1-minute load average "
          "before/after the row's script)")
    header = f"{'row':56} {'ratio':>7} {'target':>7} {'':6} {'cpu ratio':>9}  {'load':>11}  worst case"
    print(header)
    print("-" * len(header))
    for r in rows:
        before, after = r["load"]  # type: ignore[misc]
        status = "ok" if r["met"] else "MISS"
        note = "" if r["same_output"] else "  (outputs differ!)"
        print(f"{r['row']:56} {r['ratio']:7.3f} {r['target']:7.2f} {status:6} {r['cpu_ratio']:9.3f}  "
              f"{before:5.1f}/{after:<5.1f}  {r['case']}{note}")
    if memory_line:
        print(memory_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
