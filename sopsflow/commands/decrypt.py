"""``sopsflow decrypt``: decrypt a SOPS file (whole, or one value with --extract)."""

from __future__ import annotations

import argparse

from .. import errors
from ..errors import SopsError
from ..tree import TreeMap, TreePathCrash, parse_tree_path
from . import common

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decrypt", help="decrypt a file")
    p.add_argument("file", nargs="?", help="file to decrypt (- or omitted: stdin)")
    p.add_argument("-i", "--in-place", action="store_true", help="write the plaintext back to the file")
    p.add_argument("--output", help="write the plaintext to this file")
    p.add_argument("--extract", help='one value, e.g. \'["data"]["password"]\'')
    p.add_argument("--ignore-mac", action="store_true", help="do not verify the MAC")
    common.add_store_flags(p)
    common.add_break_hardlinks_flag(p)
    common.add_global_flags(p, suppress=True)
    p.set_defaults(func=run)


def parse_extract_path(text: str) -> list[Any]:
    """The ``--extract`` path, by the parser ``set`` and ``unset`` use."""
    try:
        return list(parse_tree_path(text))
    except TreePathCrash as exc:
        # sops panics here (exit 2)
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"error parsing --extract path: {exc}") from None
    except ValueError as exc:
        raise SopsError(errors.INVALID_TREE_PATH_FORMAT, f"error parsing --extract path: {exc}") from None


def extract(branch: TreeMap, path: list[Any]) -> Any:
    current: Any = branch
    for component in path:
        if isinstance(component, str):
            if type(current) is not TreeMap or not current.has(component):
                raise SopsError(errors.GENERIC, f"Error walking tree: component ['{component}'] not found")
            current = current.get(component)
        else:
            items = current if type(current) is list else None
            if items is None or not (0 <= component < len(items)):
                raise SopsError(errors.GENERIC, f"Error walking tree: component [{component}] accesses out of bounds")
            current = items[component]
    return current


def run(args: argparse.Namespace) -> int:
    from ..operations import decrypt_document

    common.check_output_flags(args)
    name, is_stdin = common.input_name(args)
    extract_path = parse_extract_path(args.extract) if args.extract else None
    config = common.load_config_for(args, strict=False)
    in_store = common.pick_store(name, args.input_type, args, config)
    out_store = common.pick_store(name, args.output_type, args, config)
    data = common.read_source(args)
    doc = decrypt_document(
        in_store,
        data,
        ignore_mac=args.ignore_mac,
        decryption_order=common.decryption_order(args),
        check_version=True,
        # binary output writes the value's bytes: no str round trip of a large file
        raw_strings=out_store.name == "binary",
    )
    if extract_path is not None:
        value = extract(doc.branches[0], extract_path)
        result = out_store.dump_value(value)
    else:
        result = out_store.dump_plain(doc.branches)
    common.write_output(args, result, None if is_stdin or not args.in_place else args.file, plaintext=True)
    return 0
