"""Secrets the detectors must find outside the rule paths whatever they are
dressed in: provider tokens under any key, key material in UTF-16 or base64,
PuTTY keys, compose ``environment:`` credentials, and Kubernetes Secrets whose
``kind`` is escaped, tagged or broken over lines, or whose file name is a
template's. Judged through ``audit_file`` as the hook does, with look-alikes
that must stay quiet."""

from __future__ import annotations

import base64
import json
import random
import string

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sopsflow.config.decoder import parse_config
from sopsflow.gitops import detectors
from sopsflow.gitops.check import LEAKED_SECRET, audit_file
from sopsflow.gitops.settings import AuditSettings
from tests.gitfixtures import RULES_YAML
from tests.vectors import AGE_KEY_FILE

ROOT_CONFIG = "/repo/.sops.yaml"


def leaks(rel: str, data: bytes | str) -> list[tuple[int | None, str]]:
    """(line, what) of every leaked-secret finding the hook makes for ``rel``."""
    raw = data.encode() if isinstance(data, str) else data
    from pathlib import Path

    config = parse_config(RULES_YAML.encode(), ROOT_CONFIG)
    result = audit_file(rel, raw, config=config, settings=AuditSettings(), repo_root=Path("/repo"))
    assert result.rule is None, "these files sit outside every rule"
    return [(f.line, f.message) for f in result.findings if f.kind == LEAKED_SECRET]


def _random(alphabet: str, n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
TOKENS = {
    "AWS access key id": "AKIA" + _random(string.ascii_uppercase + string.digits, 16, 1),
    "GitHub token": "ghp_" + _random(ALNUM, 36, 2),
    "Slack token": "xoxb-" + _random(string.digits, 12, 3) + "-" + _random(string.digits, 13, 4) + "-"
    + _random(ALNUM, 24, 5),
    "Slack user token": "xoxp-" + _random(string.digits, 12, 6) + "-" + _random(ALNUM, 30, 7),
    "Stripe secret key": "sk_live_" + _random(ALNUM, 24, 8),
}


@pytest.fixture(scope="module")
def pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def age_identity() -> str:
    return next(line for line in AGE_KEY_FILE.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))


# --- provider tokens under any key name ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOKENS))
def test_provider_tokens_under_any_key_name(name: str) -> None:
    token = TOKENS[name]
    assert leaks("config/app.yaml", f"notify:\n  hook_target: {token}\n") == [(2, leaks("x.yaml", token)[0][1])]
    assert [line for line, _ in leaks("src/settings.py", f'# config\nENDPOINT = "{token}"\n')] == [2]
    assert [line for line, _ in leaks("deploy/values.json", json.dumps({"a": {"b": [token]}}, indent=1))] == [4]
    message = leaks("notes.txt", token)[0][1]
    assert token not in message and token[4:12] not in message  # the finding never carries the token


@pytest.mark.parametrize(
    "text",
    [
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",  # the documentation example
        "token: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "token: ghp_************************************",
        "stripe: sk_live_your_key_here_0000000000",
        "See https://github.com/settings/tokens for ghp_ tokens; Slack bots use xoxb- tokens.",
        "ROUTEAKIA0123456789ABCDEF",  # part of a longer word
        "AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP",  # typed, not drawn at random
        "key: ENC[AES256_GCM,data:AKIAZZZZ,iv:x,tag:y,type:str]",
    ],
)
def test_token_look_alikes_are_quiet(text: str) -> None:
    assert leaks("docs/tokens.md", text) == []


# --- key material in UTF-16 or base64 ------------------------------------------------------


def test_base64_pem_key_as_a_yaml_value(pem: bytes) -> None:
    encoded = base64.b64encode(pem).decode()
    assert encoded.startswith("LS0tLS1CRUdJTi")
    found = leaks("charts/web/values.yaml", f"ingress:\n  tls.crt: abc\n  tls.key: {encoded}\n")
    assert [line for line, _ in found] == [3] and "base64" in found[0][1] and "private key" in found[0][1]


def test_wrapped_base64_key_and_age_key_file(pem: bytes) -> None:
    wrapped = base64.encodebytes(pem).decode()  # 76-character lines
    block = "".join("    " + line + "\n" for line in wrapped.splitlines())
    assert [line for line, _ in leaks("deploy/key.yaml", f"tls:\n  key: |\n{block}")] == [3]
    key_file = base64.b64encode(AGE_KEY_FILE.read_bytes()).decode()  # comments first: not at offset 0
    found = leaks("ops/identity.txt", f"export SOPS_AGE_KEY_B64={key_file}\n")
    assert len(found) == 1 and "age identity" in found[0][1]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_key_material(pem: bytes, codec: str) -> None:
    assert [m for _, m in leaks("keys/server.key.txt", pem.decode().encode(codec))] != []
    found = leaks("keys/age.txt", AGE_KEY_FILE.read_text().encode(codec))
    assert len(found) == 1 and "age identity" in found[0][1]


