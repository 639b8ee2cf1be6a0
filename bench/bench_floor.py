"""Benchmark: the least any CPython updatekeys can cost, next to sops' whole run.

The target for ``sopsflow updatekeys`` of 100 files is at most half the
time of one ``sops updatekeys -y F1..F100`` process. This script measures
what no Python implementation can avoid on this machine, whatever its design:

* starting the interpreter and importing the native libraries the job needs
  (PyYAML's C parser for YAML and .sops.yaml, cryptography's AES-GCM for the
  MAC check, pyrage for age, google-re2 for path_regex, json, subprocess for
  git) - nothing of sopsflow itself;
* one age unwrap and one age wrap per file with pyrage (the data key must be
  unwrapped to be wrapped for the new recipient), spread ideally over every CPU.

Their sum is a floor under any implementation; the script prints it against
half of the sops process it times on the same files. It then adds what an
implementation that writes crash-safely must pay on this disk (temp file,
fsync, rename, directory fsync for each file; sops writes without fsync).

    python bench/bench_floor.py [--files 100] [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_updatekeys import build
from benchlib import sops_binary

from sopsflow import forkpool

IMPORTS = ("import json, subprocess, yaml, pyrage, re2; "
           "from yaml._yaml import CParser; "
           "from cryptography.hazmat.primitives.ciphers.aead import AESGCM")


def best_wall(command: list[str], repeat: int, cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)  # a floor: the best the machine did


def crypto_per_file(rounds: int = 300) -> float:
    """Seconds for one age unwrap plus one age wrap of a 32-byte data key."""
    import pyrage
    from pyrage import x25519

    ident = x25519.Identity.generate()
    newcomer = x25519.Identity.generate().to_public()
    wrapped = pyrage.encrypt(os.urandom(32), [ident.to_public()])
    start = time.perf_counter()
    for _ in range(rounds):
        pyrage.encrypt(pyrage.decrypt(wrapped, [ident]), [newcomer])
    return (time.perf_counter() - start) / rounds


def durable_writes(targets: list[Path], repeat: int) -> float:
    """Seconds to replace every target crash-safely, the least a writer that
    keeps a file's old or new content through a power cut pays: a temp file
    beside it, fsync (in 8 threads, whose waits on the disk overlap), rename
    over the target, one fsync of each directory. sops writes without fsync;
    sopsflow keeps this guarantee, so it is part of its floor."""
    from concurrent.futures import ThreadPoolExecutor

    contents = [t.read_bytes() for t in targets]
    times = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(repeat):
            os.sync()
            start = time.perf_counter()
            fds, temps = [], []
            for target, data in zip(targets, contents, strict=True):
                temp = target.with_name(f".{target.name}.floor-tmp")
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.write(fd, data)
                fds.append(fd)
                temps.append(temp)
            list(pool.map(os.fsync, fds))
            for fd in fds:
                os.close(fd)
            for temp, target in zip(temps, targets, strict=True):
                os.replace(temp, target)
            for directory in {t.parent for t in targets}:
                dir_fd = os.open(directory, os.O_RDONLY)
                os.fsync(dir_fd)
                os.close(dir_fd)
            times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    python = sys.executable
    bare = best_wall([python, "-c", "pass"], args.repeat)
    imports = best_wall([python, "-c", IMPORTS], args.repeat)
    crypto = crypto_per_file()
    cpus = forkpool.cpu_count()
    with tempfile.TemporaryDirectory(prefix="sopsflow-floor-") as tmp:
        work = Path(tmp)
        template, files, env, new_config = build(work, args.files)
        (template / ".sops.yaml").write_text(new_config)
        sops_times = []
        for _ in range(args.repeat):
            subprocess.run(["git", "checkout", "-q", "--", "."], cwd=template, env=env, check=True)
            (template / ".sops.yaml").write_text(new_config)
            start = time.perf_counter()
            subprocess.run([sops_binary(), "updatekeys", "-y", *files], cwd=template, env=env, check=True,
                           capture_output=True)
            sops_times.append(time.perf_counter() - start)
        sops = min(sops_times)
        writes = durable_writes([template / f for f in files], args.repeat)
    floor = imports + args.files * crypto / cpus
    print(f"{args.files} files, {cpus} CPUs (fastest of {args.repeat} runs each):")
    print(f"  python -c pass                        {bare * 1e3:7.1f} ms")
    print(f"  python + the native libraries' import {imports * 1e3:7.1f} ms")
    print(f"  age unwrap + wrap per file            {crypto * 1e3:7.3f} ms  (x{args.files} / {cpus} CPUs)")
    print(f"  floor for any CPython implementation  {floor * 1e3:7.1f} ms")
    print(f"  sops updatekeys -y F1..F{args.files}           {sops * 1e3:7.1f} ms  (target: half = {sops * 500:.1f} ms)")
    print(f"  floor / sops                          {floor / sops:7.2f}")
    print(f"  crash-safe writes of the {args.files} files     {writes * 1e3:7.1f} ms  (temp, fsync, rename; sops skips fsync)")
    print(f"  floor with crash-safe writes          {(floor + writes) * 1e3:7.1f} ms")
    print(f"  that floor / sops                     {(floor + writes) / sops:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
