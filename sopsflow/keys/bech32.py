"""Bech32 (BIP 173 checksum, without BIP 173's length limit), as age writes
recipients and identities: the one encoder and decoder the age key modules share."""

from __future__ import annotations


class Bech32Error(ValueError):
    """Malformed Bech32 text. The message never quotes the text: it may be a
    private key."""


CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i, gen in enumerate((0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or (acc << (to_bits - bits)) & maxv:
        raise Bech32Error("invalid padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """Lower-case Bech32 of ``data``; upper case when ``hrp`` is upper case."""
    values = _convert(data, 8, 5, True)
    lower = hrp.lower()
    poly = polymod(_hrp_expand(lower) + values + [0] * 6) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    text = lower + "1" + "".join(CHARSET[v] for v in values + checksum)
    return text.upper() if hrp.isupper() else text


def bech32_decode(text: str) -> tuple[str, bytes]:
    """(hrp as written, data). Bech32Error for anything malformed."""
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixed case")
    lower = text.lower()
    hrp, sep, data = lower.rpartition("1")
    if not sep or not hrp or len(data) < 6:
        raise Bech32Error("separator '1' at invalid position")
    if any(c not in CHARSET for c in data) or any(ord(c) < 33 or ord(c) > 126 for c in hrp):
        raise Bech32Error("invalid character")
    values = [CHARSET.index(c) for c in data]
    if polymod(_hrp_expand(hrp) + values) != 1:
        raise Bech32Error("invalid checksum")
    decoded = bytes(_convert(values[:-6], 5, 8, False))
    return (hrp.upper() if text.isupper() else hrp), decoded


def checksum_valid(text: str) -> bool:
    """Whether ``text`` (either case) has a valid Bech32 checksum, whatever its
    payload length; the cheap test that tells real keys from placeholders."""
    lower = text.lower()
    hrp, sep, payload = lower.rpartition("1")
    if not sep or not hrp or len(payload) < 6 or any(c not in CHARSET for c in payload):
        return False
    return polymod(_hrp_expand(hrp) + [CHARSET.index(c) for c in payload]) == 1
