"""``sopsflow encrypt``: encrypt a plaintext file by its creation rule or key flags."""

from __future__ import annotations

from .. import errors
from ..errors import SopsError
from . import common

TYPE_CHECKING = False  # argparse is imported only when a parser is built (start-up time)
if TYPE_CHECKING:
    import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encrypt", help="encrypt a file (rules from .sops.yaml or key flags)")
    p.add_argument("file", nargs="?", help="file to encrypt (- or omitted: stdin, needs --filename-override)")
    p.add_argument("-i", "--in-place", action="store_true", help="write the result back to the file")
    p.add_argument("--output", help="write the result to this file")
    common.add_store_flags(p)
    common.add_key_flags(p)
    common.add_selection_flags(p)
    common.add_break_hardlinks_flag(p)
    common.add_global_flags(p, suppress=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..creation import load_unencrypted
    from ..operations import encrypt_document_pieces

    common.check_output_flags(args)
    name, is_stdin = common.input_name(args)
    if is_stdin and not args.filename_override:
        raise SopsError(
            errors.CONFLICTING_PARAMETERS, "Error: reading from stdin requires --filename-override"
        )
    config = common.load_config_for(args)
    in_store = common.pick_store(name, args.input_type, args, config)
    out_store = common.pick_store(name, args.output_type or args.input_type, args, config)
    # Keys and rules first, as sops: with neither, that is the error, even for an encrypted file.
    settings = common.creation_settings(args, name, config)
    branches = load_unencrypted(in_store, common.read_source(args), name, raw=True)
    # settings.encrypt's two steps, keeping the output in pieces (a binary file's base64 is not copied again)
    meta, data_key = settings.new_metadata(out_store)
    result = encrypt_document_pieces(out_store, branches, meta, data_key)
    common.write_output(args, result, None if is_stdin or not args.in_place else args.file)
    return 0
