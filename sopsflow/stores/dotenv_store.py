"""dotenv store (sops' `stores/dotenv/store.go`): one ``key=value`` per line, no quoting rules at all.

Lines are split on ``\\n``; empty lines vanish, a line starting with ``#`` is a
comment, anything else needs an ``=`` (key = text before the first one). The
two characters ``\\n`` in a value stand for a newline. Metadata lives in
``sops_``-prefixed keys (flattened, sops' `stores/flatten.go`), sorted, after the data.
"""

from __future__ import annotations

from ..errors import COULD_NOT_READ_INPUT_FILE, ERROR_DUMPING_TREE, GENERIC, SopsError
from ..tree import Branches, Comment, Time, TreeMap, val_to_string
from .flatten import flatten, unflatten

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from ..tree import RawMetadata, TreeValue

SOPS_PREFIX = "sops_"


def go_type_name(value: TreeValue) -> str:
    """The ``%T`` name Go would print for a tree value."""
    if value is None:
        return "<nil>"
    if isinstance(value, TreeMap):
        return "sops.TreeBranch"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, Time):
        return "time.Time"
    return type(value).__name__


class DotenvStore:
    name = "dotenv"

    def load_plain(self, data: bytes) -> Branches:
        return [self._parse(data, COULD_NOT_READ_INPUT_FILE)]

    def load_encrypted(self, data: bytes) -> tuple[Branches, RawMetadata | None]:
        # sops' decrypt reports load failures with exit 1.
        branch = self._parse(data, GENERIC)
        kept = TreeMap()
        flat: dict[str, str] = {}
        for entry in branch:
            if type(entry) is tuple and entry[0].startswith(SOPS_PREFIX):
                flat[entry[0][len(SOPS_PREFIX) :]] = entry[1]
            else:
                kept.append(entry)
        if not flat:
            return [kept], None
        return [kept], unflatten(flat)

    def dump_plain(self, branches: Branches) -> bytes:
        lines: list[str] = []
        for entry in branches[0]:
            if isinstance(entry, Comment):
                lines.append(f"#{entry.text}\n")
                continue
            key, value = entry
            lines.append(f"{key}={_value_text(key, value)}\n")
        return "".join(lines).encode("utf-8", "surrogateescape")

    def dump_encrypted(self, branches: Branches, metadata: RawMetadata) -> bytes:
        branch = TreeMap(branches[0])
        flat = flatten(metadata)
        branch.extend((SOPS_PREFIX + key, flat[key]) for key in sorted(flat))
        return self.dump_plain([branch])

    def metadata_tail(self, metadata: RawMetadata) -> bytes:
        """The ``sops_*`` lines :meth:`dump_encrypted` writes after the data."""
        return self.dump_encrypted([TreeMap()], metadata)

    def dump_value(self, value: TreeValue) -> bytes:
        """``decrypt --extract``: a mapping as a document, a string raw, anything else fails."""
        if isinstance(value, TreeMap):
            return self.dump_plain([value])
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        raise SopsError(
            ERROR_DUMPING_TREE, f"the dotenv store only supports emitting strings, got {go_type_name(value)}"
        )

    @staticmethod
    def _parse(data: bytes, code: int) -> TreeMap:
        branch = TreeMap()
        # surrogateescape keeps arbitrary bytes: sops treats the file as bytes.
        text = data.decode("utf-8", "surrogateescape")
        for number, line in enumerate(text.split("\n"), start=1):
            if not line:
                continue
            if line[0] == "#":
                branch.append(Comment(line[1:]))
                continue
            key, sep, value = line.partition("=")
            if not sep:
                # sops prints the line itself; it may hold a secret, so name its number.
                raise SopsError(code, f"invalid dotenv input line {number}: no '=' found")
            branch.append((key, value.replace("\\n", "\n")))
        return branch


def _value_text(key: TreeValue, value: TreeValue) -> str:
    if isinstance(value, (TreeMap, list)):
        raise SopsError(ERROR_DUMPING_TREE, f"cannot use complex value in dotenv file; offending key {key}")
    if isinstance(value, str):
        return value.replace("\n", "\\n")
    if isinstance(value, Comment):
        # a type:comment tag edited onto a value, read with --ignore-mac:
        # sops prints its Comment{Value} struct with Go's %v
        return "{" + value.text + "}"
    try:
        return val_to_string(value)
    except TypeError:
        raise SopsError(ERROR_DUMPING_TREE, f"cannot render a {go_type_name(value)} value in dotenv file") from None
