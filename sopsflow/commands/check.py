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
config that does not load fails closed.

Options come before ``--``; an unknown one is an error (exit 2), never
ignored, and abbreviations are not accepted. After ``--`` every word is a
file: the hook manifest passes ``args: [--]``, so pre-commit's staged names
(``--rev=HEAD`` included) are always judged as files.

Output: one line per finding (path, what is wrong, the command that fixes
it), then a summary; exit 1 when anything is refused, 0 otherwise.
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
    from ..audit import FileAudit, Finding
    from ..config import Config
    from ..gitrepo import GitFile, IndexRepo, Repo
    from ..settings import AuditSettings

CONFIG_NAME = ".sops.yaml"
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
    p.set_defaults(func=run)


# --- where the bytes come from ----------------------------------------------------------


class _Source:
    """Files as staged (the default) or as committed in a revision."""

    def __init__(self, repo: Repo | IndexRepo, rev: str | None) -> None:
        self.repo = repo
        self.rev = rev
        self.label = f"commit {rev}" if rev else "index"

    def get(self, rel: str) -> GitFile | None:
        if self.rev:
            return self.repo.file_at(self.rev, rel)
        return self.repo.index_file(rel)

    def all(self) -> list[GitFile]:
        return self.repo.files_at(self.rev) if self.rev else self.repo.index_files()

    def changed(self) -> list[GitFile]:
        if not self.rev:
            return self.repo.staged_changes()
        base = os.environ.get("PRE_COMMIT_FROM_REF") or f"{self.rev}~1"
        try:
            return self.repo.changed_between(base, self.rev)
        except SopsError:
            return self.all()  # a root commit: everything is new

    def under(self, prefix: str) -> list[GitFile]:
        prefix = prefix.rstrip("/") + "/"
        return [f for f in self.all() if f.path.startswith(prefix)]

    def settings_blob(self, rel: str) -> bytes | None:
        """A config file as it will be committed; from disk when git does not track it."""
        found = self.get(rel)
        if found is not None:
            return found.data
        if self.rev:
            return None
        path = self.repo.root / rel
        try:
            return path.read_bytes() if path.is_file() else None
        except OSError:
            return None


