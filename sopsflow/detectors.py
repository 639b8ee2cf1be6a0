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
  OpenSSH, PuTTY/SSH2 and PGP private key blocks, with a real base64 body
  (also inside JSON strings with ``\\n`` escapes);
* age identities: ``AGE-SECRET-KEY-1...`` (and ``-PQ-1``) with a valid bech32 checksum;
* Kubernetes Secrets: any document (or ``List`` item) whose ``kind`` is
  ``Secret`` however it is quoted, with a non-empty, non-encrypted,
  non-templated value under ``data`` or ``stringData``;
* dotenv files: credential-like keys (``*PASSWORD*``, ``*_TOKEN``,
  ``API_KEY``...) with non-placeholder values, and URLs with an embedded
  password; in example/template files only values that look real
  (known token formats, or long high-entropy strings).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, NamedTuple


class Detection(NamedTuple):
    what: str  # "OpenSSH private key", "dotenv credential DB_PASSWORD", ... (never the value)
    line: int | None  # 1-based
    anchor: str  # stable, secret-free identity of the finding within its file


def scan(path: str, data: bytes) -> list[Detection]:
    """Every detector that applies to ``path``, in line order."""
    found = find_private_keys(data) + find_age_identities(data)
    if is_manifest_name(path):
        found += find_k8s_secrets(data)
    if is_dotenv_name(path):
        found += find_dotenv_credentials(data, example=is_example_name(path))
    found.sort(key=lambda d: d.line or 0)
    return found


class _LazyRegex:
    """A pattern compiled on first use: most runs of the hook need a few of
    them, and compiling them all costs every process start."""

    __slots__ = ("_args", "_compiled")

    def __init__(self, *args: Any) -> None:
        self._args = args
        self._compiled: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._compiled is None:
            self._compiled = re.compile(*self._args)
        return getattr(self._compiled, name)


def _lazy_re(pattern: str | bytes, flags: int = 0) -> Any:
    return _LazyRegex(pattern, flags)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


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

_KEY_BEGIN = _lazy_re(rb"-{4,5} ?BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)? ?-{4,5}")
_KEY_END = _lazy_re(rb"-{4,5} ?END [A-Z0-9 ]*PRIVATE KEY")
_ESCAPES = _lazy_re(rb"\\[nr]")
_B64_LINE = _lazy_re(rb"[A-Za-z0-9+/=]+")
_DECORATION = b" \t\"',;\\|#*/+-"
#: base64 characters a body needs before it counts as a key; real keys have
#: hundreds (an Ed25519 OpenSSH key ~400), documentation placeholders a few.
MIN_KEY_BODY = 64


def find_private_keys(data: bytes) -> list[Detection]:
    if b"PRIVATE KEY" not in data:
        return []
    out: list[Detection] = []
    counts: dict[str, int] = {}
    for m in _KEY_BEGIN.finditer(data):
        label = (m.group(1).decode().strip() + " PRIVATE KEY" + (m.group(2) or b"").decode()).strip()
        if _key_body_size(data, m.end()) < MIN_KEY_BODY:
            continue
        n = counts.get(label, 0)
        counts[label] = n + 1
        out.append(Detection(_key_name(label), _line_of(data, m.start()), f"private-key:{label}:{n}"))
    return out


def _key_name(label: str) -> str:
    kind = label.replace(" PRIVATE KEY BLOCK", "").replace(" PRIVATE KEY", "").replace("PRIVATE KEY", "").strip()
    if "PGP" in kind:
        return "PGP private key block"
    if "OPENSSH" in kind:
        return "OpenSSH private key"
    if "SSH2" in kind:
        return "SSH2 private key"
    return f"{kind + ' ' if kind else ''}PEM private key".replace("ENCRYPTED PEM", "encrypted PEM")


def _key_body_size(data: bytes, start: int) -> int:
    window = data[start : start + 16384]
    end = _KEY_END.search(window)
    if end is not None:
        window = window[: end.start()]
    window = _ESCAPES.sub(b"\n", window)
    total = 0
    for raw in window.splitlines():
        line = raw.strip(_DECORATION)
        if not line or b": " in raw:  # armour headers (Version:, Proc-Type:, Comment:)
            continue
        if _B64_LINE.fullmatch(line):
            total += len(line)
        elif total:
            break  # the body ended (a key embedded in other text)
    return total


# --- age identities ----------------------------------------------------------------

