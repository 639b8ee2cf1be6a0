"""The mutation pins stay usable: every patch under tests/mutants/ says what it
breaks and which tests must catch it, and still applies to the tree.

Running the mutants is ``make mutants`` (scripts/check_mutants.py); this only
keeps a patch from going stale unnoticed when the code it mutates changes.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import REPO

MUTANTS = sorted((REPO / "tests" / "mutants").glob("*.patch"))


def _script() -> ModuleType:
    loaded = sys.modules.get("check_mutants")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("check_mutants", REPO / "scripts" / "check_mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_mutants"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_there_are_mutants() -> None:
    assert len(MUTANTS) >= 4


@pytest.mark.parametrize("patch", MUTANTS, ids=[p.stem for p in MUTANTS])
def test_mutant_header_and_patch(patch: Path) -> None:
    script = _script()
    fields = script.parse_header(patch.read_text(encoding="utf-8"))
    assert fields.get("Mutant") and fields.get("Promise"), fields
    tests = fields.get("Tests", "").split()
    assert tests
    for test in tests:
        assert (REPO / test.split("::")[0]).is_file(), f"{patch.name} names a missing test file: {test}"
    # --check reads the work tree and changes nothing
    done = subprocess.run(["git", "apply", "--check", str(patch)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, f"{patch.name} no longer applies: {done.stderr}"


def test_header_continuation_lines() -> None:
    script = _script()
    fields = script.parse_header(
        "# Mutant: one\n#   two\n# Tests: a.py\n# b.py::t\ndiff --git a/x b/x\n# Tests: not-header\n"
    )
    assert fields == {"Mutant": "one two", "Tests": "a.py b.py::t"}
