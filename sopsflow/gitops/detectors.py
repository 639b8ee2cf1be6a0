"""Content detectors: secrets that must never be committed in plaintext,
wherever they sit (``audit.py`` runs them outside the creation rules, and
the private-key/age detectors on every file, SOPS files included).

Each detector is tuned against false alarms: text that merely *mentions*
a secret (docs saying "password", a README showing ``-----BEGIN RSA PRIVATE
KEY-----`` with ``...`` as the body, ``AGE-SECRET-KEY-1...``, ``.env.example``
placeholders, Helm/Flux templated values, SOPS ``ENC[...]`` values) is not a
secret. A detection carries no secret text: only what was found, where, and
an ``anchor`` that identifies it stably (for allow-list fingerprints).

Detectors:

* private keys: PEM (``-----BEGIN [RSA |EC |DSA |ENCRYPTED |]PRIVATE KEY-----``),
  OpenSSH, SSH2 and PGP private key blocks, with a real base64 body
  (also inside JSON strings with ``\\n`` escapes), and PuTTY ``.ppk`` keys;
* age identities: ``AGE-SECRET-KEY-1...`` (and ``-PQ-1``) with a valid bech32 checksum;
* both of these also when the file holds them encoded as UTF-16 or as
  base64 (``tls.key: LS0tLS1CRUdJTi...``);
* provider tokens with a known shape (``AKIA...``, ``ghp_...``, ``xoxb-...``,
  ``sk_live_...``) under any key name, placeholders (``...EXAMPLE``, ``xxxx``) excepted;
* Kubernetes Secrets: any document (or ``List`` item) whose parsed ``kind`` is
  ``Secret`` (however it is quoted, escaped or tagged; ``.yaml.j2`` and other
  template names included), with a non-empty, non-encrypted, non-templated
  value under ``data`` or ``stringData``;
* dotenv files and the ``environment:`` of compose files: credential-like
  keys (``*PASSWORD*``, ``*_TOKEN``, ``API_KEY``...) with non-placeholder
  values, and URLs with an embedded password; in example/template files only
  values that look real (known token formats, or long high-entropy strings).

Every detector is linear in the size of the file: patterns are searched once
over the data or matched at a position over a bounded window, a private key's
body is measured only up to the next key header, and line numbers come from
one forward count. :func:`count_regex_bytes` measures the bytes handed to the
regex engine, so a test can pin this without timing anything.
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager

TYPE_CHECKING = False  # typing is not imported at run time (hook start-up)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, NamedTuple
else:
    from ..records import NamedTuple


class Detection(NamedTuple):
    what: str  # "OpenSSH private key", "dotenv credential DB_PASSWORD", ... (never the value)
    line: int | None  # 1-based
    anchor: str  # stable, secret-free identity of the finding within its file
    #: the anchor older versions gave the same finding (ordinal anchors of keys),
    #: so allow-list entries made with them keep working for a while
    legacy: str = ""


#: Anchor prefixes of the heuristic detectors (credential-like names, token
#: shapes, high-entropy values in examples): their findings may be false
#: positives and can be suppressed inline. Key material cannot.
HEURISTIC_PREFIXES = ("dotenv:", "compose:", "provider-token:")


def is_heuristic(anchor: str) -> bool:
    return anchor.startswith(HEURISTIC_PREFIXES)


def scan(path: str, data: bytes) -> list[Detection]:
    """Every detector that applies to ``path``, in line order."""
    found = find_key_material(data)
    if is_manifest_name(path):
        found += find_k8s_secrets(data)
    if is_dotenv_name(path):
        found += find_dotenv_credentials(data, example=is_example_name(path))
    if is_compose_name(path):
        found += find_compose_credentials(data, example=is_example_name(path))
    named = {d.line for d in found}
    found += [d for d in find_provider_tokens(data) if d.line not in named]  # one finding per line
    found.sort(key=lambda d: d.line or 0)
    return found


def find_key_material(data: bytes) -> list[Detection]:
    """Private keys and age identities, as text or encoded: what no file may
    hold in plaintext, SOPS files and config files included."""
    return find_private_keys(data) + find_age_identities(data) + find_encoded_keys(data)


#: Bytes handed to the regex engine, per detector, while :func:`count_regex_bytes`
#: is active (None otherwise: the hook pays one global lookup per call).
_COUNTS: dict[str, int] | None = None


class _Regex:
    """A pattern compiled on first use (most runs of the hook need a few of
    them, and compiling them all costs every process start) that can count
    the bytes each call hands to the engine."""

    __slots__ = ("_args", "_compiled", "group", "_re2")

    def __init__(self, group: str, pattern: str | bytes, flags: int = 0, *, re2: bool = False) -> None:
        self.group = group
        self._args = (pattern, flags)
        self._compiled: Any = None
        #: RE2 (a DFA: linear, and one pass for many alternatives) for gates
        #: that only ask whether anything matches
        self._re2 = re2

    def _re(self, subject: str | bytes, pos: int, endpos: int | None) -> Any:
        if _COUNTS is not None:
            end = len(subject) if endpos is None else min(endpos, len(subject))
            _COUNTS[self.group] = _COUNTS.get(self.group, 0) + max(0, end - pos)
        if self._compiled is None:
            if self._re2:
                import re2

                self._compiled = re2.compile(self._args[0])
            else:
                self._compiled = re.compile(*self._args)
        return self._compiled

    def search(self, subject: Any, pos: int = 0, endpos: int | None = None) -> Any:
        return self._re(subject, pos, endpos).search(subject, pos, len(subject) if endpos is None else endpos)

    def found(self, subject: Any) -> bool:
        """Whether the pattern occurs anywhere in ``subject``."""
        return self._re(subject, 0, None).search(subject) is not None

    def match(self, subject: Any, pos: int = 0, endpos: int | None = None) -> Any:
        return self._re(subject, pos, endpos).match(subject, pos, len(subject) if endpos is None else endpos)

    def fullmatch(self, subject: Any) -> Any:
        return self._re(subject, 0, None).fullmatch(subject)

    def finditer(self, subject: Any) -> Iterator[Any]:
        return self._re(subject, 0, None).finditer(subject)  # type: ignore[no-any-return]

    def split(self, subject: Any) -> list[Any]:
        return self._re(subject, 0, None).split(subject)  # type: ignore[no-any-return]


@contextmanager
def count_regex_bytes() -> Iterator[dict[str, int]]:
    """Within the block, the bytes every detector hands to the regex engine,
    by detector (for tests and benchmarks: the detectors are linear when this
    stays a small multiple of the input size)."""
    global _COUNTS
    saved = _COUNTS
    counts: dict[str, int] = {}
    _COUNTS = counts
    try:
        yield counts
    finally:
        _COUNTS = saved


class _LineCounter:
    """1-based line numbers of increasing offsets, counted forward once (a
    fresh count from offset 0 per hit is quadratic in the number of hits)."""

    __slots__ = ("_data", "_offset", "_line")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0
        self._line = 1

    def __call__(self, offset: int) -> int:
        if offset < self._offset:
            self._offset, self._line = 0, 1
        self._line += self._data.count(b"\n", self._offset, offset)
        self._offset = offset
        return self._line


# --- YAML, composed by libyaml ---------------------------------------------------------

NULL_TAG = "tag:yaml.org,2002:null"
STR_TAG = "tag:yaml.org,2002:str"
NULLS = frozenset({"", "~", "null", "Null", "NULL"})  # go-yaml's plain nulls


class _Resolver:
    """Tags for composing only: a plain null is null, every other scalar a
    string (what a value *is* does not matter here, only whether it is
    ENC[...], empty or null), which skips PyYAML's regex-based resolution."""

    def descend_resolver(self, *_: Any) -> None:
        pass

    def ascend_resolver(self, *_: Any) -> None:
        pass

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        import yaml

        if kind is yaml.ScalarNode:
            return NULL_TAG if implicit[0] and value in NULLS else STR_TAG
        return "tag:yaml.org,2002:seq" if kind is yaml.SequenceNode else "tag:yaml.org,2002:map"


