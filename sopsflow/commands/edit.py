"""``sopsflow edit FILE`` (and ``sopsflow FILE``): edit an encrypted file in
$EDITOR (as sops' `cmd/sops/main.go` edit does).

The plaintext goes to a file with the original base name and mode 0600 in a
fresh 0700 directory under $TMPDIR, which is removed however the command
ends (also on SIGINT, SIGTERM, SIGHUP). The editor is ``SOPS_EDITOR``, then
``EDITOR`` (shell-split, the path appended as last argument), then the first
of vim, nano, vi. The file is re-encrypted with the same data key, and values
the editor did not touch keep their exact ENC[] text (the IVs seen while
decrypting are reused). An unchanged file (same SHA-256) exits 200 without
writing. A file that does not exist is created from the creation rules or key
flags, starting from sops' example document for its format.

Deliberate difference: sops 3.11 discards the edits made under
``--show-master-keys`` (it re-encrypts the original tree); sopsflow applies
them, including changes to the metadata block: added keys are wrapped for the
same data key, and when a recipient is removed the data key is rotated (as
``updatekeys`` does) and the command says so.

The file is read for rewriting (fileio): if anyone changes it while the
editor is open, the edit is not written over their change.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import errors
from ..errors import SopsError
from ..logs import logger
from ..tree import Branches, Comment, TreeMap
from . import common

if TYPE_CHECKING:
    from ..cipher import Cipher
    from ..metadata import Metadata
    from ..stores import Store

_EXAMPLE_TEXT = "Welcome to SOPS! Edit this file as you please!"
_PRESS_ENTER = "Press Enter to return to the editor, or Ctrl+C to exit."


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edit", help="edit an encrypted file in $EDITOR (creates it when missing)")
    p.add_argument("file", nargs="?", help="file to edit")
    p.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("-s", "--show-master-keys", action="store_true", help="include the sops metadata while editing")
    p.add_argument("--ignore-mac", action="store_true", help="do not verify the MAC")
    common.add_store_flags(p)
    common.add_key_flags(p)
    common.add_selection_flags(p)
    common.add_break_hardlinks_flag(p)
    common.add_global_flags(p, suppress=True)
    p.set_defaults(func=run)


# --- the example document of a new file (sops' EmitExample) ------------------------------


def example_branches(store_name: str) -> Branches:
    """The document sops 3.11 opens for a file that does not exist yet."""
    if store_name == "binary":
        return [TreeMap([("data", _EXAMPLE_TEXT)])]
    if store_name == "dotenv":
        return [
            TreeMap(
                [
                    Comment(" This is an example file."),
                    ("hello", _EXAMPLE_TEXT),
                    ("example_key", "example_value"),
                    ("example_multiline", "foo\nbar\nbaz"),
                ]
            )
        ]
    if store_name == "ini":
        # INI comment text carries no leading space (the emitter writes "; ").
        section = TreeMap(
            [Comment("This is an example file."), ("hello", _EXAMPLE_TEXT), ("example_key", "example_value")]
        )
        return [TreeMap([("Welcome!", section)])]
    return [
        TreeMap(
            [
                ("hello", _EXAMPLE_TEXT),
                ("example_key", "example_value"),
                Comment(" Example comment"),
                ("example_array", ["example_value1", "example_value2"]),
                ("example_number", 1234.56789),
                ("example_booleans", [True, False]),
            ]
        )
    ]


# --- version bookkeeping ------------------------------------------------------------------


def update_version(meta: Metadata) -> None:
    from ..metadata import SOPS_VERSION
    from ..operations import version_is_newer

    try:
        newer = version_is_newer(SOPS_VERSION, meta.version)
    except ValueError as exc:
        raise SopsError(
            errors.FAILED_TO_COMPARE_VERSIONS,
            f"Failed to compare document version {meta.version!r} with program version {SOPS_VERSION!r}: {exc}",
        ) from None
    if newer:
        meta.version = SOPS_VERSION


# --- the editor ---------------------------------------------------------------------------


def editor_command() -> list[str]:
    for var in ("SOPS_EDITOR", "EDITOR"):
        value = os.environ.get(var, "")
        if value:
            try:
                parts = shlex.split(value)
            except ValueError:
                raise SopsError(errors.NO_EDITOR_FOUND, f"Could not run editor: invalid ${var}: {value}") from None
            if not parts:
                raise SopsError(errors.NO_EDITOR_FOUND, f"Could not run editor: invalid ${var}: {value}")
            return parts
    for name in ("vim", "nano", "vi"):
        found = shutil.which(name)
        if found:
            return [found]
    raise SopsError(
        errors.NO_EDITOR_FOUND,
        "Could not run editor: no editor available: sopsflow uses the editor named by the SOPS_EDITOR or "
        "EDITOR environment variables, and if neither is set any of vim, nano, vi, but none of them was found",
    )


def run_editor(path: str) -> None:
    argv = editor_command() + [path]
    try:
        code = subprocess.call(argv)
    except FileNotFoundError:
        if "/" in argv[0]:
            reason = f"fork/exec {argv[0]}: no such file or directory"
        else:
            reason = f'exec: "{argv[0]}": executable file not found in $PATH'
        raise SopsError(errors.NO_EDITOR_FOUND, f"Could not run editor: {reason}") from None
    except PermissionError:
        raise SopsError(errors.NO_EDITOR_FOUND, f"Could not run editor: {argv[0]}: permission denied") from None
    if code != 0:
        status = f"exit status {code}" if code > 0 else f"signal {-code}"
        raise SopsError(errors.NO_EDITOR_FOUND, f"Could not run editor: {status}")


# --- the private temporary directory -------------------------------------------------------


class _Terminated(BaseException):
    """Raised from a SIGTERM/SIGHUP handler so that cleanup code runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def private_workspace(base_name: str) -> Iterator[str]:
    """A 0700 directory under $TMPDIR holding an empty 0600 file named
    ``base_name``; yields the file's path and removes the directory on every
    way out, including SIGINT (KeyboardInterrupt) and SIGTERM/SIGHUP."""
    previous: dict[int, Any] = {}

    def _terminate(signum: int, _frame: object) -> None:
        raise _Terminated(signum)

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, _terminate)
    directory = tempfile.mkdtemp(prefix="")
    try:
        os.chmod(directory, 0o700)
        path = os.path.join(directory, base_name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)
        yield path
    except _Terminated as exc:
        raise SopsError(128 + exc.signum, "Terminated, temporary files removed") from None
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        for number, handler in previous.items():
            signal.signal(number, handler)


