"""gitrepo: what is staged, committed and on disk, read with pygit2 from real repositories."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sopsflow.errors import SopsError
from sopsflow.git.repo import MODE_EXECUTABLE, MODE_FILE, MODE_SYMLINK, IndexRepo, open_repo, relative_to_root
from tests.gitfixtures import commit, git, git_env, init_repo, stage, write


@pytest.fixture(autouse=True)
def _no_git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "r", {"keep.txt": "keep\n", "mod.txt": "old\n", "gone.txt": "bye\n",
                                      "move/from.txt": "moving\n"}, rules=None)


#: The index is read with pygit2 (Repo) or, in the hook, with the git command line (IndexRepo):
#: both must see the same.
OPENERS = pytest.mark.parametrize("opener", [open_repo, IndexRepo], ids=["pygit2", "git-cli"])


def paths(files: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(f.path for f in files)


@OPENERS
def test_staged_changes_are_index_vs_head(repo: Path, opener: Any) -> None:
    write(repo, "new.txt", "new\n")
    write(repo, "mod.txt", "new content\n")
    write(repo, "unstaged.txt", "not added\n")
    stage(repo, "new.txt", "mod.txt")
    git(repo, "rm", "-q", "gone.txt")
    (repo / "moved").mkdir()
    git(repo, "mv", "move/from.txt", "moved/to.txt")
    write(repo, "keep.txt", "changed on disk only\n")
    r = opener(repo)
    staged = r.staged_changes()
    assert paths(staged) == ["mod.txt", "moved/to.txt", "new.txt"]
    assert {f.path: f.data for f in staged}["mod.txt"] == b"new content\n"
    assert {f.path: f.mode for f in staged}["new.txt"] == MODE_FILE


@OPENERS
def test_index_not_worktree(repo: Path, opener: Any) -> None:
    write(repo, "mod.txt", "staged\n")
    stage(repo, "mod.txt")
    write(repo, "mod.txt", "on disk\n")
    r = opener(repo)
    f = r.index_file("mod.txt")
    assert f is not None and f.data == b"staged\n"
    assert {g.path: g.data for g in r.worktree_files()}["mod.txt"] == b"on disk\n"
    assert r.index_file("unknown.txt") is None


@OPENERS
def test_before_the_first_commit_everything_staged_is_new(tmp_path: Path, opener: Any) -> None:
    repo = init_repo(tmp_path / "fresh", {"a.txt": "a", "b/c.txt": "c"}, commit_message=None, rules=None)
    stage(repo, "a.txt", "b/c.txt")
    r = opener(repo)
    assert paths(r.staged_changes()) == ["a.txt", "b/c.txt"]
    with pytest.raises(SopsError):
        r.changed_since("HEAD")


@OPENERS
def test_symlinks_and_modes(repo: Path, opener: Any) -> None:
    os.symlink("keep.txt", repo / "link.txt")
    write(repo, "run.sh", "#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    stage(repo, "link.txt", "run.sh")
    r = opener(repo)
    by_path = {f.path: f for f in r.staged_changes()}
    assert by_path["link.txt"].is_symlink and by_path["link.txt"].mode == MODE_SYMLINK
    assert by_path["link.txt"].data == b"keep.txt"
    assert by_path["run.sh"].mode == MODE_EXECUTABLE and not by_path["run.sh"].is_symlink
    disk = {f.path: f for f in r.worktree_files()}
    assert disk["link.txt"].is_symlink and disk["link.txt"].data == b"keep.txt"


@OPENERS
def test_git_index_file_is_honoured(repo: Path, monkeypatch: pytest.MonkeyPatch, opener: Any) -> None:
    # what `git commit -a` / `git commit PATH` hand to hooks
    write(repo, "mod.txt", "in the temporary index\n")
    alt = repo / ".git" / "alt-index"
    git(repo, "read-tree", "HEAD", env=git_env(GIT_INDEX_FILE=str(alt)))
    git(repo, "add", "mod.txt", env=git_env(GIT_INDEX_FILE=str(alt)))
    assert opener(repo).staged_changes() == []
    monkeypatch.setenv("GIT_INDEX_FILE", str(alt))
    r = opener(repo)
    staged = r.staged_changes()
    assert paths(staged) == ["mod.txt"] and staged[0].data == b"in the temporary index\n"
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GIT_INDEX_FILE", ".git/alt-index")  # git may pass it relative to the top
    assert paths(opener(repo).staged_changes()) == ["mod.txt"]


def test_commits(repo: Path) -> None:
    write(repo, "mod.txt", "v2\n")
    git(repo, "rm", "-q", "gone.txt")
    git(repo, "add", "-A")
    commit(repo, "second")
    r = open_repo(repo)
    assert paths(r.files_at("HEAD")) == ["keep.txt", "mod.txt", "move/from.txt"]
    assert {f.path: f.data for f in r.files_at("HEAD~1")}["mod.txt"] == b"old\n"
    assert r.changed_since("HEAD~1") == {"mod.txt", "gone.txt"}
    assert paths(r.changed_between("HEAD~1", "HEAD")) == ["mod.txt"]
    f = r.file_at("HEAD", "move/from.txt")
    assert f is not None and f.data == b"moving\n"
    assert r.file_at("HEAD", "move") is None and r.file_at("HEAD", "nope") is None
    with pytest.raises(SopsError, match="unknown revision"):
        r.files_at("no-such-branch")


@OPENERS
def test_unicode_paths_and_gitlinks(repo: Path, opener: Any) -> None:
    write(repo, "dépôt/ünï code.yaml", "a: b\n")
    stage(repo, "dépôt/ünï code.yaml")
    sha = git(repo, "rev-parse", "HEAD").stdout.decode().strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sha},vendor/sub")
    r = opener(repo)
    assert paths(r.staged_changes()) == ["dépôt/ünï code.yaml"]
    assert "vendor/sub" not in paths(r.index_files())
    assert r.index_file("vendor/sub") is None
    assert r.index_file("dépôt/ünï code.yaml") is not None


@OPENERS
def test_open_repo_from_a_subdirectory_and_outside(repo: Path, tmp_path: Path, opener: Any) -> None:
    (repo / "deep" / "er").mkdir(parents=True)
    r = opener(repo / "deep" / "er")
    assert r.root == repo
    assert relative_to_root(r, "x.yaml", cwd=repo / "deep") == "deep/x.yaml"
    assert relative_to_root(r, "../keep.txt", cwd=repo / "deep") == "keep.txt"
    with pytest.raises(SopsError):
        relative_to_root(r, str(tmp_path / "elsewhere.txt"))
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    with pytest.raises(SopsError, match="not inside a git repository"):
        opener(outside)


# --- the git command-line listing updatekeys uses ---------------------------------------------


def test_tracked_listing_from_a_subdirectory(repo: Path) -> None:
    from sopsflow.git.repo import TrackedListing

    (repo / "deep").mkdir()
    os.symlink("keep.txt", repo / "link.txt")
    write(repo, "untracked.txt", "x\n")
    stage(repo, "link.txt")
    oid = git(repo, "rev-parse", "HEAD").stdout.decode().strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{oid},submodule")  # a gitlink
    listing = TrackedListing(repo / "deep")
    assert listing.root == repo
    assert sorted(listing.paths()) == ["gone.txt", "keep.txt", "mod.txt", "move/from.txt"]


def test_tracked_listing_lists_a_conflicted_path_once(repo: Path) -> None:
    from sopsflow.git.repo import TrackedListing

    blob = git(repo, "hash-object", "-w", "keep.txt").stdout.decode().strip()
    entries = "".join(f"100644 {blob} {stage}\tconflicted.txt\n" for stage in (1, 2, 3))
    git(repo, "update-index", "--index-info", input=entries.encode())
    assert TrackedListing(repo).paths().count("conflicted.txt") == 1


def test_tracked_listing_in_a_linked_worktree_and_with_git_dir(repo: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from sopsflow.git.repo import TrackedListing

    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked))
    assert (linked / ".git").is_file()
    listing = TrackedListing(linked)
    assert listing.root == linked and "keep.txt" in listing.paths()
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(repo))
    assert TrackedListing(tmp_path).root == repo  # git itself answers when GIT_DIR says where


def test_tracked_listing_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sopsflow.git.repo import TrackedListing

    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # whatever encloses the temp dir
    with pytest.raises(SopsError, match="not a git repository"):
        TrackedListing(outside)


def test_git_errors_are_told_in_one_line() -> None:
    from sopsflow.git.repo import _git_message

    dubious = (b"fatal: detected dubious ownership in repository at '/repo'\n"
               b"To add an exception for this directory, call:\n\n"
               b"\tgit config --global --add safe.directory /repo\n")
    assert _git_message(dubious) == "detected dubious ownership in repository at '/repo'"
    assert _git_message(b"warning: x\nerror: bad index file\n") == "bad index file"
    assert _git_message(b"") == "git failed"