def test_base64_that_only_mentions_a_key_is_quiet() -> None:
    placeholder = base64.b64encode(b"-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n").decode()
    assert leaks("docs/example.yaml", f"tls.key: {placeholder}\nlogo: {base64.b64encode(bytes(range(256))).decode()}\n") == []


# --- PuTTY keys -----------------------------------------------------------------------------


def _ppk(version: int, encryption: str = "none") -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    blob = base64.b64encode(b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + public).decode()
    secret = base64.b64encode(b"\0\0\0\x20" + private).decode()
    return (f"PuTTY-User-Key-File-{version}: ssh-ed25519\nEncryption: {encryption}\nComment: deploy\n"
            f"Public-Lines: 2\n{blob[:64]}\n{blob[64:]}\nPrivate-Lines: 1\n{secret}\nPrivate-MAC: {'ab' * 32}\n")


@pytest.mark.parametrize(("version", "encryption"), [(2, "none"), (3, "none"), (3, "aes256-cbc")])
def test_putty_keys(version: int, encryption: str) -> None:
    found = leaks("ops/deploy.ppk", "\n" + _ppk(version, encryption))
    assert [(line, "PuTTY private key" in m) for line, m in found] == [(2, True)]


def test_putty_key_documentation_is_quiet() -> None:
    text = "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPublic-Lines: 2\n...\nPrivate-Lines: 1\n...\n"
    assert leaks("docs/putty.md", text) == []


# --- compose environment ----------------------------------------------------------------


def test_compose_environment_credentials() -> None:
    text = (
        "services:\n"
        "  db:\n"
        "    image: postgres:16\n"
        "    environment:\n"
        "      - POSTGRES_USER=app\n"
        "      - POSTGRES_PASSWORD=Wq7pLk2Zr9xTe4\n"
        "      - POSTGRES_DB=app\n"
        "  web:\n"
        "    environment:\n"
        "      API_TOKEN: c81f9e2a7b4d4e0f\n"
        "      DATABASE_URL: postgres://app:Wq7pLk2Zr9xTe4@db/app\n"
        "      SECRET_KEY: ${SECRET_KEY}\n"
        "      DEBUG: 'false'\n"
    )
    for name in ("docker-compose.yml", "compose.yaml", "deploy/docker-compose.prod.yaml"):
        found = leaks(name, text)
        assert [line for line, _ in found] == [6, 10, 11], (name, found)
        assert all("compose environment" in m for _, m in found)
        assert "Wq7pLk2Zr9xTe4" not in " ".join(m for _, m in found)
    assert leaks("deploy/other.yml", text) == []  # not a compose file's name


def test_compose_placeholders_are_quiet() -> None:
    text = "services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD=${POSTGRES_PASSWORD:?}\n      - TOKEN=changeme\n"
    assert leaks("docker-compose.yml", text) == []


# --- Kubernetes Secrets judged on the parsed document ----------------------------------------


SECRET_FORMS = {
    "JSON escape": ("secret.json", '{"apiVersion": "v1", "kind": "S\\u0065cret", "data": {"password": "aHVudGVyMg=="}}'),
    "JSON line break before the colon": (
        "secret.json", '{"apiVersion": "v1",\n "kind"\n : "Secret",\n "data": {"password": "aHVudGVyMg=="}}'),
    "YAML !!str tag": ("secret.yaml", "apiVersion: v1\nkind: !!str Secret\ndata:\n  password: aHVudGVyMg==\n"),
    "YAML explicit key": ("secret.yaml", "apiVersion: v1\n? kind\n: Secret\ndata:\n  password: aHVudGVyMg==\n"),
    "YAML escape": ("secret.yaml", 'apiVersion: v1\nkind: "Secr\\x65t"\ndata:\n  password: aHVudGVyMg==\n'),
    "YAML alias": ("secret.yaml", "x: &k Secret\n---\napiVersion: v1\nkind: !!str Secret\nstringData:\n  token: abc\n"),
    "template name .yaml.j2": ("roles/db/templates/secret.yaml.j2",
                               "apiVersion: v1\nkind: Secret\ndata:\n  password: aHVudGVyMg==\n"),
    "template name .yml.tpl": ("deploy/secret.yml.tpl", "kind: Secret\nstringData:\n  password: hunter2\n"),
}


@pytest.mark.parametrize("form", sorted(SECRET_FORMS))
def test_disguised_kubernetes_secrets(form: str) -> None:
    name, text = SECRET_FORMS[form]
    found = leaks(name, text)
    assert len(found) == 1 and "Kubernetes Secret" in found[0][1], found


def test_parsed_kind_decides_not_the_text() -> None:
    assert leaks("cm.yaml", "kind: ConfigMap\ndata:\n  note: 'kind: Secret'\n  password: aHVudGVyMg==\n") == []
    assert leaks("cm.json", '{"kind": "Secrets", "data": {"password": "aHVudGVyMg=="}}') == []
    assert leaks("secret.yaml.j2", "kind: Secret\ndata:\n  password: {{ vault_db_password }}\n") == []
    assert detectors.is_manifest_name("a/secret.YAML.J2") and not detectors.is_manifest_name("a/secret.j2")
