"""The binary store's bytes path (encrypt and decrypt of a whole file without
a ``str`` of its value or of its base64) against the general path and the
real sops: the same bytes out, the same errors and exit codes."""

from __future__ import annotations

import base64
import binascii
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow import cipher, operations
from sopsflow.engine import decrypt_branches
from sopsflow.errors import SopsError
from sopsflow.keys.age import parse_age_recipients
from sopsflow.keys.groups import get_data_key
from sopsflow.metadata import Metadata
from sopsflow.stores.binary_store import BinaryStore
from sopsflow.tree import EncryptedPieces, SealedValue, TreeMap

from ..conftest import base_env, run_sops, run_sopsflow
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT

PLAINS = {
    "empty": b"",
    "one-byte": b"x",
    "two-bytes": b"xy",
    "text": b"hello\nworld\n",
    "invalid-utf8": b"\xff\xfe\x00 not \xc3\x28 utf-8 \xed\xa0\x80\n",
    "1MiB-random": random.Random(7).randbytes(1024 * 1024),
}

_ENC = re.compile(rb"ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+),type:str\]")


@pytest.fixture
def env() -> dict[str, str]:
    return base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))


@pytest.fixture(scope="module")
def sops_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Each plaintext encrypted by the real sops."""
    work = tmp_path_factory.mktemp("binary-raw")
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    files = {}
    for name, plain in PLAINS.items():
        (work / f"{name}.bin").write_bytes(plain)
        done = run_sops(["encrypt", "--age", AGE_RECIPIENT, f"{name}.bin"], env=env, cwd=work)
        assert done.returncode == 0, done.stderr
        files[name] = done.stdout
    return files


def _counter_random(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Deterministic IVs for the cipher module; the returned function restarts them."""
    state = {"n": 0}

    def urandom(size: int) -> bytes:
        state["n"] += 1
        return bytes((state["n"] + i) % 256 for i in range(size))

    monkeypatch.setattr(cipher.os, "urandom", urandom)

    def restart() -> None:
        state["n"] = 0

    return restart


# --- library: the bytes path gives what the general path gives ---------------------------


@pytest.mark.parametrize("indent", [-1, 0, 2])
@pytest.mark.parametrize("name", list(PLAINS))
def test_encrypt_pieces_are_the_general_document(name: str, indent: int, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = PLAINS[name]
    store = BinaryStore(indent)
    meta, data_key = operations.new_file_metadata(store, [list(parse_age_recipients(AGE_RECIPIENT))])
    monkeypatch.setattr(operations, "now_lastmodified", lambda: "2026-01-02T03:04:05Z")
    restart = _counter_random(monkeypatch)
    raw = operations.encrypt_document_pieces(store, store.load_plain_raw(plain), meta, data_key)
    restart()
    general = operations.encrypt_document_pieces(store, store.load_plain(plain), meta, data_key)
    assert len(general) == 1  # the str value went the general way
    # an empty value is not encrypted (sops writes ""): nothing to keep in pieces
    assert len(raw) == (1 if not plain else 5)
    assert b"".join(raw) == general[0]
    restart()
    assert operations.encrypt_document(store, store.load_plain_raw(plain), meta, data_key) == general[0]


def test_pieces_in_an_unusual_tree_are_written_as_text() -> None:
    pieces = EncryptedPieces((b"ENC[AES256_GCM,data:", b"QQ==", b",iv:x,tag:y,type:str]"))
    meta = {"lastmodified": "t", "mac": "m", "version": "3.11.0"}
    tree = [TreeMap([("data", pieces), ("other", "v")])]
    expected = BinaryStore().dump_encrypted([TreeMap([("data", pieces.text()), ("other", "v")])], meta)
    assert BinaryStore().dump_encrypted(tree, meta) == expected
    assert b'"data": "ENC[AES256_GCM,data:QQ==,iv:x,tag:y,type:str]"' in expected


def _decrypted(store: BinaryStore, loaded: tuple[list[TreeMap], dict[str, object] | None]) -> tuple[bytes, str]:
    branches, raw = loaded
    assert raw is not None
    meta = Metadata.from_dict(raw)
    plain, mac = decrypt_branches(branches, cipher.Cipher(get_data_key(meta, None)), meta, raw_strings=True)
    value = plain[0].get("data")
    assert type(value) is bytes or value == ""
    return value if type(value) is bytes else b"", mac


@pytest.mark.parametrize("name", list(PLAINS))
def test_raw_load_decrypts_as_the_general_load(name: str, sops_files: dict[str, bytes],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))
    data, store = sops_files[name], BinaryStore()
    fast = store.load_encrypted_raw(data, cipher.parse_sealed)
    general = store.load_encrypted(data)
    if not PLAINS[name]:
        assert fast is None  # sops writes "" for an empty file: nothing to decode
        return
    assert fast is not None
    assert type(fast[0][0].get("data")) is SealedValue
    assert fast[1] == general[1]
    assert _decrypted(store, fast) == _decrypted(store, general)
    assert _decrypted(store, fast)[0] == PLAINS[name]


