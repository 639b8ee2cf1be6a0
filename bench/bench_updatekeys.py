"""Benchmark: ``sopsflow updatekeys`` of N files (one recipient added) against sops.

Three ways of bringing the same N files (all five formats, encrypted by the
real sops) in line with a ``.sops.yaml`` that gained one age recipient:

* sopsflow - one ``sopsflow updatekeys -y`` over the git repository;
* sops loop - ``sops updatekeys -y FILE`` once per file (what scripts do);
* sops multi - one ``sops updatekeys -y F1 .. FN`` process.

Every run starts from the same encrypted files; each variant runs
``--repeat`` times and the median wall time is used. The ratios
sopsflow/sops are measured in the same run, so machine speed cancels out.

    python bench/bench_updatekeys.py [--files 100] [--repeat 3] [--json] [--breakdown]

``--breakdown`` adds where sopsflow's time goes (medians over the runs; wall
and CPU): the interpreter's own start (``python -c pass``), importing every
module a run loads, and - timed inside the run - the phases of
``updatekeys -y``: the CLI's import and argument parsing, ``git ls-files``
with the configuration's parse, collecting the files, the per-file work in
the fork pool (parse, unwrap, wrap, emit; all processes) and the writes with
their fsyncs. ``--jobs N`` runs sopsflow with that many jobs.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import child_cpu, sops_binary, sopsflow_command

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("yaml", "json", "env", "ini", "pem")


def age_pair() -> tuple[str, str]:
    from pyrage import x25519

    ident = x25519.Identity.generate()
    return str(ident), str(ident.to_public())


def plaintext(fmt: str, n: int) -> bytes:
    if fmt == "yaml":
        return f"data:\n    password: pw{n}\n    user: u{n}\nlist:\n    - a\n    - {n}\n".encode()
    if fmt == "json":
        return f'{{"password": "pw{n}", "nested": {{"port": {n}}}}}'.encode()
    if fmt == "env":
        return f"PASSWORD=pw{n}\nTOKEN=t{n}\n".encode()
    if fmt == "ini":
        return f"[db]\npassword = pw{n}\nuser = u{n}\n".encode()
    return f"binary secret {n}\n".encode()


def environment(key_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "AWS_", "VAULT_"))}
    # Users run with compiled bytecode; without it every run would recompile sopsflow.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(SOPS_AGE_KEY_FILE=str(key_file), SOPS_DISABLE_VERSION_CHECK="1",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
               GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.invalid",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.invalid")
    return env


def build(work: Path, count: int) -> tuple[Path, list[str], dict[str, str], str]:
    """A git repository of ``count`` sops-encrypted files; returns (repo, files, env, new config)."""
    admin_key, admin = age_pair()
    _, newcomer = age_pair()
    key_file = work / "keys.txt"
    key_file.write_text(admin_key + "\n")
    env = environment(key_file)
    repo = work / "template"
    repo.mkdir()
    (repo / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: ^secrets/\n    age: {admin}\n")
    files = [f"secrets/s{n:03d}.{FORMATS[n % len(FORMATS)]}" for n in range(count)]
    (repo / "secrets").mkdir()
    for n, rel in enumerate(files):
        (repo / rel).write_bytes(plaintext(rel.rsplit(".", 1)[1], n))

    def encrypt(rel: str) -> None:
        subprocess.run([sops_binary(), "encrypt", "-i", rel], cwd=repo, env=env, check=True, capture_output=True)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(encrypt, files))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    new_config = f"creation_rules:\n  - path_regex: ^secrets/\n    age: {admin},{newcomer}\n"
    return repo, files, env, new_config


def timed(work: Path, template: Path, new_config: str, run: Callable[[Path], None],
          check: Callable[[Path], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child processes) of one run.

    Each run gets a fresh copy in its own directory, and no copy is deleted
    until every run is over: on this kind of VM disk (ext4 mounted with
    ``discard``) deleting hundreds of files just before a run stalls the next
    journal commits, which a tool that creates and fsyncs files (sopsflow's
    atomic writes) then waits for while sops, which rewrites files in place
    without fsync, does not. A real repository is not mass-deleted before
    ``updatekeys``; the harness's own housekeeping must not be measured."""
    runs = sorted(work.glob("run-*"))
    target = work / f"run-{len(runs):04d}"
    shutil.copytree(template, target, symlinks=True)
    (target / ".sops.yaml").write_text(new_config)
    os.sync()  # the copy is on disk, as a checked-out repository is
    cpu_start, start = child_cpu(), time.perf_counter()
    run(target)
    elapsed, cpu = time.perf_counter() - start, child_cpu() - cpu_start
    check(target)
    return elapsed, cpu


