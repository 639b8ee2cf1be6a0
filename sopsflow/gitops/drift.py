"""Recipient drift: how a SOPS file's key groups differ from what its
creation rule names now (sops updatekeys' comparison).

Identities are compared as strings, per key group, from the rule's key
specs (``CreationRule.key_specs()``) and the file's metadata: no key object
is built and no key is needed. The hook's judgement (:mod:`.check`) reports
the drift; ``updatekeys`` (:mod:`.updatekeys`) repairs it. This module is
small on purpose: updatekeys imports it without the hook's detectors and
settings.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import NamedTuple

    from ..config.keyspecs import KeySpec
    from ..config.rules import CreationRule
    from ..metadata import Metadata

    #: Per key group, the (key type, identity) pairs it holds or should hold.
    Identities = list[list[tuple[str, str]]]
else:
    from ..records import NamedTuple


class GroupDiff(NamedTuple):
    index: int  # type: ignore[assignment]  # 0-based key group (shadows tuple.index on purpose)
    added: list[str]  # identities the rule names that the file lacks
    removed: list[str]  # identities the file has that the rule no longer names


#: Rules whose keys and options were checked (sops checks the chosen rule on
#: every match; once per rule is enough), by id, holding the rule so ids stay
#: unique, with the rule's key identities.
_CHECKED_RULES: dict[int, tuple[CreationRule, Identities]] = {}


def rule_checked(rule: CreationRule) -> bool:
    """Whether :func:`rule_identities` already built (and so checked) ``rule``'s keys."""
    return id(rule) in _CHECKED_RULES


def rule_identities(rule: CreationRule) -> Identities:
    """The rule's key identities per group, built once per rule (building them
    checks every key the rule names, which raises for a bad one)."""
    cached = _CHECKED_RULES.get(id(rule))
    if cached is None or cached[0] is not rule:
        cached = _CHECKED_RULES[id(rule)] = (rule, spec_identities(rule.key_specs()))
    return cached[1]


def spec_identities(specs: Sequence[Sequence[KeySpec]]) -> Identities:
    return [[(s.type_name, s.identity()) for s in group] for group in specs]


def recipient_diff(metadata: Metadata, rule: CreationRule) -> list[GroupDiff]:
    """Per key group, the identities to add and remove so the file matches its
    rule. Empty list: up to date."""
    return identity_diff(metadata, rule_identities(rule))


def identity_diff(metadata: Metadata, wanted: Identities) -> list[GroupDiff]:
    """:func:`recipient_diff` against the given identities per group (a rule's,
    plus whatever the caller carries over)."""
    have = [[(k.type_name, k.identity()) for k in group] for group in metadata.key_groups]
    diffs = []
    for i in range(max(len(wanted), len(have))):
        want = wanted[i] if i < len(wanted) else []
        got = have[i] if i < len(have) else []
        added = _unique(ident for t, ident in want if (t, ident) not in got)
        removed = _unique(ident for t, ident in got if (t, ident) not in want)
        if added or removed:
            diffs.append(GroupDiff(i, added, removed))
    return diffs


def format_group_diffs(diffs: list[GroupDiff]) -> str:
    """``group 1: +age1..., -age1...; group 2: ...`` (groups 1-based, as sops numbers them)."""
    parts = []
    for d in diffs:
        changes = [f"+{x}" for x in d.added] + [f"-{x}" for x in d.removed]
        parts.append(f"group {d.index + 1}: {', '.join(changes)}")
    return "; ".join(parts)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
