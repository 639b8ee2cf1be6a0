"""Fix hints that are right in the context they are read in: on real git
repositories, through ``sopsflow check`` and ``sopsflow verify``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.gitfixtures import AGE_RECIPIENT, commit, git, git_env, init_repo, run_check, stage, write


def _sopsflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "sopsflow", *args], cwd=repo, env=git_env(),
                          capture_output=True, timeout=120)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8", "replace"),
                                       done.stderr.decode("utf-8", "replace"))

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


def test_encrypted_in_the_work_tree_but_staged_in_plaintext_says_git_add(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, "secrets/db.yaml", "password: hunter2\n")
    stage(repo, "secrets/db.yaml")
    before = run_check(repo)
    assert before.returncode == 1
    assert "fix: sopsflow encrypt -i secrets/db.yaml" in before.stdout

    encrypted = _sopsflow(repo, "encrypt", "-i", "secrets/db.yaml")
    assert encrypted.returncode == 0, encrypted.stderr
    done = run_check(repo)  # not staged yet: the index still holds the plaintext
    assert done.returncode == 1, done.stdout
    line = next(x for x in done.stdout.splitlines() if x.startswith("secrets/db.yaml"))
    assert "[plaintext-secret]" in line
    assert "fix: git add secrets/db.yaml" in line
    assert "encrypt -i" not in line
    # the fingerprint names the same finding as before (allow-lists keep working)
    assert line.split("(fp:")[1] == next(x for x in before.stdout.splitlines()
                                          if x.startswith("secrets/db.yaml")).split("(fp:")[1]
    # what the old hint said would fail: the file is already encrypted
    assert _sopsflow(repo, "encrypt", "-i", "secrets/db.yaml").returncode == 203

    git(repo, "add", "secrets/db.yaml")
    assert run_check(repo).returncode == 0


def test_a_plaintext_work_tree_copy_keeps_the_encrypt_hint(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, "secrets/db.yaml", "password: hunter2\n")
    stage(repo, "secrets/db.yaml")
    write(repo, "secrets/db.yaml", "password: hunter3\n")  # edited, still plaintext
    done = run_check(repo)
    assert done.returncode == 1
    assert "fix: sopsflow encrypt -i secrets/db.yaml" in done.stdout
    assert "git add" not in done.stdout


def _leaky_repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "r", {
        "secrets/db.yaml": "password: hunter2\n",
        "app/.env": "DATABASE_PASSWORD=Zq8vN3xLw2Rt7Kp9\n",
        "README.md": "docs\n",
        "deploy/kustomization.yaml": "secretGenerator:\n  - name: db\n    envs: [db.properties]\n",
        "deploy/db.properties": "DB_HOST=db.internal\n",
    })


def _push(repo: Path) -> None:
    """Push ``main`` to a new bare repository: origin/main then holds it."""
    remote = repo.parent / (repo.name + "-remote.git")
    git(repo.parent, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")


ROTATE = "rotate it at its source; history keeps it (`sopsflow history` lists every commit and ref that holds it)"


def test_a_secret_in_a_pushed_commit_is_to_be_rotated_in_text_github_junit_and_sarif(tmp_path: Path) -> None:
    import json

    repo = _leaky_repo(tmp_path)
    _push(repo)
    text = _sopsflow(repo, "verify")
    assert text.returncode == 1, text.stdout + text.stderr
    lines = text.stdout.splitlines()
    for path in ("secrets/db.yaml", "app/.env", "deploy/db.properties"):
        i = next(n for n, x in enumerate(lines) if x.startswith(path))
        assert lines[i + 1].startswith("    fix: ") and lines[i + 1].endswith("; " + ROTATE)
    assert "sopsflow encrypt -i secrets/db.yaml; rotate it at its source" in text.stdout
    assert "local commits" not in text.stdout

    github = _sopsflow(repo, "verify", "--format", "github")
    annotations = [x for x in github.stdout.splitlines() if x.startswith("::error")]
    assert {x.split("file=")[1].split(",")[0] for x in annotations} >= {"secrets/db.yaml", "app/.env"}
    for x in annotations:
        if "file=secrets/db.yaml," in x or "file=app/.env," in x:
            assert x.endswith("; " + ROTATE), x

    junit = _sopsflow(repo, "verify", "--format", "junit")
    assert junit.stdout.count(ROTATE) >= 2

    sarif = json.loads(_sopsflow(repo, "verify", "--format", "sarif").stdout)
    messages = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r["message"]["text"]
                for r in sarif["runs"][0]["results"]}
    assert messages["secrets/db.yaml"].endswith("; " + ROTATE)
    assert messages["app/.env"].endswith("; " + ROTATE)


def test_a_secret_only_in_local_commits_is_to_be_rewritten_before_pushing(tmp_path: Path) -> None:
    repo = _leaky_repo(tmp_path)
    _push(repo)  # pushed without the new secret below
    write(repo, "secrets/api.yaml", "token: s3cr3t-value\n")
    git(repo, "add", "secrets/api.yaml")
    commit(repo, "local only")
    done = _sopsflow(repo, "verify")
    lines = done.stdout.splitlines()
    i = next(n for n, x in enumerate(lines) if x.startswith("secrets/api.yaml"))
    assert lines[i + 1].endswith("it is only in local commits, not pushed: rewrite them (git commit --amend, "
                                 "git rebase -i) before you push"), lines[i + 1]
    assert "rotate" not in lines[i + 1]
    # the older one was pushed: still to be rotated
    j = next(n for n, x in enumerate(lines) if x.startswith("secrets/db.yaml"))
    assert lines[j + 1].endswith(ROTATE)
    # in CI the commit being checked was pushed, remote-tracking refs or not
    ci = subprocess.run([sys.executable, "-m", "sopsflow", "verify"], cwd=repo, env=git_env(CI="true"),
                        capture_output=True, text=True, timeout=120)
    assert "secrets/api.yaml" in ci.stdout and ci.stdout.count(ROTATE) >= 3, ci.stdout


def test_the_hook_says_rotate_for_a_staged_secret_that_a_pushed_commit_holds(tmp_path: Path) -> None:
    repo = _leaky_repo(tmp_path)
    _push(repo)
    write(repo, "secrets/db.yaml", "password: hunter2\nuser: admin\n")  # still plaintext, edited
    write(repo, "secrets/new.yaml", "password: fresh\n")  # not in any commit
    stage(repo, "secrets/db.yaml", "secrets/new.yaml")
    done = run_check(repo)
    assert done.returncode == 1
    old = next(x for x in done.stdout.splitlines() if x.startswith("secrets/db.yaml"))
    new = next(x for x in done.stdout.splitlines() if x.startswith("secrets/new.yaml"))
    assert "fix: sopsflow encrypt -i secrets/db.yaml; " + ROTATE in old
    assert "fix: sopsflow encrypt -i secrets/new.yaml (fp:" in new
    assert "rotate" not in new and "history" not in new


def test_staged_secrets_are_not_yet_in_history(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, "secrets/db.yaml", "password: hunter2\n")
    stage(repo, "secrets/db.yaml")
    for args in (("--index",), ("--index", "--format", "github"), ("--index", "--format", "junit")):
        done = _sopsflow(repo, "verify", *args)
        assert done.returncode == 1
        assert "sopsflow encrypt -i secrets/db.yaml" in done.stdout
        assert "rotate" not in done.stdout


LOCAL = "it is only in local commits, not pushed: rewrite them (git commit --amend, git rebase -i) before you push"


def test_the_hook_and_pre_push_say_rewrite_for_a_secret_only_in_local_commits(tmp_path: Path) -> None:
    repo = _leaky_repo(tmp_path)
    _push(repo)
    write(repo, "secrets/api.yaml", "token: s3cr3t-value\n")
    git(repo, "add", "secrets/api.yaml")
    commit(repo, "committed with --no-verify, not pushed")
    # pre-push judges the commit being pushed: it is not on the remote yet
    pushed = run_check(repo, "--rev", "HEAD")
    assert pushed.returncode == 1
    line = next(x for x in pushed.stdout.splitlines() if x.startswith("secrets/api.yaml"))
    assert f"fix: sopsflow encrypt -i secrets/api.yaml; {LOCAL}" in line
    # the next commit stages an edit, still plaintext: HEAD holds it, locally only
    write(repo, "secrets/api.yaml", "token: s3cr3t-value\nregion: eu\n")
    stage(repo, "secrets/api.yaml")
    staged = run_check(repo)
    line = next(x for x in staged.stdout.splitlines() if x.startswith("secrets/api.yaml"))
    assert LOCAL in line and "rotate" not in line
