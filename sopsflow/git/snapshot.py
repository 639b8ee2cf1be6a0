"""One state of a repository, as ``check``, ``verify`` and the history scan judge it.

A :class:`Snapshot` is the files of a commit's tree, of the index or of the
work tree (see :mod:`sopsflow.git.repo` for where the bytes come from), and
for any path in it the nearest `.sops.yaml`:

* the configs are looked for from the file's directory up to the repository
  root, never above it (a `.sops.yaml` outside the repository is not part of
  what is committed), and each directory is resolved once;
* a config is read from the snapshot itself: committed content for a
  revision, staged content for the index (an untracked `.sops.yaml` on disk
  counts for the index and the work tree, as it does for sops run there);
* a config that does not load, or cannot be read, is *fail-closed*
  (:attr:`ConfigRef.fail_closed`): every file under it must be refused, never
  judged as if no rule applied. The rules that still load are kept in
  :attr:`ConfigRef.lenient` so that callers can say more than "refused".

:meth:`Snapshot.resolved_rule` gives each path's creation rule as a value
comparable across snapshots; :func:`rule_changes` names the tracked files
whose rule a `.sops.yaml` change alters (the files strict mode re-checks).
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from .. import errors
from ..errors import SopsError

TYPE_CHECKING = False  # neither typing nor dataclasses at run time (hook start-up)
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from dataclasses import dataclass
    from typing import Literal, TypeAlias

    import pygit2

    from ..config.rules import Config, CreationRule
    from .repo import GitFile, IndexRepo, Repo

    SnapshotKind: TypeAlias = Literal["rev", "index", "worktree"]

    #: A file's creation rule as far as its SOPS metadata is concerned: the key
    #: groups (identities per group, order within a group ignored as updatekeys
    #: ignores it), the threshold and the selection options. None: no rule. A
    #: config or rule that does not load gives ``("broken", config path, reason)``.
    RuleKey: TypeAlias = tuple[object, ...] | None
else:
    from ..records import dataclass

CONFIG_NAME = ".sops.yaml"


def config_candidates(rel_path: str) -> Iterator[str]:
    """The `.sops.yaml` paths that may govern ``rel_path`` (repo-relative,
    ``/`` separators), nearest first, the root's last."""
    directory = posixpath.dirname(rel_path)
    while True:
        yield f"{directory}/{CONFIG_NAME}" if directory else CONFIG_NAME
        if not directory:
            return
        directory = posixpath.dirname(directory)


def is_sops_config(rel_path: str) -> bool:
    return posixpath.basename(rel_path) == CONFIG_NAME


@dataclass(frozen=True)
class ConfigRef:
    """The `.sops.yaml` that governs a file."""

    #: repo-relative path of the config; None when no config governs the file
    path: str | None
    #: the config as sops loads it; None when absent or fail-closed
    config: Config | None
    #: why the config does not load (paths in it repo-relative): fail closed
    error: SopsError | None = None
    #: of a fail-closed config, the rules that still load (None: none)
    lenient: Config | None = None

    @property
    def fail_closed(self) -> bool:
        """Every file under this config must be refused."""
        return self.error is not None

    @property
    def rules(self) -> Config | None:
        """The rules to judge files by: the config, or what still loads of a broken one."""
        return self.lenient if self.error is not None else self.config


NO_CONFIG = ConfigRef(None, None)


def rule_key(rule: CreationRule | None, config_path: str) -> RuleKey:
    """``rule`` as a :data:`RuleKey`."""
    if rule is None:
        return None
    try:
        groups = tuple(tuple(sorted({(s.type_name, s.identity()) for s in group})) for group in rule.key_specs())
    except SopsError as exc:
        return ("broken", config_path, exc.message)
    return ("rule", groups, rule.shamir_threshold, tuple(sorted(rule.selection.items())), rule.mac_only_encrypted)


