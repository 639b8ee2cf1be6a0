"""The content detectors: real secrets are found (with their line), look-alikes
in docs, examples, templates and encrypted files are not."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow.gitops import detectors
from sopsflow.gitops.detectors import (
    bech32_valid,
    credential_key,
    find_age_identities,
    find_dotenv_credentials,
    find_k8s_secrets,
    find_private_keys,
    is_dotenv_name,
    is_placeholder,
    scan,
)
from tests.gitfixtures import sops_encrypt
from tests.vectors import AGE_IDENTITY_LINE, AGE_KEY_FILE, AGE_RECIPIENT, GENERATED


def _pem(key: object, fmt: serialization.PrivateFormat, password: bytes | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def keys() -> dict[str, bytes]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "RSA": _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL),
        "PKCS8": _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8),
        "EC": _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL),
        "ENCRYPTED": _pem(rsa_key, serialization.PrivateFormat.PKCS8, b"pass"),
        "OPENSSH": _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH),
        "PGP": (GENERATED / "pgp-secret-key.asc").read_bytes(),
    }


# --- private keys ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["RSA", "PKCS8", "EC", "ENCRYPTED", "OPENSSH", "PGP"])
def test_private_keys_are_found_with_their_line(keys: dict[str, bytes], name: str) -> None:
    data = b"# deploy key\n\n" + keys[name]
    (found,) = find_private_keys(data)
    assert found.line == 3
    assert keys[name][:20] not in found.what.encode()  # no key material in the description
    expected = {"PGP": "PGP private key block", "OPENSSH": "OpenSSH private key"}.get(name, "PEM private key")
    assert expected in found.what


def test_private_key_inside_a_json_string(keys: dict[str, bytes]) -> None:
    # a GCP service-account file keeps its key in one JSON string with \n escapes
    doc = json.dumps({"type": "service_account", "private_key": keys["PKCS8"].decode()}, indent=2)
    (found,) = find_private_keys(doc.encode())
    assert found.line == 3


def test_private_key_in_an_indented_yaml_block(keys: dict[str, bytes]) -> None:
    block = "\n".join("    " + line for line in keys["OPENSSH"].decode().splitlines())
    data = f"ssh:\n  identity: |\n{block}\n".encode()
    assert [d.line for d in find_private_keys(data)] == [3]


@pytest.mark.parametrize(
    "text",
    [
        "Paste your key, it starts with -----BEGIN RSA PRIVATE KEY----- and ends with -----END RSA PRIVATE KEY-----.",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n-----END OPENSSH PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\n<your key here>\n-----END PRIVATE KEY-----\n",
        "grep -q 'BEGIN PGP PRIVATE KEY BLOCK' file.asc",
    ],
)
def test_mentions_of_private_keys_are_not_keys(text: str) -> None:
    assert find_private_keys(text.encode()) == []


def test_public_material_is_not_a_private_key(keys: dict[str, bytes]) -> None:
    public = (GENERATED / "pgp-public-key.asc").read_bytes()
    cert_like = b"-----BEGIN CERTIFICATE-----\n" + b"MIIB" * 40 + b"\n-----END CERTIFICATE-----\n"
    assert find_private_keys(public + cert_like) == []
    enc = sops_encrypt("id.yaml", "ssh_key: |\n" + "".join("    " + x + "\n" for x in keys["OPENSSH"].decode().splitlines()))
    assert scan("secrets/id.yaml", enc) == []  # the PGP/age armour of a SOPS file is not a private key


# --- age identities -----------------------------------------------------------------------


def test_age_identity_found_with_valid_checksum_only() -> None:
    data = AGE_KEY_FILE.read_bytes()
    (found,) = find_age_identities(data)
    assert found.line == AGE_IDENTITY_LINE
    assert find_age_identities(data.lower())  # bech32 may be lower case
    identity = data.decode().split("\n")[AGE_IDENTITY_LINE - 1]
    broken = identity[:-1] + ("Q" if identity[-1] != "Q" else "P")
    assert find_age_identities(broken.encode()) == []


@pytest.mark.parametrize(
    "text",
    [
        "An age identity looks like AGE-SECRET-KEY-1... and must stay private.",
        "AGE-SECRET-KEY-1" + "X" * 58,
        "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
        f"recipients: {AGE_RECIPIENT}",
    ],
)
def test_age_placeholders_and_recipients_are_not_identities(text: str) -> None:
    assert find_age_identities(text.encode()) == []


def test_bech32() -> None:
    assert bech32_valid(AGE_RECIPIENT) and bech32_valid(AGE_RECIPIENT.upper())
    assert not bech32_valid(AGE_RECIPIENT[:-1] + "q") and not bech32_valid("noseparator")


# --- Kubernetes Secrets -------------------------------------------------------------------


SECRET_BODY = "metadata:\n  name: db\n  namespace: prod\ndata:\n  password: aHVudGVyMg==\n"


@pytest.mark.parametrize(
    "kind_line",
    ["kind: Secret", 'kind: "Secret"', "kind: 'Secret'", "kind:   Secret   # the real one", '"kind": Secret'],
)
def test_k8s_secret_any_quoting(kind_line: str) -> None:
    data = f"apiVersion: v1\n{kind_line}\n{SECRET_BODY}"
    (found,) = find_k8s_secrets(data.encode())
    assert found.line == 7 and "'prod/db'" in found.what and "(password)" in found.what


def test_k8s_secret_in_any_document_list_and_json() -> None:
    docs = (
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n---\n"
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  token: t0k3n\n"
    )
    assert [(d.line, "stringData" in d.what) for d in find_k8s_secrets(docs.encode())] == [(14, True)]
    flow = '{apiVersion: v1, kind: Secret, metadata: {name: f}, data: {k: dmFsdWU=}}'
    assert len(find_k8s_secrets(flow.encode())) == 1
    listed = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  data:\n    k: dmFsdWU=\n"
    assert [d.line for d in find_k8s_secrets(listed.encode())] == [7]
    as_json = json.dumps({"apiVersion": "v1", "kind": "Secret", "data": {"k": "dmFsdWU="}}, indent=2)
    assert len(scan("manifests/s.json", as_json.encode())) == 1


@pytest.mark.parametrize(
    "doc",
    [
        "kind: SealedSecret\nspec:\n  encryptedData:\n    k: AgB...\n",
        "kind: ConfigMap\ndata:\n  password_policy: strict\n",
        "kind: Secret\nmetadata: {name: empty}\ndata: {}\n",
        "kind: Secret\ntype: kubernetes.io/service-account-token\nmetadata: {name: t}\n",
        "kind: Secret\nstringData:\n  password: ${DB_PASSWORD}\n  user: '{{ .Values.user }}'\n  empty: ''\n  none: null\n",
        "kind: Secret\nstringData:\n  password: ENC[AES256_GCM,data:abc=,iv:def=,tag:ghi=,type:str]\n",
        "kind: ExternalSecret\nspec:\n  data:\n  - secretKey: password\n",
    ],
)
def test_k8s_non_secrets(doc: str) -> None:
    assert find_k8s_secrets(doc.encode()) == []


def test_k8s_secret_in_a_helm_template_that_is_not_yaml() -> None:
    template = (
        "{{- if .Values.enabled }}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\n"
        "data:\n  templated: {{ .Values.password | b64enc }}\n  literal: aHVudGVyMg==\n{{- end }}\n"
    )
    (found,) = find_k8s_secrets(template.encode())
    assert found.line == 8 and "(literal)" in found.what


def test_sops_encrypted_k8s_secret_is_not_a_leak() -> None:
    enc = sops_encrypt("s.yaml", f"apiVersion: v1\nkind: Secret\n{SECRET_BODY}", "--encrypted-regex", "^(data|stringData)$")
    assert scan("k8s/s.yaml", enc) == []


# --- dotenv -------------------------------------------------------------------------------


def test_dotenv_credentials() -> None:
    data = (
        "# app settings\nDEBUG=true\nPORT=3000\nexport DB_PASSWORD='s3cr3t!'\nAPI_KEY = \"k-1234567\"\n"
        "TOKEN_TTL=3600\nAWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP\nAWS_SECRET_ACCESS_KEY=abcdEFGH1234ijklMNOP5678\n"
        "DATABASE_URL=postgres://app:realpass@db:5432/app\nREDIS_URL=redis://localhost:6379\n"
        "STRIPE_TOKEN=  # set me\nGITHUB_TOKEN=${GITHUB_TOKEN}\n"
    )
    found = find_dotenv_credentials(data.encode())
    assert [(d.line, d.anchor) for d in found] == [
        (4, "dotenv:DB_PASSWORD"), (5, "dotenv:API_KEY"), (8, "dotenv:AWS_SECRET_ACCESS_KEY"), (9, "dotenv:DATABASE_URL"),
    ]
    assert all("s3cr3t" not in d.what and "realpass" not in d.what for d in found)


def test_env_example_placeholders_are_not_credentials() -> None:
    example = (
        "DB_PASSWORD=changeme\nAPI_KEY=<your-api-key>\nSECRET_KEY=your_secret_key_here\nTOKEN=xxxxxxxx\n"
        "JWT_SECRET=\nSMTP_PASSWORD=password\nDATABASE_URL=postgres://user:password@localhost/db\n"
        "SESSION_SECRET=dev-secret\nGH_TOKEN=ghp_EXAMPLEEXAMPLEEXAMPLEEXAMPLE123456\n"
    )
    assert scan(".env.example", example.encode()) == []
    assert scan("config/.env.sample", example.encode()) == []
    # (the token is split in this source so the repository's own hook does not refuse the test)
    real = "STRIPE_SECRET=sk_live_" "4eC39HqLyjWDarjtT1zdp7dc\nSIGNING_KEY=9f8Kq2LmZ7xWc4Rt1YvB6nH3\n"
    assert [d.line for d in scan(".env.example", real.encode())] == [1, 2]


def test_dotenv_sops_file_is_not_a_leak() -> None:
    enc = sops_encrypt("app.env", "DB_PASSWORD=hunter2\nAPI_TOKEN=abc\n")
    assert find_dotenv_credentials(enc) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [(".env", True), (".env.production", True), ("prod.env", True), ("app.env.local", True), (".envrc", True),
     ("credentials", True), ("config.env.yaml", False), ("environment.md", False), ("README.md", False),
     ("envoy.yaml", False)],
)
def test_dotenv_names(name: str, expected: bool) -> None:
    assert is_dotenv_name("dir/" + name) is expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [("DB_PASSWORD", True), ("PASSWORD", True), ("GITHUB_TOKEN", True), ("API_KEY", True), ("SECRET_KEY_BASE", True),
     ("clientSecret", True), ("AWS_ACCESS_KEY_ID", False), ("PASSWORD_MIN_LENGTH", False), ("TOKEN_TTL", False),
     ("PUBLIC_KEY", False), ("CACHE_KEY_PREFIX", False), ("DEBUG", False), ("SSH_KEY_PATH", False)],
)
def test_credential_keys(key: str, expected: bool) -> None:
    assert credential_key(key) is expected


@pytest.mark.parametrize("value", ["", "changeme", "<token>", "${X}", "{{ x }}", "****", "your-token-here", "none"])
def test_placeholders(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize("value", ["hunter2", "s3cr3t!", "k-1234567", "postgres"])
def test_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


# --- no false alarms in prose --------------------------------------------------------------


PROSE_WORDS = ["password", "secret", "token", "API_KEY", "kind: Secret", "data:", "PRIVATE KEY", "BEGIN",
               "AGE-SECRET-KEY-1", "=", "sops", "ENC[", "-----", "\n", " ", "the", "rotate", "stringData"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(PROSE_WORDS), max_size=60))
def test_docs_mentioning_secrets_never_alarm(words: list[str]) -> None:
    text = " ".join(words).encode()
    assert scan("docs/README.md", text) == []
    assert scan("docs/guide.yaml", b"notes: |\n  " + text.replace(b"\n", b"\n  ")) == []


def test_scan_orders_by_line(keys: dict[str, bytes]) -> None:
    data = b"DB_PASSWORD=hunter2\n" + keys["EC"] + b"\n" + AGE_KEY_FILE.read_bytes()
    found = detectors.scan(".env", data)
    assert [d.line for d in found] == sorted(d.line or 0 for d in found) and len(found) == 3
