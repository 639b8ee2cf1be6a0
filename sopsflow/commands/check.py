"""``sopsflow check [--strict] [--all-files] [FILES...]``: refuse commits that
would put a plaintext secret into history.

What is judged is what git will commit: each file's *staged* blob, read with
pygit2 (``GIT_INDEX_FILE`` honoured, so ``git commit -a`` and ``git commit
PATHS`` are judged on their temporary index). With no FILES every staged
change is checked (deletions need no check; renames are judged at their new
path); with ``--all-files`` every file in the index. Under pre-commit's
``pre-push`` (or ``--from-ref/--to-ref`` runs) the files are read from the
commit being pushed (``PRE_COMMIT_TO_REF``); ``--rev`` does the same by hand.

The rules come from the nearest ``.sops.yaml`` above each file inside the
repository, as staged (a `.sops.yaml` not in the index is read from disk);
sopsflow's own settings from ``.sopsflow.yaml`` at the root, likewise. A
config that does not load fails closed: every file it governs is refused
(:mod:`sopsflow.git.snapshot` resolves the configs, as for ``verify``).

When a `.sops.yaml` is among the judged changes, every tracked file whose
creation rule that change alters (recipients, key groups, threshold,
selection options) is judged too, staged or not: a recipient added to a rule
without ``sopsflow updatekeys`` leaves each file under it stale
(``stale-recipients``, refused with ``--strict``).

Options come before ``--``; an unknown one is an error (exit 2), never
ignored, and abbreviations are not accepted. After ``--`` every word is a
file: the hook manifest passes ``args: [--]``, so pre-commit's staged names
(``--rev=HEAD`` included) are always judged as files.

Output: one line per finding (path, what is wrong, the command that fixes
it: for a secret HEAD already holds, also rotating it when it was pushed, or
rewriting the local commits when not), then a summary that counts what
inline markers and the allow list suppressed (``--show-suppressed`` lists
them); exit 1 when anything is refused, 0 otherwise. Files a kustomize
``secretGenerator`` next to or above a staged file names are judged as
Secret data.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from ..errors import SopsError

TYPE_CHECKING = False  # typing is not imported at run time (hook start-up)
if TYPE_CHECKING:
    from ..config.rules import Config
    from ..git.repo import GitFile, IndexRepo, Repo
    from ..gitops.check import FileAudit, Finding
    from ..gitops.settings import AuditSettings

REFUSED = 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="refuse staged plaintext secrets (the commit hook)",
        description="Judge what git is about to commit: files at creation-rule paths must be properly "
        "SOPS-encrypted, and no private key, age identity, Kubernetes Secret or dotenv credential may sit "
        "in plaintext elsewhere. Exit 1 when anything is refused. After --, every word is a file "
        "(the hook manifest passes --, so a staged file named like an option is judged, not obeyed).",
        # A staged file named `--all` must never pass for `--all-files`: options are spelt out.
        allow_abbrev=False,
    )
    p.add_argument("files", nargs="*", metavar="FILES", help="files to check (default: every staged change)")
    p.add_argument("--strict", action="store_true",
                   help="also refuse SOPS files whose recipients differ from their rule (also: strict: true "
                        "in .sopsflow.yaml)")
    p.add_argument("--all-files", action="store_true", help="check every file in the index")
    p.add_argument("--rev", help="judge the files as committed in REV instead of the index (default under "
                                 "pre-commit's pre-push stage: PRE_COMMIT_TO_REF)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line when there is nothing to report")
    p.add_argument("--show-suppressed", action="store_true",
                   help="also list the findings an inline marker (sopsflow:allow, pragma: allowlist secret, "
                        "gitleaks:allow) or the allow list of .sopsflow.yaml suppressed")
    p.set_defaults(func=run)


# --- where the bytes come from ----------------------------------------------------------


class _Source:
    """Files as staged (the default) or as committed in a revision, and the
    state they change (HEAD, or the commit before the pushed one)."""

    def __init__(self, repo: Repo | IndexRepo, rev: str | None) -> None:
        from ..git.snapshot import Snapshot

        self.repo = repo
        self.rev = rev
        self.snapshot = Snapshot.at(repo, rev) if rev else Snapshot.index(repo)
        self.label = self.snapshot.label

    def get(self, rel: str) -> GitFile | None:
        return self.snapshot.get(rel)

    def all(self) -> list[GitFile]:
        return self.snapshot.files()

    def base_rev(self) -> str | None:
        """The revision the judged files change: HEAD for the index (None
        before the first commit), the pushed range's start for a revision."""
        if not self.rev:
            return None if self.repo.commit_id("HEAD") is None else "HEAD"
        return os.environ.get("PRE_COMMIT_FROM_REF") or f"{self.rev}~1"

    def changed(self) -> list[GitFile]:
        if not self.rev:
            return self.repo.staged_changes()
        try:
            return self.repo.changed_between(self.base_rev() or "", self.rev)
        except SopsError:
            return self.all()  # a root commit: everything is new

    def under(self, prefix: str) -> list[GitFile]:
        prefix = prefix.rstrip("/") + "/"
        return [f for f in self.all() if f.path.startswith(prefix)]

    def settings_blob(self, rel: str) -> bytes | None:
        """A config file as it will be committed; from disk when git does not track it."""
        try:
            return self.snapshot.read(rel)
        except OSError:
            return None

    def rule_changes(self, picked: list[GitFile]) -> list[GitFile]:
        """Files not picked whose creation rule a picked (or removed) `.sops.yaml` changes:
        a recipient added to a rule makes every file under it stale, though
        none of them is staged."""
        from ..git.snapshot import Snapshot, changed_configs, is_sops_config, rule_changes

        configs = [f.path for f in picked if is_sops_config(f.path)]
        try:
            # a removed nested config hands its files to the one above
            # (known from staged_changes when it ran: no second diff)
            if self.rev:
                deleted = self.repo.deleted_between(self.base_rev() or "", self.rev)
            else:
                deleted = self.repo.staged_deletions()
            configs += [p for p in deleted if is_sops_config(p)]
            base = self.base_rev() if configs else None
            if base is None:
                return []
            old = Snapshot.at(self.repo, base)
            changed = changed_configs(old, self.snapshot, configs)
            found = rule_changes(old, self.snapshot, changed)
        except SopsError:
            return []  # no base commit (a root commit): every file is new and picked anyway
        seen = {f.path for f in picked}
        return [f for f in found if f.path not in seen]