#: A child that runs ``updatekeys -y`` in-process and prints, as JSON, when
#: each phase ended (seconds since the interpreter started its main module),
#: its CPU time, and the modules it loaded.
_PHASES = r"""
import json, os, sys, time
start = time.perf_counter()
marks = []
from sopsflow import main as cli
import sopsflow.config.decoder as decoder
import sopsflow.gitops.updatekeys as uk
import sopsflow.fileio as fio
import sopsflow.forkpool as pool
marks.append(("import the CLI and updatekeys", time.perf_counter()))

def timed(module, name, before, during):
    real = getattr(module, name)
    def wrapper(*args, **kwargs):
        if before:
            marks.append((before, time.perf_counter()))
        try:
            return real(*args, **kwargs)
        finally:
            marks.append((during, time.perf_counter()))
    setattr(module, name, wrapper)

timed(decoder, "load_config", None, "parse arguments, start git ls-files, load .sops.yaml")
timed(uk, "collect_targets", None, "collect the files (git's answer, rule match)")
timed(pool, "forked_map", "identities; first file of each format (per-file imports)",
      "per-file work in the fork pool (parse, unwrap, MAC check, wrap, emit)")
timed(fio, "atomic_write_many", "gather the results",
      "writes (create, fsync, rename, directory fsync)")
code = cli.main(["updatekeys", "-y", *sys.argv[1:]])
marks.append(("report", time.perf_counter()))
print(json.dumps({"code": code, "marks": [(label, at - start) for label, at in marks],
                  "modules": sorted(sys.modules)}))
sys.stdout.flush()
os._exit(0)  # as the sopsflow script ends (sopsflow.main.run): no interpreter teardown
"""


