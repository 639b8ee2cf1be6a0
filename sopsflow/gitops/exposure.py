"""Where an exposed secret already is: only in the file being judged, in a
local commit, or in a commit others have (pushed).

The fix for a plaintext secret depends on it. Staged only: encrypt the file.
In commits that never left this clone: rewrite them before pushing. In a
pushed commit: the secret must be rotated at its source, because fixing the
file (or rewriting history) does not take back what others fetched.

"Pushed" means: reachable from a remote-tracking ref (``refs/remotes/...``),
or the run is a CI job (``CI`` set: CI builds what was pushed, often on a
detached checkout without remote-tracking refs). A finding counts as in a
commit when the file at that commit produces a finding with the same
fingerprint (the fingerprint ignores line numbers and values), so an edit
elsewhere in the file does not hide an exposure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    import pygit2

    from ..git.repo import IndexRepo, Repo
    from .check import Finding

#: Kinds that mean a secret value sits in plaintext in what was judged.
EXPOSURE_KINDS = frozenset({"plaintext-secret", "partly-plaintext", "leaked-secret", "secret-generator-plaintext"})

PUSHED = "pushed"
LOCAL = "local"

#: ``judge(path, data)``: the fingerprints of the exposure findings of ``data`` at ``path``.
Judge = Callable[[str, bytes], set[str]]


def _pygit2_repo(repo: Repo | IndexRepo) -> pygit2.Repository:
    return repo.objects


def _commit(git: pygit2.Repository, rev: str) -> pygit2.Commit | None:
    import pygit2

    try:
        return git.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return None


def _remote_tips(git: pygit2.Repository) -> list[pygit2.Oid]:
    """Commit ids of the remote-tracking refs (duplicates and non-commits left out)."""
    import pygit2

    tips: dict[str, pygit2.Oid] = {}
    for name in git.references:
        if not name.startswith("refs/remotes/") or name.endswith("/HEAD"):
            continue
        try:
            commit = git.references[name].peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            continue
        tips[str(commit.id)] = commit.id
    return list(tips.values())


def _in_tree(git: pygit2.Repository, commit: pygit2.Commit, finding: Finding, judge: Judge, cache: dict[tuple[str, str], set[str]],
             same_as: pygit2.Oid | None = None) -> bool:
    """Whether the file at ``finding.path`` in ``commit`` exposes the same
    finding: it is the very blob ``same_as``, or judging it finds it."""
    try:
        entry = commit.tree[finding.path]
    except KeyError:
        return False
    if entry.type_str != "blob":
        return False
    if same_as is not None and entry.id == same_as:
        return True
    key = (str(entry.id), finding.path)
    found = cache.get(key)
    if found is None:
        found = cache[key] = judge(finding.path, git[entry.id].read_raw())
    return finding.fingerprint in found


def classify(repo: Repo | IndexRepo, rev: str, findings: Iterable[Finding], judge: Judge) -> dict[str, str]:
    """For the exposure findings of the tree at ``rev`` (each is there by
    construction): fingerprint -> ``PUSHED`` or ``LOCAL``."""
    exposed = [f for f in findings if f.kind in EXPOSURE_KINDS and f.fingerprint]
    if not exposed:
        return {}
    if os.environ.get("CI"):
        return {f.fingerprint: PUSHED for f in exposed}
    import pygit2

    try:
        return _classify(_pygit2_repo(repo), rev, exposed, judge)
    except (KeyError, ValueError, pygit2.GitError):
        # a shallow or damaged history: cannot tell, so the safe hint
        return {f.fingerprint: PUSHED for f in exposed}


def _classify(git: pygit2.Repository, rev: str, exposed: list[Finding], judge: Judge) -> dict[str, str]:
    commit = _commit(git, rev)
    if commit is None:
        return {f.fingerprint: PUSHED for f in exposed}  # cannot tell: the safe hint
    tips = _remote_tips(git)
    if any(tip == commit.id or git.descendant_of(tip, commit.id) for tip in tips):
        return {f.fingerprint: PUSHED for f in exposed}
    # The part of this commit's history that was pushed ends at its merge
    # bases with the remote-tracking refs: a finding their trees have is
    # pushed, and so is one a remote-tracking ref's own tree has (the same
    # change pushed on another branch).
    bases = list(tips)
    for tip in tips:
        base = git.merge_base(commit.id, tip)
        if base is not None and base not in bases:
            bases.append(base)
    cache: dict[tuple[str, str], set[str]] = {}
    out = {}
    for f in exposed:
        try:
            current = commit.tree[f.path].id
        except KeyError:
            current = None
        pushed = any(_in_tree(git, git[base].peel(_commit_type()), f, judge, cache, current) for base in bases)
        out[f.fingerprint] = PUSHED if pushed else LOCAL
    return out


def classify_staged(repo: Repo | IndexRepo, findings: Iterable[Finding], judge: Judge) -> dict[str, str]:
    """For exposure findings of staged files: those HEAD already holds, as
    :func:`classify` says; the others are in no commit (left out)."""
    exposed = [f for f in findings if f.kind in EXPOSURE_KINDS and f.fingerprint]
    if not exposed:
        return {}
    git = _pygit2_repo(repo)
    if git.head_is_unborn:
        return {}
    head = git.head.peel(_commit_type())
    cache: dict[tuple[str, str], set[str]] = {}
    committed = [f for f in exposed if _in_tree(git, head, f, judge, cache)]
    return classify(repo, str(head.id), committed, judge) if committed else {}


def _commit_type() -> type[pygit2.Commit]:
    import pygit2

    return pygit2.Commit


ROTATE_HINT = "rotate it at its source; history keeps it"
HISTORY_HINT = "`sopsflow history` lists every commit and ref that holds it"
LOCAL_HINT = ("it is only in local commits, not pushed: rewrite them (git commit --amend, git rebase -i) "
              "before you push")


def fix_for(fix: str | None, state: str | None) -> str | None:
    """The fix as shown for a finding whose secret is ``state`` (None: staged only)."""
    if state is None:
        return fix
    tail = f"{ROTATE_HINT} ({HISTORY_HINT})" if state == PUSHED else LOCAL_HINT
    return f"{fix}; {tail}" if fix else tail
