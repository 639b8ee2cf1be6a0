"""``sopsflow install-hooks [--force] [--chain]``: install the native git
pre-commit hook that runs ``sopsflow check``, for teams not using the
pre-commit framework (those add the ``sopsflow-check`` hook of this
repository's ``.pre-commit-hooks.yaml`` instead), and a ``pre-merge-commit``
hook that runs it too: git runs that one, not pre-commit, when a merge
commits without a conflict, and a merge can bring in a file whose recipients
its rule does not name.

* The hooks directory is git's own answer (``git rev-parse --git-path
  hooks``), so ``core.hooksPath`` (relative, absolute or ``~``) and linked
  work trees are respected; it is created when missing.
* A hook sopsflow installed earlier (it carries :data:`MARKER`) is updated.
* A foreign hook is never overwritten silently: ``--chain`` keeps it as
  ``pre-commit.local`` (``pre-merge-commit.local``) and the sopsflow hook
  runs it first; ``--force`` replaces it (a copy is kept as
  ``pre-commit.sopsflow-backup``).

The script written is :data:`HOOK_SCRIPT` (the same text as ``hooks/pre-commit``
in the source tree) with the installing Python filled in as the default
interpreter, so the hook works even where ``PATH`` lacks the virtualenv.

Extension point: other features add their own install steps (``--drivers``
for the git diff/merge drivers) by naming a module in
:data:`EXTENSION_MODULES` that defines ``INSTALL_STEP`` (an
:class:`InstallStep`): its flags are added to this command and its ``run`` is
called after the hook is in place.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .. import errors
from ..errors import SopsError

MARKER = "# sopsflow-managed-hook"
HOOK_NAME = "pre-commit"
MERGE_HOOK_NAME = "pre-merge-commit"
LOCAL_SUFFIX = ".local"
BACKUP_SUFFIX = ".sopsflow-backup"
_DEFAULT_LINE = 'SOPSFLOW_PYTHON_DEFAULT=""'

#: The native hook; kept identical to hooks/pre-commit (a test compares them).
HOOK_SCRIPT = """#!/bin/sh
# sopsflow-managed-hook (installed by `sopsflow install-hooks`; safe to re-run)
#
# Refuses a commit that would put a plaintext secret into history: runs
# `sopsflow check` on what is staged. A hook that was here before
# `sopsflow install-hooks --chain` was kept as pre-commit.local and runs first.
# Bypass once, knowingly: git commit --no-verify
#
# Which sopsflow runs: $SOPSFLOW (a command), else the Python that
# install-hooks ran with, else `sopsflow` on PATH, else python3/python with
# sopsflow importable. None found: the commit is refused (fail closed).

SOPSFLOW_PYTHON_DEFAULT=""

hook_dir=$(dirname "$0")
status=0

if [ -x "$hook_dir/pre-commit.local" ]; then
    "$hook_dir/pre-commit.local" "$@" || status=1
fi

run_check() {
    if [ -n "${SOPSFLOW:-}" ]; then
        $SOPSFLOW check
        return $?
    fi
    if [ -n "$SOPSFLOW_PYTHON_DEFAULT" ] && [ -x "$SOPSFLOW_PYTHON_DEFAULT" ]; then
        "$SOPSFLOW_PYTHON_DEFAULT" -m sopsflow check
        return $?
    fi
    if command -v sopsflow >/dev/null 2>&1; then
        sopsflow check
        return $?
    fi
    for py in python3 python; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sopsflow' >/dev/null 2>&1; then
            "$py" -m sopsflow check
            return $?
        fi
    done
    echo "sopsflow pre-commit hook: sopsflow not found (not on PATH, no python can import it): commit refused." >&2
    echo "Install sopsflow, or set SOPSFLOW to its command. Bypass once: git commit --no-verify" >&2
    return 1
}

run_check || status=1
exit $status
"""


#: Merge commits made without a conflict run this hook instead of pre-commit;
#: kept identical to hooks/pre-merge-commit (a test compares them).
MERGE_HOOK_SCRIPT = """#!/bin/sh
# sopsflow-managed-hook (installed by `sopsflow install-hooks`; safe to re-run)
#
# git runs pre-merge-commit, not pre-commit, when `git merge` commits without
# a conflict: run the same checks on the merged index. A hook that was here
# before `sopsflow install-hooks --chain` was kept as pre-merge-commit.local
# and runs first. Bypass once, knowingly: git merge --no-verify

hook_dir=$(dirname "$0")
status=0

if [ -x "$hook_dir/pre-merge-commit.local" ]; then
    "$hook_dir/pre-merge-commit.local" "$@" || status=1
