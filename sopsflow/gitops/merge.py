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

import dataclasses
from dataclasses import dataclass, field

from ..errors import SopsError
from ..keys.registry import RULE_KEY_TYPES
from ..tree import Branches, Comment, TreeMap, go_float_f

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..config.keyspecs import KeySpec
    from ..metadata import Metadata
    from ..operations import Decrypted
    from ..stores import Store
    from ..tree import TreeValue


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


def same(a: TreeValue, b: TreeValue) -> bool:
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


def _key_step(key: TreeValue) -> str:
    text = str(key)
    quote = "'" if '"' in text and "'" not in text else '"'
    return f"[{quote}{text}{quote}]"


def show_path(path: tuple[TreeValue, ...]) -> str:
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


def _entries(node: TreeMap) -> tuple[list[TreeValue], dict[TreeValue, _Entry]] | None:
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


def _rebuild(order: list[TreeValue], found: dict[TreeValue, _Entry]) -> TreeMap:
    out = TreeMap()
    for key in order:
        entry = found[key]
        out.extend(entry.comments)
        if key is not _TRAILER:
            out.append((key, entry.value))
    return out


def _merged_order(ours: list[TreeValue], theirs: list[TreeValue], keep: set[TreeValue]) -> list[TreeValue]:
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

    def conflict(self, path: tuple[TreeValue, ...]) -> None:
        self.conflicts.append(self.prefix + show_path(path))

    def value(self, base: TreeValue, ours: TreeValue, theirs: TreeValue, path: tuple[TreeValue, ...]) -> TreeValue:
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

    def mapping(self, base: TreeMap, ours: TreeMap, theirs: TreeMap, path: tuple[TreeValue, ...]) -> TreeMap | None:
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
        self, base: _Entry | None, ours: _Entry | None, theirs: _Entry | None, path: tuple[TreeValue, ...], key: TreeValue
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


def _union(*orders: list[TreeValue]) -> list[TreeValue]:
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

#: Identities of one file's (or rule's) key groups: per group, (type, identity).
Layout = list[list[tuple[str, str]]]

OURS = "ours"
THEIRS_RECIPIENTS = "theirs-recipients"
FRESH = "fresh"


@dataclass
class KeyPolicy:
    """What ours' ``.sops.yaml`` prescribes for the file being merged.

    ``layout`` is the rule's key groups as identities; ``specs`` the same as
    :class:`sopsflow.config.keyspecs.KeySpec` groups, used to wrap a fresh data key
    (None: wrap it for ours' own keys); ``label`` names the rule in messages.
    """

    layout: Layout
    specs: list[list[KeySpec]] | None
    label: str
    #: identities ``allow.recipients`` accepts for this file beyond the rule
    allowed: frozenset[str] = frozenset()


@dataclass
class DocumentMerge:
    """The outcome of :func:`merge_documents`.

    ``data`` is the merged encrypted file (None when it cannot be written);
    ``conflicts`` the conflicting key paths; ``refused`` why no key set could
    be chosen safely (then ``data`` is None too); ``key_source`` which key set
    was used: :data:`OURS` (ours' data key and recipients),
    :data:`THEIRS_RECIPIENTS` (the shared data key with theirs' recipient
    change) or :data:`FRESH` (a new data key for the policy's recipients);
    ``notes`` say why, for the merging user.
    """

    data: bytes | None
    conflicts: list[str]
    key_source: str
    notes: list[str] = field(default_factory=list)
    refused: str | None = None


def merge_documents(store: Store, base: bytes | None, ours: bytes, theirs: bytes,
                    policy: KeyPolicy | None = None) -> DocumentMerge:
    """Decrypt the three versions in memory, merge them and encrypt the result.

    Every part of theirs, its data key and recipients included, is written by
    the author of the branch, who needs no private key to build it (public
    recipients are enough). So the key set is chosen by ``policy`` (ours'
    creation rule; None: ours' own recipients are the policy), never by
    theirs:

    * theirs' data key, when it differs from ours', is never adopted: its
      author may know it even when it is wrapped only for the rule's keys;
    * same data key on both sides: a recipient change made on theirs only is
      kept when it adds nobody outside the policy (and outside ours' own
      recipients) and drops no entry of a key type a rule cannot name;
      otherwise ours' recipients are kept, or, when theirs added someone
      outside the policy (who then holds this data key), the data key is
      replaced;
    * theirs replaced the data key and ours still has the base's: theirs'
      rotation is honoured with a *fresh* data key for the policy's recipients;
    * anything else (ours rotated, both rotated, no base): ours' key set.

    A fresh data key is refused (``refused`` set, no data) when a side holds an
    entry of a key type a rule cannot name: it cannot be wrapped afresh and is
    never dropped. Values whose plaintext the chosen key set already holds keep
    their exact ciphertext (the IVs seen while decrypting are reused);
    lastmodified and MAC are new.
    """
    from ..cipher import Cipher
    from ..operations import decrypt_document, encrypt_document

    ours_doc = decrypt_document(store, ours)
    theirs_doc = _decrypt_trying(store, theirs, [ours_doc.data_key])
    base_doc = None
    if base is not None:
        base_doc = _decrypt_trying(store, base, [ours_doc.data_key, theirs_doc.data_key])
    result = merge_trees(base_doc.branches if base_doc else None, ours_doc.branches, theirs_doc.branches)
    if result.conflicts:
        return DocumentMerge(None, result.conflicts, OURS)
    if policy is None:
        policy = KeyPolicy(_layout(ours_doc.metadata), None, "ours' recipients (no creation rule)")
    source, notes = _choose_key_set(ours_doc, theirs_doc, base_doc, policy)
    if source == FRESH:
        problem = _cannot_rotate(ours_doc.metadata, theirs_doc.metadata)
        if problem:
            return DocumentMerge(None, [], FRESH, notes, refused=problem)
        data = _encrypt_fresh(store, result.branches, ours_doc.metadata, policy)
        return DocumentMerge(data, [], FRESH, notes)
    cipher = Cipher(ours_doc.data_key)
    cipher.iv_cache = dict(ours_doc.cipher.iv_cache)
    # Same data key: values taken from the other side (or back from the base)
    # keep their ciphertext too. Another key's IVs would not reproduce it.
    for donor in (theirs_doc, base_doc):
        if donor is not None and donor.data_key == ours_doc.data_key:
            for cache_key, iv in donor.cipher.iv_cache.items():
                cipher.iv_cache.setdefault(cache_key, iv)
    meta = ours_doc.metadata
    if source == THEIRS_RECIPIENTS:
        meta = dataclasses.replace(ours_doc.metadata, key_groups=theirs_doc.metadata.key_groups,
                                   shamir_threshold=theirs_doc.metadata.shamir_threshold)
    data = encrypt_document(store, result.branches, meta, ours_doc.data_key, cipher)
    return DocumentMerge(data, [], source, notes)


