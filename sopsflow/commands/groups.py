"""``sopsflow groups add`` / ``sopsflow groups delete``: change a file's key
groups.

``add``: the data key is unwrapped (the MAC is not checked), the group is
appended, and the same data key is wrapped again for every key, split with
Shamir when there are two or more groups (a threshold of 0 then becomes the
number of groups). Values, ``mac``, ``lastmodified`` and ``version`` are kept
byte for byte. Output goes to stdout unless ``-i``.

``delete`` (deliberate difference: sops keeps the data key) rotates the data
key as ``rotate`` does - the MAC is checked, every value is re-encrypted
keeping its IV - and says so on stderr, so that the deleted group's keys
cannot open what is written from now on.

Where sops 3.11 silently writes an unusable file (an empty new group, a
threshold above the number of groups, deleting the last group) we refuse
with exit 1; an index past the last group is exit 2 as sops (which panics).
"""

from __future__ import annotations

import argparse
import sys

from .. import errors
from ..creation import make_keys
from ..errors import SopsError
from ..keys.base import MasterKey
from . import common

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..metadata import Metadata

_UINT32_MAX = (1 << 32) - 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("groups", help="add or delete key groups of an encrypted file")
    groups_sub = p.add_subparsers(dest="groups_command", metavar="{add,delete}")

    add = groups_sub.add_parser("add", help="append a key group")
    _add_file_flags(add)
    add.add_argument("--pgp", action="append", default=[], help="PGP fingerprint (repeatable)")
    add.add_argument("--kms", action="append", default=[], help="KMS ARN, ARN+ROLE_ARN (repeatable)")
    add.add_argument("--aws-profile", help="AWS profile for the --kms keys")
    add.add_argument("--gcp-kms", action="append", default=[], help="GCP KMS resource id (repeatable)")
    add.add_argument("--azure-kv", action="append", default=[], help="Azure Key Vault key URL (repeatable)")
    add.add_argument("--hc-vault-transit", action="append", default=[], help="Vault transit key URI (repeatable)")
    add.add_argument("--age", action="append", default=[], help="age recipients, comma-separated (repeatable)")
    add.add_argument("--encryption-context", help="KMS encryption context k1:v1,k2:v2")
    add.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    add.set_defaults(func=run, groups_command="add")

    delete = groups_sub.add_parser("delete", help="delete the key group at INDEX (0-based)")
    _add_file_flags(delete)
    delete.add_argument("index", nargs="*", metavar="INDEX")
    delete.set_defaults(func=run, groups_command="delete")

    p.set_defaults(func=_usage(p))


def _add_file_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--file", default="", help="the encrypted file")
    p.add_argument("-i", "--in-place", action="store_true", help="write the result back to the file")
    p.add_argument("--shamir-secret-sharing-threshold", type=int, default=0, help="groups needed to decrypt")
    common.add_break_hardlinks_flag(p)
    common.add_global_flags(p, suppress=True)


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return errors.NO_FILE_SPECIFIED

    return show


def new_group(args: argparse.Namespace) -> list[MasterKey]:
    """The keys named on the command line, in sops' order: pgp, kms, gcp_kms,
    hc_vault, azure_kv, age."""
    context = None
    if args.encryption_context:
        from ..keys.kms import parse_encryption_context

        context = parse_encryption_context(args.encryption_context)
    group: list[MasterKey] = []
    for kind, values in (
        ("pgp", args.pgp),
        ("kms", args.kms),
        ("gcp_kms", args.gcp_kms),
        ("hc_vault", args.hc_vault_transit),
        ("azure_kv", args.azure_kv),
        ("age", args.age),
    ):
        group.extend(make_keys(kind, values, context=context, aws_profile=args.aws_profile or ""))
    return group


def parse_index(text: str) -> int:
    """Go's strconv.ParseUint(text, 10, 32), with its error text."""
    if not text.isascii() or not text.isdigit():
        raise SopsError(
            errors.GENERIC,
            f'failed to parse [index] argument: strconv.ParseUint: parsing "{text}": invalid syntax',
        )
    value = int(text)
    if value > _UINT32_MAX:
        raise SopsError(
            errors.GENERIC,
            f'failed to parse [index] argument: strconv.ParseUint: parsing "{text}": value out of range',
        )
    return value


