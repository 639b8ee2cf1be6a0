"""Read what git is about to commit (or has committed) with pygit2.

Git code knows nothing about SOPS: it hands out repo-relative paths, modes
and blob bytes; :mod:`sopsflow.gitops.check` decides what they mean.

Two details matter for a commit hook:

* ``git commit -a`` and ``git commit PATHS`` build a temporary index and tell
  hooks where it is through ``GIT_INDEX_FILE``; reading ``.git/index`` instead
  would judge the wrong content, so the variable is honoured.
* Before the first commit there is no HEAD: every index entry is staged.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import errors
from ..errors import SopsError

TYPE_CHECKING = False  # typing is not imported at run time (hook start-up)
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Iterator, Sequence
    from typing import IO, Any

    import pygit2

MODE_FILE = 0o100644
MODE_EXECUTABLE = 0o100755
MODE_SYMLINK = 0o120000
MODE_GITLINK = 0o160000  # a submodule commit: no blob to read


class GitFile:
    """One file as git sees it. ``data`` is read on first access."""

    __slots__ = ("path", "mode", "_loader", "_data")

    def __init__(self, path: str, mode: int, loader: Callable[[], bytes]) -> None:
        self.path = path  # repo-relative, "/" separators
        self.mode = mode
        self._loader = loader
        self._data: bytes | None = None

    @property
    def is_symlink(self) -> bool:
        return self.mode == MODE_SYMLINK

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self._loader()
        return self._data

    def __repr__(self) -> str:
        return f"GitFile({self.path!r}, mode={self.mode:o})"


def _blob_loader(repo: pygit2.Repository, oid: pygit2.Oid | str) -> Callable[[], bytes]:
    def load() -> bytes:
        # straight from the object database: no object lookup first
        return bytes(repo.odb.read(oid)[1])

    return load


def _disk_loader(path: Path, is_symlink: bool) -> Callable[[], bytes]:
    def load() -> bytes:
        if is_symlink:
            # git stores a link as a blob holding its target
            return os.fsencode(os.readlink(path))
        return path.read_bytes()

    return load


class Repo:
    """A repository with a work tree. Build it with :func:`open_repo`."""

    def __init__(self, repo: pygit2.Repository) -> None:
        if repo.is_bare or not repo.workdir:
            raise SopsError(errors.GENERIC, f"{repo.path}: a bare repository has no index to check")
        self._repo = repo
        self.root = Path(repo.workdir.rstrip("/") or "/")
        self._index: pygit2.Index | None = None
        #: set by staged_changes, which finds the deletions anyway
        self._deleted: list[str] | None = None

    @property
    def objects(self) -> pygit2.Repository:
        """The object database, for readers that walk commits themselves
        (which commits and refs hold a blob)."""
        return self._repo

    # -- index ------------------------------------------------------------------

    @property
    def index(self) -> pygit2.Index:
        """The index a commit would be made from (``GIT_INDEX_FILE`` wins)."""
        if self._index is None:
            override = os.environ.get("GIT_INDEX_FILE")
            if override:
                import pygit2

                index = pygit2.Index(os.path.join(os.getcwd(), override))
                index._repo = self._repo  # type: ignore[assignment]  # lets libgit2 diff it against trees
                self._index = index
            else:
                self._index = self._repo.index
        return self._index

    def staged_changes(self) -> list[GitFile]:
        """Entries whose index content differs from HEAD: added, modified, type
        changed, and renamed ones at their new path. Deletions are left out."""
        tree = self._head_tree()
        if tree is None:
            self._deleted = []
            return self.index_files()
        out = []
        deleted = []
        for delta in self.index.diff_to_tree(tree).deltas:
            new = delta.new_file
            if delta.status_char() == "D":
                deleted.append(delta.old_file.path)
                continue
            if new.mode in (0, MODE_GITLINK):
                continue
            out.append(GitFile(new.path, new.mode, _blob_loader(self._repo, new.id)))
        self._deleted = deleted
        return out

    def staged_deletions(self) -> list[str]:
        """Paths in HEAD that the index no longer has."""
        if self._deleted is None:
            self.staged_changes()
        assert self._deleted is not None
        return list(self._deleted)

    def index_file(self, rel: str) -> GitFile | None:
        """The staged entry at ``rel`` (None when not in the index)."""
        try:
            entry = self.index[rel]
        except (KeyError, ValueError):
            return None
        if entry.mode == MODE_GITLINK:
            return None
        return GitFile(str(entry.path), entry.mode, _blob_loader(self._repo, entry.id))

    def index_files(self) -> list[GitFile]:
        return [
            GitFile(e.path, e.mode, _blob_loader(self._repo, e.id))
            for e in self.index
            if e.mode != MODE_GITLINK
        ]

    def worktree_files(self) -> list[GitFile]:
        """Tracked paths with their content from disk (missing ones skipped)."""
        out = []
        for entry in self.index:
            if entry.mode == MODE_GITLINK:
                continue
            path = self.root / entry.path
            try:
                st = path.lstat()
            except OSError:
                continue
            import stat

            if stat.S_ISLNK(st.st_mode):
                mode = MODE_SYMLINK
            elif not stat.S_ISREG(st.st_mode):
                continue
            else:
                mode = MODE_EXECUTABLE if st.st_mode & 0o111 else MODE_FILE
            out.append(GitFile(entry.path, mode, _disk_loader(path, mode == MODE_SYMLINK)))
        return out

    # -- commits ----------------------------------------------------------------

    def _head_tree(self) -> pygit2.Tree | None:
        if self._repo.head_is_unborn:
            return None
        return self._tree(self._repo.head.target)

    def _tree(self, rev: str | pygit2.Oid) -> pygit2.Tree:
        import pygit2

        try:
            obj = self._repo.revparse_single(rev) if isinstance(rev, str) else self._repo[rev]
            return obj.peel(pygit2.Tree)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            raise SopsError(errors.GENERIC, f"unknown revision {rev}") from None

    def commit_id(self, rev: str) -> str | None:
        """The full id of the commit ``rev`` names (None when it names none)."""
        import pygit2

        try:
            return str(self._repo.revparse_single(rev).peel(pygit2.Commit).id)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            return None

    def tree(self, rev: str) -> pygit2.Tree:
        """The tree of ``rev``, resolved once for callers that read many paths of it."""
        return self._tree(rev)

    def files_at(self, rev: str | pygit2.Tree = "HEAD") -> list[GitFile]:
        """Every blob (and symlink) of a commit's tree."""
        return list(self._walk(self._tree(rev) if isinstance(rev, str) else rev, ""))

    def file_at(self, rev: str | pygit2.Tree, rel: str) -> GitFile | None:
        """The blob at ``rel`` in ``rev`` (None when the path is absent or a tree)."""
        tree = self._tree(rev) if isinstance(rev, str) else rev
        try:
            entry = tree[rel]
        except KeyError:
            return None
        if entry.type_str != "blob":
            return None
        return GitFile(rel, entry.filemode, _blob_loader(self._repo, entry.id))

    def _walk(self, tree: pygit2.Tree, prefix: str) -> Iterator[GitFile]:
        for entry in tree:
            path = prefix + (entry.name or "")
            kind = entry.type_str
            if kind == "tree":
                yield from self._walk(self._repo[entry.id], path + "/")  # type: ignore[arg-type]
            elif kind == "blob":
                yield GitFile(path, entry.filemode, _blob_loader(self._repo, entry.id))

    def changed_since(self, rev: str) -> set[str]:
        """Paths added, modified, renamed (both names) or deleted between ``rev`` and HEAD."""
        old = self._tree(rev)
        head = self._head_tree()
        if head is None:
            raise SopsError(errors.GENERIC, "the repository has no commits yet")
        paths: set[str] = set()
        for delta in old.diff_to_tree(head).deltas:
            paths.add(delta.old_file.path)
            paths.add(delta.new_file.path)
        return paths

    def deleted_between(self, old_rev: str, new_rev: str) -> list[str]:
        """Paths of ``old_rev``'s tree that ``new_rev``'s does not have."""
        new = self._tree(new_rev)
        return [d.old_file.path for d in self._tree(old_rev).diff_to_tree(new).deltas if d.status_char() == "D"]

    def changed_between(self, old_rev: str, new_rev: str) -> list[GitFile]:
        """Files added or modified from ``old_rev`` to ``new_rev``, at ``new_rev``
        (what a push of ``new_rev`` adds to a remote that has ``old_rev``)."""
        new = self._tree(new_rev)
        out = []
        for delta in self._tree(old_rev).diff_to_tree(new).deltas:
            f = delta.new_file
            if delta.status_char() == "D" or f.mode in (0, MODE_GITLINK):
                continue
            out.append(GitFile(f.path, f.mode, _blob_loader(self._repo, f.id)))
        return out


