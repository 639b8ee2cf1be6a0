"""The ``sopsflow`` command line: sops' subcommands and flags, plus sopsflow's own."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from . import errors, logs
from .errors import SopsError

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

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
    "history": "history",
    "install-hooks": "install_hooks",
    "recipients": "recipients",
    "rotate-recipient": "rotate_recipient",
    "flux": "flux",
    "textconv": "drivers",
    "merge-driver": "drivers",
    "install-sops-link": "sops_link",
    "publish": "publish",
    "ksops": "ksops",
    "argocd": "argocd",
}


class Parser(argparse.ArgumentParser):
    """An argument parser that never guesses: with prefix matching on,
    ``--decrypt`` would be read as ``--decryption-order``. Subparsers inherit
    the class, so every parser of the command line refuses abbreviations."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse builds a formatter for every add_argument, and without a
        # width the formatter imports shutil (with bz2, lzma and zlib) to ask
        # for the terminal's: the same answer from os alone, minus argparse's 2.
        return self.formatter_class(prog=self.prog, width=_terminal_columns() - 2)  # type: ignore[call-arg]


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS, else the terminal's, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    if stdout is None:
        return 80
    try:
        return os.get_terminal_size(stdout.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Version(argparse.Action):
    """``--version``, worded for the name the program was called by; the
    wording lives with the classic command line, imported only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **_: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from .commands.classic import version_line

        sys.stdout.write(version_line(sys.argv[0]) + "\n")
        parser.exit()


#: The commands for which sops reads SOPS_KEYSERVICE.
_KEY_SERVICE_USERS = frozenset(
    ("exec-env", "exec-file", "updatekeys", "decrypt", "encrypt", "rotate", "edit", "set", "unset")
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only`` just that command's module is loaded."""
    from .commands import common

    parser = Parser(
        prog="sopsflow",
        description="SOPS-compatible secrets for GitOps repositories.",
    )
    parser.add_argument("--version", action=_Version)
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


def _guarded(action: Callable[[], int]) -> int:
    """Run ``action``; a failure is one clear message and sops' exit code."""
    try:
        return int(action() or 0)
    except SopsError as exc:
        return _fail(exc.message, exc.code, exc.detail)
    except KeyboardInterrupt:
        return _fail("Interrupted", errors.KEYBOARD_INTERRUPT)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # never a traceback for users; SOPSFLOW_DEBUG=1 shows it
        if os.environ.get("SOPSFLOW_DEBUG"):
            raise
        if isinstance(exc, FileNotFoundError) and errors.working_directory_gone():
            # a relative path (or git) needed the deleted working directory
            return _fail(errors.getwd_error().message, errors.GENERIC)
        return _fail(f"sopsflow: internal error ({type(exc).__name__}); rerun with SOPSFLOW_DEBUG=1 for details", 1)


def run_command(args_list: list[str]) -> int:
    """Parse and run a subcommand argument list (``decrypt FILE``, ...)."""
    parser = build_parser(_command_in(args_list))
    if "-h" in args_list or "--help" in args_list:
        from .commands.examples import add_examples

        add_examples(parser)
    args = parser.parse_args(args_list)
    logs.configure_cli(bool(getattr(args, "verbose", False)))
    remote = getattr(args, "keyservice", None)
    if not remote and os.environ.get("SOPS_KEYSERVICE") and getattr(args, "command", None) in _KEY_SERVICE_USERS:
        remote = os.environ["SOPS_KEYSERVICE"].split(",")
    if remote and getattr(args, "func", None):
        from .commands.classic import refuse_keyservice

        return _guarded(lambda: refuse_keyservice(remote))
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return errors.NO_FILE_SPECIFIED
    return _guarded(lambda: args.func(args))


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """The command line. ``prog`` is the name it was called by (argv[0]): as
    ``sops`` it introduces itself as sops does."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    prog = sys.argv[0] if prog is None else prog
    if args_list and args_list[0] in COMMANDS:
        return run_command(args_list)  # the common case, and a hook's: no classic-mode import
    from .commands import classic

    word = classic.first_positional(args_list)
    if word in COMMANDS:
        if "--" in args_list and args_list[args_list.index("--") + 1 :][:1] == [word]:
            args_list.remove("--")  # `sops -- decrypt FILE` runs decrypt, as in sops
        return run_command(args_list)
    if word in classic.REFUSED:
        return classic.refuse(word)
    if word in ("help", "h"):
        return classic.show_help(args_list, prog, run_command)
    if word == "completion":
        return _guarded(lambda: classic.completion(args_list))
    return _guarded(lambda: classic.run(args_list, prog, run_command))


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