def _first_value(data: bytes) -> re.Match[bytes]:
    m = _ENC.search(data)
    assert m is not None
    return m


def _escape_a_character(data: bytes) -> bytes:
    """The first base64 character of the value written as a JSON \\u escape."""
    m = _first_value(data)
    return data[: m.start(1)] + b"\\u%04x" % data[m.start(1)] + data[m.start(1) + 1 :]


def _compact(data: bytes) -> bytes:
    return re.sub(rb"\n\s*", b"", data)


def _data_last(data: bytes) -> bytes:
    m = re.match(rb'\{\n\t("data": "[^"]*"),\n\t("sops": .*)\n\}\n\Z', data, re.S)
    assert m is not None
    return b"{\n\t" + m.group(2) + b",\n\t" + m.group(1) + b"\n}\n"


def _junk_after_bracket(data: bytes) -> bytes:
    m = _first_value(data)
    return data[: m.end()] + b"junk" + data[m.end() :]


def _duplicate_data(data: bytes) -> bytes:
    m = re.match(rb'(\{\n\t)("data": "[^"]*",\n\t)', data)
    assert m is not None
    return data[: m.end()] + m.group(2) + data[m.end() :]


SHAPES: dict[str, tuple[Callable[[bytes], bytes], bool]] = {
    # name: (rewrite of a sops file, whether the bytes path takes it)
    "as-sops-writes-it": (lambda d: d, True),
    "compact": (_compact, True),
    "leading-space": (lambda d: b" \n\t" + d, True),
    "escaped-character": (_escape_a_character, False),
    "data-after-sops": (_data_last, False),
    "text-after-the-bracket": (_junk_after_bracket, False),
    "duplicate-data": (_duplicate_data, True),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_document_shapes_decrypt_as_sops_decrypts_them(shape: str, sops_files: dict[str, bytes], tmp_path: Path,
                                                       env: dict[str, str]) -> None:
    rewrite, fast = SHAPES[shape]
    data = rewrite(sops_files["text"])
    assert (BinaryStore().load_encrypted_raw(data, cipher.parse_sealed) is not None) is fast
    (tmp_path / "f.bin").write_bytes(data)
    ours = run_sopsflow(["decrypt", "f.bin"], env=env, cwd=tmp_path)
    theirs = run_sops(["decrypt", "f.bin"], env=env, cwd=tmp_path)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), ours.stderr
    if theirs.returncode == 0:
        assert ours.stdout == PLAINS["text"]


# --- the command line against the real sops ------------------------------------------------------


