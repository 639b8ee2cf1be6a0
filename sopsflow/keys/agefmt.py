"""The age v1 file format, for the recipient types pyrage does not implement.

An age file is a text header - the version line, one ``-> TYPE ARGS`` stanza
per recipient with its base64 body, and ``--- MAC`` - followed by a 16-byte
nonce and the payload in ChaCha20-Poly1305 STREAM chunks of 64 KiB. The MAC
is HMAC-SHA256 over the header up to ``---``, keyed from the 16-byte file key;
the payload key comes from the file key and the nonce. sops stores one such
file per age recipient, so files here are small and read whole.

Stanzas are produced and consumed by callables (a recipient's ``wrap``, an
identity's ``unwrap``), so this module knows nothing of any recipient type.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Callable, Sequence

from ..lazyre import compile_lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:  # the same classes without importing dataclasses (start-up time)
    from ..records import dataclass

VERSION_LINE = b"age-encryption.org/v1"
_COLUMNS = 64  # base64 characters per body line
_CHUNK = 64 * 1024
_TAG = 16
_ARG = compile_lazy(rb"[\x21-\x7e]+\Z")  # an argument: one or more visible ASCII characters


class AgeFormatError(ValueError):
    """The data is not a well-formed age file (the message says what)."""


class IncorrectIdentity(Exception):
    """Raised by an unwrap callable for a stanza that is not its own."""


@dataclass
class Stanza:
    type: str
    args: list[str]
    body: bytes


Wrap = Callable[[bytes], list[Stanza]]
Unwrap = Callable[[Stanza], bytes | None]


def b64encode(data: bytes) -> str:
    """Standard base64 without padding, as age writes it."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str | bytes) -> bytes:
    """Canonical unpadded base64 only (age refuses anything else)."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    if b"=" in raw or b"\r" in raw or b"\n" in raw:
        raise AgeFormatError("invalid base64 encoding")
    try:
        data = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise AgeFormatError("invalid base64 encoding") from None
    if b64encode(data).encode("ascii") != raw:
        raise AgeFormatError("non-canonical base64 encoding")
    return data


def _hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


def _header_mac(file_key: bytes, header: bytes) -> bytes:
    return hmac.digest(_hkdf(file_key, b"", b"header"), header, "sha256")


def _stanza_bytes(stanza: Stanza) -> bytes:
    line = " ".join(["->", stanza.type, *stanza.args]).encode("ascii")
    body = b64encode(stanza.body)
    # Every body line is full but the last, which may be empty.
    lines = [body[i:i + _COLUMNS] for i in range(0, len(body), _COLUMNS)]
    if not lines or len(lines[-1]) == _COLUMNS:
        lines.append("")
    return line + b"\n" + "".join(part + "\n" for part in lines).encode("ascii")


def _payload(file_key: bytes, nonce: bytes, plaintext: bytes, *, decrypt: bool) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    size = _CHUNK + (_TAG if decrypt else 0)
    chunks = [plaintext[i:i + size] for i in range(0, len(plaintext), size)] or [b""]
    out = []
    for counter, chunk in enumerate(chunks):
        last = counter == len(chunks) - 1
        chunk_nonce = counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        if decrypt:
            if last and len(chunk) == _TAG and counter > 0:
                raise AgeFormatError("last chunk is empty, try age v1.0.0")
            try:
                out.append(aead.decrypt(chunk_nonce, chunk, None))
            except InvalidTag:
                raise AgeFormatError("failed to decrypt and authenticate payload chunk") from None
        else:
            out.append(aead.encrypt(chunk_nonce, chunk, None))
    return b"".join(out)


def encrypt(plaintext: bytes, wraps: Sequence[Wrap], file_key: bytes | None = None) -> bytes:
    """An age file of ``plaintext`` with one or more stanzas per ``wrap``.
    ``file_key``: one drawn earlier (a plugin wrapped it ahead), used once."""
    file_key = file_key or os.urandom(16)
    header = VERSION_LINE + b"\n"
    for wrap in wraps:
        for stanza in wrap(file_key):
            header += _stanza_bytes(stanza)
    header += b"---"
    mac = _header_mac(file_key, header)
    nonce = os.urandom(16)
    return header + b" " + b64encode(mac).encode("ascii") + b"\n" + nonce + _payload(file_key, nonce, plaintext,
                                                                                        decrypt=False)


def parse_header(data: bytes) -> tuple[list[Stanza], bytes, bytes, bytes]:
    """(stanzas, header bytes covered by the MAC, MAC, rest of the file)."""
    lines = data.split(b"\n")
    if not lines or lines[0] != VERSION_LINE:
        raise AgeFormatError("unknown format or version")
    stanzas: list[Stanza] = []
    offset = len(lines[0]) + 1
    i = 1
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"--- "):
            mac = b64decode(line[4:])
            if len(mac) != 32:
                raise AgeFormatError("malformed header MAC")
            covered = data[:offset + 3]
            return stanzas, covered, mac, data[offset + len(line) + 1:]
        if not line.startswith(b"-> "):
            raise AgeFormatError("malformed recipient stanza")
        words = line[3:].split(b" ")
        if any(not _ARG.match(word) for word in words):
            raise AgeFormatError("malformed recipient stanza arguments")
        offset += len(line) + 1
        i += 1
        body = b""
        while True:
            if i >= len(lines):
                raise AgeFormatError("truncated recipient stanza body")
            part = lines[i]
            if len(part) > _COLUMNS:
                raise AgeFormatError("malformed recipient stanza body")
            body += part
            offset += len(part) + 1
            i += 1
            if len(part) < _COLUMNS:
                break
        stanzas.append(Stanza(words[0].decode("ascii"), [w.decode("ascii") for w in words[1:]], b64decode(body)))
    raise AgeFormatError("header without a MAC line")


FileUnwrap = Callable[[list[Stanza]], bytes | None]


def decrypt(data: bytes, unwraps: Sequence[Unwrap], file_unwraps: Sequence[FileUnwrap] = ()) -> bytes:
    """The plaintext of age file ``data``, with the first unwrap that accepts
    a stanza (``file_unwraps`` see every stanza at once, as plugins do).
    IncorrectIdentity when none does; AgeFormatError for a file that is
    damaged or does not authenticate."""
    stanzas, covered, mac, rest = parse_header(data)
    file_key = None
    for unwrap_file in file_unwraps:
        file_key = unwrap_file(stanzas)
        if file_key is not None:
            break
    for stanza in stanzas if file_key is None else []:
        for unwrap in unwraps:
            file_key = unwrap(stanza)
            if file_key is not None:
                break
        if file_key is not None:
            break
    if file_key is None:
        raise IncorrectIdentity("no identity matched any of the recipients")
    if len(file_key) != 16:
        raise AgeFormatError("invalid file key size")
    if not hmac.compare_digest(_header_mac(file_key, covered), mac):
        raise AgeFormatError("bad header MAC")
    if len(rest) < 16:
        raise AgeFormatError("failed to read nonce")
    return _payload(file_key, rest[:16], rest[16:], decrypt=True)


def stanza_types(data: bytes) -> list[str]:
    """The stanza types of an age file's header ([] when it is not one)."""
    try:
        return [stanza.type for stanza in parse_header(data)[0]]
    except AgeFormatError:
        return []
