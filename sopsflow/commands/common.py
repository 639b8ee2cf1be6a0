"""Pieces every file command shares: stores, key flags, creation rules, output."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import errors
from ..errors import SopsError
from ..metadata import SELECTION_OPTIONS

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ..config.rules import Config
    from ..creation import CreationOptions, CreationSettings
    from ..stores import Store

SELECTION_FLAGS = SELECTION_OPTIONS

STDIN_NAMES = ("-", "/dev/stdin")


def add_store_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    p.add_argument("--output-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    p.add_argument("--filename-override", help="file name used for store selection and rules (stdin)")


def add_global_flags(p: argparse.ArgumentParser, suppress: bool) -> None:
    """Flags sops 3.11 accepts only before the command; we accept them on both
    sides (sops 3.12 does the same for most of them)."""
    import argparse

    d: Any = argparse.SUPPRESS if suppress else None
    p.add_argument("--config", default=d, help="path to .sops.yaml (default: search from the cwd upward)")
    p.add_argument("--indent", type=int, default=d, help="indentation for YAML/JSON output")
    p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS if suppress else False,
                   help="log what is done on stderr")
    p.add_argument("--decryption-order", default=d, help="key types to try first, e.g. age,pgp")
    # sops' key-service flags: the local service is sopsflow's only one; a
    # remote one is refused (main.run_command) rather than silently ignored.
    p.add_argument("--enable-local-keyservice", action="store_true", default=argparse.SUPPRESS,
                   help="use the local key service (always on)")
    p.add_argument("--keyservice", action="append", default=argparse.SUPPRESS, metavar="ADDR",
                   help="a remote key service: not supported, refused")
    if not suppress:
        # sops 3.11 has these three only as global flags (`sops --mac-only-encrypted
        # encrypt ...`); scripts written for it keep working. We honour them, as
        # sops 3.12 does, rather than silently ignoring them as 3.11 does.
        for name in _GLOBAL_SELECTION_FLAGS:
            p.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=_SELECTION_HELP[name])
        p.add_argument("--mac-only-encrypted", action="store_true", default=None, help=_MAC_ONLY_HELP)


_GLOBAL_SELECTION_FLAGS = ("encrypted_comment_regex", "unencrypted_comment_regex")

_SELECTION_HELP = {
    "unencrypted_suffix": "new file: keys ending in this stay plaintext",
    "encrypted_suffix": "new file: only keys ending in this are encrypted",
    "unencrypted_regex": "new file: keys matching this regex stay plaintext",
    "encrypted_regex": "new file: only keys matching this regex are encrypted",
    "unencrypted_comment_regex": "new file: values after a comment matching this stay plaintext",
    "encrypted_comment_regex": "new file: only values after a comment matching this are encrypted",
}
_MAC_ONLY_HELP = "new file: the MAC covers the encrypted values only"


def add_break_hardlinks_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--break-hardlinks", action="store_true",
                   help="rewrite a file that has other hard links as a new file (the other names keep the old content)")


def add_key_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--age", help="comma-separated age recipients (env SOPS_AGE_RECIPIENTS)")
    p.add_argument("-p", "--pgp", help="comma-separated PGP fingerprints (env SOPS_PGP_FP)")
    p.add_argument("-k", "--kms", help="comma-separated KMS ARNs, ARN+ROLE_ARN (env SOPS_KMS_ARN)")
    p.add_argument("--aws-profile", help="AWS profile for the --kms keys")
    p.add_argument("--encryption-context", help="KMS encryption context k1:v1,k2:v2")
    p.add_argument("--gcp-kms", help="GCP KMS resource ids (recorded only; sopsflow cannot call GCP)")
    p.add_argument("--hckms", help="HuaweiCloud KMS key IDs region:key-uuid (wrapping fails: no HuaweiCloud client)")
    p.add_argument("--azure-kv", help="Azure Key Vault key URLs (recorded only)")
    p.add_argument("--hc-vault-transit", help="Vault transit key URIs (env SOPS_VAULT_URIS)")
    p.add_argument("--shamir-secret-sharing-threshold", type=int, help="groups needed to decrypt")


def add_selection_flags(p: argparse.ArgumentParser) -> None:
    import argparse

    for name in SELECTION_FLAGS:
        # The comment-regex flags may also come before the command (global);
        # SUPPRESS keeps a global value from being reset by the subcommand.
        default = argparse.SUPPRESS if name in _GLOBAL_SELECTION_FLAGS else None
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=default, help=_SELECTION_HELP[name])
    p.add_argument("--mac-only-encrypted", action="store_true", default=argparse.SUPPRESS, help=_MAC_ONLY_HELP)


def decryption_order(args: argparse.Namespace) -> list[str] | None:
    from ..operations import decryption_order as parse

    return parse(getattr(args, "decryption_order", None))


# --- stores ------------------------------------------------------------------


def config_path(args: argparse.Namespace) -> Path | None:
    from ..config.discovery import locate_config

    return locate_config(getattr(args, "config", None))


def load_config_for(args: argparse.Namespace, *, strict: bool = True) -> Config | None:
    """The .sops.yaml in effect (see config.config_in_effect for ``strict``)."""
    from ..config.decoder import config_in_effect

    return config_in_effect(getattr(args, "config", None), strict=strict)


def pick_store(name_path: str, type_override: str | None, args: argparse.Namespace, config: Config | None) -> Store:
    from ..config.decoder import store_for_file

    return store_for_file(name_path, type_override, indent=getattr(args, "indent", None), config=config)


def input_name(args: argparse.Namespace) -> tuple[str, bool]:
    """The file name used for store selection and rules, and whether input is stdin."""
    file = getattr(args, "file", None)
    is_stdin = file is None or file in STDIN_NAMES
    override = getattr(args, "filename_override", None)
    if override:
        return override, is_stdin
    return (file or "-"), is_stdin


def read_source(args: argparse.Namespace) -> bytes:
    from ..fileio import read_input

    file = getattr(args, "file", None)
    if file is None or file in STDIN_NAMES:
        return sys.stdin.buffer.read()
    trace = os.environ.get("SOPSFLOW_TRACE_OPEN")
    if trace:  # start-up bench without strace: when the input is about to be opened
        import time

        with open(trace, "w", encoding="ascii") as stamp:
            # wall clock, and the CPU this process used so far (barely moved by other load)
            stamp.write(f"{time.time():.6f} {time.process_time():.6f}\n")
    # In place: the write checks that nobody changed the file in the meantime.
    return read_input(file, for_rewrite=bool(getattr(args, "in_place", False)))


# --- keys and rules ------------------------------------------------------------


def creation_options(args: argparse.Namespace) -> CreationOptions:
    """The key, selection, MAC and threshold flags of a new file."""
    from ..creation import CreationOptions, KeyOptions

    # Each KeyOptions field is the dest of the key flag of the same name; the class's
    # own annotations name them without importing dataclasses (start-up time).
    keys = KeyOptions(**{name: str(getattr(args, name, None) or "") for name in KeyOptions.__annotations__})
    return CreationOptions(
        keys=keys,
        selection={name: getattr(args, name, None) for name in SELECTION_FLAGS},
        mac_only_encrypted=getattr(args, "mac_only_encrypted", None),
        shamir_threshold=getattr(args, "shamir_secret_sharing_threshold", None),
    )


def creation_settings(args: argparse.Namespace, name_path: str, config: Config | None) -> CreationSettings:
    """Keys and options for a new file from the flags and the matching rule."""
    from ..creation import creation_settings as settings_for

    return settings_for(name_path, config, creation_options(args))


# --- output --------------------------------------------------------------------


def write_report(text: str, path: str | None) -> None:
    """A CI report to stdout (``path`` None) or to a file. Paths git hands over
    undecodable arrive as surrogate escapes and are written back as the original
    bytes. Reports hold no secret values, so a file gets ordinary permissions
    (CI artifact uploaders run as other users)."""
    from ..gitops.policy import USAGE_ERROR

    data = text.encode("utf-8", "surrogateescape")
    if path is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise SopsError(USAGE_ERROR, f"cannot write {path}: {exc.strerror or exc}") from None


def write_output(args: argparse.Namespace, data: bytes | list[bytes], in_place_target: str | None, *,
                 plaintext: bool = False) -> None:
    """Write to --output, in place, or stdout. In-place and --output writes are
    atomic (``fileio``); ``plaintext`` names their temp file as holding plaintext.
    ``data`` may be a list of pieces (a large binary file's), written in turn."""
    from ..fileio import atomic_write

    output = getattr(args, "output", None)
    links = bool(getattr(args, "break_hardlinks", False))
    if output:
        atomic_write(output, data, plaintext=plaintext, break_hardlinks=links)
    elif in_place_target is not None:
        atomic_write(in_place_target, data, plaintext=plaintext, break_hardlinks=links)
    else:
        for piece in [data] if isinstance(data, bytes) else data:
            sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()


def check_output_flags(args: argparse.Namespace) -> None:
    if getattr(args, "in_place", False) and getattr(args, "output", None):
        raise SopsError(errors.CONFLICTING_PARAMETERS, "Error: cannot operate on both --output and --in-place")


# --- in-place commands (edit, set, unset, rotate, groups, filestatus) -------------


def read_existing(path: str, *, for_rewrite: bool = False) -> bytes:
    """Read a file the way sops' in-place commands do: a missing or unreadable
    file is "Error reading file: open PATH: ..." with exit 2 (not decrypt's 100).
    ``for_rewrite``: the command writes it back (see fileio.read_bytes)."""
    from ..fileio import read_bytes

    try:
        return read_bytes(path, for_rewrite=for_rewrite)
    except IsADirectoryError:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"Error reading file: read {path}: is a directory") from None
    except OSError as exc:
        reason = (exc.strerror or "cannot read").lower()
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"Error reading file: open {path}: {reason}") from None


def load_config_lenient(args: argparse.Namespace) -> Config | None:
    """The config for store settings only: commands that do not read creation
    rules must not fail on a broken .sops.yaml."""
    try:
        return load_config_for(args)
    except SopsError:
        return None
