"""``sopsflow set`` and ``sopsflow unset``: change one value of an encrypted
file in place, with the file's own data key (sops' `cmd/sops/main.go`).

Unchanged values keep their exact ENC[] text (the decryption IVs are reused);
``lastmodified`` and the MAC are new; ``version`` is kept. The tree walk
follows sops 3.11's Set/Unset exactly: VALUE is JSON (numbers become floats,
objects mappings), a missing key is created, an index past the end of a list
appends, and a scalar in the way is replaced. Where sops 3.11 crashes (a key
used on a list, a negative index, an empty path) we fail with the same exit
code (2) and a message instead of a Go panic.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from .. import errors
from ..errors import SopsError
from ..logs import logger
from ..tree import (
    KeyNotFound,
    TreeMap,
    TreePathCrash,
    TreeValue,
    TreeWalkCrash,
    parse_tree_path,
    set_path,
    unset_path,
)
from . import common

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import NoReturn


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "set",
        help="set one value in an encrypted file: FILE PATH VALUE (VALUE is JSON)",
        description='Example: sopsflow set secrets.yaml \'["db"]["password"]\' \'"s3cret"\'',
    )
    s.add_argument("args", nargs="*", metavar="FILE PATH [VALUE]")
    s.add_argument("--value-file", action="store_true", help="VALUE names a file holding the JSON value")
    s.add_argument("--value-stdin", action="store_true", help="read the JSON value from stdin (no VALUE)")
    s.add_argument("--idempotent", action="store_true", help="do not write the file if the value is already set")
    _add_common(s)
    s.set_defaults(func=run, set_kind="set")

    u = sub.add_parser("unset", help="remove one key or list item from an encrypted file: FILE PATH")
    u.add_argument("args", nargs="*", metavar="FILE PATH")
    u.add_argument("--idempotent", action="store_true", help="exit 0 when the key does not exist")
    _add_common(u)
    u.set_defaults(func=run, set_kind="unset")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    p.add_argument("--output-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    p.add_argument("--ignore-mac", action="store_true", help="do not verify the MAC")
    # Accepted for compatibility with sops; has no effect on set/unset.
    p.add_argument("--shamir-secret-sharing-threshold", type=int, help=argparse.SUPPRESS)
    common.add_break_hardlinks_flag(p)
    common.add_global_flags(p, suppress=True)


# --- JSON values -------------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"invalid JSON constant {name}")


def _go_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # Go: "cannot unmarshal number ... into float64"
        raise ValueError("number out of range")
    return value


def _fix_string(text: str) -> str:
    """Go's decoder turns lone surrogate escapes into U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def json_value(text: str) -> TreeValue:
    """A set VALUE as sops 3.11 turns it into a tree value (exit 7 when invalid):
    scalars as Go's encoding/json gives them (every number a float), an object
    through the JSON store (so key order and duplicates are kept). A top-level
    array is refused by that store, exactly as sops 3.11 refuses it."""
    try:
        value = json.loads(text, parse_int=_go_float, parse_float=_go_float, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise SopsError(errors.INVALID_SET_FORMAT, "Value for --set is not valid JSON") from None
    if isinstance(value, (dict, list)):
        return _json_object(text)
    if isinstance(value, str):
        return _fix_string(value)
    return value


def _json_object(text: str) -> TreeMap:
    from ..stores import store_by_name

    bad = SopsError(errors.INVALID_SET_FORMAT, "Invalid --set value format")
    try:
        branches = store_by_name("json").load_plain(text.encode("utf-8", "surrogatepass"))
    except (SopsError, UnicodeEncodeError):
        raise bad from None
    if not branches:
        raise bad
    return branches[0]


def _read_value(args: argparse.Namespace) -> str:
    if args.value_stdin:
        raw = sys.stdin.buffer.read()
    elif args.value_file:
        name = args.args[2]
        try:
            with open(name, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise SopsError(errors.GENERIC, f"open {name}: {(exc.strerror or 'cannot read').lower()}") from None
    else:
        raw = os.fsencode(args.args[2])
    # Go keeps the bytes and its JSON decoder replaces invalid UTF-8 with U+FFFD.
    return raw.decode("utf-8", "replace")


# --- the commands ---------------------------------------------------------------------------


def _parse_path(text: str, verb: str) -> list[str | int]:
    message = f"Invalid {verb} index format"
    try:
        path = parse_tree_path(text)
    except TreePathCrash as exc:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"{message}: {exc}") from None
    except ValueError:
        raise SopsError(errors.INVALID_SET_FORMAT, message) from None
    if not path:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"{message}: the path is empty")
    return path


def _check_arg_count(args: argparse.Namespace) -> None:
    if args.set_kind == "unset":
        if len(args.args) != 2:
            raise SopsError(errors.NO_FILE_SPECIFIED, "Error: no file specified, or index is missing")
        return
    if args.value_file and args.value_stdin:
        raise SopsError(errors.GENERIC, "Error: cannot use both --value-file and --value-stdin")
    if args.value_stdin and len(args.args) != 2:
        raise SopsError(
            errors.NO_FILE_SPECIFIED,
            "Error: file specified, or index and value are missing. "
            "Need precisely 2 positional arguments since --value-stdin is used.",
        )
    if not args.value_stdin and len(args.args) != 3:
        raise SopsError(
            errors.NO_FILE_SPECIFIED,
            "Error: no file specified, or index and value are missing. Need precisely 3 positional arguments.",
        )


def run(args: argparse.Namespace) -> int:
    from ..fileio import atomic_write
    from ..operations import decrypt_document, encrypt_document

    _check_arg_count(args)
    file_name = os.path.abspath(args.args[0])
    config = common.load_config_lenient(args)
    in_store = common.pick_store(file_name, args.input_type, args, config)
    out_store = common.pick_store(file_name, args.output_type or args.input_type, args, config)
    path = _parse_path(args.args[1], args.set_kind)
    value = json_value(_read_value(args)) if args.set_kind == "set" else None
    order = common.decryption_order(args)
    doc = decrypt_document(
        in_store,
        common.read_existing(file_name, for_rewrite=True),
        ignore_mac=args.ignore_mac,
        decryption_order=order,
        check_version=True,
    )
    try:
        changed = _apply(doc.branches, args.set_kind, path, value)
    except KeyNotFound:
        if args.idempotent:
            return 0
        raise
    except TreeWalkCrash as exc:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"Error walking tree: {exc}") from None
    result = encrypt_document(out_store, doc.branches, doc.metadata, doc.data_key, doc.cipher)
    if args.set_kind == "set" and not changed and args.idempotent:
        logger().info("File not written due to no change")
        return 0
    atomic_write(file_name, result, break_hardlinks=getattr(args, "break_hardlinks", False))
    return 0


def _apply(branches: list[TreeMap], kind: str, path: list[str | int], value: TreeValue) -> bool:
    if kind == "set":
        branches[0], changed = set_path(branches[0], path, value)
        return changed
    branches[0] = unset_path(branches[0], path)
    return True
