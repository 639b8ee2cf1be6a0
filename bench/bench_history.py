"""Benchmark: ``sopsflow history`` against the floor of reading every object.

A repository is generated once (with ``git fast-import``) and cached:

* ``--commits`` commits (default 10,000) touching ``--commits / 5`` secret
  files (2,000 by default) under a creation rule: 70 % YAML, 15 % dotenv,
  10 % JSON, 5 % binary, about 2 KB per blob. Each file is encrypted once
  in-process (sopsflow's own encryption, byte-compatible with sops); a commit
  that touches a file changes one of its ``*_unencrypted`` values (binary
  files are encrypted again), so every version is a new, valid SOPS blob;
* per 1,000 commits, 5 leaks of each kind: a plaintext file at a rule path,
  a token in a file outside the rules (a detector hit), a plaintext value
  added by hand to a SOPS file and a SOPS file committed decrypted. Half are
  undone a few commits later, half stay in HEAD. A tag every 1,000 commits
  and a branch every 2,500.

In the same run it measures, as wall time:

* the floor: ``git rev-list --all --objects | cut -d' ' -f1 | git cat-file
  --batch > /dev/null`` (without the ``cut``, cat-file reads "ID PATH" as one
  name and answers "missing" for every blob);
* ``sopsflow history --report FILE`` (the real command line), and their ratio
  (target: at most 3);
* the peak RSS of the ``sopsflow history`` process over the first quarter,
  half and all of the history (tags ``bench-N``; target: they differ by at
  most 20 %), and for information that of its largest child: git, whose
  mapped pack pages grow with what it reads, as the floor's do;
* the text report's line count and width (target: at most 40 lines of at
  most 100 columns).

    python bench/bench_history.py [--commits 10000] [--repeat 3] [--jobs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchlib import bench_environment, child_cpu

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Bump when the generated repository changes, so a stale cache is not used.
LAYOUT = 1
LEAKS_PER_1000 = 5
LEAK_KINDS = ("plaintext-at-rule", "detector-hit", "hand-added-value", "decrypted-committed")
TARGET_RATIO = 3.0
TARGET_RSS_SPREAD = 0.20
TARGET_LINES, TARGET_WIDTH = 40, 100

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


def _token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def _values(rng: random.Random, n: int) -> list[tuple[str, str]]:
    return [(f"{_WORDS[i % len(_WORDS)]}_{i}", _token(rng, 12)) for i in range(n)]


def plaintext(kind: str, n: int, rng: random.Random) -> bytes:
    """The plaintext of secret file ``n`` (about 2 KB once encrypted)."""
    if kind == "yaml":
        values = _values(rng, 8)
        body = "".join(f"    {k}: {v}\n" for k, v in values)
        return f"service: app{n}\nversion_unencrypted: 0\ncredentials:\n{body}".encode()
    if kind == "env":
        return ("VERSION_unencrypted=0\n" + "".join(f"{k.upper()}={v}\n" for k, v in _values(rng, 8))).encode()
    if kind == "json":
        doc = {"service": f"app{n}", "version_unencrypted": 0, "credentials": dict(_values(rng, 7))}
        return json.dumps(doc, indent=2).encode()
    return os.urandom(700)


def layout(files: int) -> list[tuple[str, str]]:
    """(kind, path) of each secret file: 70 % YAML, 15 % dotenv, 10 % JSON, 5 % binary."""
    out = []
    for n in range(files):
        share = n % 20
        kind = "yaml" if share < 14 else "env" if share < 17 else "json" if share < 19 else "binary"
        ext = {"yaml": "yaml", "env": "env", "json": "json", "binary": "bin"}[kind]
        out.append((kind, f"secrets/team{n % 40}/app{n}.{ext}"))
    return out


def generate(repo: Path, commits: int, env: dict[str, str]) -> dict[str, int]:
    """The repository, built by one ``git fast-import`` stream."""
    from pyrage import x25519

    from sopsflow.keys.age import AgeKey
    from sopsflow.operations import encrypt_new
    from sopsflow.stores import store_by_name

    rng = random.Random(7)
    recipient = str(x25519.Identity.generate().to_public())
    files = layout(max(8, commits // 5))
    stores = {kind: store_by_name("dotenv" if kind == "env" else kind) for kind in ("yaml", "env", "json", "binary")}

    def encrypt(kind: str, plain: bytes) -> bytes:
        store = stores[kind]
        return encrypt_new(store, store.load_plain(plain), [[AgeKey(recipient)]])

    plains = [plaintext(kind, n, rng) for n, (kind, _) in enumerate(files)]
    current = [encrypt(kind, plain) for (kind, _), plain in zip(files, plains, strict=True)]
    versions = [0] * len(files)
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], env=env, check=True)
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=repo, env=env, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    out = proc.stdin
    stamp = 1_700_000_000

    def data(blob: bytes) -> None:
        out.write(b"data %d\n" % len(blob) + blob + b"\n")

    def commit(number: int, message: str, changes: Sequence[tuple[str, bytes | None]]) -> None:
        out.write(b"commit refs/heads/main\nmark :%d\n" % number)
        out.write(b"committer bench <bench@example.invalid> %d +0000\n" % (stamp + number))
        data(message.encode())
        for path, blob in changes:
            if blob is None:
                out.write(f"D {path}\n".encode())
            else:
                out.write(f"M 100644 inline {path}\n".encode())
                data(blob)

    rules = f"creation_rules:\n  - path_regex: ^secrets/\n    age: {recipient}\n".encode()
    commit(1, "initial", [(".sops.yaml", rules), ("README.md", b"# generated\n")]
           + [(path, blob) for (_, path), blob in zip(files, current, strict=True)])
    # Leak commits: for each block of 1,000 commits, 5 of each kind at random places.
    leak_at: dict[int, str] = {}
    for block in range(0, commits, 1000):
        slots = [c for c in range(max(2, block + 1), min(commits, block + 1000) + 1)]
        size = min(len(slots), 1000)
        wanted = max(1, LEAKS_PER_1000 * size // 1000)
        chosen = rng.sample(slots, min(len(slots), wanted * len(LEAK_KINDS)))
        for i, c in enumerate(chosen):
            leak_at[c] = LEAK_KINDS[i % len(LEAK_KINDS)]
    undo: dict[int, list[tuple[str, bytes | None]]] = {}
    counts = dict.fromkeys(LEAK_KINDS, 0)
    yaml_files = [i for i, (kind, _) in enumerate(files) if kind == "yaml"]
    for number in range(2, commits + 1):
        changes: list[tuple[str, bytes | None]] = list(undo.pop(number, []))
        kind = leak_at.get(number)
        if kind is not None:
            counts[kind] += 1
            secret = "ghp_" + _token(rng, 36)
            if kind == "plaintext-at-rule":
                path = f"secrets/leaks/new{number}.yaml"
                changes.append((path, f"password: {_token(rng, 20)}\n".encode()))
                revert: list[tuple[str, bytes | None]] = [(path, None)]
            elif kind == "detector-hit":
                path = f"src/settings{number}.py"
                changes.append((path, f'API_TOKEN = "{secret}"\n'.encode()))
                revert = [(path, None)]
            else:
                target = rng.choice(yaml_files)
                path = files[target][1]
                if kind == "hand-added-value":
                    changes.append((path, current[target] + f"extra_password: {_token(rng, 16)}\n".encode()))
                else:
                    changes.append((path, plains[target]))
                revert = [(path, current[target])]
            if counts[kind] % 2 and number + 3 <= commits:
                undo.setdefault(number + 3, []).extend(revert)
        elif not changes:
            target = rng.randrange(len(files))
            versions[target] += 1
            ftype, path = files[target]
            if ftype == "binary":
                current[target] = encrypt(ftype, os.urandom(700))
            else:
                current[target] = _bump(ftype, current[target], versions[target])
            changes.append((path, current[target]))
        commit(number, f"change {number}", changes)
        if number % 1000 == 0:
            out.write(f"reset refs/tags/v{number // 1000}\nfrom :{number}\n\n".encode())
        if number % 2500 == 0:
            out.write(f"reset refs/heads/release-{number}\nfrom :{number}\n\n".encode())
    for mark in sorted({max(1, commits // 4), max(1, commits // 2), commits}):
        out.write(f"reset refs/tags/bench-{mark}\nfrom :{mark}\n\n".encode())
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, env=env, check=True)
    return counts


def _bump(kind: str, blob: bytes, version: int) -> bytes:
    """The file with its unencrypted version field changed: a new valid blob."""
    if kind == "yaml":
        return _replace_line(blob, b"version_unencrypted: ", b"version_unencrypted: %d" % version)
    if kind == "env":
        return _replace_line(blob, b"VERSION_unencrypted=", b"VERSION_unencrypted=%d" % version)
    return _replace_line(blob, b'\t"version_unencrypted": ', b'\t"version_unencrypted": %d,' % version)


def _replace_line(blob: bytes, prefix: bytes, line: bytes) -> bytes:
    start = blob.index(prefix)
    end = blob.index(b"\n", start)
    return blob[:start] + line + blob[end:]


def cached_repo(commits: int, env: dict[str, str], cache: Path) -> tuple[Path, float]:
    repo = cache / f"history-{commits}-v{LAYOUT}"
    if (repo / ".git" / "bench-complete").exists():
        return repo, 0.0
    if repo.exists():
        import shutil

        shutil.rmtree(repo)
    started = time.monotonic()
    counts = generate(repo, commits, env)
    (repo / ".git" / "bench-complete").write_text(json.dumps(counts) + "\n")
    return repo, time.monotonic() - started


# --- measuring -----------------------------------------------------------------------------

#: The command line as the ``sopsflow`` script runs it (:data:`benchlib.ENTRY_POINT`),
#: reporting on stderr its exit code, its own peak RSS and the largest child's
#: (git and the forked workers), in KiB.
_PEAK = ("import os, resource, sys; from sopsflow.main import main; sys.argv[0] = 'sopsflow'; code = main(); "
         "sys.stdout.flush(); "
         "sys.stderr.write(f'\\n{code} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} '"
         "f'{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}'); sys.stderr.flush(); os._exit(code)")


def floor(repo: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of reading every object."""
    started, cpu = time.monotonic(), child_cpu()
    # rev-list prints "ID PATH"; cat-file --batch takes a whole line as the
    # name, so without the cut every blob and subtree would be "missing" and
    # the floor would read only the commits and root trees.
    subprocess.run("git rev-list --all --objects | cut -d' ' -f1 | git cat-file --batch > /dev/null", shell=True,
                   cwd=repo, env=env, check=True)
    return time.monotonic() - started, child_cpu() - cpu


