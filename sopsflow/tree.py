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

from . import errors
from .errors import SopsError
from .lazyre import compile_lazy

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any, TypeAlias


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

    def get(self, key: TreeValue, default: TreeValue = None) -> TreeValue:
        for entry in self:
            if type(entry) is tuple and entry[0] == key:
                return entry[1]
        return default

    def has(self, key: TreeValue) -> bool:
        return any(type(e) is tuple and e[0] == key for e in self)

    def set(self, key: TreeValue, value: TreeValue) -> None:
        """Replace the first entry named ``key`` or append a new one."""
        for i, entry in enumerate(self):
            if type(entry) is tuple and entry[0] == key:
                self[i] = (key, value)
                return
        self.append((key, value))

    def remove_key(self, key: TreeValue) -> bool:
        for i, entry in enumerate(self):
            if type(entry) is tuple and entry[0] == key:
                del self[i]
                return True
        return False

    def items_(self) -> Iterator[tuple[TreeValue, TreeValue]]:
        """The key/value entries, comments skipped."""
        for entry in self:
            if type(entry) is tuple:
                yield entry

    def keys_(self) -> list[TreeValue]:
        return [e[0] for e in self if type(e) is tuple]


class EncryptedPieces(tuple[bytes, ...]):
    """An encrypted ``str`` value's ENC[] text as ASCII ``bytes`` pieces (the
    binary store's whole-file value: its base64 is never copied into a ``str``);
    ``cipher.Cipher.encrypt_pieces`` makes them."""

    __slots__ = ()

    def text(self) -> str:
        return b"".join(self).decode("ascii")


class SealedValue:
    """An encrypted ``str`` value read from a file's bytes, with its ENC[]
    fields already decoded (the binary store's whole-file value;
    ``cipher.parse_sealed`` makes it)."""

    __slots__ = ("ct", "iv", "tag", "source")

    def __init__(self, ct: bytes, iv: bytes, tag: bytes, source: memoryview) -> None:
        self.ct, self.iv, self.tag = ct, iv, tag
        self.source = source  # the ENC[] text in the file (ASCII)

    def text(self) -> str:
        """The ENC[] text itself, for a value the metadata leaves unencrypted."""
        return str(self.source, "ascii")


Scalar = str | int | float | bool | None | Time
Node = TreeMap | list | Scalar
Branches = list[TreeMap]
if TYPE_CHECKING:
    #: A node of any kind where code walks every kind (checked with ``type(...) is``
    #: at run time): spelling out Node there would only add casts.
    TreeValue: TypeAlias = Any
    #: The ``sops`` metadata section as a store reads and writes it (JSON-like).
    RawMetadata: TypeAlias = dict[str, Any]
else:  # names to import; annotations are never evaluated at run time (no typing import)
    TreeValue = object
    RawMetadata = dict


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


def val_to_string(value: TreeValue) -> str:
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


def parse_extract_path(text: str) -> list[str | int]:
    """The ``--extract`` path of ``decrypt``, with sops' messages and exit codes."""
    try:
        return parse_tree_path(text)
    except TreePathCrash as exc:
        # sops panics here (exit 2)
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, f"error parsing --extract path: {exc}") from None
    except ValueError as exc:
        raise SopsError(errors.INVALID_TREE_PATH_FORMAT, f"error parsing --extract path: {exc}") from None


# --- tree operations (sops.TreeBranch's walk, Set and Unset) ---------------------------


def get_path(branch: TreeMap, path: list[str | int]) -> TreeValue:
    """The value at ``path`` below ``branch`` (``decrypt --extract``), with sops'
    "Error walking tree" messages for a missing key or an index out of range."""
    current: TreeValue = branch
    for component in path:
        if isinstance(component, str):
            if type(current) is not TreeMap or not current.has(component):
                raise SopsError(errors.GENERIC, f"Error walking tree: component ['{component}'] not found")
            current = current.get(component)
        else:
            items = current if type(current) is list else None
            if items is None or not (0 <= component < len(items)):
                raise SopsError(errors.GENERIC, f"Error walking tree: component [{component}] accesses out of bounds")
            current = items[component]
    return current


class TreeWalkCrash(Exception):
    """A set/unset walk on which sops 3.11 panics (exit 2): a key used on a
    list, a negative index. Callers report it cleanly with that code."""


