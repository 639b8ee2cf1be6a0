"""Pieces every file command shares: stores, key flags, creation rules, output."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import errors
from ..errors import SopsError
from ..keys.base import MasterKey
from ..metadata import SELECTION_OPTIONS

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from dataclasses import dataclass, field
    from typing import Any
else:  # the same classes without importing dataclasses (start-up time)
    from ..records import dataclass, field

SELECTION_FLAGS = SELECTION_OPTIONS

STDIN_NAMES = ("-", "/dev/stdin")


def add_store_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    p.add_argument("--output-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    p.add_argument("--filename-override", help="file name used for store selection and rules (stdin)")


def add_global_flags(p: argparse.ArgumentParser, suppress: bool) -> None:
    """Flags sops 3.11 accepts only before the command; we accept them on both
    sides (sops 3.12 does the same for most of them)."""
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
    for name in SELECTION_FLAGS:
        # The comment-regex flags may also come before the command (global);
        # SUPPRESS keeps a global value from being reset by the subcommand.
        default = argparse.SUPPRESS if name in _GLOBAL_SELECTION_FLAGS else None
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=default, help=_SELECTION_HELP[name])
    p.add_argument("--mac-only-encrypted", action="store_true", default=argparse.SUPPRESS, help=_MAC_ONLY_HELP)


def decryption_order(args: argparse.Namespace) -> list[str] | None:
    raw = getattr(args, "decryption_order", None) or os.environ.get("SOPS_DECRYPTION_ORDER")
    if not raw:
        return None
    order = [p.strip() for p in raw.split(",") if p.strip()]
    if len(set(order)) != len(order):
        raise SopsError(errors.DUPLICATE_DECRYPTION_KEY_TYPE, "Duplicate key type in decryption order")
    return order


# --- stores ------------------------------------------------------------------


def config_path(args: argparse.Namespace) -> Path | None:
    explicit = getattr(args, "config", None) or os.environ.get("SOPS_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.exists():
            # sops' wording and exit code, whichever command (or none) follows the flag.
            raise SopsError(errors.GENERIC, f"could not read config file: open {explicit}: no such file or directory")
        return path
    from ..config import find_config

    try:
        start = Path.cwd()
    except FileNotFoundError:
        return None  # a deleted working directory holds no config file; sops goes on without one
    return find_config(start)


def load_config_for(args: argparse.Namespace, *, strict: bool = True) -> Any:
    """The .sops.yaml in effect. ``strict=False`` is for commands that only need
    its ``stores`` section (decrypt, rotate, set, unset, edit of an existing
    file): like sops, they are not stopped by a broken creation rule."""
    path = config_path(args)
    if path is None:
        return None
    from ..config import load_config

    return load_config(path, strict=strict)


def store_indent(args: argparse.Namespace, store_name: str, config: Any) -> int | None:
    indent = getattr(args, "indent", None)
    if indent:  # --indent 0 means the default, as in sops
        return int(indent)
    if config is not None:
        key = "json_binary" if store_name == "binary" else store_name
        value = config.store_indent(key)
        if value is not None:
            return int(value)
    return None


def pick_store(name_path: str, type_override: str | None, args: argparse.Namespace, config: Any) -> Any:
    from ..stores import store_by_name, store_for_path

    probe = store_for_path(name_path, type_override)
    indent = store_indent(args, probe.name, config)
    if indent is None:
        return probe
    return store_by_name(probe.name, indent=indent)


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


@dataclass
class CreationSettings:
    key_groups: list[list[MasterKey]]
    selection: dict[str, str] = field(default_factory=dict)
    mac_only_encrypted: bool = False
    shamir_threshold: int = 0


def _flag_or_env(args: argparse.Namespace, attr: str, env: str) -> str:
    value = getattr(args, attr, None)
    if value:
        return str(value)
    return os.environ.get(env, "")


def keys_from_flags(args: argparse.Namespace) -> list[MasterKey]:
    """Keys named on the command line or in SOPS_* variables, in the order sops
    builds its single group: kms, gcp_kms, hckms, azure_kv, pgp, hc_vault, age."""
    keys: list[MasterKey] = []
    kms = _flag_or_env(args, "kms", "SOPS_KMS_ARN")
    if kms:
        from ..keys.kms import parse_encryption_context, parse_kms_arns

        ctx_text = getattr(args, "encryption_context", None) or ""
        context = parse_encryption_context(ctx_text) if ctx_text else None
        keys.extend(parse_kms_arns(kms, context, getattr(args, "aws_profile", None) or ""))
    gcp = _flag_or_env(args, "gcp_kms", "SOPS_GCP_KMS_IDS")
    if gcp:
        from ..keys.opaque import OpaqueKey

        keys.extend(OpaqueKey("gcp_kms", {"resource_id": r.strip()}) for r in gcp.split(",") if r.strip())
    hckms = _flag_or_env(args, "hckms", "SOPS_HUAWEICLOUD_KMS_IDS")
    if hckms:
        keys.extend(hckms_keys(hckms.split(",")))
    azure = _flag_or_env(args, "azure_kv", "SOPS_AZURE_KEYVAULT_URLS")
    if azure:
        from ..keys.opaque import OpaqueKey

        for url in (u.strip() for u in azure.split(",") if u.strip()):
            keys.append(OpaqueKey("azure_kv", _azure_entry(url)))
    pgp = _flag_or_env(args, "pgp", "SOPS_PGP_FP")
    if pgp:
        from ..keys.pgp import PgpKey

        keys.extend(PgpKey(fp.strip().replace(" ", "")) for fp in pgp.split(",") if fp.strip())
    vault = _flag_or_env(args, "hc_vault_transit", "SOPS_VAULT_URIS")
    if vault:
        from ..keys.hcvault import VaultKey

        keys.extend(VaultKey.from_uri(u.strip()) for u in vault.split(",") if u.strip())
    age = _flag_or_env(args, "age", "SOPS_AGE_RECIPIENTS")
    if age:
        from ..keys.age import parse_age_recipients

        keys.extend(parse_age_recipients(age))
    return keys


def hckms_keys(ids: list[str]) -> list[MasterKey]:
    """HuaweiCloud KMS keys (``region:key-uuid``), parsed by their key module.
    sopsflow has no HuaweiCloud client: existing entries are kept, wrapping a
    data key for a new one fails as sops fails without HuaweiCloud credentials."""
    from ..keys.hckms import HckmsKeyError, keys_from_string

    try:
        return list(keys_from_string(",".join(ids)))
    except HckmsKeyError as exc:
        raise SopsError(errors.GENERIC, str(exc)) from None


def _azure_entry(url: str) -> dict[str, str]:
    from ..keys.opaque import parse_azure_url

    try:
        return parse_azure_url(url)
    except ValueError as exc:
        raise SopsError(errors.GENERIC, str(exc)) from None


def creation_settings(args: argparse.Namespace, name_path: str, config: Any) -> CreationSettings:
    """Keys and options for a new file: flags and SOPS_* variables replace the
    rule's keys; selection options and threshold come from the flags, then
    the matching rule."""
    rule = None
    if config is not None and config.has_creation_rules:
        rule = config.match(os.path.abspath(name_path))
    flag_keys = keys_from_flags(args)
    if flag_keys:
        groups = [flag_keys]
    elif rule is not None:
        ctx_text = getattr(args, "encryption_context", None) or ""
        if ctx_text:
            from ..keys.kms import parse_encryption_context

            groups = rule.key_groups(kms_context=parse_encryption_context(ctx_text))
        else:
            groups = rule.key_groups()
    else:
        if config is not None and config.has_creation_rules:
            raise SopsError(errors.GENERIC, "error loading config: no matching creation rules found")
        raise SopsError(
            errors.GENERIC,
            "config file not found, or has no creation rules, and no keys provided through command line options",
        )
    selection = dict(rule.selection) if rule is not None else {}
    for name in SELECTION_FLAGS:
        value = getattr(args, name, None)
        if value:
            selection[name] = value
    if len(selection) > 1:
        raise SopsError(
            errors.CONFLICTING_PARAMETERS,
            "Error: cannot use more than one of " + ", ".join(sorted(selection)),
        )
    mac_only = getattr(args, "mac_only_encrypted", None)
    if mac_only is None:
        mac_only = bool(rule.mac_only_encrypted) if rule is not None else False
    threshold = getattr(args, "shamir_secret_sharing_threshold", None)
    if threshold is None:
        threshold = rule.shamir_threshold if rule is not None else 0
    return CreationSettings(groups, selection, bool(mac_only), int(threshold or 0))


# --- output --------------------------------------------------------------------


def write_output(args: argparse.Namespace, data: bytes, in_place_target: str | None, *,
                 plaintext: bool = False) -> None:
    """Write to --output, in place, or stdout. In-place and --output writes are
    atomic (``fileio``); ``plaintext`` names their temp file as holding plaintext."""
    from ..fileio import atomic_write

    output = getattr(args, "output", None)
    links = bool(getattr(args, "break_hardlinks", False))
    if output:
        atomic_write(output, data, plaintext=plaintext, break_hardlinks=links)
    elif in_place_target is not None:
        atomic_write(in_place_target, data, plaintext=plaintext, break_hardlinks=links)
    else:
        sys.stdout.buffer.write(data)
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


def load_config_lenient(args: argparse.Namespace) -> Any:
    """The config for store settings only: commands that do not read creation
    rules must not fail on a broken .sops.yaml."""
    try:
        return load_config_for(args)
    except SopsError:
        return None


# --- keys named by value (rotate --add-*/--rm-*, groups add) ----------------------

#: The order sops 3.11 builds key lists from rotate's and groups' flags.
KEY_KINDS = ("kms", "pgp", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age")


def make_keys(
    kind: str, values: list[str], *, context: dict[str, str] | None = None, aws_profile: str = ""
) -> list[MasterKey]:
    """Master keys of one type from flag values; every value may itself be a
    comma-separated list. ``kind`` is a metadata list name (KEY_KINDS)."""
    items = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not items:
        return []
    if kind == "kms":
        from ..keys.kms import parse_kms_arns

        return list(parse_kms_arns(",".join(items), context, aws_profile))
    if kind == "pgp":
        from ..keys.pgp import PgpKey

        return [PgpKey(fp.replace(" ", "")) for fp in items]
    if kind in ("gcp_kms", "azure_kv"):
        from ..keys.opaque import OpaqueKey

        if kind == "gcp_kms":
            return [OpaqueKey("gcp_kms", {"resource_id": r}) for r in items]
        return [OpaqueKey("azure_kv", _azure_entry(u)) for u in items]
    if kind == "hckms":
        return hckms_keys(items)
    if kind == "hc_vault":
        from ..keys.hcvault import VaultKey

        return [VaultKey.from_uri(u) for u in items]
    if kind == "age":
        from ..keys.age import parse_age_recipients

        return list(parse_age_recipients(",".join(items)))
    raise ValueError(f"unknown key type {kind}")
