"""Start-up cost of the ``sopsflow`` console script against a bare interpreter.

    python bench/bench_startup.py [--repeat 9] [--top 15]

For ``decrypt``, ``encrypt``, ``check`` and ``updatekeys`` on small inputs
created here, prints the import time (``-X importtime``, cumulative) above
``python -c pass`` on the same interpreter and the largest cumulative costs,
then the offset at which the 100-value decrypt first opens its input file,
against the same offset for ``python -c pass`` opening a file: by
``strace --seccomp-bpf -f -r -e trace=openat`` when strace is installed, and
always by the ``SOPSFLOW_TRACE_OPEN`` stamp written by the read path (the
stamp does not slow the run down as tracing does). Medians of alternating runs. The budget: the input is opened within ``python -c pass``
+ 25 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ENTRY_POINT, bench_environment, child_cpu

ROOT = Path(__file__).resolve().parent.parent
BUDGET_MS = 25.0
#: CPU seconds of the last importtime() child: unlike wall time, barely moved by other load.
last_cpu = 0.0


def prepare(work: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """A git repository with a creation rule, a 100-value plaintext and its encrypted copy."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    key_file = work / "keys.txt"
    key_file.write_text(f"{identity}\n")
    env = bench_environment(key_file)
    (work / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: secrets/.*\n    age: {identity.to_public()}\n")
    (work / "secrets").mkdir()
    plain = work / "plain.json"
    plain.write_text(json.dumps({f"key{i}": f"value-{i}" for i in range(100)}, indent=2))
    secret = work / "secrets" / "app.json"
    cli = [sys.executable, "-c", ENTRY_POINT]
    done = subprocess.run([*cli, "encrypt", "--filename-override", "secrets/app.json", str(plain)],
                          cwd=work, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"encrypt failed: {done.stderr.decode()}")
    secret.write_bytes(done.stdout)
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *cmd], cwd=work, env=env, check=True)
    commands = {
        "decrypt": ["decrypt", str(secret)],
        "encrypt": ["encrypt", "--filename-override", "secrets/app.json", str(plain)],
        "check": ["check", "--", "secrets/app.json"],
        "updatekeys": ["updatekeys", "-y", "secrets/app.json"],
    }
    return env, commands


LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def importtime(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, dict[str, int]]:
    """(total cumulative microseconds of top-level imports, cumulative cost per module)."""
    global last_cpu
    cpu0 = child_cpu()
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    last_cpu = child_cpu() - cpu0
    if done.returncode != 0 and "pass" not in argv:
        raise SystemExit(f"{argv} exited {done.returncode}: {done.stderr[-2000:]}")
    total, per = 0, {}
    for line in done.stderr.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        cumulative, name = int(m.group(2)), m.group(4)
        per[name] = cumulative
        if len(m.group(3)) <= 1:  # top-level import: its cumulative time includes its children
            total += cumulative
    return total, per


def strace_filter() -> list[str]:
    """``--seccomp-bpf`` where strace has it: only the traced openat calls stop
    the process. Without it every system call does, which more than doubles
    the run time of an interpreter that opens hundreds of files at start-up."""
    done = subprocess.run(["strace", "--seccomp-bpf", "-f", "-o", os.devnull, "true"],
                          capture_output=True, check=False)
    return ["--seccomp-bpf"] if done.returncode == 0 else []


