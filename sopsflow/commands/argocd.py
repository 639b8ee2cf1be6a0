"""``sopsflow argocd``: the Argo CD Config Management Plugin's commands.

    sopsflow argocd generate [DIR]   # every manifest of DIR, SOPS ones decrypted: one YAML stream
    sopsflow argocd discover [DIR]   # the SOPS manifests found (empty output: not a sopsflow app)

`argocd/plugin.yaml` runs them in the Application's source directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("argocd", help="Argo CD Config Management Plugin (generate, discover)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = actions.add_parser(
        "generate",
        help="print the directory's manifests with SOPS files decrypted",
        description="Print every Kubernetes manifest (*.yaml, *.yml, *.json) below DIR as one multi-document "
        "YAML stream, SOPS-encrypted ones decrypted as `sops decrypt` prints them. Subdirectories with their "
        "own kustomization, hidden files, kustomization files and ksops generators are left out (named on "
        "stderr). Plaintext goes to stdout only.",
    )
    g.add_argument("dir", nargs="?", default=".", help="the application directory (default: .)")
    g.set_defaults(func=run_generate)
    d = actions.add_parser(
        "discover",
        help="list the SOPS-encrypted manifests below DIR",
        description="Print the SOPS-encrypted Kubernetes manifests below DIR, one path a line; nothing when "
        "there are none (Argo CD's discover.find.command matches on non-empty output). Nothing is decrypted.",
    )
    d.add_argument("dir", nargs="?", default=".", help="the directory to look in (default: .)")
    d.set_defaults(func=run_discover)


def run_generate(args: argparse.Namespace) -> int:
    from ..gitops import argocd

    def note(text: str) -> None:
        sys.stderr.write(f"sopsflow argocd: {text}\n")

    stream = argocd.generate(Path(args.dir), note=note)
    sys.stdout.write(stream)
    sys.stdout.flush()
    return 0


def run_discover(args: argparse.Namespace) -> int:
    from ..gitops import argocd

    for rel in argocd.discover(Path(args.dir)):
        sys.stdout.write(rel + "\n")
    return 0
