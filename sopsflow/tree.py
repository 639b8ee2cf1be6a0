"""The format-neutral document tree every store produces and consumes.

A document is a list of *branches* (one per YAML document; every other
format has exactly one). A branch is a :class:`TreeMap`.

Node kinds:

* :class:`TreeMap` - an ordered mapping kept as a list of entries. An entry is
  either a ``(key, value)`` tuple or a :class:`Comment`. Duplicate keys are
  allowed (JSON keeps them). Keys are normally ``str``; a store may leave a
  non-string key in place and the engine refuses it when encrypting, as sops.
* ``list`` - a sequence; its items are nodes or :class:`Comment`.
* scalars - ``str``, ``int``, ``float``, ``bool``, ``None``, :class:`Time`,
  :class:`UInt64` (a YAML integer that only fits uint64; sops cannot encrypt it).

Encrypted values are plain ``str`` holding ``ENC[AES256_GCM,...]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from .lazyre import compile_lazy

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any


class Comment:
    """One comment line. ``text`` is what follows the comment marker.

    YAML keeps the leading space (``# a`` -> ``" a"``), dotenv keeps
    everything after ``#``; INI strips the leading marker run. Emitters write
    the marker followed by ``text`` (YAML ``#``, dotenv ``#``, INI ``; ``).
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Comment) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("Comment", self.text))

    def __repr__(self) -> str:
        return f"Comment({self.text!r})"


class Time:
    """A YAML timestamp, kept as Go's ``time.MarshalText`` (RFC 3339, nanoseconds,
    trailing zeros of the fraction removed). Python's datetime cannot hold
    nanoseconds, so the canonical text is the value."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Time) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("Time", self.text))

    def __repr__(self) -> str:
        return f"Time({self.text!r})"

    def seconds_text(self) -> str:
        """RFC 3339 with the fraction dropped (Go's time.RFC3339 layout)."""
        t = self.text
        dot = t.find(".", 19)
        if dot == -1:
            return t
        end = dot + 1
        while end < len(t) and t[end].isdigit():
            end += 1
        return t[:dot] + t[end:]


class UInt64(int):
    """An integer in (2^63-1, 2^64-1]: go-yaml types it uint64, which sops refuses."""


class TreeMap(list):
    """Ordered mapping: a list of ``(key, value)`` tuples and :class:`Comment` s."""

    def get(self, key: Any, default: Any = None) -> Any:
        for entry in self:
            if type(entry) is tuple and entry[0] == key:
                return entry[1]
        return default

    def has(self, key: Any) -> bool:
        return any(type(e) is tuple and e[0] == key for e in self)

    def set(self, key: Any, value: Any) -> None:
        """Replace the first entry named ``key`` or append a new one."""
        for i, entry in enumerate(self):
            if type(entry) is tuple and entry[0] == key:
                self[i] = (key, value)
                return
        self.append((key, value))

    def remove_key(self, key: Any) -> bool:
        for i, entry in enumerate(self):
            if type(entry) is tuple and entry[0] == key:
                del self[i]
                return True
        return False

    def items_(self) -> Iterator[tuple[Any, Any]]:
        """The key/value entries, comments skipped."""
        for entry in self:
            if type(entry) is tuple:
                yield entry

    def keys_(self) -> list[Any]:
        return [e[0] for e in self if type(e) is tuple]


Scalar = str | int | float | bool | None | Time
Node = TreeMap | list | Scalar
Branches = list[TreeMap]


def go_float_f(value: float) -> str:
    """Go ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text or "E" in text:
        from decimal import Decimal  # rare (|v| >= 1e16 or < 1e-4), and decimal takes ~1 ms to import

        text = format(Decimal(text), "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text


def go_float_g(value: float) -> str:
    """Go ``strconv.FormatFloat(v, 'g', -1, 64)`` as used by go-yaml and sops' ValToString
    (before sops' own touch-ups): shortest digits, exponent when exp < -4 || exp >= 6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits, exp = _shortest_digits(value)
    sign = "-" if value < 0 else ""
    # With the shortest precision Go decides on the exponent form as if the
    # precision were 6: exponent iff it is < -4 or >= 6.
    n = len(digits)
    x = exp - 1  # decimal exponent of the first digit
    if x < -4 or x >= 6:
        mant = digits[0] + ("." + digits[1:] if n > 1 else "")
        esign = "+" if x >= 0 else "-"
        ax = abs(x)
        return f"{sign}{mant}e{esign}{ax:02d}"
    if exp <= 0:
        return sign + "0." + "0" * (-exp) + digits
    if exp >= n:
        return sign + digits + "0" * (exp - n)
    return sign + digits[:exp] + "." + digits[exp:]


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |value| and the decimal point position
    (value = 0.DIGITS * 10**exp)."""
    r = repr(abs(value))
    mant, _, e = r.partition("e")
    exp10 = int(e) if e else 0
    intpart, _, frac = mant.partition(".")
    if frac == "0":
        frac = ""
    digits = (intpart + frac).lstrip("0")
    lead_zeros = len(intpart + frac) - len((intpart + frac).lstrip("0"))
    point = len(intpart) - lead_zeros + exp10
    digits = digits.rstrip("0") or "0"
    return digits, point


def val_to_string(value: Any) -> str:
    """sops' ValToString: how dotenv/INI output and exec-env render non-strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        text = go_float_g(value).replace("e", "E")
        if "." not in text and "E" not in text and "Inf" not in text and "NaN" not in text:
            text += ".0"
        return text
    if isinstance(value, Time):
        return value.seconds_text()
    if value is None:
        return "<nil>"
    raise TypeError(f"cannot render {type(value).__name__} as text")


# --- tree paths ----------------------------------------------------------------------

_ATOI = compile_lazy(r"[+-]?[0-9]+\Z")
_INT64 = 1 << 63


class TreePathCrash(ValueError):
    """A path on which sops panics (exit 2) instead of reporting an error."""


def parse_tree_path(text: str) -> list[str | int]:
    """The ``["a"][0]`` path of ``decrypt --extract``, ``set`` and ``unset``,
    read as sops' parseTreePath reads it for all three: split at ``[``, each
    part must end with ``]``, a part starting with a quote is a key (its first
    and last character dropped, whatever they are), anything else a Go int.
    ValueError with sops' message for a malformed path; TreePathCrash where
    sops panics."""
    path: list[str | int] = []
    for part in text.split("["):
        if part == "":
            continue
        if part[-1] != "]":
            raise ValueError(f"component {part} doesn't end with ]")
        part = part[:-1]
        if part == "":
            raise TreePathCrash("empty path component []")
        if part[0] in "\"'":
            if len(part) < 2:
                raise TreePathCrash(f"unterminated path component [{part}]")
            path.append(part[1:-1])
            continue
        if not _ATOI.match(part):
            raise ValueError(f'strconv.Atoi: parsing "{part}": invalid syntax')
        index = int(part)
        if not -_INT64 <= index < _INT64:
            raise ValueError(f'strconv.Atoi: parsing "{part}": value out of range')
        path.append(index)
    return path