# --- editing ------------------------------------------------------------------------------


@dataclass
class EditState:
    """What is being edited: the tree, its metadata and the data key."""

    branches: Branches
    metadata: Metadata
    data_key: bytes
    cipher: Cipher
    #: recipients the edited metadata removed (the data key was then rotated)
    removed: list[str] = field(default_factory=list)


def _wait_or_fail(message: str, code: int) -> None:
    """After a bad edit: wait for Enter on a terminal, otherwise give up."""
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()
    if not sys.stdin.isatty():
        raise SopsError(code, f"{message} (stdin is not a terminal: not reopening the editor)")
    sys.stderr.write(_PRESS_ENTER + "\n")
    sys.stderr.flush()
    if not sys.stdin.readline():
        raise SopsError(code, message)


def _same_key_layout(a: Metadata, b: Metadata) -> bool:
    def layout(meta: Metadata) -> list[list[tuple[str, str]]]:
        return [[(k.type_name, k.identity()) for k in g] for g in meta.key_groups]

    return layout(a) == layout(b) and a.shamir_threshold == b.shamir_threshold


def _merge_metadata(state: EditState, edited: Metadata) -> None:
    """--show-master-keys: take the edited metadata block. Unchanged keys keep
    their entries; if the keys or threshold changed, the same data key is
    wrapped again for the new layout - unless a recipient was removed: a key
    they once unwrapped (git history keeps it) must not open later values, so
    the data key is rotated, every value keeping its IV as in ``rotate``."""
    from ..operations import new_data_key, rewrap_keys

    if _same_key_layout(state.metadata, edited):
        edited.key_groups = state.metadata.key_groups
        state.metadata = edited
        return
    kept = {k.identity() for k in edited.all_keys()}
    removed = list(dict.fromkeys(k.identity() for k in state.metadata.all_keys() if k.identity() not in kept))
    if removed:
        from ..cipher import Cipher

        data_key = new_data_key()
        rewrap_keys(edited, data_key)
        cipher = Cipher(data_key)
        cipher.iv_cache = state.cipher.iv_cache
        state.data_key, state.cipher = data_key, cipher
    else:
        rewrap_keys(edited, state.data_key)
    state.removed = removed
    state.metadata = edited


def _load_edit(text: bytes, in_store: Store, show_master_keys: bool) -> tuple[Branches, Metadata | None]:
    """Parse the edited file; returns (branches, edited metadata or None)."""
    from ..metadata import Metadata
    from ..operations import has_sops_metadata

    branches = in_store.load_plain(text)
    if not show_master_keys:
        if has_sops_metadata(in_store, branches):
            raise SopsError(
                errors.FILE_ALREADY_ENCRYPTED,
                "the edited file has a top-level sops key; remove it (or use --show-master-keys)",
            )
        return branches, None
    branches, raw = in_store.load_encrypted(text)
    if raw is None:
        raise SopsError(errors.GENERIC, "sops metadata not found in the edited file")
    return branches, Metadata.from_dict(raw)