# --- the run ------------------------------------------------------------------------------


def _pick_files(args: argparse.Namespace, source: _Source) -> tuple[list[GitFile], list[str]]:
    """The files to judge and the FILES arguments that are not staged (skipped)."""
    from ..git.repo import relative_to_root

    if args.all_files:
        return source.all(), []
    if not args.files:
        return source.changed(), []
    picked: dict[str, GitFile] = {}
    skipped = []
    for name in args.files:
        rel = relative_to_root(source.repo, name)
        found = source.get(rel)
        if found is not None:
            picked[found.path] = found
            continue
        below = source.under(rel) if rel not in ("", ".") else source.all()
        if below:
            picked.update((f.path, f) for f in below)
        else:
            skipped.append(rel)  # deleted, or not staged: nothing of it will be committed
    return list(picked.values()), skipped


def _load_settings(source: _Source, strict_flag: bool) -> tuple[AuditSettings, Finding | None]:
    from ..gitops.check import config_error_finding
    from ..gitops.settings import SETTINGS_FILE, AuditSettings, parse_settings

    data = source.settings_blob(SETTINGS_FILE)
    settings = AuditSettings()
    problem = None
    if data is not None:
        try:
            settings = parse_settings(data, SETTINGS_FILE)
        except SopsError as exc:
            problem = config_error_finding(SETTINGS_FILE, exc)
    if strict_flag:
        settings.strict = True
    return settings, problem


def audit_files(repo: Repo | IndexRepo, files: list[GitFile], source: _Source, settings: AuditSettings) -> list[FileAudit]:
    from ..gitops.check import audit_governed

    audits = []
    for f in sorted(files, key=lambda g: g.path):
        governing = source.snapshot.data_config_for(f.path)
        audit = audit_governed(f.path, f.data, governing, settings=settings, is_symlink=f.is_symlink,
                               repo_root=repo.root)
        if source.rev is None and audit.status == "plaintext" and not f.is_symlink:
            _hint_unstaged_encryption(repo, audit, governing.config, settings)
        audits.append(audit)
    return audits


