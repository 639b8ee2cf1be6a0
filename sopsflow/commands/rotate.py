"""``sopsflow rotate``: a new data key for a file, optionally adding or
removing master keys (sops' `cmd/sops/main.go`).

Decrypts with a MAC check, adds ``--add-*`` keys to group 0 and removes
``--rm-*`` keys (by their identity) from every group, wraps a new data key
for every key, re-encrypts every value keeping its IV, and writes a new
``lastmodified`` and MAC. ``version`` is not changed, as in sops. Output goes
to stdout unless ``-i`` or ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os

from .. import errors
from ..creation import make_keys
from ..errors import SopsError
from ..keys.base import MasterKey
from . import common

# flag stem -> metadata key type, in the order sops builds the key list
_KEY_FLAGS = (
    ("kms", "kms", "KMS ARNs"),
    ("pgp", "pgp", "PGP fingerprints"),
    ("gcp-kms", "gcp_kms", "GCP KMS resource IDs"),
    ("hckms", "hckms", "HuaweiCloud KMS key IDs (region:key-uuid)"),
    ("azure-kv", "azure_kv", "Azure Key Vault key URLs"),
    ("hc-vault-transit", "hc_vault", "Vault transit key URIs"),
    ("age", "age", "age recipients"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rotate", help="new data key; re-encrypt every value (optionally add/remove keys)")
    p.add_argument("file", nargs="?", help="encrypted file")
    p.add_argument("-i", "--in-place", action="store_true", help="write the result back to the file")
    p.add_argument("--output", help="write the result to this file")
    p.add_argument("--input-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    p.add_argument("--output-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    p.add_argument("--filename-override", help="file name used to pick the input and output formats")
    p.add_argument("--encryption-context", help="KMS encryption context k1:v1,k2:v2 for --add-kms/--rm-kms")
    p.add_argument("--aws-profile", help="AWS profile for --add-kms keys")
    for stem, _kind, what in _KEY_FLAGS:
        p.add_argument(f"--add-{stem}", help=f"comma-separated {what} to add to the first key group")
        p.add_argument(f"--rm-{stem}", help=f"comma-separated {what} to remove from every key group")
    common.add_break_hardlinks_flag(p)
    common.add_global_flags(p, suppress=True)
    p.set_defaults(func=run)


def _flag_values(args: argparse.Namespace, prefix: str) -> dict[str, str]:
    found = {}
    for stem, kind, _what in _KEY_FLAGS:
        value = getattr(args, f"{prefix}_{stem.replace('-', '_')}", None)
        if value:
            found[kind] = value
    return found


def _keys(args: argparse.Namespace, prefix: str) -> list[MasterKey]:
    values = _flag_values(args, prefix)
    if not values:
        return []
    context = None
    if args.encryption_context:
        from ..keys.kms import parse_encryption_context

        context = parse_encryption_context(args.encryption_context)
    keys: list[MasterKey] = []
    for _stem, kind, _what in _KEY_FLAGS:
        if kind in values:
            keys.extend(make_keys(kind, [values[kind]], context=context, aws_profile=args.aws_profile or ""))
    return keys


def run(args: argparse.Namespace) -> int:
    from ..operations import decrypt_document, rotate_document

    if not args.file:
        raise SopsError(errors.NO_FILE_SPECIFIED, "Error: no file specified")
    common.check_output_flags(args)
    file_name = os.path.abspath(args.file)
    changes_keys = bool(_flag_values(args, "add") or _flag_values(args, "rm"))
    if changes_keys and not os.path.exists(file_name):
        raise SopsError(
            errors.CANNOT_CHANGE_KEYS_FROM_NON_EXISTENT_FILE,
            f"Error: cannot add or remove keys on non-existent file {json.dumps(file_name, ensure_ascii=False)}, "
            "use the `edit` subcommand instead.",
        )
    store_name = os.path.abspath(args.filename_override) if args.filename_override else file_name
    config = common.load_config_lenient(args)
    in_store = common.pick_store(store_name, args.input_type, args, config)
    out_store = common.pick_store(store_name, args.output_type or args.input_type, args, config)
    order = common.decryption_order(args)
    add_keys = _keys(args, "add")
    remove_keys = _keys(args, "rm")
    doc = decrypt_document(in_store, common.read_existing(file_name, for_rewrite=args.in_place), decryption_order=order, check_version=True)
    result = rotate_document(out_store, doc, add_keys, remove_keys)
    common.write_output(args, result, file_name if args.in_place else None)
    return 0