_LOADER: Any = None


def _loader_class() -> Any:
    global _LOADER
    if _LOADER is None:
        import yaml

        try:
            from yaml._yaml import CParser
        except ImportError:  # no libyaml: the pure parser, slower but the same nodes
            _LOADER = yaml.SafeLoader
        else:
            _LOADER = type("_ComposeLoader", (CParser, _Resolver), {})
    return _LOADER


def yaml_loader(data: bytes) -> Any:
    """A libyaml parser over ``data`` (events and nodes; call ``dispose()``)."""
    return _loader_class()(data)


def compose_documents(data: bytes) -> list[Any]:
    """The YAML documents of ``data`` as PyYAML nodes (with line numbers),
    composed by libyaml. Raises ValueError saying why when it is not YAML."""
    import yaml

    loader = yaml_loader(data)
    try:
        docs = []
        while loader.check_node():
            docs.append(loader.get_node())
        return docs
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ValueError(f"does not parse as YAML{f' at line {mark.line + 1}' if mark is not None else ''}") from None
    except (RecursionError, UnicodeError):
        raise ValueError("does not parse as YAML") from None
    finally:
        loader.dispose()


def _yaml_nodes(data: bytes) -> list[Any] | None:
    try:
        return compose_documents(data)
    except ValueError:
        return None



# --- private keys ------------------------------------------------------------------

# Bounded repetitions: a header is matched in constant work at each "-----".
_KEY_BEGIN = _Regex("private-key", rb"-{4,5} ?BEGIN ((?:[A-Z0-9]{1,24} ){0,6})PRIVATE KEY( BLOCK)? ?-{4,5}")
_KEY_END = _Regex("private-key", rb"-{4,5} ?END [A-Z0-9 ]{0,80}PRIVATE KEY")
_PUTTY_HEADER = _Regex("private-key", rb"PuTTY-User-Key-File-[0-9]{1,3}:")
_B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_DECORATION = b" \t\"',;\\|#*/+-"
#: base64 characters a body needs before it counts as a key; real keys have
#: hundreds (an Ed25519 OpenSSH key ~400), documentation placeholders a few.
MIN_KEY_BODY = 64
#: An Ed25519 .ppk holds a single 48-character private line; its headers leave no doubt.
MIN_PUTTY_BODY = 40
#: Distinct keys per file whose public half is derived for their fingerprint anchor.
MAX_DERIVED = 64
#: How far after its header a key body is looked for.
_KEY_WINDOW = 16384


def find_private_keys(data: bytes) -> list[Detection]:
    out: list[Detection] = []
    if b"PRIVATE KEY" in data:
        out += _pem_keys(data)
    if b"PuTTY-User-Key-File-" in data:
        out += _putty_keys(data)
    return out


def _pem_keys(data: bytes) -> list[Detection]:
    out: list[Detection] = []
    counts: dict[str, int] = {}
    line_of = _LineCounter(data)
    headers = list(_KEY_BEGIN.finditer(data))
    derived: dict[bytes, str] = {}
    for i, m in enumerate(headers):
        # A body ends at the next header at the latest: every byte is measured once.
        limit = min(headers[i + 1].start() if i + 1 < len(headers) else len(data), m.end() + _KEY_WINDOW)
        window = data[m.end():limit]
        if len(_key_body(window)) < MIN_KEY_BODY:
            continue
        body = _key_body(window, _BODY_DECORATION)
        label = (m.group(1).decode().strip() + " PRIVATE KEY" + (m.group(2) or b"").decode()).strip()
        n = counts.get(label, 0)
        counts[label] = n + 1
        # Deriving a public key costs a parse; past MAX_DERIVED keys a file
        # (a hostile one) gets content digests, which are as stable.
        ident = derived.get(body)
        if ident is None:
            ident = _pem_key_id(label, body) if len(derived) < MAX_DERIVED else "content:" + _digest(body)
            derived[body] = ident
        out.append(Detection(_key_name(label), line_of(m.start()), "private-key:" + ident,
                             f"private-key:{label}:{n}"))
    return out


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()[:24]


