"""``sopsflow rules FILE``: explain which creation rule applies to FILE and why."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rules", help="explain which .sops.yaml creation rule matches a file")
    p.add_argument("file", help="the file to explain (it need not exist)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--config", default=argparse.SUPPRESS, help="path to .sops.yaml")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config.explain import explain, format_text

    info = explain(args.file, config_path=getattr(args, "config", None))
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(format_text(info).rstrip("\n") + "\n")
    return 0 if info.get("status") == "matched" else 1
