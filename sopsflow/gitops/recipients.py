"""Add or remove a recipient in ``.sops.yaml`` without disturbing the rest.

The file goes through a ruamel.yaml round trip. Its indentation is detected
by trying the usual layouts and keeping the one that reproduces the file
exactly, so untouched lines - comments included - come back byte for byte.
Recipients may be written the ways sops accepts them (sops' `config/config.go`): a comma
separated string (plain, quoted or a folded ``>-`` block), a YAML list, or
lists inside ``key_groups`` (KMS entries there are mappings with ``arn``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .. import errors
from ..errors import SopsError
from ..lazyre import compile_lazy

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any, TypeAlias

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import Comment, CommentedMap, CommentedSeq
    from ruamel.yaml.tokens import CommentToken

    #: A value in ruamel's round-trip tree: a CommentedMap, a CommentedSeq or a
    #: scalar (str, or one of ruamel's str subclasses that keep the quoting or
    #: folding style). The code tells them apart with isinstance at run time;
    #: ruamel's own annotations for these containers' contents are Any.
    _YamlValue: TypeAlias = Any
    #: A key in a ruamel comment table: a mapping key (str) or a sequence index.
    _CommentKey: TypeAlias = "str | int"

KEY_TYPES = ("age", "pgp", "kms")
#: Flat rule fields that hold keys; a rule left without any of them has no key.
_FLAT_KEY_FIELDS = ("kms", "gcp_kms", "hckms", "azure_keyvault", "hc_vault_transit_uri", "pgp", "age")
_GROUP_KEY_FIELDS = ("kms", "gcp_kms", "hckms", "azure_keyvault", "hc_vault", "pgp", "age", "merge")

_AGE_RE = compile_lazy(r"^(age1[0-9a-z]{20,}|ssh-(ed25519|rsa) \S+.*)$")
_PGP_RE = compile_lazy(r"^[0-9A-Fa-f]{16}([0-9A-Fa-f]{24})?$")
_KMS_RE = compile_lazy(r"^arn:aws[\w-]*:kms:[^:]+:\d*:(key|alias)/\S+$")
_LABEL_RE = compile_lazy(
    r"(age1[0-9a-z]{20,}|\b[0-9A-Fa-f]{40}\b|arn:aws[\w-]*:kms:\S+?)[\"']?\s*,?\s*#\s*(\S.*?)\s*$"
)

# Layouts tried for the round trip, most common first: (mapping, sequence, offset);
# ``offset`` is the dash's indent, ``sequence`` the item content's.
_LAYOUTS = tuple(
    (mapping, offset + gap, offset)
    for mapping in (2, 4, 3)
    for offset in (2, 0, 4, 1, 3)
    for gap in (2, 4, 3)
)


@dataclass
class EditResult:
    text: str
    changed_rules: list[int] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    layout_exact: bool = True


def detect_type(key: str) -> str:
    """age, pgp or kms, from the key's shape."""
    key = key.strip()
    if _AGE_RE.match(key):
        return "age"
    if _KMS_RE.match(key.split("+", 1)[0]):
        return "kms"
    if _PGP_RE.match(key.replace(" ", "")):
        return "pgp"
    raise SopsError(errors.GENERIC, f"cannot tell the key type of {key!r}; pass --type age|pgp|kms")


def normalize_key(key: str, key_type: str) -> str:
    key = key.strip()
    if key_type == "pgp":
        key = key.replace(" ", "").upper()
        if not _PGP_RE.match(key):
            raise SopsError(errors.GENERIC, f"not a PGP fingerprint: {key!r}")
    elif key_type == "age":
        if not _AGE_RE.match(key):
            raise SopsError(errors.GENERIC, f"not an age recipient: {key!r}")
        if key.startswith("age1"):
            _check_age_recipient(key)
    elif key_type == "kms":
        if not _KMS_RE.match(key.split("+", 1)[0]):
            raise SopsError(errors.GENERIC, f"not an AWS KMS key ARN: {key!r}")
    else:
        raise SopsError(errors.GENERIC, f"unknown key type {key_type!r} (age, pgp or kms)")
    return key


def _check_age_recipient(key: str) -> None:
    # Before anything is written: a typo here would lock every future file.
    import pyrage

    try:
        if key.startswith("age1pq1"):
            from ..keys.agepq import check_recipient

            check_recipient(key)
        else:
            pyrage.x25519.Recipient.from_str(key)
    except Exception:
        raise SopsError(errors.GENERIC, f"not a valid age recipient: {key!r}") from None


