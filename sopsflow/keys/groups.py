"""Key groups: recover the data key from a file's master keys, and wrap a
data key for them (Shamir-split when there are two or more groups).

Recovery follows sops 3.11 (sops' `sops.go`, GetDataKeyWithKeyServices): every group is tried; inside a
group the keys are sorted stably by the decryption order and the first key
that unwraps wins. On failure the SopsError(128) carries sops' per-group,
per-key report (sops' `sops.go`, GetDataKeyWithKeyServices), followed by a short note on which identities
the user holds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from .. import errors
from ..errors import SopsError
from .base import KeyFailure, MasterKey

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from dataclasses import dataclass, field
    from typing import Protocol
else:  # the same classes without importing dataclasses (start-up time)
    from ..records import dataclass, field

DEFAULT_DECRYPTION_ORDER = ("age", "pgp")
SOPS_DECRYPTION_ORDER = "SOPS_DECRYPTION_ORDER"
FAILED_MESSAGE = "Failed to get the data key required to decrypt the SOPS file."


if TYPE_CHECKING:  # a protocol for the type checker only: annotations are never evaluated

    class KeyedFile(Protocol):
        """What recovering a data key reads of a file's metadata (metadata.Metadata
        has it; keys/ does not import the metadata module)."""

        key_groups: list[list[MasterKey]]
        shamir_threshold: int


def parse_decryption_order(text: str) -> list[str]:
    """``--decryption-order`` / ``SOPS_DECRYPTION_ORDER``; "" means the default.

    A repeated type is SopsError(112), as in sops.
    """
    if text == "":
        return list(DEFAULT_DECRYPTION_ORDER)
    return check_decryption_order(text.split(","))


def check_decryption_order(order: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    for name in order:
        if name in seen:
            raise SopsError(errors.DUPLICATE_DECRYPTION_KEY_TYPE, f"Duplicate decryption key type: {name}")
        seen.add(name)
    return list(order)


def resolve_decryption_order(order: Sequence[str] | str | None) -> list[str]:
    """None -> ``SOPS_DECRYPTION_ORDER`` or the default; a string is parsed."""
    if order is None:
        return parse_decryption_order(os.environ.get(SOPS_DECRYPTION_ORDER, ""))
    if isinstance(order, str):
        return parse_decryption_order(order)
    return check_decryption_order(order)


def sort_group(group: Sequence[MasterKey], order: Sequence[str]) -> list[MasterKey]:
    """Stable sort by position in ``order``; unlisted types keep their place, last."""
    rank = {name: index for index, name in enumerate(order)}
    return sorted(group, key=lambda key: rank.get(key.type_name, len(order)))


@dataclass
class KeyAttempt:
    identity: str
    error: str | None  # None = this key unwrapped


@dataclass
class GroupResult:
    part: bytes | None
    attempts: list[KeyAttempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.part is not None


def decrypt_group(group: Sequence[MasterKey], order: Sequence[str]) -> GroupResult:
    """Try the group's keys in decryption order until one unwraps."""
    result = GroupResult(None)
    for key in sort_group(group, order):
        try:
            part = key.decrypt()
        except KeyFailure as exc:
            result.attempts.append(KeyAttempt(key.identity(), str(exc) or type(exc).__name__))
            continue
        except SopsError as exc:
            result.attempts.append(KeyAttempt(key.identity(), exc.message))
            continue
        result.attempts.append(KeyAttempt(key.identity(), None))
        result.part = part
        return result
    return result


def get_data_key(metadata: KeyedFile, decryption_order: Sequence[str] | str | None = None) -> bytes:
    """The file's data key. ``metadata`` needs ``key_groups`` and ``shamir_threshold``.

    Raises SopsError(128) with the failure report in ``detail``. The report
    starts with an empty line so that ``message + "\\n" + detail`` is laid out
    as sops prints it.
    """
    order = resolve_decryption_order(decryption_order)
    groups: list[list[MasterKey]] = [list(g) for g in metadata.key_groups]
    stored_threshold = int(metadata.shamir_threshold or 0)
    results = [decrypt_group(group, order) for group in groups]
    parts = [r.part for r in results if r.part is not None]
    if len(groups) > 1:
        # A file written with threshold 0 is treated as "every group is needed",
        # the value sops itself would have stored.
        required = stored_threshold or len(groups)
        if len(parts) < required:
            raise _failure(groups, results, required)
        from .. import shamir  # only files with several key groups need it (and secrets/random)

        try:
            return shamir.combine(parts)
        except ValueError as exc:
            raise SopsError(errors.COULD_NOT_RETRIEVE_KEY, f"could not get data key from shamir parts: {exc}") from None
    if len(parts) != 1:
        raise _failure(groups, results, stored_threshold)
    return parts[0]


