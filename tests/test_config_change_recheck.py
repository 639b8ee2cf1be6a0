"""A `.sops.yaml` change re-judges the files whose creation rule it alters,
though they are not staged or changed themselves: the hook (native and as the
pre-commit framework calls it) and ``verify --since``, on real repositories
with files made by the real sops and re-keyed by ``sopsflow updatekeys``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sopsflow.gitops.verify import VerifyOptions, VerifyResult, verify
from tests.gitfixtures import OTHER_RECIPIENT, commit, git, git_env, init_repo, run_check, sops_encrypt, stage, write
from tests.vectors import AGE_RECIPIENT

PLAIN = "password: correct-horse-battery\nuser: admin\n"
STALE = "[stale-recipients] -- fix: sopsflow updatekeys"


def config(recipients: str = AGE_RECIPIENT, extra_rule: str = "") -> str:
    return ("creation_rules:\n"
            f"{extra_rule}"
            "  - path_regex: ^secrets/\n"
            f"    age: {recipients}\n"
            "  - path_regex: ^other/\n"
            f"    age: {AGE_RECIPIENT}\n")


WIDER = config(f"{AGE_RECIPIENT},{OTHER_RECIPIENT}")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", {
        "secrets/a.yaml": sops_encrypt("a.yaml", PLAIN),
        "secrets/deep/b.yaml": sops_encrypt("b.yaml", PLAIN),
        "other/c.yaml": sops_encrypt("c.yaml", PLAIN),
        "README.md": "docs\n",
    }, rules=config())


def stale_lines(stdout: str) -> list[str]:
    return sorted(line for line in stdout.splitlines() if "[stale-recipients]" in line)


def updatekeys(repo: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "sopsflow", "updatekeys", "-y"], cwd=repo, env=git_env(),
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()


def test_strict_hook_refuses_stale_files_when_only_the_config_is_staged(repo: Path) -> None:
    write(repo, ".sopsflow.yaml", "strict: true\n")
    stage(repo, ".sopsflow.yaml")
    commit(repo, "strict")
    done = subprocess.run([sys.executable, "-m", "sopsflow", "install-hooks"], cwd=repo, env=git_env(),
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    write(repo, ".sops.yaml", WIDER)
    stage(repo, ".sops.yaml")
    refused = git(repo, "commit", "-q", "-m", "add a recipient", check=False)
    out = refused.stdout.decode() + refused.stderr.decode()
    assert refused.returncode != 0, out
    lines = stale_lines(out)
    # each stale file by name, with updatekeys as the fix; other/ keeps its rule
    assert [line.split(":", 1)[0] for line in lines] == ["secrets/a.yaml", "secrets/deep/b.yaml"]
    assert all(": error: " in line and f"+{OTHER_RECIPIENT}" in line for line in lines)
    assert "sopsflow updatekeys secrets/a.yaml" in lines[0]
    assert "other/c.yaml" not in out
    # as the pre-commit framework calls it: the staged names after --
    framework = run_check(repo, "--strict", "--", ".sops.yaml")
    assert framework.returncode == 1 and stale_lines(framework.stdout) == lines
    assert "2 of them not staged but re-checked" in framework.stdout
    updatekeys(repo)
    stage(repo, "secrets")
    ok = git(repo, "commit", "-q", "-m", "add a recipient", check=False)
    assert ok.returncode == 0, ok.stdout.decode() + ok.stderr.decode()
    assert OTHER_RECIPIENT.encode() in git(repo, "show", "HEAD:secrets/deep/b.yaml").stdout


def test_pre_push_judges_the_pushed_commit_against_the_one_before(repo: Path) -> None:
    write(repo, ".sops.yaml", WIDER)
    stage(repo, ".sops.yaml")
    commit(repo, "add a recipient, forget updatekeys")
    done = run_check(repo, "--strict", "--rev", "HEAD")
    assert done.returncode == 1
    assert [line.split(":", 1)[0] for line in stale_lines(done.stdout)] == ["secrets/a.yaml", "secrets/deep/b.yaml"]
    # the pre-commit framework names the pushed range in its environment
    env = git_env(PRE_COMMIT_FROM_REF="HEAD", PRE_COMMIT_TO_REF="HEAD")
    assert run_check(repo, "--strict", env=env).returncode == 0  # an empty range changes nothing


def test_without_strict_the_stale_files_are_warnings(repo: Path) -> None:
    write(repo, ".sops.yaml", WIDER)
    stage(repo, ".sops.yaml")
    done = run_check(repo)
    assert done.returncode == 0, done.stdout
    lines = stale_lines(done.stdout)
    assert [line.split(":", 1)[0] for line in lines] == ["secrets/a.yaml", "secrets/deep/b.yaml"]
    assert all(": warning: " in line and STALE in line for line in lines)


def test_a_config_change_that_keeps_each_rule_flags_nothing(repo: Path) -> None:
    # a new rule for a path nothing is at, the other rules the same
    write(repo, ".sops.yaml", config(extra_rule=f"  - path_regex: ^nothing/\n    age: {OTHER_RECIPIENT}\n"))
    stage(repo, ".sops.yaml")
    done = run_check(repo, "--strict")
    assert done.returncode == 0, done.stdout
    assert "1 file checked" in done.stdout and "re-checked" not in done.stdout
    commit(repo, "unrelated rule")
    result = verify(repo, VerifyOptions(since="HEAD~1"))
    assert sorted(a.path for a in result.files) == [".sops.yaml"]
    assert [f.kind for f in result.findings] == ["unused-creation-rule"]  # ^nothing/, not the files


def kinds(result: VerifyResult) -> set[tuple[str, str]]:
    return {(f.kind, f.path) for f in result.findings}


def test_verify_since_keeps_findings_a_config_change_causes(repo: Path) -> None:
    before = git(repo, "rev-parse", "HEAD").stdout.decode().strip()
    write(repo, ".sops.yaml", WIDER)
    stage(repo, ".sops.yaml")
    commit(repo, "add a recipient, forget updatekeys")
    write(repo, "README.md", "more docs\n")
    stage(repo, "README.md")
    commit(repo, "unrelated")
    result = verify(repo, VerifyOptions(since=before))
    stale = {(k, p) for k, p in kinds(result) if k == "stale-recipients"}
    assert stale == {("stale-recipients", "secrets/a.yaml"), ("stale-recipients", "secrets/deep/b.yaml")}
    assert all(f.fix == f"sopsflow updatekeys {f.path}" for f in result.findings if f.kind == "stale-recipients")
    # the range after the config change alone does not include it
    assert not any(k == "stale-recipients" for k, _ in kinds(verify(repo, VerifyOptions(since="HEAD~1"))))
    # a staged rewrite that keeps every rule flags nothing in the index either
    write(repo, ".sops.yaml", WIDER.replace("^other/", "^oth(er)/"))
    stage(repo, ".sops.yaml")
    index = verify(repo, VerifyOptions(source="index", since="HEAD"))
    assert sorted(a.path for a in index.files) == [".sops.yaml"] and index.findings == []
    git(repo, "checkout", "-q", "HEAD", "--", ".sops.yaml")
    updatekeys(repo)
    stage(repo, "secrets")
    commit(repo, "updatekeys")
    fixed = verify(repo, VerifyOptions(since=before))
    assert not any(k == "stale-recipients" for k, _ in kinds(fixed))
    assert {"secrets/a.yaml", "secrets/deep/b.yaml"} <= {a.path for a in fixed.files}
    # a recipient removed in the index: the files now hold a key their rule does not name
    write(repo, ".sops.yaml", config())
    stage(repo, ".sops.yaml")
    index = verify(repo, VerifyOptions(source="index", since="HEAD"))
    assert {("stale-recipients", "secrets/a.yaml"), ("recipients-outside-rule", "secrets/deep/b.yaml")} <= kinds(index)


def test_a_new_rule_over_a_committed_plaintext_file_is_judged(repo: Path) -> None:
    write(repo, "vault/token.yaml", PLAIN)
    stage(repo, "vault/token.yaml")
    commit(repo, "plaintext outside every rule")
    write(repo, ".sops.yaml", config(extra_rule=f"  - path_regex: ^vault/\n    age: {AGE_RECIPIENT}\n"))
    stage(repo, ".sops.yaml")
    done = run_check(repo)
    assert done.returncode == 1
    assert "vault/token.yaml:1: error: not encrypted" in done.stdout


def test_removing_a_nested_config_rejudges_the_files_it_governed(tmp_path: Path) -> None:
    both = f"{AGE_RECIPIENT},{OTHER_RECIPIENT}"
    root = init_repo(tmp_path / "repo", {
        "secrets/n/.sops.yaml": f"creation_rules:\n  - age: {both}\n",
        "secrets/n/a.yaml": sops_encrypt("a.yaml", PLAIN, recipients=both),
    }, rules=config())
    assert run_check(root, "--all-files").returncode == 0
    git(root, "rm", "-q", "secrets/n/.sops.yaml")
    done = run_check(root)
    # the root rule now governs it, and it does not name the second recipient
    assert done.returncode == 1, done.stdout
    assert f"secrets/n/a.yaml: error: recipients that creation_rules[0] (path_regex '^secrets/') does not name: " \
           f"{OTHER_RECIPIENT}" in done.stdout