def _same_key(a: str, b: str, key_type: str) -> bool:
    a, b = a.strip(), b.strip()
    if key_type == "pgp":
        return a.replace(" ", "").upper() == b.replace(" ", "").upper()
    if key_type == "kms" and "+" not in a:
        return b.split("+", 1)[0] == a  # an ARN alone matches it with any role
    return a == b


# --- the YAML round trip ---------------------------------------------------------


def _yaml(layout: tuple[int, int, int], explicit_start: bool) -> YAML:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 1 << 16  # never re-wrap long lines
    mapping, sequence, offset = layout
    y.indent(mapping=mapping, sequence=sequence, offset=offset)
    y.explicit_start = explicit_start
    return y


def _dump(y: YAML, data: _YamlValue) -> str:
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def load_round_trip(text: str) -> tuple[YAML, _YamlValue, bool]:
    """(yaml instance, document, exact) for the layout that reproduces ``text``
    best; ``exact`` says whether untouched files come back byte for byte."""
    from ruamel.yaml import YAMLError

    explicit = text.lstrip().startswith("---")
    best: tuple[int, Any, Any] | None = None
    for layout in _LAYOUTS:
        y = _yaml(layout, explicit)
        try:
            data = y.load(text)
        except YAMLError as exc:
            raise SopsError(errors.ERROR_READING_CONFIG, f"invalid .sops.yaml: {_first_line(exc)}") from None
        except RecursionError:
            # ruamel recurses once per level, as load_config's parsers refuse too
            raise SopsError(errors.ERROR_READING_CONFIG, "invalid .sops.yaml: nesting is too deep") from None
        out = _dump(y, data)
        if out == text:
            return y, data, True
        score = _diff_lines(text, out)
        if best is None or score < best[0]:
            best = (score, y, data)
    assert best is not None
    return best[1], best[2], False


def _diff_lines(a: str, b: str) -> int:
    import difflib

    return sum(1 for line in difflib.ndiff(a.splitlines(), b.splitlines()) if line[:1] in "+-")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _rules(data: _YamlValue) -> list[CommentedMap]:
    from ruamel.yaml.comments import CommentedMap

    rules = data.get("creation_rules") if isinstance(data, dict) else None
    if not isinstance(rules, list) or not rules:
        raise SopsError(errors.GENERIC, ".sops.yaml has no creation_rules")
    for i, rule in enumerate(rules):
        if not isinstance(rule, CommentedMap):
            raise SopsError(errors.ERROR_READING_CONFIG, f"creation rule {i} is not a mapping")
    return rules


def _describe(index: int, rule: CommentedMap) -> str:
    regex = rule.get("path_regex")
    return f"rule {index} ({regex})" if regex else f"rule {index} (every file)"


def select_rules(rules: list[CommentedMap], rule: int | None, path_regex: str | None) -> list[int]:
    if rule is not None:
        if not 0 <= rule < len(rules):
            raise SopsError(errors.GENERIC, f"there is no rule {rule}; .sops.yaml has rules 0..{len(rules) - 1}")
        return [rule]
    if path_regex is not None:
        hits = [i for i, r in enumerate(rules) if str(r.get("path_regex") or "") == path_regex]
        if not hits:
            raise SopsError(
                errors.GENERIC, f"no creation rule has path_regex {path_regex!r}; rules: " + _rule_list(rules)
            )
        return hits
    return list(range(len(rules)))


def _rule_list(rules: list[CommentedMap]) -> str:
    return "; ".join(_describe(i, r) for i, r in enumerate(rules))


# --- public operations -------------------------------------------------------------


def add_recipient(text: str, key: str, *, key_type: str | None = None, rule: int | None = None,
                  path_regex: str | None = None, group: int | None = None) -> EditResult:
    """Add ``key`` to the chosen rule (and key group). Without a rule choice the
    config must have exactly one rule."""
    key_type = key_type or detect_type(key)
    key = normalize_key(key, key_type)
    y, data, exact = load_round_trip(text)
    rules = _rules(data)
    chosen = select_rules(rules, rule, path_regex)
    if rule is None and path_regex is None and len(rules) > 1:
        raise SopsError(
            errors.GENERIC,
            f".sops.yaml has {len(rules)} creation rules; choose one with --rule N or --path-regex RE: "
            + _rule_list(rules),
        )
    result = EditResult(text, layout_exact=exact)
    for index in chosen:
        target = rules[index]
        if _has_groups(target):
            groups = target["key_groups"]
            g = _pick_group(index, groups, group)
            added = _add_to_group(groups[g], key, key_type)
            where = f"{_describe(index, target)}, key group {g + 1}"
        else:
            if group not in (None, 1):
                raise SopsError(errors.GENERIC, f"{_describe(index, target)} has no key_groups")
            added = _add_flat(target, key, key_type)
            where = _describe(index, target)
        if added:
            result.changed_rules.append(index)
            result.messages.append(f"added {key_type} {key} to {where}")
        else:
            result.messages.append(f"{key} is already in {where}")
    if result.changed_rules:
        result.text = _dump(y, data)
    return result