class Snapshot:
    """The files of a revision (``kind="rev"``), the index or the work tree.

    Files are listed once, on first use; content is read when asked for.
    """

    def __init__(self, repo: Repo | IndexRepo, kind: SnapshotKind, rev: str | None = None) -> None:
        if (kind == "rev") != (rev is not None):
            raise ValueError("a revision snapshot needs a rev, and only it")
        self.repo = repo
        self.kind: SnapshotKind = kind
        self.rev = rev
        self.root: Path = repo.root
        self._tree: pygit2.Tree | None = None
        self._files: list[GitFile] | None = None
        self._by_path: dict[str, GitFile] | None = None
        self._configs: dict[str, ConfigRef] = {}
        #: id(rule) -> (rule, its RuleKey): a rule's key is computed once, not per file
        self._rule_keys: dict[int, tuple[CreationRule, RuleKey]] = {}

    @classmethod
    def at(cls, repo: Repo | IndexRepo, rev: str) -> Snapshot:
        return cls(repo, "rev", rev)

    @classmethod
    def index(cls, repo: Repo | IndexRepo) -> Snapshot:
        return cls(repo, "index")

    @classmethod
    def worktree(cls, repo: Repo | IndexRepo) -> Snapshot:
        return cls(repo, "worktree")

    @property
    def label(self) -> str:
        return f"commit {self.rev}" if self.rev is not None else self.kind

    # -- files ------------------------------------------------------------------------

    def files(self) -> list[GitFile]:
        """Every tracked file (symlinks included, submodules left out)."""
        if self._files is None:
            if self.rev is not None:
                self._files = self.repo.files_at(self._rev_tree(self.rev))
            elif self.kind == "index":
                self._files = self.repo.index_files()
            else:
                self._files = self.repo.worktree_files()
        return self._files

    def get(self, rel: str) -> GitFile | None:
        """The tracked file at ``rel`` (None when there is none)."""
        if self._by_path is None and self._files is None and self.kind != "worktree":
            # one lookup needs no listing (the hook reads a few configs only)
            return self.repo.file_at(self._rev_tree(self.rev), rel) if self.rev is not None \
                else self.repo.index_file(rel)
        if self._by_path is None:
            self._by_path = {f.path: f for f in self.files()}
        return self._by_path.get(rel)

    def _rev_tree(self, rev: str) -> pygit2.Tree:
        if self._tree is None:
            self._tree = self.repo.tree(rev)
        return self._tree

    def read(self, rel: str) -> bytes | None:
        """The content at ``rel``: tracked, or for the index and the work tree
        an untracked regular file on disk. None when there is none; OSError
        when it exists on disk but cannot be read."""
        found = self.get(rel)
        if found is not None:
            return found.data
        if self.rev is not None:
            return None
        path = self.root / rel
        return path.read_bytes() if path.is_file() else None

    # -- configs ----------------------------------------------------------------------

    def config_for(self, rel: str) -> ConfigRef:
        """The nearest `.sops.yaml` at or above the directory of ``rel``."""
        return self._config_in(posixpath.dirname(rel))

    def data_config_for(self, rel: str) -> ConfigRef:
        """The config that judges ``rel`` as data. A nested `.sops.yaml` that
        defines no creation rules governs nothing, itself included: what it
        holds besides configuration is judged by the config above it."""
        found = self.config_for(rel)
        directory = posixpath.dirname(rel)
        if is_sops_config(rel) and directory and found.config is not None and not found.config.has_creation_rules:
            return self._config_in(posixpath.dirname(directory))
        return found

    def _config_in(self, directory: str) -> ConfigRef:
        cached = self._configs.get(directory)
        if cached is not None:
            return cached
        rel = f"{directory}/{CONFIG_NAME}" if directory else CONFIG_NAME
        found = self._load(rel)
        if found is None:
            found = self._config_in(posixpath.dirname(directory)) if directory else NO_CONFIG
        self._configs[directory] = found
        return found

    def _load(self, rel: str) -> ConfigRef | None:
        from ..config.decoder import parse_config

        full = str(self.root / rel)
        tracked = self.get(rel)
        if tracked is not None and tracked.is_symlink:
            # git holds the link, not the file: what it points to may differ
            # between commits and is not what is judged
            target = tracked.data.decode("utf-8", "replace")
            return ConfigRef(rel, None, SopsError(errors.ERROR_READING_CONFIG, (
                f"invalid config file {rel}: a symbolic link (to {target}); commit the config itself")))
        try:
            data = self.read(rel)
        except OSError as exc:
            return ConfigRef(rel, None, SopsError(errors.ERROR_READING_CONFIG,
                                                  f"cannot read config file {rel}: {exc.strerror or exc}"))
        if data is None:
            return None
        try:
            return ConfigRef(rel, parse_config(data, full, strict=True))
        except SopsError as exc:
            error = SopsError(exc.code, exc.message.replace(full, rel))
        try:
            lenient: Config | None = parse_config(data, full, strict=False)
        except SopsError:
            lenient = None
        return ConfigRef(rel, None, error, lenient)

    def resolved_rule(self, rel: str) -> RuleKey:
        """The creation rule that governs ``rel`` here, as a :data:`RuleKey`."""
        ref = self.data_config_for(rel)
        if ref.path is None:
            return None
        if ref.error is not None:
            return ("broken", ref.path, ref.error.message)
        config = ref.config
        if config is None or not config.has_creation_rules:
            return None
        try:
            rule = config.match(str(self.root / rel))
        except SopsError as exc:
            return ("broken", ref.path, exc.message)
        if rule is None:
            return None
        cached = self._rule_keys.get(id(rule))
        if cached is None or cached[0] is not rule:
            cached = self._rule_keys[id(rule)] = (rule, rule_key(rule, ref.path))
        return cached[1]


