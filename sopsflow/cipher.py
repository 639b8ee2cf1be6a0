"""The ``ENC[AES256_GCM,...]`` value codec: AES-256-GCM with a 32-byte IV,
typed plaintext serialisation as sops writes it, and the path AAD."""

from __future__ import annotations

import binascii
import os
import sys

from . import errors
from .errors import SopsError
from .lazyre import compile_lazy
from .tree import Comment, EncryptedPieces, SealedValue, Time, UInt64, go_float_f

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from .tree import TreeValue

PREFIX = "ENC[AES256_GCM,data:"
IV_SIZE = 32
TAG_SIZE = 16

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def is_encrypted_text(value: object) -> bool:
    return type(value) is str and value.startswith(PREFIX)


def to_bytes(value: TreeValue) -> tuple[bytes, str]:
    """The plaintext bytes sops encrypts (and hashes into the MAC) and the type tag."""
    kind = type(value)
    if kind is str:
        # surrogateescape carries the arbitrary bytes of the binary store
        return value.encode("utf-8", "surrogateescape"), "str"
    if kind is bytes:
        return value, "str"  # the binary store's bytes, not decoded (load_plain_raw)
    if kind is bool:
        return (b"True" if value else b"False"), "bool"
    if kind is int:
        return str(value).encode(), "int"
    if kind is float:
        return go_float_f(value).encode(), "float"
    if kind is Time:
        return value.text.encode(), "time"
    if kind is Comment:
        return value.text.encode("utf-8", "surrogateescape"), "comment"
    if kind is UInt64:
        raise SopsError(errors.ERROR_ENCRYPTING_TREE, "Error encrypting tree: unknown type: uint64")
    raise SopsError(
        errors.ERROR_ENCRYPTING_TREE, f"Error encrypting tree: unknown type: {kind.__name__}"
    )


def from_bytes(plain: bytes, type_tag: str) -> TreeValue:
    """Inverse of :func:`to_bytes` for a decrypted value.

    The type tag is not authenticated (only the value and its path are), so a
    tag edited onto another value's plaintext (any bytes, from the binary
    store) must fail as Go's parsers fail, with exit 25, never crash."""
    if type_tag == "str":
        return plain.decode("utf-8", "surrogateescape")
    if type_tag in ("int", "float", "bool", "time"):
        try:
            text = plain.decode("ascii")
        except UnicodeDecodeError:
            # no number, bool or RFC 3339 time has a non-ASCII byte
            raise SopsError(
                errors.ERROR_DECRYPTING_TREE, f"Error decrypting tree: invalid {type_tag} value"
            ) from None
    if type_tag == "int":
        # Go's Atoi: an optional sign and decimal digits, within int64
        m = _GO_INT.match(text)
        number = int(m.group(1) + m.group(2)) if m else None
        if number is None or not -(1 << 63) <= number < (1 << 63):
            raise SopsError(errors.ERROR_DECRYPTING_TREE, "Error decrypting tree: invalid int value")
        return number
    if type_tag == "float":
        special = {"+Inf": float("inf"), "-Inf": float("-inf"), "NaN": float("nan")}
        if text in special:
            return special[text]
        try:
            return float(text)
        except ValueError:
            raise SopsError(errors.ERROR_DECRYPTING_TREE, "Error decrypting tree: invalid float value") from None
    if type_tag == "bool":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise SopsError(errors.ERROR_DECRYPTING_TREE, "Error decrypting tree: invalid bool value")
    if type_tag == "time":
        if not _is_go_rfc3339(text):
            raise SopsError(errors.ERROR_DECRYPTING_TREE, "Error decrypting tree: invalid time value")
        return Time(text)
    if type_tag == "comment":
        return Comment(plain.decode("utf-8", "surrogateescape"))
    if type_tag == "bytes":
        # sops 3.11 knows the tag but crashes on it (exit 2); we refuse it cleanly.
        raise SopsError(errors.COULD_NOT_READ_INPUT_FILE, "Error decrypting tree: unsupported datatype bytes")
    raise SopsError(errors.ERROR_DECRYPTING_TREE, f"Error decrypting tree: Unknown datatype: {type_tag}")


