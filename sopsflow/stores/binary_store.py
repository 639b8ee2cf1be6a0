"""Binary store (sops' `stores/json/store.go`, BinaryStore): the whole file is one string value under ``data``.

The plaintext may be any bytes (NUL, 0xFF, invalid UTF-8). They are carried
as a ``str`` decoded with ``surrogateescape``, so the engine must encode str
plaintexts with ``("utf-8", "surrogateescape")`` to encrypt the exact bytes.
The encrypt and decrypt commands skip that round trip: ``load_plain_raw``
and ``decrypt_document(raw_strings=True)`` keep the value as ``bytes``,
which the engine treats as a string value and ``dump_plain`` writes as is.
The encrypted file is a JSON document ``{"data": "ENC[...]", "sops": {...}}``
written by the JSON store.
"""

from __future__ import annotations

from ..errors import ERROR_DUMPING_TREE, SopsError
from ..tree import Branches, TreeMap
from .json_store import JsonStore

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from ..tree import RawMetadata, TreeValue

NOT_BINARY_HINT = (
    "This is likely not an encrypted binary file? If not, use --output-type to select the correct output type."
)


def _emit_error(reason: str) -> SopsError:
    return SopsError(ERROR_DUMPING_TREE, f"error emitting binary store: {reason}", NOT_BINARY_HINT)


class BinaryStore:
    name = "binary"

    def __init__(self, indent: int = -1) -> None:
        self.indent = indent
        self._json = JsonStore(indent)

    def load_plain(self, data: bytes) -> Branches:
        return [TreeMap([("data", data.decode("utf-8", "surrogateescape"))])]

    def load_plain_raw(self, data: bytes) -> Branches:
        """As :meth:`load_plain`, with the value left as the file's bytes: the
        engine encrypts (and hashes) a ``bytes`` value as a string without
        decoding and encoding it again (for random data ~15 ms per MiB)."""
        return [TreeMap([("data", data)])]

    def load_encrypted(self, data: bytes) -> tuple[Branches, RawMetadata | None]:
        return self._json.load_encrypted(data)

    def dump_plain(self, branches: Branches) -> bytes:
        if len(branches) != 1:
            raise _emit_error("there must be exactly one tree branch")
        for entry in branches[0]:
            if type(entry) is tuple and entry[0] == "data":
                if type(entry[1]) is bytes:  # decrypted with raw_strings: the bytes as they are
                    return entry[1]
                if not isinstance(entry[1], str):
                    raise _emit_error("'data' key in tree does not have a string value")
                return entry[1].encode("utf-8", "surrogateescape")
        raise _emit_error("no binary data found in tree")

    def dump_encrypted(self, branches: Branches, metadata: RawMetadata) -> bytes:
        return self._json.dump_encrypted(branches, metadata)

    def metadata_tail(self, metadata: RawMetadata) -> bytes:
        return self._json.metadata_tail(metadata)

    def dump_value(self, value: TreeValue) -> bytes:
        """``decrypt --extract``: only a mapping (with ``data``) or a string can be written."""
        if isinstance(value, TreeMap):
            return self.dump_plain([value])
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if type(value) is bytes:
            return value
        raise SopsError(
            ERROR_DUMPING_TREE, "Binary files are not structured and extracting a single value is not possible"
        )