def edit_until_ok(path: str, original_hash: bytes, in_store: Store, state: EditState, show_master_keys: bool) -> None:
    while True:
        run_editor(path)
        try:
            with open(path, "rb") as handle:
                text = handle.read()
        except OSError as exc:
            raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"Could not read edited file: {exc.strerror}") from None
        if hashlib.sha256(text).digest() == original_hash:
            raise SopsError(errors.FILE_HAS_NOT_BEEN_MODIFIED, "File has not changed, exiting.")
        try:
            branches, edited_meta = _load_edit(text, in_store, show_master_keys)
        except SopsError as exc:
            _wait_or_fail(f"Could not load tree, probably due to invalid syntax: {exc.message}", exc.code)
            continue
        if edited_meta is not None:
            if not edited_meta.all_keys():
                _wait_or_fail("No master keys were provided, so the file cannot be encrypted.", errors.GENERIC)
                continue
            try:
                _merge_metadata(state, edited_meta)
            except SopsError as exc:
                _wait_or_fail(f"The edited sops metadata cannot be used: {exc.message}", exc.code)
                continue
        state.branches = branches
        update_version(state.metadata)
        return


def edit_state(
    state: EditState,
    file_name: str,
    in_store: Store,
    out_store: Store,
    show_master_keys: bool,
    conflict_notes: bool = False,
) -> bytes:
    """Run the editor on the plaintext of ``state``; returns the new encrypted file.
    ``conflict_notes``: the plaintext carries merge-conflict marker comments
    (conflict_edit.py) that must not be saved."""
    from ..operations import encrypt_document

    if show_master_keys:
        shown = out_store.dump_encrypted(state.branches, state.metadata.to_dict(json_style=out_store.name != "yaml"))
    else:
        shown = out_store.dump_plain(state.branches)
    with private_workspace(os.path.basename(file_name)) as path:
        with open(path, "wb") as handle:
            handle.write(shown)
        edit_until_ok(path, hashlib.sha256(shown).digest(), in_store, state, show_master_keys)
    if conflict_notes:
        from ..gitops.conflict_edit import strip_notes

        strip_notes(state.branches)
    return encrypt_document(out_store, state.branches, state.metadata, state.data_key, state.cipher)


def _existing_state(args: argparse.Namespace, file_name: str, in_store: Store) -> EditState:
    from ..operations import decrypt_document

    doc = decrypt_document(
        in_store,
        common.read_existing(file_name, for_rewrite=True),
        ignore_mac=args.ignore_mac,
        decryption_order=common.decryption_order(args),
        check_version=True,
    )
    return EditState(doc.branches, doc.metadata, doc.data_key, doc.cipher)


def _new_state(args: argparse.Namespace, file_name: str, in_store: Store) -> EditState:
    from ..cipher import Cipher

    config = common.load_config_for(args)
    settings = common.creation_settings(args, file_name, config)
    meta, data_key = settings.new_metadata(in_store)
    # Go's zero time, which is what sops shows under --show-master-keys.
    meta.lastmodified = "0001-01-01T00:00:00Z"
    # sops loads its example text back through the store before editing.
    branches = in_store.load_plain(in_store.dump_plain(example_branches(in_store.name)))
    return EditState(branches, meta, data_key, Cipher(data_key))


def run(args: argparse.Namespace) -> int:
    from ..fileio import atomic_write

    if not args.file:
        raise SopsError(errors.NO_FILE_SPECIFIED, "Error: no file specified")
    if args.extra:
        logger().warning("More than one positional argument provided. Only the first one will be used!")
    file_name = os.path.abspath(args.file)
    exists = os.path.exists(file_name)
    config = common.load_config_lenient(args)
    in_store = common.pick_store(file_name, args.input_type, args, config)
    out_store = common.pick_store(file_name, args.output_type or args.input_type, args, config)
    notes: list[str] = []
    if exists:
        from ..fileio import rewrite_target

        rewrite_target(file_name, getattr(args, "break_hardlinks", False))  # refuse before anyone edits
        state = _existing_state(args, file_name, in_store)
        if not args.show_master_keys:
            from ..gitops.conflict_edit import add_notes, conflict_notes

            # In a conflicted merge, show what theirs holds next to ours.
            notes = conflict_notes(file_name, in_store, state.branches, common.decryption_order(args))
            add_notes(state.branches, notes)
    else:
        state = _new_state(args, file_name, in_store)
    result = edit_state(state, file_name, in_store, out_store, args.show_master_keys, bool(notes))
    atomic_write(file_name, result, break_hardlinks=getattr(args, "break_hardlinks", False))
    if state.removed:
        sys.stderr.write(
            f"Removed {', '.join(state.removed)}: the data key was rotated. Git history still holds the old "
            "ciphertext they could read: change those secrets at their source.\n"
        )
    return 0