def wrap_data_key(data_key: bytes, key_groups: Sequence[Sequence[MasterKey]], threshold: int) -> int:
    """Wrap ``data_key`` for every key; returns the threshold to record.

    One group: every key wraps the raw key and ``threshold`` is returned as
    given. Two or more: Shamir split (0 means "all groups"), key in group *i*
    wraps share *i*. Any failure is SopsError(1) listing every key that failed.
    """
    if not key_groups:
        raise SopsError(errors.GENERIC, "Could not generate data key: [no key groups provided]")
    if any(len(group) == 0 for group in key_groups):
        raise SopsError(errors.GENERIC, "Could not generate data key: [empty key group provided]")
    if len(key_groups) == 1:
        parts = [data_key]
        recorded = threshold
    else:
        recorded = threshold or len(key_groups)
        from .. import shamir

        try:
            parts = shamir.split(data_key, len(key_groups), recorded)
        except ValueError as exc:
            raise SopsError(
                errors.GENERIC,
                f"Could not generate data key: [could not split data key into parts for Shamir: {exc}]",
            ) from None
    _wrap_each((part, key) for part, group in zip(parts, key_groups, strict=True) for key in group)
    return recorded


def wrap_missing(data_key: bytes, group: Sequence[MasterKey]) -> None:
    """Wrap ``data_key`` for the keys of a single group that hold no wrap yet
    (the others already wrap this very key)."""
    _wrap_each((data_key, key) for key in group if not key.enc)


def _wrap_each(jobs: Iterable[tuple[bytes, MasterKey]]) -> None:
    """Wrap each (secret, key); any failure is SopsError(1) listing every key that failed."""
    failures = []
    for part, key in jobs:
        try:
            key.encrypt(part)
        except (KeyFailure, SopsError) as exc:
            reason = exc.message if isinstance(exc, SopsError) else str(exc)
            failures.append(f'failed to encrypt new data key with master key "{key.identity()}": {reason}')
    if failures:
        raise SopsError(errors.GENERIC, "Could not generate data key: [" + " ".join(failures) + "]")


# --------------------------------------------------------------------------
# What the user holds (for messages; never private material)


@dataclass
class IdentitySummary:
    #: public forms of the age identities found (age1..., "ssh-<type> <base64>")
    age: list[str]
    #: passphrase-protected age sources whose recipients are unknown until unlocked
    age_locked: list[str]
    #: fingerprints of the usable PGP secret keys (primary keys)
    pgp: list[str]


def identities_summary(*, age: bool = True, pgp: bool = True) -> IdentitySummary:
    """Which age recipients / PGP fingerprints the user can decrypt for."""
    held_age: list[str] = []
    locked: list[str] = []
    if age:
        from .age import load_identities

        found = load_identities()
        held_age = list(found.recipients)
        locked = [source.location for source in found.locked if source.kind == "age"]
    held_pgp: list[str] = []
    if pgp:
        from .pgp import held_secret_fingerprints

        held_pgp = held_secret_fingerprints()
    return IdentitySummary(held_age, locked, held_pgp)


def _holdings_note(groups: Sequence[Sequence[MasterKey]]) -> str:
    keys = [key for group in groups for key in group]
    age_recipients = [key.identity() for key in keys if key.type_name == "age"]
    pgp_fps = [key.identity() for key in keys if key.type_name == "pgp"]
    if not age_recipients and not pgp_fps:
        return ""
    summary = identities_summary(age=bool(age_recipients), pgp=bool(pgp_fps))
    lines = []
    if age_recipients:
        lines.append(_age_note(summary, age_recipients))
    if pgp_fps:
        lines.append(_pgp_note(summary, pgp_fps))
    return "\n".join(lines)


