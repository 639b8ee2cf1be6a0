"""`sopsflow publish` to Vault KV on a real OpenBao dev server, cross-checked with sops publish."""

# The fixtures imported from .keys.fixtures are used as test parameters (pytest's injection).
# ruff: noqa: F811

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hvac.exceptions import InvalidPath

from sopsflow.config.decoder import parse_config
from sopsflow.errors import SopsError
from sopsflow.gitops.publish import destination_for, destination_name, emit_as_map, go_ext, same_json
from sopsflow.tree import Comment, TreeMap

from .conftest import base_env, run_sops, run_sopsflow, sops_encrypted_copy
from .keys.fixtures import DUMMY_AWS, Bao, Moto, bao_server, free_port, moto_server  # noqa: F401 - fixtures
from .vectors import AGE_KEY_FILE

APP_YAML = """\
# a comment sops drops
db:
    user: app
    password: s3cret-value-1
    port: 5432
ratio: 1.5
whole: 2.0
enabled: true
nothing: null
hosts:
    - a.example
    - b.example
"""

EDGE_YAML = """\
token: tok-123
items:
    # in a list
    - name: one
      value: 1
    - plain
nested:
    deeper:
        leaf: x
"""


def _env(bao: Bao, **extra: str) -> dict[str, str]:
    return base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), VAULT_ADDR=bao.address, VAULT_TOKEN=bao.token, **extra)


def _config(directory: Path, body: str) -> Path:
    path = directory / ".sops.yaml"
    path.write_text(body)
    return path


def _kv2(bao: Bao, path: str, mount: str = "secret") -> dict[str, Any]:
    response = bao.client().adapter.get(f"/v1/{mount}/data/{path}")
    return dict(response["data"]["data"])


def _kv2_version(bao: Bao, path: str, mount: str = "secret") -> int:
    response = bao.client().adapter.get(f"/v1/{mount}/metadata/{path}")
    return int(response["data"]["current_version"])


def _enable_kv1(bao: Bao) -> str:
    mount = "kv1-" + uuid.uuid4().hex[:8]
    bao.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    return mount


@pytest.fixture()
def workdir(tmp_path: Path, bao_server: Bao) -> tuple[Path, str, dict[str, str]]:
    """A directory with two sops-encrypted files and a unique KV prefix."""
    env = _env(bao_server)
    sops_encrypted_copy(tmp_path, "app.yaml", APP_YAML, env)
    sops_encrypted_copy(tmp_path, "edge.yaml", EDGE_YAML, env)
    prefix = "t-" + uuid.uuid4().hex[:10]
    return tmp_path, prefix, env


# --- pure parts ------------------------------------------------------------------------


def test_names_as_sops_builds_them() -> None:
    assert go_ext("dir/.env") == ".env"
    assert go_ext("a.b/c") == ""
    assert destination_name("dir/app.enc.yaml", recursive=False, omit_extensions=False) == "app.enc.yaml"
    assert destination_name("dir/app.enc.yaml", recursive=False, omit_extensions=True) == "app.enc"
    assert destination_name("./dir//sub/app.yaml", recursive=True, omit_extensions=True) == "dir/sub/app"
    with pytest.raises(SopsError, match="relative to"):
        destination_name("/abs/app.yaml", recursive=True, omit_extensions=False)


def test_emit_as_map_matches_sops_shapes() -> None:
    inner = TreeMap([("k", "v"), Comment(" c")])
    branch = TreeMap([Comment(" top"), ("a", TreeMap([("b", 1)])), ("l", [inner, Comment(" x"), 2.0]), ("f", 0.5)])
    later = TreeMap([("a", "replaced")])
    data = emit_as_map([branch, later])
    assert data == {
        "a": "replaced",
        "l": [[{"Key": "k", "Value": "v"}, {"Key": {"Value": " c"}, "Value": None}], {"Value": " x"}, 2],
        "f": 0.5,
    }
    assert type(data["l"][2]) is int  # type: ignore[index]
    assert same_json({"a": 1}, {"a": 1}) and not same_json({"a": 1}, {"a": 1.0}) and not same_json(True, 1)


