"""`sopsflow verify`: the CI gate over a whole repository.

Exit codes: 0 clean (warnings allowed), 1 findings at error severity,
2 usage or configuration errors (bad flags, unknown revision, bad policy).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SopsError
from ..gitops.policy import USAGE_ERROR

_EPILOG = """\
formats: text (default), json, sarif, junit, github, gitlab; repeat --format
for several, each as FORMAT or FORMAT=FILE (at most one goes to stdout).

exit codes: 0 clean, 1 findings at error severity, 2 usage or config errors.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="verify every secret file of a revision (CI gate): SARIF, JUnit, GitHub, GitLab output",
        description="Audit every tracked file at a revision (default HEAD), the index or the work tree, "
        "read straight from git objects, and report what is not safe.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--rev", metavar="REV", help="verify the tree of this commit (default HEAD)")
    where.add_argument("--index", action="store_true", help="verify the staged files (the git index)")
    where.add_argument("--worktree", action="store_true", help="verify tracked files as they are on disk")
    p.add_argument("--since", metavar="REV", help="only files changed since REV (up to the verified revision; fast PR gates)")
    p.add_argument("--mac", action="store_true", help="also unwrap each data key and verify each file's MAC")
    flux = p.add_mutually_exclusive_group()
    flux.add_argument("--flux", dest="flux", action="store_true", default=None,
                      help="run the Flux lint even without Flux manifests")
    flux.add_argument("--no-flux", dest="flux", action="store_false", help="skip the Flux lint")
    p.add_argument("--format", dest="formats", action="append", metavar="FORMAT[=FILE]",
                   help="text, json, sarif, junit, github or gitlab; repeatable")
    p.add_argument("-o", "--output", metavar="FILE", help="write the (single) format to FILE")
    p.add_argument("--policy", metavar="FILE", help="policy file (default: .sopsflow.yaml at the repository root)")
    p.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="worker processes (default: one per CPU for large trees; env SOPSFLOW_JOBS)")
    p.add_argument("--show-suppressed", action="store_true",
                   help="list the findings inline markers or the allow list suppressed (always counted)")
    p.add_argument("-C", "--repo", dest="repo", default=".", metavar="DIR",
                   help="the repository to verify (default: the current directory)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..gitops.report import parse_targets, render
    from ..gitops.verify import VerifyOptions, verify
    from .common import decryption_order, write_report

    targets = parse_targets(getattr(args, "formats", None), getattr(args, "output", None))
    if getattr(args, "index", False):
        source = "index"
    elif getattr(args, "worktree", False):
        source = "worktree"
    else:
        source = "rev"
    try:
        order = decryption_order(args)
    except SopsError as exc:
        raise SopsError(USAGE_ERROR, exc.message) from None
    options = VerifyOptions(
        source=source,
        rev=getattr(args, "rev", None) or "HEAD",
        since=getattr(args, "since", None),
        mac=bool(getattr(args, "mac", False)),
        flux=getattr(args, "flux", None),
        decryption_order=order,
        policy_file=Path(args.policy) if getattr(args, "policy", None) else None,
        jobs=getattr(args, "jobs", None),
    )
    if options.jobs is not None and options.jobs < 1:
        raise SopsError(USAGE_ERROR, "--jobs must be at least 1")
    result = verify(getattr(args, "repo", ".") or ".", options)
    result.show_suppressed = bool(getattr(args, "show_suppressed", False))
    for fmt, path in targets:
        write_report(render(fmt, result), path)
    return result.exit_code