def changed_configs(old: Snapshot, new: Snapshot, candidates: Iterable[str] | None = None) -> list[str]:
    """The tracked `.sops.yaml` paths (of ``candidates``, default all of
    either snapshot) whose content differs from ``old`` to ``new``."""
    if candidates is None:
        candidates = {f.path for f in (*old.files(), *new.files())}
    out = []
    for rel in sorted({c for c in candidates if is_sops_config(c)}):
        before, after = old.get(rel), new.get(rel)
        if before is None and after is None:
            continue
        if before is None or after is None or before.data != after.data or before.mode != after.mode:
            out.append(rel)
    return out


def rule_changes(old: Snapshot, new: Snapshot, configs: Iterable[str]) -> list[GitFile]:
    """The tracked files of ``new`` under the directories of ``configs``
    (changed `.sops.yaml` paths) whose creation rule differs between ``old``
    and ``new``: the files a `.sops.yaml` change may have made stale."""
    directories = sorted({posixpath.dirname(c) for c in configs if not _same_rules(old, new, c)})
    if not directories:
        return []
    out = []
    for f in new.files():
        if is_sops_config(f.path):
            continue  # configs are judged as configs, not by the rule they define
        if not any(not d or f.path.startswith(d + "/") for d in directories):
            continue
        if old.resolved_rule(f.path) != new.resolved_rule(f.path):
            out.append(f)
    return out


def _same_rules(old: Snapshot, new: Snapshot, config_rel: str) -> bool:
    """Whether ``config_rel`` is present and loads in both snapshots with the
    same rules in the same order (a comment or a reformat): then no file's
    rule can differ because of it, and none is resolved."""
    directory = posixpath.dirname(config_rel)
    before, after = old._config_in(directory), new._config_in(directory)
    if before.path != config_rel or after.path != config_rel or before.config is None or after.config is None:
        return False
    if before.config.has_creation_rules != after.config.has_creation_rules:
        return False

    def shape(config: Config) -> list[tuple[str, RuleKey]]:
        return [(rule.path_regex, rule_key(rule, config_rel)) for rule in config.rules]

    return shape(before.config) == shape(after.config)