def test_destination_rules_are_read(tmp_path: Path) -> None:
    config = parse_config(b"""
destination_rules:
  - path_regex: '[' # does not compile: sops skips the rule
    vault_path: never
  - path_regex: 'prod/'
    vault_path: prod
    vault_kv_mount_name: kv
    vault_kv_version: 1
    omit_extensions: true
  - gcs_bucket: b
  - s3_bucket: b
    vault_path: x
  - s3_bucket: b
  - path_regex: zzz
""", str(tmp_path / ".sops.yaml"))
    rules = config.destination_rules
    assert [r.matches("a/prod/x.yaml") for r in rules] == [False, True, True, True, True, False]
    vault = destination_for(rules[1])
    assert vault.target("x") == "kv/prod/x" and rules[1].omit_extensions
    with pytest.raises(SopsError, match="gcs_bucket destinations are not supported"):
        destination_for(rules[2])
    with pytest.raises(SopsError, match="more than one destinations"):
        destination_for(rules[3])
    s3 = destination_for(rules[4])
    assert s3.target("f.yaml") == "s3://b/f.yaml" and s3.label() == "s3://b/"
    with pytest.raises(SopsError, match="^no destination configured for this file$"):
        destination_for(rules[5])
    assert rules[5].matches("a/zzz")


# --- end to end on OpenBao ----------------------------------------------------------------


def test_plan_apply_and_idempotence_kv2(workdir: tuple[Path, str, dict[str, str]], bao_server: Bao) -> None:
    tmp, prefix, env = workdir
    _config(tmp, f"destination_rules:\n  - path_regex: '\\.yaml$'\n    vault_path: {prefix}\n")
    app = str(tmp / "enc-app.yaml")

    dry = run_sopsflow(["publish", "--dry-run", app], env=env, cwd=tmp)
    assert dry.returncode == 1, dry.stderr
    out = dry.stdout.decode()
    assert f"create    secret/data/{prefix}/enc-app.yaml" in out
    assert "+db" in out and "+hosts" in out
    assert "s3cret" not in out + dry.stderr.decode()  # key names only
    with pytest.raises(InvalidPath):
        _kv2(bao_server, f"{prefix}/enc-app.yaml")  # nothing written

    done = run_sopsflow(["publish", "-y", app], env=env, cwd=tmp)
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout.decode()
    stored = _kv2(bao_server, f"{prefix}/enc-app.yaml")
    assert stored == {
        "db": {"user": "app", "password": "s3cret-value-1", "port": 5432},
        "ratio": 1.5, "whole": 2, "enabled": True, "nothing": None, "hosts": ["a.example", "b.example"],
    }
    assert _kv2_version(bao_server, f"{prefix}/enc-app.yaml") == 1

    again = run_sopsflow(["publish", "--dry-run", app], env=env, cwd=tmp)
    assert again.returncode == 0, again.stdout
    assert "unchanged" in again.stdout.decode()
    rerun = run_sopsflow(["publish", "--yes", app], env=env, cwd=tmp)
    assert rerun.returncode == 0, rerun.stderr
    assert _kv2_version(bao_server, f"{prefix}/enc-app.yaml") == 1  # no new version

    # A changed value: an update naming the key, then exactly one new version.
    sops_encrypted_copy(tmp, "app.yaml", APP_YAML.replace("s3cret-value-1", "s3cret-value-2")
                        .replace("enabled: true\n", ""), env)
    dry = run_sopsflow(["publish", "--dry-run", app], env=env, cwd=tmp)
    assert dry.returncode == 1
    assert "update" in dry.stdout.decode() and "(~db -enabled)" in dry.stdout.decode()
    assert "s3cret" not in dry.stdout.decode()
    assert run_sopsflow(["publish", "-y", app], env=env, cwd=tmp).returncode == 0
    assert _kv2(bao_server, f"{prefix}/enc-app.yaml")["db"]["password"] == "s3cret-value-2"
    assert _kv2_version(bao_server, f"{prefix}/enc-app.yaml") == 2


def test_refuses_without_yes_when_stdin_is_not_a_terminal(workdir: tuple[Path, str, dict[str, str]],
                                                          bao_server: Bao) -> None:
    tmp, prefix, env = workdir
    _config(tmp, f"destination_rules:\n  - vault_path: {prefix}\n")
    done = run_sopsflow(["publish", str(tmp / "enc-app.yaml")], env=env, cwd=tmp, input=b"y\n")
    assert done.returncode == 1
    assert "stdin is not a terminal" in done.stderr.decode()
    with pytest.raises(InvalidPath):
        _kv2(bao_server, f"{prefix}/enc-app.yaml")


