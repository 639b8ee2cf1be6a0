"""Shamir secret sharing over GF(2^8), in the share layout sops uses.

With two or more key groups sops splits the data key so that any
``threshold`` groups can rebuild it. Each share holds one y-byte per secret
byte followed by a single x byte; share *i* (0-based group index) is
evaluated at x = i + 1. The field is GF(2^8) with the AES polynomial
x^8 + x^4 + x^3 + x + 1, so addition is XOR (sops' `shamir/shamir.go`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

_POLY = 0x11B


def _build_tables() -> tuple[list[int], list[int]]:
    # 3 generates the multiplicative group of this field, so log/exp tables
    # turn every multiplication and inversion into two lookups.
    exp = [0] * 510
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        # value * 3 == value * 2 XOR value
        doubled = value << 1
        if doubled & 0x100:
            doubled ^= _POLY
        value = doubled ^ value
    for power in range(255, 510):
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _build_tables()


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(2^8)")
    if a == 0:
        return 0
    return _EXP[_LOG[a] - _LOG[b] + 255]


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    # Horner's rule, highest degree first.
    result = 0
    for coefficient in reversed(coefficients):
        result = _mul(result, x) ^ coefficient
    return result


def split(secret: bytes, n: int, k: int) -> list[bytes]:
    """Split ``secret`` into ``n`` shares, any ``k`` of which rebuild it.

    Raises ValueError with sops' wording when the parameters are invalid.
    """
    if n < k:
        raise ValueError("parts cannot be less than threshold")
    if n > 255:
        raise ValueError("parts cannot exceed 255")
    if k < 2:
        raise ValueError("threshold must be at least 2")
    if k > 255:
        raise ValueError("threshold cannot exceed 255")
    if not secret:
        raise ValueError("cannot split an empty secret")
    shares = [bytearray(len(secret) + 1) for _ in range(n)]
    for index, share in enumerate(shares):
        share[-1] = index + 1
    for position, byte in enumerate(secret):
        coefficients = [byte] + [secrets.randbelow(256) for _ in range(k - 1)]
        for share in shares:
            share[position] = _evaluate(coefficients, share[-1])
    return [bytes(share) for share in shares]


def combine(shares: Sequence[bytes]) -> bytes:
    """Rebuild the secret from two or more shares (Lagrange interpolation at x = 0).

    More shares than the threshold are fine; too few silently give a wrong
    secret, which the file's MAC check then catches, exactly as in sops.
    """
    if len(shares) < 2:
        raise ValueError("less than two parts cannot be used to reconstruct the secret")
    length = len(shares[0])
    if length < 2:
        raise ValueError("parts must be at least two bytes")
    if any(len(share) != length for share in shares):
        raise ValueError("all parts must be the same length")
    xs = [share[-1] for share in shares]
    if len(set(xs)) != len(xs):
        raise ValueError("duplicate part detected")
    if 0 in xs:
        # x = 0 would be the secret itself; sops never writes it.
        raise ValueError("invalid part: x coordinate 0")
    basis = _lagrange_basis_at_zero(xs)
    out = bytearray(length - 1)
    for position in range(length - 1):
        value = 0
        for weight, share in zip(basis, shares, strict=True):
            value ^= _mul(weight, share[position])
        out[position] = value
    return bytes(out)


def _lagrange_basis_at_zero(xs: Sequence[int]) -> list[int]:
    # l_i(0) = prod_{j != i} x_j / (x_j - x_i); subtraction is XOR here.
    basis = []
    for i, xi in enumerate(xs):
        weight = 1
        for j, xj in enumerate(xs):
            if i != j:
                weight = _mul(weight, _div(xj, xj ^ xi))
        basis.append(weight)
    return basis