def _pem_key_id(label: str, body: bytes) -> str:
    """A position-free id of a key: a digest of its public half where the
    block holds or yields it (OpenSSH keys carry it in clear, even when the
    private part is passphrase-protected; PKCS#1/#8 and SEC1 keys without a
    passphrase derive it), else a digest of the block's content."""
    import binascii

    try:
        der = binascii.a2b_base64(body)
    except (binascii.Error, ValueError):
        return "content:" + _digest(body)
    if label == "OPENSSH PRIVATE KEY":
        public = _openssh_public(der)
        if public is not None:
            return "public:" + _digest(public)
    elif label in ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY"):
        public = _der_public(label, der)
        if public is not None:
            return "public:" + _digest(public)
    return "content:" + _digest(der)


def _openssh_public(blob: bytes) -> bytes | None:
    """The first public key of an ``openssh-key-v1`` blob (stored unencrypted)."""
    magic = b"openssh-key-v1\0"
    if not blob.startswith(magic):
        return None
    at = len(magic)
    try:
        for _ in range(3):  # cipher name, kdf name, kdf options
            at += 4 + int.from_bytes(blob[at:at + 4], "big")
        count = int.from_bytes(blob[at:at + 4], "big")
        at += 4
        size = int.from_bytes(blob[at:at + 4], "big")
        public = blob[at + 4:at + 4 + size]
    except (IndexError, ValueError):
        return None
    return public if count >= 1 and size and len(public) == size else None


def _der_public(label: str, der: bytes) -> bytes | None:
    from cryptography.hazmat.primitives import serialization

    kind = "PRIVATE KEY" if label == "PRIVATE KEY" else label
    pem = b"-----BEGIN " + kind.encode() + b"-----\n" + __import__("base64").encodebytes(der) + \
        b"-----END " + kind.encode() + b"-----\n"
    try:
        # only the public half is wanted: RSA's consistency checks would cost milliseconds per key
        key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
        return key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    except Exception:  # an encrypted, unsupported or damaged key: the content digest names it
        return None


def _key_name(label: str) -> str:
    kind = label.replace(" PRIVATE KEY BLOCK", "").replace(" PRIVATE KEY", "").replace("PRIVATE KEY", "").strip()
    if "PGP" in kind:
        return "PGP private key block"
    if "OPENSSH" in kind:
        return "OpenSSH private key"
    if "SSH2" in kind:
        return "SSH2 private key"
    return f"{kind + ' ' if kind else ''}PEM private key".replace("ENCRYPTED PEM", "encrypted PEM")


#: Decoration around the lines of a key body that is never part of base64
#: ("+" and "/" are, so they are not stripped when the body is read, only
#: when it is measured: a key in code concatenated with " +" still counts).
_BODY_DECORATION = b" \t\"',;\\|#*-"


def _key_body(window: bytes, decoration: bytes = _DECORATION) -> bytes:
    """The base64 body of a key block (armour headers and decoration left out)."""
    end = _KEY_END.search(window)
    if end is not None:
        window = window[: end.start()]
    window = window.replace(b"\\n", b"\n").replace(b"\\r", b"\n")
    parts: list[bytes] = []
    for raw in window.splitlines():
        line = raw.strip(decoration)
        if not line or b": " in raw:  # armour headers (Version:, Proc-Type:, Comment:)
            continue
        if not line.translate(None, _B64_CHARS):
            parts.append(line)
        elif parts:
            break  # the body ended (a key embedded in other text)
    return b"".join(parts)


def _putty_keys(data: bytes) -> list[Detection]:
    """PuTTY ``.ppk`` files (versions 2 and 3, encrypted or not): a
    ``Private-Lines: N`` section of N base64 lines."""
    out: list[Detection] = []
    line_of = _LineCounter(data)
    headers = list(_PUTTY_HEADER.finditer(data))
    for i, m in enumerate(headers):
        limit = min(headers[i + 1].start() if i + 1 < len(headers) else len(data), m.end() + 4 * _KEY_WINDOW)
        window = data[m.end():limit]
        at = window.find(b"Private-Lines:")
        if at < 0:
            continue
        lines = window[at:].split(b"\n", 257)
        count = lines[0][len(b"Private-Lines:"):].strip()
        if not count.isdigit():
            continue
        parts = []
        for raw in lines[1:1 + min(int(count[:4]), 256)]:
            line = raw.strip()
            if line and not line.translate(None, _B64_CHARS):
                parts.append(line)
        if sum(map(len, parts)) >= MIN_PUTTY_BODY:
            public = _putty_public(window[:at])
            ident = "public:" + _digest(public) if public else "content:" + _digest(b"".join(parts))
            out.append(Detection("PuTTY private key", line_of(m.start()), "private-key:" + ident,
                                 f"private-key:PuTTY:{len(out)}"))
    return out


def _putty_public(head: bytes) -> bytes:
    """The ``Public-Lines`` base64 of a .ppk (stored in clear), joined; b"" if absent."""
    at = head.find(b"Public-Lines:")
    if at < 0:
        return b""
    lines = head[at:].split(b"\n", 257)
    count = lines[0][len(b"Public-Lines:"):].strip()
    if not count.isdigit():
        return b""
    return b"".join(raw.strip() for raw in lines[1:1 + min(int(count[:4]), 256)])


# --- age identities ----------------------------------------------------------------

_AGE_IDENTITY = _Regex("age-identity", rb"AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Z]{50,}|age-secret-key-(?:pq-)?1[0-9a-z]{50,}")


def find_age_identities(data: bytes) -> list[Detection]:
    if b"AGE-SECRET-KEY-" not in data and b"age-secret-key-" not in data:
        return []
    out: list[Detection] = []
    line_of = _LineCounter(data)
    for m in _AGE_IDENTITY.finditer(data):
        text = m.group(0).decode("ascii")
        if bech32_valid(text):
            out.append(Detection("age identity (AGE-SECRET-KEY-1...)", line_of(m.start()),
                                 "age-identity:" + _age_recipient_id(text), f"age-identity:{len(out)}"))
    return out


def _age_recipient_id(identity: str) -> str:
    """The identity's recipient (its public half: naming it reveals nothing),
    else a digest of the identity."""
    text = identity.upper()
    try:
        if text.startswith("AGE-SECRET-KEY-PQ-1"):
            from ..keys.agepq import HybridIdentity

            return str(HybridIdentity.from_str(text).to_public())
        import pyrage

        return str(pyrage.x25519.Identity.from_str(text).to_public())
    except Exception:  # not a key pyrage reads (a newer type): the digest names it
        return "content:" + _digest(text.encode("ascii"))


