"""The ``sopsflow`` command line: sops' subcommands and flags, plus sopsflow's own."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from . import __version__, errors, logs
from .errors import SopsError

# Command name -> module under sopsflow.commands (each has register(subparsers)).
# Only the module of the command being run is imported, so `sopsflow check` in
# a hook does not pay for importing every other command.
COMMANDS = {
    "encrypt": "encrypt",
    "decrypt": "decrypt",
    "edit": "edit",
    "set": "set_unset",
    "unset": "set_unset",
    "rotate": "rotate",
    "updatekeys": "updatekeys",
    "filestatus": "filestatus",
    "exec-env": "exec_cmd",
    "exec-file": "exec_cmd",
    "groups": "groups",
    "rules": "rules",
    "check": "check",
    "verify": "verify",
    "install-hooks": "install_hooks",
    "recipients": "recipients",
    "flux": "flux",
    "textconv": "drivers",
    "merge-driver": "drivers",
    "publish": "publish",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only`` just that command's module is loaded."""
    from .commands import common

    parser = argparse.ArgumentParser(
        prog="sopsflow",
        description="SOPS-compatible secrets for GitOps repositories.",
    )
    parser.add_argument("--version", action="version", version=f"sopsflow {__version__} (sops 3.11 format)")
    common.add_global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [COMMANDS[only]] if only in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(f"sopsflow.commands.{name}").register(sub)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The first argument that names a command, skipping global flags and their values."""
    takes_value = {
        "--config",
        "--indent",
        "--decryption-order",
        "--encrypted-comment-regex",
        "--unencrypted-comment-regex",
    }
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in COMMANDS:
            return arg
        if arg in takes_value:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return None
    return None


def _fail(message: str, code: int, detail: str | None = None) -> int:
    sys.stderr.write(message.rstrip("\n") + "\n")
    if detail:
        sys.stderr.write(detail.rstrip("\n") + "\n")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `sopsflow FILE` edits FILE, as `sops FILE` does.
    if args_list and not args_list[0].startswith("-") and args_list[0] not in COMMANDS:
        args_list.insert(0, "edit")
    parser = build_parser(_command_in(args_list))
    args = parser.parse_args(args_list)
    logs.configure_cli(bool(getattr(args, "verbose", False)))
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


def run() -> None:
    """The command-line entry point: :func:`main`, then exit at once.

    A normal interpreter exit tears down every module and object, which after
    an updatekeys run costs ~20 ms - more than many whole commands. Nothing is
    left for it to do: files are written and closed by the commands, so only
    the standard streams need flushing."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # reader gone, or stream closed: nothing left to say
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
