"""Three-way merge of decrypted SOPS documents, key by key.

This module only sees plaintext trees (:mod:`sopsflow.tree`); decryption,
key choice and re-encryption live in :func:`merge_documents`, which the git
merge driver (``sopsflow merge-driver``) calls. Nothing here writes to disk.

Rules of :func:`merge_trees`:

* A mapping is merged entry by entry. An entry is a key, its value and the
  comment lines right above it ("comments follow their keys": they move,
  disappear and are compared together with their key). Comments after the
  last key of a mapping form an entry of their own.
* For each entry: changed on one side only -> that side; changed the same
  way on both -> fine; added on one side -> added; deleted on one side and
  untouched on the other -> deleted; deleted on one side and changed on the
  other -> conflict; changed differently on both -> the mappings/lists inside
  are merged recursively, anything else is a conflict.
* Lists of the same length on all three sides are merged item by item;
  otherwise a list is one value (a conflict when both sides changed it).
* A mapping holding the same key twice (JSON allows it) is one value.
* The result keeps ours' order; a key only theirs added is placed after the
  key that precedes it in theirs and after keys ours added at that place
  (before the key that follows it when it came first).

Conflicts are reported as key paths in ``decrypt --extract`` syntax
(``["db"]["password"]``); values never appear in them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from .errors import SopsError
from .tree import Branches, Comment, TreeMap, go_float_f


class _Missing:
    """The "not there" marker for a key absent on one side."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

#: Stands for the comment lines after the last key of a mapping.
_TRAILER = object()


@dataclass
class MergeResult:
    branches: Branches
    conflicts: list[str] = field(default_factory=list)


