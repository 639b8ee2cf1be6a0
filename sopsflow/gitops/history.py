"""`sopsflow history`: every secret that ever reached a commit in plaintext.

The hook and ``verify`` judge one revision; this judges every revision
reachable from the given refs (default: every branch, remote-tracking branch
and tag, and HEAD), or only the commits not reachable from ``since``, with
the same judgement (:func:`sopsflow.gitops.check.audit_file`) and each commit's own
``.sops.yaml`` and ``.sopsflow.yaml``.

How, without checking anything out:

1. ``git rev-list --parents`` lists the commits, parents first;
2. one ``git diff-tree --stdin`` pass diffs each commit against each parent
   (a root against the empty tree): the new side of every change is a
   (path, blob) pair some commit holds, the old side one it dropped. A commit
   *introduces* a pair when its diff against every parent shows it (no
   parent has that blob at that path) and *removes* one when a parent had it
   and it does not. Only the few config files are followed commit by commit;
   a commit that changes one is listed with ``git ls-tree -r`` so that the
   files its rules now govern are judged again under them;
3. each distinct (path, blob, config, settings) is judged once, as the walk
   finds it: the walk feeds forked workers (one per CPU, where
   :func:`sopsflow.forkpool.usable` allows; this process otherwise), each
   with its own ``git cat-file --batch`` asked for a batch of blobs at a
   time, so the walk, the blob reads and the judging overlap. New (path,
   blob) pairs go to one worker a batch at a time, in the order the walk
   finds them, and every later job of a pair to the same worker: blobs found
   one after another often share chains of deltas in the pack, which one
   ``cat-file`` resolves once (split blob by blob, each worker would resolve
   nearly every chain). A worker keeps only
   the exposures it finds and the pipe to it is bounded, so memory stays
   flat however long the history is.

An *exposure* is one (path, blob) that some judgement found holding a
secret in plaintext (``plaintext-secret``, ``partly-plaintext``,
``leaked-secret``). It is reported once, with the commits that introduced
and removed it, the refs whose history still holds an introducing commit,
whether HEAD still has it, and where in the file (key paths or lines, never
values). Removing it does not take it back: every exposure must be rotated
at its source.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .. import errors
from ..errors import SopsError
from .policy import USAGE_ERROR

if TYPE_CHECKING:
    from ..config.rules import Config, CreationRule
    from .check import Finding
    from .settings import AuditSettings
    from .verify import VerifyResult

CONFIG_NAME = ".sops.yaml"
SETTINGS_NAME = ".sopsflow.yaml"
#: Finding kinds that mean a value sat in plaintext in a commit.
EXPOSURE_KINDS = ("plaintext-secret", "partly-plaintext", "leaked-secret")
ROTATE_LINE = "rotate these at their source: history keeps every value listed, even after removal"
#: Commits one ``git diff-tree`` process diffs (its memory grows with them).
DIFF_COMMITS = 1000
#: Rows of the text report; the rest go to ``--report``.
TEXT_ROWS = 25
TEXT_WIDTH = 100
_GITLINK = b"160000"
_SYMLINK = b"120000"
_ZERO = re.compile(rb"^0+$")
_UNKNOWN = object()
#: Resolved rules a judge keeps (one per config version and path).
_RULES_KEPT = 20_000


@dataclass
class HistoryOptions:
    #: refs to walk (None: branches, remote-tracking branches, tags and HEAD)
    refs: list[str] | None = None
    #: walk only commits not reachable from this revision
    since: str | None = None
    #: worker processes (None: automatic, see forkpool.job_count)
    jobs: int | None = None
    #: progress(done, total) while judging blobs
    progress: Callable[[str, int, int], None] | None = None


@dataclass
class Where:
    """Where in the file a finding is: a key path or a line, never a value."""

    kind: str
    severity: str
    message: str
    line: int | None


@dataclass
class Exposure:
    path: str
    blob: str
    findings: list[Where] = field(default_factory=list)
    introduced_in: list[str] = field(default_factory=list)
    removed_in: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    in_head: bool = False

    @property
    def severity(self) -> str:
        return "error" if any(w.severity == "error" for w in self.findings) else "warning"

    @property
    def kinds(self) -> list[str]:
        return sorted({w.kind for w in self.findings})

    @property
    def key_paths(self) -> list[str]:
        out: list[str] = []
        for w in self.findings:
            for text in _key_paths(w.message):
                if text not in out:
                    out.append(text)
            if w.line is not None and not _key_paths(w.message) and f"line {w.line}" not in out:
                out.append(f"line {w.line}")
        return out


@dataclass
class HistoryResult:
    root: Path
    refs: list[str]
    since: str | None
    commits: int = 0
    blobs: int = 0
    #: judgements made: one per distinct (path, blob, config, settings)
    judged: int = 0
    exposures: list[Exposure] = field(default_factory=list)
    started: str = ""
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if any(e.severity == "error" for e in self.exposures) else 0


_QUOTED = re.compile(r"""at ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|selects: ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def _key_paths(message: str) -> list[str]:
    """The key paths audit names in a finding message (as ``repr`` strings)."""
    import ast

    out = []
    for m in _QUOTED.finditer(message):
        try:
            out.append(str(ast.literal_eval(m.group(1) or m.group(2))))
        except (ValueError, SyntaxError):
            continue
    return out


