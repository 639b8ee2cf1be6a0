"""``sopsflow textconv FILE`` and ``sopsflow merge-driver %O %A %B %P``: the
git diff and merge drivers (configured by ``sopsflow install-hooks
--drivers``; see :mod:`sopsflow.git.drivers`).

textconv prints the decrypted document so ``git diff``/``git log -p`` show
plaintext changes, followed by the metadata as ``# sops:`` lines: one sorted
line per recipient of each key group, the Shamir threshold, lastmodified and
a digest of the whole ``sops`` block, so added and removed recipients show as
``-``/``+`` lines and a change to the ``sops`` block alone is never invisible.
A file that is not SOPS, or that cannot be decrypted here (no key, MAC
mismatch), is printed unchanged with a note on stderr and exit 0, so ``git
diff`` keeps working.

merge-driver merges the three versions in memory (:func:`sopsflow.gitops.merge.merge_documents`)
and writes the encrypted result to %A. The key set is ours' creation rule's
(the ``.sops.yaml`` at HEAD, see :func:`sopsflow.git.drivers.merge_context`),
never taken from theirs: the result's recipients never go beyond that rule
and ours' own, and theirs' data key is never adopted. When theirs changes the
rule for the file, the merged values are written for ours' recipients and the
driver exits 1 naming the change. It never writes plaintext: on a
conflict it leaves %A (ours) untouched, prints the conflicting key paths and
how to resolve them, and exits 1. Binary SOPS files, files that cannot be
decrypted and mixed SOPS/plain versions also exit 1 untouched (git's normal
conflict). Files that are not SOPS at all get git's own text merge
(``git merge-file``), so a catch-all rule does not break ordinary merges.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SopsError
from . import common
from .install_hooks import InstallStep

if TYPE_CHECKING:
    from ..metadata import Metadata
    from ..stores import Store
    from ..tree import RawMetadata


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("textconv", help="git diff driver: print a SOPS file decrypted (raw when not possible)")
    p.add_argument("file", help="the file git hands over")
    p.add_argument("--input-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    common.add_global_flags(p, suppress=True)
    p.set_defaults(func=run_textconv)

    m = sub.add_parser("merge-driver", help="git merge driver: merge SOPS files key by key, encrypted")
    m.add_argument("base", help="%%O: the common ancestor's version")
    m.add_argument("ours", help="%%A: our version; the result is written here")
    m.add_argument("theirs", help="%%B: their version")
    m.add_argument("path", help="%%P: the path in the repository (picks the format)")
    m.add_argument("--marker-size", type=int, default=7, help="%%L: conflict marker size for plain text merges")
    common.add_global_flags(m, suppress=True)
    m.set_defaults(func=run_merge_driver)


def _note(text: str) -> None:
    sys.stderr.write(f"sopsflow: {text}\n")
    sys.stderr.flush()


# --- textconv -------------------------------------------------------------------------------


def _store(name_path: str, type_override: str | None, args: argparse.Namespace) -> Store:
    return common.pick_store(name_path, type_override, args, common.load_config_lenient(args))


def run_textconv(args: argparse.Namespace) -> int:
    from ..fileio import read_input

    data = read_input(args.file)
    text = textconv(data, args.file, args)
    sys.stdout.buffer.write(text)
    sys.stdout.buffer.flush()
    return 0


def textconv(data: bytes, name: str, args: argparse.Namespace) -> bytes:
    """The decrypted document, or ``data`` itself with a note on stderr."""
    from ..operations import decrypt_document

    if not data.strip():
        return data
    store = _store(name, getattr(args, "input_type", None), args)
    try:
        _branches, raw = store.load_encrypted(data)
    except SopsError:
        raw = None
    if raw is None:
        _note(f"{name} is not a SOPS file; showing it unchanged")
        return data
    try:
        doc = decrypt_document(store, data, decryption_order=common.decryption_order(args))
        return bytes(store.dump_plain(doc.branches)) + metadata_lines(doc.metadata, raw)
    except SopsError as exc:
        _note(f"cannot decrypt {name} ({_first_line(exc.message)}); showing the encrypted text")
        return data


def metadata_lines(meta: Metadata, raw: RawMetadata) -> bytes:
    """The ``# sops:`` lines textconv appends: who can read the file and a
    digest of the whole metadata block (never a secret: the wrapped keys and
    the MAC are ciphertext, and only their digest is shown)."""
    import hashlib
    import json

    lines = ["", "# sops metadata (shown by sopsflow textconv; not part of the file)"]
    for index, group in enumerate(meta.key_groups):
        for type_name, identity in sorted((k.type_name, k.identity()) for k in group):
            lines.append(f"# sops: group {index + 1}: {type_name} {_one_line(identity)}")
    if len(meta.key_groups) > 1:
        lines.append(f"# sops: shamir_threshold: {meta.shamir_threshold}")
    lines.append(f"# sops: lastmodified: {meta.lastmodified}")
    block = json.dumps(raw, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass")
    lines.append(f"# sops: metadata sha256: {hashlib.sha256(block).hexdigest()[:16]}")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["error"])[0]


# --- merge driver -----------------------------------------------------------------------------


class _Refuse(Exception):
    """Leave %A untouched and report a conflict, with this reason."""


def run_merge_driver(args: argparse.Namespace) -> int:
    from ..fileio import read_input

    base, ours, theirs = (read_input(p) for p in (args.base, args.ours, args.theirs))
    store = _store(args.path, None, args)
    try:
        kinds = [_kind(store, data) for data in (base, ours, theirs)]
        if kinds[1] == "plain" and kinds[2] == "plain" and kinds[0] in ("plain", "empty"):
            return _text_merge(args)
        if kinds[1] != "sops" or kinds[2] != "sops":
            raise _Refuse("one side is a SOPS file and the other is not")
        if store.name == "binary":
            raise _Refuse("binary SOPS files cannot be merged key by key")
        return _sops_merge(args, store, base if kinds[0] == "sops" else None, ours, theirs)
    except _Refuse as exc:
        _note(f"{args.path}: {exc}; left your version in place (conflict)")
        _print_resolution(args.path, [])
        return 1


def _kind(store: Store, data: bytes) -> str:
    if not data.strip():
        return "empty"
    try:
        _branches, raw = store.load_encrypted(data)
    except SopsError:
        return "plain"
    return "plain" if raw is None else "sops"


def _sops_merge(args: argparse.Namespace, store: Store, base: bytes | None, ours: bytes, theirs: bytes) -> int:
    from ..fileio import atomic_write
    from ..git.drivers import merge_context
    from ..gitops.merge import merge_documents

    try:
        context = merge_context(_repo_root(), args.path)
    except SopsError as exc:
        raise _Refuse(f"cannot read ours' creation rule ({_first_line(exc.message)})") from None
    try:
        outcome = merge_documents(store, base, ours, theirs, context.policy)
    except SopsError as exc:
        raise _Refuse(f"cannot merge ({_first_line(exc.message)})") from None
    if outcome.conflicts:
        count = len(outcome.conflicts)
        _note(
            f"{args.path}: {count} conflicting key{'s' if count != 1 else ''} (changed differently on both sides; "
            "values not shown). Your version is left in place, still encrypted:"
        )
        for path in outcome.conflicts:
            sys.stderr.write(f"    {path}\n")
        if context.rule_change:
            _note(f"{args.path}: also, {context.rule_change}")
        _print_resolution(args.path, outcome.conflicts)
        return 1
    if outcome.refused is not None:
        for note in outcome.notes + ([context.rule_change] if context.rule_change else []):
            _note(f"{args.path}: {note}")
        raise _Refuse(outcome.refused)
    assert outcome.data is not None
    # The result never widens the recipients beyond ours' rule, so it may be
    # written even when the merge stops below on a rule change.
    atomic_write(args.ours, outcome.data)
    for note in outcome.notes:
        _note(f"{args.path}: {note}")
    if context.rule_change:
        quoted = shlex.quote(args.path)
        _note(
            f"{args.path}: {context.rule_change}. The merge does not take recipients from the branch that changes "
            "the policy: the merged values are in place for ours' recipients (conflict)."
        )
        sys.stderr.write(
            "  to resolve: review the .sops.yaml change; once it is merged as wanted, apply it and mark the file:\n"
            f"    sopsflow updatekeys -y {quoted} && git add {quoted}\n"
        )
        sys.stderr.flush()
        return 1
    return 0


def _repo_root() -> Path:
    """The work tree's top directory (git runs drivers there)."""
    from ..git.repo import run_git

    try:
        done = run_git(["rev-parse", "--show-toplevel"])
    except SopsError:
        return Path.cwd()
    if done.returncode != 0:
        return Path.cwd()
    return Path(done.stdout.decode("utf-8", "surrogateescape").rstrip("\n"))


