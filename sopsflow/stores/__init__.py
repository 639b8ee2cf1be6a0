"""File formats. Each store turns bytes into the document tree and back
(contract in docs/internals.md); this module picks one the way sops does.

Store modules are imported on demand so that loading one format never pulls
in another's dependencies (ruamel for YAML).
"""

from __future__ import annotations

from ..tree import Branches, RawMetadata, TreeValue

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # structural types matter to the type checker only

STORE_NAMES = ("yaml", "json", "dotenv", "ini", "binary")


class Store(Protocol):
    name: str

    def load_plain(self, data: bytes) -> Branches: ...

    def load_encrypted(self, data: bytes) -> tuple[Branches, RawMetadata | None]: ...

    def dump_plain(self, branches: Branches) -> bytes: ...

    def dump_encrypted(self, branches: Branches, metadata: RawMetadata) -> bytes: ...

    def dump_value(self, value: TreeValue) -> bytes: ...

    def metadata_tail(self, metadata: RawMetadata) -> bytes:
        """The bytes ``dump_encrypted`` writes after the data of a one-document
        file: for every branch ``b``, ``dump_encrypted([b], m)`` is the same
        head followed by ``metadata_tail(m)``."""
        ...


def format_for_path(path: str) -> str:
    """sops' FormatForPath: case-sensitive suffixes, anything else is binary."""
    if path.endswith((".yaml", ".yml")):
        return "yaml"
    if path.endswith(".json"):
        return "json"
    if path.endswith(".env"):
        return "dotenv"
    if path.endswith(".ini"):
        return "ini"
    return "binary"


def store_for_path(path: str, type_override: str | None = None, *, indent: int | None = None) -> Store:
    """The store for ``path``; a known ``type_override`` (--input-type/--output-type)
    wins, an unknown one is ignored as sops does."""
    name = type_override if type_override in STORE_NAMES else format_for_path(path)
    return store_by_name(name, indent)


def store_by_name(name: str, indent: int | None = None) -> Store:
    """A store by format name; an unknown name gives the binary store (sops'
    FormatFromString). ``indent`` applies to YAML, JSON and binary (None = default)."""
    if name == "yaml":
        from .yaml.store import YamlStore

        return YamlStore() if indent is None else YamlStore(indent=indent)
    if name == "json":
        from .json_store import JsonStore

        return JsonStore() if indent is None else JsonStore(indent=indent)
    if name == "dotenv":
        from .dotenv_store import DotenvStore

        return DotenvStore()
    if name == "ini":
        from .ini_store import IniStore

        return IniStore()
    from .binary_store import BinaryStore

    return BinaryStore() if indent is None else BinaryStore(indent=indent)
