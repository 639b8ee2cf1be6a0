"""``sopsflow updatekeys``: bring every SOPS file in line with ``.sops.yaml``.

Unlike ``sops updatekeys FILE``, this works on a whole repository (every
git-tracked file a creation rule matches), shows one plan, asks once,
updates the files in parallel, rotates the data key when a recipient is
removed and reports which secrets the removed recipients could read.
"""

from __future__ import annotations

import argparse

from . import common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "updatekeys",
        help="re-wrap (or rotate) data keys so every file matches its .sops.yaml rule",
        description=(
            "Compare every SOPS file's recipients with its creation rule and update those that differ. "
            "Without PATHS: every git-tracked file a creation rule matches. The data key is rotated when "
            "a recipient is removed (--no-rotate keeps it; --rotate rotates every selected file)."
        ),
        epilog=(
            "Each file is replaced atomically; a file another writer changed since it was read is left "
            "as it is and reported (exit 1). A hard kill may leave .NAME.*.sopsflow-tmp files (encrypted "
            "content); they are never taken for secrets and a later run removes them."
        ),
    )
    p.add_argument("paths", nargs="*", metavar="PATHS", help="files or directories (default: the git repository)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="print the plan only; exit 1 when changes are pending")
    rot = p.add_mutually_exclusive_group()
    rot.add_argument("--rotate", dest="rotate", action="store_const", const="always",
                     help="give every selected file a new data key, even without removals")
    rot.add_argument("--no-rotate", dest="rotate", action="store_const", const="never",
                     help="keep the data key even when a recipient is removed")
    p.add_argument("--report", metavar="FILE", help="write the removed-recipient exposure report as JSON")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="files processed at once: worker processes for age keys (default: one per CPU), "
                        "threads when rules name PGP, KMS or Vault keys (default: 4 per CPU)")
    common.add_break_hardlinks_flag(p)
    common.add_global_flags(p, suppress=True)
    p.set_defaults(func=run, rotate="auto")


def run(args: argparse.Namespace) -> int:
    from ..gitops.updatekeys import UpdateRequest, update_keys

    return update_keys(UpdateRequest(
        paths=args.paths, yes=args.yes, dry_run=args.dry_run, rotate=args.rotate, report=args.report,
        jobs=args.jobs, config=getattr(args, "config", None), indent=getattr(args, "indent", None),
        decryption_order=getattr(args, "decryption_order", None), verbose=bool(getattr(args, "verbose", False)),
        break_hardlinks=bool(getattr(args, "break_hardlinks", False)),
    ))
