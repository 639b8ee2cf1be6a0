"""`sopsflow history`: which secrets ever reached a commit in plaintext.

Exit codes (as verify): 0 no exposure at error severity, 1 exposures,
2 usage errors (bad flags, unknown revision, not a repository).
"""

from __future__ import annotations

import argparse
import json

from ..errors import SopsError
from ..gitops.policy import USAGE_ERROR

_EPILOG = """\
formats: text (default), json, sarif, junit, github, gitlab; repeat --format
for several, each as FORMAT or FORMAT=FILE (at most one goes to stdout).
--report FILE writes every exposure with its commits, refs and key paths.

exit codes: 0 clean, 1 exposures at error severity, 2 usage errors.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history",
        help="find secrets that ever reached a commit in plaintext (every branch and tag, or --since REV)",
        description="Judge every file of every commit reachable from REFS (default: all branches, "
        "remote-tracking branches, tags and HEAD) with the commit hook's audit and each commit's own "
        ".sops.yaml, reading git objects only, and report each exposure once.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("refs", nargs="*", metavar="REF", help="refs or revisions whose history to scan")
    p.add_argument("--since", metavar="REV",
                   help="only commits not reachable from REV (a pull-request check: --since origin/main)")
    p.add_argument("--format", dest="formats", action="append", metavar="FORMAT[=FILE]",
                   help="text, json, sarif, junit, github or gitlab; repeatable")
    p.add_argument("-o", "--output", metavar="FILE", help="write the (single) format to FILE")
    p.add_argument("--report", metavar="FILE", help="write the full JSON report to FILE")
    p.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="worker processes (default: one per CPU; env SOPSFLOW_JOBS)")
    p.add_argument("-C", "--repo", dest="repo", default=".", metavar="DIR",
                   help="the repository to scan (default: the current directory)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..gitops.history import (
        HistoryOptions,
        as_verify_result,
        progress_printer,
        render_text,
        scan,
        to_json,
    )
    from ..gitops.report import parse_targets, render
    from .common import write_report

    targets = parse_targets(getattr(args, "formats", None), getattr(args, "output", None))
    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        raise SopsError(USAGE_ERROR, "--jobs must be at least 1")
    refs = list(getattr(args, "refs", None) or []) or None
    if refs is None and getattr(args, "since", None):
        refs = ["HEAD"]  # a pull-request check: what HEAD adds to the base
    options = HistoryOptions(refs=refs, since=getattr(args, "since", None), jobs=jobs,
                             progress=progress_printer())
    result = scan(getattr(args, "repo", ".") or ".", options)
    report_path = getattr(args, "report", None)
    if report_path:
        write_report(json.dumps(to_json(result), indent=2, ensure_ascii=False) + "\n", report_path)
    verify_shaped = None
    for fmt, path in targets:
        if fmt == "text":
            text = render_text(result, report_path)
        else:
            verify_shaped = verify_shaped or as_verify_result(result)
            text = render(fmt, verify_shaped)
        write_report(text, path)
    return result.exit_code