def _choose_key_set(ours: Decrypted, theirs: Decrypted, base: Decrypted | None, policy: KeyPolicy) -> tuple[str, list[str]]:
    ours_layout, theirs_layout = _layout(ours.metadata), _layout(theirs.metadata)
    allowed = _identities(policy.layout) | _identities(ours_layout)
    outside = [ident for t, ident in _unique_keys(theirs_layout)
               if (t, ident) not in allowed and ident not in policy.allowed]
    if theirs.data_key != ours.data_key:
        notes = [f"theirs is encrypted for recipients that {policy.label} does not name ({', '.join(outside)}); "
                 "they get nothing from this merge"] if outside else []
        if base is not None and ours.data_key == base.data_key:
            return FRESH, notes + ["theirs replaced the data key; their key is not adopted (its author may "
                                   f"know it), the merge uses a fresh one for {policy.label}"]
        if base is None or theirs.data_key != base.data_key:
            notes.append("both sides have their own data key; kept ours' data key and recipients")
        return OURS, notes
    if base is None or _layout(base.metadata) != ours_layout or theirs_layout == ours_layout:
        return OURS, []
    # Only theirs changed the recipients of the shared data key.
    if outside:
        return FRESH, [f"theirs adds recipients that {policy.label} does not name ({', '.join(outside)}); "
                       "they hold the shared data key, so the merge replaces it"]
    dropped = [f"{t} {ident}" for t, ident in _unique_keys(ours_layout)
               if t not in RULE_KEY_TYPES and (t, ident) not in _identities(theirs_layout)]
    if dropped:
        return OURS, [f"theirs removes {', '.join(dropped)} (a key type sopsflow cannot check against a rule, "
                      "so it is never dropped); kept ours' recipients"]
    return THEIRS_RECIPIENTS, ["kept theirs' recipient change (same data key, nobody outside the rule)"]


def _cannot_rotate(*metas: Metadata) -> str | None:
    """Why a fresh data key cannot be wrapped without dropping an entry."""
    for meta in metas:
        for group in meta.key_groups:
            for key in group:
                if key.type_name not in RULE_KEY_TYPES:
                    return (f"a new data key is needed, but the file holds a {key.type_name} entry "
                            f"({key.identity()}) that sopsflow cannot wrap and will not drop")
    return None


def _encrypt_fresh(store: Store, branches: Branches, ours_meta: Metadata, policy: KeyPolicy) -> bytes:
    """``branches`` under a new data key wrapped for the policy's keys (ours'
    own keys when the policy has no rule), with ours' options."""
    from ..cipher import Cipher
    from ..operations import encrypt_document, new_data_key, rewrap_keys, wrap_keys

    data_key = new_data_key()
    if policy.specs is None:
        meta = dataclasses.replace(ours_meta, key_groups=[list(group) for group in ours_meta.key_groups])
        rewrap_keys(meta, data_key)
    else:
        from ..config.keyspecs import build_key

        groups = [[build_key(spec) for spec in group] for group in policy.specs]
        meta = dataclasses.replace(ours_meta, key_groups=groups,
                                   shamir_threshold=min(ours_meta.shamir_threshold, len(groups)))
        wrap_keys(meta, data_key)
    return encrypt_document(store, branches, meta, data_key, Cipher(data_key))


def _decrypt_trying(store: Store, data: bytes, keys: list[bytes]) -> Decrypted:
    """Decrypt with a data key we already hold when it fits (no second call to
    age, gpg or KMS), else the usual way. A wrong key cannot pass: the MAC is
    authenticated under the data key."""
    from ..operations import decrypt_document

    for key in keys:
        try:
            return decrypt_document(store, data, data_key=key)
        except SopsError:
            continue
    return decrypt_document(store, data)


def _layout(meta: Metadata) -> Layout:
    return [[(k.type_name, k.identity()) for k in group] for group in meta.key_groups]


def _identities(layout: Layout) -> set[tuple[str, str]]:
    return {entry for group in layout for entry in group}


def _unique_keys(layout: Layout) -> list[tuple[str, str]]:
    return list(dict.fromkeys(entry for group in layout for entry in group))
