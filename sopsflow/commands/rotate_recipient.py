"""``sopsflow rotate-recipient OLD NEW``: replace a cluster's age key in phases.

Not to be confused with ``sopsflow rotate`` (a new data key for one file) or
``sopsflow recipients add|remove`` (one edit of ``.sops.yaml``): this walks
the whole replacement of one recipient, one phase per invocation, keeping the
plan in ``.sopsflow/rotations/<id>.yaml`` (see sopsflow/gitops/rotate_recipient.py)::

    sopsflow rotate-recipient OLD NEW                      # 1 add + re-wrap
    sopsflow rotate-recipient --id ID --key-file old.agekey --key-file new.agekey | kubectl apply -f -
    sopsflow rotate-recipient --id ID --confirm-cluster staging
    sopsflow rotate-recipient --id ID                      # 4 remove + rotate
    sopsflow rotate-recipient --id ID --key-file new.agekey | kubectl apply -f -
    sopsflow rotate-recipient --id ID --status
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import errors
from ..errors import SopsError

if TYPE_CHECKING:
    from ..gitops.rotate_recipient import Plan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rotate-recipient",
        help="replace an age recipient (a cluster's key) in phases, with a committed plan",
        description="Replace the age recipient OLD by NEW in every creation rule and file, one phase per "
        "invocation: add+re-wrap, the dual-key Flux Secret, the cluster's confirmation, remove+rotate "
        "(exposure report), the final Secret. The plan is .sopsflow/rotations/<id>.yaml; commit it with "
        "each phase's changes. (`sopsflow rotate` gives one file a new data key; this replaces a key "
        "everywhere.)",
    )
    p.add_argument("old", nargs="?", metavar="OLD", help="the age recipient to retire")
    p.add_argument("new", nargs="?", metavar="NEW", help="the age recipient that replaces it")
    p.add_argument("--id", dest="plan_id", metavar="ID", help="the rotation (default: from the cluster and NEW)")
    p.add_argument("--cluster", metavar="NAME",
                   help="the cluster of .sopsflow.yaml whose key this is (default: the one listing OLD)")
    p.add_argument("--status", action="store_true", help="print where the rotation(s) stand; change nothing")
    p.add_argument("--phase", choices=("add", "secret", "confirm", "remove", "final"),
                   help="run this phase (the next one, or one already done again) instead of the next")
    p.add_argument("--key-file", action="append", metavar="F",
                   help="age identities for the Secret phases (repeatable; '-' reads stdin)")
    p.add_argument("--confirm-cluster", metavar="NAME",
                   help="record that cluster NAME has applied the Secret with both keys")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask (never asked under CI or without a terminal)")
    p.add_argument("--name", default="sops-age", help="name of the Secret (default: sops-age)")
    p.add_argument("--namespace", default="flux-system", help="namespace of the Secret (default: flux-system)")
    p.add_argument("--data-key", default="age.agekey", help="data key of the Secret (default: age.agekey)")
    p.add_argument("-C", "--repo", default=".", metavar="DIR", help="the repository (default: the current directory)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..git.repo import open_repo
    from ..gitops import rotate_recipient as rotation

    root = Path(open_repo(args.repo).root)
    if (args.old is None) != (args.new is None):
        raise SopsError(errors.GENERIC, "give both OLD and NEW, or neither (with --id)")
    if args.status:
        plans = [_find(root, args)] if (args.old or args.plan_id) else rotation.all_plans(root)
        if not plans:
            sys.stdout.write(f"no rotation in {rotation.ROTATIONS_DIR}/\n")
        for plan in plans:
            sys.stdout.write(rotation.status_text(plan))
        return 0
    plan = _find(root, args)
    phase = args.phase or ("confirm" if args.confirm_cluster else plan.next_phase)
    if args.key_file and not args.phase and phase not in ("secret", "final"):
        # Identities given: the Secret is wanted - the dual one again until
        # OLD is removed, then the final one.
        phase = "final" if plan.done("remove") else "secret"
    if phase is None:
        sys.stdout.write(rotation.status_text(plan))
        return 0
    if args.confirm_cluster and phase != "confirm":
        raise SopsError(errors.GENERIC, f"--confirm-cluster is phase `confirm`; this rotation is at `{phase}`")
    if phase == "confirm" and args.confirm_cluster and not _confirmed(args, plan):
        sys.stdout.write("Not confirmed; nothing recorded.\n")
        return 1
    key_data = _key_data(args.key_file) if phase in ("secret", "final") else None
    if phase in ("secret", "final"):
        _refuse_git_stdout()
    from .common import decryption_order

    result = rotation.run_phase(root, plan, phase, key_data=key_data, confirm_cluster=args.confirm_cluster,
                                decryption_order=decryption_order(args), secret_name=args.name,
                                secret_namespace=args.namespace, data_key=args.data_key)
    # The manifest alone goes to stdout (for kubectl); the narrative to stderr then.
    out = sys.stderr if result.manifest is not None else sys.stdout
    number = rotation.PHASES.index(phase) + 1
    out.write(f"rotation {plan.id}, phase {number} ({phase}): {rotation.PHASE_TITLES[phase]}\n")
    for line in result.lines:
        out.write(line + "\n")
    if result.exposure:
        out.write(f"Exposure: {plan.old} could read these values; change each at its source "
                  "(git history keeps the old ciphertext):\n")
        for entry in result.exposure:
            out.write(f"  {entry['path']}: {', '.join(entry['keys']) or '(whole file)'}\n")
    if result.manifest is not None:
        sys.stdout.write(result.manifest)
        sys.stdout.flush()
        out.write(f"warning: the manifest on stdout contains PRIVATE age keys (Secret {args.namespace}/{args.name}); "
                  "apply it with `kubectl apply -f -`, never commit it\n")
    following = plan.next_phase
    out.write(f"plan: {rotation.ROTATIONS_DIR}/{plan.id}.yaml - commit it with this phase's changes\n")
    out.write(f"next: {rotation.next_command(plan, following)}\n" if following else "rotation complete\n")
    return 0


def _find(root: Path, args: argparse.Namespace) -> Plan:
    from ..gitops import rotate_recipient as rotation

    if args.old is not None:
        return rotation.start(root, args.old, args.new, cluster=args.cluster, plan_id=args.plan_id)
    if args.plan_id:
        return rotation.load(root, args.plan_id)
    open_plans = [p for p in rotation.all_plans(root) if p.next_phase is not None]
    if len(open_plans) == 1:
        return open_plans[0]
    if not open_plans:
        raise SopsError(errors.GENERIC, "no rotation in progress: start one with `sopsflow rotate-recipient OLD NEW`")
    raise SopsError(errors.GENERIC, "several rotations in progress; choose one with --id: "
                    + ", ".join(p.id for p in open_plans))


def _confirmed(args: argparse.Namespace, plan: Plan) -> bool:
    """The flag is the confirmation; a person at a terminal is asked once more
    (never under CI or without a terminal, where nobody could answer)."""
    if args.yes or os.environ.get("CI") or not (sys.stdin.isatty() and sys.stderr.isatty()):
        return True
    sys.stderr.write(f"Has cluster {args.confirm_cluster!r} applied the Secret with both keys? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _key_data(files: list[str] | None) -> bytes | None:
    from ..fileio import read_input

    if not files:
        return None
    parts = []
    for name in files:
        data = sys.stdin.buffer.read() if name == "-" else read_input(name)
        parts.append(data if data.endswith(b"\n") else data + b"\n")
    return b"".join(parts)


def _refuse_git_stdout() -> None:
    from ..gitops import flux

    redirected = flux.stdout_file()
    if redirected is not None:
        flux.refuse_git_destination(redirected, "stdout")