def history(repo: Path, env: dict[str, str], *args: str) -> tuple[float, float, int, str, tuple[int, int]]:
    """(wall seconds, CPU seconds with git and the workers, exit code, text
    output, (own peak RSS, largest child's) in KiB)."""
    started, cpu = time.monotonic(), child_cpu()
    done = subprocess.run([sys.executable, "-c", _PEAK, "history", *args], cwd=repo, env=env,
                          capture_output=True, check=False)
    seconds, used = time.monotonic() - started, child_cpu() - cpu
    code, own, child = done.stderr.decode().rsplit("\n", 1)[-1].split()
    return seconds, used, int(code), done.stdout.decode(), (int(own), int(child))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, help="SOPSFLOW_JOBS for the sopsflow runs (default: automatic)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sopsflow-bench-cache")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.commits < 8:
        parser.error("--commits must be at least 8")
    with tempfile.TemporaryDirectory(prefix="sopsflow-bench-history-") as tmp:
        env = bench_environment(Path(tmp) / "no-key.txt")
        if args.jobs:
            env["SOPSFLOW_JOBS"] = str(args.jobs)
        repo, generated = cached_repo(args.commits, env, args.cache)
        report = Path(tmp) / "history.json"
        floors, floor_cpus, walls, cpus, texts = [], [], [], [], []
        load_before = os.getloadavg()[0]
        history(repo, env, "--report", str(report))  # warm the page cache and the byte-compiled modules
        for _ in range(args.repeat):  # alternate, so that load on the machine hits both alike
            wall, cpu = floor(repo, env)
            floors.append(wall)
            floor_cpus.append(cpu)
            seconds, used, code, text, _ = history(repo, env, "--report", str(report))
            walls.append(seconds)
            cpus.append(used)
            texts.append(text)
        load_after = os.getloadavg()[0]
        detail = json.loads(report.read_text())
        rss, git_rss = {}, {}
        marks = sorted({max(1, args.commits // 4), max(1, args.commits // 2), args.commits})
        for mark in marks:
            rss[mark], git_rss[mark] = history(repo, env, f"bench-{mark}")[4]
    text = texts[-1]
    lines = text.splitlines()
    result = {
        "commits": args.commits,
        "generated_seconds": round(generated, 1),
        "floor_seconds": round(statistics.median(floors), 3),
        "history_seconds": round(statistics.median(walls), 3),
        "ratio": round(statistics.median(walls) / statistics.median(floors), 2),
        "floor_cpu_seconds": round(statistics.median(floor_cpus), 3),
        "history_cpu_seconds": round(statistics.median(cpus), 3),
        "cpu_ratio": round(statistics.median(cpus) / statistics.median(floor_cpus), 2),
        "exit_code": code,
        "exposures": len(detail["exposures"]),
        "blobs": detail["summary"]["blobs"],
        "peak_rss_kib": rss,
        "largest_child_rss_kib": git_rss,
        "rss_spread": round(max(rss.values()) / min(rss.values()) - 1, 3),
        "text_lines": len(lines),
        "text_width": max(map(len, lines)) if lines else 0,
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 1),
        "load_average_while_timed": [round(load_before, 1), round(load_after, 1)],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"sopsflow history: {args.commits} commits, {result['blobs']} blobs, {result['exposures']} exposures "
          f"({result['cpus']} CPUs, load {result['load_average']})")
    if generated:
        print(f"  repository generated in {generated:.0f} s (cached under {args.cache})")
    ok = "ok" if result["ratio"] <= TARGET_RATIO else "MISSED"
    print(f"  floor (rev-list --all --objects | cat-file --batch): {result['floor_seconds']:.2f} s")
    print(f"  sopsflow history --report:                          {result['history_seconds']:.2f} s")
    print(f"  ratio {result['ratio']:.2f} (target <= {TARGET_RATIO:.0f}): {ok}")
    print(f"  CPU (all processes): floor {result['floor_cpu_seconds']:.2f} s, history {result['history_cpu_seconds']:.2f} s, "
          f"CPU ratio {result['cpu_ratio']:.2f} (wall time nears CPU / cores on an idle machine)")
    print(f"  load average (1 min) while timed: {load_before:.1f} at the start, {load_after:.1f} at the end "
          "(other load slows both; the CPU figures barely move)")
    spread_ok = "ok" if result["rss_spread"] <= TARGET_RSS_SPREAD else "MISSED"
    shown = ", ".join(f"{mark} commits {kib / 1024:.1f} MiB" for mark, kib in rss.items())
    print(f"  peak RSS: {shown}; spread {result['rss_spread'] * 100:.0f} % (target <= 20 %): {spread_ok}")
    shown = ", ".join(f"{kib / 1024:.0f}" for kib in git_rss.values())
    print(f"  largest child (git, which maps the pack it reads, or a worker): {shown} MiB")
    size_ok = "ok" if result["text_lines"] <= TARGET_LINES and result["text_width"] <= TARGET_WIDTH else "MISSED"
    print(f"  text report: {result['text_lines']} lines, {result['text_width']} columns "
          f"(target <= {TARGET_LINES} x {TARGET_WIDTH}): {size_ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
