"""``sopsflow updatekeys``: bring every SOPS file in line with ``.sops.yaml``.

Unlike ``sops updatekeys FILE``, this works on a whole repository (every
git-tracked file a creation rule matches), shows one plan, asks once,
updates the files in parallel, rotates the data key when a recipient is
removed and reports which secrets the removed recipients could read.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import errors
from ..errors import SopsError
from . import common

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any, TextIO

#: Names never treated as secret files when collecting.
_CONFIG_NAMES = frozenset({".sops.yaml"})
_SKIP_DIRS = frozenset({".git"})


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "updatekeys",
        help="re-wrap (or rotate) data keys so every file matches its .sops.yaml rule",
        description=(
            "Compare every SOPS file's recipients with its creation rule and update those that differ. "
            "Without PATHS: every git-tracked file a creation rule matches. The data key is rotated when "
            "a recipient is removed (--no-rotate keeps it; --rotate rotates every selected file)."
        ),
        epilog=(
            "Each file is replaced atomically; a file another writer changed since it was read is left "
            "as it is and reported (exit 1). A hard kill may leave .NAME.*.sopsflow-tmp files (encrypted "
            "content); they are never taken for secrets and a later run removes them."
        ),
    )
    p.add_argument("paths", nargs="*", metavar="PATHS", help="files or directories (default: the git repository)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="print the plan only; exit 1 when changes are pending")
    rot = p.add_mutually_exclusive_group()
    rot.add_argument("--rotate", dest="rotate", action="store_const", const="always",
                     help="give every selected file a new data key, even without removals")
    rot.add_argument("--no-rotate", dest="rotate", action="store_const", const="never",
                     help="keep the data key even when a recipient is removed")
    p.add_argument("--report", metavar="FILE", help="write the removed-recipient exposure report as JSON")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="files processed at once: worker processes for age keys (default: one per CPU), "
                        "threads when rules name PGP, KMS or Vault keys (default: 4 per CPU)")
    common.add_break_hardlinks_flag(p)
    common.add_global_flags(p, suppress=True)
    p.set_defaults(func=run, rotate="auto")


def run(args: argparse.Namespace) -> int:
    from .. import updater

    if args.jobs < 0:
        raise SopsError(errors.CONFLICTING_PARAMETERS, "--jobs must be 0 (auto) or more")
    config_file = common.config_path(args)
    if config_file is None:
        raise SopsError(errors.GENERIC, "config file not found: updatekeys needs a .sops.yaml with creation rules")
    from ..config import load_config

    listing = start_git_listing(args.paths)  # git runs while the configuration loads
    config = load_config(config_file)
    if not getattr(config, "rules", None):
        raise SopsError(errors.GENERIC, f"The config file {config_file} does not contain any creation rule")
    cache = updater.RuleCache()
    targets = collect_targets(args.paths, config, cache, listing)
    store_for = _store_factory(args, config)
    out = sys.stdout
    verbose = bool(getattr(args, "verbose", False))
    labels = functools.cache(lambda: _labels(config_file))  # read only to explain a failure
    if args.yes and not args.dry_run:
        return _update_now(args, targets, config, store_for, cache, labels, out)
    progress = Progress("planning") if _interactive_stderr() else None
    # A dry run keeps nothing for later and plans in worker processes; otherwise
    # the plans keep what they read for the update (CPU work: threads would only contend).
    plans = updater.plan_files(targets, config=config, store_for=store_for, rotate=args.rotate,
                               jobs=args.jobs if args.dry_run else 1, progress=progress, cache=cache,
                               keep_content=not args.dry_run)
    if progress:
        progress.close()
    out.write(updater.format_plan(plans, verbose=verbose))
    out.write(updater.plan_summary(plans))
    pending = [p for p in plans if p.status == updater.STATUS_UPDATE]
    plan_errors = [p for p in plans if p.status == updater.STATUS_ERROR]
    if args.dry_run:
        _finish_report(args, plans, None, out)
        return 1 if pending or plan_errors else 0
    if not pending:
        return _nothing_to_do(args, plans, out)
    if not _confirm(len(pending)):
        out.write("No file was changed.\n")
        return 0
    _remove_strays(plans)
    progress = Progress("updating") if _interactive_stderr() else None
    try:
        results = updater.apply_files(pending, decryption_order=common.decryption_order(args), labels=labels,
                                      jobs=args.jobs, progress=progress,
                                      break_hardlinks=getattr(args, "break_hardlinks", False))
    except KeyboardInterrupt:
        sys.stderr.write(_INTERRUPTED)
        raise
    if progress:
        progress.close()
    return _report_results(args, plans, results, out)


#: Every file is written only once all are built, and each write is atomic.
_INTERRUPTED = "\nInterrupted: the files not yet updated are unchanged; run updatekeys again.\n"


def _update_now(args: argparse.Namespace, targets: Sequence[Any], config: Any, store_for: Any, cache: Any,
                labels: Any, out: TextIO) -> int:
    """``-y``: plan and build every file in one pass (nothing to confirm), then
    show the plan and write the files."""
    from .. import updater

    progress = Progress("updating") if _interactive_stderr() else None
    try:
        plans, results = updater.update_files(targets, config=config, store_for=store_for, rotate=args.rotate,
                                              decryption_order=common.decryption_order(args), labels=labels,
                                              jobs=args.jobs, progress=progress, cache=cache,
                                              break_hardlinks=getattr(args, "break_hardlinks", False))
    except KeyboardInterrupt:
        sys.stderr.write(_INTERRUPTED)
        raise
    if progress:
        progress.close()
    out.write(updater.format_plan(plans, verbose=bool(getattr(args, "verbose", False))))
    out.write(updater.plan_summary(plans))
    if not results:
        return _nothing_to_do(args, plans, out)
    _remove_strays(plans)
    return _report_results(args, plans, results, out)


def _nothing_to_do(args: argparse.Namespace, plans: Sequence[Any], out: TextIO) -> int:
    from .. import updater

    _remove_strays(plans)
    out.write("Nothing to update.\n")
    _finish_report(args, plans, None, out)
    return _exit_code([(p.code, p.reason) for p in plans if p.status == updater.STATUS_ERROR])


def _report_results(args: argparse.Namespace, plans: Sequence[Any], results: Sequence[Any], out: TextIO) -> int:
    from .. import updater

    _print_results(results, out, verbose=bool(getattr(args, "verbose", False)))
    _finish_report(args, plans, results, out)
    failures = [(r.code, r.reason) for r in results if not r.ok]
    failures += [(p.code, p.reason) for p in plans if p.status == updater.STATUS_ERROR]
    return _exit_code(failures)


def _remove_strays(plans: Sequence[Any]) -> None:
    """Temp files a hard kill left next to the SOPS files we own (see updater)."""
    from .. import updater

    owned = [p.path for p in plans if p.status in (updater.STATUS_UPDATE, updater.STATUS_CURRENT)]
    updater.remove_stray_temp_files(owned)


# --- collecting files ----------------------------------------------------------


def collect_targets(paths: Sequence[str], config: Any, cache: Any = None,
                    listing: Any = None) -> list[tuple[Path, str, bool, Any]]:
    """``(absolute path, display name, explicit, rule)``, sorted, without duplicates.
    Named files are explicit (problems are errors; rule None: matched later);
    files found in directories or in git are only taken when a creation rule
    matches them."""
    from ..updater import RuleCache, is_temp_file

    cache = cache or RuleCache()
    found: dict[Path, tuple[Path, str, bool]] = {}
    if not paths:
        for path, display in _git_tracked_files(listing):
            found.setdefault(path, (path, display, False))
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
            if path.name in _CONFIG_NAMES or is_temp_file(path.name) or path.is_symlink():
                continue
            rule = cache.match(config, str(path))
            if rule is None:
                continue
        targets.append((path, display, explicit, rule))
    return sorted(targets, key=lambda t: t[1])


def _git_tracked_files(listing: Any = None) -> list[tuple[Path, str]]:
    from ..gitrepo import TrackedListing

    try:
        listing = listing or TrackedListing(Path.cwd())
        names = listing.paths()
    except SopsError as exc:
        raise SopsError(exc.code, f"{exc.message}: name the files or directories to update") from None
    out = []
    for name in names:
        path = listing.root / name
        try:
            regular = stat.S_ISREG(os.lstat(path).st_mode)  # one call: a regular file, not a link
        except OSError:
            continue  # tracked but deleted in the work tree
        if regular:
            out.append((Path(os.path.abspath(path)), _display(path)))
    return out


def start_git_listing(paths: Sequence[str]) -> Any:
    """Start listing the tracked files when no paths were given (None
    otherwise, or outside a repository: collect_targets then says why)."""
    if paths:
        return None
    from ..gitrepo import TrackedListing

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


def _store_factory(args: argparse.Namespace, config: Any) -> Any:
    from ..stores import format_for_path

    stores: dict[str, Any] = {}

    def store_for(path: str) -> Any:
        # One store per format: the store depends on the name's extension only.
        kind = format_for_path(path)
        if kind not in stores:
            stores[kind] = common.pick_store(path, None, args, config)
        return stores[kind]

    return store_for


def _labels(config_file: Path) -> dict[str, str]:
    from ..recipients_edit import recipient_labels

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


def _print_results(results: Sequence[Any], out: TextIO, verbose: bool = False) -> None:
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    rotated = sum(1 for r in ok if r.rotated)
    out.write(f"Updated {len(ok)} file(s) ({rotated} with a new data key)")
    out.write(f"; {len(failed)} failed:\n" if failed else ".\n")
    for r in failed:
        out.write(f"  {r.plan.display}: {r.reason}\n")
        if verbose and r.detail:
            out.write("".join(f"      {line}\n" for line in r.detail.strip("\n").splitlines()))


def _finish_report(args: argparse.Namespace, plans: Sequence[Any], results: Sequence[Any] | None, out: TextIO) -> None:
    from ..updater import exposure_report

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
    if args.report:
        from ..fileio import atomic_write

        atomic_write(args.report, (json.dumps(report, indent=2) + "\n").encode(), mode=0o644)


def _exit_code(failures: Sequence[tuple[int, str]]) -> int:
    """0 when nothing failed; the shared sops exit code when every failure has
    the same one (e.g. 128 when no key was available), else 1."""
    if not failures:
        return 0
    codes = {code or errors.GENERIC for code, _ in failures}
    return codes.pop() if len(codes) == 1 else errors.GENERIC