def bech32_valid(text: str) -> bool:
    """Whether ``text`` is a bech32 string with a valid checksum (placeholders
    such as ``AGE-SECRET-KEY-1XXXX...`` fail it)."""
    from ..keys.bech32 import checksum_valid

    return checksum_valid(text)


# --- key material in UTF-16 or base64 ---------------------------------------------

#: Text that only key material contains; looked for in its encoded forms.
_KEY_MARKERS = (b"PRIVATE KEY", b"PuTTY-User-Key-File-", b"AGE-SECRET-KEY-", b"age-secret-key-")
_B64_NEEDLES: list[tuple[bytes, int]] | None = None
_B64_MASK: bytes | None = None


def _b64_mask() -> bytes:
    """A translation table: base64 characters -> "A", line ends -> "\\n",
    anything else -> " " (so run boundaries are found at C speed)."""
    global _B64_MASK
    if _B64_MASK is None:
        table = bytearray(b" " * 256)
        for c in _B64_CHARS:
            table[c] = ord("A")
        table[10] = table[13] = ord("\n")
        _B64_MASK = bytes(table)
    return _B64_MASK


#: Any base64 needle, as one RE2 pass (built from :func:`_b64_needles` on first use).
_B64_GATE: _Regex | None = None


def _b64_gate() -> _Regex:
    global _B64_GATE
    if _B64_GATE is None:
        needles = sorted({needle for needle, _ in _b64_needles()})
        _B64_GATE = _Regex("encoded-key", b"|".join(re.escape(n) for n in needles), re2=True)
    return _B64_GATE


def _b64_needles() -> list[tuple[bytes, int]]:
    """For each marker and each of the 3 byte alignments: the base64 characters
    that depend only on the marker, with their offset in an aligned encoding."""
    global _B64_NEEDLES
    if _B64_NEEDLES is None:
        import base64

        needles = []
        for marker in _KEY_MARKERS:
            for shift in range(3):
                encoded = base64.b64encode(b"\0" * shift + marker)
                first = -(-8 * shift // 6)
                last = 8 * (shift + len(marker)) // 6
                needles.append((encoded[first:last], first))
        _B64_NEEDLES = needles
    return _B64_NEEDLES


def find_encoded_keys(data: bytes) -> list[Detection]:
    """Private keys and age identities in a UTF-16 text, or base64-encoded
    (a Helm value ``tls.key: LS0tLS1CRUdJTi...``, a wrapped base64 block).
    One level deep: what is decoded is not decoded again."""
    return _utf16_keys(data) + _base64_keys(data)


def _decoded_findings(decoded: bytes, how: str, line: Any) -> list[Detection]:
    found = find_private_keys(decoded) + find_age_identities(decoded)
    return [Detection(f"{d.what} ({how})", line(d), f"{how}:{d.anchor}", f"{how}:{d.legacy}") for d in found]


def _utf16_keys(data: bytes) -> list[Detection]:
    if b"\0" not in data:
        return []
    for codec in ("utf-16-le", "utf-16-be"):
        at = min((a for a in (data.find(m.decode().encode(codec)) for m in _KEY_MARKERS) if a >= 0), default=-1)
        if at >= 0:
            # ASCII read as the other byte order one byte on is the same text: decode once
            text = data[at % 2:].decode(codec, "replace").encode("utf-8", "replace")
            return _decoded_findings(text, "UTF-16", lambda d: d.line)
    return []


def _base64_keys(data: bytes) -> list[Detection]:
    if not _b64_gate().found(data):
        return []
    present = [(needle, offset) for needle, offset in _b64_needles() if needle in data]
    hits = sorted((at, offset) for needle, offset in present for at in _find_all(data, needle))
    out: list[Detection] = []
    mask = data.translate(_b64_mask())
    line_of = _LineCounter(data)
    done_until = -1
    for at, offset in hits:
        if at < done_until:
            continue  # inside a run already decoded
        start, end, joined, at_joined = _b64_run(data, mask, at)
        done_until = end
        # padding ends an encoding: what precedes the last "=" before the hit is another text
        cut = joined.rfind(b"=", 0, at_joined) + 1
        joined, at_joined = joined[cut:], at_joined - cut
        # the needle sits `offset` characters into an aligned encoding
        aligned = joined[(at_joined - offset) % 4:]
        aligned = aligned[: len(aligned) - len(aligned) % 4]
        import binascii

        try:
            decoded = binascii.a2b_base64(aligned)
        except (binascii.Error, ValueError):
            continue
        line = line_of(start)
        out += _decoded_findings(decoded, "base64", lambda d, line=line: line)
    return out


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + len(needle))


def _b64_run(data: bytes, mask: bytes, at: int) -> tuple[int, int, bytes, int]:
    """The base64 text around ``at``: the run on its line, continued over
    neighbouring lines that are base64 only (a wrapped block). Returns its
    start and end in ``data``, its characters joined, and ``at`` in them."""
    line_start = mask.rfind(b"\n", 0, at) + 1
    line_end = mask.find(b"\n", at)
    line_end = len(data) if line_end < 0 else line_end
    start = max(mask.rfind(b" ", line_start, at) + 1, line_start)
    end = mask.find(b" ", at, line_end)
    end = line_end if end < 0 else end
    pieces = [data[start:end]]
    before = 0
    if not data[line_start:start].strip():
        # whole base64 lines above belong to the run
        cursor = line_start - 1
        while cursor > 0:
            prev = mask.rfind(b"\n", 0, cursor) + 1
            piece = data[prev:cursor].strip()
            if not piece or piece.translate(None, _B64_CHARS):
                break
            pieces.insert(0, piece)
            before += len(piece)
            start, cursor = prev, prev - 1
    if end == line_end:
        cursor = line_end + 1
        while cursor < len(data):
            nxt = mask.find(b"\n", cursor)
            nxt = len(data) if nxt < 0 else nxt
            piece = data[cursor:nxt].strip()
            if not piece or piece.translate(None, _B64_CHARS):
                break
            pieces.append(piece)
            end, cursor = nxt, nxt + 1
    run_start_in_line = max(mask.rfind(b" ", line_start, at) + 1, line_start)
    return start, end, b"".join(pieces), before + (at - run_start_in_line)