def _print_resolution(path: str, conflicts: list[str]) -> None:
    quoted = shlex.quote(path)
    extract = ""
    if len(conflicts) == 1 and conflicts[0].startswith("[") and " (" not in conflicts[0]:
        extract = f" --extract {shlex.quote(conflicts[0])}"
    show = f"| sopsflow decrypt --filename-override {quoted}{extract}"
    sys.stderr.write(
        "  to resolve: compare both sides (printed to the terminal only):\n"
        f"    git show :2:{quoted} {show}    # ours\n"
        f"    git show :3:{quoted} {show}    # theirs\n"
        f"  or resolve in the editor (it shows theirs next to ours, then re-encrypts) and mark it resolved:\n"
        f"    sopsflow edit {quoted} && git add {quoted}\n"
    )
    sys.stderr.flush()


def _text_merge(args: argparse.Namespace) -> int:
    """git's own merge for files that are not SOPS at all."""
    for name in (args.base, args.ours, args.theirs):
        if b"\0" in Path(name).read_bytes():
            _note(f"{args.path}: binary file, not merged (conflict)")
            return 1
    from ..git.repo import run_git

    done = run_git(["merge-file", f"--marker-size={args.marker_size}", "-L", "ours", "-L", "base", "-L", "theirs",
                    args.ours, args.base, args.theirs], capture=False)
    return 0 if done.returncode == 0 else 1


# --- install-hooks --drivers ------------------------------------------------------------------


def _add_install_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--drivers",
        action="store_true",
        help="also configure the git diff/merge drivers for SOPS files (git config + .gitattributes)",
    )


def _install(args: argparse.Namespace, repo_root: Path, hooks_dir: Path) -> list[str]:
    del hooks_dir
    if not getattr(args, "drivers", False):
        return []
    from ..git.drivers import find_repo_config, install_drivers

    explicit = getattr(args, "config", None)
    config = Path(explicit) if explicit else find_repo_config(Path.cwd())
    return install_drivers(repo_root, config, python=sys.executable)


#: Picked up by ``sopsflow install-hooks`` (its EXTENSION_MODULES).
INSTALL_STEP = InstallStep(_add_install_arguments, _install)