_AGE_IDENTITY = _lazy_re(rb"AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Z]{50,}|age-secret-key-(?:pq-)?1[0-9a-z]{50,}")
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def find_age_identities(data: bytes) -> list[Detection]:
    if b"AGE-SECRET-KEY-" not in data and b"age-secret-key-" not in data:
        return []
    out: list[Detection] = []
    for m in _AGE_IDENTITY.finditer(data):
        if bech32_valid(m.group(0).decode("ascii")):
            out.append(Detection("age identity (AGE-SECRET-KEY-1...)", _line_of(data, m.start()), f"age-identity:{len(out)}"))
    return out


def bech32_valid(text: str) -> bool:
    """Whether ``text`` is a bech32 string with a valid checksum (placeholders
    such as ``AGE-SECRET-KEY-1XXXX...`` fail it)."""
    lower = text.lower()
    hrp, sep, payload = lower.rpartition("1")
    if not sep or not hrp or len(payload) < 6 or any(c not in _BECH32 for c in payload):
        return False
    from .config import _bech32_polymod  # the checksum sops' recipient check uses

    values = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + [_BECH32.index(c) for c in payload]
    return _bech32_polymod(values) == 1


# --- Kubernetes Secrets --------------------------------------------------------------

_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_KIND_SECRET_LINE = _lazy_re(rb"""^\s*-?\s*["']?kind["']?\s*:\s*["']?Secret["']?\s*,?\s*(?:#.*)?$""", re.M)
_DOC_START = _lazy_re(rb"^---(?=[ \t\r\n]|$)", re.M)
_KIND_SECRET_ANY = _lazy_re(rb"""kind["']?[ \t]*:[ \t]*["']?Secret(?![A-Za-z0-9_])""")
_FIELD_LINE = _lazy_re(rb"""^(\s*)["']?(data|stringData)["']?\s*:\s*(?:#.*)?$""")
_ENTRY_LINE = _lazy_re(rb"""^(\s*)["']?([^"':#\s][^"':]*?)["']?\s*:\s*(.*?)\s*$""")


def is_manifest_name(path: str) -> bool:
    return path.lower().endswith(_MANIFEST_SUFFIXES)


def find_k8s_secrets(data: bytes) -> list[Detection]:
    """Secrets in any document; only documents that name ``kind: Secret`` are
    parsed, so a multi-megabyte bundle of other manifests costs a regex scan."""
    if b"Secret" not in data or not _KIND_SECRET_ANY.search(data):
        return []
    out: list[Detection] = []
    starts = [0] + [m.start() for m in _DOC_START.finditer(data) if m.start() > 0]
    for index, (start, end) in enumerate(zip(starts, starts[1:] + [len(data)], strict=True)):
        chunk = data[start:end]
        if not _KIND_SECRET_ANY.search(chunk):
            continue
        first_line = _line_of(data, start)
        docs = _yaml_nodes(chunk)
        if docs is None:
            out.extend(_k8s_secrets_by_lines(chunk, first_line, index))
            continue
        for doc in docs:
            for secret in _secret_nodes(doc):
                out.extend(d._replace(line=(d.line or 1) + first_line - 1) for d in _secret_values(secret, index))
    return out


def _scalar(node: Any) -> str | None:
    return node.value if type(node).__name__ == "ScalarNode" else None


def _entries(node: Any) -> list[tuple[Any, Any]]:
    return node.value if type(node).__name__ == "MappingNode" else []


def _secret_nodes(doc: Any, depth: int = 0) -> Iterator[Any]:
    if doc is None or depth > 8:
        return
    kind = next((_scalar(v) for k, v in _entries(doc) if _scalar(k) == "kind"), None)
    if kind == "Secret":
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
            key = _scalar(key_node) or "?"
            label = f"'{name}' " if name else ""
            yield Detection(
                f"Kubernetes Secret {label}with a plaintext {field} value ({key})",
                value_node.start_mark.line + 1,
                f"k8s-secret:{doc_index}:{name}:{field}.{key}",
            )


_TEMPLATE = _lazy_re(r"^\s*(?:\$\{[^}]*\}|\{\{.*\}\}|<[^<>]*>|\(\(.*\)\)|%\{[^}]*\})\s*$", re.S)


def _k8s_value_is_secret(value: str) -> bool:
    text = value.strip()
    return bool(text) and not text.startswith("ENC[AES256_GCM,") and not _TEMPLATE.match(text) and "{{" not in text


