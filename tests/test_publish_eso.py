"""`publish --emit-external-secrets`: the manifests validate against the ESO CRDs, hold no
value, and their remote references resolve, on OpenBao and moto_server, to what was written."""

# The fixtures imported from .keys.fixtures are used as test parameters (pytest's injection).
# ruff: noqa: F811

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from sopsflow.gitops.publish_eso import gjson_path

from .conftest import run_sops, run_sopsflow, sops_encrypted_copy
from .keys.fixtures import Bao, Moto, bao_server, moto_server  # noqa: F401 - fixtures
from .test_publish import _aws_env, _bucket, _config
from .vectors import AGE_RECIPIENT, ESO_SCHEMAS, needs_eso_schemas

SHOP_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
    name: db-credentials
    namespace: shop
type: kubernetes.io/basic-auth
stringData:
    username: shop-user
    password: pw-VAULT-1
data:
    ca.crt: Y2EtQ0VSVC1ieXRlcw==
"""

BILLING_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
    name: stripe
    namespace: billing
stringData:
    api-key: sk-AWS-2
    webhook.secret: wh-AWS-3
"""

APP_ENV = "DB_URL=postgres://u:pw-SSM-4@db/app\nFEATURE_FLAGS=a,b\n"
VALUES = ("pw-VAULT-1", "ca-CERT", "Y2EtQ0VSVC1ieXRlcw==", "sk-AWS-2", "wh-AWS-3", "pw-SSM-4")


