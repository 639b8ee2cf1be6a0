"""Benchmark: ``sopsflow verify`` over a whole repository against sops loops.

For each generated repository (default: 2,000 tracked files of which 500 are
SOPS files, and 10,000 of which 2,000 are), in the same run:

* ``sopsflow verify`` (one process, blobs read from git objects) against a
  loop of ``sops filestatus FILE`` over the SOPS files;
* ``sopsflow verify --mac`` (every data key unwrapped, every MAC checked)
  against a loop of ``sops decrypt FILE`` over the SOPS files.

The sops loops cost ~0.1 s per file, so by default only ``--sample`` files
are timed and the time is scaled to all SOPS files (the output says so;
``--sample 0`` runs the full loops). sopsflow runs are the median of
``--repeat`` runs of the real command line (interpreter start included).

SOPS files are encrypted with sopsflow's own encryption (byte-compatible;
generating 2,000 files with the sops binary would take minutes); the bench
checks that sops accepts the sampled files and that verify finds nothing.

    python bench/bench_verify.py [--sizes 2000:500,10000:2000] [--sample 40] [--repeat 3] [--json]
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
from pathlib import Path

from benchlib import child_cpu, sops_binary, sopsflow_command

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def environment(key_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "AWS_", "VAULT_"))}
    env.update({
        "SOPS_AGE_KEY_FILE": str(key_file),
        "SOPS_DISABLE_VERSION_CHECK": "1",
        "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    })
    return env


# --- repository generation -------------------------------------------------------------


def secret_yaml(n: int) -> bytes:
    return (
        f"database:\n    host: db{n}.internal\n    port: {5432 + n % 7}\n    user: svc{n}\n"
        f"    password: pw-{n:06d}-{random.getrandbits(64):016x}\n"
        f"api:\n    token: tok-{random.getrandbits(128):032x}\n    scopes:\n        - read\n        - write\n"
        f"feature_flags:\n    beta: {str(n % 2 == 0).lower()}\n    ratio: {n % 10 / 10}\n"
    ).encode()


def plain_file(n: int) -> tuple[str, bytes]:
    """An ordinary tracked file (manifests, code, docs, config)."""
    kind = n % 5
    if kind == 0:
        return f"manifests/app{n}/deployment.yaml", (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app{n}\n  labels:\n    app: app{n}\n"
            f"spec:\n  replicas: {1 + n % 3}\n  selector:\n    matchLabels:\n      app: app{n}\n  template:\n"
            f"    metadata:\n      labels:\n        app: app{n}\n    spec:\n      containers:\n"
            f"        - name: app\n          image: registry.example/app{n}:1.{n % 40}\n"
            f"          ports:\n            - containerPort: 8080\n          envFrom:\n"
            f"            - secretRef:\n                name: app{n}-secrets\n"
        ).encode()
    if kind == 1:
        body = "\n".join(f"def handler_{n}_{i}(event):\n    return {{'status': {200 + i}, 'id': {n}}}\n"
                         for i in range(12))
        return f"src/pkg{n % 50}/mod{n}.py", f'"""Module {n}."""\n\n{body}'.encode()
    if kind == 2:
        return f"docs/page{n}.md", (f"# Page {n}\n\n" + "Some documentation text. " * 40 + "\n").encode()
    if kind == 3:
        return f"config/service{n}.json", json.dumps(
            {"name": f"service{n}", "replicas": n % 4, "endpoints": [f"/v1/r{i}" for i in range(10)]},
            indent=2).encode()
    return f"config/app{n}.env.example", f"DB_HOST=db{n}.internal\nDB_PASSWORD=changeme\nLOG_LEVEL=info\n".encode()


def generate(root: Path, total: int, sops_count: int, recipient: str, env: dict[str, str]) -> list[str]:
    from sopsflow.keys.age import AgeKey
    from sopsflow.operations import encrypt_new
    from sopsflow.stores import store_by_name

    store = store_by_name("yaml")
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, env=env, check=True)
    (root / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: ^secrets/.*\\.yaml$\n    age: {recipient}\n")
    (root / "README.md").write_text("# generated bench repository\n")
    sops_paths = []
    for n in range(sops_count):
        rel = f"secrets/team{n % 25}/app{n}.yaml"
        data = encrypt_new(store, store.load_plain(secret_yaml(n)), [[AgeKey(recipient)]])
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        sops_paths.append(rel)
    for n in range(total - sops_count - 2):
        rel, data = plain_file(n)
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "bench"], cwd=root, env=env, check=True)
    tracked = subprocess.run(["git", "ls-files"], cwd=root, env=env, check=True, capture_output=True).stdout
    assert len(tracked.splitlines()) == total, (len(tracked.splitlines()), total)
    return sops_paths


# --- timing -----------------------------------------------------------------------------


def run_verify(root: Path, env: dict[str, str], args: list[str], repeat: int
               ) -> tuple[float, float, dict[str, object]]:
    times = []
    cpu = []
    report: dict[str, object] = {}
    for _ in range(repeat):
        start = time.perf_counter()
        cpu_start = child_cpu()
        done = subprocess.run([*sopsflow_command(), "verify", "--format", "json", *args],
                              cwd=root, env=env, capture_output=True)
        times.append(time.perf_counter() - start)
        cpu.append(child_cpu() - cpu_start)
        if done.returncode != 0:
            raise SystemExit(f"sopsflow verify {' '.join(args)} failed ({done.returncode}): "
                             f"{done.stderr.decode()[:500]}{done.stdout.decode()[:2000]}")
        report = json.loads(done.stdout)
    return statistics.median(times), statistics.median(cpu), report


def sops_loop(root: Path, env: dict[str, str], command: str, paths: list[str], sample: int
              ) -> tuple[float, float, int]:
    """(wall seconds for all ``paths``, CPU seconds for all, number actually
    run): the loop over a sample, scaled."""
    chosen = paths if sample <= 0 or sample >= len(paths) else random.Random(7).sample(paths, sample)
    binary = sops_binary()
    start = time.perf_counter()
    cpu_start = child_cpu()
    for rel in chosen:
        done = subprocess.run([binary, command, rel], cwd=root, env=env, capture_output=True)
        if done.returncode != 0:
            raise SystemExit(f"sops {command} {rel} failed: {done.stderr.decode()[:300]}")
        if command == "filestatus" and json.loads(done.stdout) != {"encrypted": True}:
            raise SystemExit(f"sops filestatus {rel}: {done.stdout!r}")
    elapsed = time.perf_counter() - start
    cpu = child_cpu() - cpu_start
    scale = len(paths) / len(chosen)
    return elapsed * scale, cpu * scale, len(chosen)


def in_process(root: Path, mac: bool) -> float:
    from sopsflow.gitops.verify import VerifyOptions, verify

    start = time.perf_counter()
    verify(root, VerifyOptions(mac=mac))
    return time.perf_counter() - start


def bench_size(work: Path, total: int, sops_count: int, sample: int, repeat: int,
               key_file: Path, recipient: str) -> dict[str, object]:
    env = environment(key_file)
    root = work / f"repo-{total}"
    start = time.perf_counter()
    sops_paths = generate(root, total, sops_count, recipient, env)
    generated = time.perf_counter() - start
    os.environ["SOPS_AGE_KEY_FILE"] = str(key_file)
    verify_s, verify_cpu, report = run_verify(root, env, [], repeat)
    summary = report["summary"]
    assert isinstance(summary, dict)
    if summary["errors"] or summary["warnings"] or summary["files"] != total:
        raise SystemExit(f"unexpected verify result on the generated repository: {summary}")
    mac_s, mac_cpu, mac_report = run_verify(root, env, ["--mac"], repeat)
    mac_summary = mac_report["summary"]
    assert isinstance(mac_summary, dict)
    if mac_summary["errors"] or mac_summary["warnings"]:
        raise SystemExit(f"unexpected verify --mac result: {mac_summary}")
    filestatus_s, filestatus_cpu, fs_n = sops_loop(root, env, "filestatus", sops_paths, sample)
    decrypt_s, decrypt_cpu, dec_n = sops_loop(root, env, "decrypt", sops_paths, sample)
    return {
        "tracked_files": total,
        "sops_files": sops_count,
        "generate_s": round(generated, 2),
        "verify_s": round(verify_s, 3),
        "verify_in_process_s": round(in_process(root, False), 3),
        "verify_mac_s": round(mac_s, 3),
        "verify_mac_in_process_s": round(in_process(root, True), 3),
        "sops_filestatus_loop_s": round(filestatus_s, 2),
        "sops_filestatus_timed_files": fs_n,
        "sops_decrypt_loop_s": round(decrypt_s, 2),
        "sops_decrypt_timed_files": dec_n,
        "ratio_verify_vs_filestatus": round(verify_s / filestatus_s, 4),
        "ratio_mac_vs_decrypt": round(mac_s / decrypt_s, 4),
        "cpu_verify_s": round(verify_cpu, 3),
        "cpu_verify_mac_s": round(mac_cpu, 3),
        "cpu_sops_filestatus_loop_s": round(filestatus_cpu, 2),
        "cpu_sops_decrypt_loop_s": round(decrypt_cpu, 2),
        "cpu_ratio_verify_vs_filestatus": round(verify_cpu / filestatus_cpu, 4),
        "cpu_ratio_mac_vs_decrypt": round(mac_cpu / decrypt_cpu, 4),
        "load_average": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000:500,10000:2000", help="TOTAL:SOPS pairs, comma separated")
    parser.add_argument("--sample", type=int, default=40,
                        help="sops loop: files actually timed (scaled to all SOPS files); 0 = all")
    parser.add_argument("--repeat", type=int, default=3, help="sopsflow runs per measurement (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the generated repositories")
    parser.add_argument("--jobs", type=int, help="SOPSFLOW_JOBS for the sopsflow runs (default: automatic)")
    args = parser.parse_args(argv)
    random.seed(1)
    if args.jobs:
        os.environ["SOPSFLOW_JOBS"] = str(args.jobs)
    from pyrage import x25519

    identity = x25519.Identity.generate()
    work = Path(tempfile.mkdtemp(prefix="sopsflow-bench-verify-"))
    key_file = work / "age-key.txt"
    key_file.write_text(str(identity) + "\n")
    results = []
    try:
        for pair in args.sizes.split(","):
            total, sops_count = (int(x) for x in pair.split(":"))
            results.append(bench_size(work, total, sops_count, args.sample, args.repeat, key_file,
                                      str(identity.to_public())))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        sampled = r["sops_filestatus_timed_files"] != r["sops_files"]
        note = (f" (sops loops: {r['sops_filestatus_timed_files']} files timed, scaled to {r['sops_files']})"
                if sampled else "")
        print(f"{r['tracked_files']} tracked files, {r['sops_files']} SOPS files{note}")
        print(f"  sopsflow verify        {r['verify_s']:8.3f} s  (in-process {r['verify_in_process_s']:.3f} s)"
              f"   sops filestatus loop {r['sops_filestatus_loop_s']:8.2f} s   ratio {r['ratio_verify_vs_filestatus']:.4f}"
              "  (target <= 0.03)")
        print(f"  sopsflow verify --mac  {r['verify_mac_s']:8.3f} s  (in-process {r['verify_mac_in_process_s']:.3f} s)"
              f"   sops decrypt loop    {r['sops_decrypt_loop_s']:8.2f} s   ratio {r['ratio_mac_vs_decrypt']:.4f}"
              "  (target <= 0.05)")
        print(f"  CPU time (user+sys): verify {r['cpu_verify_s']:.3f} s vs {r['cpu_sops_filestatus_loop_s']:.2f} s"
              f" (ratio {r['cpu_ratio_verify_vs_filestatus']:.4f}); verify --mac {r['cpu_verify_mac_s']:.3f} s vs"
              f" {r['cpu_sops_decrypt_loop_s']:.2f} s (ratio {r['cpu_ratio_mac_vs_decrypt']:.4f});"
              f" load average {r['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