def open_repo(path: str | Path = ".") -> Repo:
    """The repository containing ``path`` (``GIT_DIR`` honoured, as git does for hooks)."""
    import pygit2

    git_dir = os.environ.get("GIT_DIR")
    try:
        if git_dir:
            repo = pygit2.Repository(os.path.abspath(git_dir))
            work_tree = os.environ.get("GIT_WORK_TREE")
            if work_tree:
                repo.workdir = os.path.abspath(work_tree)
            elif repo.is_bare or not repo.workdir:
                # git runs hooks from the top of the work tree with GIT_DIR set
                repo.workdir = os.path.abspath(path)
        else:
            found = pygit2.discover_repository(os.fspath(path))
            if found is None:
                raise SopsError(errors.GENERIC, f"{path}: not inside a git repository")
            repo = pygit2.Repository(found)
    except pygit2.GitError as exc:
        raise SopsError(errors.GENERIC, f"{path}: cannot open the git repository: {exc}") from None
    return Repo(repo)


class IndexRepo:
    """The index side of :class:`Repo` through the git command line: what a
    commit hook reads (staged changes, index entries and their blobs) costs
    three short git processes instead of importing pygit2 (~50 ms of CPU, more
    than the whole hook otherwise takes). Revisions and the work tree are
    read through a :class:`Repo`, opened when first asked for."""

    def __init__(self, start: str | Path = ".") -> None:
        self._start = start
        try:
            self.root = _work_tree_root(Path(start))
        except SopsError as exc:
            if "not a git repository" in exc.message:
                raise SopsError(errors.GENERIC, f"{start}: not inside a git repository") from None
            if "must be run in a work tree" in exc.message:
                raise SopsError(errors.GENERIC, f"{start}: a bare repository has no index to check") from None
            raise
        self._env: dict[str, str] | None = None
        self._entries: dict[str, tuple[int, str]] | None = None
        self._batch: Any = None
        self._full: Repo | None = None

    def _git_env(self) -> dict[str, str]:
        if self._env is None:
            env = dict(os.environ)
            override = env.get("GIT_INDEX_FILE")
            if override:  # as Repo.index: relative to where we were started
                env["GIT_INDEX_FILE"] = os.path.join(os.getcwd(), override)
            self._env = env
        return self._env

    def _git(self, *args: str) -> tuple[int, bytes, bytes]:
        done = run_git(args, self.root, env=self._git_env())
        return done.returncode, done.stdout, done.stderr

    def _index(self) -> dict[str, tuple[int, str]]:
        """Path -> (mode, blob id) of the index's merged (stage 0) entries."""
        if self._entries is None:
            code, out, err = self._git("ls-files", "-z", "--stage")
            if code != 0:
                raise SopsError(errors.GENERIC, f"{self._start}: {_git_message(err)}")
            entries: dict[str, tuple[int, str]] = {}
            # "<mode> <oid> <stage>\t<path>\0"; -z keeps unusual names unquoted.
            for record in out.split(b"\0"):
                info, _, name = record.partition(b"\t")
                if not name:
                    continue
                mode, oid, stage = info.split(b" ")
                if stage == b"0":
                    entries[os.fsdecode(name)] = (int(mode, 8), oid.decode("ascii"))
            self._entries = entries
        return self._entries

    def _loader(self, oid: str) -> Callable[[], bytes]:
        def load() -> bytes:
            return self._read_blob(oid)

        return load

    def _read_blob(self, oid: str) -> bytes:
        """One blob from a ``git cat-file --batch`` process kept for the run."""
        if self._batch is None:
            import subprocess

            self._batch = stream_git(["cat-file", "--batch"], self.root, subprocess.PIPE, env=self._git_env())
        proc = self._batch
        proc.stdin.write(oid.encode("ascii") + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise SopsError(errors.GENERIC, f"{self.root}: git cannot read blob {oid}")
        size = int(header[2])
        data = proc.stdout.read(size + 1)  # the content and git's newline after it
        if len(data) != size + 1:
            raise SopsError(errors.GENERIC, f"{self.root}: git cannot read blob {oid}")
        return bytes(data[:size])

    def close(self) -> None:
        if self._batch is not None:
            self._batch.stdin.close()
            self._batch.wait()
            self._batch.stdout.close()
            self._batch = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the process ends with us anyway
            pass

    # -- the index, as Repo reads it -----------------------------------------------------

    def index_file(self, rel: str) -> GitFile | None:
        entry = self._index().get(rel)
        if entry is None or entry[0] == MODE_GITLINK:
            return None
        return GitFile(rel, entry[0], self._loader(entry[1]))

    def index_files(self) -> list[GitFile]:
        return [GitFile(path, mode, self._loader(oid)) for path, (mode, oid) in self._index().items()
                if mode != MODE_GITLINK]

    def staged_changes(self) -> list[GitFile]:
        """As :meth:`Repo.staged_changes`: index against HEAD, no rename
        detection (a moved file is new at its new path), deletions left out."""
        code, out, err = self._git("diff-index", "--cached", "-z", "--raw", "--no-renames", "--no-abbrev", "HEAD")
        if code != 0:
            unborn, _, _ = self._git("rev-parse", "--verify", "-q", "HEAD")
            if unborn != 0:
                return self.index_files()  # before the first commit everything staged is new
            raise SopsError(errors.GENERIC, f"{self._start}: {_git_message(err)}")
        files: list[GitFile] = []
        fields = out.split(b"\0")
        # ":<old mode> <new mode> <old oid> <new oid> <status>\0<path>\0"
        for i in range(0, len(fields) - 1, 2):
            _old_mode, new_mode, _old_oid, new_oid, status = fields[i][1:].split(b" ")
            mode = int(new_mode, 8)
            if status == b"D" or mode in (0, MODE_GITLINK):
                continue
            files.append(GitFile(os.fsdecode(fields[i + 1]), mode, self._loader(new_oid.decode("ascii"))))
        return files

    def staged_deletions(self) -> list[str]:
        """Paths the index deletes against HEAD (none before the first commit)."""
        code, out, _err = self._git("diff-index", "--cached", "-z", "--name-only", "--diff-filter=D",
                                    "--no-renames", "HEAD")
        if code != 0:
            return []
        return [os.fsdecode(name) for name in out.split(b"\0") if name]

    def commit_id(self, rev: str) -> str | None:
        code, out, _err = self._git("rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
        return out.decode("ascii").strip() if code == 0 else None

    # -- the rest through pygit2 ------------------------------------------------------------

    @property
    def objects(self) -> pygit2.Repository:
        return self.full().objects

    def tree(self, rev: str) -> pygit2.Tree:
        return self.full().tree(rev)

    def deleted_between(self, old_rev: str, new_rev: str) -> list[str]:
        return self.full().deleted_between(old_rev, new_rev)

    def full(self) -> Repo:
        if self._full is None:
            self._full = open_repo(self.root)
        return self._full

    def worktree_files(self) -> list[GitFile]:
        return self.full().worktree_files()

    def files_at(self, rev: str | pygit2.Tree = "HEAD") -> list[GitFile]:
        return self.full().files_at(rev)

    def file_at(self, rev: str | pygit2.Tree, rel: str) -> GitFile | None:
        return self.full().file_at(rev, rel)

    def changed_since(self, rev: str) -> set[str]:
        return self.full().changed_since(rev)

    def changed_between(self, old_rev: str, new_rev: str) -> list[GitFile]:
        return self.full().changed_between(old_rev, new_rev)


def relative_to_root(repo: Repo | IndexRepo, name: str, cwd: str | Path | None = None) -> str:
    """A command-line path as a repo-relative path with "/" separators ("" for
    the root). The last component is kept as given (it may be a symlink)."""
    full = os.path.normpath(os.path.join(os.fspath(cwd) if cwd is not None else os.getcwd(), name))
    # the parent directories may be spelled through symlinks (/tmp vs /private/tmp)
    resolved = os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
    for root in (os.fspath(repo.root), os.path.realpath(repo.root)):
        for candidate in (full, resolved):
            rel = os.path.relpath(candidate, root)
            if rel != ".." and not rel.startswith("../"):
                return "" if rel == "." else Path(rel).as_posix()
    raise SopsError(errors.GENERIC, f"{name}: outside the repository {repo.root}")


def run_git(args: Sequence[str], cwd: str | Path | None = None, *, input: bytes | None = None,
            timeout: float | None = None, capture: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``cwd``: the one place the library starts git (the
    rest reads the object database through pygit2). Its exit status is the
    caller's to judge; a git that cannot be started is a SopsError."""
    import subprocess

    try:
        return subprocess.run(["git", *args], cwd=cwd, input=input, timeout=timeout, check=False, env=env,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None)
    except OSError as exc:
        raise SopsError(errors.GENERIC, f"cannot run git: {exc.strerror or exc}") from None


def stream_git(args: Sequence[str], cwd: str | Path, stdin: IO[bytes] | int,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A ``git ARGS`` process whose standard output the caller reads as it
    comes. ``stdin`` is a file (nothing can deadlock) or ``subprocess.PIPE``
    for a request/answer protocol such as ``cat-file --batch``."""
    import subprocess

    try:
        return subprocess.Popen(["git", *args], cwd=cwd, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env)
    except OSError as exc:
        raise SopsError(errors.GENERIC, f"cannot run git: {exc.strerror or exc}") from None


def git_blob(cwd: str | Path, rev: str, rel: str) -> bytes | None:
    """The blob at ``rel`` in ``rev`` (None when absent) without opening the
    repository with pygit2: cheaper for a process that reads one or two files
    (a merge driver)."""
    done = run_git(["cat-file", "blob", f"{rev}:{rel}"], cwd)
    return done.stdout if done.returncode == 0 else None


class TrackedListing:
    """``git ls-files`` of a work tree, started at once and read when needed, so
    that git runs while the caller does other work (updatekeys loads its
    configuration meanwhile). Two short git processes at most cost a fraction
    of importing pygit2, and the list is all updatekeys needs."""

    def __init__(self, start: str | Path = ".") -> None:
        import subprocess

        self._start = start
        self.root = _work_tree_root(Path(start))
        try:
            self._proc: Any = subprocess.Popen(["git", "ls-files", "-z", "--stage"], cwd=self.root,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise SopsError(errors.GENERIC, f"cannot run git: {exc.strerror}") from None

    def paths(self) -> list[str]:
        """Repo-relative paths of the tracked regular files (symlinks and
        submodules left out; a conflicted path listed once)."""
        stdout, stderr = self._proc.communicate()
        if self._proc.returncode != 0:
            raise SopsError(errors.GENERIC, f"{self._start}: {_git_message(stderr)}")
        out: list[str] = []
        seen: set[str] = set()
        # "<mode> <oid> <stage>\t<path>\0"; -z keeps unusual names unquoted.
        for record in stdout.split(b"\0"):
            info, _, name = record.partition(b"\t")
            if not name or info[:6] in (b"120000", b"160000"):
                continue
            path = os.fsdecode(name)
            if path not in seen:
                seen.add(path)
                out.append(path)
        return out


def _work_tree_root(start: Path) -> Path:
    """The top of the work tree containing ``start``. The usual layout (a
    ``.git`` directory or file above) is found without running git; git itself
    answers when its environment says otherwise or nothing is found."""
    if not any(name in os.environ for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_CEILING_DIRECTORIES")):
        here = Path(os.path.abspath(start))
        for candidate in (here, *here.parents):
            if candidate.name == ".git":
                break  # inside the git directory itself: let git say what it thinks
            if os.path.lexists(candidate / ".git"):
                return candidate
    done = run_git(["rev-parse", "--show-toplevel"], start)
    if done.returncode != 0:
        raise SopsError(errors.GENERIC, f"{start}: {_git_message(done.stderr)}")
    return Path(os.fsdecode(done.stdout.rstrip(b"\n")))


def _git_message(stderr: bytes) -> str:
    """git's reason in one line: its first ``fatal:``/``error:`` line (advice
    such as the safe.directory command follows on later lines)."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line[len(prefix):]
    return lines[0] if lines else "git failed"
