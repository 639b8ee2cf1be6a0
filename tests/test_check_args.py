"""``sopsflow check`` arguments as the pre-commit framework passes them: after
``--`` every word is a staged file (a file named ``--rev=HEAD`` is judged, not
obeyed); before it an unknown or abbreviated option is exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.gitfixtures import commit, init_repo, run_check, stage, write
from tests.vectors import AGE_KEY_FILE

IDENTITY = next(line for line in AGE_KEY_FILE.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "r", {"README.md": "notes\n"})
    commit(repo, "base")
    return repo


@pytest.mark.parametrize("name", ["--rev=HEAD", "--all-files", "-q", "--strict", "--"])
def test_after_double_dash_every_word_is_a_staged_file(repo: Path, name: str) -> None:
    write(repo, name, f"# deploy identity\n{IDENTITY}\n")
    stage(repo, name)
    done = run_check(repo, "--", name)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{name}:2: error: age identity" in done.stdout and "1 file checked" in done.stdout


def test_a_file_named_like_an_option_among_others(repo: Path) -> None:
    write(repo, "--rev=HEAD", f"{IDENTITY}\n")
    write(repo, "docs/a.md", "fine\n")
    stage(repo, "--rev=HEAD", "docs/a.md")
    done = run_check(repo, "--strict", "--", "docs/a.md", "--rev=HEAD")
    assert done.returncode == 1 and "--rev=HEAD:1: error" in done.stdout and "2 files checked" in done.stdout


@pytest.mark.parametrize("args", [["--bogus", "README.md"], ["--all"], ["--rev"], ["--str", "--", "README.md"]])
def test_before_double_dash_an_unknown_option_is_exit_2(repo: Path, args: list[str]) -> None:
    done = run_check(repo, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_the_hook_manifest_ends_the_options() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    for hook_id in ("sopsflow-check", "sopsflow-check-strict"):
        assert hooks[hook_id]["args"][-1:] == ["--"], hook_id