class KeyNotFound(SopsError):
    """sops.SopsKeyNotFound: what ``unset --idempotent`` tolerates."""

    def __init__(self, message: str) -> None:
        super().__init__(errors.GENERIC, message)


def _go_s(component: TreeValue) -> str:
    """Go's %s of a path component (an int prints as %!s(int=N))."""
    if type(component) is int:
        return f"%!s(int={component})"
    return str(component)


def _go_type(value: TreeValue) -> str:
    """Go's %T of a tree value, for sops' "Unsupported type" message."""
    names = {
        str: "string",
        int: "int",
        float: "float64",
        bool: "bool",
        type(None): "<nil>",
        Time: "time.Time",
        Comment: "sops.Comment",
        UInt64: "uint64",
    }
    return names.get(type(value), type(value).__name__)


def _same_key(key: TreeValue, component: TreeValue) -> bool:
    # Go compares interface values: the dynamic types must match too.
    return type(key) is type(component) and key == component


def tree_equal(a: TreeValue, b: TreeValue) -> bool:
    """sops' equals(): same structure, same types, same values."""
    if type(a) is not type(b):
        return False
    if type(a) is TreeMap:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b, strict=True):
            if type(x) is Comment or type(y) is Comment:
                if x != y:
                    return False
                continue
            if not tree_equal(x[0], y[0]) or not tree_equal(x[1], y[1]):
                return False
        return True
    if type(a) is list:
        return len(a) == len(b) and all(tree_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _value_from_path(path: list[TreeValue], leaf: TreeValue) -> TreeValue:
    inner = leaf if len(path) == 1 else _value_from_path(path[1:], leaf)
    if type(path[0]) is int:
        return [inner]
    return TreeMap([(path[0], inner)])


def _check_index(component: TreeValue) -> int:
    if type(component) is not int:
        raise TreeWalkCrash(f"cannot use key {component!r} on a list")
    if component < 0:
        raise TreeWalkCrash(f"negative list index {component}")
    return int(component)


def set_path(node: TreeValue, path: list[TreeValue], value: TreeValue) -> tuple[TreeValue, bool]:
    """Set ``value`` at ``path`` below ``node``, as sops 3.11's Set: a missing
    key is created, an index past the end of a list appends, a scalar in the
    way is replaced. Returns (new node, changed)."""
    if type(node) is TreeMap:
        for i, entry in enumerate(node):
            if type(entry) is Comment or not _same_key(entry[0], path[0]):
                continue
            if len(path) == 1:
                changed = not tree_equal(entry[1], value)
                node[i] = (entry[0], value)
            else:
                new, changed = set_path(entry[1], path[1:], value)
                node[i] = (entry[0], new)
            return node, changed
        created = _value_from_path(path, value)
        if type(created) is TreeMap:
            node.append(created[0])
        return node, True
    if type(node) is list:
        position = _check_index(path[0])
        if position >= len(node):
            node.append(value if len(path) == 1 else _value_from_path(path[1:], value))
            return node, True
        if len(path) == 1:
            changed = not tree_equal(node[position], value)
            node[position] = value
        else:
            node[position], changed = set_path(node[position], path[1:], value)
        return node, changed
    created = _value_from_path(path, value)
    return created, not tree_equal(node, created)


def unset_path(node: TreeValue, path: list[TreeValue]) -> TreeValue:
    """Remove the entry at ``path`` below ``node``; returns the new node."""
    if type(node) is TreeMap:
        for i, entry in enumerate(node):
            if type(entry) is Comment or not _same_key(entry[0], path[0]):
                continue
            if len(path) == 1:
                del node[i]
            else:
                node[i] = (entry[0], unset_path(entry[1], path[1:]))
            return node
        raise KeyNotFound(f"Key not found: {_go_s(path[0])}")
    if type(node) is list:
        position = _check_index(path[0])
        if position >= len(node):
            raise KeyNotFound(f"Index {position} out of bounds")
        if len(path) == 1:
            del node[position]
        else:
            node[position] = unset_path(node[position], path[1:])
        return node
    raise SopsError(errors.GENERIC, f"Unsupported type: {_go_type(node)} for item '{_go_s(path[0])}'")
