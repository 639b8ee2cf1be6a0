"""Repository-wide recipient updates (the engine behind ``sopsflow updatekeys``).

Two phases, so that the user sees everything before anything is written:

* **plan** - per file, compare the key groups in its metadata with what its
  creation rule names now (:mod:`.drift`; no key needed) and
  decide whether the data key rotates;
* **apply** - per planned file, unwrap the data key once, then either re-wrap
  the *same* key for the rule's groups as ``sops updatekeys`` does (values,
  ``mac``, ``lastmodified``, ``version`` untouched; nothing is decrypted but
  the MAC as a key check; only the metadata block is rewritten, and with one
  key group the wraps of keys that stay are kept) or, when a recipient was
  removed, rotate it: new data key, every value re-encrypted with its IV kept,
  new MAC and ``lastmodified``.

With ``-y`` nothing needs confirming, and :func:`update_files` does both
phases in one pass per file. Files are processed in forked workers
(:mod:`.forkpool`); every new file is built in memory first and then all are
written together (``fileio.atomic_write_many``): each write is atomic, so a
kill at any moment leaves each file fully old or fully new. A hard kill
between creating the temp files and renaming them can leave
``.NAME.HOST.pPID.XXXXXXXX.sopsflow-tmp`` next to NAME: it holds (part of) an
*encrypted* file, never plaintext. Such strays are never taken for SOPS files
when files are collected, and the next ``sopsflow updatekeys`` run that covers
NAME deletes those whose process is gone (:func:`remove_stray_temp_files`);
``*.sopsflow-tmp`` belongs in .gitignore. Before each rename the file is
compared with what the plan read (``fileio``): a file another writer changed
in between is left as it is and reported.
"""

from __future__ import annotations

import functools
import os
import stat
import sys
from pathlib import Path

from .. import errors
from ..errors import SopsError
from ..fileio import Snapshot
from ..metadata import Metadata
from ..tree import Branches, Comment, RawMetadata, TreeMap, TreeValue

TYPE_CHECKING = False  # neither typing nor dataclasses is imported at run time (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from dataclasses import dataclass, field
    from typing import Any, NamedTuple, TextIO, TypeVar

    from ..config.keyspecs import KeySpec
    from ..config.rules import Config, CreationRule
    from ..git.repo import TrackedListing
    from ..keys.ageplugin import PluginIdentity
    from ..keys.base import MasterKey
    from ..stores import Store
    from ..tree import TreeValue

    StoreFactory = Callable[[str], Store]
    #: A file to update: (absolute path, display name, named by the user, its rule when already matched).
    Target = tuple[Path, str, bool, CreationRule | None]
    #: Recipient -> who holds it (from .sops.yaml comments), or a function giving that on demand.
    Labels = Mapping[str, str] | Callable[[], Mapping[str, str]]
    _T = TypeVar("_T")
    _R = TypeVar("_R")
else:
    from ..records import NamedTuple, dataclass, field

ROTATE_AUTO = "auto"  # rotate when a recipient is removed
ROTATE_ALWAYS = "always"  # --rotate
ROTATE_NEVER = "never"  # --no-rotate

STATUS_UPDATE = "update"
STATUS_CURRENT = "up-to-date"
STATUS_SKIPPED = "skipped"
STATUS_ERROR = "error"

#: The suffix ``fileio.atomic_write`` gives its temp files.
TEMP_SUFFIX = ".sopsflow-tmp"

ADVICE = (
    "The removed recipients could read these values. Rotating the data key protects new "
    "versions only: git history still holds the old ciphertext, so change each listed secret "
    "at its source (database password, API token, ...)."
)

#: Names never treated as secret files when collecting.
_CONFIG_NAMES = frozenset({".sops.yaml"})
_SKIP_DIRS = frozenset({".git"})


@dataclass
class GroupChange:
    """Recipients to add to and remove from one key group (0-based index)."""

    index: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass
class FilePlan:
    """What updatekeys will do to one file, and what it read to decide."""

    path: Path  # absolute
    display: str  # how the user named it / repo-relative
    status: str
    reason: str = ""
    code: int = 0
    rule_index: int | None = None
    changes: list[GroupChange] = field(default_factory=list)
    threshold_before: int = 0
    threshold_after: int = 0
    rotate: bool = False
    recipients: list[str] = field(default_factory=list)  # identities the file holds now
    #: identities that lose access: in the file now, in none of the rule's groups
    revoked: list[str] = field(default_factory=list)
    secret_paths: list[str] = field(default_factory=list)  # encrypted values (filled on removal)
    # Kept between planning and applying so that nothing is parsed twice.
    rule: CreationRule | None = field(default=None, repr=False)
    rule_specs: list[list[KeySpec]] = field(default_factory=list, repr=False)
    data: bytes = field(default=b"", repr=False)
    store: Store | None = field(default=None, repr=False)
    branches: Branches | None = field(default=None, repr=False)
    metadata: Metadata | None = field(default=None, repr=False)
    #: What the file was when read (files to update only): it must still be that when replaced.
    snapshot: Snapshot | None = field(default=None, repr=False)

    @property
    def added(self) -> list[str]:
        return _unique(k for c in self.changes for k in c.added)

    def without_content(self) -> FilePlan:
        """This plan without what was read to make it (for reports; picklable)."""
        slim = _shallow_copy(self)  # dataclasses.replace would run every field's __init__ again
        slim.rule, slim.rule_specs, slim.data, slim.store, slim.branches, slim.metadata = None, [], b"", None, None, None
        return slim

    @property
    def removed(self) -> list[str]:
        """Recipients that lose access (a key merely moved between groups keeps it)."""
        return self.revoked

    @property
    def threshold_changes(self) -> bool:
        return self.threshold_before != self.threshold_after


@dataclass
class FileResult:
    plan: FilePlan
    ok: bool
    rotated: bool = False
    reason: str = ""
    code: int = 0
    detail: str = ""  # the multi-line key report, shown with --verbose


# --- planning ------------------------------------------------------------------


