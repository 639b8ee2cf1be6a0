from __future__ import annotations

import base64
import json

import pytest

from sopsflow import errors
from sopsflow.cipher import Cipher, parse, to_bytes
from sopsflow.errors import SopsError
from sopsflow.tree import Comment, Time, UInt64

from .vectors import GENERATED, vectors


def _json_vector():
    vec = vectors("json")[0]
    doc = json.loads((GENERATED / vec["encrypted"]).read_text())
    return vec, doc


def test_decrypts_sops_values_with_manifest_key():
    vec, doc = _json_vector()
    cipher = Cipher(bytes.fromhex(vec["data_key_hex"]))
    stored_mac = cipher.decrypt(doc["sops"]["mac"], doc["sops"]["lastmodified"])
    assert stored_mac == vec["mac_plaintext"]


def test_yaml_edge_type_values():
    vec = vectors("yaml")[0]
    assert vec["id"] == "yaml-edge-types"
    text = (GENERATED / vec["encrypted"]).read_text()
    cipher = Cipher(bytes.fromhex(vec["data_key_hex"]))
    values = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(": ")
        if sep and rest.startswith("ENC[") and not line.startswith(" "):
            values[key] = cipher.decrypt(rest, key + ":")
    assert values["count"] == 17
    assert values["tiny_float"] == 2.5e-9
    assert values["exp_float"] == 3e12
    assert values["disabled"] is False
    assert values["day"] == Time("2023-05-06T00:00:00Z")
    assert values["moment_offset"] == Time("2023-05-06T07:08:09.987654321-05:00")
    assert values["a:b:c"] == "colons in the key"
    assert values["not_a_number"] != values["not_a_number"]


@pytest.mark.parametrize(
    "value,plain,tag",
    [
        ("s", b"s", "str"),
        (True, b"True", "bool"),
        (False, b"False", "bool"),
        (-7, b"-7", "int"),
        (1.0, b"1", "float"),
        (1e21, b"1000000000000000000000", "float"),
        (-0.0, b"-0", "float"),
        (float("inf"), b"+Inf", "float"),
        (Time("2024-01-02T00:00:00Z"), b"2024-01-02T00:00:00Z", "time"),
        (Comment(" c"), b" c", "comment"),
    ],
)
def test_serialisation(value, plain, tag):
    assert to_bytes(value) == (plain, tag)


def test_round_trip_and_iv_reuse():
    cipher = Cipher(bytes(range(32)))
    enc = cipher.encrypt("secret", "a:b:")
    _, iv, _, tag = parse(enc)
    assert len(iv) == 32 and tag == "str"
    assert cipher.decrypt(enc, "a:b:") == "secret"
    # the IV remembered from decryption is reused for the same plaintext and path
    assert cipher.encrypt("secret", "a:b:") == enc
    assert Cipher(bytes(range(32))).encrypt("secret", "a:b:") != enc


def test_wrong_aad_is_refused():
    cipher = Cipher(bytes(range(32)))
    enc = cipher.encrypt("secret", "a:")
    with pytest.raises(SopsError) as err:
        cipher.decrypt(enc, "b:")
    assert err.value.code == errors.ERROR_DECRYPTING_TREE
    assert "secret" not in str(err.value)


def test_flipped_byte_is_refused():
    cipher = Cipher(bytes(range(32)))
    enc = cipher.encrypt("secret", "a:")
    data = enc[len("ENC[AES256_GCM,data:") :].split(",")[0]
    raw = bytearray(base64.b64decode(data))
    raw[0] ^= 1
    forged = enc.replace(data, base64.b64encode(bytes(raw)).decode())
    with pytest.raises(SopsError) as err:
        cipher.decrypt(forged, "a:")
    assert err.value.code == errors.ERROR_DECRYPTING_TREE


def test_unpadded_base64_unknown_type_and_garbage():
    cipher = Cipher(bytes(range(32)))
    enc = cipher.encrypt("sec", "a:")  # 3 bytes -> 'xxxx' no padding; use the tag field instead
    tag_b64 = enc.split(",tag:")[1].split(",")[0]
    with pytest.raises(SopsError) as err:
        cipher.decrypt(enc.replace(tag_b64, tag_b64.rstrip("=")), "a:")
    assert err.value.code == errors.ERROR_DECRYPTING_TREE
    with pytest.raises(SopsError) as err:
        cipher.decrypt(enc.replace("type:str", "type:blob"), "a:")
    assert err.value.code == errors.ERROR_DECRYPTING_TREE
    with pytest.raises(SopsError) as err:
        cipher.decrypt("plain text", "a:")
    assert err.value.code == errors.ERROR_DECRYPTING_TREE


def test_trailing_text_after_bracket_is_ignored_and_short_iv_accepted():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = bytes(range(32))
    iv = bytes(12)
    sealed = AESGCM(key).encrypt(iv, b"hi", b"k:")
    enc = (
        f"ENC[AES256_GCM,data:{base64.b64encode(sealed[:-16]).decode()},"
        f"iv:{base64.b64encode(iv).decode()},tag:{base64.b64encode(sealed[-16:]).decode()},type:str]junk"
    )
    assert Cipher(key).decrypt(enc, "k:") == "hi"


def test_uint64_is_refused():
    with pytest.raises(SopsError) as err:
        to_bytes(UInt64(2**63))
    assert err.value.code == errors.ERROR_ENCRYPTING_TREE


def test_the_aead_is_cryptographys_public_aesgcm():
    """The cipher asks cryptography's Rust binding for AES-GCM directly (start-up
    time); it must be the very class the public module exports."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    assert type(Cipher(bytes(range(32)))._aead) is AESGCM


@pytest.mark.parametrize("size", [0, 1, 200, (1 << 20) - 1, 1 << 20, (1 << 20) + 5])
@pytest.mark.parametrize("prefix", [b"", bytes(range(32))])
def test_mac_hash_is_sha512_whichever_implementation_the_first_input_picks(size, prefix):
    import hashlib

    from sopsflow.engine import _Sha512

    first = bytes(i % 251 for i in range(size))
    rest = [b"", b"x", b"more input" * 50]
    ours = _Sha512(prefix)
    expected = hashlib.sha512(prefix)
    for chunk in (first, *rest):
        ours.update(chunk)
        expected.update(chunk)
    assert ours.hexdigest() == expected.hexdigest()
    assert ours.hexdigest() == expected.hexdigest()  # asked twice, as hashlib allows
    assert _Sha512(prefix).hexdigest() == hashlib.sha512(prefix).hexdigest()  # nothing hashed
