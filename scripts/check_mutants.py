#!/usr/bin/env python3
"""Mutation pins: each patch under tests/mutants/ must be caught by the tests it names.

A mutant is a unified diff against the tree (``git diff`` output) breaking one
promise on purpose, with a header of ``#`` lines before the diff:

    # Mutant: what the patch breaks
    # Promise: what sopsflow guarantees that the mutant violates
    # Tests: tests/test_x.py tests/test_y.py::test_z   (pytest ids; may repeat)

For every mutant this script copies the repository's files (tracked and
untracked, ignored ones left out: the current state, committed or not) into a
temporary directory, applies the patch there, and runs the named tests with
this interpreter's pytest. A mutant is *killed* when the tests fail, *survived*
when they pass. Before any mutant, the named tests run once on an unpatched
copy: they must pass there, or a kill would prove nothing. The caller's work
tree is only read.

Exit status: 0 when every mutant was killed, 1 when one survived or a patch no
longer applies, 2 when the baseline fails or the arguments are wrong.

    python scripts/check_mutants.py [--jobs N] [--keep] [NAME ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "tests" / "mutants"


@dataclass
class Mutant:
    name: str
    path: Path
    title: str
    tests: list[str]


def parse_mutant(path: Path) -> Mutant:
    """The header of a patch file: its ``# Mutant:`` title and ``# Tests:`` ids."""
    fields = parse_header(path.read_text(encoding="utf-8"))
    tests = fields.get("Tests", "").split()
    if not tests:
        raise SystemExit(f"{path.name}: no '# Tests:' line in the header")
    return Mutant(path.name.removesuffix(".patch"), path, fields.get("Mutant", ""), tests)


def parse_header(text: str) -> dict[str, str]:
    """The ``# Field: value`` lines before the diff; a ``#`` line without a
    field name continues the previous field."""
    fields: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if not line.startswith("#"):
            break  # the diff begins
        body = line[1:].strip()
        name, colon, value = body.partition(":")
        if colon and name.isalpha() and name[:1].isupper():
            current = name
            fields[current] = value.strip()
        elif current:
            fields[current] = (fields[current] + " " + body).strip()
    return fields


def load_mutants(names: list[str]) -> list[Mutant]:
    mutants = [parse_mutant(p) for p in sorted(MUTANTS.glob("*.patch"))]
    if names:
        unknown = sorted(set(names) - {m.name for m in mutants})
        if unknown:
            raise SystemExit(f"no such mutant: {', '.join(unknown)} (have: {', '.join(m.name for m in mutants)})")
        mutants = [m for m in mutants if m.name in names]
    return mutants


def copy_tree(dest: Path) -> None:
    """The repository's files as they are now (tracked and untracked, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout
    for raw in listed.split(b"\0"):
        if not raw:
            continue
        rel = os.fsdecode(raw)
        source = ROOT / rel
        if not os.path.lexists(source):
            continue  # deleted in the work tree, not yet in the index
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)


def test_env(copy: Path) -> dict[str, str]:
    """The environment for tests in ``copy``: its sources first on the path, and
    the shared test vectors where the caller's tree finds them (the copy lives
    elsewhere, so their path relative to the tree would not hold)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if "SOPSFLOW_SHARED" not in env:
        sys.path.insert(0, str(ROOT))
        try:
            from tests.vectors import SHARED

            env["SOPSFLOW_SHARED"] = str(SHARED)
        finally:
            sys.path.pop(0)
    return env


def run_tests(copy: Path, tests: list[str], jobs: int, log: Path) -> int:
    """pytest's exit status for ``tests`` run in ``copy``; the output goes to ``log``."""
    # -x only without workers: pytest-xdist reports a stop at the first failure
    # as an interruption (exit 2), not as failed tests (exit 1).
    stop = ["-x"] if jobs == 0 else []
    argv = [sys.executable, "-m", "pytest", "-q", *stop, "-p", "no:cacheprovider", "-n", str(jobs), *tests]
    with log.open("wb") as out:
        return subprocess.run(argv, cwd=copy, env=test_env(copy), stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode


def apply_patch(copy: Path, patch: Path) -> str:
    """'' when the patch applied, else git's complaint."""
    # The copy is no repository: stop git from finding one above it and
    # applying the paths relative to that one's root.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = str(copy.parent)
    done = subprocess.run(["git", "apply", "--whitespace=nowarn", str(patch)], cwd=copy, capture_output=True,
                          text=True, env=env)
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["git apply failed"])[0]


def tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
    return "\n".join("    " + line for line in text[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="mutants to check (default: all)")
    parser.add_argument("--jobs", "-n", type=int, default=2, help="pytest-xdist workers per run (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies and logs")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run on the unpatched copy")
    args = parser.parse_args(argv)
    mutants = load_mutants(args.names)
    if not mutants:
        print("no mutants under tests/mutants/")
        return 2
    work = Path(tempfile.mkdtemp(prefix="sopsflow-mutants-"))
    try:
        if not args.no_baseline:
            base = work / "baseline"
            copy_tree(base)
            wanted = list(dict.fromkeys(t for m in mutants for t in m.tests))
            print(f"baseline: {len(wanted)} test ids on the unpatched tree ...", flush=True)
            code = run_tests(base, wanted, args.jobs, work / "baseline.log")
            if code != 0:
                print(f"baseline FAILED (pytest exit {code}): the named tests must pass without a mutant\n"
                      + tail(work / "baseline.log"))
                return 2
            shutil.rmtree(base)
        results: dict[str, str] = {}
        for mutant in mutants:
            copy = work / mutant.name
            copy_tree(copy)
            problem = apply_patch(copy, mutant.path)
            if problem:
                results[mutant.name] = "stale"
                print(f"STALE     {mutant.name}: the patch no longer applies ({problem})", flush=True)
                continue
            start = time.monotonic()
            log = work / f"{mutant.name}.log"
            code = run_tests(copy, mutant.tests, args.jobs, log)
            took = time.monotonic() - start
            if code == 1:
                results[mutant.name] = "killed"
                print(f"KILLED    {mutant.name} ({took:.0f} s)", flush=True)
            elif code == 0:
                results[mutant.name] = "survived"
                print(f"SURVIVED  {mutant.name}: {mutant.title}\n    tests: {' '.join(mutant.tests)}", flush=True)
            else:  # usage error, no tests collected, interrupted: no verdict
                results[mutant.name] = "error"
                print(f"ERROR     {mutant.name}: pytest exit {code}\n" + tail(log), flush=True)
            if not args.keep:
                shutil.rmtree(copy)
        counts = {v: sum(1 for r in results.values() if r == v) for v in ("killed", "survived", "stale", "error")}
        print(", ".join(f"{n} {v}" for v, n in counts.items() if n) + f" of {len(results)} mutants")
        return 0 if counts["killed"] == len(results) else 1
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
