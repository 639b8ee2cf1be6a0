"""``sopsflow install-sops-link DIR``: put a ``sops`` entry on PATH that runs sopsflow.

A symlink named ``sops`` to the ``sopsflow`` program: called by that name,
sopsflow introduces itself as sops (``sops 3.11.0 (sopsflow X)``), so tools
that parse the version (Ansible, helm-secrets) use the modern command line.
Never done silently by installing the package: a ``sops`` console script
would shadow a real sops.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from .. import errors
from ..errors import SopsError

_EXAMPLES = """examples:
  sopsflow install-sops-link ~/.local/bin
  sopsflow install-sops-link --force /usr/local/bin   # replace an existing sops
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install-sops-link",
        help="create DIR/sops, a symlink to sopsflow, so tools calling `sops` run sopsflow",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", metavar="DIR", help="a directory on PATH, e.g. ~/.local/bin")
    p.add_argument("--force", action="store_true", help="replace an existing DIR/sops (a real sops included)")
    p.set_defaults(func=run)


def sopsflow_program() -> str:
    """The ``sopsflow`` executable to link to: the one next to this Python
    (a venv's console script), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "sopsflow")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("sopsflow")
    if not found:
        raise SopsError(errors.GENERIC, "sopsflow: cannot find the sopsflow program to link to; is it installed?")
    return os.path.abspath(found)


def run(args: argparse.Namespace) -> int:
    directory = os.path.expanduser(args.dir)
    if not os.path.isdir(directory):
        raise SopsError(errors.GENERIC, f"sopsflow: {args.dir} is not a directory")
    target = sopsflow_program()
    link = os.path.join(directory, "sops")
    if os.path.lexists(link):
        if os.path.islink(link) and os.path.realpath(link) == os.path.realpath(target):
            sys.stdout.write(f"{link} already runs sopsflow\n")
            return 0
        if not args.force:
            raise SopsError(errors.GENERIC, f"sopsflow: {link} exists; pass --force to replace it")
    temp = f"{link}.sopsflow-tmp"
    if os.path.lexists(temp):
        os.unlink(temp)
    os.symlink(target, temp)
    os.replace(temp, link)  # atomic: a concurrent `sops` call sees the old or the new entry
    sys.stdout.write(f"{link} -> {target}\n")
    on_path = [os.path.realpath(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    if os.path.realpath(directory) not in on_path:
        sys.stderr.write(f"note: {directory} is not on PATH\n")
    return 0
