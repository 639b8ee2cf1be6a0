"""What the bench scripts share."""

from __future__ import annotations

import sys

#: The installed ``sopsflow`` script's start-up (``sopsflow.main:run``), run with
#: this interpreter so that the checkout on PYTHONPATH is what gets measured.
#: ``python -m sopsflow`` would add runpy's ~8 ms, which users never pay.
ENTRY_POINT = "import sys; from sopsflow.main import run; sys.argv[0] = 'sopsflow'; run()"


def sopsflow_command() -> list[str]:
    return [sys.executable, "-c", ENTRY_POINT]