#: Go's strconv.Atoi syntax; at most 19 digits keeps int() away from huge
#: strings (any longer number is out of int64's range anyway).
_GO_INT = compile_lazy(r"([+-]?)0*([0-9]{1,19})\Z")
#: Go's time.Parse(time.RFC3339, ...): the fraction is optional, "," or ".".
_RFC3339 = compile_lazy(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,][0-9]+)?"
    r"(?:Z|[+-]([0-9]{2}):([0-9]{2}))\Z"
)


def _is_go_rfc3339(text: str) -> bool:
    m = _RFC3339.match(text)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (1 <= month <= 12 and 1 <= day <= days[month - 1] and hour < 24 and minute < 60 and second < 60):
        return False
    zone_hour, zone_minute = m.group(7), m.group(8)
    return zone_hour is None or (int(zone_hour) <= 24 and int(zone_minute) <= 60)


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _unb64(text: str, what: str) -> bytes:
    """Strict padded standard base64, as ``b64decode(validate=True)`` accepts it.
    Checked with ``bytes.translate`` rather than b64decode's regex, which costs
    ~20 ns a byte (0.2 s for the 13 MB value of a 10 MiB binary file)."""
    try:
        raw = text.encode("ascii")
        rest = raw.translate(None, _B64_ALPHABET)
        # Go's StdEncoding: whole quads; only "=" or "==" left over, at the very end
        if len(raw) % 4 or rest and (rest not in (b"=", b"==") or not raw.endswith(rest) or raw == rest):
            raise ValueError(what)
        return binascii.a2b_base64(raw)
    except (binascii.Error, ValueError):
        raise SopsError(
            errors.ERROR_DECRYPTING_TREE, f"Error decrypting tree: illegal base64 data in {what}"
        ) from None


_B64_FIELD = "([A-Za-z0-9+/]*={0,2})"
#: Well-formed ENC[] text in one match; base64 has no "," or "]", so the groups
#: are exactly the fields the slower find-based split below cuts out.
_ENC_RE = compile_lazy(rf"ENC\[AES256_GCM,data:{_B64_FIELD},iv:{_B64_FIELD},tag:{_B64_FIELD},type:([^\]]+)\]")
#: Above this length the regex costs more than the translate-based check.
_FAST_PARSE_MAX = 8192


def parse(text: str) -> tuple[bytes, bytes, bytes, str]:
    """Split an ENC[] string into (ciphertext, iv, tag, type). Anything after the
    closing bracket is ignored, as sops' anchored-at-start match does."""
    if len(text) <= _FAST_PARSE_MAX:
        m = _ENC_RE.match(text)
        if m is not None:
            data, iv, tag, type_tag = m.groups()
            if not (len(data) % 4 or len(iv) % 4 or len(tag) % 4):
                return binascii.a2b_base64(data), binascii.a2b_base64(iv), binascii.a2b_base64(tag), type_tag
    if not text.startswith(PREFIX):
        raise _bad_format()
    i_iv = text.find(",iv:", len(PREFIX))
    i_tag = text.find(",tag:", i_iv + 4) if i_iv >= 0 else -1
    i_type = text.find(",type:", i_tag + 5) if i_tag >= 0 else -1
    i_end = text.find("]", i_type + 6) if i_type >= 0 else -1
    if min(i_iv, i_tag, i_type, i_end) < 0:
        raise _bad_format()
    data = text[len(PREFIX) : i_iv]
    iv = text[i_iv + 4 : i_tag]
    tag = text[i_tag + 5 : i_type]
    type_tag = text[i_type + 6 : i_end]
    if not type_tag:
        raise _bad_format()
    return _unb64(data, "data"), _unb64(iv, "iv"), _unb64(tag, "tag"), type_tag


# --- large string values as bytes (the binary store) ------------------------------

_PREFIX_BYTES = PREFIX.encode()
_STR_END = b",type:str]"


