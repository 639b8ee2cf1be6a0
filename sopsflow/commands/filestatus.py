"""``sopsflow filestatus``: is this file sops-encrypted? (sops' `cmd/sops/main.go` and `cmd/sops/subcommand/filestatus/filestatus.go`)

Prints ``{"encrypted":true}`` or ``{"encrypted":false}`` exactly as sops does.
Nothing is decrypted: a file counts as encrypted when its metadata loads and
both ``version`` and ``mac`` are non-empty. A file that does not parse in its
store, metadata that does not load, or a missing file is an error (exit 1),
never "false".
"""

from __future__ import annotations

import argparse
import sys

from .. import errors
from ..errors import SopsError
from . import common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("filestatus", help="check whether a file is sops-encrypted (prints JSON)")
    p.add_argument("file", nargs="?", help="file to check")
    p.add_argument("--input-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    common.add_global_flags(p, suppress=True)
    p.set_defaults(func=run)


def file_is_encrypted(store: object, data: bytes) -> bool:
    """sops' filestatus decision for ``data`` in ``store``. Raises SopsError
    for anything sops reports as an error rather than as "not encrypted"."""
    from ..metadata import Metadata

    try:
        _branches, raw = store.load_encrypted(data)  # type: ignore[attr-defined]
    except SopsError as exc:
        # go-yaml reads an empty document stream as "no metadata", not an error.
        if exc.code == errors.NEED_AT_LEAST_ONE_DOCUMENT:
            return False
        raise
    if raw is None:
        _refuse_scalar_metadata(store, data)
        return False
    meta = Metadata.from_dict(raw)
    return bool(meta.version) and bool(meta.mac)


def _refuse_scalar_metadata(store: object, data: bytes) -> None:
    """A YAML ``sops`` key holding a scalar or a list is an unmarshal error in
    sops, not "no metadata"; the YAML store reports both as None."""
    from ..tree import TreeMap

    if getattr(store, "name", "") != "yaml":
        return
    try:
        branches = store.load_plain(data)  # type: ignore[attr-defined]
    except SopsError:
        return
    value = branches[0].get("sops") if branches else None
    if value is not None and type(value) is not TreeMap:
        kind = "!!seq" if type(value) is list else "scalar"
        raise SopsError(errors.GENERIC, f"Error unmarshalling input yaml: cannot unmarshal {kind} into stores.Metadata")


def run(args: argparse.Namespace) -> int:
    if not args.file:
        raise SopsError(errors.NO_FILE_SPECIFIED, "Error: no file specified")
    config = common.load_config_lenient(args)
    store = common.pick_store(args.file, args.input_type, args, config)
    try:
        data = common.read_existing(args.file)
        encrypted = file_is_encrypted(store, data)
    except SopsError as exc:
        raise SopsError(
            errors.GENERIC, f"cannot check file status: cannot load encrypted file: {exc.message}"
        ) from None
    sys.stdout.write('{"encrypted":true}\n' if encrypted else '{"encrypted":false}\n')
    sys.stdout.flush()
    return 0