class RuleCache:
    """Each creation rule's key specs, built once per run. Building them checks
    every age recipient's bech32 checksum, which would otherwise be repeated
    several times for every file."""

    def __init__(self) -> None:
        self._specs: dict[int, tuple[CreationRule, list[list[KeySpec]]]] = {}
        self._checked: set[int] = set()

    def match(self, config: Config, path: str) -> CreationRule | None:
        """``config.match(path)``, with each rule's validation done once: the
        first file a rule matches goes through Config.match (which raises for
        a rule sops would refuse), later ones only through the regex."""
        relative = config.relative_path(path)
        for rule in config.rules:
            if rule.matches(relative):
                if id(rule) in self._checked:
                    return rule
                found = config.match(path)
                if found is not None:
                    self._checked.add(id(found))
                return found
        return None

    def specs(self, rule: CreationRule) -> list[list[KeySpec]]:
        hit = self._specs.get(id(rule))
        if hit is None or hit[0] is not rule:
            hit = (rule, rule.key_specs())
            self._specs[id(rule)] = hit
        return hit[1]


def fresh_key_groups(plan: FilePlan) -> list[list[MasterKey]]:
    """New master-key objects for the plan's rule (each file wraps its own)."""
    from ..config.keyspecs import build_key

    try:
        return [[build_key(spec) for spec in group] for group in plan.rule_specs]
    except Exception:
        if plan.rule is not None:
            plan.rule.key_groups()  # raises the config's own error message
        raise  # never fall back to the rule alone: it lacks the keys carried over


def plan_file(
    path: Path,
    display: str,
    *,
    config: Config,
    store_for: StoreFactory,
    rotate: str = ROTATE_AUTO,
    explicit: bool = True,
    rule: CreationRule | None = None,
    cache: RuleCache | None = None,
) -> FilePlan:
    """Decide what to do with one file. ``explicit`` files (named by the user)
    that are not SOPS files or match no rule are errors; discovered ones are
    skipped. ``rule``: the creation rule when the caller already matched it."""
    plan = FilePlan(path=path, display=display, status=STATUS_ERROR)
    try:
        _plan_into(plan, config, store_for, rotate, explicit, rule, cache or RuleCache())
    except SopsError as exc:
        plan.status, plan.reason, plan.code = STATUS_ERROR, exc.message, exc.code
    return plan


def _plan_into(plan: FilePlan, config: Config, store_for: StoreFactory, rotate: str, explicit: bool,
               rule: CreationRule | None, cache: RuleCache) -> None:
    def skip_or_fail(reason: str, code: int = errors.GENERIC) -> None:
        plan.status = STATUS_ERROR if explicit else STATUS_SKIPPED
        plan.reason, plan.code = reason, code

    if not explicit and plan.path.is_symlink():
        # Found, not named: the file it points to is collected on its own. A
        # named link is followed, and the write replaces its target (fileio).
        return skip_or_fail("is a symbolic link")
    if rule is None:
        rule = cache.match(config, str(plan.path))
    if rule is None:
        return skip_or_fail("no creation rule matches this file")
    try:
        with open(plan.path, "rb") as handle:
            plan.data = handle.read()
            read_stat = os.fstat(handle.fileno())
    except OSError as exc:
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"cannot read file: {exc.strerror}") from None
    store = store_for(str(plan.path))
    try:
        branches, raw = store.load_encrypted(plan.data)
    except SopsError as exc:
        return skip_or_fail(f"not a SOPS file ({exc.message})", exc.code)
    if raw is None:
        return skip_or_fail("not a SOPS file (no sops metadata)")
    meta = Metadata.from_dict(raw)  # present but broken metadata is an error either way
    plan.rule, plan.rule_index, plan.store = rule, getattr(rule, "index", None), store
    plan.branches, plan.metadata = branches, meta
    plan.recipients = [k.identity() for k in meta.all_keys()]
    plan.rule_specs = _carry_unnameable(meta, cache.specs(rule))
    plan.changes = group_changes(meta, plan.rule_specs)
    # sops updatekeys keeps the file's threshold, capped at the new number of groups.
    plan.threshold_before = meta.shamir_threshold
    plan.threshold_after = min(meta.shamir_threshold, len(plan.rule_specs))
    keys_change = any(c.added or c.removed for c in plan.changes)
    staying = {spec.identity() for group in plan.rule_specs for spec in group}
    plan.revoked = _unique(k for c in plan.changes for k in c.removed if k not in staying)
    removal = bool(plan.revoked)
    plan.rotate = rotate == ROTATE_ALWAYS or (removal and rotate == ROTATE_AUTO)
    if keys_change or plan.threshold_changes or plan.rotate:
        plan.status = STATUS_UPDATE
        plan.snapshot = Snapshot.of(read_stat, plan.data)
    else:
        plan.status = STATUS_CURRENT
    if removal:
        plan.secret_paths = encrypted_paths(branches)


def _carry_unnameable(meta: Metadata, specs: list[list[KeySpec]]) -> list[list[KeySpec]]:
    """The rule's groups plus, in the same group, each of the file's keys of a
    type no rule can name (a newer sops' key type): the rule cannot have
    removed them, so they stay, verbatim. A group the rule drops while it
    holds such keys is an error rather than a silent loss."""
    from ..config.keyspecs import RULE_KEY_TYPES, KeySpec

    out = [list(group) for group in specs]
    for i, group in enumerate(meta.key_groups):
        kept = [KeySpec(k.type_name, k.to_dict()) for k in group if k.type_name not in RULE_KEY_TYPES]
        if not kept:
            continue
        if i >= len(out):
            types = ", ".join(sorted({spec.type_name for spec in kept}))
            raise SopsError(errors.GENERIC, f"key group {i + 1} holds {types} keys, which .sops.yaml cannot name; "
                            "the rule has no such group, and updating would drop them")
        out[i].extend(kept)
    return out


def group_changes(meta: Metadata, specs: list[list[KeySpec]]) -> list[GroupChange]:
    """The per-group differences between the file and ``specs`` (its rule's
    groups with the keys carried over), as the hook judges drift."""
    from .drift import identity_diff, spec_identities

    return [GroupChange(d.index, d.added, d.removed) for d in identity_diff(meta, spec_identities(specs))]