def _strict_b64(view: memoryview) -> bytes:
    """Whole quads of the alphabet, "=" or "==" only as the last quad's padding:
    what :func:`_unb64` accepts, checked by binascii's strict mode in C with no copy."""
    if len(view) % 4:
        raise binascii.Error("partial quad")
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(view, strict_mode=True)
    return _strict_b64_copy(view)  # pragma: no cover - Python 3.10 has no strict mode


def _strict_b64_copy(view: memoryview) -> bytes:
    """:func:`_strict_b64` for Python 3.10: _unb64's check on a copy."""
    raw = bytes(view)
    rest = raw.translate(None, _B64_ALPHABET)
    if len(raw) % 4 or rest and (rest not in (b"=", b"==") or not raw.endswith(rest) or raw == rest):
        raise binascii.Error("not strict base64")
    return binascii.a2b_base64(raw)


def parse_sealed(data: bytes, start: int, end: int) -> SealedValue | None:
    """``data[start:end]`` as the fields of ``ENC[AES256_GCM,data:...,iv:...,tag:...,type:str]``
    when it is exactly that, with strict base64, a 32-byte IV and a 16-byte
    tag: what :func:`parse` gives for that text, with no ``str`` of it made.
    Otherwise None, and the caller takes the general path (whose :func:`parse`
    then reports whatever is wrong). Such a text is plain ASCII with nothing a
    JSON string would escape."""
    if not data.startswith(_PREFIX_BYTES, start, end) or not data.endswith(_STR_END, start, end):
        return None
    # Searched from the end, where the short fields are: a "," in the data
    # field is not base64, so the strict decoding below fails on it.
    i_type = end - len(_STR_END)
    i_tag = data.rfind(b",tag:", start, i_type)
    i_iv = data.rfind(b",iv:", start, i_tag) if i_tag >= 0 else -1
    if i_iv < start + len(_PREFIX_BYTES):
        return None
    view = memoryview(data)
    try:
        ct = _strict_b64(view[start + len(_PREFIX_BYTES) : i_iv])
        iv = _strict_b64(view[i_iv + 4 : i_tag])
        tag = _strict_b64(view[i_tag + 5 : i_type])
    except (binascii.Error, ValueError):
        return None
    if len(iv) != IV_SIZE or len(tag) != TAG_SIZE:
        return None
    return SealedValue(ct, iv, tag, view[start:end])


def _bad_format() -> SopsError:
    return SopsError(
        errors.ERROR_DECRYPTING_TREE,
        "Error decrypting tree: Input string does not match sops' data format",
    )


def _aesgcm() -> type[AESGCM]:
    """cryptography's AESGCM class. ``cryptography.hazmat.primitives.ciphers.aead``
    re-exports it from the Rust binding, but importing that module first runs
    the ``ciphers`` package (base, modes and algorithms, ``cryptography.utils``
    and ``typing``): ~4 ms of every command's start for one class. The binding
    is asked directly; should a cryptography release move it, the public name
    is used."""
    try:
        from cryptography.hazmat.bindings._rust import openssl

        found: type[AESGCM] = openssl.aead.AESGCM
    except (ImportError, AttributeError):  # pragma: no cover - depends on the cryptography release
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM as found
    return found