def test_asks_on_a_terminal(workdir: tuple[Path, str, dict[str, str]], bao_server: Bao) -> None:
    """On a terminal the plan is shown and one answer is read: n cancels, y applies."""
    import os
    import pty
    import subprocess
    import sys

    from .conftest import REPO

    tmp, prefix, env = workdir
    _config(tmp, f"destination_rules:\n  - vault_path: {prefix}\n")
    env = {**env, "PYTHONPATH": str(REPO)}

    def answer(reply: bytes) -> tuple[int, str]:
        leader, follower = pty.openpty()
        with subprocess.Popen([sys.executable, "-m", "sopsflow", "publish", "enc-app.yaml"], cwd=tmp, env=env,
                              stdin=follower, stdout=follower, stderr=follower) as proc:
            os.close(follower)
            seen = b""
            while b"(y/n)" not in seen:
                seen += os.read(leader, 4096)
            os.write(leader, reply)
            code = proc.wait(timeout=60)
            try:
                while chunk := os.read(leader, 4096):
                    seen += chunk
            except OSError:  # the terminal closes when the child exits
                pass
        os.close(leader)
        return code, seen.decode()

    code, text = answer(b"n\n")
    assert code == 1 and "Publication canceled" in text and "+db" in text
    with pytest.raises(InvalidPath):
        _kv2(bao_server, f"{prefix}/enc-app.yaml")
    code, text = answer(b"y\n")
    assert code == 0 and "created" in text, text
    assert _kv2(bao_server, f"{prefix}/enc-app.yaml")["db"]["user"] == "app"


def test_kv1_recursive_omit_extensions(workdir: tuple[Path, str, dict[str, str]], bao_server: Bao) -> None:
    tmp, prefix, env = workdir
    mount = _enable_kv1(bao_server)
    sub = tmp / "tree"
    sub.mkdir()
    for name in ("enc-app.yaml", "enc-edge.yaml"):
        (sub / name).write_bytes((tmp / name).read_bytes())
    _config(tmp, f"destination_rules:\n  - vault_path: {prefix}/\n    vault_kv_mount_name: {mount}\n"
                 "    vault_kv_version: 1\n")
    done = run_sopsflow(["publish", "--recursive", "--omit-extensions", "-y", "tree"], env=env, cwd=tmp)
    assert done.returncode == 0, done.stderr
    client = bao_server.client()
    stored = client.adapter.get(f"/v1/{mount}/{prefix}/tree/enc-app")["data"]
    assert stored["db"]["password"] == "s3cret-value-1"
    assert client.adapter.get(f"/v1/{mount}/{prefix}/tree/enc-edge")["data"]["token"] == "tok-123"
    again = run_sopsflow(["publish", "--recursive", "--omit-extensions", "--dry-run", "tree"], env=env, cwd=tmp)
    assert again.returncode == 0 and again.stdout.decode().count("unchanged") == 2

    directory = run_sopsflow(["publish", "-y", "tree"], env=env, cwd=tmp)
    assert directory.returncode == 1
    assert "without --recursive" in directory.stderr.decode()


def test_partial_failure_reports_each_destination(workdir: tuple[Path, str, dict[str, str]],
                                                  bao_server: Bao) -> None:
    tmp, prefix, env = workdir
    dead = f"http://127.0.0.1:{free_port()}"
    _config(tmp, f"destination_rules:\n  - path_regex: edge\n    vault_path: {prefix}\n    vault_address: {dead}\n"
                 f"  - path_regex: gcs\n    gcs_bucket: b\n  - vault_path: {prefix}\n")
    (tmp / "enc-gcs.yaml").write_bytes((tmp / "enc-app.yaml").read_bytes())
    done = run_sopsflow(["publish", "--recursive", "-y", "."], env=env, cwd=tmp)
    out = done.stdout.decode()
    assert done.returncode == 1, out
    assert f"created   secret/data/{prefix}/enc-app.yaml" in out
    assert "failed    enc-edge.yaml: cannot read" in out
    assert "failed    enc-gcs.yaml: gcs_bucket destinations are not supported" in out
    assert "failed    .sops.yaml" in out  # not a sops file: reported, the others still go
    assert "tok-123" not in out + done.stderr.decode()
    assert _kv2(bao_server, f"{prefix}/enc-app.yaml")["db"]["user"] == "app"

    # Once the store is reachable, a rerun finishes the job and rewrites nothing else.
    _config(tmp, f"destination_rules:\n  - vault_path: {prefix}\n")
    done = run_sopsflow(["publish", "-y", "enc-app.yaml"], env=env, cwd=tmp)
    assert done.returncode == 0 and "unchanged" in done.stdout.decode()
    done = run_sopsflow(["publish", "-y", "enc-edge.yaml"], env=env, cwd=tmp)
    assert done.returncode == 0 and "created" in done.stdout.decode()
    assert _kv2_version(bao_server, f"{prefix}/enc-app.yaml") == 1
    assert _kv2(bao_server, f"{prefix}/enc-edge.yaml")["token"] == "tok-123"


# --- the real sops as the oracle -------------------------------------------------------------


