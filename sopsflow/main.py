"""The ``sopsflow`` command line: sops' subcommands and flags, plus sopsflow's own."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__, errors
from .errors import SopsError

# Command modules under sopsflow.commands; each has register(subparsers).
# Modules that are not there yet are skipped, so a partial install still runs.
COMMAND_MODULES = (
    "encrypt",
    "decrypt",
    "edit",
    "set_unset",
    "rotate",
    "updatekeys",
    "filestatus",
    "exec_cmd",
    "groups",
    "rules",
    "check",
    "verify",
    "install_hooks",
    "recipients",
    "flux",
    "drivers",
)


def build_parser() -> argparse.ArgumentParser:
    from .commands import common

    parser = argparse.ArgumentParser(
        prog="sopsflow",
        description="SOPS-compatible secrets for GitOps repositories.",
    )
    parser.add_argument("--version", action="version", version=f"sopsflow {__version__} (sops 3.11 format)")
    common.add_global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"sopsflow.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sopsflow.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def _fail(message: str, code: int, detail: str | None = None) -> int:
    sys.stderr.write(message.rstrip("\n") + "\n")
    if detail:
        sys.stderr.write(detail.rstrip("\n") + "\n")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # `sopsflow FILE` edits FILE, as `sops FILE` does.
    choices = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            choices = set(action.choices)
    if args_list and not args_list[0].startswith("-") and args_list[0] not in choices and "edit" in choices:
        args_list.insert(0, "edit")
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="[sopsflow] %(levelname)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return errors.NO_FILE_SPECIFIED
    try:
        return int(args.func(args) or 0)
    except SopsError as exc:
        return _fail(exc.message, exc.code, exc.detail)
    except KeyboardInterrupt:
        return _fail("Interrupted", errors.KEYBOARD_INTERRUPT)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # never a traceback for users; SOPSFLOW_DEBUG=1 shows it
        if os.environ.get("SOPSFLOW_DEBUG"):
            raise
        return _fail(f"sopsflow: internal error ({type(exc).__name__}); rerun with SOPSFLOW_DEBUG=1 for details", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