class Cipher:
    """AES-256-GCM for one data key.

    Remembers the IV of every (AAD, plaintext, type) it decrypted so that
    re-encrypting an unchanged value yields the identical ENC[] text, which is
    what keeps ``edit``/``set``/``rotate`` diffs minimal in sops.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SopsError(errors.COULD_NOT_RETRIEVE_KEY, "data key has the wrong length")
        self._aead = _aesgcm()(key)
        self._key = key  # for decrypt_sealed's streaming decryption
        self.iv_cache: dict[tuple[str, bytes, str], bytes] = {}

    def encrypt(self, value: TreeValue, aad: str) -> str:
        plain, type_tag = to_bytes(value)
        return self.encrypt_bytes(plain, type_tag, aad)

    def encrypt_bytes(self, plain: bytes, type_tag: str, aad: str) -> str:
        iv = self.iv_cache.get((aad, plain, type_tag)) if self.iv_cache else None
        if iv is None:
            iv = os.urandom(IV_SIZE)
        sealed = memoryview(self._aead.encrypt(iv, plain, aad.encode("utf-8", "surrogateescape")))
        ct, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]  # views: no copy of a large value
        b64 = binascii.b2a_base64  # local name: this runs once per value
        return (
            f"{PREFIX}{b64(ct, newline=False).decode()},iv:{b64(iv, newline=False).decode()},"
            f"tag:{b64(tag, newline=False).decode()},type:{type_tag}]"
        )

    def encrypt_pieces(self, plain: bytes, aad: str) -> EncryptedPieces:
        """:meth:`encrypt_bytes` of a ``str`` value, with the ENC[] text left as
        ASCII pieces: the base64 of a large value is never copied into a ``str``
        (the binary store writes the pieces as they are). No IV cache lookup:
        only a value read as bytes for a new encryption comes here."""
        iv = os.urandom(IV_SIZE)
        sealed = memoryview(self._aead.encrypt(iv, plain, aad.encode("utf-8", "surrogateescape")))
        b64 = binascii.b2a_base64
        tail = b",iv:%s,tag:%s,type:str]" % (b64(iv, newline=False), b64(sealed[-TAG_SIZE:], newline=False))
        return EncryptedPieces((_PREFIX_BYTES, b64(sealed[:-TAG_SIZE], newline=False), tail))

    def decrypt_sealed(self, sealed: SealedValue, aad: str) -> bytes:
        """The plaintext of a ``str`` value parsed by :func:`parse_sealed`, with
        :meth:`decrypt_bytes`' error. Not remembered in the IV cache: only the
        decrypt command's whole-file binary value comes here, and hashing a
        large plaintext as a cache key would cost more than the decryption."""
        from cryptography.hazmat.primitives.ciphers import Cipher as Aes
        from cryptography.hazmat.primitives.ciphers import algorithms, modes

        # The streaming form of AESGCM.decrypt, which takes the tag on its own:
        # no copy of the ciphertext to append it.
        try:
            opener = Aes(algorithms.AES(self._key), modes.GCM(sealed.iv, sealed.tag)).decryptor()
            opener.authenticate_additional_data(aad.encode("utf-8", "surrogateescape"))
            plain = opener.update(sealed.ct)
            opener.finalize()
        except Exception as exc:
            if not _is_authentication_failure(exc):
                raise
            raise _authentication_failed(aad) from None
        return plain

    def decrypt_bytes(self, text: str, aad: str) -> tuple[bytes, str]:
        ct, iv, tag, type_tag = parse(text)
        if not iv:
            raise SopsError(errors.ERROR_DECRYPTING_TREE, "Error decrypting tree: empty IV")
        try:
            plain = self._aead.decrypt(iv, ct + tag, aad.encode("utf-8", "surrogateescape"))
        except Exception as exc:
            if not _is_authentication_failure(exc):
                raise
            raise _authentication_failed(aad) from None
        self.iv_cache[(aad, plain, type_tag)] = iv
        return plain, type_tag

    def decrypt(self, text: str, aad: str) -> TreeValue:
        plain, type_tag = self.decrypt_bytes(text, aad)
        return from_bytes(plain, type_tag)


def _is_authentication_failure(exc: Exception) -> bool:
    """Whether cryptography refused a value (a wrong tag, or a malformed
    nonce or key). ``cryptography.exceptions`` (and with it ``typing``) is
    loaded only when a value fails, not by every run."""
    from cryptography.exceptions import InvalidTag

    return isinstance(exc, (InvalidTag, ValueError))


def _authentication_failed(aad: str) -> SopsError:
    return SopsError(
        errors.ERROR_DECRYPTING_TREE,
        f"Error decrypting tree: could not decrypt value at {_show_path(aad)}: cipher: message authentication failed",
    )


def _show_path(aad: str) -> str:
    """A key path for error messages (keys only, never values)."""
    return repr(aad[:-1] if aad.endswith(":") else aad) if aad != ":" else "document comments"
