"""Shamir secret sharing in sops' layout: vectors, properties and errors."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow import shamir

from .vectors import manifest


def _vector(vector_id: str) -> dict[str, Any]:
    return next(v for v in manifest()["vectors"] if v["id"] == vector_id)


def _reference_mul(a: int, b: int) -> int:
    # Bitwise carry-less multiply reduced by the AES polynomial, independent of the tables.
    result = 0
    while b:
        if b & 1:
            result ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11B
        b >>= 1
    return result


@pytest.mark.parametrize("vector_id", ["shamir-2of2-yaml", "shamir-2of2-dotenv"])
def test_combine_sops_vector_shares(vector_id: str) -> None:
    vector = _vector(vector_id)
    shares = [bytes.fromhex(h) for h in vector["shamir_shares_hex"]]
    assert [s[-1] for s in shares] == [1, 2]  # x = group index + 1, stored last
    assert all(len(s) == 33 for s in shares)
    expected = bytes.fromhex(str(vector["data_key_hex"]))
    assert shamir.combine(shares) == expected
    assert shamir.combine(list(reversed(shares))) == expected


def test_field_multiplication_matches_reference() -> None:
    for a in range(256):
        for b in range(256):
            assert shamir._mul(a, b) == _reference_mul(a, b)
    for a in range(1, 256):
        assert shamir._mul(a, shamir._div(1, a)) == 1


def test_split_layout() -> None:
    secret = bytes(range(32))
    shares = shamir.split(secret, 5, 3)
    assert len(shares) == 5
    assert [s[-1] for s in shares] == [1, 2, 3, 4, 5]
    assert all(len(s) == 33 for s in shares)
    # The y bytes are the polynomial values, not the secret in clear.
    assert all(s[:-1] != secret for s in shares)


@settings(max_examples=40, deadline=None)
@given(
    secret=st.binary(min_size=8, max_size=40),
    n=st.integers(min_value=2, max_value=7),
    data=st.data(),
)
def test_any_k_of_n_subset_recovers(secret: bytes, n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=2, max_value=n), label="k")
    shares = shamir.split(secret, n, k)
    size = data.draw(st.integers(min_value=k, max_value=n), label="subset size")
    subset = data.draw(st.permutations(shares), label="order")[:size]
    assert shamir.combine(subset) == secret
    if k > 2:
        # k-1 shares interpolate a lower-degree polynomial: a wrong secret
        # (equal only with probability 2^-64 for 8+ bytes).
        assert shamir.combine(subset[: k - 1]) != secret


def test_every_pair_of_a_2_of_3_split_agrees() -> None:
    secret = b"\x00\xff" * 16
    shares = shamir.split(secret, 3, 2)
    for pair in itertools.combinations(shares, 2):
        assert shamir.combine(pair) == secret


def test_corrupted_share_gives_a_different_secret() -> None:
    secret = bytes(range(32))
    shares = shamir.split(secret, 2, 2)
    bad = bytearray(shares[1])
    bad[0] ^= 0x01
    assert shamir.combine([shares[0], bytes(bad)]) != secret


@pytest.mark.parametrize(
    ("n", "k", "message"),
    [
        (2, 3, "parts cannot be less than threshold"),
        (256, 2, "parts cannot exceed 255"),
        (3, 1, "threshold must be at least 2"),
    ],
)
def test_split_rejects_bad_parameters(n: int, k: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shamir.split(b"secret", n, k)


def test_split_rejects_empty_secret() -> None:
    with pytest.raises(ValueError, match="cannot split an empty secret"):
        shamir.split(b"", 2, 2)


def test_combine_rejects_bad_parts() -> None:
    shares = shamir.split(b"0123456789", 3, 2)
    with pytest.raises(ValueError, match="less than two parts"):
        shamir.combine(shares[:1])
    with pytest.raises(ValueError, match="duplicate part detected"):
        shamir.combine([shares[0], shares[0]])
    with pytest.raises(ValueError, match="same length"):
        shamir.combine([shares[0], shares[1][1:]])
    with pytest.raises(ValueError, match="at least two bytes"):
        shamir.combine([b"\x01", b"\x02"])