@pytest.mark.parametrize("kv_version", [1, 2])
def test_same_stored_values_as_sops_publish(tmp_path: Path, bao_server: Bao, kv_version: int) -> None:
    env = _env(bao_server)
    files = [
        sops_encrypted_copy(tmp_path, "app.yaml", APP_YAML, env),
        sops_encrypted_copy(tmp_path, "edge.yaml", EDGE_YAML, env),
        sops_encrypted_copy(tmp_path, "multi.yaml", "a: 1\nb: first\n---\nb: second\nc: [1, 2.5]\n", env),
        sops_encrypted_copy(tmp_path, "conf.json", '{"k": "v", "n": {"x": [true, null]}, "f": 3.0}', env),
        sops_encrypted_copy(tmp_path, "vars.env", "USER=me\nPASS=pw=1\n", env),
    ]
    mount = "secret" if kv_version == 2 else _enable_kv1(bao_server)
    run = uuid.uuid4().hex[:8]
    configs = {}
    for tool in ("sops", "flow"):
        configs[tool] = tmp_path / f"{tool}.sops.yaml"
        configs[tool].write_text(f"destination_rules:\n  - vault_path: {tool}-{run}\n"
                                 f"    vault_kv_mount_name: {mount}\n    vault_kv_version: {kv_version}\n")
    for path in files:
        done = run_sops(["--config", str(configs["sops"]), "publish", "--yes", str(path)], env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        mine = run_sopsflow(["--config", str(configs["flow"]), "publish", "--yes", str(path)], env=env, cwd=tmp_path)
        assert mine.returncode == 0, mine.stderr

    client = bao_server.client()

    def stored(tool: str, name: str) -> Any:
        if kv_version == 2:
            return client.adapter.get(f"/v1/{mount}/data/{tool}-{run}/{name}")["data"]["data"]
        return client.adapter.get(f"/v1/{mount}/{tool}-{run}/{name}")["data"]

    for path in files:
        theirs, ours = stored("sops", path.name), stored("flow", path.name)
        assert same_json(ours, theirs), (path.name, ours, theirs)
    assert stored("flow", "enc-multi.yaml")["b"] == "second"
    # sops sends a mapping inside a list as its own item structs; so do we.
    assert stored("sops", "enc-edge.yaml")["items"][:2] == [{"Value": " in a list"},
                                                            [{"Key": "name", "Value": "one"}, {"Key": "value", "Value": 1}]]
    assert stored("sops", "enc-app.yaml")["whole"] == 2 and type(stored("sops", "enc-app.yaml")["whole"]) is int

    if kv_version == 2:
        # The deliberate difference: sops writes a new version of an unchanged
        # file holding numbers; sopsflow writes nothing.
        app = str(files[0])
        assert run_sops(["--config", str(configs["sops"]), "publish", "--yes", app], env=env).returncode == 0
        assert run_sopsflow(["--config", str(configs["flow"]), "publish", "--yes", app], env=env).returncode == 0
        assert _kv2_version(bao_server, f"sops-{run}/enc-app.yaml") == 2
        assert _kv2_version(bao_server, f"flow-{run}/enc-app.yaml") == 1


# --- AWS Secrets Manager and SSM Parameter Store on moto_server ------------------------------


def _git_commit(directory: Path) -> str:
    import subprocess

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=directory, check=True)
    subprocess.run([*git, "add", "-A"], cwd=directory, check=True)
    subprocess.run([*git, "commit", "-qm", "c"], cwd=directory, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, check=True,
                          capture_output=True, text=True).stdout.strip()


def _aws_env(moto: Moto, **extra: str) -> dict[str, str]:
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), AWS_DEFAULT_REGION="us-east-1",
                   AWS_ENDPOINT_URL_SECRETS_MANAGER=moto.url, AWS_ENDPOINT_URL_SSM=moto.url, **DUMMY_AWS, **extra)
    return {k: v for k, v in env.items() if k not in ("AWS_PROFILE", "AWS_CONFIG_FILE")}