def _k8s_secrets_by_lines(chunk: bytes, first_line: int, doc_index: int) -> list[Detection]:
    """For a manifest YAML cannot parse (a Helm template): a line scan of a
    ``kind: Secret`` document for the indented entries under data/stringData."""
    out: list[Detection] = []
    if not _KIND_SECRET_LINE.search(chunk):
        return out
    field_indent: int | None = None
    field = ""
    for i, raw in enumerate(chunk.split(b"\n")):
        line = raw.rstrip(b"\r")
        if field_indent is not None:
            m = _ENTRY_LINE.match(line)
            indent = len(line) - len(line.lstrip())
            if line.strip() and indent <= field_indent:
                field_indent = None
            elif m and m.group(3) and not m.group(3).startswith((b"|", b">", b"#")):
                value = m.group(3).decode("utf-8", "replace").strip("\"'")
                if _k8s_value_is_secret(value):
                    key = m.group(2).decode("utf-8", "replace")
                    out.append(Detection(
                        f"Kubernetes Secret with a plaintext {field} value ({key})",
                        first_line + i,
                        f"k8s-secret:{doc_index}::{field}.{key}",
                    ))
                continue
        fm = _FIELD_LINE.match(line)
        if fm:
            field_indent = len(fm.group(1))
            field = fm.group(2).decode()
    return out


# --- dotenv ----------------------------------------------------------------------

_EXAMPLE_PARTS = frozenset({"example", "examples", "sample", "template", "tmpl", "tpl", "dist", "defaults", "skel", "schema"})
_NOT_DOTENV_EXT = frozenset({"yaml", "yml", "json", "md", "rst", "txt", "py", "js", "ts", "go", "rb", "html", "toml", "ini"})
_DOTENV_LINE = _lazy_re(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*(.*)$")
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
_CRED_URL = _lazy_re(r"[a-z][a-z0-9+.\-]*://([^/\s:@]+):([^/\s@]+)@", re.I)
_PLACEHOLDER_WORDS = _lazy_re(
    r"change[_\-. ]?(?:me|it|this)|replace|your[_\-. ]|[_\-.]here$|example|placeholder|dummy|redacted|"
    r"\btodo\b|fixme|\btbd\b|\bxxx|insert[_\-. ]|put[_\-. ]|enter[_\-. ]|fake|sample|not[_\-. ]?set|secret[_\-. ]?here",
    re.I,
)
_PLACEHOLDER_EXACT = frozenset({
    "secret", "password", "passwd", "pass", "token", "none", "null", "nil", "undefined", "empty", "test",
    "changeit", "default", "value", "string", "key", "true", "false", "yes", "no", "on", "off", "0", "1",
})
_KNOWN_TOKENS = _lazy_re(
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


def credential_key(key: str) -> bool:
    """Whether an environment variable name suggests a credential."""
    words = [w for w in re.split(r"[_.\-]+|(?<=[a-z0-9])(?=[A-Z])", key) if w]
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
    if not text or text.startswith("ENC[AES256_GCM,") or _TEMPLATE.match(text):
        return True
    if text.startswith("$") or "{{" in text:
        return True
    if len(set(text.lower())) <= 2 or not any(c.isalnum() for c in text):
        return True  # xxxxx, *****, ..., x-x-x
    if text.lower() in _PLACEHOLDER_EXACT:
        return True
    return bool(_PLACEHOLDER_WORDS.search(text))


def looks_real(value: str) -> bool:
    """For example files: a known token format, or a long, high-entropy string."""
    if _KNOWN_TOKENS.search(value) and not _PLACEHOLDER_WORDS.search(value):
        return True
    if len(value) < 20 or " " in value:
        return False
    classes = sum(any(f(c) for c in value) for f in (str.islower, str.isupper, str.isdigit))
    return classes >= 2 and _entropy(value) >= 3.5 and not is_placeholder(value)


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
        m = _DOTENV_LINE.match(raw.rstrip("\r"))
        if m is None:
            continue
        key, value = m.group(1), _dotenv_value(m.group(2))
        if is_sops and key.startswith("sops_"):
            continue
        reason = _dotenv_reason(key, value, example)
        if reason:
            out.append(Detection(f"dotenv {reason} {key}", number, f"dotenv:{key}"))
    return out


def _dotenv_reason(key: str, value: str, example: bool) -> str:
    url = _CRED_URL.search(value)
    if url and not is_placeholder(url.group(2)) and (not example or looks_real(url.group(2))):
        return "URL with an embedded password in"
    if not credential_key(key) or is_placeholder(value):
        return ""
    if example and not looks_real(value):
        return ""
    return "credential"