class _Configs:
    """The nearest `.sops.yaml` for each directory, parsed once."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self._by_dir: dict[str, tuple[Config | None, str, SopsError | None]] = {}

    def for_file(self, rel: str) -> tuple[Config | None, str, SopsError | None]:
        directory = rel.rsplit("/", 1)[0] if "/" in rel else ""
        return self._lookup(directory)

    def for_data(self, rel: str) -> tuple[Config | None, str, SopsError | None]:
        """The config that judges ``rel`` as data. A nested `.sops.yaml` that
        defines no creation rules governs nothing, itself included: what it
        holds besides configuration is judged by the config above it."""
        found = self.for_file(rel)
        config = found[0]
        if "/" in rel and rel.rsplit("/", 1)[1] == CONFIG_NAME and config is not None and not config.has_creation_rules:
            return self._lookup(rel.rsplit("/", 2)[0] if rel.count("/") >= 2 else "")
        return found

    def _lookup(self, directory: str) -> tuple[Config | None, str, SopsError | None]:
        cached = self._by_dir.get(directory)
        if cached is not None:
            return cached
        rel = f"{directory}/{CONFIG_NAME}" if directory else CONFIG_NAME
        data = self.source.settings_blob(rel)
        if data is not None:
            result = self._parse(rel, data)
        elif directory:
            result = self._lookup(directory.rsplit("/", 1)[0] if "/" in directory else "")
        else:
            result = (None, "", None)
        self._by_dir[directory] = result
        return result

    def _parse(self, rel: str, data: bytes) -> tuple[Config | None, str, SopsError | None]:
        from ..config import parse_config

        try:
            return parse_config(data, str(self.source.repo.root / rel), strict=True), rel, None
        except SopsError as exc:
            return None, rel, exc


# --- the run ------------------------------------------------------------------------------


def _pick_files(args: argparse.Namespace, source: _Source) -> tuple[list[GitFile], list[str]]:
    """The files to judge and the FILES arguments that are not staged (skipped)."""
    from ..gitrepo import relative_to_root

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
    from ..audit import config_error_finding
    from ..settings import SETTINGS_FILE, AuditSettings, parse_settings

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
    from ..audit import FileAudit, audit_file, config_error_finding

    configs = _Configs(source)
    audits = []
    for f in sorted(files, key=lambda g: g.path):
        config, config_rel, problem = configs.for_data(f.path)
        if problem is not None:
            # fail closed: nothing is judged against a config sops would refuse
            broken = FileAudit(f.path, status="broken")
            broken.findings.append(config_error_finding(config_rel, problem, f.path))
            audits.append(broken)
            continue
        audit = audit_file(f.path, f.data, config=config, settings=settings,
                           is_symlink=f.is_symlink, repo_root=repo.root)
        if source.rev is None and audit.status == "plaintext" and not f.is_symlink:
            _hint_unstaged_encryption(repo, audit, config, settings)
        audits.append(audit)
    return audits


def _hint_unstaged_encryption(repo: Repo | IndexRepo, audit: FileAudit, config: Config | None, settings: AuditSettings) -> None:
    """After ``sopsflow encrypt -i FILE`` without ``git add`` the work tree holds
    the encrypted file and the index the plaintext. Repeating the encrypt fix
    would exit 203 (already encrypted): the fix is to stage the file."""
    import shlex

    from ..audit import PLAINTEXT_SECRET, audit_file

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


def run(args: argparse.Namespace) -> int:
    from ..gitrepo import IndexRepo, open_repo

    rev = args.rev or os.environ.get("PRE_COMMIT_TO_REF") or None
    # The hook's case (the staged changes) needs no pygit2: git itself lists and
    # reads them. Every file of a revision or of the index reads faster in process.
    repo = open_repo(Path.cwd()) if rev or args.all_files else IndexRepo(Path.cwd())
    source = _Source(repo, rev)
    settings, settings_problem = _load_settings(source, args.strict)
    files, skipped = _pick_files(args, source)
    audits = audit_files(repo, files, source, settings)
    findings = _unique_findings(audits, settings_problem)
    out = sys.stdout
    for f in findings:
        out.write(format_finding(f) + "\n")
    refused = any(f.severity == "error" for f in findings)
    if findings or not args.quiet or any(a.allowed for a in audits):
        out.write(summary(audits, findings, source.label, settings, skipped) + "\n")
    out.flush()
    return REFUSED if refused else 0


def _unique_findings(audits: list[FileAudit], extra: Finding | None) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    out = [extra] if extra is not None else []
    for audit in audits:
        for f in audit.findings:
            key = (f.kind, f.path, f.message)
            if f.kind == "invalid-config":
                key = (f.kind, f.path, "")  # once per broken config, not per file
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


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def summary(audits: list[FileAudit], findings: list[Finding], label: str, settings: AuditSettings,
            skipped: list[str]) -> str:
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
    allowed = [(f, why) for a in audits for f, why in a.allowed]
    if allowed:
        shown = "; ".join(f"{f.path} {f.kind} by {why}" for f, why in allowed[:5])
        more = f"; {len(allowed) - 5} more" if len(allowed) > 5 else ""
        parts.append(f"allow-listed in {settings.source or '.sopsflow.yaml'}: {len(allowed)} ({shown}{more})")
    if settings.strict:
        parts.append("strict")
    if skipped:
        parts.append(f"{len(skipped)} argument(s) not staged, skipped")
    text = ", ".join(parts)
    if refused_files:
        text += ". Commit refused: fix the findings above, or allow-list a false positive in .sopsflow.yaml"
    return text
