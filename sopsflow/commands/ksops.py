"""``sopsflow ksops``: the KSOPS-compatible kustomize generator.

    sopsflow ksops secret-generator.yaml      # legacy exec plugin (what kustomize runs)
    sopsflow ksops < resource-list.yaml       # KRM function: a ResourceList in and out
    sopsflow ksops install [DIR]              # write the `ksops` launcher kustomize looks for

The decrypted manifests go to stdout and nowhere else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import errors
from ..errors import SopsError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ksops",
        help="KSOPS-compatible kustomize generator (exec plugin and KRM function)",
        description="Decrypt the SOPS files a `viaduct.ai/v1` `kind: ksops` generator names, for kustomize. "
        "With a file argument it is the legacy exec plugin; with none it reads a ResourceList on stdin "
        "and writes one (KRM function). `install [DIR]` writes the `ksops` launcher into DIR "
        "(default: $XDG_CONFIG_HOME/kustomize/plugin/viaduct.ai/v1/ksops, where kustomize looks).",
    )
    p.add_argument("target", nargs="*", metavar="CONFIG | install [DIR]",
                   help="the generator manifest; or `install` and the launcher's directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..gitops import ksops

    target: list[str] = args.target
    if target[:1] == ["install"] and len(target) <= 2:
        directory = Path(target[1]) if len(target) == 2 else ksops.default_plugin_dir()
        written = ksops.install_launcher(directory)
        sys.stderr.write(f"installed {written}\n")
        return 0
    if len(target) > 1:
        raise SopsError(errors.GENERIC, "ksops: expected one generator manifest (or `install [DIR]`)")
    if target:
        text = ksops.run_exec(target[0])
    else:
        if sys.stdin is None or sys.stdin.isatty():
            raise SopsError(errors.NO_FILE_SPECIFIED,
                            "ksops: no generator: give the generator file, or a ResourceList on stdin")
        text = ksops.run_krm(sys.stdin.buffer.read())
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