# --- provider tokens -----------------------------------------------------------------

#: The tokens' prefixes in one RE2 pass: most files hold none, and need no more.
_TOKEN_GATE = _Regex("provider-token", rb"AKIA|ASIA|gh[pousr]_|github_pat_|xox[bpars]-|[sr]k_live_|glpat-|npm_",
                     re2=True)
_PROVIDER_TOKEN = _Regex(
    "provider-token",
    rb"(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{50,255}|"
    rb"xox[bpars]-[0-9A-Za-z\-]{10,255}|[sr]k_live_[0-9A-Za-z]{16,255}|glpat-[0-9A-Za-z_\-]{20,255}|"
    rb"npm_[A-Za-z0-9]{36}",
)
_TOKEN_NAMES = {b"AK": "AWS access key id", b"AS": "AWS temporary access key id", b"gh": "GitHub token",
                b"xo": "Slack token", b"sk": "Stripe secret key", b"rk": "Stripe restricted key",
                b"gl": "GitLab token", b"np": "npm token"}
_TOKEN_CHAR = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def find_provider_tokens(data: bytes) -> list[Detection]:
    """Tokens whose shape names their provider, whatever key or line they sit
    on. Placeholders (``AKIAIOSFODNN7EXAMPLE``, ``ghp_xxxx...``) are not tokens."""
    if not _TOKEN_GATE.found(data):
        return []
    out: list[Detection] = []
    line_of = _LineCounter(data)
    for m in _PROVIDER_TOKEN.finditer(data):
        token = m.group(0)
        if m.start() > 0 and data[m.start() - 1] in _TOKEN_CHAR:
            continue  # part of a longer word
        if m.end() < len(data) and data[m.end()] in _TOKEN_CHAR and not token.startswith((b"xox", b"github")):
            continue
        if not _token_is_real(token.decode("ascii")):
            continue
        what = _TOKEN_NAMES.get(token[:2], "token")
        out.append(Detection(f"{what} ({token[:4].decode()}...)", line_of(m.start()),
                             f"provider-token:{token[:4].decode()}:{len(out)}"))
    return out


def _token_is_real(token: str) -> bool:
    body = token.split("_", 2)[-1] if token.startswith(("gh", "github_pat_", "sk_", "rk_", "npm_")) else token[4:]
    if _PLACEHOLDER_WORDS.search(token) or len(set(body.lower())) <= 4 or _has_sequence(body):
        return False
    return _entropy(body) >= 3.0


def _has_sequence(text: str, length: int = 6) -> bool:
    """``ABCDEF``, ``123456``: typed by a person writing an example, not drawn at random."""
    run = 1
    for a, b in zip(text, text[1:], strict=False):
        run = run + 1 if ord(b) == ord(a) + 1 else 1
        if run >= length:
            return True
    return False


# --- Kubernetes Secrets --------------------------------------------------------------

_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
#: Suffixes of templates rendered into manifests (``secret.yaml.j2``).
_TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2", ".tpl", ".tmpl", ".gotmpl", ".template", ".in")
_DOC_START = _Regex("k8s-secret", rb"^---(?=[ \t\r\n]|$)", re.M)
# Matched on a stripped line that holds "Secret"; no two adjacent repetitions can
# trade characters, so a long line costs one pass.
_KIND_SECRET_LINE = _Regex("k8s-secret", rb"""["']?kind["']?[ \t]*:[ \t]*["']?Secret["']?,?(?:[ \t]#.*)?$""")
_ENTRY_KEY = _Regex("k8s-secret", rb"""["']?([^"':#\s][^"':]{0,250}?)["']?[ \t]*:(?:[ \t]|$)""")
#: How much of a line the key patterns look at: keys are short, values are not looked at by a regex.
_KEY_SPAN = 300


def is_manifest_name(path: str) -> bool:
    name = path.lower()
    while name.endswith(_TEMPLATE_SUFFIXES):
        name = name.rsplit(".", 1)[0]
    return name.endswith(_MANIFEST_SUFFIXES)


def _may_name_secret(data: bytes) -> bool:
    """Whether a parsed ``kind`` of this text could be ``Secret``: it is spelt
    out, or hidden behind an escape (``\\u0065``) or in UTF-16."""
    return b"Secret" in data or b"\\" in data or b"S\0e\0c\0r\0e\0t" in data


def find_k8s_secrets(data: bytes) -> list[Detection]:
    """Secrets in any document, judged on the parsed document (however
    ``kind: Secret`` is quoted, escaped, tagged or broken over lines); only
    documents that could name it are parsed, so a multi-megabyte bundle of
    other manifests costs a scan."""
    if not _may_name_secret(data):
        return []
    out: list[Detection] = []
    line_of = _LineCounter(data)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        starts = [0]  # UTF-16 (libyaml reads it): one chunk
    else:
        starts = [0] + [m.start() for m in _DOC_START.finditer(data) if m.start() > 0]
    for index, (start, end) in enumerate(zip(starts, starts[1:] + [len(data)], strict=True)):
        chunk = data[start:end]
        if not _may_name_secret(chunk):
            continue
        first_line = line_of(start)
        docs = _yaml_nodes(chunk)
        if docs is None:
            parsed = _json_document(chunk)
            if parsed is not None:  # JSON that libyaml refuses (a line break before a colon)
                out.extend(d._replace(line=first_line) for d in _json_secrets(parsed, index))
            else:
                out.extend(_k8s_secrets_by_lines(chunk, first_line, index))
            continue
        for doc in docs:
            for secret in _secret_nodes(doc):
                out.extend(d._replace(line=(d.line or 1) + first_line - 1) for d in _secret_values(secret, index))
    return out


def _json_document(chunk: bytes) -> Any:
    if chunk.lstrip()[:1] not in (b"{", b"["):
        return None
    import json

    try:
        return json.loads(chunk)
    except (ValueError, RecursionError):
        return None


