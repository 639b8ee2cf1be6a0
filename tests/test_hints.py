"""Fix hints that are right in the context they are read in: on real git
repositories, through ``sopsflow check`` and ``sopsflow verify``."""

from __future__ import annotations

import sys
import subprocess
from pathlib import Path

from tests.gitfixtures import AGE_RECIPIENT, git, git_env, init_repo, run_check, stage, write

DOTENV_RULES = f"""\
creation_rules:
  - path_regex: .*\\.env
    age: {AGE_RECIPIENT}
"""


def test_a_non_sops_file_at_a_rule_path_is_named_as_such(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", rules=DOTENV_RULES)
    write(repo, "notes.env.bin", "just some notes\n")
    stage(repo, "notes.env.bin")
    done = run_check(repo)
    assert done.returncode == 1, done.stdout
    line = next(x for x in done.stdout.splitlines() if x.startswith("notes.env.bin:"))
    assert "at creation_rules[0] (path_regex '.*\\.env') but not a SOPS file" in line
    assert "unmarshalling" not in line and "does not load" not in line
    # `.env` followed by `.bin` is a whole name part: no accident suspected
    assert "by accident" not in line
    assert "fix: sopsflow encrypt -i notes.env.bin" in line


def test_an_unanchored_regex_matching_part_of_a_name_is_called_out(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", rules=DOTENV_RULES)
    write(repo, "app/.envrc", "use flake\n")
    stage(repo, "app/.envrc")
    done = run_check(repo)
    assert done.returncode == 1, done.stdout
    line = next(x for x in done.stdout.splitlines() if x.startswith("app/.envrc:"))
    assert "but not a SOPS file" in line
    assert "matches only '.env' of the name '.envrc'" in line
    assert "unanchored path_regex that may match by accident" in line