def plan_files(
    targets: Sequence[Target],
    *,
    config: Config,
    store_for: StoreFactory,
    rotate: str = ROTATE_AUTO,
    jobs: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cache: RuleCache | None = None,
    keep_content: bool = True,
) -> list[FilePlan]:
    """Plan every ``(absolute path, display name, explicit, rule or None)`` target, in order.
    ``keep_content=False`` (a dry run: nothing will be applied) plans in worker
    processes and returns the plans without what was read."""
    cache = cache or RuleCache()

    def one(target: Target) -> FilePlan:
        path, display, explicit, rule = target
        return plan_file(path, display, config=config, store_for=store_for, rotate=rotate, explicit=explicit,
                         rule=rule, cache=cache)

    if not keep_content:
        from ..forkpool import forked_map

        return forked_map(lambda target: one(target).without_content(), list(targets), jobs=jobs, progress=progress)
    return run_parallel(one, list(targets), jobs=jobs, progress=progress)


# --- applying ------------------------------------------------------------------


def apply_file(plan: FilePlan, *, decryption_order: list[str] | None = None,
               labels: Labels | None = None) -> FileResult:
    """Carry out one planned update. Any failure leaves the file untouched."""
    return apply_files([plan], decryption_order=decryption_order, labels=labels)[0]


class Failure(NamedTuple):
    """Why one file could not be updated (picklable, unlike a FileResult)."""

    reason: str
    code: int
    detail: str = ""


def build_file(plan: FilePlan, decryption_order: list[str] | None = None,
               labels: Labels | None = None, *, recheck: bool = True) -> bytes | Failure | None:
    """The updated content of one planned file (None: nothing to do). Never raises.
    ``recheck``: read the file again and refuse if it changed since the plan
    (a plan shown for confirmation may be minutes old; one made a moment ago
    in the same pass is not)."""
    if plan.status != STATUS_UPDATE:
        return None
    try:
        return _updated_bytes(plan, decryption_order, labels or {}, recheck)
    except SopsError as exc:
        return Failure(exc.message, exc.code, exc.detail or "")
    except Exception as exc:  # one broken file must not stop the others
        return Failure(f"internal error ({type(exc).__name__})", errors.GENERIC)


def apply_files(plans: Sequence[FilePlan], *, decryption_order: list[str] | None = None,
                labels: Labels | None = None, jobs: int = 0,
                progress: Callable[[int, int], None] | None = None,
                break_hardlinks: bool = False) -> list[FileResult]:
    """Carry out the planned updates, results in input order. Each new file is
    built in memory first; then all are written together
    (``fileio.atomic_write_many``), so a failure or a kill leaves every file
    either untouched or fully updated."""
    def build(plan: FilePlan) -> bytes | Failure | None:
        return build_file(plan, decryption_order, labels)

    if _prepare_plugins(plans):
        # The plugins did their work ahead, once; the results live in this process.
        return write_results(plans, [build(plan) for plan in plans])
    if any(k.type_name != "age" for p in plans if p.metadata for k in p.metadata.all_keys()):
        # PGP, KMS and Vault wait on gpg or the network: threads overlap the waits.
        built = run_parallel(build, list(plans), jobs=jobs, progress=progress)
    else:
        from ..forkpool import forked_map

        pending = any(p.status == STATUS_UPDATE for p in plans)  # then keys are needed anyway
        workers_ok = pending and _age_ready_for_workers(run_key_command=True)
        built = forked_map(build, plans, jobs=jobs if workers_ok else 1, progress=progress)
    return write_results(plans, built, break_hardlinks=break_hardlinks)


def update_files(
    targets: Sequence[Target],
    *,
    config: Config,
    store_for: StoreFactory,
    rotate: str = ROTATE_AUTO,
    decryption_order: list[str] | None = None,
    labels: Labels | None = None,
    jobs: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cache: RuleCache | None = None,
    break_hardlinks: bool = False,
) -> tuple[list[FilePlan], list[FileResult]]:
    """Plan and update in one pass, for when nothing needs confirming (``-y``):
    each file is read and parsed once, in worker processes (``forkpool``).
    Returns the plans (without their parsed content) and the results of the
    files that needed an update, as :func:`plan_files` + :func:`apply_files` would.

    Rules naming PGP, KMS or Vault keys take the two passes instead: their
    wraps wait on gpg or the network, which apply_files overlaps in threads."""
    from ..forkpool import forked_map, job_count

    cache = cache or RuleCache()
    kinds = _rule_key_types(config, cache)
    if kinds - {"age"} or _plugins_in_play(config, cache):
        planned = plan_files(targets, config=config, store_for=store_for, rotate=rotate, jobs=1, cache=cache)
        results = apply_files([p for p in planned if p.status == STATUS_UPDATE], decryption_order=decryption_order,
                              labels=labels, jobs=jobs, progress=progress, break_hardlinks=break_hardlinks)
        return planned, results

    def one(target: Target) -> tuple[FilePlan, bytes | Failure | None]:
        path, display, explicit, rule = target
        plan = plan_file(path, display, config=config, store_for=store_for, rotate=rotate, explicit=explicit,
                         rule=rule, cache=cache)
        return plan.without_content(), build_file(plan, decryption_order, labels, recheck=False)

    workers_ok = "age" not in kinds or _age_ready_for_workers(run_key_command=False)
    items = list(targets)
    warm: dict[int, tuple[FilePlan, bytes | Failure | None]] = {}
    if workers_ok and job_count(jobs, len(items)) > 1:
        # One file of each format first, here: that imports every module a
        # file's update needs (cryptography, the store, hashlib: ~20 ms) once,
        # before the workers fork, instead of again in every worker.
        from ..stores import format_for_path

        firsts: dict[str, int] = {}
        for index, target in enumerate(items):
            firsts.setdefault(format_for_path(str(target[0])), index)
        warm = {index: one(items[index]) for index in firsts.values()}
    rest = [target for index, target in enumerate(items) if index not in warm]
    shifted = None if progress is None else (lambda done, total: progress(done + len(warm), total + len(warm)))
    done = iter(forked_map(one, rest, jobs=jobs if workers_ok else 1, progress=shifted))
    pairs = [warm[index] if index in warm else next(done) for index in range(len(items))]
    plans = [plan for plan, _ in pairs]
    pending = [i for i, plan in enumerate(plans) if plan.status == STATUS_UPDATE]
    return plans, write_results([plans[i] for i in pending], [pairs[i][1] for i in pending],
                                break_hardlinks=break_hardlinks)