fi
"$hook_dir/pre-commit" || status=1
exit $status
"""


class InstallStep(NamedTuple):
    """An extra installer: ``add_arguments(parser)`` adds its flags,
    ``run(args, repo_root, hooks_dir)`` does its work (it decides from ``args``
    whether it was asked for) and returns lines to print."""

    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Path, Path], list[str]]


#: Modules defining ``INSTALL_STEP``; missing ones are skipped.
EXTENSION_MODULES: tuple[str, ...] = (
    "sopsflow.commands.drivers",  # --drivers: git diff/merge drivers
)


def _extension_steps() -> list[InstallStep]:
    steps = []
    for name in EXTENSION_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        steps.append(module.INSTALL_STEP)
    return steps


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install-hooks",
        help="install the git pre-commit hook that runs `sopsflow check`",
        description="Install the native git pre-commit hook (core.hooksPath respected). A foreign hook is "
        "kept unless --force; --chain keeps it as pre-commit.local and runs it first.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--force", action="store_true", help="replace a foreign pre-commit hook (a backup is kept)")
    mode.add_argument("--chain", action="store_true",
                      help="keep a foreign pre-commit hook as pre-commit.local and run it before sopsflow")
    for step in _extension_steps():
        step.add_arguments(p)
    p.set_defaults(func=run)


def hook_script(python: str | None = None) -> str:
    """The hook text, with ``python`` as the default interpreter."""
    if not python:
        return HOOK_SCRIPT
    return HOOK_SCRIPT.replace(_DEFAULT_LINE, f"SOPSFLOW_PYTHON_DEFAULT={shlex.quote(python)}", 1)


def _git(args: list[str], cwd: Path) -> str:
    from ..git.repo import run_git

    done = run_git(args, cwd)
    if done.returncode != 0:
        message = (done.stderr.decode(errors="replace").strip().splitlines() or ["git failed"])[-1]
        raise SopsError(errors.GENERIC, f"git {' '.join(args)}: {message}")
    return done.stdout.decode("utf-8", "surrogateescape").rstrip("\n")


def hooks_dir(cwd: Path) -> tuple[Path, Path]:
    """(work tree root, hooks directory) of the repository containing ``cwd``."""
    root = Path(_git(["rev-parse", "--show-toplevel"], cwd))
    hooks = Path(_git(["rev-parse", "--git-path", "hooks"], root))
    return root, hooks if hooks.is_absolute() else root / hooks


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def install(hooks: Path, *, force: bool = False, chain: bool = False, python: str | None = None) -> list[str]:
    """Install the hooks into ``hooks``; returns what was done, line by line.
    Raises SopsError (exit 1) for a foreign hook without --force/--chain."""
    hooks.mkdir(parents=True, exist_ok=True)
    targets = [(HOOK_NAME, hook_script(python)), (MERGE_HOOK_NAME, MERGE_HOOK_SCRIPT)]
    for name, _script in targets:  # refuse before writing anything
        target = hooks / name
        if os.path.lexists(target) and not is_ours(target) and not (chain or force):
            hint = ""
            if "pre-commit.com" in _read(target):
                hint = " It is the pre-commit framework's hook: add the sopsflow-check hook to .pre-commit-config.yaml instead."
            raise SopsError(
                errors.GENERIC,
                f"{target} exists and was not installed by sopsflow: rerun with --chain to keep running it "
                f"before sopsflow, or --force to replace it.{hint}",
            )
        local = hooks / (name + LOCAL_SUFFIX)
        if os.path.lexists(target) and not is_ours(target) and chain and os.path.lexists(local):
            raise SopsError(errors.GENERIC, f"{local} already exists: move it away first (or use --force)")
    messages = []
    for name, script in targets:
        messages.extend(_install_one(hooks, name, script, chain=chain))
    return messages


def _install_one(hooks: Path, name: str, script: str, *, chain: bool) -> list[str]:
    target = hooks / name
    messages = []
    if os.path.lexists(target) and not is_ours(target):
        if chain:
            local = hooks / (name + LOCAL_SUFFIX)
            os.rename(target, local)
            if not os.path.islink(local):
                local.chmod(local.stat().st_mode | 0o111)
            messages.append(f"kept the existing hook as {local}; the sopsflow hook runs it first")
        else:  # --force
            backup = hooks / (name + BACKUP_SUFFIX)
            os.replace(target, backup)
            messages.append(f"replaced the existing hook (copy kept as {backup})")
    if os.path.lexists(target) and not os.path.islink(target) and _read(target) == script:
        messages.append(f"{target} is already up to date")
    else:
        if os.path.islink(target):
            target.unlink()
        tmp = target.with_name(f".{name}.sopsflow-tmp")
        tmp.write_text(script)
        tmp.chmod(0o755)
        os.replace(tmp, target)
        messages.append(f"installed {target}")
    return messages


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def run(args: argparse.Namespace) -> int:
    root, hooks = hooks_dir(Path.cwd())
    lines = install(hooks, force=args.force, chain=args.chain, python=sys.executable)
    for step in _extension_steps():
        lines.extend(step.run(args, root, hooks))
    for line in lines:
        print(line)
    return 0
