"""Resolving a merge conflict of a SOPS file in `sopsflow edit`.

When the merge driver stops on a conflict it leaves ours in the work tree and
git keeps base/ours/theirs as index stages 1/2/3. `sopsflow edit FILE` then
shows ours, plus one comment per conflicting key saying what theirs holds, in
the same private temp file as any edit (plaintext never lands anywhere else).
The marker comments are removed again before the file is re-encrypted.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from ..tree import Branches, Comment, TreeMap, TreeValue, get_path, parse_extract_path

if TYPE_CHECKING:
    import subprocess

    from ..stores import Store

MARKER = "sopsflow-conflict:"
#: Stores whose format has comments to carry the notes.
_COMMENT_STORES = ("yaml", "dotenv")


def _git(cwd: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    from ..git.repo import run_git

    return run_git(args, cwd, timeout=60)


def _stage_blob(directory: str, name: str, stage: int) -> bytes | None:
    done = _git(directory, "show", f":{stage}:./{name}")
    return done.stdout if done.returncode == 0 else None


def conflict_notes(file_name: str, store: Store, ours: Branches, decryption_order: list[str] | None) -> list[str]:
    """Comment texts describing each conflicting key, or [] when the file is not
    in a conflicted merge (or its format cannot hold comments)."""
    if store.name not in _COMMENT_STORES:
        return []
    directory, name = os.path.split(os.path.abspath(file_name))
    unmerged = _git(directory, "ls-files", "-u", "--", name)
    if unmerged.returncode != 0 or not unmerged.stdout.strip():
        return []
    theirs_raw = _stage_blob(directory, name, 3)
    if theirs_raw is None:
        return []
    from ..errors import SopsError
    from ..operations import decrypt_document, to_plain_python
    from .merge import merge_trees

    theirs = decrypt_document(store, theirs_raw, decryption_order=decryption_order).branches
    base_raw = _stage_blob(directory, name, 1)
    base = decrypt_document(store, base_raw, decryption_order=decryption_order).branches if base_raw else None
    notes = []
    for path in merge_trees(base, ours, theirs).conflicts:
        try:
            value = get_path(theirs[0], parse_extract_path(path))
            shown = json.dumps(to_plain_python(value), ensure_ascii=False)
        except (SopsError, TypeError, ValueError):
            shown = "(removed or not shown; see git show :3:)"
        notes.append(f" {MARKER} {path} is changed on both sides; shown below is ours, theirs has: {shown}")
    if notes:
        notes.append(f" {MARKER} resolve the values below; sopsflow removes these marker lines when you save")
    return notes


def add_notes(branches: Branches, notes: list[str]) -> None:
    if notes and branches:
        branches[0][0:0] = [Comment(text) for text in notes]


def strip_notes(branches: Branches) -> None:
    """Remove the marker comments (wherever the edited document moved them)."""
    for branch in branches:
        _strip(branch)


def _strip(node: TreeValue) -> None:
    if type(node) is TreeMap:
        node[:] = [e for e in node if not (type(e) is Comment and MARKER in e.text)]
        for entry in node:
            if type(entry) is tuple:
                _strip(entry[1])
    elif type(node) is list:
        node[:] = [e for e in node if not (type(e) is Comment and MARKER in e.text)]
        for item in node:
            _strip(item)
