"""Post-quantum age: the hybrid ML-KEM-768 + X25519 (X-Wing) recipient type.

Recipients are ``age1pq1...`` and identities ``AGE-SECRET-KEY-PQ-1...``
(Bech32, without the usual 90-character limit). An identity is a 32-byte
seed; SHAKE256 stretches it into the ML-KEM-768 seed (64 bytes) and the
X25519 private key (32 bytes). The public key is the ML-KEM encapsulation
key (1184 bytes) followed by the X25519 public key (32 bytes).

The stanza is ``-> mlkem768x25519 <enc>`` whose body is an HPKE base-mode
seal of the file key: KEM MLKEM768-X25519 (id 0x647a; shared secret
SHA3-256 over both shared secrets, the X25519 ciphertext and public key and
the X-Wing label), KDF HKDF-SHA256, AEAD ChaCha20-Poly1305, info
``age-encryption.org/mlkem768x25519``, no AAD. ``enc`` is the ML-KEM
ciphertext (1088 bytes) followed by the ephemeral X25519 share (32 bytes).

ML-KEM comes from ``cryptography`` (48 or later, on a backend that has it).
"""

from __future__ import annotations

import hashlib
import os

from .agefmt import AgeFormatError, Stanza, b64decode, b64encode
from .bech32 import Bech32Error, bech32_decode, bech32_encode

RECIPIENT_HRP = "age1pq"
IDENTITY_HRP = "AGE-SECRET-KEY-PQ-"
STANZA_TYPE = "mlkem768x25519"
_INFO = b"age-encryption.org/mlkem768x25519"
_XWING_LABEL = b"\\./" + b"/^\\"
_KEM_ID, _KDF_ID, _AEAD_ID = 0x647A, 0x0001, 0x0003
_SUITE = b"HPKE" + _KEM_ID.to_bytes(2, "big") + _KDF_ID.to_bytes(2, "big") + _AEAD_ID.to_bytes(2, "big")
_MLKEM_PK, _MLKEM_CT, _X25519 = 1184, 1088, 32
PUBLIC_KEY_SIZE = _MLKEM_PK + _X25519
ENC_SIZE = _MLKEM_CT + _X25519


class PqKeyError(ValueError):
    """A malformed post-quantum recipient or identity (never echoes a secret)."""


def check_recipient(text: str) -> None:
    """PqKeyError unless ``text`` is a well-formed ``age1pq1...`` recipient
    (its Bech32 and length; the ML-KEM key itself is checked on first use)."""
    if len(_recipient_bytes(text)) != PUBLIC_KEY_SIZE:
        raise PqKeyError(f"malformed recipient {text!r}: invalid MLKEM768-X25519 public key")


def _recipient_bytes(text: str) -> bytes:
    """The public key bytes of an ``age1pq1...`` recipient; PqKeyError naming it."""
    try:
        hrp, data = bech32_decode(text)
    except Bech32Error as exc:
        raise PqKeyError(f"malformed recipient {text!r}: {exc}") from None
    if hrp != RECIPIENT_HRP:
        raise PqKeyError(f"malformed recipient {text!r}: invalid type {hrp!r}")
    return data


# --- the KEM and HPKE ------------------------------------------------------------------


def _labeled_extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
    import hmac

    return hmac.digest(salt, b"HPKE-v1" + _SUITE + label + ikm, "sha256")


def _labeled_expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    full = length.to_bytes(2, "big") + b"HPKE-v1" + _SUITE + label + info
    return HKDFExpand(hashes.SHA256(), length, full).derive(prk)


def _key_schedule(shared_secret: bytes) -> tuple[bytes, bytes]:
    """(key, base nonce) of HPKE base mode with age's info."""
    context = b"\x00" + _labeled_extract(b"", b"psk_id_hash", b"") + _labeled_extract(b"", b"info_hash", _INFO)
    secret = _labeled_extract(shared_secret, b"secret", b"")
    return _labeled_expand(secret, b"key", context, 32), _labeled_expand(secret, b"base_nonce", context, 12)


def _combine(ss_pq: bytes, ss_t: bytes, ct_t: bytes, pk_t: bytes) -> bytes:
    return hashlib.sha3_256(ss_pq + ss_t + ct_t + pk_t + _XWING_LABEL).digest()


def _mlkem() -> object:
    try:
        from cryptography.hazmat.primitives.asymmetric import mlkem
    except ImportError:
        raise PqKeyError("post-quantum age keys need the cryptography package, version 48 or later") from None
    return mlkem