def _age_note(summary: IdentitySummary, file_recipients: list[str]) -> str:
    locked = ""
    if summary.age_locked:
        locked = (
            " (plus passphrase-protected identities in " + ", ".join(f"'{where}'" for where in summary.age_locked) + ")"
        )
    if not summary.age:
        return f"You hold no age identities{locked}."
    wanted = {" ".join(r.split()[:2]) for r in file_recipients}
    matching = [r for r in summary.age if r in wanted]
    held = ", ".join(summary.age)
    if matching:
        return (
            f"You hold age identities for: {held}{locked}; recipients of this file among them: "
            + ", ".join(matching)
            + "."
        )
    return f"You hold age identities for: {held}{locked}; none of them is a recipient of this file."


def _pgp_note(summary: IdentitySummary, file_fps: list[str]) -> str:
    from .pgp import fingerprint_matches, gnupg_home, held_secret_fingerprints

    if not summary.pgp:
        return f"You hold no PGP secret keys (GnuPG home {gnupg_home()})."
    usable = held_secret_fingerprints(include_subkeys=True)
    matching = [fp for fp in file_fps if any(fingerprint_matches(fp, held) for held in usable)]
    held = ", ".join(summary.pgp)
    if matching:
        return f"You hold PGP secret keys for: {held}; recipients of this file among them: " + ", ".join(matching) + "."
    return f"You hold PGP secret keys for: {held}; none of them is a recipient of this file."


# --------------------------------------------------------------------------
# The failure report, laid out as sops' usererrors.go


def _failure(groups: Sequence[Sequence[MasterKey]], results: Sequence[GroupResult], required: int) -> SopsError:
    return SopsError(errors.COULD_NOT_RETRIEVE_KEY, FAILED_MESSAGE, detail=failure_report(groups, results, required))


def failure_report(groups: Sequence[Sequence[MasterKey]], results: Sequence[GroupResult], required: int) -> str:
    blocks = [_group_block(index, result) for index, result in enumerate(results)]
    successes = sum(1 for r in results if r.ok)
    if required == 0:
        trailer = (
            "Recovery failed because no master key was able to decrypt the file. In order for SOPS to "
            "recover the file, at least one key has to be successful, but none were."
        )
    else:
        trailer = (
            f"Recovery failed because the file was encrypted with a Shamir threshold of {required}, but only "
            f"{successes} part(s) were successfully recovered, one for each successful key group. In order for "
            f"SOPS to recover the file, at least {required} groups have to be successful. In order for a group "
            "to be successful, decryption has to succeed with any of the keys in that key group."
        )
    report = "\n" + "\n\n".join(blocks) + "\n\n" + go_wordwrap(trailer, 75)
    note = _holdings_note(groups)
    if note:
        report += "\n\n" + note
    return report


def _group_block(index: int, result: GroupResult) -> str:
    header = f"Group {index}: {'SUCCESS' if result.ok else 'FAILED'}"
    if result.ok:
        return header
    keys = "\n\n".join(_key_block(attempt) for attempt in result.attempts)
    return header + "\n" + _prefix_lines(keys, "  ")


def _key_block(attempt: KeyAttempt) -> str:
    if attempt.error is None:
        return f"{attempt.identity}: SUCCESS"
    wrapped = _prefix_lines(go_wordwrap(attempt.error, 60), "  | ")
    wrapped = "-" + wrapped[1:]
    return f"{attempt.identity}: FAILED\n" + _prefix_lines(wrapped, "  ")


def _prefix_lines(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


def go_wordwrap(text: str, limit: int) -> str:
    """Greedy word wrap with the behaviour of github.com/mitchellh/go-wordwrap:
    existing newlines kept, breaks only at spaces, the space at a break dropped,
    words longer than the limit left whole on their own line."""
    out_lines = []
    for paragraph in text.split("\n"):
        out_lines.append(_wrap_line(paragraph, limit))
    return "\n".join(out_lines)


def _wrap_line(line: str, limit: int) -> str:
    out: list[str] = []
    current = 0  # characters on the output line so far
    pending_space = ""
    word = ""

    def flush_word() -> None:
        nonlocal current, pending_space, word
        out.append(pending_space + word)
        current += len(pending_space) + len(word)
        pending_space = ""
        word = ""

    for char in line:
        if char.isspace() and char != "\u00a0":
            if word:
                flush_word()
            pending_space += char
            continue
        word += char
        # The break is decided while the word grows, before it is written.
        if current + len(pending_space) + len(word) > limit and len(word) < limit:
            out.append("\n")
            current = 0
            pending_space = ""
    if word:
        flush_word()
    elif current + len(pending_space) <= limit:
        out.append(pending_space)
    return "".join(out)