def _json_secrets(doc: Any, doc_index: int, depth: int = 0) -> Iterator[Detection]:
    """As :func:`_secret_values`, over a document the json module parsed."""
    if not isinstance(doc, dict) or depth > 8:
        return
    if isinstance(doc.get("kind"), str) and doc["kind"].strip() == "Secret":
        found = doc.get("metadata")
        meta: dict[str, Any] = found if isinstance(found, dict) else {}
        name = "/".join(str(meta[k]) for k in ("namespace", "name") if isinstance(meta.get(k), str) and meta[k])
        for field in ("data", "stringData"):
            values = doc.get(field)
            for key, value in (values.items() if isinstance(values, dict) else ()):
                if value is None or (isinstance(value, str) and not _k8s_value_is_secret(value)):
                    continue
                label = f"'{name}' " if name else ""
                yield Detection(f"Kubernetes Secret {label}with a plaintext {field} value ({key})", None,
                                f"k8s-secret:{doc_index}:{name}:{field}.{key}")
    items = doc.get("items")
    for item in items if isinstance(items, list) else ():
        yield from _json_secrets(item, doc_index, depth + 1)


def _scalar(node: Any) -> str | None:
    return node.value if type(node).__name__ == "ScalarNode" else None


def _entries(node: Any) -> list[tuple[Any, Any]]:
    return node.value if type(node).__name__ == "MappingNode" else []


def _secret_nodes(doc: Any, depth: int = 0) -> Iterator[Any]:
    if doc is None or depth > 8:
        return
    kind = next((_scalar(v) for k, v in _entries(doc) if _scalar(k) == "kind"), None)
    if kind is not None and kind.strip() == "Secret":
        yield doc
    for k, v in _entries(doc):
        if _scalar(k) == "items" and type(v).__name__ == "SequenceNode":  # kind: List
            for item in v.value:
                yield from _secret_nodes(item, depth + 1)


def _secret_values(secret: Any, doc_index: int) -> Iterator[Detection]:
    name = ""
    for k, v in _entries(secret):
        if _scalar(k) == "metadata":
            meta = {_scalar(mk): _scalar(mv) for mk, mv in _entries(v)}
            name = "/".join(p for p in (meta.get("namespace"), meta.get("name")) if p)
    for k, v in _entries(secret):
        field = _scalar(k)
        if field not in ("data", "stringData"):
            continue
        for key_node, value_node in _entries(v):
            value = _scalar(value_node)
            if value_node.tag == NULL_TAG or (value is not None and not _k8s_value_is_secret(value)):
                continue
            if value is None and _template_node(value_node):
                continue
            key = _scalar(key_node) or "?"
            label = f"'{name}' " if name else ""
            yield Detection(
                f"Kubernetes Secret {label}with a plaintext {field} value ({key})",
                value_node.start_mark.line + 1,
                f"k8s-secret:{doc_index}:{name}:{field}.{key}",
            )


_TEMPLATE = _Regex("values", r"(?:\$\{[^}]*\}|\{\{.*\}\}|<[^<>]*>|\(\(.*\)\)|%\{[^}]*\})\s*$", re.S)


def _is_template(text: str) -> bool:
    """``${VAR}``, ``{{ .Values.x }}``, ``<password>``, ``((var))``, ``%{x}`` (``text`` stripped)."""
    return text[:1] in ("$", "{", "<", "(", "%") and bool(_TEMPLATE.match(text))


def _template_node(node: Any) -> bool:
    """``{{ x }}`` unquoted, which YAML reads as a mapping inside a mapping."""
    inner = node.value[0][0] if type(node).__name__ == "MappingNode" and len(node.value) == 1 else None
    return inner is not None and bool(node.flow_style) and type(inner).__name__ == "MappingNode" \
        and bool(inner.flow_style)


def _k8s_value_is_secret(value: str) -> bool:
    text = value.strip()
    return bool(text) and not text.startswith("ENC[AES256_GCM,") and not _is_template(text) and "{{" not in text


def _k8s_secrets_by_lines(chunk: bytes, first_line: int, doc_index: int) -> list[Detection]:
    """For a manifest YAML cannot parse (a Helm template): a line scan of a
    ``kind: Secret`` document for the indented entries under data/stringData."""
    out: list[Detection] = []
    lines = chunk.split(b"\n")
    if not any(b"Secret" in raw and _KIND_SECRET_LINE.match(_strip_item(raw), 0, _KEY_SPAN) for raw in lines):
        return out
    field_indent: int | None = None
    field = ""
    for i, raw in enumerate(lines):
        line = raw.rstrip(b"\r")
        body = line.lstrip()
        indent = len(line) - len(body)
        if field_indent is not None:
            if body and indent <= field_indent:
                field_indent = None
            elif body:
                m = _ENTRY_KEY.match(body, 0, _KEY_SPAN)
                value = body[m.end():].strip() if m else b""
                if m and value and not value.startswith((b"|", b">", b"#")):
                    text = value.decode("utf-8", "replace").strip("\"'")
                    if _k8s_value_is_secret(text):
                        key = m.group(1).decode("utf-8", "replace")
                        out.append(Detection(
                            f"Kubernetes Secret with a plaintext {field} value ({key})",
                            first_line + i,
                            f"k8s-secret:{doc_index}::{field}.{key}",
                        ))
                continue
        name = body.split(b"#", 1)[0].strip().strip(b"\"'")
        for candidate in (b"data", b"stringData"):
            if name.startswith(candidate) and name[len(candidate):].strip(b"\"' \t") == b":":
                field_indent, field = indent, candidate.decode()
    return out


def _strip_item(raw: bytes) -> bytes:
    line = raw.strip()
    return line[1:].lstrip() if line.startswith(b"-") else line


# --- dotenv ----------------------------------------------------------------------