def test_secrets_manager_and_ssm(tmp_path: Path, moto_server: Moto) -> None:
    env = _aws_env(moto_server)
    run = uuid.uuid4().hex[:8]
    prod = tmp_path / "production"
    prod.mkdir()
    sops_encrypted_copy(prod, "app.yaml", APP_YAML, env)
    (prod / "app.yaml").unlink()
    kms = moto_server.client("kms").create_key()["KeyMetadata"]["KeyId"]
    _config(tmp_path, "creation_rules: []\n")
    (tmp_path / ".sopsflow.yaml").write_text(f"""\
publish:
  - path_regex: '^production/'
    aws_secretsmanager:
      name: "{run}/{{dir}}/{{stem}}"
    aws_ssm:
      name: "/{run}/{{stem}}/{{key}}"
      kms_key_id: {kms}
""")
    commit = _git_commit(tmp_path)
    app = "production/enc-app.yaml"

    dry = run_sopsflow(["publish", "--dry-run", app], env=env, cwd=tmp_path)
    assert dry.returncode == 1, dry.stderr
    out = dry.stdout.decode()
    assert f"create    {run}/production/enc-app <- {app}" in out
    assert f"create    /{run}/enc-app/{{key}} <- {app}" in out
    assert "s3cret" not in out
    sm, ssm = moto_server.client("secretsmanager"), moto_server.client("ssm")
    assert not ssm.get_parameters_by_path(Path=f"/{run}", Recursive=True)["Parameters"]

    done = run_sopsflow(["publish", "-y", app], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    secret = f"{run}/production/enc-app"
    assert json.loads(sm.get_secret_value(SecretId=secret)["SecretString"])["db"]["password"] == "s3cret-value-1"
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=secret)["Tags"]}
    assert tags == {"sopsflow:source": app, "sopsflow:commit": commit}
    param = ssm.get_parameter(Name=f"/{run}/enc-app/db", WithDecryption=True)["Parameter"]
    assert param["Type"] == "SecureString" and json.loads(param["Value"])["user"] == "app"
    assert ssm.get_parameter(Name=f"/{run}/enc-app/ratio", WithDecryption=True)["Parameter"]["Value"] == "1.5"
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [f"/{run}/enc-app/db"]}])
    assert described["Parameters"][0]["KeyId"] == kms
    param_tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"/{run}/enc-app/db")["TagList"]
    assert {t["Key"]: t["Value"] for t in param_tags}["sopsflow:commit"] == commit

    def versions() -> tuple[int, int, int]:
        sm_versions = len(sm.list_secret_version_ids(SecretId=secret)["Versions"])
        db = ssm.get_parameter(Name=f"/{run}/enc-app/db")["Parameter"]["Version"]
        ratio = ssm.get_parameter(Name=f"/{run}/enc-app/ratio")["Parameter"]["Version"]
        return sm_versions, db, ratio

    assert versions() == (1, 1, 1)
    again = run_sopsflow(["publish", "--dry-run", app], env=env, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.decode().count("unchanged") == 2
    assert run_sopsflow(["publish", "-y", app], env=env, cwd=tmp_path).returncode == 0
    assert versions() == (1, 1, 1)  # nothing rewritten

    sops_encrypted_copy(prod, "app.yaml", APP_YAML.replace("s3cret-value-1", "s3cret-value-2"), env)
    (prod / "app.yaml").unlink()
    dry = run_sopsflow(["publish", "--dry-run", app], env=env, cwd=tmp_path)
    assert dry.returncode == 1 and dry.stdout.decode().count("(~db)") == 2
    assert run_sopsflow(["publish", "-y", app], env=env, cwd=tmp_path).returncode == 0
    assert versions() == (2, 2, 1)  # only the changed parameter got a new version
    assert json.loads(sm.get_secret_value(SecretId=secret)["SecretString"])["db"]["password"] == "s3cret-value-2"


def test_secrets_manager_per_key_and_bad_settings(tmp_path: Path, moto_server: Moto) -> None:
    env = _aws_env(moto_server)
    run = uuid.uuid4().hex[:8]
    sops_encrypted_copy(tmp_path, "vars.env", "USER=me\nPASS=pw=1\n", env)
    _config(tmp_path, "creation_rules: []\n")
    settings = tmp_path / ".sopsflow.yaml"
    settings.write_text(f"publish:\n  - aws_secretsmanager:\n      name: '{run}/{{stem}}/{{key}}'\n      per_key: true\n")
    done = run_sopsflow(["publish", "-y", "enc-vars.env"], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    sm = moto_server.client("secretsmanager")
    assert sm.get_secret_value(SecretId=f"{run}/enc-vars/PASS")["SecretString"] == "pw=1"
    assert sm.get_secret_value(SecretId=f"{run}/enc-vars/USER")["SecretString"] == "me"

    settings.write_text("publish:\n  - aws_ssm:\n      name: '/x/{stem}/{nope}'\n")
    bad = run_sopsflow(["publish", "-y", "enc-vars.env"], env=env, cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.decode().strip().splitlines() == [
        ".sopsflow.yaml: `publish[0].aws_ssm.name`: unknown field(s) {nope} in the name template"]


def test_aws_refusal_is_reported_without_the_value(tmp_path: Path, moto_server: Moto) -> None:
    env = _aws_env(moto_server)
    run = uuid.uuid4().hex[:8]
    big = "LEAK" + "x" * 100
    sops_encrypted_copy(tmp_path, "big.yaml", f"small: ok\nbig: {big}\n", env)
    _config(tmp_path, "creation_rules: []\n")
    (tmp_path / ".sopsflow.yaml").write_text(f"""\
publish:
  - aws_secretsmanager:
      name: "{run}/{{stem}}"
    aws_ssm:
      name: "ssm{run}/{{key}}"  # SSM refuses names starting with "ssm"
""")
    done = run_sopsflow(["publish", "-y", "enc-big.yaml"], env=env, cwd=tmp_path)
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 1, out
    assert f"created   {run}/enc-big <- enc-big.yaml" in out
    assert "failed    enc-big.yaml: cannot write" in out
    assert "LEAK" not in out
    sm = moto_server.client("secretsmanager")
    assert json.loads(sm.get_secret_value(SecretId=f"{run}/enc-big")["SecretString"])["big"] == big


# --- S3 (sops destination_rules) on moto_server ------------------------------------------------

SECRET_YAML = """\
apiVersion: v1
kind: Secret
metadata:
    name: db-credentials
    namespace: shop
type: Opaque
stringData:
    username: shop
    password: s3cret-value-1
data:
    token: dG9rLTEyMw==
"""


def _s3_env(moto: Moto, key_file: Path | None = None) -> dict[str, str]:
    env = _aws_env(moto, AWS_ENDPOINT_URL_S3=moto.url)
    if key_file is not None:
        env["SOPS_AGE_KEY_FILE"] = str(key_file)
    return env


def _bucket(moto: Moto) -> str:
    name = "b-" + uuid.uuid4().hex[:10]
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _object(moto: Moto, bucket: str, key: str) -> bytes:
    return bytes(moto.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def _versions(moto: Moto, bucket: str, key: str) -> int:
    listed = moto.client("s3").list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    return len([v for v in listed if v["Key"] == key])


def _both_keys(tmp: Path, second_key: tuple[str, Path]) -> Path:
    both = tmp / "both.agekey"
    both.write_text(AGE_KEY_FILE.read_text() + "\n" + second_key[1].read_text())
    return both


def test_s3_recreation_rule_plan_and_idempotence(tmp_path: Path, moto_server: Moto,
                                                 second_key: tuple[str, Path]) -> None:
    """The object is the file re-encrypted for the recreation rule's keys; a
    second run compares the decrypted trees and writes nothing."""
    from .vectors import AGE_RECIPIENT

    env = _s3_env(moto_server)
    bucket = _bucket(moto_server)
    sops_encrypted_copy(tmp_path, "app.yaml", APP_YAML, env)
    _config(tmp_path, f"destination_rules:\n  - s3_bucket: {bucket}\n    s3_prefix: env/prod-\n"
                      f"    recreation_rule:\n      age: {second_key[0]},{AGE_RECIPIENT}\n")
    env = _s3_env(moto_server, _both_keys(tmp_path, second_key))
    key = "env/prod-enc-app.yaml"

    dry = run_sopsflow(["publish", "--dry-run", "enc-app.yaml"], env=env, cwd=tmp_path)
    assert dry.returncode == 1, dry.stderr
    assert f"create    s3://{bucket}/{key} <- enc-app.yaml" in dry.stdout.decode()
    assert moto_server.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    done = run_sopsflow(["publish", "-y", "enc-app.yaml"], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    stored = _object(moto_server, bucket, key)
    assert b"s3cret" not in stored and second_key[0].encode() in stored
    # The second key alone opens it, with the real sops.
    opened = run_sops(["decrypt", "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"],
                      env=_s3_env(moto_server, second_key[1]), input=stored)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == run_sops(["decrypt", "enc-app.yaml"], env=env, cwd=tmp_path).stdout
    assert b"s3cret-value-1" in opened.stdout
    assert _versions(moto_server, bucket, key) == 1

    again = run_sopsflow(["publish", "--dry-run", "enc-app.yaml"], env=env, cwd=tmp_path)
    assert again.returncode == 0 and f"unchanged s3://{bucket}/{key}" in again.stdout.decode()
    assert run_sopsflow(["publish", "-y", "enc-app.yaml"], env=env, cwd=tmp_path).returncode == 0
    assert _versions(moto_server, bucket, key) == 1  # nothing rewritten

    # A new recipient set is a change even with the same values.
    _config(tmp_path, f"destination_rules:\n  - s3_bucket: {bucket}\n    s3_prefix: env/prod-\n"
                      f"    recreation_rule:\n      age: {AGE_RECIPIENT}\n")
    dry = run_sopsflow(["publish", "--dry-run", "enc-app.yaml"], env=env, cwd=tmp_path)
    assert dry.returncode == 1 and "(recipients)" in dry.stdout.decode()

    sops_encrypted_copy(tmp_path, "app.yaml", APP_YAML.replace("s3cret-value-1", "s3cret-value-2"), env)
    dry = run_sopsflow(["publish", "--dry-run", "enc-app.yaml"], env=env, cwd=tmp_path)
    assert dry.returncode == 1 and "(~db recipients)" not in dry.stdout.decode()
    assert "(~db)" in dry.stdout.decode() and "s3cret" not in dry.stdout.decode()
    assert run_sopsflow(["publish", "-y", "enc-app.yaml"], env=env, cwd=tmp_path).returncode == 0
    assert _versions(moto_server, bucket, key) == 2
    assert second_key[0].encode() not in _object(moto_server, bucket, key)


def test_s3_unknown_object_needs_force(tmp_path: Path, moto_server: Moto, second_key: tuple[str, Path]) -> None:
    """An object the publisher's keys cannot decrypt is "unknown": left alone
    (exit 1) unless --force; then it is replaced."""
    env = _s3_env(moto_server)
    bucket = _bucket(moto_server)
    sops_encrypted_copy(tmp_path, "app.yaml", APP_YAML, env)
    _config(tmp_path, f"destination_rules:\n  - s3_bucket: {bucket}\n")
    foreign = run_sops(["encrypt", "--age", second_key[0], "--input-type", "yaml", "--output-type", "yaml",
                        "/dev/stdin"], env=env, input=b"other: value\n")
    assert foreign.returncode == 0, foreign.stderr
    moto_server.client("s3").put_object(Bucket=bucket, Key="enc-app.yaml", Body=foreign.stdout)

    dry = run_sopsflow(["publish", "--dry-run", "enc-app.yaml"], env=env, cwd=tmp_path)
    assert dry.returncode == 1
    assert f"unknown   s3://{bucket}/enc-app.yaml <- enc-app.yaml" in dry.stdout.decode()
    done = run_sopsflow(["publish", "-y", "enc-app.yaml"], env=env, cwd=tmp_path)
    assert done.returncode == 1 and "--force overwrites it" in done.stdout.decode()
    assert _object(moto_server, bucket, "enc-app.yaml") == foreign.stdout
    done = run_sopsflow(["publish", "-y", "--force", "enc-app.yaml"], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"replaced  s3://{bucket}/enc-app.yaml" in done.stdout.decode()
    # No recreation_rule: the file's own bytes, as sops uploads them.
    assert _object(moto_server, bucket, "enc-app.yaml") == (tmp_path / "enc-app.yaml").read_bytes()
    again = run_sopsflow(["publish", "-y", "enc-app.yaml"], env=env, cwd=tmp_path)
    assert again.returncode == 0 and "unchanged" in again.stdout.decode()
    assert _versions(moto_server, bucket, "enc-app.yaml") == 2


def _shape(text: bytes) -> Any:
    """An encrypted YAML/JSON document with ciphertexts, wrapped keys and
    timestamps blanked: what stays the same between two encryptions."""
    import re

    import yaml

    blanked = re.sub(rb"ENC\[AES256_GCM,data:[^\]]*type:(\w+)\]", rb"ENC[\1]", text)
    doc = json.loads(blanked) if text.startswith(b"{") else yaml.safe_load(blanked)
    meta = doc.pop("sops")
    for name in ("lastmodified", "mac"):
        meta.pop(name)
    for group in [meta, *meta.get("key_groups", [])]:
        for entry in group.get("age") or []:
            entry.pop("enc")
    return doc, meta


def test_s3_same_objects_as_sops_publish(tmp_path: Path, moto_server: Moto, second_key: tuple[str, Path]) -> None:
    """The pinned sops binary talks to moto through AWS_ENDPOINT_URL_S3: both
    tools publish the same files; the objects decrypt to the same documents,
    with the same metadata and the same values encrypted."""
    from .vectors import AGE_RECIPIENT

    env = _s3_env(moto_server)
    bucket = _bucket(moto_server)
    files = [
        sops_encrypted_copy(tmp_path, "app.yaml", APP_YAML, env),
        sops_encrypted_copy(tmp_path, "conf.json", '{"k": "v", "n": {"x": [true, null]}, "f": 3.0}', env),
        sops_encrypted_copy(tmp_path, "vars.env", "USER=me\nPASS=pw=1\n", env),
    ]
    secret = tmp_path / "secret.yaml"
    secret.write_text(SECRET_YAML)
    done = run_sops(["encrypt", "--age", AGE_RECIPIENT, "--encrypted-regex", "^(data|stringData)$", str(secret)],
                    env=env)
    assert done.returncode == 0, done.stderr
    (tmp_path / "enc-secret.yaml").write_bytes(done.stdout)
    files.append(tmp_path / "enc-secret.yaml")

    both = _both_keys(tmp_path, second_key)
    env = _s3_env(moto_server, both)
    for tool in ("sops", "flow"):
        (tmp_path / f"{tool}.sops.yaml").write_text(
            f"destination_rules:\n"
            f"  - path_regex: vars\n    s3_bucket: {bucket}\n    s3_prefix: {tool}/raw/\n"
            f"  - s3_bucket: {bucket}\n    s3_prefix: {tool}/\n    omit_extensions: true\n"
            f"    recreation_rule:\n      unencrypted_suffix: _plain\n      key_groups:\n"
            f"        - age: [{second_key[0]}]\n        - age: [{AGE_RECIPIENT}]\n      shamir_threshold: 2\n")
    for path in files:
        theirs = run_sops(["--config", "sops.sops.yaml", "publish", "--yes", path.name], env=env, cwd=tmp_path)
        assert theirs.returncode == 0, theirs.stderr
        ours = run_sopsflow(["--config", "flow.sops.yaml", "publish", "--yes", path.name], env=env, cwd=tmp_path)
        assert ours.returncode == 0, ours.stdout + ours.stderr

    assert _object(moto_server, bucket, "sops/raw/enc-vars.env") == _object(moto_server, bucket,
                                                                            "flow/raw/enc-vars.env")
    for path, kind in zip(files[:2] + files[3:], ("yaml", "json", "yaml"), strict=True):
        name = path.stem
        theirs, ours = (_object(moto_server, bucket, f"{tool}/{name}") for tool in ("sops", "flow"))
        assert _shape(theirs) == _shape(ours), name
        assert b"encrypted_regex" not in ours and b"_plain" in ours  # sops keeps only the suffix option
        opened = [run_sops(["decrypt", "--input-type", kind, "--output-type", kind, "/dev/stdin"], env=env,
                           input=body) for body in (theirs, ours)]
        assert opened[0].returncode == 0 and opened[1].returncode == 0, opened[1].stderr
        assert opened[0].stdout == opened[1].stdout, name
    # The Secret's metadata was plaintext in the file; both tools now encrypt it.
    assert b"db-credentials" not in _object(moto_server, bucket, "flow/enc-secret")


def test_unreachable_aws_endpoint_then_rerun(tmp_path: Path, moto_server: Moto) -> None:
    """SSM unreachable: Secrets Manager is written, SSM is reported failed, exit 1,
    and no plaintext lands on disk. The rerun writes only what is missing."""
    from .keys.fixtures import free_port

    run = uuid.uuid4().hex[:8]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = _aws_env(moto_server, AWS_MAX_ATTEMPTS="1", TMPDIR=str(scratch))
    sops_encrypted_copy(tmp_path, "app.yaml", APP_YAML, env)
    (tmp_path / "app.yaml").unlink()
    _config(tmp_path, "creation_rules: []\n")
    (tmp_path / ".sopsflow.yaml").write_text(
        f"publish:\n  - aws_secretsmanager:\n      name: '{run}/{{stem}}'\n    aws_ssm:\n"
        f"      name: '/{run}/{{stem}}/{{key}}'\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    dead = {**env, "AWS_ENDPOINT_URL_SSM": f"http://127.0.0.1:{free_port()}"}
    done = run_sopsflow(["publish", "-y", "enc-app.yaml"], env=dead, cwd=tmp_path)
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 1, out
    assert f"created   {run}/enc-app <- enc-app.yaml" in out
    assert "failed    enc-app.yaml: cannot read" in out and "Could not connect" in out
    assert "s3cret" not in out
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written locally

    sm, ssm = moto_server.client("secretsmanager"), moto_server.client("ssm")
    assert not ssm.get_parameters_by_path(Path=f"/{run}", Recursive=True)["Parameters"]
    done = run_sopsflow(["publish", "-y", "enc-app.yaml"], env=env, cwd=tmp_path)
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert f"unchanged {run}/enc-app <- enc-app.yaml" in out and f"created   /{run}/enc-app/{{key}}" in out
    assert len(sm.list_secret_version_ids(SecretId=f"{run}/enc-app")["Versions"]) == 1
    assert ssm.get_parameter(Name=f"/{run}/enc-app/db")["Parameter"]["Version"] == 1
