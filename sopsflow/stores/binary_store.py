"""Binary store (sops' `stores/json/store.go`, BinaryStore): the whole file is one string value under ``data``.

The plaintext may be any bytes (NUL, 0xFF, invalid UTF-8). They are carried
as a ``str`` decoded with ``surrogateescape``, so the engine must encode str
plaintexts with ``("utf-8", "surrogateescape")`` to encrypt the exact bytes.
The encrypt and decrypt commands skip that round trip: ``load_plain_raw``
and ``decrypt_document(raw_strings=True)`` keep the value as ``bytes``,
which the engine treats as a string value and ``dump_plain`` writes as is.
The encrypted file is a JSON document ``{"data": "ENC[...]", "sops": {...}}``
written by the JSON store.

The same two commands keep the encrypted value out of ``str`` as well, since
for a large file every copy of its base64 (4/3 of the file) costs time and
memory. Encrypting, the engine hands over the ENC[] text as ASCII pieces,
which ``dump_encrypted_pieces`` places between the quotes of the JSON store's
output for an empty ``data``; the command writes the pieces in turn.
Decrypting, ``load_encrypted_raw`` decodes a ``data`` value that is exactly a
well-formed ``str`` ENC[] text straight from the file's bytes and lets the
JSON store parse the rest of the document. Both give what the general path
gives, byte for byte; anything else takes the general path.
"""

from __future__ import annotations

from ..errors import ERROR_DUMPING_TREE, SopsError
from ..tree import Branches, EncryptedPieces, TreeMap
from .json_store import JsonStore

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..tree import RawMetadata, SealedValue, TreeValue

NOT_BINARY_HINT = (
    "This is likely not an encrypted binary file? If not, use --output-type to select the correct output type."
)


def _emit_error(reason: str) -> SopsError:
    return SopsError(ERROR_DUMPING_TREE, f"error emitting binary store: {reason}", NOT_BINARY_HINT)


_JSON_SPACE = b" \t\n\r"
#: How the JSON store writes the first member when ``data`` is empty.
_EMPTY_DATA = b'"data": ""'


def _skip_space(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos] in _JSON_SPACE:
        pos += 1
    return pos


def _data_string_span(data: bytes) -> tuple[int, int] | None:
    """Where the text of the string value of a document's first member
    ``"data"`` starts and ends (the first quote after it), if it is there."""
    pos = _skip_space(data, 0)
    if not data.startswith(b"{", pos):
        return None
    pos = _skip_space(data, pos + 1)
    if not data.startswith(b'"data"', pos):
        return None
    pos = _skip_space(data, pos + 6)
    if not data.startswith(b":", pos):
        return None
    pos = _skip_space(data, pos + 1)
    if not data.startswith(b'"', pos):
        return None
    end = data.find(b'"', pos + 1)
    return None if end < 0 else (pos + 1, end)


def _as_text(branches: Branches) -> Branches:
    """The tree with every EncryptedPieces value as the ENC[] ``str`` it stands for."""
    return [TreeMap((e[0], e[1].text()) if type(e) is tuple and type(e[1]) is EncryptedPieces else e for e in b)
            for b in branches]


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

    def load_encrypted_raw(
        self, data: bytes, parse_value: Callable[[bytes, int, int], SealedValue | None]
    ) -> tuple[Branches, RawMetadata | None] | None:
        """:meth:`load_encrypted` with a first member ``"data"`` whose string
        ``parse_value(data, start, end)`` (``cipher.parse_sealed``) reads as a
        :class:`~sopsflow.tree.SealedValue`, which takes its place; None when
        the document is not of that shape or does not parse (the caller then
        takes :meth:`load_encrypted`, which reports the error with the whole
        file's offsets). Every check that can fail is done here, before any key
        is asked: only the decryption itself remains."""
        span = _data_string_span(data)
        if span is None:
            return None
        start, end = span
        sealed = parse_value(data, start, end)
        if sealed is None:
            return None
        try:
            # The rest of the document as it is, with "" for the value: the
            # same members, duplicates and metadata as the whole file gives.
            branches, raw = self._json.load_encrypted(data[:start] + data[end:])
        except SopsError:
            return None
        first = branches[0][0] if branches and branches[0] else None
        if first != ("data", ""):  # pragma: no cover - the span is the first member
            return None
        branches[0][0] = ("data", sealed)
        return branches, raw

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
        return b"".join(self.dump_encrypted_pieces(branches, metadata))

    def dump_encrypted_pieces(self, branches: Branches, metadata: RawMetadata) -> list[bytes]:
        """:meth:`dump_encrypted` as pieces to write in turn: the base64 of a
        value encrypted from bytes stays a piece of its own."""
        if (
            len(branches) == 1
            and len(branches[0]) == 1
            and type(branches[0][0]) is tuple
            and branches[0][0][0] == "data"
            and type(branches[0][0][1]) is EncryptedPieces
        ):
            # The JSON store's document with an empty value, and the pieces in
            # between its quotes: ENC[] text is ASCII that JSON writes as is.
            doc = self._json.dump_encrypted([TreeMap([("data", "")])], metadata)
            cut = doc.index(_EMPTY_DATA) + len(_EMPTY_DATA) - 1
            return [doc[:cut], *branches[0][0][1], doc[cut:]]
        return [self._json.dump_encrypted(_as_text(branches), metadata)]

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