# --- equality ---------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Deep equality that keeps YAML types apart (``1``, ``1.0`` and ``True``
    differ; two NaNs are equal)."""
    if type(a) is not type(b):
        return False
    if type(a) is TreeMap or type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is float:
        return go_float_f(a) == go_float_f(b)
    return bool(a == b)


# --- paths --------------------------------------------------------------------------


def _key_step(key: Any) -> str:
    text = str(key)
    quote = "'" if '"' in text and "'" not in text else '"'
    return f"[{quote}{text}{quote}]"


def show_path(path: tuple[Any, ...]) -> str:
    """A path in ``decrypt --extract`` syntax; comments get a note after it."""
    out = []
    note = ""
    for step in path:
        if isinstance(step, _Note):
            note = f" ({step.text})"
        elif type(step) is int:
            out.append(f"[{step}]")
        else:
            out.append(_key_step(step))
    return ("".join(out) or "(top level)") + note


@dataclass(frozen=True)
class _Note:
    text: str


def _document_prefix(index: int, count: int) -> str:
    return f"document {index + 1}: " if count > 1 else ""


# --- mappings as entries ---------------------------------------------------------------


@dataclass
class _Entry:
    comments: tuple[Comment, ...]
    value: Any


def _entries(node: TreeMap) -> tuple[list[Any], dict[Any, _Entry]] | None:
    """(key order, key -> entry) with the comments above each key attached;
    None when a key repeats (the mapping is then merged as one value)."""
    order: list[Any] = []
    found: dict[Any, _Entry] = {}
    pending: list[Comment] = []
    for item in node:
        if type(item) is Comment:
            pending.append(item)
            continue
        key, value = item
        if key in found or key is _TRAILER:
            return None
        order.append(key)
        found[key] = _Entry(tuple(pending), value)
        pending = []
    if pending:
        order.append(_TRAILER)
        found[_TRAILER] = _Entry(tuple(pending), None)
    return order, found


def _rebuild(order: list[Any], found: dict[Any, _Entry]) -> TreeMap:
    out = TreeMap()
    for key in order:
        entry = found[key]
        out.extend(entry.comments)
        if key is not _TRAILER:
            out.append((key, entry.value))
    return out


def _merged_order(ours: list[Any], theirs: list[Any], keep: set[Any]) -> list[Any]:
    """Ours' order; a key only theirs has goes after the key that precedes it
    in theirs (and after keys only ours added there), or before the one that
    follows it when nothing shared precedes it, or last."""
    result = [k for k in ours if k in keep and k is not _TRAILER]
    placed = set(result)
    wanted = [k for k in theirs if k in keep and k is not _TRAILER]
    theirs_keys = set(wanted)
    previous: Any = _TRAILER  # "nothing yet"
    for i, key in enumerate(wanted):
        if key not in placed:
            if previous is not _TRAILER:
                at = result.index(previous) + 1
                # keys only ours added at the same place stay first
                while at < len(result) and result[at] not in theirs_keys:
                    at += 1
            else:
                following = next((k for k in wanted[i + 1 :] if k in placed), _TRAILER)
                at = len(result) if following is _TRAILER else result.index(following)
            result.insert(at, key)
            placed.add(key)
        previous = key
    if _TRAILER in keep:
        result.append(_TRAILER)
    return result


# --- the merge -----------------------------------------------------------------------------


class _Merger:
    def __init__(self) -> None:
        self.conflicts: list[str] = []
        self.prefix = ""

    def conflict(self, path: tuple[Any, ...]) -> None:
        self.conflicts.append(self.prefix + show_path(path))

    def value(self, base: Any, ours: Any, theirs: Any, path: tuple[Any, ...]) -> Any:
        if same(ours, theirs):
            return ours
        if base is not MISSING:
            if same(base, ours):
                return theirs
            if same(base, theirs):
                return ours
        if type(ours) is TreeMap and type(theirs) is TreeMap and (base is MISSING or type(base) is TreeMap):
            merged = self.mapping(TreeMap() if base is MISSING else base, ours, theirs, path)
            if merged is not None:
                return merged
        elif (
            type(ours) is list
            and type(theirs) is list
            and type(base) is list
            and len(base) == len(ours) == len(theirs)
        ):
            return [self.value(b, o, t, path + (i,)) for i, (b, o, t) in enumerate(zip(base, ours, theirs, strict=True))]
        self.conflict(path)
        return ours

    def mapping(self, base: TreeMap, ours: TreeMap, theirs: TreeMap, path: tuple[Any, ...]) -> TreeMap | None:
        split = [_entries(base), _entries(ours), _entries(theirs)]
        if split[0] is None or split[1] is None or split[2] is None:
            return None  # repeated keys: the caller treats the mapping as one value
        (_, b_map), (o_order, o_map), (t_order, t_map) = split[0], split[1], split[2]
        result: dict[Any, _Entry] = {}
        for key in _union(o_order, t_order, list(b_map)):
            entry = self.entry(b_map.get(key), o_map.get(key), t_map.get(key), path, key)
            if entry is not None:
                result[key] = entry
        return _rebuild(_merged_order(o_order, t_order, set(result)), result)

    def entry(
        self, base: _Entry | None, ours: _Entry | None, theirs: _Entry | None, path: tuple[Any, ...], key: Any
    ) -> _Entry | None:
        here = path if key is _TRAILER else path + (key,)
        if ours is not None and theirs is not None:
            note = _Note("comments after the last key" if key is _TRAILER else "comments above it")
            comments = self.value(
                base.comments if base is not None else MISSING, ours.comments, theirs.comments, here + (note,)
            )
            if key is _TRAILER:
                return _Entry(comments, None)
            value = self.value(base.value if base is not None else MISSING, ours.value, theirs.value, here)
            return _Entry(comments, value)
        present = ours if ours is not None else theirs
        if present is None:
            return None  # deleted on both sides (or never there)
        if base is None:
            return present  # added on one side
        if _same_entry(base, present):
            return None  # deleted on the other side, untouched here
        self.conflict(here + (_Note("deleted on one side, changed on the other"),))
        return ours if ours is not None else base


def _same_entry(a: _Entry, b: _Entry) -> bool:
    return same(a.comments, b.comments) and same(a.value, b.value)


def _union(*orders: list[Any]) -> list[Any]:
    seen: dict[Any, None] = {}
    for order in orders:
        for key in order:
            seen.setdefault(key, None)
    return list(seen)


def merge_trees(base: Branches | None, ours: Branches, theirs: Branches) -> MergeResult:
    """Merge plaintext documents; ``base`` None means no common ancestor (both
    sides added the file). The branches returned are only meaningful when
    ``conflicts`` is empty."""
    merger = _Merger()
    if base is not None and len(base) == len(ours) == len(theirs):
        bases: list[Any] = list(base)
    elif base is None and len(ours) == len(theirs):
        bases = [MISSING] * len(ours)
    else:
        # A document was added or removed: only a one-sided change merges.
        if base is not None and same(base, ours):
            return MergeResult(theirs)
        if (base is not None and same(base, theirs)) or same(ours, theirs):
            return MergeResult(ours)
        return MergeResult(ours, ["(the number of YAML documents changed)"])
    merged = []
    for index, (b, o, t) in enumerate(zip(bases, ours, theirs, strict=True)):
        merger.prefix = _document_prefix(index, len(ours))
        merged.append(merger.value(b, o, t, ()))
    return MergeResult(merged, merger.conflicts)


# --- whole encrypted documents -------------------------------------------------------------


@dataclass
class DocumentMerge:
    """The outcome of :func:`merge_documents`: ``data`` is the merged encrypted
    file (None on conflict), ``conflicts`` the key paths, ``key_source`` which
    side's data key and recipients were used ("ours" or "theirs")."""

    data: bytes | None
    conflicts: list[str]
    key_source: str


