"""`sopsflow verify`: prove, from git objects alone, that a repository's secrets
are encrypted for the right recipients.

Every tracked file of a revision (or the index, or the work tree) goes through
``audit.audit_file`` - the same judgement the commit hook makes - and the
repository-wide checks only a whole tree allows are added here:

* ``unmatched-sops-file``: a SOPS file no creation rule matches (unless audit
  already said so);
* ``unused-creation-rule``: a rule whose ``path_regex`` matches no tracked file;
* ``invalid-config``: a `.sops.yaml` sops would refuse (fail closed, as in
  the hook: every file under it is refused; :mod:`sopsflow.git.snapshot`);
* ``mac-failure`` / ``mac-unverified`` (``--mac``): the MAC of every SOPS file,
  each data key unwrapped once;
* ``rotation-age``: data keys older than the ``.sopsflow.yaml`` policy allows;
* Flux lint (``flux-*``, ``large-encrypted-file``), on when Flux manifests exist.

The policy (severities, allow-list) is applied last, to every finding alike.

With ``--since REV`` the files changed in the range are judged, and so is every
tracked file whose creation rule a `.sops.yaml` change in the range alters:
adding a recipient to a rule makes the files under it stale without touching them.

Speed: blobs are read with pygit2 (no checkout, no subprocess per file) and
the per-file pass (audit, MAC, rotation) runs in forked worker processes
for large trees (from ``PARALLEL_MIN_FILES`` files, one per CPU; ``jobs``
overrides). Each process unwraps a given data key once.
"""

from __future__ import annotations

import datetime
import posixpath
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SopsError
from ..lazyre import compile_lazy
from .policy import POLICY_FILE, USAGE_ERROR, VerifyPolicy, load_policy, parse_policy

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeAlias, TypeVar

    import yaml

    from ..config.rules import Config, CreationRule
    from ..git.repo import GitFile, IndexRepo, Repo
    from ..git.snapshot import ConfigRef, Snapshot
    from ..tree import TreeValue
    from .check import FileAudit, Finding
    from .coverage import TreeFile
    from .settings import AuditSettings

if TYPE_CHECKING:
    _T = TypeVar("_T")
    #: What identifies a data key: the Shamir threshold and each wrapped copy (key type, ciphertext).
    _DataKeyIdent: TypeAlias = "tuple[int | tuple[str, str], ...]"

#: audit statuses of files that carry SOPS metadata
SOPS_STATUSES = frozenset({"encrypted", "partial"})
FLUX_API_MARK = b".toolkit.fluxcd.io/"
#: Secret keys Flux's kustomize-controller reads for SOPS decryption besides
#: *.agekey (age identities) and *.asc (PGP private keys).
FLUX_SPECIAL_KEYS = frozenset(
    {"sops.vault-token", "sops.aws-kms", "sops.azure-kv", "sops.gcp-kms"}
)
_ENC_PREFIX = "ENC[AES256_GCM,"


@dataclass
class VerifyOptions:
    #: "rev" (a commit's tree), "index" or "worktree"
    source: str = "rev"
    rev: str = "HEAD"
    since: str | None = None
    mac: bool = False
    #: None: lint Flux when Flux manifests are present (or as the policy says)
    flux: bool | None = None
    decryption_order: list[str] | None = None
    policy_file: Path | None = None
    #: reference time for rotation ages (tests pin it)
    now: datetime.datetime | None = None
    #: worker processes for the per-file checks; None = one per CPU for large
    #: trees (env SOPSFLOW_JOBS), 1 = in this process
    jobs: int | None = None


@dataclass
class AuditedFile:
    path: str
    status: str