def breakdown(work: Path, template: Path, new_config: str, env: dict[str, str], repeat: int,
              jobs: list[str]) -> dict[str, object]:
    """Where one ``sopsflow updatekeys -y`` run spends its time (see the module doc)."""
    import resource

    def child(args: list[str], cwd: Path | None = None) -> tuple[float, float, str]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        begun = time.perf_counter()
        done = subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - begun
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, done.stdout

    def fresh() -> Path:
        target = work / f"run-{len(list(work.glob('run-*'))):04d}"
        shutil.copytree(template, target, symlinks=True)
        (target / ".sops.yaml").write_text(new_config)
        os.sync()
        return target

    phases: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    modules: list[str] = []
    for _ in range(repeat + 1):
        wall, used, _ = child([sys.executable, "-c", "pass"])
        phases.setdefault("interpreter start (python -c pass)", []).append(wall)
        cpu.setdefault("interpreter start (python -c pass)", []).append(used)
        # The start-up up to the child's first line, measured from outside.
        wall, used, out = child([sys.executable, "-c", _PHASES, *jobs], cwd=fresh())
        run = json.loads(out.strip().splitlines()[-1])  # after what updatekeys printed
        modules = [m for m in run["modules"] if not m.startswith(("__main__", "_frozen"))]
        previous = 0.0
        for label, at in run["marks"]:  # each phase: from the previous mark to its own
            phases.setdefault(label, []).append(at - previous)
            previous = at
        phases.setdefault("whole run, from outside", []).append(wall)
        cpu.setdefault("whole run, from outside", []).append(used)
        if modules:
            script = (f"import importlib\nfor name in {modules!r}:\n"
                      "    try:\n        importlib.import_module(name)\n    except Exception:\n        pass")
            wall, used, _ = child([sys.executable, "-c", script])
            phases.setdefault("python -c 'import every module the run loads'", []).append(wall)
            cpu.setdefault("python -c 'import every module the run loads'", []).append(used)
    return {
        "wall_ms": {k: round(1000 * statistics.median(v[1:]), 1) for k, v in phases.items()},
        "cpu_ms": {k: round(1000 * statistics.median(v[1:]), 1) for k, v in cpu.items()},
        "modules_loaded": len(modules),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--breakdown", action="store_true", help="also show where sopsflow's time goes")
    parser.add_argument("--jobs", type=int, default=0, help="sopsflow's --jobs (0: its default)")
    args = parser.parse_args(argv)
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []

    with tempfile.TemporaryDirectory(prefix="sopsflow-bench-") as tmp:
        work = Path(tmp)
        template, files, env, new_config = build(work, args.files)
        newcomer = new_config.rsplit(",", 1)[1].strip()
        sops = sops_binary()

        def run_sopsflow(repo: Path) -> None:
            subprocess.run([*sopsflow_command(), "updatekeys", "-y", *jobs], cwd=repo, env=env,
                           check=True, capture_output=True)

        def run_sops_loop(repo: Path) -> None:
            for rel in files:
                subprocess.run([sops, "updatekeys", "-y", rel], cwd=repo, env=env, check=True, capture_output=True)

        def run_sops_multi(repo: Path) -> None:
            subprocess.run([sops, "updatekeys", "-y", *files], cwd=repo, env=env, check=True, capture_output=True)

        def check(repo: Path) -> None:
            missing = [rel for rel in files if newcomer not in (repo / rel).read_text(errors="replace")]
            if missing:
                raise SystemExit(f"not updated: {missing[:3]}")

        variants = {"sopsflow": run_sopsflow, "sops_loop": run_sops_loop, "sops_multi": run_sops_multi}
        for func in variants.values():  # warm-up: bytecode written, binaries in the page cache
            timed(work, template, new_config, func, check)
        times: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, func in variants.items():  # interleaved, so drift hits all three alike
                wall, used = timed(work, template, new_config, func, check)
                times[name].append(wall)
                cpu[name].append(used)
        median = {name: statistics.median(values) for name, values in times.items()}
        median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
        result = {
            "files": args.files,
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0],
            "wall_seconds": median,
            "cpu_seconds": median_cpu,
            "all_wall_runs": times,
            "ratio_vs_sops_loop": median["sopsflow"] / median["sops_loop"],
            "ratio_vs_sops_multi": median["sopsflow"] / median["sops_multi"],
            "cpu_ratio_vs_sops_loop": median_cpu["sopsflow"] / median_cpu["sops_loop"],
            "cpu_ratio_vs_sops_multi": median_cpu["sopsflow"] / median_cpu["sops_multi"],
            "targets": {"vs_sops_loop": 0.04, "vs_sops_multi": 0.5},
        }
        if args.breakdown:
            result["breakdown"] = breakdown(work, template, new_config, env, args.repeat, jobs)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"updatekeys of {args.files} files, one age recipient added (median of {args.repeat}; "
              f"{os.cpu_count()} CPUs, load {result['load_average']:.1f}):")
        for name in variants:
            print(f"  {name:<11} wall {median[name]:8.3f} s   cpu {median_cpu[name]:8.3f} s")
        print(f"  sopsflow / sops loop : wall {result['ratio_vs_sops_loop']:.3f}  "
              f"cpu {result['cpu_ratio_vs_sops_loop']:.3f}  (target <= 0.04)")
        print(f"  sopsflow / sops multi: wall {result['ratio_vs_sops_multi']:.3f}  "
              f"cpu {result['cpu_ratio_vs_sops_multi']:.3f}  (target <= 0.5)")
        if args.breakdown:
            parts = result["breakdown"]
            assert isinstance(parts, dict)
            print(f"where sopsflow's time goes (ms; {parts['modules_loaded']} modules loaded):")
            for label, wall in parts["wall_ms"].items():
                used = parts["cpu_ms"].get(label)
                print(f"  {label:<72} wall {wall:7.1f}" + (f"   cpu {used:7.1f}" if used is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