def remove_recipient(text: str, key: str, *, key_type: str | None = None, rule: int | None = None,
                     path_regex: str | None = None, group: int | None = None) -> EditResult:
    """Remove ``key`` from the chosen rules (default: every rule holding it)."""
    key_type = key_type or detect_type(key)
    key = key.strip() if key_type != "pgp" else key.replace(" ", "").upper()
    y, data, exact = load_round_trip(text)
    rules = _rules(data)
    result = EditResult(text, layout_exact=exact)
    for index in select_rules(rules, rule, path_regex):
        target = rules[index]
        if _has_groups(target):
            removed = 0
            for g, grp in enumerate(target["key_groups"]):
                if group is not None and g != group - 1:
                    continue
                n = _remove_from_group(grp, key, key_type)
                if n and not _group_has_keys(grp):
                    raise SopsError(
                        errors.GENERIC,
                        f"removing {key} would leave key group {g + 1} of {_describe(index, target)} empty; "
                        "delete the group or add another key first",
                    )
                removed += n
        else:
            removed = _remove_flat(target, key, key_type)
            if removed and not any(target.get(f) for f in _FLAT_KEY_FIELDS):
                raise SopsError(
                    errors.GENERIC,
                    f"removing {key} would leave {_describe(index, target)} without any key; "
                    "delete the rule or add another recipient first",
                )
        if removed:
            result.changed_rules.append(index)
            result.messages.append(f"removed {key} from {_describe(index, target)}")
    if not result.changed_rules:
        raise SopsError(errors.GENERIC, f"{key} is not a recipient of the selected creation rule(s)")
    result.text = _dump(y, data)
    return result


def recipient_labels(text: str) -> dict[str, str]:
    """Owner names written as end-of-line comments next to keys in ``.sops.yaml``
    (``- age1... # alice``); used to say who holds a key."""
    labels: dict[str, str] = {}
    for line in text.splitlines():
        match = _LABEL_RE.search(line)
        if match:
            labels.setdefault(match.group(1).rstrip(",\"'"), match.group(2))
    return labels


# --- flat rules --------------------------------------------------------------------


def _has_groups(rule: CommentedMap) -> bool:
    return isinstance(rule.get("key_groups"), list) and bool(rule.get("key_groups"))


def _add_flat(rule: CommentedMap, key: str, key_type: str) -> bool:
    from ruamel.yaml.comments import CommentedSeq

    current = rule.get(key_type)
    if isinstance(current, list):
        if any(_same_key(str(item), key, key_type) for item in current):
            return False
        _append_item(current, key)
        return True
    if current is not None and str(current).strip():
        items = _split(str(current))
        if any(_same_key(item, key, key_type) for item in items):
            return False
        rule[key_type] = _append_to_string(current, key)
        return True
    # A new field: follow the style of the rule's other key fields.
    uses_lists = any(isinstance(rule.get(f), list) for f in _FLAT_KEY_FIELDS)
    value: Any = CommentedSeq([key]) if uses_lists else key
    position = _insert_position(rule)
    if key_type in rule:
        rule[key_type] = value
    else:
        keys = list(rule.keys())
        rule.insert(position, key_type, value)
        if keys and position == len(keys):
            _carry_trailing_comment(rule, keys[-1], key_type)
    return True


def _append_item(seq: list[_YamlValue], value: _YamlValue) -> None:
    """Append to a list, keeping the comment lines that followed its last item
    (a blank line and the next section's heading) after the new last item."""
    seq.append(value)
    if len(seq) >= 2:
        _carry_trailing_comment(seq, len(seq) - 2, len(seq) - 1)