def first_open_strace(argv: list[str], target: Path, cwd: Path, env: dict[str, str],
                      options: list[str]) -> float | None:
    """Seconds from exec to the first openat of ``target`` (strace -r relative stamps, summed)."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        subprocess.run(["strace", *options, "-f", "-r", "-o", out.name, "-e", "trace=openat", sys.executable, *argv],
                       cwd=cwd, env=env, capture_output=True, check=False)
        elapsed = 0.0
        for line in Path(out.name).read_text().splitlines():
            fields = line.split()
            # "-f -o" puts the pid first: "PID  0.000123 openat(...)"
            stamp = fields[1] if len(fields) > 2 and fields[0].isdigit() else fields[0]
            try:
                elapsed += float(stamp)
            except ValueError:
                continue
            if str(target) in line and "openat(" in line:
                return elapsed
    return None


def first_open_stamp(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float] | None:
    """(seconds from just before exec to the read path's SOPSFLOW_TRACE_OPEN
    stamp, CPU seconds the process had used by then)."""
    with tempfile.NamedTemporaryFile(suffix=".stamp") as out:
        traced = dict(env, SOPSFLOW_TRACE_OPEN=out.name)
        start = time.time()
        subprocess.run([sys.executable, *argv], cwd=cwd, env=traced, capture_output=True, check=False)
        text = Path(out.name).read_text().strip()
        if not text:
            return None
        wall, cpu = text.splitlines()[0].split()
        return float(wall) - start, float(cpu)


#: ``python -c pass`` with the same stamp as the read path writes, as its first statement.
STAMP_FLOOR = ("import os, time; f = open(os.environ['SOPSFLOW_TRACE_OPEN'], 'w'); "
               "f.write(f'{time.time():.6f} {time.process_time():.6f}\\n'); f.close()")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9, help="alternating runs per figure (median)")
    parser.add_argument("--top", type=int, default=15, help="largest cumulative import costs shown")
    parser.add_argument("--stamp", action="store_true", help="only the SOPSFLOW_TRACE_OPEN stamp, even when strace is installed")
    args, _ = parser.parse_known_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        work = Path(tmp)
        env, commands = prepare(work)
        cli = ["-c", ENTRY_POINT]
        # warm-up: byte code written, page cache filled
        for cmd in commands.values():
            importtime([*cli, *cmd], work, env)
        totals: dict[str, list[int]] = {"pass": [], **{name: [] for name in commands}}
        cpu: dict[str, list[float]] = {"pass": [], **{name: [] for name in commands}}
        costs: dict[str, dict[str, list[int]]] = {name: {} for name in commands}
        for _ in range(args.repeat):
            for name, cmd in commands.items():
                totals["pass"].append(importtime(["-c", "pass"], work, env)[0])
                cpu["pass"].append(last_cpu)
                total, per = importtime([*cli, *cmd], work, env)
                totals[name].append(total)
                cpu[name].append(last_cpu)
                for module, us in per.items():
                    costs[name].setdefault(module, []).append(us)
        base = statistics.median(totals["pass"]) / 1000
        base_cpu = statistics.median(cpu["pass"]) * 1000
        print(f"python -c pass: imports {base:.1f} ms, process CPU {base_cpu:.1f} ms  "
              f"({sys.executable}, {sys.version.split()[0]}; load {os.getloadavg()[0]:.1f})")
        for name in commands:
            ms = statistics.median(totals[name]) / 1000
            used = statistics.median(cpu[name]) * 1000
            print(f"\n{name}: imports {ms:.1f} ms, {ms - base:+.1f} ms over python -c pass; "
                  f"process CPU {used:.1f} ms, {used - base_cpu:+.1f} ms; largest cumulative:")
            medians = sorted(((statistics.median(v) / 1000, m) for m, v in costs[name].items()), reverse=True)
            for cost, module in medians[: args.top]:
                print(f"  {cost:8.1f} ms  {module}")

        # first open of the 100-value decrypt's input, alternating with the floor
        secret = work / "secrets" / "app.json"
        decrypt = [*cli, *commands["decrypt"]]
        methods = ["stamp"]
        if shutil.which("strace") is not None and not args.stamp:
            methods.insert(0, "strace")
        options = strace_filter() if "strace" in methods else []
        for method in methods:
            pass_runs: list[float] = []
            open_runs: list[float] = []
            pass_cpu: list[float] = []
            open_cpu: list[float] = []
            for _ in range(args.repeat):
                if method == "strace":
                    floor = first_open_strace(["-c", "import sys; open(sys.argv[1]).close()", str(secret)],
                                              secret, work, env, options)
                    opened = first_open_strace(decrypt, secret, work, env, options)
                else:
                    floor_stamp = first_open_stamp(["-c", STAMP_FLOOR], work, env)
                    open_stamp = first_open_stamp(decrypt, work, env)
                    floor, opened = (floor_stamp or (None, 0.0))[0], (open_stamp or (None, 0.0))[0]
                    if floor_stamp and open_stamp:
                        pass_cpu.append(floor_stamp[1])
                        open_cpu.append(open_stamp[1])
                if floor is None or opened is None:
                    print(f"\nfirst open ({method}): not observed")
                    return 1
                pass_runs.append(floor)
                open_runs.append(opened)
            floor_ms, opened_ms = statistics.median(pass_runs) * 1000, statistics.median(open_runs) * 1000
            how = " ".join(["strace", *options, "-f -r"]) if method == "strace" else "SOPSFLOW_TRACE_OPEN stamp"
            print(f"\nfirst open of the input, 100-value decrypt ({how}): {opened_ms:.1f} ms; "
                  f"python -c pass opens a file at {floor_ms:.1f} ms (load {os.getloadavg()[0]:.1f})")
            budget = floor_ms + BUDGET_MS
            verdict = "met" if opened_ms <= budget else f"MISSED by {opened_ms - budget:.1f} ms"
            print(f"budget: python -c pass + {BUDGET_MS:.0f} ms = {budget:.1f} ms -> {verdict}"
                  + ("  (every openat stops the traced process: the more files a run opens, the more"
                     " this figure overstates)" if method == "strace" else ""))
            if open_cpu:
                floor_cpu, used_cpu = statistics.median(pass_cpu) * 1000, statistics.median(open_cpu) * 1000
                budget = floor_cpu + BUDGET_MS
                verdict = "met" if used_cpu <= budget else f"MISSED by {used_cpu - budget:.1f} ms"
                print(f"process CPU at the first open: {used_cpu:.1f} ms; python -c pass {floor_cpu:.1f} ms; "
                      f"budget {budget:.1f} ms -> {verdict}  (other load barely moves this one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
