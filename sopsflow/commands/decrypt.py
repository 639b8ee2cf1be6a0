"""``sopsflow decrypt``: decrypt a SOPS file (whole, or one value with --extract)."""

from __future__ import annotations

from ..tree import get_path, parse_extract_path
from . import common

TYPE_CHECKING = False  # argparse is imported only when a parser is built (start-up time)
if TYPE_CHECKING:
    import argparse


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
        value = get_path(doc.branches[0], extract_path)
        result = out_store.dump_value(value)
    else:
        result = out_store.dump_plain(doc.branches)
    common.write_output(args, result, None if is_stdin or not args.in_place else args.file, plaintext=True)
    return 0