class HybridRecipient:
    """An ``age1pq1...`` recipient."""

    def __init__(self, public_key: bytes) -> None:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        if len(public_key) != PUBLIC_KEY_SIZE:
            raise PqKeyError("invalid MLKEM768-X25519 public key")
        mlkem = _mlkem()
        try:
            self._pq = mlkem.MLKEM768PublicKey.from_public_bytes(public_key[:_MLKEM_PK])  # type: ignore[attr-defined]
        except UnsupportedAlgorithm:
            raise PqKeyError("ML-KEM is not available in this cryptography build") from None
        except ValueError:
            raise PqKeyError("invalid MLKEM768-X25519 public key") from None
        self._pk_t = public_key[_MLKEM_PK:]
        self._t = X25519PublicKey.from_public_bytes(self._pk_t)
        self.public_key = public_key

    @classmethod
    def from_str(cls, text: str) -> HybridRecipient:
        data = _recipient_bytes(text)
        try:
            return cls(data)
        except PqKeyError as exc:
            raise PqKeyError(f"malformed recipient {text!r}: {exc}") from None

    def __str__(self) -> str:
        return bech32_encode(RECIPIENT_HRP, self.public_key)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        ephemeral = X25519PrivateKey.generate()
        ct_t = ephemeral.public_key().public_bytes_raw()
        ss_t = ephemeral.exchange(self._t)
        ss_pq, ct_pq = self._pq.encapsulate()
        key, nonce = _key_schedule(_combine(ss_pq, ss_t, ct_t, self._pk_t))
        body = ChaCha20Poly1305(key).encrypt(nonce, file_key, b"")
        return [Stanza(STANZA_TYPE, [b64encode(ct_pq + ct_t)], body)]


class HybridIdentity:
    """An ``AGE-SECRET-KEY-PQ-1...`` identity (its 32-byte seed)."""

    def __init__(self, seed: bytes) -> None:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        if len(seed) != 32:
            raise PqKeyError("invalid MLKEM768-X25519 secret key")
        expanded = hashlib.shake_256(seed).digest(96)
        mlkem = _mlkem()
        try:
            self._pq = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])  # type: ignore[attr-defined]
        except UnsupportedAlgorithm:
            raise PqKeyError("ML-KEM is not available in this cryptography build") from None
        # Any 32 bytes are an X25519 private key, so the first draw is used.
        self._t = X25519PrivateKey.from_private_bytes(expanded[64:96])
        self._pk_t = self._t.public_key().public_bytes_raw()
        self._seed = seed

    @classmethod
    def generate(cls) -> HybridIdentity:
        return cls(os.urandom(32))

    @classmethod
    def from_str(cls, text: str) -> HybridIdentity:
        # Errors never quote the text: it is a private key.
        try:
            hrp, data = bech32_decode(text)
        except Bech32Error as exc:
            raise PqKeyError(f"malformed secret key: {exc}") from None
        if hrp != IDENTITY_HRP:
            raise PqKeyError("malformed secret key: unknown type")
        return cls(data)

    def __str__(self) -> str:
        return bech32_encode(IDENTITY_HRP, self._seed)

    def __repr__(self) -> str:
        return f"HybridIdentity({self.to_public()})"

    def to_public(self) -> HybridRecipient:
        return HybridRecipient(self._pq.public_key().public_bytes_raw() + self._pk_t)

    def unwrap(self, stanza: Stanza) -> bytes | None:
        """The file key, or None when the stanza is not for this identity;
        AgeFormatError for a malformed mlkem768x25519 stanza."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        if stanza.type != STANZA_TYPE:
            return None
        if len(stanza.args) != 1:
            raise AgeFormatError("invalid mlkem768x25519 recipient block")
        enc = b64decode(stanza.args[0])
        if len(enc) != ENC_SIZE:
            raise AgeFormatError("invalid mlkem768x25519 recipient block")
        if len(stanza.body) != 32:  # checked first: no partitioning oracle
            raise AgeFormatError("invalid mlkem768x25519 recipient block")
        ct_pq, ct_t = enc[:_MLKEM_CT], enc[_MLKEM_CT:]
        try:
            ss_t = self._t.exchange(X25519PublicKey.from_public_bytes(ct_t))
        except ValueError:
            return None  # a low-order share: not a stanza this identity can open
        ss_pq = self._pq.decapsulate(ct_pq)
        key, nonce = _key_schedule(_combine(ss_pq, ss_t, ct_t, self._pk_t))
        try:
            return ChaCha20Poly1305(key).decrypt(nonce, stanza.body, b"")
        except InvalidTag:
            return None  # sealed for another recipient
