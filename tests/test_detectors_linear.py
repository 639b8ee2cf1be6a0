"""Every detector is linear in its input, pinned without timing anything: the
bytes each detector hands to the regex engine (``count_regex_bytes``) stay
within 4x the input, for inputs built to make a backtracking pattern or a
per-hit rescan blow up, at 1x and at 4x their size. (Wall-time scaling is in
``bench/bench_check.py --scaling``.)"""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from sopsflow.gitops import detectors
from sopsflow.gitops.detectors import count_regex_bytes

BUDGET = 4


def _pem_headers(n: int) -> bytes:
    # 560 KB at 4x: a key header on every line, each once rescanning a 16 KB window
    return b"-----BEGIN PRIVATE KEY-----\n" * (5000 * n)


def _pem_words(n: int) -> bytes:
    return (b"-----BEGIN " + b"A " * 2000 + b"\n") * (8 * n) + b"-----END " + b"B " * (4000 * n)


def _pem_bodies(n: int) -> bytes:
    body = base64.b64encode(bytes(range(256)) * 3).decode()
    key = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n"
    return (key * (40 * n)).encode()


def _dotenv_long_value(n: int) -> bytes:
    # 80 KB at 4x: one value the URL-credential pattern once backtracked over at every offset
    return b"API_URL=" + b"a" * (20_000 * n) + b"\n"


def _dotenv_schemes(n: int) -> bytes:
    return b"DATABASE_URL=" + b"a://b" * (4000 * n) + b"\nPASSWORD=" + b"x:" * (4000 * n) + b"@\n"


def _dotenv_whitespace(n: int) -> bytes:
    return b"SECRET_TOKEN={{" + b" }}" * (5000 * n) + b" x\n" + (b"   \t" * (2000 * n) + b"=\n") * 4


def _dotenv_lines(n: int) -> bytes:
    return b"".join(b"DB_PASSWORD_%d=Zq8%dLm2Xv9Wc4Rt1YvB6nH3\n" % (i, i) for i in range(2000 * n))


def _age(n: int) -> bytes:
    return b"AGE-SECRET-KEY-1" * (4000 * n) + b"AGE-SECRET-KEY-1" + b"Q" * (20_000 * n)


def _putty(n: int) -> bytes:
    return (b"PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 9999\n" + b"AAAA\n" * 50) * (50 * n)


def _k8s_template(n: int) -> bytes:
    lines = [b"kind: Secret", b"metadata: {{ .x }}", b"data:"]
    lines += [b"  key%d: " % i + b" " * 400 + b"value{{" for i in range(100 * n)]
    lines += [b" " * 4000 * n + b"kind" + b" " * 4000 * n + b"Secret x"]
    return b"\n".join(lines) + b"\n"


def _k8s_documents(n: int) -> bytes:
    doc = b"apiVersion: v1\nkind: ConfigMap\ndata:\n  a: Secret\n---\n"
    return doc * (1000 * n)


def _base64_needles(n: int) -> bytes:
    marker = base64.b64encode(b"-----BEGIN PRIVATE KEY-----")
    return (b"tls.key: " + marker + b"\n") * (1500 * n) + (b"  " + b"A" * 76 + b"\n") * (200 * n)


def _utf16(n: int) -> bytes:
    return ("-----BEGIN PRIVATE KEY-----\n" * (1000 * n)).encode("utf-16-le")


def _tokens(n: int) -> bytes:
    return b"ghp_" * (5000 * n) + b" xoxb-" + b"-" * (10_000 * n) + b" sk_live_" + b"a" * (10_000 * n)


def _compose(n: int) -> bytes:
    env = b"".join(b"      - DB_PASSWORD_%d=" % i + b"a://" * 50 + b"\n" for i in range(100 * n))
    return b"services:\n  app:\n    environment:\n" + env


CASES: list[tuple[str, Callable[[bytes], object], Callable[[int], bytes]]] = [
    ("private keys: a header per line", detectors.find_private_keys, _pem_headers),
    ("private keys: long header words", detectors.find_private_keys, _pem_words),
    ("private keys: many real keys", detectors.find_private_keys, _pem_bodies),
    ("PuTTY keys", detectors.find_private_keys, _putty),
    ("age identities", detectors.find_age_identities, _age),
    ("base64 key material", detectors.find_encoded_keys, _base64_needles),
    ("UTF-16 key material", detectors.find_encoded_keys, _utf16),
    ("provider tokens", detectors.find_provider_tokens, _tokens),
    ("dotenv: an 80 KB value", detectors.find_dotenv_credentials, _dotenv_long_value),
    ("dotenv: URL schemes", detectors.find_dotenv_credentials, _dotenv_schemes),
    ("dotenv: templates and blanks", detectors.find_dotenv_credentials, _dotenv_whitespace),
    ("dotenv: many credentials", detectors.find_dotenv_credentials, _dotenv_lines),
    ("dotenv example: many credentials", lambda d: detectors.find_dotenv_credentials(d, example=True), _dotenv_lines),
    ("Kubernetes: a template", detectors.find_k8s_secrets, _k8s_template),
    ("Kubernetes: many documents", detectors.find_k8s_secrets, _k8s_documents),
    ("compose environment", detectors.find_compose_credentials, _compose),
]


@pytest.mark.parametrize(("detector", "build"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("scale", [1, 4])
def test_detector_hands_the_regex_engine_at_most_4x_its_input(detector: Callable[[bytes], object],
                                                               build: Callable[[int], bytes], scale: int) -> None:
    data = build(scale)
    with count_regex_bytes() as counts:
        detector(data)
    handed = sum(counts.values())
    assert handed <= BUDGET * len(data), (handed, len(data), counts)


def test_the_count_sees_every_byte_a_scan_hands_over() -> None:
    """The counter is not blind: a full scan counts at least the input, and the
    quadratic scan of the old private-key detector would have counted far more."""
    data = _pem_headers(1)
    with count_regex_bytes() as counts:
        found = detectors.find_private_keys(data)
    assert found == [] and counts["private-key"] >= len(data)
    with count_regex_bytes() as counts:
        for start in range(0, 28 * 200, 28):  # what one 16 KB window per header was, for 200 of them
            detectors._KEY_END.search(data[start:start + 16384])
    assert sum(counts.values()) > BUDGET * len(data)


def test_line_numbers_of_many_hits_are_counted_forward() -> None:
    body = base64.b64encode(bytes(range(256)) * 3).decode()
    key = f"-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----\n"
    data = ("x\n" + key) * 300
    found = detectors.find_private_keys(data.encode())
    assert [d.line for d in found] == [2 + 4 * i for i in range(300)]
    counter = detectors._LineCounter(b"a\nb\nc\n")
    assert [counter(4), counter(0), counter(5)] == [3, 1, 3]