@cache
def schema(kind: str) -> dict[str, Any]:
    plural = {"ExternalSecret": "externalsecrets", "SecretStore": "secretstores",
              "ClusterSecretStore": "clustersecretstores"}[kind]
    crd = yaml.safe_load((ESO_SCHEMAS / f"external-secrets.io_{plural}.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return dict(version["schema"]["openAPIV3Schema"])


def validate(doc: dict[str, Any]) -> None:
    import jsonschema

    assert doc["apiVersion"] == "external-secrets.io/v1"
    jsonschema.Draft7Validator(schema(doc["kind"])).validate(doc)


def gjson_get(value: Any, path: str) -> Any:
    """The value at an escaped gjson path of plain keys (what the manifests use)."""
    parts = [re.sub(r"\\(.)", r"\1", p) for p in re.split(r"(?<!\\)\.", path)]
    assert gjson_path(parts) == path
    for part in parts:
        if isinstance(value, str):
            value = json.loads(value)
        value = value[part]
    return value


def resolve(store: dict[str, Any], ref: dict[str, str], bao: Bao | None, aws: Callable[[str, str], Any]) -> str:
    """What ESO would put in the Secret for ``ref``, read back from the real store
    (``aws(service, region)``: a boto3 client on moto_server)."""
    provider = store["spec"]["provider"]
    if "vault" in provider:
        vault = provider["vault"]
        assert bao is not None and vault["server"] == bao.address and vault["version"] == "v2"
        value: Any = bao.client().adapter.get(f"/v1/{vault['path']}/data/{ref['key']}")["data"]["data"]
    elif provider["aws"]["service"] == "SecretsManager":
        value = aws("secretsmanager", provider["aws"]["region"]).get_secret_value(
            SecretId=ref["key"])["SecretString"]
    else:
        assert provider["aws"]["service"] == "ParameterStore"
        value = aws("ssm", provider["aws"]["region"]).get_parameter(
            Name=ref["key"], WithDecryption=True)["Parameter"]["Value"]
    if "property" in ref:
        value = gjson_get(value, ref["property"])
    assert isinstance(value, str), ref
    if ref.get("decodingStrategy") == "Base64":
        return base64.b64decode(value).decode()
    return value


@needs_eso_schemas
def test_manifests_validate_and_resolve(tmp_path: Path, bao_server: Bao, moto_server: Moto) -> None:
    run = uuid.uuid4().hex[:8]
    env = _aws_env(moto_server, VAULT_ADDR=bao_server.address, VAULT_TOKEN=bao_server.token,
                   AWS_ENDPOINT_URL_S3=moto_server.url)
    for sub, name, text in (("vault", "db.yaml", SHOP_SECRET), ("aws", "stripe.yaml", BILLING_SECRET),
                            ("ssm", "app.env", APP_ENV), ("s3", "db.yaml", SHOP_SECRET)):
        (tmp_path / sub).mkdir()
        src = tmp_path / sub / name
        src.write_text(text)
        done = run_sops(["encrypt", "--age", AGE_RECIPIENT, *(["--encrypted-regex", "^(data|stringData)$"]
                                                              if name.endswith(".yaml") else []), str(src)], env=env)
        assert done.returncode == 0, done.stderr
        src.write_bytes(done.stdout)
    bucket = _bucket(moto_server)
    _config(tmp_path, f"destination_rules:\n  - path_regex: ^vault/\n    vault_path: {run}\n"
                      f"  - path_regex: ^s3/\n    s3_bucket: {bucket}\n")
    (tmp_path / ".sopsflow.yaml").write_text(f"""\
publish:
  - path_regex: '^aws/'
    aws_secretsmanager:
      name: "{run}/{{stem}}"
  - path_regex: '^ssm/'
    aws_ssm:
      name: "/{run}/{{stem}}/{{key}}"
""")
    out_dir = tmp_path / "deploy" / "eso"
    args = ["publish", "-y", "--recursive", "--emit-external-secrets", "deploy/eso"]
    done = run_sopsflow([*args, "."], env=env, cwd=tmp_path)
    out = done.stdout.decode()
    # .sops.yaml and .sopsflow.yaml are walked too and fail as non-SOPS files; the rest is published.
    assert "failed    .sops.yaml" in out
    assert out.count("created") == 4, out
    assert "wrote     shop-db-credentials.yaml <- vault/db.yaml" in out
    assert "wrote     billing-stripe.yaml <- aws/stripe.yaml" in out
    assert "wrote     ssm-app.yaml <- ssm/app.env" in out
    assert "skipped   s3/db.yaml: its store (S3) holds encrypted files" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["billing-stripe.yaml", "shop-db-credentials.yaml",
                                                         "ssm-app.yaml"]

    expected = {
        "shop-db-credentials.yaml": ("shop", "db-credentials", "kubernetes.io/basic-auth",
                                     {"username": "shop-user", "password": "pw-VAULT-1", "ca.crt": "ca-CERT-bytes"}),
        "billing-stripe.yaml": ("billing", "stripe", "Opaque",
                                {"api-key": "sk-AWS-2", "webhook.secret": "wh-AWS-3"}),
        "ssm-app.yaml": (None, "ssm-app", None,
                         {"DB_URL": "postgres://u:pw-SSM-4@db/app", "FEATURE_FLAGS": "a,b"}),
    }
    for filename, (namespace, name, kind, values) in expected.items():
        text = (out_dir / filename).read_text()
        assert not any(v in text for v in VALUES), filename  # no secret value, not even base64
        store, external = yaml.safe_load_all(text)
        validate(store)
        validate(external)
        assert store["kind"] == "SecretStore"
        assert store["metadata"].get("namespace") == namespace == external["metadata"].get("namespace")
        spec = external["spec"]
        assert spec["secretStoreRef"] == {"name": store["metadata"]["name"], "kind": "SecretStore"}
        assert spec["target"]["name"] == external["metadata"]["name"] == name
        assert spec["target"].get("template", {}).get("type") == (None if kind == "Opaque" else kind)
        resolved = {item["secretKey"]: resolve(store, item["remoteRef"], bao_server, moto_server.client)
                    for item in spec["data"]}
        assert resolved == values, filename

    again = run_sopsflow([*args, "."], env=env, cwd=tmp_path)
    text = again.stdout.decode()
    assert "created" not in text and "updated" not in text
    assert text.count("unchanged") == 4 + 3  # four secrets, three manifest files


@needs_eso_schemas
def test_per_key_secrets_manager_refs(tmp_path: Path, moto_server: Moto) -> None:
    run = uuid.uuid4().hex[:8]
    env = _aws_env(moto_server)
    sops_encrypted_copy(tmp_path, "stripe.yaml", BILLING_SECRET, env)
    _config(tmp_path, "creation_rules: []\n")
    (tmp_path / ".sopsflow.yaml").write_text(
        f"publish:\n  - aws_secretsmanager:\n      name: '{run}/{{stem}}/{{key}}'\n      per_key: true\n"
        "      region: eu-west-1\n")
    env["AWS_DEFAULT_REGION"] = "eu-west-1"
    done = run_sopsflow(["publish", "-y", "--emit-external-secrets", "eso", "enc-stripe.yaml"], env=env,
                        cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    store, external = yaml.safe_load_all((tmp_path / "eso" / "billing-stripe.yaml").read_text())
    validate(store)
    validate(external)
    assert store["spec"]["provider"]["aws"]["region"] == "eu-west-1"
    refs = {item["secretKey"]: item["remoteRef"] for item in external["spec"]["data"]}
    assert refs["webhook.secret"] == {"key": f"{run}/enc-stripe/stringData", "property": "webhook\\.secret"}
    assert {k: resolve(store, r, None, moto_server.client) for k, r in refs.items()} == {
        "api-key": "sk-AWS-2", "webhook.secret": "wh-AWS-3"}



def test_names_keys_and_refusals() -> None:
    """Pure parts: Secret names from paths, keys Kubernetes refuses, escaped
    properties, and one-line refusals for names it cannot take."""
    from sopsflow.errors import SopsError
    from sopsflow.gitops.publish import CREATE, Entry, VaultKV
    from sopsflow.gitops.publish_eso import build, manifests

    vault = VaultKV.from_rule("http://vault.example:8200", "apps", "kv", 1)
    env_entry = Entry("cfg/My App.env", vault, name="My App.env", status=CREATE,
                      data={"DB URL": "x", "a.b": "y", "ok-key": {"n": 1}})
    made = build(env_entry, "cfg/My App.env")
    assert made is not None and made.filename == "cfg-my-app.yaml"
    store, external = made.documents
    assert store["spec"]["provider"]["vault"] == {
        "server": "http://vault.example:8200", "path": "kv", "version": "v1",
        "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}
    assert [(d["secretKey"], d["remoteRef"]) for d in external["spec"]["data"]] == [
        ("DB_URL", {"key": "apps/My App.env", "property": "DB URL"}),
        ("a.b", {"key": "apps/My App.env", "property": "a\\.b"}),
        ("ok-key", {"key": "apps/My App.env", "property": "ok-key"}),
    ]
    clash = Entry("c.env", vault, name="c.env", status=CREATE, data={"a b": "1", "a_b": "2"})
    with pytest.raises(SopsError, match="map to the same Secret key 'a_b'"):
        build(clash, "c.env")
    bad = Entry("s.yaml", vault, name="s.yaml", status=CREATE,
                data={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Not_Valid"}, "data": {"k": "dg=="}})
    items, skipped = manifests([bad, env_entry], {"s.yaml": "s.yaml", "cfg/My App.env": "cfg/My App.env"})
    assert [m.filename for m in items] == ["cfg-my-app.yaml"]
    assert skipped == [("s.yaml", "s.yaml: 'Not_Valid' is not a valid Kubernetes Secret name")]