_EXAMPLE_PARTS = frozenset({"example", "examples", "sample", "template", "tmpl", "tpl", "dist", "defaults", "skel", "schema"})
_NOT_DOTENV_EXT = frozenset({"yaml", "yml", "json", "md", "rst", "txt", "py", "js", "ts", "go", "rb", "html", "toml", "ini"})
#: Matched on the text up to a line's first "=" only: the value is never handed to it.
_DOTENV_KEY = _Regex("dotenv", r"\s*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*=")
_CRED_WORDS = frozenset({
    "password", "passwd", "pass", "pwd", "passphrase", "passcode", "secret", "secrets", "token", "tokens",
    "apikey", "credential", "credentials", "creds", "privatekey", "pat",
})
_KEY_QUALIFIERS = frozenset({
    "api", "secret", "access", "private", "encryption", "signing", "master", "license", "auth", "session",
    "jwt", "hmac", "webhook", "client", "app", "service", "account", "crypt", "cipher", "sendgrid", "stripe",
})
_NOT_CRED_LAST = frozenset({
    "id", "ids", "path", "file", "dir", "name", "user", "username", "host", "port", "length", "len", "ttl",
    "expiry", "expires", "expiration", "timeout", "type", "algorithm", "alg", "enabled", "enable", "required",
    "min", "max", "size", "count", "header", "prefix", "suffix", "format", "version", "lifetime", "duration",
    "endpoint", "issuer", "audience", "scope", "scopes", "mode", "policy", "rounds", "cost", "region", "url",
    "uri", "location", "arn", "hint", "field", "env", "var", "kind", "strategy", "provider", "method",
})
#: ``user:password@`` right after a ``://``: matched there over a bounded window.
_URL_USERINFO = _Regex("dotenv", r"([^/\s:@]{1,256}):([^/\s@]{1,256})@")
_PLACEHOLDER_WORDS = _Regex(
    "values",
    r"change[_\-. ]?(?:me|it|this)|replace|your[_\-. ]|[_\-.]here$|example|placeholder|dummy|redacted|"
    r"\btodo\b|fixme|\btbd\b|\bxxx|insert[_\-. ]|put[_\-. ]|enter[_\-. ]|fake|sample|not[_\-. ]?set|secret[_\-. ]?here",
    re.I,
)
_PLACEHOLDER_EXACT = frozenset({
    "secret", "password", "passwd", "pass", "token", "none", "null", "nil", "undefined", "empty", "test",
    "changeit", "default", "value", "string", "key", "true", "false", "yes", "no", "on", "off", "0", "1",
})
_KNOWN_TOKENS = _Regex(
    "values",
    r"AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|"
    r"xox[baprs]-[A-Za-z0-9-]{10,}|sk_live_[0-9A-Za-z]{16,}|rk_live_[0-9A-Za-z]{16,}|AIza[0-9A-Za-z_\-]{35}|"
    r"glpat-[0-9A-Za-z_\-]{20,}|sk-[A-Za-z0-9_\-]{32,}|npm_[A-Za-z0-9]{36}"
)


def _name_parts(path: str) -> list[str]:
    return path.rsplit("/", 1)[-1].lower().split(".")


def is_dotenv_name(path: str) -> bool:
    """``.env``, ``.env.production``, ``prod.env``, ``app.env.local``, ``.envrc``,
    an AWS-style ``credentials`` file; not ``config.env.yaml``."""
    base = path.rsplit("/", 1)[-1].lower()
    if base in (".env", ".envrc", "credentials") or base.endswith(".env"):
        return True
    parts = base.split(".")
    return "env" in parts[:-1] and parts[-1] not in _NOT_DOTENV_EXT


def is_example_name(path: str) -> bool:
    return any(part in _EXAMPLE_PARTS for part in _name_parts(path))


_KEY_WORDS = _Regex("values", r"[_.\-]+|(?<=[a-z0-9])(?=[A-Z])")


def credential_key(key: str) -> bool:
    """Whether an environment variable name suggests a credential."""
    words = [w for w in _KEY_WORDS.split(key[:_KEY_SPAN]) if w]
    tokens = [w.lower() for w in words]
    if not tokens or tokens[-1] in _NOT_CRED_LAST:
        return False
    for i, token in enumerate(tokens):
        if token in _CRED_WORDS:
            return True
        if token == "key" and i > 0 and tokens[i - 1] in _KEY_QUALIFIERS:
            return True
        if token.endswith(("password", "passwd", "secret", "token", "apikey")):
            return True
    return False


def is_placeholder(value: str) -> bool:
    """Whether a value is a placeholder rather than a credential."""
    text = value.strip()
    if not text or text.startswith("ENC[AES256_GCM,") or _is_template(text):
        return True
    if text.startswith("$") or "{{" in text:
        return True
    if len(set(text.lower())) <= 2 or not any(c.isalnum() for c in text):
        return True  # xxxxx, *****, ..., x-x-x
    if text.lower() in _PLACEHOLDER_EXACT:
        return True
    return bool(_PLACEHOLDER_WORDS.search(text))


def looks_real(value: str, *, placeholder_checked: bool = False) -> bool:
    """For example files: a known token format, or a long, high-entropy string
    (``placeholder_checked``: the caller knows it is no placeholder)."""
    if _KNOWN_TOKENS.search(value) and not _PLACEHOLDER_WORDS.search(value):
        return True
    if len(value) < 20 or " " in value:
        return False
    classes = sum(any(f(c) for c in value) for f in (str.islower, str.isupper, str.isdigit))
    return classes >= 2 and _entropy(value) >= 3.5 and (placeholder_checked or not is_placeholder(value))


