"""``sopsflow decrypt``: decrypt a SOPS file (whole, or one value with --extract)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import errors
from ..errors import SopsError
from ..tree import TreeMap
from . import common


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
    """sops' tree path syntax: ``["key"][0]['other']``."""
    bad = SopsError(errors.INVALID_TREE_PATH_FORMAT, f"Error: invalid tree path format string: {text}")
    components: list[Any] = []
    rest = text
    if not rest.startswith("["):
        raise bad
    while rest:
        if not rest.startswith("["):
            raise bad
        end = rest.find("]")
        if end == -1:
            raise bad
        inner = rest[1:end]
        if inner[:1] in ('"', "'"):
            quote = inner[0]
            close = rest.find(quote + "]", 2)
            if close == -1:
                raise bad
            components.append(rest[2:close])
            rest = rest[close + 2 :]
            continue
        try:
            components.append(int(inner))
        except ValueError:
            raise bad from None
        rest = rest[end + 1 :]
    return components


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
    )
    if extract_path is not None:
        value = extract(doc.branches[0], extract_path)
        result = out_store.dump_value(value)
    else:
        result = out_store.dump_plain(doc.branches)
    common.write_output(args, result, None if is_stdin or not args.in_place else args.file, plaintext=True)
    return 0
