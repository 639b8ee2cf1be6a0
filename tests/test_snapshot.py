"""snapshot: which `.sops.yaml` governs each file of a revision, the index or
the work tree, read from real git repositories; and the fail-closed rule that
``check`` and ``verify`` share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sopsflow.git.repo import open_repo
from sopsflow.git.snapshot import NO_CONFIG, Snapshot, changed_configs, config_candidates, rule_changes
from sopsflow.gitops.verify import VerifyOptions, verify
from tests.gitfixtures import OTHER_RECIPIENT, commit, git, init_repo, run_check, stage, write
from tests.vectors import AGE_RECIPIENT


def rules(*regexes: str, recipients: str = AGE_RECIPIENT, extra: str = "") -> str:
    out = "creation_rules:\n"
    for regex in regexes:
        out += f"  - path_regex: {regex}\n    age: {recipients}\n{extra}"
    return out


@pytest.fixture(autouse=True)
def _no_git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_candidates_run_from_the_file_up_to_the_root() -> None:
    assert list(config_candidates("a/b/c.yaml")) == ["a/b/.sops.yaml", "a/.sops.yaml", ".sops.yaml"]
    assert list(config_candidates("top.yaml")) == [".sops.yaml"]


def test_the_nearest_config_governs(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "r", {"a/.sops.yaml": rules("^x/"), "a/b/x/f.yaml": "k: v\n",
                                       "a/y.yaml": "k: v\n", "z/w.yaml": "k: v\n"}, rules=rules("^z/"))
    snap = Snapshot.at(open_repo(root), "HEAD")
    assert snap.config_for("a/b/x/f.yaml").path == "a/.sops.yaml"
    assert snap.config_for("a/y.yaml").path == "a/.sops.yaml"
    assert snap.config_for("z/w.yaml").path == ".sops.yaml"
    # resolved once per directory: every file under a/ shares one parsed config
    assert snap.config_for("a/b/x/f.yaml").config is snap.config_for("a/y.yaml").config
    assert not snap.config_for("a/y.yaml").fail_closed


def test_discovery_stops_at_the_repository_root(tmp_path: Path) -> None:
    # a config above the repository is not part of what is committed
    write(tmp_path, ".sops.yaml", rules("^secrets/"))
    root = init_repo(tmp_path / "r", {"secrets/a.yaml": "password: x\n"}, rules=None)
    repo = open_repo(root)
    for snap in (Snapshot.at(repo, "HEAD"), Snapshot.index(repo), Snapshot.worktree(repo)):
        assert snap.config_for("secrets/a.yaml") == NO_CONFIG
        assert snap.resolved_rule("secrets/a.yaml") is None


def test_each_snapshot_reads_its_own_config(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "r", {"s/a.yaml": "k: v\n"}, rules=rules("^s/"))
    write(root, ".sops.yaml", rules("^s/", recipients=OTHER_RECIPIENT))
    stage(root, ".sops.yaml")
    write(root, ".sops.yaml", rules("^t/"))
    write(root, "n/.sops.yaml", rules("^q/"))  # untracked
    repo = open_repo(root)
    head, index, worktree = Snapshot.at(repo, "HEAD"), Snapshot.index(repo), Snapshot.worktree(repo)
    assert head.resolved_rule("s/a.yaml") != index.resolved_rule("s/a.yaml")
    assert index.resolved_rule("s/a.yaml") is not None
    assert worktree.resolved_rule("s/a.yaml") is None  # the edited config has no rule for s/
    # an untracked config on disk counts where sops run in the work tree would see it
    assert head.config_for("n/q/x").path == ".sops.yaml"
    assert index.config_for("n/q/x").path == "n/.sops.yaml"


def test_a_broken_config_fails_closed_with_a_repo_relative_reason(tmp_path: Path) -> None:
    broken = rules("^ok/") + "  - path_regex: (unclosed\n" f"    age: {AGE_RECIPIENT}\n"
    root = init_repo(tmp_path / "r", {"team/.sops.yaml": broken, "team/ok/a.yaml": "k: v\n",
                                       "other/b.yaml": "k: v\n"}, rules=rules("^other/"))
    snap = Snapshot.at(open_repo(root), "HEAD")
    ref = snap.config_for("team/ok/a.yaml")
    assert ref.path == "team/.sops.yaml" and ref.fail_closed and ref.config is None
    assert ref.error is not None and "team/.sops.yaml" in ref.error.message and str(root) not in ref.error.message
    # the rules that still load are kept, to say more than "refused"
    assert ref.lenient is not None and ref.rules is ref.lenient and len(ref.lenient.rules) >= 1
    assert snap.resolved_rule("team/ok/a.yaml") == ("broken", "team/.sops.yaml", ref.error.message)
    # a sibling directory keeps its working config
    assert not snap.config_for("other/b.yaml").fail_closed


def test_unreadable_and_symlinked_configs_fail_closed(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "r", {"real.yaml": rules("^s/"), "s/a.yaml": "k: v\n"}, rules=None)
    os.symlink("real.yaml", root / ".sops.yaml")
    stage(root, ".sops.yaml")
    index = Snapshot.index(open_repo(root))
    ref = index.config_for("s/a.yaml")
    assert ref.fail_closed and ref.error is not None and "symbolic link" in ref.error.message
    if os.geteuid() == 0:
        return  # root reads a mode-000 file: the unreadable case cannot be made
    git(root, "rm", "-q", "--cached", ".sops.yaml")
    (root / ".sops.yaml").unlink()
    write(root, ".sops.yaml", rules("^s/")).chmod(0)
    try:
        ref = Snapshot.index(open_repo(root)).config_for("s/a.yaml")
        assert ref.fail_closed and ref.error is not None and "cannot read config file .sops.yaml" in ref.error.message
    finally:
        (root / ".sops.yaml").chmod(0o644)


def test_rule_changes_names_only_files_whose_rule_changed(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "r", {"s/a.yaml": "k: v\n", "s/b.yaml": "k: v\n", "t/c.yaml": "k: v\n",
                                       "u/d.yaml": "k: v\n"}, rules=rules("^s/", "^t/"))
    repo = open_repo(root)
    head = Snapshot.at(repo, "HEAD")
    # a recipient added to the s/ rule, the t/ rule rewritten without effect
    # (same keys, another regex), a new rule for a path nothing is at
    write(root, ".sops.yaml", rules("^s/", recipients=f"{AGE_RECIPIENT},{OTHER_RECIPIENT}")
          + rules("^(t)/", "^none/").removeprefix("creation_rules:\n"))
    stage(root, ".sops.yaml")
    index = Snapshot.index(repo)
    assert changed_configs(head, index) == [".sops.yaml"]
    assert sorted(f.path for f in rule_changes(head, index, [".sops.yaml"])) == ["s/a.yaml", "s/b.yaml"]
    # a selection option is part of the rule
    write(root, ".sops.yaml", rules("^s/", "^t/", extra="    encrypted_regex: ^password$\n"))
    stage(root, ".sops.yaml")
    repo = open_repo(root)  # a Repo reads the index once
    index = Snapshot.index(repo)
    assert sorted(f.path for f in rule_changes(head, index, [".sops.yaml"])) == ["s/a.yaml", "s/b.yaml", "t/c.yaml"]
    commit(root, "options")
    repo = open_repo(root)
    assert changed_configs(Snapshot.at(repo, "HEAD"), Snapshot.index(repo)) == []
    # a comment, or the same rules written another way, changes no file's rule
    write(root, ".sops.yaml", "# reviewed\n" + rules("^s/", "^t/", extra="    encrypted_regex: '^password$'\n"))
    stage(root, ".sops.yaml")
    repo = open_repo(root)
    head, index = Snapshot.at(repo, "HEAD"), Snapshot.index(repo)
    assert changed_configs(head, index) == [".sops.yaml"]
    assert rule_changes(head, index, [".sops.yaml"]) == []


def test_check_and_verify_fail_closed_alike(tmp_path: Path) -> None:
    """A file under a broken config is refused by both, with the same message,
    never judged as if no rule applied."""
    # the second rule names a malformed age key: sops refuses the whole file
    broken = rules("^db/") + "  - path_regex: ^vault/\n    age: age1notakey\n"
    root = init_repo(tmp_path / "r", {"vault/token.txt": "token: hunter2-but-longer\n",
                                       "db/pass.yaml": "password: correct-horse\n", "docs/a.md": "hi\n"},
                     rules=broken)
    result = verify(root, VerifyOptions())
    statuses = {a.path: a.status for a in result.files}
    assert statuses["vault/token.txt"] == "broken" and statuses["docs/a.md"] == "broken"
    invalid = [f for f in result.findings if f.kind == "invalid-config"]
    assert [f.path for f in invalid] == [".sops.yaml"] and result.exit_code == 1
    # the rule that still loads still names the plaintext file
    assert ("plaintext-secret", "db/pass.yaml") in {(f.kind, f.path) for f in result.findings}
    done = run_check(root, "--all-files")
    assert done.returncode == 1
    assert invalid[0].message in done.stdout
    assert "db/pass.yaml:1: error: not encrypted" in done.stdout
    # staging only an unrelated file under it is refused too
    write(root, "docs/b.md", "hello\n")
    stage(root, "docs/b.md")
    done = run_check(root)
    assert done.returncode == 1 and invalid[0].message in done.stdout