def _carry_trailing_comment(container: _YamlValue, before: _YamlValue, new: _YamlValue) -> None:
    """ruamel keeps the lines that follow an entry (blank lines, comments) in
    that entry's end-of-line comment token, so a new entry placed after it
    would land below them. Move those lines to the new entry; the old entry
    keeps its own end-of-line comment."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    owner, slot_key, index = _trailing_slot(container, before)
    if owner is None:
        return
    token = owner.ca.items[slot_key][index]
    own, newline, following = token.value.partition("\n")
    if not following:
        return  # only an end-of-line comment: it stays where it is
    token.value = own + newline
    moved = CommentToken(newline + following, CommentMark(token.column), None)
    target: Any = container
    slot = new
    while isinstance(target[slot], dict) and target[slot]:  # a mapping entry (KMS): after its last value
        target, slot = target[slot], list(target[slot].keys())[-1]
    target.ca.items[slot] = [moved, None, None, None] if isinstance(target, list) else [None, None, moved, None]


def _trailing_slot(container: _YamlValue, key: _CommentKey) -> tuple[_YamlValue, _CommentKey | None, int]:
    """(node, key, token index) of the comment token after ``container[key]``,
    looking into the last entry of a nested mapping or list; (None, None, 0)."""
    index = 0 if isinstance(container, list) else 2
    entry = getattr(container, "ca", None) and container.ca.items.get(key)
    if entry and len(entry) > index and entry[index] is not None:
        return container, key, index
    value = container[key]
    if isinstance(value, dict) and value:
        return _trailing_slot(value, list(value.keys())[-1])
    if isinstance(value, list) and value:
        return _trailing_slot(value, len(value) - 1)
    return None, None, 0


def _insert_position(rule: CommentedMap) -> int:
    keys = list(rule.keys())
    last = -1
    for i, name in enumerate(keys):
        if name in _FLAT_KEY_FIELDS or name == "path_regex":
            last = i
    return last + 1 if last >= 0 else len(keys)


def _remove_flat(rule: CommentedMap, key: str, key_type: str) -> int:
    current = rule.get(key_type)
    if isinstance(current, list):
        hits = [i for i, item in enumerate(current) if _same_key(key, str(item), key_type)]
        for i in reversed(hits):
            _delete_item(current, i)
        if hits and not current:
            _delete_key(rule, key_type)
        return len(hits)
    if current is None:
        return 0
    items = _split(str(current))
    kept = [item for item in items if not _same_key(key, item, key_type)]
    if len(kept) == len(items):
        return 0
    if kept:
        rule[key_type] = _rebuild_string(current, kept)
    else:
        _delete_key(rule, key_type)
    return len(items) - len(kept)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _separator(value: str) -> str:
    match = re.search(r",\s*", value)
    return match.group(0) if match else ","


def _append_to_string(current: str, key: str) -> _YamlValue:
    from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

    text = str(current)
    if isinstance(current, FoldedScalarString):
        return _folded(_split(text) + [key], bool(getattr(current, "fold_pos", None)))
    if isinstance(current, LiteralScalarString):
        body = text.rstrip("\n")
        tail = text[len(body):]
        return LiteralScalarString(body + (_separator(body) if "," in body else ",\n") + key + tail)
    return _same_style(current, text.rstrip() + _separator(text) + key)


def _rebuild_string(current: str, items: list[str]) -> _YamlValue:
    from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

    text = str(current)
    if isinstance(current, FoldedScalarString):
        return _folded(items, bool(getattr(current, "fold_pos", None)))
    if isinstance(current, LiteralScalarString):
        body = text.rstrip("\n")
        return LiteralScalarString(_separator(body).join(items) + text[len(body):])
    return _same_style(current, _separator(text).join(items))


def _folded(items: list[str], one_per_line: bool) -> _YamlValue:
    from ruamel.yaml.scalarstring import FoldedScalarString

    value = FoldedScalarString(", ".join(items))
    if one_per_line:
        # Fold at the space after each comma: one recipient per line, as written.
        positions, offset = [], 0
        for item in items[:-1]:
            offset += len(item) + 1
            positions.append(offset)
            offset += 1
        value.fold_pos = positions
    return value


def _same_style(current: _YamlValue, text: str) -> _YamlValue:
    kind = type(current)
    return text if kind is str else kind(text)


# --- key groups ----------------------------------------------------------------------


def _pick_group(index: int, groups: list[CommentedMap], group: int | None) -> int:
    """0-based position of the group to edit; ``group`` is 1-based."""
    if group is None:
        if len(groups) == 1:
            return 0
        raise SopsError(
            errors.GENERIC, f"rule {index} has {len(groups)} key groups; choose one with --group N (1..{len(groups)})"
        )
    if not 1 <= group <= len(groups):
        raise SopsError(errors.GENERIC, f"rule {index} has no key group {group} (groups are 1..{len(groups)})")
    return group - 1


def _group_entries(grp: CommentedMap, key_type: str) -> Iterator[tuple[list[_YamlValue], int, str]]:
    """(list, index, key string) of every ``key_type`` entry in a group, merge included."""
    if not isinstance(grp, dict):
        return
    items = grp.get(key_type)
    if isinstance(items, list):
        for i, item in enumerate(items):
            yield items, i, _entry_key(item, key_type)
    for nested in grp.get("merge") or []:
        yield from _group_entries(nested, key_type)


def _entry_key(item: _YamlValue, key_type: str) -> str:
    if key_type == "kms" and isinstance(item, dict):
        arn = str(item.get("arn", ""))
        return arn + ("+" + str(item["role"]) if item.get("role") else "")
    return str(item)


def _add_to_group(grp: CommentedMap, key: str, key_type: str) -> bool:
    from ruamel.yaml.comments import CommentedMap

    if any(_same_key(existing, key, key_type) or _same_key(key, existing, key_type)
           for _, _, existing in _group_entries(grp, key_type)):
        return False
    entry: Any = key
    if key_type == "kms":
        arn, _, role = key.partition("+")
        entry = CommentedMap([("arn", arn)] + ([("role", role)] if role else []))
    items = grp.get(key_type)
    if isinstance(items, list):
        _append_item(items, entry)
    else:
        grp[key_type] = CommentedSeq([entry])
    return True


def _remove_from_group(grp: CommentedMap, key: str, key_type: str) -> int:
    hits = [(items, i) for items, i, existing in _group_entries(grp, key_type) if _same_key(key, existing, key_type)]
    # Delete from the back so earlier indexes stay valid.
    for items, i in sorted(hits, key=lambda h: (id(h[0]), -h[1])):
        _delete_item(items, i)
    _drop_empty_lists(grp, key_type)
    return len(hits)


def _drop_empty_lists(grp: CommentedMap, key_type: str) -> None:
    if not isinstance(grp, dict):
        return
    if isinstance(grp.get(key_type), list) and not grp[key_type]:
        _delete_key(grp, key_type)
    for nested in grp.get("merge") or []:
        _drop_empty_lists(nested, key_type)


def _group_has_keys(grp: CommentedMap) -> bool:
    if not isinstance(grp, dict):
        return False
    if any(grp.get(f) for f in _GROUP_KEY_FIELDS if f != "merge"):
        return True
    return any(_group_has_keys(n) for n in grp.get("merge") or [])


# --- comment-preserving deletes ---------------------------------------------------------


def _delete_item(seq: _YamlValue, index: int) -> None:
    """Delete a list item. Its end-of-line comment goes with it (it describes
    the key); comment lines that followed it are kept, re-attached to the
    previous item."""
    token = _comment_token(getattr(seq, "ca", None), index, 0)
    del seq[index]
    rest = _following_lines(token)
    if rest and index > 0:
        _append_comment(seq.ca.items, index - 1, 0, rest)


def _delete_key(mapping: _YamlValue, key: str) -> None:
    keys = list(mapping.keys())
    position = keys.index(key)
    token = _comment_token(getattr(mapping, "ca", None), key, 2)
    value = mapping[key]
    # A block list keeps its trailing comment lines on the last item.
    if isinstance(value, list) and value:
        token = _comment_token(getattr(value, "ca", None), len(value) - 1, 0) or token
    del mapping[key]
    rest = _following_lines(token)
    if rest and position > 0:
        _append_comment(mapping.ca.items, keys[position - 1], 2, rest)


def _comment_token(ca: Comment | None, key: _CommentKey, slot: int) -> CommentToken | None:
    if ca is None:
        return None
    entry = ca.items.get(key)
    if not entry or len(entry) <= slot:
        return None
    token: CommentToken | None = entry[slot]
    return token


def _following_lines(token: CommentToken | None) -> str:
    """The comment lines after the first line of ``token`` (the lines that sat
    below the deleted node), with their indentation."""
    if token is None:
        return ""
    # The first line is the node's own end-of-line comment (or empty).
    return str(token.value).partition("\n")[2]


def _append_comment(items: dict[_CommentKey, list[CommentToken | None]], key: _CommentKey, slot: int, lines: str) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    entry = items.setdefault(key, [None, None, None, None])
    while len(entry) <= slot:
        entry.append(None)
    existing = entry[slot]
    if existing is not None:
        existing.value = str(existing.value) + lines
    else:
        entry[slot] = CommentToken("\n" + lines, CommentMark(0), None)