# --- git plumbing ---------------------------------------------------------------------


class _Git:
    def __init__(self, root: Path) -> None:
        self.root = root

    def run(self, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
        from ..git.repo import run_git

        done = run_git(args, self.root, input=stdin)
        if check and done.returncode != 0:
            lines = [line.strip() for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
            reason = lines[0].removeprefix("fatal: ").removeprefix("error: ") if lines else "failed"
            raise SopsError(USAGE_ERROR, f"git {args[0]}: {reason}")
        return done.stdout

    def stream(self, *args: str, stdin: IO[bytes]) -> subprocess.Popen[bytes]:
        """A git process reading ``stdin`` (a file: no deadlock) whose output
        the caller reads as it comes."""
        from ..git.repo import stream_git

        return stream_git(args, self.root, stdin)


def _spool(data: bytes) -> IO[bytes]:
    handle = tempfile.TemporaryFile()
    handle.write(data)
    handle.seek(0)
    return handle


def _ref_tips(git: _Git, refs: list[str] | None) -> list[tuple[str, str]]:
    """(name, commit) of every ref walked; annotated tags peeled, refs to
    trees or blobs skipped."""
    if refs is None:
        out = git.run("for-each-ref", "--format=%(objecttype) %(objectname) %(*objecttype) %(*objectname) %(refname)",
                      "refs/heads", "refs/remotes", "refs/tags")
        tips = []
        for line in out.decode("utf-8", "surrogateescape").splitlines():
            kind, oid, peeled_kind, peeled, name = _split_ref_line(line)
            if kind == "commit":
                tips.append((_short_ref(name), oid))
            elif peeled_kind == "commit":
                tips.append((_short_ref(name), peeled))
        head = git.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False).strip()
        if head:
            tips.append(("HEAD", head.decode()))
        return tips
    named = []
    for ref in refs:
        found = git.run("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False).strip()
        if not found:
            raise SopsError(USAGE_ERROR, f"unknown revision {ref!r}")
        named.append((ref, found.decode()))
    return named


def _split_ref_line(line: str) -> tuple[str, str, str, str, str]:
    kind, oid, rest = line.split(" ", 2)
    if rest.startswith(" "):  # not an annotated tag: the peeled fields are empty
        return kind, oid, "", "", rest.lstrip(" ")
    peeled_kind, peeled, name = rest.split(" ", 2)
    return kind, oid, peeled_kind, peeled, name


def _short_ref(name: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/", "refs/remotes/", "refs/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _config_dir(path: str) -> str | None:
    """The directory a config file configures ('' for the root), or None."""
    name = posixpath.basename(path)
    if name == CONFIG_NAME or (name == SETTINGS_NAME and "/" not in path):
        return posixpath.dirname(path)
    return None


# --- the walk ---------------------------------------------------------------------------


class _Pair:
    """One (path, blob) some commit holds (one per blob version: kept small)."""

    __slots__ = ("how", "introduced", "removed", "contexts")

    def __init__(self, mode: bytes, removed: tuple[int, ...] = ()) -> None:
        #: (mode, the worker that judges it under every context or -1), a
        #: tuple shared by every pair with the same two: one slot for both
        self.how = _how(mode, -1)
        # tuples: the empty one is shared, and most pairs have one commit in each
        self.introduced: tuple[int, ...] = ()
        self.removed = removed
        #: the (config, settings) keys it is judged under, each once
        self.contexts: tuple[tuple[str, str], ...] = ()

    @property
    def mode(self) -> bytes:
        return self.how[0]

    @property
    def worker(self) -> int:
        return self.how[1]

    @worker.setter
    def worker(self, n: int) -> None:
        self.how = _how(self.how[0], n)


_HOWS: dict[tuple[bytes, int], tuple[bytes, int]] = {}


def _how(mode: bytes, worker: int) -> tuple[bytes, int]:
    return _HOWS.setdefault((mode, worker), (mode, worker))


#: One change of a diff: (new mode, path, old blob or b"", new blob or b""), blob ids as 20 bytes.
_Entry = tuple[bytes, str, bytes, bytes]
#: config file path -> blob, as of one commit (shared between commits until it changes)
_ConfigState = dict[str, str]


class _Walk:
    def __init__(self, git: _Git, options: HistoryOptions, emit: Callable[[_Job, _Pair], None]) -> None:
        self.git = git
        self.options = options
        #: receives each (path, blob, context) to judge, once, as the walk finds it
        self.emit = emit
        #: commit ids as 20 bytes (half the memory of their hex)
        self.commits: list[bytes] = []
        self.index: dict[bytes, int] = {}
        #: per commit, its parent's index or a tuple of them (-1: outside the walk)
        self.parents: list[int | tuple[int, ...]] = []
        #: blob ids as 20 bytes, not 40 characters: most of the walk's memory is these keys
        self.pairs: dict[tuple[str, bytes], _Pair] = {}
        #: every distinct (config key, settings blob) -> a shared 1-tuple of it
        self.contexts: dict[tuple[str, str], tuple[tuple[str, str]]] = {}
        self.states: list[_ConfigState] = []
        #: one str per distinct path, shared by every version of the file
        self.paths: dict[bytes, str] = {}
        #: config states of the parents outside the walk, each listed once
        self.outside: dict[str, _ConfigState] = {}

    def run(self, tips: list[tuple[str, str]]) -> None:
        """Every commit from rev-list (parents first), diffed as it comes,
        ``DIFF_COMMITS`` at a time: neither the commit list nor git's memory
        (diff-tree keeps every tree it parsed until it exits) grows with the
        history beyond what the walk keeps."""
        lines = [oid for _, oid in tips]
        if self.options.since is not None:
            since = self.git.run("rev-parse", "--verify", "-q", f"{self.options.since}^{{commit}}", check=False).strip()
            if not since:
                raise SopsError(USAGE_ERROR, f"unknown revision {self.options.since!r}")
            lines.append("^" + since.decode())
        if not tips:
            return
        with _spool(("\n".join(lines) + "\n").encode()) as stdin:
            proc = self.git.stream("rev-list", "--stdin", "--topo-order", "--reverse", "--parents", stdin=stdin)
            assert proc.stdout is not None
            rows: list[list[str]] = []
            for line in proc.stdout:
                row = line.decode().split()
                if not row:
                    continue
                oid = bytes.fromhex(row[0])
                self.index[oid] = len(self.commits)
                self.commits.append(oid)
                rows.append(row)
                if len(rows) == DIFF_COMMITS:
                    self._diff_some(rows)
                    rows = []
            if rows:
                self._diff_some(rows)
            if proc.wait() != 0:
                raise SopsError(errors.GENERIC, "git rev-list failed")

    def _diff_some(self, rows: list[list[str]]) -> None:
        feed = []
        for row in rows:
            feed.extend([row[0]] if len(row) == 1 else [f"{row[0]} {p}" for p in row[1:]])
        with _spool(("\n".join(feed) + "\n").encode()) as stdin:
            proc = self.git.stream("diff-tree", "--stdin", "-r", "--root", "--always", "--no-renames", "-z",
                                   stdin=stdin)
            assert proc.stdout is not None
            per_commit: list[list[_Entry]] = []
            row_at = 0
            for header, entries in _diff_records(proc.stdout, self.paths):
                row = rows[row_at]
                if header != row[0]:
                    proc.kill()
                    raise SopsError(errors.GENERIC, "git diff-tree answered out of order")
                per_commit.append(entries)
                if len(per_commit) == max(1, len(row) - 1):
                    self._commit(row, per_commit)
                    per_commit = []
                    row_at += 1
            proc.wait()
        if row_at != len(rows):
            raise SopsError(errors.GENERIC, "git diff-tree stopped early")
        if self.options.progress:
            self.options.progress("walking", len(self.commits), 0)

    def _commit(self, row: list[str], diffs: list[list[_Entry]]) -> None:
        me = self.index[bytes.fromhex(row[0])]
        parents = tuple(self.index.get(bytes.fromhex(p), -1) for p in row[1:])
        self.parents.append(parents[0] if len(parents) == 1 else parents)  # an int is smaller
        first = diffs[0]
        # introduced: the new side of a change against every parent
        counts: dict[tuple[str, bytes], int] = {}
        for entries in diffs:
            for mode, path, old, new in entries:
                if new:
                    key = (path, new)
                    counts[key] = counts.get(key, 0) + 1
                    if key not in self.pairs:
                        self.pairs[key] = _Pair(mode)
                if old and (path, old) in self.pairs:
                    pair = self.pairs[(path, old)]
                    if not pair.removed or pair.removed[-1] != me:
                        pair.removed += (me,)
                elif old:
                    # held before the walked range: known only by its removal
                    self.pairs[(path, old)] = _Pair(mode, removed=(me,))
        for key, n in counts.items():
            if n == len(diffs):
                self.pairs[key].introduced += (me,)
        state = self._state(row, first)
        self.states.append(state)
        changed_configs = {p for _, p, _, _ in (e for d in diffs for e in d) if _config_dir(p) is not None}
        for entries in diffs:
            for mode, path, _, new in entries:
                if new and mode != _GITLINK:
                    self._add_job(path, new, state)
        if changed_configs and len(row) > 1:  # a root commit's files are all in its diff
            self._rejudge(row[0], state, changed_configs)

    def _state(self, row: list[str], first: list[_Entry]) -> _ConfigState:
        if len(row) == 1:
            base: _ConfigState = {}
        else:
            parent = self.index.get(bytes.fromhex(row[1]))
            base = self.states[parent] if parent is not None else self._state_of(row[1])
        updates = [(path, new) for _, path, _, new in first if _config_dir(path) is not None]
        if not updates:
            return base
        state = dict(base)
        for path, new in updates:
            if new:
                state[path] = new.hex()
            else:
                state.pop(path, None)
        return state

    def _state_of(self, commit: str) -> _ConfigState:
        """The config files of a commit outside the walk (a --since boundary)."""
        state = self.outside.get(commit)
        if state is None:
            state = self.outside[commit] = {path: blob for mode, path, blob in _ls_tree(self.git, commit)
                                            if _config_dir(path) is not None and mode != _GITLINK}
        return state

    def _add_job(self, path: str, blob: bytes, state: _ConfigState) -> None:
        context = (_nearest(state, path), state.get(SETTINGS_NAME, ""))
        # One tuple per distinct context, and one 1-tuple of it shared by
        # every pair judged only under it (nearly all of them).
        single = self.contexts.get(context)
        if single is None:
            single = self.contexts[context] = (context,)
        pair = self.pairs[(path, blob)]
        if not pair.contexts:
            pair.contexts = single
        elif single[0] not in pair.contexts:
            pair.contexts += single
        else:
            return
        self.emit((path, blob.hex(), pair.mode, context[0], context[1]), pair)

    def _rejudge(self, commit: str, state: _ConfigState, changed: set[str]) -> None:
        """A config changed: the files it governs are judged under it again."""
        dirs = {posixpath.dirname(p) for p in changed}
        everything = SETTINGS_NAME in changed
        for mode, path, oid in _ls_tree(self.git, commit):
            if mode == _GITLINK:
                continue
            if everything or any(d == "" or path.startswith(d + "/") for d in dirs):
                blob = bytes.fromhex(oid)
                if (path, blob) not in self.pairs:
                    self.pairs[(path, blob)] = _Pair(mode)
                self._add_job(path, blob, state)


def _nearest(state: _ConfigState, path: str) -> str:
    directory = posixpath.dirname(path)
    while True:
        blob = state.get(f"{directory}/{CONFIG_NAME}" if directory else CONFIG_NAME)
        if blob is not None:
            return f"{directory}\0{blob}"
        if not directory:
            return ""
        directory = posixpath.dirname(directory)


def _ls_tree(git: _Git, commit: str) -> Iterator[tuple[bytes, str, str]]:
    out = git.run("ls-tree", "-r", "-z", "--full-tree", commit)
    for item in out.split(b"\0"):
        if not item:
            continue
        meta, _, path = item.partition(b"\t")
        mode, _, rest = meta.partition(b" ")
        _, _, blob = rest.partition(b" ")
        yield mode, os.fsdecode(path), blob.decode()


def _diff_records(stream: IO[bytes], paths: dict[bytes, str]) -> Iterator[tuple[str, list[_Entry]]]:
    """(commit, [(new mode, path, old blob or b'', new blob or b'')]) per
    diff-tree header, from ``-z`` raw output; blob ids as 20 bytes."""
    from binascii import unhexlify

    modes: dict[bytes, bytes] = {}  # one object per mode, not one per entry
    header: str | None = None
    entries: list[_Entry] = []
    tokens = _tokens(stream)
    for token in tokens:
        if token.startswith(b":"):
            raw = next(tokens)
            path = paths.get(raw)
            if path is None:
                path = paths[raw] = os.fsdecode(raw)
            _, new_mode, old, new, _ = token[1:].split(b" ")
            # interned: the id a commit adds is the id a later one drops
            entries.append((modes.setdefault(new_mode, new_mode), path,
                            b"" if _ZERO.match(old) else unhexlify(old), b"" if _ZERO.match(new) else unhexlify(new)))
        elif token.strip():
            if header is not None:
                yield header, entries
            header, entries = token.strip().decode(), []
    if header is not None:
        yield header, entries


def _tokens(stream: IO[bytes]) -> Iterator[bytes]:
    """The NUL-separated fields of ``-z`` output, as they arrive."""
    rest = b""
    while True:
        chunk = stream.read(1 << 16)
        if not chunk:
            break
        parts = (rest + chunk).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


# --- judging ----------------------------------------------------------------------------


class _Judge:
    """The configs and settings of the walked history, parsed once each
    (their blobs read when first needed)."""

    def __init__(self, root: Path, read: Callable[[str], bytes | None]) -> None:
        self.root = root
        self.read = read
        self.lacking: set[str] = set()
        self.configs: dict[str, Config | None] = {}
        self.settings: dict[str, AuditSettings] = {}
        #: (config key, path) -> its rule, or why the config cannot decide
        self.rules: dict[tuple[str, str], object] = {}
        from . import check

        self.check = check  # looked up per blob: a module attribute, not an import statement

    def _content(self, blob: str) -> bytes:
        data = None if blob in self.lacking else self.read(blob)
        if data is None:
            self.lacking.add(blob)  # asked once: never again while a batch's answers are pending
            raise KeyError(blob)
        return data

    def config(self, key: str) -> Config | None:
        if not key:
            return None
        if key not in self.configs:
            from ..config.decoder import parse_config

            directory, _, blob = key.partition("\0")
            rel = f"{directory}/{CONFIG_NAME}" if directory else CONFIG_NAME
            try:
                self.configs[key] = parse_config(self._content(blob), str(self.root / rel), strict=False)
            except SopsError:
                self.configs[key] = None  # sops refuses it; verify names why
        return self.configs[key]

    def setting(self, blob: str) -> AuditSettings:
        from .settings import AuditSettings, parse_settings

        if blob not in self.settings:
            try:
                self.settings[blob] = parse_settings(self._content(blob), SETTINGS_NAME) if blob else AuditSettings()
            except SopsError:
                self.settings[blob] = AuditSettings()
        return self.settings[blob]

    def rule(self, config_key: str, path: str) -> CreationRule | None | SopsError:
        """The rule of ``path`` under a config (the error when the config
        cannot decide), resolved once per (config, path): most paths come
        back in many commits."""
        key = (config_key, path)
        found = self.rules.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            from .check import governing_rule

            try:
                found = governing_rule(path, self.config(config_key), self.root)
            except SopsError as exc:
                found = exc
            if len(self.rules) >= _RULES_KEPT:
                self.rules.clear()  # a history that changes .sops.yaml often: memory stays bounded
            self.rules[key] = found
        return found  # type: ignore[return-value]

    def judge(self, job: tuple[str, str, str, str], mode: bytes, data: bytes) -> list[Where]:
        path, _, config_key, settings_blob = job
        symlink = mode == _SYMLINK
        rule = self.rule(config_key, path)
        # Nearly every blob is an intact SOPS file: vouched for in a fraction
        # of the audit's time; anything else gets the whole audit (which also
        # decides what becomes of a blob the shortcut stumbles on).
        try:
            vouched = not isinstance(rule, SopsError) and self.check.holds_no_plaintext(path, data, rule, is_symlink=symlink)
        except Exception:
            vouched = False
        if vouched:
            return []
        audit = self.check.audit_file(path, data, config=self.config(config_key), settings=self.setting(settings_blob),
                           is_symlink=symlink, repo_root=self.root)
        return [Where(f.kind, f.severity, f.message, f.line) for f in audit.findings if f.kind in EXPOSURE_KINDS]


class _BlobReader:
    """One ``git cat-file --batch`` answering a blob at a time, so that blobs
    are read as the walk finds them, while it goes on."""

    def __init__(self, git: _Git) -> None:
        import subprocess

        from ..git.repo import stream_git

        self.proc = stream_git(["cat-file", "--batch"], git.root, subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.ask, self.answers = self.proc.stdin, self.proc.stdout

    def __call__(self, blob: str) -> bytes | None:
        """The blob's content; None when the clone lacks it (or it is no blob)."""
        return next(self.many([blob]))

    def many(self, blobs: list[str]) -> Iterator[bytes | None]:
        """The contents of ``blobs``, in order, asked for at once (one round
        trip, not one per blob). The questions fit in the pipe (the caller
        sends at most a few hundred), so writing them cannot block on git."""
        self.ask.write(b"".join(blob.encode() + b"\n" for blob in blobs))
        self.ask.flush()
        for blob in blobs:
            header = self.answers.readline().split()
            if len(header) == 2 and header[1] == b"missing":
                yield None
                continue
            if len(header) < 3:
                raise SopsError(errors.GENERIC, f"git cat-file: unexpected answer for {blob}")
            data = self.answers.read(int(header[2]))
            self.answers.read(1)
            yield data if header[1] == b"blob" else None

    def close(self) -> None:
        for stream in (self.ask, self.answers):
            try:
                stream.close()
            except OSError:
                pass
        self.proc.wait()


#: One judgement: (path, blob, mode, config key, settings blob).
_Job = tuple[str, str, bytes, str, str]
#: What a judge sends back: the exposures it found, the blobs the clone lacks, how many jobs it judged.
_Answer = tuple[dict[tuple[str, str], list[Where]], list[str], int]


class _Judging:
    """Judges jobs in this process, ``_SEND_JOBS`` at a time: the blobs of a
    batch are asked of ``git cat-file`` at once."""

    def __init__(self, root: Path, git: _Git) -> None:
        self.read = _BlobReader(git)
        self.judge = _Judge(root, self.read)
        self.found: dict[tuple[str, str], list[Where]] = {}
        self.missing: list[str] = []
        self.done = 0
        self.pending: list[_Job] = []

    def __call__(self, job: _Job, pair: _Pair | None = None) -> None:
        self.pending.append(job)
        if len(self.pending) >= _SEND_JOBS:
            self.batch(self.pending)
            self.pending = []

    def batch(self, jobs: list[_Job]) -> None:
        uses: dict[str, int] = {}
        for job in jobs:
            uses[job[1]] = uses.get(job[1], 0) + 1
        for context in {job[3:] for job in jobs}:  # parsed before the batch's blobs are asked for
            try:
                self.judge.config(context[0])
                self.judge.setting(context[1])
            except KeyError:
                pass  # the clone lacks it: each job that needs it says it could not be judged
        answers = self.read.many(list(uses))
        held: dict[str, bytes | None] = {}  # only blobs a later job of the batch needs again
        for path, blob, mode, config_key, settings_blob in jobs:
            data = held[blob] if blob in held else next(answers)
            uses[blob] -= 1
            if uses[blob]:
                held[blob] = data
            else:
                held.pop(blob, None)
            self.done += 1
            if data is None:
                self.missing.append(blob)
                continue
            try:
                more = self.judge.judge((path, blob, config_key, settings_blob), mode, data)
            except Exception as exc:  # one unreadable blob must not hide the rest
                more = [Where("plaintext-secret", "warning",
                              f"could not be judged ({type(exc).__name__}); check it by hand", None)]
            if more:
                known = self.found.setdefault((path, blob), [])
                known.extend(w for w in more if w not in known)

    def answer(self) -> _Answer:
        if self.pending:
            self.batch(self.pending)
            self.pending = []
        self.read.close()
        return self.found, self.missing, self.done


#: Jobs sent to a worker in one message.
_SEND_JOBS = 256


class _Workers:
    """Forked judges fed by the walk as it goes: the commit walk, the blob
    reads (one ``cat-file`` per worker) and the judging overlap. Every job of
    a (path, blob) pair goes to the worker its first job went to, which reads
    the blob once per batch that needs it (once, unless a later config change
    has it judged again). A worker keeps only the exposures it finds, so memory stays flat
    however long the history. Jobs go down a pipe (a worker that falls
    behind slows the walk once its pipe is full: nothing piles up here); the
    answers come back once, at the end. A worker that dies has its share
    judged again in this process."""

    def __init__(self, root: Path, git: _Git, count: int) -> None:
        self.root, self.git = root, git
        self.pids: list[int] = []
        self.job_fds: list[int] = []
        self.answer_fds: list[int] = []
        self.pending: list[list[_Job]] = [[] for _ in range(count)]
        #: the worker new (path, blob) pairs go to, a batch at a time
        self.turn = 0
        for _ in range(count):
            self._start()

    def _start(self) -> None:
        import pickle

        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # a child must not inherit (and never print) buffered output
        job_r, job_w = os.pipe()
        ans_r, ans_w = os.pipe()
        _widen(job_w)
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                os.close(job_w)
                os.close(ans_r)
                for fd in self.job_fds + self.answer_fds:
                    os.close(fd)
                judging = _Judging(self.root, self.git)
                with os.fdopen(job_r, "rb") as jobs:
                    while True:
                        size = jobs.read(8)
                        if len(size) < 8:
                            break
                        judging.batch(pickle.loads(jobs.read(int.from_bytes(size, "little"))))
                with os.fdopen(ans_w, "wb") as out:
                    out.write(pickle.dumps(judging.answer(), pickle.HIGHEST_PROTOCOL))
                status = 0
            except BaseException:  # the parent judges this worker's share again
                pass
            finally:
                os._exit(status)
        os.close(job_r)
        os.close(ans_w)
        self.pids.append(pid)
        self.job_fds.append(job_w)
        self.answer_fds.append(ans_r)

    def __call__(self, job: _Job, pair: _Pair) -> None:
        n = pair.worker
        if n < 0:
            n = self.turn
            pair.worker = n
        self.pending[n].append(job)
        if len(self.pending[n]) >= _SEND_JOBS:
            self._send(n)
            if n == self.turn:
                self.turn = (n + 1) % len(self.pids)

    def _send(self, n: int) -> None:
        import pickle

        if self.job_fds[n] < 0 or not self.pending[n]:
            self.pending[n] = []
            return
        body = pickle.dumps(self.pending[n], pickle.HIGHEST_PROTOCOL)
        self.pending[n] = []
        view = memoryview(len(body).to_bytes(8, "little") + body)
        try:
            while view:
                view = view[os.write(self.job_fds[n], view):]
        except BrokenPipeError:  # it died: its share is judged again at the end
            os.close(self.job_fds[n])
            self.job_fds[n] = -1

    def finish(self) -> tuple[list[_Answer], list[int]]:
        """The answers of the workers, and the numbers of those that gave none."""
        import pickle

        for n in range(len(self.pids)):
            self._send(n)
            if self.job_fds[n] >= 0:
                os.close(self.job_fds[n])
                self.job_fds[n] = -1
        answers, failed = [], []
        for n, fd in enumerate(self.answer_fds):
            chunks = []
            with os.fdopen(fd, "rb") as stream:
                chunks.append(stream.read())
            self.answer_fds[n] = -1
            _, status = os.waitpid(self.pids[n], 0)
            self.pids[n] = -1
            try:
                if status != 0:
                    raise ValueError("worker failed")
                answers.append(pickle.loads(b"".join(chunks)))
            except Exception:
                failed.append(n)
        return answers, failed

    def stop(self) -> None:
        """Ends what is still running (an error or Ctrl-C in the parent)."""
        import signal

        for fd in self.job_fds + self.answer_fds:
            if fd >= 0:
                os.close(fd)
        for pid in self.pids:
            if pid > 0:
                try:
                    os.kill(pid, signal.SIGTERM)
                    os.waitpid(pid, 0)
                except OSError:
                    pass


#: Bytes of jobs a worker may have queued (a pipe's buffer, Linux): enough
#: that the walk runs on while a worker waits for a CPU, bounded so memory is.
_PIPE_BYTES = 1 << 20


def _widen(fd: int) -> None:
    """Lets the walk run ahead of a worker by ``_PIPE_BYTES`` of jobs (a
    kernel buffer: no memory of this process), where the system allows."""
    import fcntl

    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except OSError:
        pass  # the default buffer (64 KiB) still works, with less slack


def scan(path: str | Path = ".", options: HistoryOptions | None = None) -> HistoryResult:
    """Scan the history of the repository containing ``path``. Raises
    SopsError(2) for usage problems (not a repository, unknown revision)."""
    import datetime
    import time

    from .. import forkpool
    from . import check  # noqa: F401  (imported once, before the workers fork)

    options = options or HistoryOptions()
    started = time.monotonic()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not Path(path).is_dir():
        raise SopsError(USAGE_ERROR, f"{path}: not a directory")
    top = _Git(Path(path)).run("rev-parse", "--show-toplevel").rstrip(b"\n")
    root = Path(os.fsdecode(top))
    git = _Git(root)
    tips = _ref_tips(git, options.refs)
    count = forkpool.requested_jobs(options.jobs) or forkpool.cpu_count()
    workers = _Workers(root, git, count) if count > 1 and forkpool.usable() else None
    inline: _Judging | None = None
    emit: Callable[[_Job, _Pair], None]
    if workers is not None:
        emit = workers
    else:  # one CPU, or no fork here: judged in this process
        emit = inline = _Judging(root, git)
    answers: list[_Answer] = []
    try:
        walk = _Walk(git, options, emit)
        walk.run(tips)
        if workers is not None:
            answers, failed = workers.finish()
            if failed:  # a worker died: its share is judged here
                inline = _Judging(root, git)
                for (path_, raw), pair in walk.pairs.items():
                    if pair.contexts and pair.worker in failed:
                        for config_key, settings_blob in pair.contexts:
                            inline((path_, raw.hex(), pair.mode, config_key, settings_blob))
        if inline is not None:
            answers.append(inline.answer())
    finally:
        if workers is not None:
            workers.stop()
        if inline is not None:
            inline.read.close()
    found: dict[tuple[str, str], list[Where]] = {}
    missing: list[str] = []
    result = HistoryResult(root=root, refs=[name for name, _ in tips], since=options.since, started=stamp,
                           commits=len(walk.commits))
    for exposures, lacking, done in answers:
        found.update(exposures)  # a pair's jobs all go to one worker: no key comes twice
        missing.extend(lacking)
        result.judged += done
    if missing:
        raise SopsError(USAGE_ERROR, f"blob {min(missing)} is not in this clone (a partial clone?): "
                        "fetch the whole history first")
    result.blobs = len({blob for (_, blob), pair in walk.pairs.items() if pair.contexts})
    if options.progress:
        options.progress("judging", result.blobs, result.blobs)
    walk.states = []
    masks = _ref_masks(walk, tips)
    walk.index = {}
    result.exposures = _exposures(git, walk, tips, masks, found)
    result.seconds = time.monotonic() - started
    return result


def _exposures(git: _Git, walk: _Walk, tips: list[tuple[str, str]], masks: list[int],
               found: dict[tuple[str, str], list[Where]]) -> list[Exposure]:
    if not found:
        return []
    head: set[tuple[str, str]] = set()
    if git.run("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False).strip():
        head = {(path, blob) for _, path, blob in _ls_tree(git, "HEAD")}
    names = [name for name, _ in tips]
    out = []
    for (path, blob), wheres in found.items():
        pair = walk.pairs[(path, bytes.fromhex(blob))]
        mask = 0
        for i in pair.introduced:
            mask |= masks[i]
        out.append(Exposure(
            path=path, blob=blob, findings=wheres,
            introduced_in=[walk.commits[i].hex() for i in pair.introduced],
            removed_in=[walk.commits[i].hex() for i in pair.removed],
            refs=sorted({names[b] for b in range(len(names)) if mask >> b & 1}),
            in_head=(path, blob) in head,
        ))
    out.sort(key=lambda e: (not e.in_head, e.path, e.introduced_in[:1], e.blob))  # ties: not by which worker answered first
    return out


def _ref_masks(walk: _Walk, tips: list[tuple[str, str]]) -> list[int]:
    """Per commit, a bit per ref whose history contains it (children first)."""
    masks = [0] * len(walk.commits)
    for bit, (_, oid) in enumerate(tips):
        i = walk.index.get(bytes.fromhex(oid))
        if i is not None:
            masks[i] |= 1 << bit
    for i in range(len(walk.commits) - 1, -1, -1):
        if masks[i]:
            parents = walk.parents[i]
            for p in (parents,) if isinstance(parents, int) else parents:
                if p >= 0:
                    masks[p] |= masks[i]
    return masks


# --- reports ------------------------------------------------------------------------------


def to_json(result: HistoryResult) -> dict[str, object]:
    """The ``--report`` document: every exposure with its commits and key paths."""
    return {
        "version": 1,
        "refs": result.refs,
        "since": result.since,
        "summary": {
            "commits": result.commits,
            "blobs": result.blobs,
            "exposures": len(result.exposures),
            "in_head": sum(1 for e in result.exposures if e.in_head),
            "exit_code": result.exit_code,
        },
        "exposures": [
            {
                "path": e.path,
                "blob": e.blob,
                "severity": e.severity,
                "kinds": e.kinds,
                "key_paths": e.key_paths,
                "findings": [{"kind": w.kind, "severity": w.severity, "message": w.message, "line": w.line}
                             for w in e.findings],
                "introduced_in": e.introduced_in,
                "removed_in": e.removed_in,
                "refs": e.refs,
                "in_head": e.in_head,
            }
            for e in result.exposures
        ],
        "advice": ROTATE_LINE,
    }


def _summary(result: HistoryResult) -> str:
    n = len(result.exposures)
    paths = len({e.path for e in result.exposures})
    head = sum(1 for e in result.exposures if e.in_head)
    scope = f"since {result.since}" if result.since else "all refs"
    return (f"sopsflow history ({scope}): {result.commits} commits, {result.blobs} blobs, "
            f"{n} exposure{'s' * (n != 1)} in {paths} path{'s' * (paths != 1)}, {head} in HEAD")


def _fit(text: str, width: int) -> str:
    """``text`` within ``width`` columns, cut at the start (a path's end says most)."""
    return text if len(text) <= width else "..." + text[-(width - 3):]


def render_text(result: HistoryResult, report_path: str | None = None) -> str:
    """At most ``TEXT_ROWS`` exposures, one line each within ``TEXT_WIDTH``
    columns; every detail is in ``--report``."""
    summary = _summary(result)
    lines = [summary if len(summary) <= TEXT_WIDTH else summary[:TEXT_WIDTH - 3] + "..."]
    for e in result.exposures[:TEXT_ROWS]:
        intro = ",".join(c[:8] for c in e.introduced_in[:2]) or "before range"
        more = f"+{len(e.introduced_in) - 2}" if len(e.introduced_in) > 2 else ""
        state = "in HEAD" if e.in_head else (f"removed {e.removed_in[0][:8]}" if e.removed_in else "off HEAD")
        refs = ",".join(e.refs[:2]) + (f",+{len(e.refs) - 2}" if len(e.refs) > 2 else "")
        if len(refs) > 24:
            refs = refs[:21] + "..."
        kind = "/".join(k.split("-")[0] for k in e.kinds)
        tail = f"  {kind}  {intro}{more}  {state}  [{refs or '-'}]"
        line = "  " + _fit(e.path, max(24, TEXT_WIDTH - 2 - len(tail))) + tail
        lines.append(line if len(line) <= TEXT_WIDTH else line[:TEXT_WIDTH - 3] + "...")
    rest = len(result.exposures) - TEXT_ROWS
    if rest > 0:
        head = f"  ... and {rest} more "
        where = ("in " + _fit(report_path, TEXT_WIDTH - len(head) - 3) if report_path
                 else "(--report FILE lists them all, with commits and key paths)")
        lines.append(head + where)
    if result.exposures:
        lines.append(ROTATE_LINE)
    return "\n".join(lines) + "\n"


def as_verify_result(result: HistoryResult) -> VerifyResult:
    """The result in verify's shape, one finding per exposure, for the CI
    formats of :mod:`sopsflow.gitops.report` (which give every exposure in a commit
    the fix "rotate it at its source"; the file's own fix no longer helps)."""
    from .check import Finding, fingerprint
    from .verify import AuditedFile, VerifyResult

    out = VerifyResult(root=result.root, target="history", commit="history", started=result.started,
                       seconds=result.seconds, checks=["history"])
    findings: list[Finding] = []
    for e in result.exposures:
        first = e.findings[0]
        intro = ", ".join(c[:12] for c in e.introduced_in[:3]) or "before the scanned range"
        where = ", ".join(e.key_paths[:5])
        message = (f"{first.message}; in history: introduced in {intro}"
                   + (f", removed in {', '.join(c[:12] for c in e.removed_in[:3])}" if e.removed_in else "")
                   + ("; HEAD still has it" if e.in_head else "; no longer in HEAD")
                   + (f"; refs {', '.join(e.refs[:5])}" if e.refs else "")
                   + (f"; at {where}" if where else ""))
        findings.append(Finding(first.kind, e.path, message, e.severity, first.line if e.in_head else None,
                                None, fingerprint(first.kind, e.path, e.blob)))
    out.findings = findings
    out.files = [AuditedFile(e.path, "exposed") for e in result.exposures]
    out.notes = [ROTATE_LINE] if result.exposures else []
    return out


def progress_printer(stream: IO[str] | None = None) -> Callable[[str, int, int], None] | None:
    """Progress on a terminal only: nothing when stderr is a pipe or a file."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None

    def show(what: str, done: int, total: int) -> None:
        count = f"{done}/{total} blobs" if total else f"{done} commits"
        stream.write(f"\rsopsflow history: {what} {count}\033[K")
        if what == "judging" and done >= total:
            stream.write("\n")
        stream.flush()

    return show