def write_results(plans: Sequence[FilePlan], built: Sequence[bytes | Failure | None], *,
                  break_hardlinks: bool = False) -> list[FileResult]:
    """Write every built file (``fileio.atomic_write_many``); one result per plan.
    A file that is no longer what its plan read (another writer changed it),
    or that has other hard links, is left as it is and fails."""
    from ..fileio import atomic_write_many

    results: list[FileResult | None] = []
    writes = []
    for i, (plan, out) in enumerate(zip(plans, built, strict=True)):
        if isinstance(out, Failure):
            results.append(FileResult(plan, ok=False, reason=out.reason, code=out.code, detail=out.detail))
        elif out is None:
            results.append(FileResult(plan, ok=True))
        else:
            results.append(None)
            writes.append((i, plan.path, out))
    outcomes = atomic_write_many([(path, data) for _, path, data in writes],
                                 expect=[plans[i].snapshot for i, _, _ in writes], break_hardlinks=break_hardlinks)
    for (i, _, _), error in zip(writes, outcomes, strict=True):
        plan = plans[i]
        if error is None:
            results[i] = FileResult(plan, ok=True, rotated=plan.rotate)
        else:
            results[i] = FileResult(plan, ok=False, reason=error.message, code=error.code)
    return [r for r in results if r is not None]


def _plugin_recipients(specs: list[list[KeySpec]]) -> list[str]:
    # Only a recipient with a second "1" (age1NAME1...) can be a plugin's:
    # the plugin module (and hmac, subprocess) is imported for those alone.
    candidates = [spec.value for group in specs for spec in group
                  if spec.type_name == "age" and isinstance(spec.value, str) and spec.value.count("1") > 1]
    if not candidates:
        return []
    from ..keys.ageplugin import plugin_name

    return [value for value in candidates if plugin_name(value)]


def _plugin_identities() -> list[PluginIdentity]:
    """The user's plugin identities, from the sources read without running
    anything: a key command runs only when a file needs a key (and is told
    which recipient), so identities it prints are used file by file."""
    from ..keys.age import SOPS_AGE_KEY_CMD, SOPS_AGE_SSH_PRIVATE_KEY_CMD, load_identities

    if os.environ.get(SOPS_AGE_KEY_CMD) is not None or os.environ.get(SOPS_AGE_SSH_PRIVATE_KEY_CMD) is not None:
        return []
    try:
        identities = load_identities().identities
    except Exception:
        return []  # each file reports the problem when it needs a key
    # The identity parser imports the plugin module when it meets a plugin
    # identity: without that module loaded there is none to look for.
    plugins = sys.modules.get("sopsflow.keys.ageplugin")
    if plugins is None:
        return []
    return [i for i in identities if isinstance(i, plugins.PluginIdentity)]


def _plugins_in_play(config: Config, cache: RuleCache) -> bool:
    """Whether age plugins take part (a rule names a plugin recipient, or the
    user holds a plugin identity): then each plugin is started once per run,
    which needs the plan of every file first."""
    for rule in getattr(config, "rules", []):
        try:
            if _plugin_recipients(cache.specs(rule)):
                return True
        except Exception:
            continue
    return bool(_plugin_identities())


def _prepare_plugins(plans: Sequence[FilePlan]) -> bool:
    """Run each age plugin once for all ``plans``: unwrap every file key a
    plugin identity can open, and wrap a fresh file key for every plugin
    recipient that will need one. False (nothing done) without plugins."""
    from ..keys import agefmt
    from ..keys.age import dearmor
    from ..keys.ageplugin import PluginError, plugin_name, prepare_unwraps, prepare_wraps

    pending = [p for p in plans if p.status == STATUS_UPDATE and p.metadata is not None]
    identities = _plugin_identities()
    wraps: dict[str, int] = {}
    for plan in pending:
        assert plan.metadata is not None
        have = {k.identity() for k in plan.metadata.key_groups[0]} if len(plan.metadata.key_groups) == 1 else set()
        for recipient in _plugin_recipients(plan.rule_specs):
            # kept wraps are reused (one group, no rotation): only new ones need the plugin
            if plan.rotate or len(plan.rule_specs) != 1 or recipient not in have:
                wraps[recipient] = wraps.get(recipient, 0) + 1
    if not wraps and not identities:
        return False
    files = []
    for plan in pending:
        assert plan.metadata is not None
        for key in plan.metadata.all_keys():
            if key.type_name == "age" and plugin_name(key.identity()) and key.enc:
                try:
                    files.append(agefmt.parse_header(dearmor(key.enc.encode("utf-8")))[0])
                except ValueError:
                    continue  # the file's own unwrap reports it
    try:
        if identities and files:
            prepare_unwraps(identities, files)
        for recipient, count in wraps.items():
            prepare_wraps(recipient, count)
    except PluginError:
        pass  # every file then meets the same error itself, worded for it
    return True


def _rule_key_types(config: Config, cache: RuleCache) -> set[str]:
    """The key types the creation rules name."""
    kinds: set[str] = set()
    for rule in getattr(config, "rules", []):
        try:
            kinds.update(spec.type_name for group in cache.specs(rule) for spec in group)
        except Exception:
            continue  # a broken rule fails for the files it matches
    return kinds


def _age_ready_for_workers(*, run_key_command: bool) -> bool:
    """Load the age identities before workers fork, so that none reads the key
    files again; False when the files must instead be done in this process:
    a passphrase-protected identity (unlocked on first use) would be asked
    for by every worker at once, and SOPS_AGE_KEY_CMD, which loading runs,
    should run once and - when ``run_key_command`` is False because no file
    may need a key - only if one does. A key command is told which recipient
    is being opened, so its output is cached per recipient in this process:
    loading it ahead for the workers would be of no use."""
    from ..keys.age import SOPS_AGE_KEY_CMD, SOPS_AGE_SSH_PRIVATE_KEY_CMD, load_identities

    if os.environ.get(SOPS_AGE_KEY_CMD) is not None or os.environ.get(SOPS_AGE_SSH_PRIVATE_KEY_CMD) is not None:
        return False
    try:
        return not load_identities().locked
    except Exception:
        return True  # each file reports the problem when it needs a key


