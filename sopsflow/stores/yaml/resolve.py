"""go-yaml v3 scalar resolution: which Python value a YAML scalar becomes.

sops 3.11 decodes every scalar into ``interface{}`` with go.yaml.in/yaml/v3,
so the rules here are go-yaml's ``resolve`` (a YAML-1.2-like core schema with
a few 1.1 leftovers) and Go's ``strconv`` / ``time.Parse`` underneath it.
"""

from __future__ import annotations

import math

from ...lazyre import compile_lazy
from ...tree import Time, UInt64

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

STR_TAG = "!!str"
INT_TAG = "!!int"
FLOAT_TAG = "!!float"
BOOL_TAG = "!!bool"
NULL_TAG = "!!null"
TIMESTAMP_TAG = "!!timestamp"
MERGE_TAG = "!!merge"
BINARY_TAG = "!!binary"
LONG_PREFIX = "tag:yaml.org,2002:"

_RESOLVABLE = frozenset(("", STR_TAG, BOOL_TAG, INT_TAG, FLOAT_TAG, NULL_TAG, TIMESTAMP_TAG))

_INF = float("inf")
# go-yaml's lookup table for the values that are not numbers or timestamps.
_MAP: dict[str, tuple[str, Any]] = {}
for _v, _t, _names in (
    (True, BOOL_TAG, ("true", "True", "TRUE")),
    (False, BOOL_TAG, ("false", "False", "FALSE")),
    (None, NULL_TAG, ("", "~", "null", "Null", "NULL")),
    (math.nan, FLOAT_TAG, (".nan", ".NaN", ".NAN")),
    (_INF, FLOAT_TAG, (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")),
    (-_INF, FLOAT_TAG, ("-.inf", "-.Inf", "-.INF")),
    ("<<", MERGE_TAG, ("<<",)),
):
    for _name in _names:
        _MAP[_name] = (_t, _v)

# The first character decides which rules apply ("hint"); others are strings.
_HINT_SIGN = frozenset("+-")
_HINT_DIGIT = frozenset("0123456789")
_HINT_MAP = frozenset("yYnNtTfFoO~")

_YAML_FLOAT = compile_lazy(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_DOT_FLOAT = compile_lazy(r"\.[0-9]+([eE][-+]?[0-9]+)?\Z")
_BASE60 = compile_lazy(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?\Z")
_OLD_BOOLS = frozenset(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
                        "n", "N", "no", "No", "NO", "off", "Off", "OFF"))

_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
_DIGITS = {2: frozenset("01"), 8: frozenset("01234567"), 10: frozenset("0123456789"),
           16: frozenset("0123456789abcdefABCDEF")}


class ResolveError(ValueError):
    """A scalar carries an explicit tag its text does not satisfy (``!!int abc``)."""


def short_tag(tag: str) -> str:
    if tag.startswith(LONG_PREFIX):
        return "!!" + tag[len(LONG_PREFIX):]
    return tag


def _parse_uint(s: str) -> int | None:
    """Go ``strconv.ParseUint(s, 0, 64)`` on a string without underscores."""
    if not s:
        return None
    base = 10
    if s[0] == "0":
        if len(s) > 1 and s[1] in "bBoOxX":
            base = {"b": 2, "o": 8, "x": 16}[s[1].lower()]
            s = s[2:]
        else:
            base = 8
    if not s or not set(s) <= _DIGITS[base]:
        return None
    if base == 10 and len(s) > 20:
        # Beyond uint64 (20 digits, no leading zero in base 10). Checked before
        # int(), which refuses decimal strings over 4,300 digits.
        return None
    value = int(s, base)
    return value if value <= _UINT64_MAX else None


def parse_go_int(s: str) -> int | None:
    """Go ``strconv.ParseInt(s, 0, 64)`` (None on syntax or range error)."""
    neg = False
    body = s
    if body[:1] in ("+", "-"):
        neg = body[0] == "-"
        body = body[1:]
    u = _parse_uint(body)
    if u is None:
        return None
    if neg:
        return -u if u <= _INT64_MAX + 1 else None
    return u if u <= _INT64_MAX else None


def _parse_float(s: str) -> float | None:
    """Go ``strconv.ParseFloat`` for the decimal forms go-yaml lets through."""
    try:
        value = float(s)
    except ValueError:
        return None
    if math.isinf(value):
        return None  # Go reports a range error and go-yaml keeps the text as a string
    return value


def _underscores_ok(s: str) -> bool:
    """Go's underscoreOK: each '_' sits between two digits."""
    prev_digit = False
    for i, c in enumerate(s):
        if c == "_":
            if not prev_digit or i + 1 >= len(s) or not s[i + 1].isdigit():
                return False
        prev_digit = c.isdigit()
    return True


def resolve_plain(value: str) -> tuple[str, Any]:
    """go-yaml ``resolve("", value)``: the tag and value of an untagged plain scalar."""
    if not value:
        return NULL_TAG, None
    c = value[0]
    if c in _HINT_DIGIT or c in _HINT_SIGN:
        found = _MAP.get(value)
        if found is not None:
            return found
        return _resolve_number(value)
    if c in _HINT_MAP:
        return _MAP.get(value, (STR_TAG, value))
    if c == ".":
        found = _MAP.get(value)
        if found is not None:
            return found
        if "_" in value:
            if not _underscores_ok(value):
                return STR_TAG, value
            plain = value.replace("_", "")
        else:
            plain = value
        if _DOT_FLOAT.match(plain):
            f = _parse_float(plain)
            if f is not None:
                return FLOAT_TAG, f
        return STR_TAG, value
    return STR_TAG, value


_DEC_INT = compile_lazy(r"[-+]?(?:0|[1-9][0-9]{0,17})\Z")  # surely within int64
_DEC_FLOAT = compile_lazy(r"[-+]?[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?\Z")


def _resolve_number(value: str, allow_time: bool = True) -> tuple[str, Any]:
    # Fast paths for the common spellings; everything else goes the Go way.
    if _DEC_INT.match(value):
        return INT_TAG, int(value)
    if _DEC_FLOAT.match(value):
        f = _parse_float(value)
        if f is not None:
            return FLOAT_TAG, f
    if allow_time:
        ts = parse_timestamp(value)
        if ts is not None:
            return TIMESTAMP_TAG, ts
    plain = value.replace("_", "")
    if plain:
        i = parse_go_int(plain)
        if i is not None:
            return INT_TAG, i
        u = _parse_uint(plain)
        if u is not None:
            return INT_TAG, UInt64(u)
        if _YAML_FLOAT.match(plain):
            f = _parse_float(plain)
            if f is not None:
                return FLOAT_TAG, f
        # go-yaml retries binary and octal prefixes with an explicit base, where
        # Go's ParseInt accepts a sign after the prefix ("0b+101").
        for prefix, base in (("0b", 2), ("0o", 8)):
            if plain.startswith(prefix):
                i = _parse_int_base(plain[2:], base)
                if i is not None:
                    return INT_TAG, i
                u = _parse_uint_base(plain[2:], base)
                if u is not None:
                    return INT_TAG, UInt64(u)
            elif plain.startswith("-" + prefix):
                i = _parse_int_base("-" + plain[3:], base)
                if i is not None:
                    return INT_TAG, i
    return STR_TAG, value


def _parse_uint_base(s: str, base: int) -> int | None:
    if not s or not set(s) <= _DIGITS[base]:
        return None
    value = int(s, base)
    return value if value <= _UINT64_MAX else None


def _parse_int_base(s: str, base: int) -> int | None:
    """Go ``strconv.ParseInt(s, base, 64)`` with an explicit base."""
    neg = s[:1] == "-"
    if s[:1] in ("+", "-"):
        s = s[1:]
    u = _parse_uint_base(s, base)
    if u is None:
        return None
    if neg:
        return -u if u <= _INT64_MAX + 1 else None
    return u if u <= _INT64_MAX else None


_OTHER_FIRST = frozenset(c for c in map(chr, range(128)) if c not in _HINT_DIGIT and c not in _HINT_SIGN
                         and c not in _HINT_MAP and c != ".")


def plain_scalar(value: str) -> Any:
    """The value of an untagged plain scalar (resolve_plain without the tag)."""
    if not value:
        return None
    if value[0] in _OTHER_FIRST or value[0] >= "\x80":
        return value
    return resolve_plain(value)[1]


def plain_tag(value: str) -> str:
    """The tag an unquoted scalar with this text would get (cheap common cases first)."""
    if not value:
        return NULL_TAG
    c = value[0]
    if c in _HINT_DIGIT or c in _HINT_SIGN or c in _HINT_MAP or c == ".":
        return resolve_plain(value)[0]
    return STR_TAG


def resolve_tagged(tag: str, value: str) -> tuple[str, Any]:
    """go-yaml ``resolve(tag, value)`` for an explicitly tagged scalar; raises
    :class:`ResolveError` where go-yaml fails."""
    tag = short_tag(tag)
    if tag not in _RESOLVABLE:
        return tag, value
    if tag == STR_TAG:
        return STR_TAG, value
    if value:
        c = value[0]
        if c in _HINT_DIGIT or c in _HINT_SIGN:
            found = _MAP.get(value)
            rtag, out = found if found is not None else _resolve_number(value, tag in ("", TIMESTAMP_TAG))
        else:
            rtag, out = resolve_plain(value)
    else:
        rtag, out = NULL_TAG, None
    if tag in ("", rtag):
        return rtag, out
    if tag == FLOAT_TAG and rtag == INT_TAG and not isinstance(out, UInt64):
        return FLOAT_TAG, float(out)
    raise ResolveError(f"cannot decode {rtag} as a {tag}")


def is_base60_float(s: str) -> bool:
    if not s or not (s[0] in "+-" or s[0].isdigit()) or ":" not in s:
        return False
    return _BASE60.match(s) is not None


def is_old_bool(s: str) -> bool:
    return s in _OLD_BOOLS


# --- timestamps (Go time.Parse with go-yaml's four layouts) -----------------------------

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _getnum(s: str, i: int) -> tuple[int, int] | None:
    """Go's getnum(value, fixed=false): one or two digits."""
    if i >= len(s) or not ("0" <= s[i] <= "9"):
        return None
    if i + 1 < len(s) and "0" <= s[i + 1] <= "9":
        return int(s[i:i + 2]), i + 2
    return int(s[i]), i + 1


def _days_in(month: int, year: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS[month - 1]


def _parse_date(s: str) -> tuple[int, int, int, int] | None:
    """``2006-1-2``: returns year, month, day and the index after the date."""
    year = int(s[:4])
    if len(s) < 5 or s[4] != "-":
        return None
    got = _getnum(s, 5)
    if got is None:
        return None
    month, i = got
    if not 1 <= month <= 12 or i >= len(s) or s[i] != "-":
        return None
    got = _getnum(s, i + 1)
    if got is None:
        return None
    day, i = got
    return year, month, day, i


def _parse_clock(s: str, i: int) -> tuple[int, int, int, int, int] | None:
    """``15:4:5.999999999``: hour, minute, second, nanoseconds, next index."""
    parts = []
    for n in range(3):
        if n:
            if i >= len(s) or s[i] != ":":
                return None
            i += 1
        got = _getnum(s, i)
        if got is None:
            return None
        value, i = got
        parts.append(value)
    hour, minute, sec = parts
    if hour >= 24 or minute >= 60 or sec >= 60:
        return None
    nsec = 0
    if i + 1 < len(s) and s[i] in ".," and "0" <= s[i + 1] <= "9":
        j = i + 1
        while j < len(s) and "0" <= s[j] <= "9":
            j += 1
        digits = s[i + 1:j][:9]
        nsec = int(digits.ljust(9, "0"))
        i = j
    return hour, minute, sec, nsec, i


def _format_time(year: int, month: int, day: int, hour: int, minute: int, sec: int, nsec: int,
                 offset: int) -> str:
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{sec:02d}"
    if nsec:
        text += "." + f"{nsec:09d}".rstrip("0")
    if offset == 0:
        return text + "Z"
    sign = "+" if offset > 0 else "-"
    mins = abs(offset) // 60
    return f"{text}{sign}{mins // 60:02d}:{mins % 60:02d}"


def parse_timestamp(s: str) -> Time | None:
    """go-yaml's parseTimestamp; the result is Go's RFC 3339 nano text of the time."""
    if len(s) < 5 or not s[:4].isascii() or not s[:4].isdigit() or s[4] != "-":
        return None
    date = _parse_date(s)
    if date is None:
        return None
    year, month, day, i = date
    if day < 1 or day > _days_in(month, year):
        return None
    if i == len(s):
        return Time(_format_time(year, month, day, 0, 0, 0, 0, 0))
    sep = s[i]
    if sep in "Tt":
        clock = _parse_clock(s, i + 1)
        if clock is None:
            return None
        hour, minute, sec, nsec, j = clock
        offset = _parse_zone(s, j)
        if offset is None:
            return None
        return Time(_format_time(year, month, day, hour, minute, sec, nsec, offset))
    if sep == " ":
        # A space in a Go layout matches any run of spaces.
        j = i
        while j < len(s) and s[j] == " ":
            j += 1
        clock = _parse_clock(s, j)
        if clock is None or clock[4] != len(s):
            return None
        hour, minute, sec, nsec, _ = clock
        return Time(_format_time(year, month, day, hour, minute, sec, nsec, 0))
    return None


def _parse_zone(s: str, i: int) -> int | None:
    """``Z07:00``: the offset in seconds, requiring the rest of ``s`` to be consumed."""
    rest = s[i:]
    if rest == "Z":
        return 0
    if len(rest) != 6 or rest[3] != ":" or rest[0] not in "+-":
        return None
    hh, mm = rest[1:3], rest[4:6]
    if not (hh.isascii() and hh.isdigit() and mm.isascii() and mm.isdigit()):
        return None
    hr, mn = int(hh), int(mm)
    if hr > 24 or mn > 60:
        return None
    offset = (hr * 60 + mn) * 60
    return -offset if rest[0] == "-" else offset
