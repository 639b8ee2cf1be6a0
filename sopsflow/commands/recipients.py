"""``sopsflow recipients add|remove KEY``: edit ``.sops.yaml`` recipients in place.

Comments and layout of the file are kept (ruamel.yaml round trip). The
files themselves are not touched unless ``--update`` runs updatekeys.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .. import errors
from ..errors import SopsError
from . import common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipients", help="add or remove a recipient in .sops.yaml (comments kept)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("add", "add KEY to a creation rule"), ("remove", "remove KEY from creation rules")):
        a = actions.add_parser(name, help=text)
        a.add_argument("key", metavar="KEY", help="age recipient, PGP fingerprint or AWS KMS ARN[+ROLE_ARN]")
        which = a.add_mutually_exclusive_group()
        which.add_argument("--rule", type=int, metavar="N", help="creation rule index (0-based, as in the file)")
        which.add_argument("--path-regex", metavar="RE", help="the rule whose path_regex is exactly RE")
        a.add_argument("--group", type=int, metavar="N", help="key group number (1-based, as updatekeys shows it) for rules with key_groups")
        a.add_argument("--type", choices=("age", "pgp", "kms"), help="key type (default: from the key's shape)")
        a.add_argument("--update", action="store_true", help="run updatekeys afterwards")
        a.add_argument("-y", "--yes", action="store_true", help="with --update: do not ask for confirmation")
        common.add_global_flags(a, suppress=True)
        a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..fileio import atomic_write, read_bytes
    from ..gitops.recipients import add_recipient, remove_recipient

    config_file = common.config_path(args)
    if config_file is None:
        raise SopsError(errors.CONFIG_FILE_NOT_FOUND, "no .sops.yaml found (searched from the current directory up)")
    try:
        # Kept for the write, which refuses if someone changed the file meanwhile.
        text = read_bytes(config_file, for_rewrite=True).decode("utf-8")
    except OSError as exc:
        raise SopsError(errors.ERROR_READING_CONFIG, f"cannot read {config_file}: {exc.strerror}") from None
    edit = add_recipient if args.action == "add" else remove_recipient
    result = edit(text, args.key, key_type=args.type, rule=args.rule, path_regex=args.path_regex, group=args.group)
    for message in result.messages:
        sys.stdout.write(message + "\n")
    if not result.changed_rules:
        return 0
    _validate(config_file, result.text)
    atomic_write(config_file, result.text.encode("utf-8"))
    if not result.layout_exact:
        sys.stderr.write(f"note: {config_file.name} could not be kept byte for byte; review `git diff` of it\n")
    if not args.update:
        sys.stdout.write(f"{config_file} updated. Run `sopsflow updatekeys` to re-encrypt the affected files.\n")
        return 0
    return _run_updatekeys(args, config_file)


def _validate(config_file: Path, text: str) -> None:
    """Load the edited text as sopsflow (and sops) will before replacing the file."""
    from ..config.decoder import load_config

    fd, tmp = tempfile.mkstemp(prefix=".sops.yaml.", suffix=".check", dir=config_file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        config = load_config(tmp)
        for rule in config.rules:
            rule.key_groups()
    except SopsError as exc:
        raise SopsError(errors.ERROR_READING_CONFIG, f"the edit would make .sops.yaml invalid: {exc.message}") from None
    finally:
        os.unlink(tmp)


def _run_updatekeys(args: argparse.Namespace, config_file: Path) -> int:
    from ..gitops.updatekeys import UpdateRequest, update_keys

    paths: list[str] = []
    try:
        from ..git.repo import open_repo

        open_repo(Path.cwd())
    except Exception:
        paths = [str(config_file.parent)]  # not a git repository: the config's directory tree
    return update_keys(UpdateRequest(
        paths=paths, yes=args.yes, config=str(config_file), indent=getattr(args, "indent", None),
        decryption_order=getattr(args, "decryption_order", None), verbose=bool(getattr(args, "verbose", False)),
    ))