@pytest.mark.parametrize("name", list(PLAINS))
def test_ours_encrypts_sops_decrypts(name: str, tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "f.bin").write_bytes(PLAINS[name])
    enc = run_sopsflow(["encrypt", "--age", AGE_RECIPIENT, "f.bin"], env=env, cwd=tmp_path)
    assert enc.returncode == 0, enc.stderr
    (tmp_path / "f.enc.bin").write_bytes(enc.stdout)
    written = run_sopsflow(["encrypt", "--age", AGE_RECIPIENT, "--output", "g.enc.bin", "f.bin"], env=env,
                           cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    for path in ("f.enc.bin", "g.enc.bin"):
        dec = run_sops(["decrypt", path], env=env, cwd=tmp_path)
        assert dec.returncode == 0, dec.stderr
        assert dec.stdout == PLAINS[name]
    # the layout is sops': one data value, then the metadata
    assert re.match(rb'\{\n\t"data": "(ENC\[AES256_GCM,data:[^"]+\]|)",\n\t"sops": \{\n', enc.stdout)


@pytest.mark.parametrize("name", list(PLAINS))
def test_sops_encrypts_ours_decrypts(name: str, sops_files: dict[str, bytes], tmp_path: Path,
                                     env: dict[str, str]) -> None:
    (tmp_path / "f.bin").write_bytes(sops_files[name])
    dec = run_sopsflow(["decrypt", "f.bin"], env=env, cwd=tmp_path)
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == PLAINS[name]
    out = run_sopsflow(["decrypt", "--output", "plain.out", "f.bin"], env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "plain.out").read_bytes() == PLAINS[name]
    classic = run_sopsflow(["-d", "f.bin"], env=env, cwd=tmp_path)
    assert (classic.returncode, classic.stdout) == (0, PLAINS[name])


def _flip_in(group: int) -> Callable[[bytes], bytes]:
    def flip(data: bytes) -> bytes:
        m = _first_value(data)
        raw = bytearray(base64.b64decode(m.group(group)))
        raw[len(raw) // 2] ^= 0x01
        return data[: m.start(group)] + base64.b64encode(bytes(raw)) + data[m.end(group) :]

    return flip


def _tamper_mac(data: bytes) -> bytes:
    m = re.search(rb'"mac": "ENC\[AES256_GCM,data:([A-Za-z0-9+/=]+)', data)
    assert m is not None
    raw = bytearray(base64.b64decode(m.group(1)))
    raw[0] ^= 0x01
    return data[: m.start(1)] + base64.b64encode(bytes(raw)) + data[m.end(1) :]


def _cut_data(chars: int) -> Callable[[bytes], bytes]:
    def cut(data: bytes) -> bytes:
        m = _first_value(data)
        return data[: m.end(1) - chars] + data[m.end(1) :]

    return cut


def _truncate_file(data: bytes) -> bytes:
    return data[: len(data) // 2]


TAMPERED: dict[str, Callable[[bytes], bytes]] = {
    "tampered-mac": _tamper_mac,
    "tampered-ciphertext": _flip_in(1),
    "tampered-tag": _flip_in(3),
    "ciphertext-cut-by-a-quad": _cut_data(4),
    "ciphertext-cut-mid-quad": _cut_data(1),
    "file-truncated": _truncate_file,
    "trailing-garbage": lambda d: d + b"x",
    "type-int": lambda d: d.replace(b",type:str]", b",type:int]", 1),
}


@pytest.fixture(scope="module")
def big_sops_file(sops_files: dict[str, bytes]) -> bytes:
    return sops_files["1MiB-random"]


@pytest.mark.parametrize("case", list(TAMPERED))
def test_broken_files_fail_as_sops_and_as_the_general_path(case: str, big_sops_file: bytes, tmp_path: Path,
                                                           env: dict[str, str]) -> None:
    (tmp_path / "f.bin").write_bytes(TAMPERED[case](big_sops_file))
    ours = run_sopsflow(["decrypt", "f.bin"], env=env, cwd=tmp_path)
    theirs = run_sops(["decrypt", "f.bin"], env=env, cwd=tmp_path)
    # --output-type json reads the same file the general way (str values, the JSON store's load)
    general = run_sopsflow(["decrypt", "--output-type", "json", "f.bin"], env=env, cwd=tmp_path)
    assert theirs.returncode != 0
    assert ours.returncode == theirs.returncode, ours.stderr
    assert (ours.returncode, ours.stderr) == (general.returncode, general.stderr)
    assert ours.stdout == b""
    assert b"Traceback" not in ours.stderr and len(ours.stderr.splitlines()) <= 3


def test_a_broken_document_is_reported_before_any_key_is_asked(big_sops_file: bytes, tmp_path: Path) -> None:
    # No identity at all: a file that does not parse must still say so (exit 1), not "no key".
    env = base_env(SOPS_AGE_KEY_FILE=str(tmp_path / "missing-key.txt"))
    (tmp_path / "f.bin").write_bytes(big_sops_file + b"}")
    ours = run_sopsflow(["decrypt", "f.bin"], env=env, cwd=tmp_path)
    theirs = run_sops(["decrypt", "f.bin"], env=env, cwd=tmp_path)
    assert ours.returncode == theirs.returncode == 1, ours.stderr
    assert b"invalid character after top-level value" in ours.stderr


def test_pieces_reach_the_file_whole(tmp_path: Path, env: dict[str, str]) -> None:
    """In place: the file is replaced by the joined pieces (and keeps its mode)."""
    plain = PLAINS["1MiB-random"]
    target = tmp_path / "f.bin"
    target.write_bytes(plain)
    target.chmod(0o640)
    enc = run_sopsflow(["encrypt", "-i", "--age", AGE_RECIPIENT, "f.bin"], env=env, cwd=tmp_path)
    assert enc.returncode == 0, enc.stderr
    assert target.stat().st_mode & 0o777 == 0o640
    dec = run_sops(["decrypt", "f.bin"], env=env, cwd=tmp_path)
    assert (dec.returncode, dec.stdout) == (0, plain)


# --- the ENC[] fields read from bytes agree with cipher.parse ------------------------------------

_B64_TEXT = st.text(alphabet="AB+/=a9,:\\\"é", max_size=12)


def _outcome(decode: Callable[[], bytes]) -> bytes | None:
    try:
        return decode()
    except (binascii.Error, SopsError, ValueError):
        return None


@settings(max_examples=400, deadline=None)
@given(_B64_TEXT)
def test_strict_base64_accepts_what_the_general_decoder_accepts(text: str) -> None:
    raw = text.encode()
    general = _outcome(lambda: cipher._unb64(text, "data"))
    assert _outcome(lambda: cipher._strict_b64(memoryview(raw))) == general
    assert _outcome(lambda: cipher._strict_b64_copy(memoryview(raw))) == general


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.binary(min_size=32, max_size=32) | st.binary(min_size=1, max_size=40),
       st.binary(min_size=16, max_size=16) | st.binary(max_size=20),
       st.sampled_from(["", "=", "A", ",", "\\/", "é", "]"]), st.sampled_from(["str", "int", "st"]))
def test_sealed_fields_are_what_parse_gives(ct: bytes, iv: bytes, tag: bytes, noise: str, type_tag: str) -> None:
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    text = f"ENC[AES256_GCM,data:{b64(ct)}{noise},iv:{b64(iv)},tag:{b64(tag)},type:{type_tag}]"
    data = b'{"data": "' + text.encode() + b'"}'
    sealed = cipher.parse_sealed(data, 10, len(data) - 2)
    parsed = _outcome(lambda: b"|".join(cipher.parse(text)[:3]))
    if sealed is not None:
        assert type_tag == "str" and len(iv) == 32 and len(tag) == 16
        assert parsed == b"|".join((sealed.ct, sealed.iv, sealed.tag))
    elif type_tag == "str" and len(iv) == 32 and len(tag) == 16:
        # refused only when the general path refuses it too
        assert parsed is None


def test_sealed_value_of_a_real_file(sops_files: dict[str, bytes]) -> None:
    data = sops_files["text"]
    m = _first_value(data)
    sealed = cipher.parse_sealed(data, m.start(), m.end())
    assert sealed is not None
    ct, iv, tag, type_tag = cipher.parse(m.group(0).decode())
    assert (sealed.ct, sealed.iv, sealed.tag, type_tag) == (ct, iv, tag, "str")


def test_data_the_metadata_leaves_unencrypted_is_its_text(sops_files: dict[str, bytes], tmp_path: Path,
                                                          env: dict[str, str]) -> None:
    """An edited file whose metadata says ``data`` is not encrypted: the value is
    plaintext (its ENC[] text), as sops reads it; the MAC no longer matches."""
    data = sops_files["1MiB-random"].replace(
        b'\t\t"lastmodified"', b'\t\t"unencrypted_regex": "^data$",\n\t\t"lastmodified"', 1
    )
    assert BinaryStore().load_encrypted_raw(data, cipher.parse_sealed) is not None
    (tmp_path / "f.bin").write_bytes(data)
    for args in (["decrypt", "f.bin"], ["decrypt", "--ignore-mac", "f.bin"]):
        ours, theirs = run_sopsflow(args, env=env, cwd=tmp_path), run_sops(args, env=env, cwd=tmp_path)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), ours.stderr
    assert ours.stdout == _first_value(data).group(0)