def _updated_bytes(plan: FilePlan, decryption_order: list[str] | None, labels: Labels, recheck: bool) -> bytes:
    from ..operations import encrypt_document, new_data_key, wrap_keys

    if plan.metadata is None or plan.branches is None or plan.store is None:
        raise SopsError(errors.GENERIC, "file was not planned")
    current = plan.data
    if recheck:
        try:
            current = plan.path.read_bytes()
        except OSError as exc:
            raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"cannot read file: {exc.strerror}") from None
        if current != plan.data:
            raise SopsError(errors.GENERIC, "file changed after the plan was made; run updatekeys again")
    meta, branches, store = plan.metadata, plan.branches, plan.store
    data_key = unwrap_data_key(meta, decryption_order, labels)
    new_meta = _shallow_copy(meta)  # dataclasses.replace without importing dataclasses
    new_meta.key_groups = fresh_key_groups(plan)
    new_meta.shamir_threshold = plan.threshold_after
    if not plan.rotate:
        # sops updatekeys: the same data key, only the metadata block changes.
        check_data_key(branches, meta, data_key)
        if _keep_wraps(meta, new_meta, data_key):
            from ..keys.groups import wrap_missing

            wrap_missing(data_key, new_meta.key_groups[0])
        else:
            wrap_keys(new_meta, data_key)
        json_style = store.name != "yaml"
        spliced = splice_metadata(store, current, branches, meta.to_dict(json_style=json_style),
                                  new_meta.to_dict(json_style=json_style))
        if spliced is not None:
            return spliced
        return bytes(store.dump_encrypted(branches, new_meta.to_dict(json_style=json_style)))
    from ..cipher import Cipher
    from ..engine import decrypt_branches, verify_mac

    old_cipher = Cipher(data_key)
    plain, computed = decrypt_branches(branches, old_cipher, meta)
    verify_mac(old_cipher, meta, computed)
    new_key = new_data_key()
    new_cipher = Cipher(new_key)
    # Keep every value's IV, as sops rotate does: a fresh key makes reuse safe
    # and the diff shows that only the ciphertexts changed.
    new_cipher.iv_cache = old_cipher.iv_cache
    wrap_keys(new_meta, new_key)
    return bytes(encrypt_document(store, plain, new_meta, new_key, new_cipher))


def _keep_wraps(old: Metadata, new: Metadata, data_key: bytes) -> bool:
    """With one key group before and after, every key the rule keeps still
    wraps the (unchanged) data key: reuse its stored entry, so only the added
    recipients are wrapped and the diff shows just them. sops re-wraps every
    key; the result reads the same. GCP KMS / Azure Key Vault entries, which
    sopsflow cannot wrap again, survive this way too. False (nothing kept)
    with Shamir groups: there the shares are split afresh."""
    from ..keys.opaque import OpaqueKey

    if len(old.key_groups) != 1 or len(new.key_groups) != 1:
        return False
    # A key of a type sopsflow does not know may keep its wrap under another
    # name than "enc": its entry is kept whatever it holds.
    stored = {(k.type_name, k.identity()): k for k in old.key_groups[0] if k.enc or isinstance(k, OpaqueKey)}
    group = new.key_groups[0]
    for i, key in enumerate(group):
        kept = stored.get((key.type_name, key.identity()))
        if kept is None or not _same_entry(kept, key):
            continue
        if isinstance(kept, OpaqueKey):
            kept.wraps = data_key
        group[i] = kept
    return True


def _same_entry(stored: TreeValue, wanted: TreeValue) -> bool:
    """Whether ``stored`` is ``wanted`` with a wrap: equal metadata entries but
    for the wrap and its timestamp (a changed KMS role or profile is not)."""
    from ..keys.opaque import OpaqueKey

    if type(stored) is not type(wanted):
        return False
    if isinstance(wanted, OpaqueKey):
        return True  # same type and identity; its other fields are whatever the file holds
    ignore = ("enc", "created_at")
    have = {k: v for k, v in stored.to_dict().items() if k not in ignore}
    want = {k: v for k, v in wanted.to_dict().items() if k not in ignore}
    return have == want


def splice_metadata(store: Store, data: bytes, branches: Branches, old: RawMetadata,
                    new: RawMetadata) -> bytes | None:
    """``data`` with its metadata block ``old`` replaced by ``new``, every data
    byte kept as it is; None when ``data`` does not end in the block exactly as
    the store writes it (the caller then writes the whole file)."""
    if len(branches) != 1:
        return None  # a YAML stream repeats the block in every document
    was = store.metadata_tail(old)
    head: bytes | None = None
    if data.endswith(was):
        head = data[: len(data) - len(was)]
    elif store.name == "ini":
        # sops writes the [sops] section's lines in random order.
        lines = was.splitlines(keepends=True)
        have = data.splitlines(keepends=True)
        if len(have) >= len(lines) and have[-len(lines)] == lines[0] and sorted(have[-len(lines):]) == sorted(lines):
            head = b"".join(have[: len(have) - len(lines)])
    if head is None or (head and not head.endswith(b"\n")):
        return None
    tail: bytes = store.metadata_tail(new)
    return head + tail


def unwrap_data_key(meta: Metadata, decryption_order: list[str] | None, labels: Labels) -> bytes:
    """The file's data key; on failure a one-line reason naming the recipients
    that could unwrap it and, where ``.sops.yaml`` says so, who holds them."""
    from ..keys.groups import get_data_key

    try:
        return get_data_key(meta, decryption_order)
    except SopsError as exc:
        if exc.code != errors.COULD_NOT_RETRIEVE_KEY:
            raise
        identities = _unique(k.identity() for k in meta.all_keys())
        message = "no identity for any of: " + ", ".join(identities)
        if len(meta.key_groups) > 1:
            message = f"not enough key groups could be unwrapped (threshold {meta.shamir_threshold}); " + message
        names = labels() if callable(labels) else labels
        holders = _unique(names[i] for i in identities if i in names)
        if holders:
            message += "; held by: " + ", ".join(holders)
        raise SopsError(errors.COULD_NOT_RETRIEVE_KEY, message, exc.detail) from None


def check_data_key(branches: Branches, meta: Metadata, data_key: bytes) -> None:
    """Prove the unwrapped key is the file's key before re-wrapping it: AES-GCM
    authenticates, so decrypting the MAC (or one value) fails for a wrong key.
    Without this a bad Shamir share would be re-wrapped and the file lost."""
    from ..cipher import Cipher
    from ..metadata import lastmodified_aad

    cipher = Cipher(data_key)
    if meta.mac:
        try:
            cipher.decrypt(meta.mac, lastmodified_aad(meta.lastmodified))
            return
        except SopsError:
            raise SopsError(
                errors.MAC_MISMATCH, "the data key does not open the MAC (wrong key, or mac/lastmodified altered)"
            ) from None
    for aad, text in _encrypted_values(branches):
        cipher.decrypt(text, aad)
        return