def run(args: argparse.Namespace) -> int:
    if args.groups_command == "add":
        if args.extra:
            raise SopsError(errors.GENERIC, "error: no positional arguments allowed")
        group = new_group(args)
        if not group:
            raise SopsError(errors.GENERIC, "empty key group provided: name at least one key to add")
        return _change(args, lambda groups: groups.append(group))
    if len(args.index) != 1:
        raise SopsError(errors.GENERIC, "error: exactly one positional argument (index) required")
    index = parse_index(args.index[0])

    def delete(groups: list[list[MasterKey]]) -> None:
        if index >= len(groups):
            raise SopsError(
                errors.COULD_NOT_READ_INPUT_FILE,
                f"key group index {index} out of range: the file has {len(groups)} key group(s)",
            )
        del groups[index]

    return _change(args, delete)


def _change(args: argparse.Namespace, edit: Callable[[list[list[MasterKey]]], None]) -> int:
    from ..fileio import atomic_write
    from ..keys.groups import get_data_key
    from ..operations import decrypt_document, load_metadata, removed_recipients, rewrap_keys, rotate_data_key

    config = common.load_config_lenient(args)
    in_store = common.pick_store(args.file, None, args, config)
    out_store = common.pick_store(args.file, None, args, config)
    data = common.read_existing(args.file, for_rewrite=args.in_place)
    branches, meta = load_metadata(in_store, data)
    try:
        data_key = get_data_key(meta, common.decryption_order(args))
    except SopsError as exc:
        raise SopsError(errors.GENERIC, f"Error getting data key: {exc.message}", exc.detail) from None
    before = [list(group) for group in meta.key_groups]
    edit(meta.key_groups)
    if args.shamir_secret_sharing_threshold:
        meta.shamir_threshold = args.shamir_secret_sharing_threshold
    _check_groups(meta, args.groups_command)
    removed: list[str] = []
    if args.groups_command == "delete":
        # Unlike sops: a new data key, so the deleted group's wrapped copy of
        # the old one (git history keeps it) opens no value written from now
        # on. Re-encrypting needs the values, and a new MAC must not vouch for
        # a tampered file: the MAC is checked first.
        doc = decrypt_document(in_store, data, data_key=data_key)
        doc.metadata.key_groups, doc.metadata.shamir_threshold = meta.key_groups, meta.shamir_threshold
        result = rotate_data_key(out_store, doc)
        removed = removed_recipients(before, meta.key_groups)
    else:
        rewrap_keys(meta, data_key)
        result = out_store.dump_encrypted(branches, meta.to_dict(json_style=out_store.name != "yaml"))
    if args.in_place:
        atomic_write(args.file, result, break_hardlinks=getattr(args, "break_hardlinks", False))
    else:
        sys.stdout.buffer.write(result)
        sys.stdout.buffer.flush()
    if args.groups_command == "delete":
        who = f" ({', '.join(removed)} no longer in any group)" if removed else ""
        sys.stderr.write(
            f"Deleted key group {int(args.index[0])}{who}: the data key was rotated. Git history still holds the old "
            "ciphertext the deleted group could read: change those secrets at their source.\n"
        )
    return 0


def _check_groups(meta: Metadata, command: str) -> None:
    count = len(meta.key_groups)
    if count == 0:
        raise SopsError(errors.GENERIC, "cannot delete the last key group: the file would have no keys")
    if count < meta.shamir_threshold:
        if command == "delete":
            raise SopsError(
                errors.GENERIC,
                "removing this key group will make the Shamir threshold impossible to satisfy: "
                f"Shamir threshold is {meta.shamir_threshold}, but we only have {count} key groups",
            )
        raise SopsError(
            errors.GENERIC,
            f"Shamir threshold {meta.shamir_threshold} is higher than the number of key groups ({count})",
        )