def _hint_unstaged_encryption(repo: Repo | IndexRepo, audit: FileAudit, config: Config | None, settings: AuditSettings) -> None:
    """After ``sopsflow encrypt -i FILE`` without ``git add`` the work tree holds
    the encrypted file and the index the plaintext. Repeating the encrypt fix
    would exit 203 (already encrypted): the fix is to stage the file."""
    import shlex

    from ..gitops.check import PLAINTEXT_SECRET, audit_file

    path = repo.root / audit.path
    try:
        if path.is_symlink() or not path.is_file():
            return
        data = path.read_bytes()
    except OSError:
        return
    on_disk = audit_file(audit.path, data, config=config, settings=settings, repo_root=repo.root)
    if on_disk.status != "encrypted" or any(f.kind == PLAINTEXT_SECRET for f in on_disk.findings):
        return
    fix = f"git add {shlex.quote(audit.path)} (the work tree copy is encrypted; the staged one is not)"
    audit.findings = [f._replace(fix=fix) if f.kind == PLAINTEXT_SECRET else f for f in audit.findings]


def _secret_generators(source: _Source, files: list[GitFile], audits: list[FileAudit],
                       settings: AuditSettings) -> list[Finding]:
    """Plaintext that a kustomize secretGenerator turns into a Secret, where
    the staged change is the file or the kustomization naming it. Only the
    kustomizations next to and above the staged files are read."""
    from ..gitops.check import INLINE_REASON
    from ..gitops.flux import KUSTOMIZATION_FILES, file_state, generator_findings

    staged = {f.path for f in files}
    directories: set[str] = set()
    for path in staged:
        directory = path.rsplit("/", 1)[0] if "/" in path else ""
        while directory not in directories:
            directories.add(directory)
            if not directory:
                break
            directory = directory.rsplit("/", 1)[0] if "/" in directory else ""
    kustomizations = []
    for directory in sorted(directories):
        for name in KUSTOMIZATION_FILES:
            rel = f"{directory}/{name}" if directory else name
            found = source.get(rel)
            if found is not None and not found.is_symlink and b"secretGenerator" in found.data:
                kustomizations.append((rel, found.data))
    if not kustomizations:
        return []
    audited = {a.path: a for a in audits}
    by_path = {f.path: f for f in files}

    def state(path: str) -> str | None:
        audit = audited.get(path)
        if audit is not None:
            if audit.refused:
                return "reported"
            sops = audit.status in ("encrypted", "partial")
            data = by_path[path].data if path in by_path else b""
        else:
            found = source.get(path)
            if found is None or found.is_symlink:
                return None
            data = found.data
            sops = b"ENC[AES256_GCM," in data or b"sops_mac=" in data
        return file_state(data, sops)

    out = []
    for finding, kustomization, marker in generator_findings(kustomizations, state):
        if finding.path not in staged and kustomization not in staged:
            continue  # neither side is part of this commit
        pattern = settings.allows_path(finding.path)
        if marker is not None or pattern is not None or settings.allows_fingerprint(finding.fingerprint):
            why = (f"{INLINE_REASON} `{marker}`" if marker is not None else f"path {pattern}"
                   if pattern is not None else f"fingerprint {finding.fingerprint}")
            holder = audited.get(finding.path) or audited.get(kustomization)
            if holder is not None:
                holder.allowed.append((finding, why))
            continue
        out.append(finding)
    return out


def _hint_history(repo: Repo | IndexRepo, source: _Source, settings: AuditSettings, findings: list[Finding]) -> list[Finding]:
    """A staged secret that HEAD (or, under pre-push, the pushed commit)
    already holds is in history: fixing the file does not take it back. The
    fix says to rotate it when it was pushed, to rewrite the local commits
    when it was not."""
    from ..gitops.exposure import EXPOSURE_KINDS, classify, classify_staged, fix_for

    if not any(f.kind in EXPOSURE_KINDS for f in findings):
        return findings
    from ..gitops.check import audit_governed

    def judge(path: str, data: bytes) -> set[str]:
        audit = audit_governed(path, data, source.snapshot.data_config_for(path), settings=settings,
                               repo_root=repo.root)
        return {f.fingerprint for f in audit.findings if f.kind in EXPOSURE_KINDS}

    if source.rev:
        states = classify(repo, source.rev, findings, judge)
    else:
        states = classify_staged(repo, findings, judge)
    return [f._replace(fix=fix_for(f.fix, states[f.fingerprint])) if f.fingerprint in states else f
            for f in findings]