@dataclass
class VerifyResult:
    root: Path
    target: str
    commit: str | None
    files: list[AuditedFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: str = ""
    seconds: float = 0.0
    #: for a commit: fingerprint of each exposure finding -> "pushed" or
    #: "local" (sopsflow.gitops.exposure); the report words the fix by it
    exposures: dict[str, str] = field(default_factory=dict)
    #: findings an inline marker or the `allow` list of .sopsflow.yaml
    #: suppressed, each with the marker or entry
    suppressed: list[tuple[Finding, str]] = field(default_factory=list)
    #: list them in the report (``--show-suppressed``); they are always counted
    show_suppressed: bool = False

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("error") else 0


# --- entry point -------------------------------------------------------------------


def verify(path: str | Path = ".", options: VerifyOptions | None = None,
           policy: VerifyPolicy | None = None) -> VerifyResult:
    """Verify the repository containing ``path``. Raises SopsError(2) for usage
    and configuration problems (unknown revision, bad policy file)."""
    from ..git.repo import open_repo

    options = options or VerifyOptions()
    started = time.monotonic()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        repo = open_repo(path)
    except SopsError as exc:
        raise SopsError(USAGE_ERROR, exc.message) from None
    root = Path(repo.root)
    snapshot, target, commit = _collect(repo, options)
    scope = _scope(repo, snapshot, options)
    run = _Run(snapshot, scope, options)
    if policy is None:
        policy = run.load_policy()
    run.policy = policy
    settings = run.load_settings()
    run.check_files(settings)
    run.check_secret_generators(settings)
    run.check_unmatched()
    run.check_unused_rules()
    flux = options.flux if options.flux is not None else policy.flux
    run.lint_flux(flux)
    run.check_clusters()
    result = VerifyResult(root=root, target=target, commit=commit, started=stamp)
    result.files = [AuditedFile(o.path, o.status) for o in run.outcomes]
    result.findings = run.finish()
    result.checks = run.checks
    result.notes = run.notes
    result.suppressed = list(run.suppressed)
    if commit is not None:
        result.exposures = _exposures(repo, commit, result.findings, run, settings)
    result.seconds = time.monotonic() - started
    return result


def _exposures(repo: Repo | IndexRepo, commit: str, findings: list[Finding], run: _Run,
               settings: AuditSettings) -> dict[str, str]:
    """Which exposed secrets of the verified commit were pushed (the fix then
    says to rotate them) and which are in local commits only."""
    from .check import audit_governed
    from .exposure import EXPOSURE_KINDS, classify

    def judge(path: str, data: bytes) -> set[str]:
        audit = audit_governed(path, data, run.snapshot.data_config_for(path), settings=settings,
                               repo_root=run.root)
        return {f.fingerprint for f in audit.findings if f.kind in EXPOSURE_KINDS}

    return classify(repo, commit, findings, judge)


def _git_call(what: str, call: Callable[..., _T], *args: object) -> _T:
    """Run a gitrepo call; its failures (unknown revision...) are usage errors."""
    try:
        return call(*args)
    except SopsError as exc:
        raise SopsError(USAGE_ERROR, exc.message) from None
    except (KeyError, ValueError) as exc:
        raise SopsError(USAGE_ERROR, f"cannot read {what}: {exc}") from None


def _collect(repo: Repo, options: VerifyOptions) -> tuple[Snapshot, str, str | None]:
    from ..git.snapshot import Snapshot

    if options.source == "index":
        snapshot, what = Snapshot.index(repo), "the index"
    elif options.source == "worktree":
        snapshot, what = Snapshot.worktree(repo), "the work tree"
    else:
        snapshot, what = Snapshot.at(repo, options.rev), f"revision {options.rev!r}"
    _git_call(what, snapshot.files)  # listed here, so that a bad revision is a usage error
    if snapshot.rev is None:
        return snapshot, snapshot.kind, None
    return snapshot, snapshot.rev, repo.commit_id(snapshot.rev)


def _scope(repo: Repo, snapshot: Snapshot, options: VerifyOptions) -> set[str] | None:
    """Paths to audit: None for all, else the ones changed since ``options.since``
    (up to the verified revision; for the index and work tree, up to HEAD plus
    what is staged), and the files whose creation rule a `.sops.yaml` change
    in that range alters (they may be stale though unchanged themselves)."""
    from ..git.snapshot import Snapshot, changed_configs, rule_changes

    since = options.since
    if since is None:
        return None
    what = f"revision {since!r}"
    if options.source == "rev":
        if options.rev == "HEAD":
            changed = set(_git_call(what, repo.changed_since, since))
        else:
            changed = {f.path for f in _git_call(what, repo.changed_between, since, options.rev)}
            changed.update(_git_call(what, repo.deleted_between, since, options.rev))
    else:
        changed = set(_git_call(what, repo.changed_since, since))
        changed.update(f.path for f in _git_call("the index", repo.staged_changes))
    old = Snapshot.at(repo, since)
    configs = _git_call(what, changed_configs, old, snapshot, changed)
    changed.update(f.path for f in _git_call(what, rule_changes, old, snapshot, configs))
    return changed


# --- one run -------------------------------------------------------------------------


class _Run:
    """State shared by the checks of one verify run."""

    def __init__(self, snapshot: Snapshot, scope: set[str] | None, options: VerifyOptions) -> None:
        self.snapshot = snapshot
        self.root = Path(snapshot.root)
        self.files = sorted(snapshot.files(), key=lambda f: f.path)
        self.by_path = {f.path: f for f in self.files}
        self.scope = scope
        self.policy = VerifyPolicy()
        self.options = options
        self.outcomes: list[_Outcome] = []
        self.findings: list[Finding] = []
        #: finding -> paths (or directory prefixes ending in "/") whose change
        #: makes it relevant under --since
        self.related: dict[int, set[str]] = {}
        self.checks: list[str] = ["audit"]
        self.notes: list[str] = []
        self.suppressed: list[tuple[Finding, str]] = []

    # helpers

    def add(self, kind: str, path: str, message: str, severity: str, line: int | None = None,
            fix: str | None = None, related: Iterable[str] = (), anchor: str | None = None) -> None:
        from .check import Finding, fingerprint

        # The anchor tells apart several findings of one kind in one file
        # without using line numbers, which move with unrelated edits.
        anchor = anchor if anchor is not None else ""
        finding = Finding(kind, path, message, severity, line, fix, fingerprint(kind, path, anchor))
        self.findings.append(finding)
        self.related[id(finding)] = {path, *related}

    def in_scope(self, path: str) -> bool:
        return self.scope is None or path in self.scope

    def sops_outcomes(self) -> list[_Outcome]:
        return [o for o in self.outcomes if o.sops]

    def tree_file(self, rel: str) -> bytes | None:
        """A file of the verified tree; an untracked one from disk for the
        index and work tree (as the hook reads it)."""
        found = self.by_path.get(rel)
        if found is not None:
            return None if found.is_symlink else bytes(found.data)
        if self.options.source == "rev":
            return None
        try:
            disk = self.root / rel
            return disk.read_bytes() if disk.is_file() else None
        except OSError:
            return None

    # .sopsflow.yaml

    def load_policy(self) -> VerifyPolicy:
        if self.options.policy_file is not None:
            return load_policy(self.root, self.options.policy_file)
        data = self.tree_file(POLICY_FILE)
        return parse_policy(data, POLICY_FILE) if data is not None else VerifyPolicy()

    def load_settings(self) -> AuditSettings:
        from .settings import AuditSettings, parse_settings

        data = self.tree_file(POLICY_FILE)
        if data is None:
            return AuditSettings()
        try:
            return parse_settings(data, POLICY_FILE)
        except SopsError as exc:
            raise SopsError(USAGE_ERROR, exc.message) from None

    # .sops.yaml: the nearest one above each file, resolved by the snapshot as for the hook

    def config_path_for(self, rel: str) -> str | None:
        return self.snapshot.config_for(rel).path

    def config_for(self, rel: str) -> Config | None:
        """The rules that judge files under ``rel``'s directory (what still
        loads of a broken config)."""
        return self.snapshot.config_for(rel).rules

    def match(self, path: str) -> CreationRule | None:
        config = self.config_for(path)
        if config is None:
            return None
        try:
            return config.match(str(self.root / path))
        except SopsError:
            return None

    # the per-file pass: audit, then --mac and the rotation policy

    def check_files(self, settings: AuditSettings) -> None:
        if self.options.mac:
            self.checks.append("mac")
        if self.policy.rotation:
            self.checks.append("rotation")
        todo = [f for f in self.files if self.in_scope(f.path)]
        # Configs are loaded here, before any worker starts, so that the
        # workers inherit them parsed.
        configs = [self.snapshot.data_config_for(f.path) for f in todo]
        context = _Context(self.root, settings, self.policy, self.options)
        self.outcomes = _map_files(todo, configs, context, _jobs(self.options.jobs, len(todo)))
        from .check import INLINE_REASON

        unverified = 0
        for outcome in self.outcomes:
            self.suppressed.extend(outcome.suppressed)
            unverified += outcome.mac_unverified
            for finding in outcome.findings:
                self.findings.append(finding)
                # a finding named by another path (a broken config) concerns this file too
                self.related[id(finding)] = {finding.path, outcome.path}
        inline = sum(1 for _f, why in self.suppressed if why.startswith(INLINE_REASON))
        allowed = len(self.suppressed) - inline
        if allowed:
            self.notes.append(f"{allowed} finding(s) allowed by the `allow` list of .sopsflow.yaml")
        if inline:
            self.notes.append(f"{inline} finding(s) suppressed inline (sopsflow:allow, pragma: allowlist secret, "
                              "gitleaks:allow)")
        if unverified:
            self.notes.append(f"{unverified} file(s) not MAC-checked: no available key could decrypt the data key")

    def check_secret_generators(self, settings: AuditSettings) -> None:
        """Files and literals a kustomize secretGenerator turns into a Secret
        must not be plaintext (a SOPS file there is decrypted by Flux)."""
        from .check import INLINE_REASON
        from .flux import file_state, generator_findings, is_kustomization

        kustomizations = [(f.path, bytes(f.data)) for f in self.files if is_kustomization(f.path) and not f.is_symlink]
        if not kustomizations:
            return
        outcomes = {o.path: o for o in self.outcomes}

        def state(path: str) -> str | None:
            f = self.by_path.get(path)
            if f is None or f.is_symlink:
                return None
            outcome = outcomes.get(path)
            if outcome is None:  # outside the --since scope: judged by its looks
                sops = _looks_sops(f) or b"sops_mac=" in f.data
            elif any(g.severity == "error" for g in outcome.findings):
                return "reported"
            else:
                sops = outcome.sops
            return file_state(bytes(f.data), sops)

        for finding, kustomization, marker in generator_findings(kustomizations, state):
            pattern = settings.allows_path(finding.path)
            if marker is not None or pattern is not None or settings.allows_fingerprint(finding.fingerprint):
                why = (f"{INLINE_REASON} `{marker}`" if marker is not None else f"path {pattern}"
                       if pattern is not None else f"fingerprint {finding.fingerprint}")
                if self.relevant({finding.path, kustomization}):
                    self.suppressed.append((finding, why))
                continue
            self.findings.append(finding)
            self.related[id(finding)] = {finding.path, kustomization}

    def check_unmatched(self) -> None:
        reported = {(f.kind, f.path) for f in self.findings}
        for outcome in self.sops_outcomes():
            if not outcome.unmatched or ("unmatched-sops-file", outcome.path) in reported:
                continue
            if self.match(outcome.path) is not None:
                continue
            self.add("unmatched-sops-file", outcome.path,
                     "SOPS file that no creation rule of .sops.yaml matches",
                     "warning", fix=f"sopsflow rules {outcome.path}")

    def check_unused_rules(self) -> None:
        """Rules whose path_regex matches none of the files the config governs."""
        from .check import is_config_file

        governed: dict[str, list[str]] = {}
        for rel in self.by_path:
            if is_config_file(rel):  # never subject to a rule themselves
                continue
            config_rel = self.config_path_for(rel)
            if config_rel is not None:
                governed.setdefault(config_rel, []).append(rel)
        for config_rel in sorted({c for c in map(self.config_path_for, self.by_path) if c is not None}):
            config = self.config_for(config_rel)
            if config is None or not config.rules:
                continue
            if "rules" not in self.checks:
                self.checks.append("rules")
            prefix = str(self.root).rstrip("/") + "/"
            paths = [config.relative_path(prefix + p) for p in governed.get(config_rel, [])]
            lines = _rule_lines(self.tree_file(config_rel) or b"")
            for rule in config.rules:
                try:
                    used = any(rule.matches(p) for p in paths)
                except SopsError:
                    continue  # an uncompilable regex is reported as invalid-config
                if used:
                    continue
                regex = rule.path_regex or "(any file)"
                self.add("unused-creation-rule", config_rel,
                         f"creation_rules[{rule.index}] (path_regex {regex}) matches no tracked file",
                         "warning", lines.get(rule.index), anchor=f"rule{rule.index}:{rule.path_regex}",
                         fix=f"remove the rule from {config_rel} or fix its path_regex")

    # Flux

    def lint_flux(self, mode: bool | None) -> None:
        manifests = _FluxManifests(self.files)
        if mode is False or (mode is None and not manifests.present()):
            return
        self.checks.append("flux")
        sops_outcomes = self.sops_outcomes()
        for audit in sops_outcomes:
            data = self.by_path[audit.path].data
            if len(data) > self.policy.large_file_bytes:
                self.add("large-encrypted-file", audit.path,
                         f"encrypted file is {len(data) / 1048576:.1f} MiB; Flux refuses to decrypt files over "
                         f"{self.policy.large_file_bytes / 1048576:g} MiB",
                         "warning", fix="split the file into smaller ones")
            if audit.store_name in ("yaml", "json"):
                for doc_index, line, message in _secret_metadata_problems(data, audit.store_name):
                    self.add("flux-secret-metadata-encrypted", audit.path, message, "error", line,
                             anchor=f"doc{doc_index}",
                             fix=f"sopsflow decrypt -i {audit.path} && sopsflow encrypt -i "
                                 f"--encrypted-regex '^(data|stringData)$' {audit.path}")
        sops_paths = [o.path for o in sops_outcomes] + [
            f.path for f in self.files if not self.in_scope(f.path) and _looks_sops(f)
        ]
        self._lint_kustomizations(manifests, sorted(set(sops_paths)))

    def _lint_kustomizations(self, manifests: _FluxManifests, sops_paths: list[str]) -> None:
        from .flux import decryption_disabled

        # Objects annotated kustomize.toolkit.fluxcd.io/decrypt: Disabled are
        # applied as they are: they need no decryption.
        sops_paths = [p for p in sops_paths if not decryption_disabled(self.by_path[p].data)]
        for ks in manifests.kustomizations():
            covered = [p for p in sops_paths if _under(p, ks.directory)]
            if covered and ks.provider != "sops":
                shown = ", ".join(covered[:3]) + (f" and {len(covered) - 3} more" if len(covered) > 3 else "")
                if ks.provider is None:
                    what = "has no spec.decryption"
                elif not ks.provider:
                    what = "its spec.decryption names no provider"
                else:
                    what = f"its spec.decryption uses provider {ks.provider!r}"
                self.add("flux-missing-decryption", ks.path,
                         f"Flux Kustomization {ks.name!r} applies {ks.spec_path or './'}, which holds "
                         f"{len(covered)} SOPS file(s) ({shown}), but {what}",
                         "error", ks.line, fix="add spec.decryption: {provider: sops, secretRef: {name: sops-age}}",
                         related=covered, anchor=ks.name)
            if ks.secret_name:
                for secret in manifests.secrets(ks.secret_name, ks.namespace):
                    for key, line in secret.bad_keys():
                        self.add("flux-decryption-key-name", secret.path,
                                 f"key {key!r} of decryption Secret {ks.secret_name!r} is ignored by Flux: "
                                 "age keys must end in .agekey, PGP keys in .asc",
                                 "error", line, related=[ks.path], anchor=key)

    # `clusters:` of .sopsflow.yaml and the plans in .sopsflow/rotations/

    def check_clusters(self) -> None:
        from ..config.discovery import CONFIG_FILE_NAME
        from .coverage import check_tree

        configs = [(rel, self.config_for(rel), self.tree_file(rel) or b"") for rel in self.by_path
                   if posixpath.basename(rel) == CONFIG_FILE_NAME]
        problems, checks, notes = check_tree(self.tree_file(POLICY_FILE), self.files, configs, POLICY_FILE,
                                      rule_of=self.match)
        self.checks.extend(checks)
        self.notes.extend(notes)
        for p in problems:
            self.add(p.kind, p.path, p.message, p.severity, p.line, fix=p.fix, related=p.related, anchor=p.anchor)

    # policy and order

    def relevant(self, related: set[str]) -> bool:
        """Under --since: whether a finding involves a changed path (entries
        ending in "/" or empty are directory prefixes)."""
        scope = self.scope
        if scope is None or related & scope:
            return True
        prefixes = [p for p in related if p == "" or p.endswith("/")]
        return any(path.startswith(prefix) for prefix in prefixes for path in scope)

    def finish(self) -> list[Finding]:
        out = []
        seen: set[tuple[str, str, int | None, str]] = set()
        suppressed = 0
        for f in self.findings:
            if not self.relevant(self.related.get(id(f), {f.path})):
                continue
            ident = (f.kind, f.path, f.line, f.message)
            if ident in seen:
                continue
            seen.add(ident)
            if self.policy.allowed(f.kind, f.path):
                suppressed += 1
                continue
            severity = self.policy.severity_for(f.kind, f.severity)
            if severity is None:
                continue
            out.append(f if severity == f.severity else f._replace(severity=severity))
        if suppressed:
            self.notes.append(f"{suppressed} finding(s) suppressed by `verify.allow` in .sopsflow.yaml")
        out.sort(key=lambda f: (f.path, f.line or 0, f.kind, f.message))
        return out


# --- the per-file pass ------------------------------------------------------------------

#: Below this many files the worker processes cost more than they save.
PARALLEL_MIN_FILES = 400


@dataclass
class _Context:
    """What every per-file check needs; workers inherit it through fork."""

    root: Path
    settings: AuditSettings
    policy: VerifyPolicy
    options: VerifyOptions


@dataclass
class _Outcome:
    """One file's result, small and picklable (workers send it back)."""

    path: str
    status: str
    store_name: str
    findings: list[Finding]
    #: what the allow list or an inline marker suppressed, with the reason
    suppressed: list[tuple[Finding, str]] = field(default_factory=list)
    #: carries SOPS metadata
    sops: bool = False
    #: a SOPS file the audit found no creation rule for
    unmatched: bool = False
    mac_unverified: bool = False


class _Blob:
    """A file's bytes read in the parent, so workers never touch libgit2."""

    __slots__ = ("path", "data", "is_symlink")

    def __init__(self, path: str, data: bytes, is_symlink: bool) -> None:
        self.path = path
        self.data = data
        self.is_symlink = is_symlink


def _finding(kind: str, path: str, message: str, severity: str, line: int | None = None,
             fix: str | None = None, anchor: str = "") -> Finding:
    from .check import Finding, fingerprint

    return Finding(kind, path, message, severity, line, fix, fingerprint(kind, path, anchor))


def _check_file(f: TreeFile, governing: ConfigRef, context: _Context,
                unwrapped: dict[_DataKeyIdent, bytes | SopsError]) -> _Outcome:
    from .check import audit_governed

    audit = audit_governed(f.path, f.data, governing, settings=context.settings, is_symlink=f.is_symlink,
                           repo_root=context.root)
    outcome = _Outcome(audit.path, audit.status, audit.store_name, list(audit.findings), list(audit.allowed))
    meta = audit.metadata
    if audit.status not in SOPS_STATUSES or meta is None:
        return outcome
    outcome.sops = True
    outcome.unmatched = audit.rule is None
    if context.options.mac:
        problem = _check_mac(audit, f.data, unwrapped, context.options.decryption_order)
        if problem is not None:
            kind, message = problem
            if kind == "mac-unverified":
                outcome.mac_unverified = True
                outcome.findings.append(_finding(kind, audit.path, message, "warning",
                                                 fix="give the verify job a key that can decrypt this file"))
            else:
                outcome.findings.append(_finding(kind, audit.path, message, "error",
                                                 fix="restore the file or re-encrypt it from trusted plaintext"))
    rotation = _rotation_finding(audit, f.data, context)
    if rotation is not None:
        outcome.findings.append(rotation)
    return outcome


def _rotation_finding(audit: FileAudit, data: bytes, context: _Context) -> Finding | None:
    rule = context.policy.rotation_rule(audit.path)
    if rule is None or audit.metadata is None:
        return None
    stamp = parse_rfc3339(audit.metadata.lastmodified)
    if stamp is None:
        return None
    now = context.options.now or datetime.datetime.now(datetime.timezone.utc)
    age_days = (now - stamp).total_seconds() / 86400
    if age_days <= rule.max_age_days:
        return None
    return _finding("rotation-age", audit.path,
                    f"data key last changed {audit.metadata.lastmodified} ({int(age_days)} days ago); "
                    f"policy allows {_days(rule.max_age_days)} days",
                    rule.severity, _sops_line(data, audit.store_name, "lastmodified"),
                    fix=f"sopsflow rotate -i {audit.path}")


def _check_mac(audit: FileAudit, data: bytes, unwrapped: dict[_DataKeyIdent, bytes | SopsError],
               order: list[str] | None) -> tuple[str, str] | None:
    """None when the MAC verifies, else (kind, message)."""
    from ..keys.groups import get_data_key
    from ..operations import decrypt_document
    from ..stores import store_by_name

    meta = audit.metadata
    assert meta is not None
    # The wrapped data keys identify the data key: copies of one file (or
    # files re-wrapped together) are unwrapped once.
    ident: _DataKeyIdent = (meta.shamir_threshold, *((k.type_name, k.enc) for k in meta.all_keys()))
    key = unwrapped.get(ident)
    if key is None:
        try:
            key = get_data_key(meta, order)
        except SopsError as exc:
            key = exc
        unwrapped[ident] = key
    if isinstance(key, SopsError):
        return "mac-unverified", "MAC not checked: no available key could decrypt the data key"
    try:
        decrypt_document(store_by_name(audit.store_name), data, data_key=key)
    except SopsError as exc:
        return "mac-failure", f"integrity check failed: {exc.message}"
    return None


def _jobs(requested: int | None, count: int) -> int:
    from ..forkpool import job_count

    # A worker pays off from about a hundred files (each is cheap to audit).
    return job_count(requested, count, per_job=100)


_SHARED: tuple[list[_Blob], list[ConfigRef], _Context] | None = None


def _map_files(files: list[GitFile], configs: list[ConfigRef], context: _Context, jobs: int) -> list[_Outcome]:
    if jobs <= 1:
        unwrapped: dict[_DataKeyIdent, bytes | SopsError] = {}
        return [_check_file(f, c, context, unwrapped) for f, c in zip(files, configs, strict=True)]
    from ..forkpool import forked_map

    global _SHARED
    # Check files here until the first SOPS file: that imports, in this
    # process, every module a file needs (and loads the identities for --mac),
    # so the workers inherit them instead of each importing them again.
    unwrapped_here: dict[_DataKeyIdent, bytes | SopsError] = {}
    head: list[_Outcome] = []
    while len(head) < min(len(files), 200):
        head.append(_check_file(files[len(head)], configs[len(head)], context, unwrapped_here))
        if head[-1].sops:
            break
    files, configs = files[len(head):], configs[len(head):]
    blobs = [_Blob(f.path, bytes(f.data), f.is_symlink) for f in files]
    # Chunks several times smaller than a worker's share keep the workers
    # busy until the end without paying per-file messaging.
    size = max(1, -(-len(blobs) // (jobs * 4)))
    chunks = [(i, min(i + size, len(blobs))) for i in range(0, len(blobs), size)]
    _SHARED = (blobs, configs, context)
    try:
        results = forked_map(_work, chunks, jobs=jobs, per_job=1)
    finally:
        _SHARED = None
    outcomes = head
    for (start, end), result in zip(chunks, results, strict=True):
        if isinstance(result, list):
            outcomes.extend(result)
        else:
            # A worker failed (its exception may not even pickle): redo the
            # chunk here so the real error, if any, surfaces normally.
            outcomes.extend(_check_file(blobs[i], configs[i], context, unwrapped_here) for i in range(start, end))
    return outcomes


def _work(chunk: tuple[int, int]) -> list[_Outcome] | str:
    shared = _SHARED
    assert shared is not None
    blobs, configs, context = shared
    unwrapped: dict[_DataKeyIdent, bytes | SopsError] = {}
    try:
        return [_check_file(blobs[i], configs[i], context, unwrapped) for i in range(*chunk)]
    except Exception as exc:  # reported by redoing the chunk in the parent
        return f"{type(exc).__name__}: {exc}"


# --- small parsers -----------------------------------------------------------------------

_RFC3339 = compile_lazy(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def parse_rfc3339(text: str) -> datetime.datetime | None:
    m = _RFC3339.match(text or "")
    if not m:
        return None
    y, mo, d, h, mi, s, z, sign, oh, om = m.groups()
    offset = datetime.timedelta(0)
    if not z:
        offset = datetime.timedelta(hours=int(oh), minutes=int(om)) * (1 if sign == "+" else -1)
    try:
        return datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                                 tzinfo=datetime.timezone(offset))
    except ValueError:
        return None


def _days(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _load_nodes(data: bytes) -> list[yaml.Node]:
    """YAML documents as PyYAML node trees (line numbers kept); [] when the
    data is not YAML."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return [n for n in yaml.compose_all(data, Loader=loader) if n is not None]
    except (yaml.YAMLError, UnicodeDecodeError, ValueError):
        return []


def _node_to_python(node: yaml.Node) -> TreeValue:
    import yaml

    if isinstance(node, yaml.MappingNode):
        out: dict[TreeValue, TreeValue] = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                out.setdefault(k.value, _node_to_python(v))
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node_to_python(v) for v in node.value]
    return node.value


def _child(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """(key node, value node) of ``key`` in a mapping node."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _rule_lines(config_data: bytes) -> dict[int, int]:
    """creation_rules index -> 1-based line of that entry in `.sops.yaml`."""
    docs = _load_nodes(config_data)
    rules = _child(docs[0], "creation_rules") if docs else None
    if rules is None or not hasattr(rules[1], "value") or not isinstance(rules[1].value, list):
        return {}
    return {i: item.start_mark.line + 1 for i, item in enumerate(rules[1].value)}


def _sops_line(data: bytes, store_name: str, field_name: str) -> int | None:
    """Line of a metadata field, found textually (YAML and JSON only)."""
    if store_name not in ("yaml", "json"):
        return None
    needle = (f'"{field_name}":' if store_name == "json" else f"{field_name}:").encode()
    at = data.find(needle)
    return data.count(b"\n", 0, at) + 1 if at != -1 else None


def _is_enc(value: TreeValue) -> bool:
    return isinstance(value, str) and value.startswith(_ENC_PREFIX)


def _secret_metadata_problems(data: bytes, store_name: str) -> list[tuple[int, int | None, str]]:
    """Kubernetes objects in an encrypted file whose apiVersion, kind or
    metadata were encrypted: Flux (and kubectl) cannot read them."""
    problems: list[tuple[int, int | None, str]] = []
    if store_name == "json":
        import json

        try:
            doc = json.loads(data)
        except ValueError:
            return []
        if isinstance(doc, dict):
            problem = _k8s_problem(doc)
            if problem:
                problems.append((0, None, problem))
        return problems
    for index, node in enumerate(_load_nodes(data)):
        doc = _node_to_python(node)
        if not isinstance(doc, dict) or "sops" in doc and len(doc) == 1:
            continue
        problem = _k8s_problem(doc)
        if problem:
            first = None
            for key in ("apiVersion", "kind", "metadata"):
                child = _child(node, key)
                if child is not None:
                    first = child[0].start_mark.line + 1
                    break
            problems.append((index, first, problem))
    return problems


def _k8s_problem(doc: dict[TreeValue, TreeValue]) -> str | None:
    if not ("kind" in doc and "apiVersion" in doc):
        return None
    kind = doc.get("kind")
    if not _is_enc(kind) and kind != "Secret":
        return None
    encrypted = [k for k in ("apiVersion", "kind") if _is_enc(doc.get(k))]
    if _has_enc(doc.get("metadata")):
        encrypted.append("metadata")
    if not encrypted:
        return None
    what = "Kubernetes Secret" if kind == "Secret" else "Kubernetes object"
    return (
        f"{what} with encrypted {', '.join(encrypted)}: Flux cannot read or apply it; "
        "encrypt only data and stringData (encrypted_regex: ^(data|stringData)$)"
    )


def _has_enc(node: TreeValue) -> bool:
    if isinstance(node, dict):
        return any(_has_enc(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_enc(v) for v in node)
    return _is_enc(node)


def _looks_sops(f: GitFile) -> bool:
    """Cheap test for files outside the --since scope (not audited)."""
    if f.is_symlink:
        return False
    data = f.data
    return b"ENC[AES256_GCM," in data and (b"sops" in data)


def _under(path: str, directory: str) -> bool:
    return directory in ("", ".") or path.startswith(directory.rstrip("/") + "/")


# --- Flux manifests ------------------------------------------------------------------------


@dataclass
class _Kustomization:
    path: str
    line: int | None
    name: str
    namespace: str | None
    spec_path: str
    directory: str
    provider: str | None
    secret_name: str | None


@dataclass
class _Secret:
    path: str
    name: str
    namespace: str | None
    keys: list[tuple[str, int]]

    def bad_keys(self) -> list[tuple[str, int]]:
        return [(k, line) for k, line in self.keys if not _flux_key_ok(k)]


def _flux_key_ok(key: str) -> bool:
    return key.endswith((".agekey", ".asc")) or key in FLUX_SPECIAL_KEYS


class _FluxManifests:
    """The Flux objects and Secrets of a tree, parsed on demand."""

    def __init__(self, files: Sequence[TreeFile]) -> None:
        self._yaml = [f for f in files if not f.is_symlink and f.path.endswith((".yaml", ".yml"))]
        self._flux: list[tuple[str, TreeValue]] | None = None

    def _flux_docs(self) -> list[tuple[str, TreeValue]]:
        if self._flux is None:
            self._flux = []
            for f in self._yaml:
                data = f.data
                if FLUX_API_MARK not in data:
                    continue
                for node in _load_nodes(data):
                    api = _child(node, "apiVersion")
                    if api is not None and isinstance(api[1].value, str) and ".toolkit.fluxcd.io/" in api[1].value:
                        self._flux.append((f.path, node))
        return self._flux

    def present(self) -> bool:
        return bool(self._flux_docs())

    def kustomizations(self) -> list[_Kustomization]:
        out = []
        for path, node in self._flux_docs():
            doc = _node_to_python(node)
            if not str(doc.get("apiVersion", "")).startswith("kustomize.toolkit.fluxcd.io/"):
                continue
            if doc.get("kind") != "Kustomization":
                continue
            meta = _mapping(doc.get("metadata"))
            spec = _mapping(doc.get("spec"))
            spec_path = str(spec.get("path") or "")
            decryption = spec.get("decryption")
            provider = secret = None
            if isinstance(decryption, dict):
                provider = str(decryption.get("provider") or "")
                ref = decryption.get("secretRef")
                if isinstance(ref, dict) and ref.get("name"):
                    secret = str(ref["name"])
            kind_node = _child(node, "kind")
            out.append(_Kustomization(
                path=path,
                line=kind_node[0].start_mark.line + 1 if kind_node else None,
                name=str(meta.get("name", "")),
                namespace=str(meta["namespace"]) if meta.get("namespace") else None,
                spec_path=spec_path,
                directory=_normalise_dir(spec_path),
                provider=provider,
                secret_name=secret,
            ))
        return out

    def secrets(self, name: str, namespace: str | None) -> list[_Secret]:
        """Secret manifests named ``name`` (same namespace preferred)."""
        needle = name.encode()
        found: list[_Secret] = []
        for f in self._yaml:
            data = f.data
            if needle not in data or b"Secret" not in data:
                continue
            for node in _load_nodes(data):
                secret = _as_secret(f.path, node)
                if secret is not None and secret.name == name:
                    found.append(secret)
        same = [s for s in found if namespace and s.namespace == namespace]
        return same or found


def _as_secret(path: str, node: TreeValue) -> _Secret | None:
    doc = _node_to_python(node)
    if not isinstance(doc, dict) or doc.get("kind") != "Secret":
        return None
    meta = _mapping(doc.get("metadata"))
    keys: list[tuple[str, int]] = []
    for section in ("data", "stringData"):
        child = _child(node, section)
        if child is None or not hasattr(child[1], "value") or not isinstance(child[1].value, list):
            continue
        for k, _v in child[1].value:
            if hasattr(k, "value") and isinstance(k.value, str):
                keys.append((k.value, k.start_mark.line + 1))
    return _Secret(path, str(meta.get("name", "")),
                   str(meta["namespace"]) if meta.get("namespace") else None, keys)


def _mapping(value: TreeValue) -> dict[TreeValue, TreeValue]:
    return value if isinstance(value, dict) else {}


def _normalise_dir(spec_path: str) -> str:
    """A Kustomization's spec.path as a repo-relative directory ("" = root)."""
    text = spec_path.strip().lstrip("/")
    cleaned = posixpath.normpath(text) if text else "."
    return "" if cleaned in (".", "") else cleaned