# --- reporting helpers -----------------------------------------------------------


def encrypted_paths(branches: Branches) -> list[str]:
    """Paths of the encrypted values, in sops' ``--extract`` syntax
    (``["data"]["password"]``); later YAML documents are prefixed."""
    out = []
    for number, branch in enumerate(branches):
        prefix = f"document {number + 1}: " if number else ""
        for path in _walk_encrypted(branch, ()):
            out.append(prefix + "".join(f"[{p}]" if isinstance(p, int) else f'["{p}"]' for p in path))
    return _unique(out)


def _walk_encrypted(node: TreeValue, path: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    from ..cipher import is_encrypted_text

    if type(node) is TreeMap:
        for key, value in node.items_():
            yield from _walk_encrypted(value, path + (str(key),))
    elif type(node) is list:
        index = 0
        for item in node:
            if type(item) is Comment or (type(item) is str and item.endswith(",type:comment]")):
                continue
            yield from _walk_encrypted(item, path + (index,))
            index += 1
    elif is_encrypted_text(node):
        yield path


def _encrypted_values(branches: Branches) -> Iterator[tuple[str, str]]:
    """(AAD, ENC text) of every encrypted value (not comments)."""
    from ..cipher import is_encrypted_text

    def walk(node: TreeValue, keys: tuple[str, ...]) -> Iterator[tuple[str, str]]:
        if type(node) is TreeMap:
            for key, value in node.items_():
                yield from walk(value, keys + (str(key),))
        elif type(node) is list:
            for item in node:
                if type(item) is not Comment and not (type(item) is str and item.endswith(",type:comment]")):
                    yield from walk(item, keys)
        elif is_encrypted_text(node):
            yield ":".join(keys) + ":", node

    for branch in branches:
        yield from walk(branch, ())


def exposure_report(plans: Sequence[FilePlan], results: Sequence[FileResult] | None = None) -> dict[str, TreeValue]:
    """Which files and values the removed recipients could read (the --report JSON)."""
    by_path = {id(r.plan): r for r in results or []}
    files: list[dict[str, Any]] = []
    for plan in plans:
        if not plan.removed:
            continue
        result = by_path.get(id(plan))
        if result is None:
            status = "pending"
        else:
            status = "updated" if result.ok else "failed"
        files.append({
            "path": plan.display,
            "removed_recipients": plan.removed,
            "keys": plan.secret_paths,
            "data_key_rotated": bool(result is not None and result.ok and result.rotated),
            "status": status,
            **({"reason": result.reason} if result is not None and not result.ok else {}),
        })
    return {
        "removed_recipients": _unique(r for f in files for r in f["removed_recipients"]),
        "files": files,
        "advice": ADVICE if files else "",
    }


def format_plan(plans: Sequence[FilePlan], *, verbose: bool = False) -> str:
    """The human plan: one block per file that changes or fails."""
    lines = []
    for plan in plans:
        if plan.status == STATUS_UPDATE:
            rule = f"rule {plan.rule_index}" if plan.rule_index is not None else "rule"
            action = "rotate data key" if plan.rotate else "re-wrap data key"
            lines.append(f"{plan.display}  [{rule}]  {action}")
            for change in plan.changes:
                # 1-based, as sops updatekeys and the audit findings number groups
                lines.extend(f"    group {change.index + 1}: +{k}" for k in change.added)
                lines.extend(f"    group {change.index + 1}: -{k}" for k in change.removed)
            if plan.threshold_changes:
                lines.append(f"    shamir_threshold: {plan.threshold_before} -> {plan.threshold_after}")
        elif plan.status == STATUS_ERROR:
            lines.append(f"{plan.display}  ERROR: {plan.reason}")
        elif verbose and plan.status == STATUS_SKIPPED:
            lines.append(f"{plan.display}  skipped: {plan.reason}")
    return "\n".join(lines) + ("\n" if lines else "")


def plan_summary(plans: Sequence[FilePlan]) -> str:
    count = {s: sum(1 for p in plans if p.status == s) for s in (STATUS_UPDATE, STATUS_CURRENT, STATUS_SKIPPED, STATUS_ERROR)}
    rotating = sum(1 for p in plans if p.status == STATUS_UPDATE and p.rotate)
    parts = [f"{count[STATUS_UPDATE]} to update ({rotating} with a new data key)", f"{count[STATUS_CURRENT]} up to date"]
    if count[STATUS_SKIPPED]:
        parts.append(f"{count[STATUS_SKIPPED]} skipped (not SOPS files or no rule)")
    if count[STATUS_ERROR]:
        parts.append(f"{count[STATUS_ERROR]} with errors")
    return "Plan: " + ", ".join(parts) + "\n"


# --- files and temp files ------------------------------------------------------


# --- the updatekeys run -----------------------------------------------------------


@dataclass(frozen=True)
class UpdateRequest:
    """One ``updatekeys`` run: what to update and how (the command's flags)."""

    #: Files or directories; empty: every git-tracked file a creation rule matches.
    paths: Sequence[str] = ()
    #: Update without asking (otherwise the plan is shown and confirmed on a terminal).
    yes: bool = False
    #: Show the plan only; the result is 1 when changes are pending.
    dry_run: bool = False
    rotate: str = ROTATE_AUTO
    #: Where to write the removed-recipient exposure report as JSON.
    report: str | None = None
    jobs: int = 0
    #: The .sops.yaml to use (default: config.locate_config's search).
    config: str | None = None
    indent: int | None = None
    #: ``--decryption-order`` as given (parsed when the keys are needed).
    decryption_order: str | None = None
    verbose: bool = False
    break_hardlinks: bool = False


def update_keys(request: UpdateRequest, out: TextIO | None = None) -> int:
    """Bring the files in line with ``.sops.yaml`` (``sopsflow updatekeys``):
    plan, show, confirm, update, report. Returns the exit code."""
    from ..config.decoder import load_config
    from ..config.discovery import locate_config

    if request.jobs < 0:
        raise SopsError(errors.CONFLICTING_PARAMETERS, "--jobs must be 0 (auto) or more")
    config_file = locate_config(request.config)
    if config_file is None:
        raise SopsError(errors.GENERIC, "config file not found: updatekeys needs a .sops.yaml with creation rules")
    listing = start_git_listing(request.paths)  # git runs while the configuration loads
    config = load_config(config_file)
    if not getattr(config, "rules", None):
        raise SopsError(errors.GENERIC, f"The config file {config_file} does not contain any creation rule")
    cache = RuleCache()
    targets = collect_targets(request.paths, config, cache, listing)
    store_for = _store_factory(request.indent, config)
    out = out or sys.stdout
    verbose = request.verbose
    labels = functools.cache(lambda: _labels(config_file))  # read only to explain a failure
    if request.yes and not request.dry_run:
        return _update_now(request, targets, config, store_for, cache, labels, out)
    progress = Progress("planning") if _interactive_stderr() else None
    # A dry run keeps nothing for later and plans in worker processes; otherwise
    # the plans keep what they read for the update (CPU work: threads would only contend).
    plans = plan_files(targets, config=config, store_for=store_for, rotate=request.rotate,
                               jobs=request.jobs if request.dry_run else 1, progress=progress, cache=cache,
                               keep_content=not request.dry_run)
    if progress:
        progress.close()
    out.write(format_plan(plans, verbose=verbose))
    out.write(plan_summary(plans))
    pending = [p for p in plans if p.status == STATUS_UPDATE]
    plan_errors = [p for p in plans if p.status == STATUS_ERROR]
    if request.dry_run:
        _finish_report(request, plans, None, out)
        return 1 if pending or plan_errors else 0
    if not pending:
        return _nothing_to_do(request, plans, out)
    if not _confirm(len(pending)):
        out.write("No file was changed.\n")
        return 0
    _remove_strays(plans)
    results = _updating(lambda progress: apply_files(
        pending, decryption_order=_decryption_order(request), labels=labels, jobs=request.jobs,
        progress=progress, break_hardlinks=request.break_hardlinks))
    return _report_results(request, plans, results, out)


def _decryption_order(request: UpdateRequest) -> list[str] | None:
    from ..operations import decryption_order

    return decryption_order(request.decryption_order)


#: Every file is written only once all are built, and each write is atomic.
_INTERRUPTED = "\nInterrupted: the files not yet updated are unchanged; run updatekeys again.\n"


def _updating(work: Callable[[Progress | None], _R]) -> _R:
    """Run ``work`` with a progress bar on a terminal; on Ctrl-C say what state the files are in."""
    progress = Progress("updating") if _interactive_stderr() else None
    try:
        result = work(progress)
    except KeyboardInterrupt:
        sys.stderr.write(_INTERRUPTED)
        raise
    if progress:
        progress.close()
    return result


def _update_now(request: UpdateRequest, targets: Sequence[Target], config: Config, store_for: StoreFactory,
                cache: RuleCache, labels: Labels, out: TextIO) -> int:
    """``-y``: plan and build every file in one pass (nothing to confirm), then
    show the plan and write the files."""
    plans, results = _updating(lambda progress: update_files(
        targets, config=config, store_for=store_for, rotate=request.rotate,
        decryption_order=_decryption_order(request), labels=labels, jobs=request.jobs, progress=progress,
        cache=cache, break_hardlinks=request.break_hardlinks))
    out.write(format_plan(plans, verbose=request.verbose))
    out.write(plan_summary(plans))
    if not results:
        return _nothing_to_do(request, plans, out)
    _remove_strays(plans)
    return _report_results(request, plans, results, out)


def _nothing_to_do(request: UpdateRequest, plans: Sequence[FilePlan], out: TextIO) -> int:
    _remove_strays(plans)
    out.write("Nothing to update.\n")
    _finish_report(request, plans, None, out)
    return _exit_code([(p.code, p.reason) for p in plans if p.status == STATUS_ERROR])


def _report_results(request: UpdateRequest, plans: Sequence[FilePlan], results: Sequence[FileResult], out: TextIO) -> int:
    _print_results(results, out, verbose=request.verbose)
    _finish_report(request, plans, results, out)
    failures = [(r.code, r.reason) for r in results if not r.ok]
    failures += [(p.code, p.reason) for p in plans if p.status == STATUS_ERROR]
    return _exit_code(failures)


def _remove_strays(plans: Sequence[FilePlan]) -> None:
    """Temp files a hard kill left next to the SOPS files we own (see updater)."""
    owned = [p.path for p in plans if p.status in (STATUS_UPDATE, STATUS_CURRENT)]
    remove_stray_temp_files(owned)


# --- collecting files ----------------------------------------------------------


def collect_targets(paths: Sequence[str], config: Config, cache: RuleCache | None = None,
                    listing: TrackedListing | None = None) -> list[Target]:
    """``(absolute path, display name, explicit, rule)``, sorted, without duplicates.
    Named files are explicit (problems are errors; rule None: matched later);
    files found in directories or in git are only taken when a creation rule
    matches them."""
    cache = cache or RuleCache()
    found: dict[Path, tuple[Path, str, bool]] = {}
    regular: set[Path] = set()  # known to be regular files (lstat'ed), not links
    if not paths:
        for path, display in _git_tracked_files(listing):
            found.setdefault(path, (path, display, False))
            regular.add(path)
    for raw in paths:
        path = Path(os.path.abspath(raw))
        if path.is_dir() and not path.is_symlink():
            for file in _walk(path):
                found.setdefault(file, (file, _display(file), False))
        elif path.exists() or path.is_symlink():
            # A link and its target named together are one file.
            found[Path(os.path.realpath(path))] = (path, _display(path), True)
        else:
            raise SopsError(errors.NO_FILE_SPECIFIED, f"Error: cannot operate on non-existent file {raw}")
    targets = []
    for path, display, explicit in found.values():
        rule = None
        if not explicit:
            if path.name in _CONFIG_NAMES or is_temp_file(path.name) or (path not in regular and path.is_symlink()):
                continue
            rule = cache.match(config, str(path))
            if rule is None:
                continue
        targets.append((path, display, explicit, rule))
    return sorted(targets, key=lambda t: t[1])


def _git_tracked_files(listing: TrackedListing | None = None) -> list[tuple[Path, str]]:
    from ..git.repo import TrackedListing

    try:
        listing = listing or TrackedListing(Path.cwd())
        names = listing.paths()
    except SopsError as exc:
        raise SopsError(exc.code, f"{exc.message}: name the files or directories to update") from None
    out = []
    root = os.path.abspath(listing.root)
    here = os.getcwd() + os.sep
    for name in names:
        # Strings, not Path operations, for each of many files: git's names
        # are relative and normalised, so joining them to the root needs no
        # further normalisation.
        path = os.path.join(root, name)
        try:
            regular = stat.S_ISREG(os.lstat(path).st_mode)  # one call: a regular file, not a link
        except OSError:
            continue  # tracked but deleted in the work tree
        if regular:
            out.append((Path(path), path[len(here):] if path.startswith(here) else _display(Path(path))))
    return out


def start_git_listing(paths: Sequence[str]) -> TrackedListing | None:
    """Start listing the tracked files when no paths were given (None
    otherwise, or outside a repository: collect_targets then says why)."""
    if paths:
        return None
    from ..git.repo import TrackedListing

    try:
        return TrackedListing(Path.cwd())
    except SopsError:
        return None


def _walk(directory: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in names:
            files.append(Path(root) / name)
    return files


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _store_factory(indent: int | None, config: Config) -> StoreFactory:
    from ..config.decoder import store_for_file
    from ..stores import format_for_path

    stores: dict[str, Store] = {}

    def store_for(path: str) -> Store:
        # One store per format: the store depends on the name's extension only.
        kind = format_for_path(path)
        if kind not in stores:
            stores[kind] = store_for_file(path, None, indent=indent, config=config)
        return stores[kind]

    return store_for


def _labels(config_file: Path) -> dict[str, str]:
    from .recipients import recipient_labels

    try:
        return recipient_labels(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}


# --- interaction ---------------------------------------------------------------


def _interactive_stderr() -> bool:
    return sys.stderr.isatty()


def _confirm(count: int) -> bool:  # only asked without -y
    if not sys.stdin.isatty():
        raise SopsError(
            errors.GENERIC,
            f"refusing to update {count} file(s) without confirmation: stdin is not a terminal "
            "(review the plan, then pass -y)",
        )
    sys.stderr.write(f"Update {count} file(s)? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


class Progress:
    """A one-line progress bar on stderr (only used when stderr is a terminal)."""

    WIDTH = 30

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        filled = self.WIDTH * done // max(total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# --- results -------------------------------------------------------------------


def _print_results(results: Sequence[FileResult], out: TextIO, verbose: bool = False) -> None:
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    rotated = sum(1 for r in ok if r.rotated)
    out.write(f"Updated {len(ok)} file(s) ({rotated} with a new data key)")
    out.write(f"; {len(failed)} failed:\n" if failed else ".\n")
    for r in failed:
        out.write(f"  {r.plan.display}: {r.reason}\n")
        if verbose and r.detail:
            out.write("".join(f"      {line}\n" for line in r.detail.strip("\n").splitlines()))


def _finish_report(request: UpdateRequest, plans: Sequence[FilePlan], results: Sequence[FileResult] | None, out: TextIO) -> None:
    report = exposure_report(plans, results)
    if report["files"]:
        out.write(
            "\nSecrets readable by removed recipients - change them at their source, "
            "git history keeps the old ciphertext:\n"
        )
        for entry in report["files"]:
            rotated = "data key rotated" if entry["data_key_rotated"] else f"data key NOT rotated ({entry['status']})"
            out.write(f"  {entry['path']}  (removed: {', '.join(entry['removed_recipients'])}; {rotated})\n")
            for key in entry["keys"]:
                out.write(f"      {key}\n")
    if request.report:
        import json

        from ..fileio import atomic_write

        atomic_write(request.report, (json.dumps(report, indent=2) + "\n").encode(), mode=0o644)


def _exit_code(failures: Sequence[tuple[int, str]]) -> int:
    """0 when nothing failed; the shared sops exit code when every failure has
    the same one (e.g. 128 when no key was available), else 1."""
    if not failures:
        return 0
    codes = {code or errors.GENERIC for code, _ in failures}
    return codes.pop() if len(codes) == 1 else errors.GENERIC


def is_temp_file(name: str) -> bool:
    from ..fileio import is_temp_file as temp

    return temp(name)


def remove_stray_temp_files(paths: Path | Sequence[Path]) -> list[Path]:
    """Delete the temp files next to each of ``paths`` whose process is gone
    (``fileio.remove_stray_temp_files``)."""
    from ..fileio import remove_stray_temp_files as remove

    return remove([paths] if isinstance(paths, Path) else list(paths))


def file_digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# --- parallel execution ----------------------------------------------------------


def default_jobs() -> int:
    # Threads, used only when PGP/KMS/Vault keys are involved: their calls wait
    # on gpg and sockets, which overlap well (age work goes to forkpool).
    from ..forkpool import cpu_count

    return min(32, cpu_count() * 4)


def run_parallel(
    func: Callable[[_T], _R],
    items: list[_T],
    *,
    jobs: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[_R]:
    """``[func(i) for i in items]`` on a thread pool, results in input order.
    On Ctrl-C, pending items are cancelled and running ones finish (their
    writes are atomic) before the interrupt propagates."""
    total = len(items)
    workers = max(1, min(jobs or default_jobs(), total))
    if workers == 1:
        from ..forkpool import in_order

        return in_order(func, items, progress)
    out: list[Any] = [None] * total
    # Imported here: concurrent.futures pulls in logging, which most runs never need.
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sopsflow-update")
    try:
        futures: dict[Any, int] = {executor.submit(func, item): i for i, item in enumerate(items)}
        pending = set(futures)
        done_count = 0
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                out[futures[future]] = future.result()
                done_count += 1
            if progress:
                progress(done_count, total)
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return out


def _shallow_copy(obj: _T) -> _T:
    """``copy.copy`` of a plain record (an instance ``__dict__``, no slots),
    without importing copy and weakref for it."""
    clone = object.__new__(type(obj))
    clone.__dict__.update(obj.__dict__)
    return clone


def _unique(items: Iterable[_T]) -> list[_T]:
    seen: dict[_T, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