def run(args: argparse.Namespace) -> int:
    from ..git.repo import IndexRepo, open_repo

    rev = args.rev or os.environ.get("PRE_COMMIT_TO_REF") or None
    # The hook's case (the staged changes) needs no pygit2: git itself lists and
    # reads them. Every file of a revision or of the index reads faster in process.
    repo = open_repo(Path.cwd()) if rev or args.all_files else IndexRepo(Path.cwd())
    source = _Source(repo, rev)
    settings, settings_problem = _load_settings(source, args.strict)
    files, skipped = _pick_files(args, source)
    rechecked = [] if args.all_files else source.rule_changes(files)
    audits = audit_files(repo, files + rechecked, source, settings)
    findings = _unique_findings(audits, settings_problem)
    findings += _secret_generators(source, files, audits, settings)
    findings = _hint_history(repo, source, settings, findings)
    out = sys.stdout
    for f in findings:
        out.write(format_finding(f) + "\n")
    if args.show_suppressed:
        for audit in audits:
            for f, why in audit.allowed:
                out.write(format_suppressed(f, why) + "\n")
    refused = any(f.severity == "error" for f in findings)
    if findings or not args.quiet or any(a.allowed for a in audits):
        out.write(summary(audits, findings, source.label, settings, skipped, len(rechecked)) + "\n")
    out.flush()
    return REFUSED if refused else 0


def _unique_findings(audits: list[FileAudit], extra: Finding | None) -> list[Finding]:
    seen: set[tuple[str, str, str, int | None, str]] = set()
    out = [extra] if extra is not None else []
    for audit in audits:
        for f in audit.findings:
            # Two keys of one kind in one file read alike; their line and
            # fingerprint tell them apart (each is allow-listed on its own).
            key = (f.kind, f.path, f.message, f.line, f.fingerprint)
            if f.kind == "invalid-config":
                key = (f.kind, f.path, "", None, "")  # once per broken config, not per file
            if key in seen:
                continue
            seen.add(key)
            out.append(f)
    return out


def format_finding(f: Finding) -> str:
    where = f.path + (f":{f.line}" if f.line else "")
    text = f"{where}: {f.severity}: {f.message} [{f.kind}]"
    if f.fix:
        text += f" -- fix: {f.fix}"
    if f.fingerprint and f.severity == "error" and f.kind != "invalid-config":
        text += f" (fp:{f.fingerprint})"
    return _one_line(text)


def format_suppressed(f: Finding, why: str) -> str:
    where = f.path + (f":{f.line}" if f.line else "")
    return _one_line(f"{where}: suppressed: {f.message} [{f.kind}] by {why}")


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def summary(audits: list[FileAudit], findings: list[Finding], label: str, settings: AuditSettings,
            skipped: list[str], rechecked: int = 0) -> str:
    errors_by_kind = Counter(f.kind for f in findings if f.severity == "error")
    warnings = sum(1 for f in findings if f.severity == "warning")
    refused_files = {f.path for f in findings if f.severity == "error"}
    parts = [f"sopsflow check ({label}): {len(audits)} file{'s' * (len(audits) != 1)} checked"]
    if refused_files:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(errors_by_kind.items()))
        parts.append(f"{len(refused_files)} refused ({kinds})")
    else:
        parts.append("nothing refused")
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    from ..gitops.check import INLINE_REASON

    inline = sum(1 for a in audits for _f, why in a.allowed if why.startswith(INLINE_REASON))
    if inline:
        parts.append(f"{inline} suppressed inline")
    allowed = [(f, why) for a in audits for f, why in a.allowed if not why.startswith(INLINE_REASON)]
    if allowed:
        shown = "; ".join(f"{f.path} {f.kind} by {why}" for f, why in allowed[:5])
        more = f"; {len(allowed) - 5} more" if len(allowed) > 5 else ""
        parts.append(f"allow-listed in {settings.source or '.sopsflow.yaml'}: {len(allowed)} ({shown}{more})")
    if rechecked:
        parts.append(f"{rechecked} of them not staged but re-checked: .sops.yaml changes their creation rule")
    if settings.strict:
        parts.append("strict")
    if skipped:
        parts.append(f"{len(skipped)} argument(s) not staged, skipped")
    text = ", ".join(parts)
    if refused_files:
        text += ". Commit refused: fix the findings above, or allow-list a false positive in .sopsflow.yaml"
    return text
