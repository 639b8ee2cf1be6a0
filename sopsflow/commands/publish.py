"""``sopsflow publish``: decrypted SOPS files to the stores in ``destination_rules``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from .. import errors
from ..errors import SopsError
from . import common

if TYPE_CHECKING:
    from ..gitops.publish import Plan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="publish SOPS files to Vault KV, S3, Secrets Manager or SSM (plan first)")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="file, or directory with --recursive (several: one plan for all)")
    p.add_argument("-y", "--yes", action="store_true", help="apply the plan without asking")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and write nothing; exit 1 when anything would change")
    p.add_argument("--omit-extensions", action="store_true", help="drop the file extension from the secret name")
    p.add_argument("--recursive", action="store_true", help="publish every file under a directory")
    p.add_argument("--force", action="store_true",
                   help="overwrite S3 objects that your keys cannot decrypt (reported as unknown)")
    p.add_argument("--emit-external-secrets", metavar="DIR",
                   help="write, per file, the External Secrets SecretStore and ExternalSecret that read it back")
    common.add_global_flags(p, suppress=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..gitops.publish import apply_plan, make_plan, walk
    from ..gitops.publish_aws import load_rules

    if not args.files:
        raise SopsError(errors.NO_FILE_SPECIFIED, "Error: no file specified")
    config = common.load_config_for(args, strict=False)
    if config is None:
        raise SopsError(errors.GENERIC, "config file not found: publish needs destination_rules in .sops.yaml")
    files: list[str] = []
    for given in args.files:
        try:
            is_dir = os.path.isdir(given)
            os.stat(given)
        except OSError as exc:
            raise SopsError(errors.GENERIC, f"stat {given}: {(exc.strerror or 'cannot stat').lower()}") from None
        if is_dir and not args.recursive:
            raise SopsError(errors.GENERIC, "can't operate on a directory without --recursive flag.")
        files.extend(walk(given) if args.recursive else [given])
    plan = make_plan(config, files, recursive=args.recursive, omit_extensions=args.omit_extensions,
                     decryption_order=common.decryption_order(args), aws_rules=load_rules(config.dir),
                     force=args.force)
    out = sys.stdout
    if args.dry_run or not args.yes:
        out.write("\n".join(plan.report(applied=False)) + "\n")
    if args.dry_run:
        return plan.exit_code() or (1 if plan.changes else 0)
    if plan.changes and not args.yes:
        if not sys.stdin.isatty():
            sys.stderr.write("refusing to publish: stdin is not a terminal; rerun with --yes to apply the plan\n")
            return plan.exit_code() or errors.GENERIC
        answer = ""
        while answer not in ("y", "n"):
            out.write("Apply these changes? (y/n): ")
            out.flush()
            line = sys.stdin.readline()
            if not line:
                answer = "n"
                break
            answer = line.strip().lower()
        if answer == "n":
            sys.stderr.write("Publication canceled\n")
            return errors.GENERIC
    apply_plan(plan)
    if args.yes or plan.changes:
        out.write("\n".join(plan.report(applied=True)) + "\n")
    if args.emit_external_secrets:
        _emit(args.emit_external_secrets, plan, str(config.dir))
    return plan.exit_code()


def _emit(directory: str, plan: Plan, config_dir: str) -> None:
    """The ESO manifests of every file published (or already up to date)."""
    from pathlib import Path

    from ..config.discovery import go_abs
    from ..gitops.publish_eso import manifests, write

    prefix = config_dir.rstrip("/") + "/"
    relative = {}
    for entry in plan.entries:
        absolute = go_abs(entry.source)
        relative[entry.source] = absolute[len(prefix):] if absolute.startswith(prefix) else entry.source
    items, skipped = manifests(plan.entries, relative)
    written = write(Path(directory), items)
    lines = [f"External Secrets manifests in {directory}:"]
    for item in items:
        path = Path(directory) / item.filename
        lines.append(f"  {'wrote    ' if path in written else 'unchanged'} {item.filename} <- {item.source}")
    for source, reason in skipped:
        lines.append(f"  skipped   {source}: {reason}")
    sys.stdout.write("\n".join(lines) + "\n")
