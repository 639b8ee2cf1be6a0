"""The flat metadata layout of the dotenv and INI stores (sops' `stores/flatten.go`).

A nested member gets ``__map_<key>`` appended to its parent's name, a list
element ``__list_<index>``. ``flatten`` produces the text values written to the
file (newlines as the two characters ``\\n``); ``unflatten`` reverses it the way
sops 3.11 reads it back (``stores.Unflatten`` + ``DecodeNonStrings``).
"""

from __future__ import annotations

from ..errors import GENERIC, SopsError
from ..lazyre import compile_lazy
from ..tree import val_to_string

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..tree import RawMetadata, TreeValue

MAP_SEPARATOR = "__map_"
LIST_SEPARATOR = "__list_"

_SEPARATORS = compile_lazy(f"{MAP_SEPARATOR}|{LIST_SEPARATOR}")
#: The largest list position unflatten accepts (the gaps before it are filled with None).
MAX_LIST_POSITION = 100_000
_GO_ATOI = compile_lazy(r"[+-]?[0-9]+\Z")
_GO_DECIMAL_FLOAT = compile_lazy(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def flatten(meta: RawMetadata) -> dict[str, str]:
    """Metadata mapping -> flat ``name -> text`` pairs, in depth-first order.

    ``None`` members and empty containers leave nothing behind (sops drops
    them after its JSON round trip); empty strings are kept.
    """
    flat: dict[str, str] = {}
    for key, value in meta.items():
        _flatten_into(flat, key, value)
    return flat


def _flatten_into(flat: dict[str, str], name: str, value: TreeValue) -> None:
    if isinstance(value, dict):
        for key, member in value.items():
            _flatten_into(flat, f"{name}{MAP_SEPARATOR}{key}", member)
    elif isinstance(value, list):
        for index, member in enumerate(value):
            _flatten_into(flat, f"{name}{LIST_SEPARATOR}{index}", member)
    elif value is not None:
        flat[name] = _scalar_text(name, value).replace("\n", "\\n")


def _scalar_text(name: str, value: TreeValue) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if name == "shamir_threshold" and isinstance(value, (int, float)):
        # sops formats the threshold with "%.0f" after a JSON round trip.
        return f"{float(value):.0f}"
    if isinstance(value, int):
        # Every other number went through JSON as a float64 in sops.
        return val_to_string(float(value))
    return val_to_string(value)


def unflatten(flat: dict[str, str]) -> RawMetadata:
    """Flat ``name -> text`` pairs -> nested metadata mapping (plain Python).

    ``\\n`` pairs become newlines, ``shamir_threshold`` becomes an int (``2.0``
    is accepted, as old sops wrote it) and ``mac_only_encrypted`` a bool
    (true only for the exact text ``true``). Raises SopsError(1) on a value
    sops cannot read.
    """
    decoded: dict[str, Any] = {
        key: value.replace("\\n", "\n") if isinstance(value, str) else value for key, value in flat.items()
    }
    if "mac_only_encrypted" in decoded:
        decoded["mac_only_encrypted"] = decoded["mac_only_encrypted"] == "true"
    if "shamir_threshold" in decoded:
        decoded["shamir_threshold"] = _threshold(decoded["shamir_threshold"])
    root: dict[str, Any] = {}
    for key, value in decoded.items():
        tokens = _tokenize(key)
        # A position is a list length to allocate: one line must not cost
        # gigabytes (sops runs out of memory), and no real file has this many keys.
        if any(isinstance(token, int) and token >= MAX_LIST_POSITION for token in tokens):
            raise _bad_key(key)
        _place(root, tokens, value, key)
    return root


def _threshold(value: TreeValue) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SopsError(GENERIC, "shamir_threshold is neither a string nor an integer")
    if isinstance(value, int):
        return value
    if _GO_ATOI.match(value):
        if _digits(value) <= 19:  # else out of Atoi's range (and of int()'s 4,300 digits)
            return int(value)
    elif _GO_DECIMAL_FLOAT.match(value):
        number = float(value)
        if number.is_integer():
            return int(number)
    raise SopsError(GENERIC, f"shamir_threshold is not an integer: {_short(value)!r}")


def _digits(text: str) -> int:
    """Significant digits of an Atoi-shaped text."""
    return len(text.lstrip("+-").lstrip("0"))


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "..."


def _tokenize(path: str) -> list[str | int]:
    """Split a flat name into map keys (str) and list positions (int).

    As sops, an unreadable position counts as 0.
    """
    tokens: list[str | int] = []
    pos = 0
    kind = ""
    for match in _SEPARATORS.finditer(path):
        tokens.append(_token(kind, path[pos : match.start()]))
        kind = match.group()
        pos = match.end()
    tokens.append(_token(kind, path[pos:]))
    return tokens


def _token(kind: str, text: str) -> str | int:
    if kind != LIST_SEPARATOR:
        return text
    if not _GO_ATOI.match(text):
        return 0
    # past int64, Atoi fails; any such position is out of range (see unflatten)
    return int(text) if _digits(text) <= 19 else 1 << 63


def _place(root: RawMetadata, tokens: list[str | int], value: TreeValue, name: str) -> None:
    node: Any = root
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        if following is None:
            _store(node, token, value, name)
            return
        child = _lookup(node, token, name)
        if child is None:
            child = {} if isinstance(following, str) else [None] * (following + 1)
            _store(node, token, child, name)
        if isinstance(following, int):
            if not isinstance(child, list) or following < 0:
                raise _bad_key(name)
            if following >= len(child):
                child.extend([None] * (following + 1 - len(child)))
        elif not isinstance(child, dict):
            raise _bad_key(name)
        node = child


def _lookup(node: TreeValue, token: str | int, name: str) -> TreeValue:
    if isinstance(node, dict) and isinstance(token, str):
        return node.get(token)
    if isinstance(node, list) and isinstance(token, int) and 0 <= token < len(node):
        return node[token]
    raise _bad_key(name)


def _store(node: TreeValue, token: str | int, value: TreeValue, name: str) -> None:
    if isinstance(node, dict) and isinstance(token, str):
        node[token] = value
    elif isinstance(node, list) and isinstance(token, int) and 0 <= token < len(node):
        node[token] = value
    else:
        raise _bad_key(name)


def _bad_key(name: str) -> SopsError:
    # sops panics on these (conflicting, negative or huge positions); fail cleanly instead.
    return SopsError(GENERIC, f"invalid flattened metadata key: {_short(name)}")