def _entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for c in text:
        counts[c] = counts.get(c, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _dotenv_value(raw: str) -> str:
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        end = raw.find(raw[0], 1)
        return raw[1:end] if end > 0 else raw[1:]
    if raw.startswith("#"):
        return ""  # KEY=  # comment: an empty value
    hash_at = raw.find(" #")
    return (raw[:hash_at] if hash_at >= 0 else raw).strip()


def find_dotenv_credentials(data: bytes, *, example: bool = False) -> list[Detection]:
    text = data.decode("utf-8", "replace")
    is_sops = "sops_mac=" in text or "sops_version=" in text
    out = []
    for number, raw in enumerate(text.split("\n"), start=1):
        equals = raw.find("=")
        m = _DOTENV_KEY.match(raw, 0, equals + 1) if equals > 0 else None
        if m is None:
            continue
        key, value = m.group(1), _dotenv_value(raw[m.end():].rstrip("\r"))
        if is_sops and key.startswith("sops_"):
            continue
        reason = _dotenv_reason(key, value, example)
        if reason:
            out.append(Detection(f"dotenv {reason} {key}", number, f"dotenv:{key}"))
    return out


def _url_password(value: str) -> str | None:
    """The password of the first ``scheme://user:password@`` in ``value``. Each
    ``://`` gets a window up to the next one (userinfo holds no ``/``), so a
    value is handed to the regex engine once at most."""
    at = value.find("://")
    while at >= 0:
        following = value.find("://", at + 3)
        if at > 0 and value[at - 1].isalnum():
            end = min(at + 3 + 520, len(value) if following < 0 else following)
            m = _URL_USERINFO.match(value, at + 3, end)
            if m is not None:
                password: str = m.group(2)
                return password
        at = following
    return None


def credential_reason(key: str, value: str) -> str:
    """Why ``KEY=value`` (a dotenv line, a kustomize literal) looks like a
    credential ("credential", "URL with an embedded password in"), else ""."""
    return _dotenv_reason(key, value, False)


def _dotenv_reason(key: str, value: str, example: bool) -> str:
    password = _url_password(value) if "://" in value else None
    if password is not None and not is_placeholder(password) and (not example or looks_real(password)):
        return "URL with an embedded password in"
    if not credential_key(key) or is_placeholder(value):
        return ""
    if example and not looks_real(value, placeholder_checked=True):
        return ""
    return "credential"


# --- compose files ---------------------------------------------------------------------

_COMPOSE_NAME = _Regex("compose", r"(?:docker-)?compose(?:\.[^/]*)?\.ya?ml")


def is_compose_name(path: str) -> bool:
    """``compose.yaml``, ``docker-compose.yml``, ``docker-compose.prod.yaml`` ..."""
    base = path.rsplit("/", 1)[-1].lower()
    return "compose" in base and bool(_COMPOSE_NAME.fullmatch(base))


def find_compose_credentials(data: bytes, *, example: bool = False) -> list[Detection]:
    """Credentials in ``services.*.environment``, as a ``KEY=value`` list or a
    mapping, judged as dotenv lines are."""
    if b"environment" not in data:
        return []
    docs = _yaml_nodes(data)
    out: list[Detection] = []
    for doc in docs or []:
        services = next((v for k, v in _entries(doc) if _scalar(k) == "services"), None)
        for service_node, service in _entries(services):
            name = _scalar(service_node) or "?"
            environment = next((v for k, v in _entries(service) if _scalar(k) == "environment"), None)
            for key, value, line in _compose_environment(environment):
                reason = _dotenv_reason(key, value, example)
                if reason:
                    out.append(Detection(f"compose environment {reason} {key} (service {name})", line,
                                         f"compose:{name}:{key}"))
    return out


def _compose_environment(node: Any) -> Iterator[tuple[str, str, int]]:
    kind = type(node).__name__
    if kind == "SequenceNode":
        for item in node.value:
            text = _scalar(item)
            if text is not None and "=" in text:
                key, _, value = text.partition("=")
                yield key.strip(), value.strip(), item.start_mark.line + 1
    elif kind == "MappingNode":
        for key_node, value_node in node.value:
            name, text = _scalar(key_node), _scalar(value_node)
            if name is not None and text is not None and value_node.tag != NULL_TAG:
                yield name, text, value_node.start_mark.line + 1


# --- inline suppressions ------------------------------------------------------------

#: On the line of a finding: sopsflow's marker, gitleaks' and detect-secrets'.
_INLINE_SAME = _Regex("inline", rb"sopsflow:allow|gitleaks:allow|pragma:[ \t]*allowlist[ \t-]secret", re.I)
#: On a comment line right before a finding: sopsflow's marker and
#: detect-secrets' ``nextline`` form.
_INLINE_NEXT = _Regex("inline", rb"sopsflow:allow|pragma:[ \t]*allowlist[ \t-]nextline[ \t-]secret", re.I)
_COMMENT_STARTS = (b"#", b"//", b";", b"--", b"/*", b"*", b"<!--", b"%", b"'")
_INLINE_NEEDLES = (b"sopsflow:allow", b"gitleaks:allow", b"allowlist")


class InlineMarkers:
    """The inline suppression marker that covers a line of ``data``, if any.

    A marker counts on the finding's own line, or alone on a comment line
    right before it (a marker trailing another line of data covers only that
    line, so one marker cannot silence the next line's secret by accident).
    Lines are split once, and only when the file names a marker at all."""

    def __init__(self, data: bytes) -> None:
        lowered = data.lower()
        self._present = any(needle in lowered for needle in _INLINE_NEEDLES)
        self._lines: list[bytes] | None = None
        self._data = data
        #: line -> marker, so each line is searched once however many findings it holds
        self._seen: dict[int, str | None] = {}

    def at(self, line: int | None) -> str | None:
        if not self._present or not line:
            return None
        if line not in self._seen:
            self._seen[line] = self._search(line)
        return self._seen[line]

    def _search(self, line: int) -> str | None:
        if self._lines is None:
            self._lines = self._data.split(b"\n")
        lines = self._lines
        if 0 < line <= len(lines):
            m = _INLINE_SAME.search(lines[line - 1])
            if m is not None:
                return _marker_name(m.group(0))
        if 1 < line <= len(lines) + 1:
            before = lines[line - 2].strip()
            if before.startswith(_COMMENT_STARTS):
                m = _INLINE_NEXT.search(before)
                if m is not None:
                    return _marker_name(m.group(0))
        return None


def _marker_name(raw: bytes) -> str:
    text = raw.decode("ascii", "replace").lower()
    if text.startswith("pragma"):
        return "pragma: allowlist nextline secret" if "nextline" in text else "pragma: allowlist secret"
    return text


# --- kustomize delete patches ----------------------------------------------------------

#: The keys a ``$patch: delete`` document needs to name the object it removes.
_DELETE_PATCH_KEYS = frozenset({"apiVersion", "kind", "metadata", "$patch"})


def delete_patch_documents(data: bytes) -> set[int]:
    """Indices of the YAML documents that are ``$patch: delete`` patches: a
    mapping of only apiVersion, kind, metadata and ``$patch: delete`` (a
    document with data beside it is judged as data)."""
    docs = _yaml_nodes(data)
    out: set[int] = set()
    for index, doc in enumerate(docs or ()):
        entries = _entries(doc)
        keys = {_scalar(k) for k, _v in entries}
        if not entries or not keys <= _DELETE_PATCH_KEYS or None in keys:
            continue
        patch = next((_scalar(v) for k, v in entries if _scalar(k) == "$patch"), None)
        if patch is not None and patch.strip().lower() == "delete":
            out.add(index)
    return out
