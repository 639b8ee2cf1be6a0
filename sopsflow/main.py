"""The ``sopsflow`` command line: sops' subcommands and flags, plus sopsflow's own."""

from __future__ import annotations

import importlib
import os
import sys

from . import errors, logs
from .errors import SopsError

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
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


def _parser_classes() -> tuple[type[argparse.ArgumentParser], type[argparse.Action]]:
    """The parser class and the --version action, defined on first use: argparse
    (with gettext and locale, ~3 ms with building the parser) is imported only
    by the runs that need a parser (see _fast_args)."""
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    import argparse

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

    class Version(argparse.Action):
        """``--version``, worded for the name the program was called by; the
        wording lives with the classic command line, imported only when asked."""

        def __init__(self, option_strings: list[str], dest: str, **_: Any) -> None:
            super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version")

        def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
            from .commands.classic import version_line

            sys.stdout.write(version_line(sys.argv[0]) + "\n")
            parser.exit()

    _CLASSES = (Parser, Version)
    return _CLASSES


_CLASSES: tuple[type[argparse.ArgumentParser], type[argparse.Action]] | None = None


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


#: The commands for which sops reads SOPS_KEYSERVICE.
_KEY_SERVICE_USERS = frozenset(
    ("exec-env", "exec-file", "updatekeys", "decrypt", "encrypt", "rotate", "edit", "set", "unset")
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only`` just that command's module is loaded."""
    from .commands import common

    parser_class, version_action = _parser_classes()
    parser = parser_class(
        prog="sopsflow",
        description="SOPS-compatible secrets for GitOps repositories.",
    )
    parser.add_argument("--version", action=version_action)
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


#: The global flags' defaults, as build_parser() leaves them in every command's namespace.
_GLOBAL_DEFAULTS: dict[str, object] = {
    "config": None, "indent": None, "verbose": False, "decryption_order": None,
    "encrypted_comment_regex": None, "unencrypted_comment_regex": None, "mac_only_encrypted": None,
}
_IN_PLACE = {"-i": "in_place", "--in-place": "in_place"}
_STORE_FLAGS = {"--input-type": "input_type", "--output-type": "output_type", "--filename-override": "filename_override"}
#: Per command: {option taking a value: dest}, {flag: dest}, the command's own defaults.
_FAST_COMMANDS: dict[str, tuple[dict[str, str], dict[str, str], dict[str, object]]] = {
    "decrypt": (
        {"--output": "output", "--extract": "extract", **_STORE_FLAGS},
        {**_IN_PLACE, "--ignore-mac": "ignore_mac"},
        {"file": None, "in_place": False, "output": None, "extract": None, "ignore_mac": False, "input_type": None,
         "output_type": None, "filename_override": None, "break_hardlinks": False},
    ),
    "encrypt": (
        {"--output": "output", "-a": "age", "--age": "age", "-p": "pgp", "--pgp": "pgp", **_STORE_FLAGS},
        dict(_IN_PLACE),
        {"file": None, "in_place": False, "output": None, "input_type": None, "output_type": None,
         "filename_override": None, "age": None, "pgp": None, "kms": None, "aws_profile": None,
         "encryption_context": None, "gcp_kms": None, "hckms": None, "azure_kv": None, "hc_vault_transit": None,
         "shamir_secret_sharing_threshold": None, "unencrypted_suffix": None, "encrypted_suffix": None,
         "unencrypted_regex": None, "encrypted_regex": None, "break_hardlinks": False},
    ),
}


def _fast_args(args_list: list[str]) -> argparse.Namespace | None:
    """What ``build_parser(command).parse_args(args_list)`` returns, read
    without argparse for the plainest forms of the commands that hooks and
    pipelines run most: at most one file, and options from _FAST_COMMANDS
    given once each, a value as the next argument. Importing argparse (with
    gettext and locale) and building the parser cost ~3 ms of a ~25 ms run.
    Anything else (other options, ``--opt=value``, ``--``, an argument that
    starts with "-" or is empty) returns None and goes to argparse, which also
    words every error. tests/test_startup_imports.py holds the two to the same
    result."""
    spec = _FAST_COMMANDS.get(args_list[0]) if args_list else None
    if spec is None:
        return None
    takes_value, flags, defaults = spec
    values: dict[str, object] = {**_GLOBAL_DEFAULTS, **defaults}
    seen: set[str] = set()
    file = None
    i, count = 1, len(args_list)
    while i < count:
        arg = args_list[i]
        if not arg or arg[0] == "-":
            dest = takes_value.get(arg)
            if dest is not None:
                i += 1
                if i == count or not args_list[i] or args_list[i][0] == "-":
                    return None
                value: object = args_list[i]
            else:
                dest = flags.get(arg)
                if dest is None:
                    return None
                value = True
            if dest in seen:
                return None
            seen.add(dest)
            values[dest] = value
        elif file is None:
            file = arg
        else:
            return None
        i += 1
    module = importlib.import_module(f"sopsflow.commands.{COMMANDS[args_list[0]]}")
    values.update(command=args_list[0], file=file, func=module.run)
    from types import SimpleNamespace

    return SimpleNamespace(**values)  # type: ignore[return-value]  # argparse.Namespace's attributes


def run_command(args_list: list[str]) -> int:
    """Parse and run a subcommand argument list (``decrypt FILE``, ...)."""
    fast = _fast_args(args_list)
    if fast is not None:
        args = fast
    else:
        parser = build_parser(_command_in(args_list))
        if "-h" in args_list or "--help" in args_list:
            from .commands.examples import add_examples

            add_examples(parser)
        args = parser.parse_args(args_list)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return errors.NO_FILE_SPECIFIED
    logs.configure_cli(bool(getattr(args, "verbose", False)))
    remote = getattr(args, "keyservice", None)
    if not remote and os.environ.get("SOPS_KEYSERVICE") and getattr(args, "command", None) in _KEY_SERVICE_USERS:
        remote = os.environ["SOPS_KEYSERVICE"].split(",")
    if remote and getattr(args, "func", None):
        from .commands.classic import refuse_keyservice

        return _guarded(lambda: refuse_keyservice(remote))
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
