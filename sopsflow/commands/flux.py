"""``sopsflow flux age-secret --key-file F``: print the Secret Flux needs to
decrypt SOPS files with an age key.

    sopsflow flux age-secret --key-file cluster.agekey | kubectl apply -f -

The manifest goes to stdout (or ``--output`` outside any git work tree) and a
warning to stderr. Redirecting stdout into a file inside a git work tree is
refused as well: the manifest holds the private key in plain base64.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flux", help="Flux helpers (the age decryption Secret)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser(
        "age-secret",
        help="print the Secret manifest Flux reads age keys from",
        description="Print the Kubernetes Secret that Flux's kustomize-controller reads age identities from "
        "(spec.decryption.secretRef of a Kustomization). It contains the PRIVATE key: pipe it to "
        "`kubectl apply -f -`. It is never written into a git work tree.",
    )
    a.add_argument("--key-file", required=True, metavar="F",
                   help="age key file (as written by age-keygen; '-' reads stdin)")
    a.add_argument("--namespace", default="flux-system", help="namespace of the Secret (default: flux-system)")
    a.add_argument("--name", default="sops-age", help="name of the Secret (default: sops-age)")
    a.add_argument("--data-key", default="age.agekey",
                   help="key inside the Secret's data; must end in .agekey (default: age.agekey)")
    a.add_argument("--output", metavar="F",
                   help="write to F (mode 0600) instead of stdout; refused inside a git work tree")
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..fileio import atomic_write, read_input
    from ..gitops import flux

    key_data = sys.stdin.buffer.read() if args.key_file == "-" else read_input(args.key_file)
    # Refuse the destination before anything is produced.
    if args.output:
        flux.refuse_git_destination(Path(args.output), "--output")
    else:
        redirected = flux.stdout_file()
        if redirected is not None:
            flux.refuse_git_destination(redirected, "stdout")
    manifest = flux.age_secret_manifest(key_data, name=args.name, namespace=args.namespace,
                                        data_key=args.data_key)
    if args.output:
        atomic_write(args.output, manifest.encode("utf-8"), mode=0o600)
    else:
        sys.stdout.write(manifest)
        sys.stdout.flush()
    where = args.output if args.output else "the manifest on stdout"
    sys.stderr.write(
        f"warning: {where} contains the PRIVATE age key in plain base64 (Secret "
        f"{args.namespace}/{args.name}). Apply it with `kubectl apply -f -`; never commit it.\n"
    )
    return 0