def merge_documents(store: Any, base: bytes | None, ours: bytes, theirs: bytes) -> DocumentMerge:
    """Decrypt the three versions in memory, merge them and encrypt the result.

    Key choice: ours' data key and recipients, unless theirs is the newer key
    set. Theirs is newer when its data key differs from ours and (a) ours
    still has the base's data key (theirs rotated), or (b) neither side has
    the base's key (both rotated, or no usable base) and theirs'
    ``lastmodified`` is later. With one data key on both sides, a recipient
    change made on one side only (``updatekeys``) is kept.

    Every value whose plaintext the chosen side already holds keeps its exact
    ciphertext (the IVs seen while decrypting are reused); values taken from
    the other side keep theirs when both share the data key and are encrypted
    afresh otherwise. lastmodified and MAC are new.
    """
    from .cipher import Cipher
    from .operations import decrypt_document, encrypt_document

    ours_doc = decrypt_document(store, ours)
    theirs_doc = _decrypt_trying(store, theirs, [ours_doc.data_key])
    base_doc = None
    if base is not None:
        base_doc = _decrypt_trying(store, base, [ours_doc.data_key, theirs_doc.data_key])
    result = merge_trees(base_doc.branches if base_doc else None, ours_doc.branches, theirs_doc.branches)
    if result.conflicts:
        return DocumentMerge(None, result.conflicts, "ours")
    base_key = base_doc.data_key if base_doc else None
    source = _key_source(ours_doc, theirs_doc, base_key)
    chosen, other = (theirs_doc, ours_doc) if source == "theirs" else (ours_doc, theirs_doc)
    cipher = Cipher(chosen.data_key)
    cipher.iv_cache = dict(chosen.cipher.iv_cache)
    # Same data key: values taken from the other side (or back from the base)
    # keep their ciphertext too. Another key's IVs would not reproduce it.
    for donor in (other, base_doc):
        if donor is not None and donor.data_key == chosen.data_key:
            for cache_key, iv in donor.cipher.iv_cache.items():
                cipher.iv_cache.setdefault(cache_key, iv)
    meta = chosen.metadata
    if source == "ours" and ours_doc.data_key == theirs_doc.data_key and base_doc is not None:
        meta = _recipients_side(base_doc.metadata, ours_doc.metadata, theirs_doc.metadata)
    data = encrypt_document(store, result.branches, meta, chosen.data_key, cipher)
    return DocumentMerge(data, [], source)


def _decrypt_trying(store: Any, data: bytes, keys: list[bytes]) -> Any:
    """Decrypt with a data key we already hold when it fits (no second call to
    age, gpg or KMS), else the usual way. A wrong key cannot pass: the MAC is
    authenticated under the data key."""
    from .operations import decrypt_document

    for key in keys:
        try:
            return decrypt_document(store, data, data_key=key)
        except SopsError:
            continue
    return decrypt_document(store, data)


def _key_source(ours: Any, theirs: Any, base_key: bytes | None) -> str:
    """Whose data key and recipients the result gets: "ours" or "theirs"."""
    if ours.data_key == theirs.data_key:
        return "ours"
    if base_key is not None and ours.data_key == base_key:
        return "theirs"
    if base_key is not None and theirs.data_key == base_key:
        return "ours"
    return "theirs" if _stamp(theirs.metadata.lastmodified) > _stamp(ours.metadata.lastmodified) else "ours"


def _stamp(text: str) -> datetime.datetime:
    # lastmodified_aad validates and drops the fraction Python 3.10 cannot parse
    from .metadata import lastmodified_aad

    return datetime.datetime.fromisoformat(lastmodified_aad(text).replace("Z", "+00:00"))


def _layout(meta: Any) -> list[list[tuple[str, str]]]:
    return [[(k.type_name, k.identity()) for k in group] for group in meta.key_groups]


def _recipients_side(base: Any, ours: Any, theirs: Any) -> Any:
    """Same data key on both sides: whose key groups to write. A change on one
    side only wins; otherwise ours."""
    if _layout(ours) == _layout(base) and _layout(theirs) != _layout(base):
        return theirs
    return ours
