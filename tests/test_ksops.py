"""`sopsflow ksops`: the KSOPS-compatible kustomize generator.

The protocol tests never skip: the exec plugin on a generator file and the KRM
function on a ResourceList, against the checked-in output in tests/data/ksops/
(scripts/make_ksops_fixtures.py), and every decrypted value against what the
real `sops decrypt` prints. Then the real tools, where the machine has them:
`kubectl kustomize --enable-alpha-plugins` runs the launcher that
`sopsflow ksops install` writes, `kpt fn eval --exec` the KRM form.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import REPO, base_env, run_sops, run_sopsflow
from .vectors import AGE_KEY_FILE

FIXTURES = REPO / "tests" / "data" / "ksops"
SAMPLE = REPO / "sample-repo"
SAMPLE_OVERLAY = "apps/staging/argocd"

sys.path.insert(0, str(REPO / "scripts"))

import samplelib as lib  # noqa: E402 - from scripts/, added above


@pytest.fixture()
def fixtures(tmp_path: Path) -> Path:
    """A copy of tests/data/ksops (no .sops.yaml above it: sops' default indents)."""
    copy = tmp_path / "ksops"
    shutil.copytree(FIXTURES, copy)
    return copy


def key_env(key_file: Path = AGE_KEY_FILE, **extra: str) -> dict[str, str]:
    env = base_env(SOPS_AGE_KEY_FILE=str(key_file))
    env.pop("KUSTOMIZE_PLUGIN_CONFIG_ROOT", None)
    env.update(extra)
    return env


def sops_decrypt(path: Path, env: dict[str, str]) -> bytes:
    done = run_sops(["decrypt", str(path)], env=env, cwd=path.parent)
    assert done.returncode == 0, done.stderr
    return done.stdout


def dotenv_pairs(text: bytes) -> dict[str, str]:
    """KEY=value lines as sops writes them (value after the first '=', \\n = newline)."""
    pairs = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value.replace("\\n", "\n")
    return pairs


def by_name(docs: list[Any]) -> dict[str, dict[str, Any]]:
    """Objects by name, without the file-placement annotations kpt adds."""
    found = {}
    for doc in docs:
        if isinstance(doc, dict) and "name" in doc.get("metadata", {}):
            annotations = doc["metadata"].get("annotations") or {}
            for key in [k for k in annotations if k.split("/")[0].endswith("config.kubernetes.io")]:
                del annotations[key]
            if "annotations" in doc["metadata"] and not annotations:
                del doc["metadata"]["annotations"]
            found[doc["metadata"]["name"]] = doc
    return found


def check_against_sops(objects: dict[str, dict[str, Any]], overlay: Path, env: dict[str, str], *,
                       files_secret: str = "app-files") -> None:
    """The generated objects hold exactly what `sops decrypt` prints for their sources."""
    assert objects["app-credentials"] == yaml.safe_load(sops_decrypt(overlay / "credentials.enc.yaml", env))
    if "app-settings" in objects:
        assert objects["app-settings"] == json.loads(sops_decrypt(overlay / "settings.enc.json", env))
    secret = objects[files_secret]
    logo = sops_decrypt(overlay / "logo.enc", env)
    assert base64.b64decode(next(iter(secret["data"].values()))) == logo
    env_pairs = dotenv_pairs(sops_decrypt(overlay / "app.enc.env", env))
    for key, value in env_pairs.items():
        assert secret["stringData"][key] == value
    assert env_pairs["QUOTED"] == '"kept"' and env_pairs["MULTI"] == "one\ntwo"
    if files_secret == "app-files":
        ini = sops_decrypt(overlay / "app.enc.ini", env).decode()
        assert secret["stringData"]["app.ini"] == ini == secret["stringData"]["app.enc.ini"]


# --- the protocol, no external tool ----------------------------------------------------------


def test_exec_plugin_prints_the_checked_in_output(fixtures: Path, tmp_path: Path) -> None:
    """Legacy exec mode: the argument is the generator file; its paths resolve
    next to it, whatever the working directory."""
    env = key_env()
    done = run_sopsflow(["ksops", str(fixtures / "overlay" / "generator.yaml")], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (FIXTURES / "expected-exec.yaml").read_bytes()
    # the one quoted dotenv value is named (never its value) on stderr
    assert b"QUOTED" in done.stderr and b'"kept"' not in done.stderr
    check_against_sops(by_name(list(yaml.safe_load_all(done.stdout))), fixtures / "overlay", env)


def test_exec_plugin_under_kustomize_resolves_in_the_plugin_config_root(fixtures: Path, tmp_path: Path) -> None:
    """kustomize passes a temporary copy of the generator and names the
    kustomization directory in KUSTOMIZE_PLUGIN_CONFIG_ROOT."""
    copy = tmp_path / "kust-plugin-config-1234"
    copy.write_bytes((fixtures / "overlay" / "generator.yaml").read_bytes())
    env = key_env(KUSTOMIZE_PLUGIN_CONFIG_ROOT=str(fixtures / "overlay"))
    done = run_sopsflow(["ksops", str(copy)], env=env, cwd=fixtures / "overlay")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (FIXTURES / "expected-exec.yaml").read_bytes()


def test_krm_function_answers_a_resource_list(fixtures: Path) -> None:
    env = key_env()
    overlay = fixtures / "overlay"
    done = run_sopsflow(["ksops"], env=env, cwd=overlay, input=(FIXTURES / "resource-list.yaml").read_bytes())
    assert done.returncode == 0, done.stderr
    assert done.stdout == (FIXTURES / "expected-krm.yaml").read_bytes()
    rl = yaml.safe_load(done.stdout)
    assert rl["kind"] == "ResourceList" and rl["apiVersion"] == "config.kubernetes.io/v1"
    kinds = [(i["kind"], i["metadata"]["name"]) for i in rl["items"]]
    # the generator item is replaced in place by what it generates; the rest passes through
    assert kinds == [("ConfigMap", "unrelated"), ("Secret", "app-credentials"), ("Secret", "krm-files")]
    assert rl["items"][0]["data"] == {"keep": "as it is"}
    check_against_sops(by_name(rl["items"]), overlay, env, files_secret="krm-files")


def test_krm_function_config_generates_when_no_item_is_a_generator(fixtures: Path) -> None:
    """kpt's --fn-config: the generator comes as functionConfig, the items are the package."""
    generator = yaml.safe_load((fixtures / "overlay" / "generator.yaml").read_text())
    rl = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList",
          "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}}],
          "functionConfig": generator}
    done = run_sopsflow(["ksops"], env=key_env(), cwd=fixtures / "overlay", input=yaml.safe_dump(rl).encode())
    assert done.returncode == 0, done.stderr
    names = [i["metadata"]["name"] for i in yaml.safe_load(done.stdout)["items"]]
    assert names == ["keep", "app-credentials", "app-settings", "app-files"]


# --- refusals: one line, sops' exit code, no output ----------------------------------------------


def _generator(overlay: Path, body: str) -> Path:
    path = overlay / "bad-generator.yaml"
    path.write_text("apiVersion: viaduct.ai/v1\nkind: ksops\nmetadata:\n  name: bad\n" + body)
    return path


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ("files:\n  - ../../../etc/passwd\n", 1, b"is outside the root"),
        ("files:\n  - ../base/secret.yaml\n", 1, b"is outside the root"),
        ("files:\n  - /etc/hostname\n", 1, b"is outside the root"),
        ("files:\n  - kustomization.yaml\n", 1, b"sops metadata not found"),
        ("files:\n  - app.enc.env\n", 1, b"not a YAML or JSON manifest"),
        ("files:\n  - missing.enc.yaml\n", 100, b"non-existent file"),
        ("file:\n  - credentials.enc.yaml\n", 1, b"unknown field 'file'"),
        ("", 1, b"needs 'files' or 'secretFrom'"),
        ("secretFrom:\n  - files: [app.enc.ini]\n", 1, b"metadata.name is required"),
        ("secretFrom:\n  - metadata: {name: x}\n    files: [a=b=c]\n", 1, b"neither a path nor key=path"),
        ("secretFrom:\n  - metadata: {name: x}\n    files: ['bad key=app.enc.ini']\n", 1,
         b"not a valid Secret key"),
        ("secretFrom:\n  - metadata: {name: x}\n    files: [API_KEY=app.enc.ini]\n    envs: [app.enc.env]\n", 1,
         b"key 'API_KEY' comes from both"),
        ("secretFrom:\n  - metadata: {name: x}\n    files: [logo.enc]\n", 1, b"list it under binaryFiles"),
        ("secretFrom:\n  - metadata: {name: x}\n    envs: [app.enc.ini]\n", 1, b"not a dotenv file"),
        ("secretFrom:\n  - metadata:\n      name: x\n      annotations:\n"
         "        kustomize.config.k8s.io/needs-hash: true\n    envs: [app.enc.env]\n", 1,
         b"must be the string"),
        ("secretFrom:\n  - metadata:\n      name: x\n      annotations:\n"
         "        kustomize.config.k8s.io/behavior: replaced\n    envs: [app.enc.env]\n", 1,
         b"must be one of create, replace, merge"),
    ],
)
def test_bad_generators_fail_cleanly(fixtures: Path, body: str, code: int, message: bytes) -> None:
    path = _generator(fixtures / "overlay", body)
    done = run_sopsflow(["ksops", str(path)], env=key_env(), cwd=fixtures / "overlay")
    assert done.returncode == code, done.stderr
    assert message in done.stderr, done.stderr
    assert done.stdout == b""
    errors = [line for line in done.stderr.splitlines() if not line.startswith(b"ksops: warning:")]
    assert b"Traceback" not in done.stderr and len(errors) == 1, done.stderr


def test_a_symlink_out_of_the_root_is_refused(fixtures: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.enc.yaml"
    shutil.copyfile(fixtures / "overlay" / "credentials.enc.yaml", outside)
    (fixtures / "overlay" / "link.enc.yaml").symlink_to(outside)
    path = _generator(fixtures / "overlay", "files:\n  - link.enc.yaml\n")
    done = run_sopsflow(["ksops", str(path)], env=key_env(), cwd=fixtures / "overlay")
    assert done.returncode == 1 and b"is outside the root" in done.stderr
    assert done.stdout == b""


def test_without_the_key_nothing_is_printed(fixtures: Path, second_key: tuple[str, Path]) -> None:
    done = run_sopsflow(["ksops", str(fixtures / "overlay" / "generator.yaml")], env=key_env(second_key[1]))
    assert done.returncode == 128, done.stderr
    assert done.stdout == b""
    assert b"credentials.enc.yaml" in done.stderr and b"test-only" not in done.stderr


def test_krm_refusals(fixtures: Path) -> None:
    overlay = fixtures / "overlay"
    nothing = run_sopsflow(["ksops"], env=key_env(), cwd=overlay,
                           input=b"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\n")
    assert nothing.returncode == 1 and b"nothing to generate" in nothing.stderr and nothing.stdout == b""
    garbage = run_sopsflow(["ksops"], env=key_env(), cwd=overlay, input=b"kind: [unclosed\n")
    assert garbage.returncode == 1 and b"not a valid ResourceList" in garbage.stderr
    assert b"Traceback" not in garbage.stderr
    too_many = run_sopsflow(["ksops", "a.yaml", "b.yaml"], env=key_env(), cwd=overlay)
    assert too_many.returncode == 1 and b"expected one generator manifest" in too_many.stderr


def test_install_writes_the_launcher_where_kustomize_looks(tmp_path: Path) -> None:
    env = key_env(XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    done = run_sopsflow(["ksops", "install"], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    launcher = tmp_path / "xdg" / "kustomize" / "plugin" / "viaduct.ai" / "v1" / "ksops" / "ksops"
    assert launcher.is_file() and os.access(launcher, os.X_OK)
    assert launcher.stat().st_mode & 0o777 == 0o755
    text = launcher.read_text()
    assert text.startswith("#!/bin/sh\n") and sys.executable in text and "-m sopsflow ksops" in text


# --- the real tools ------------------------------------------------------------------------------


def install_plugin(tmp_path: Path) -> tuple[Path, Path]:
    """The launcher in a private XDG_CONFIG_HOME: (config home, launcher)."""
    xdg = tmp_path / "xdg"
    target = xdg / "kustomize" / "plugin" / "viaduct.ai" / "v1" / "ksops"
    done = run_sopsflow(["ksops", "install", str(target)], env=base_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return xdg, target / "ksops"


def tool_or_skip(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed on this machine (the protocol tests above still ran)")
    return found


def kustomize_build(kubectl: str, directory: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    done = subprocess.run([kubectl, "kustomize", "--enable-alpha-plugins", str(directory)], env=env,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_kubectl_kustomize_runs_the_exec_plugin(fixtures: Path, tmp_path: Path) -> None:
    kubectl = tool_or_skip("kubectl")
    xdg, _launcher = install_plugin(tmp_path)
    env = key_env(XDG_CONFIG_HOME=str(xdg))
    objects = kustomize_build(kubectl, fixtures / "overlay", env)
    names = sorted(d["metadata"]["name"] for d in objects)
    # behavior: replace took the base's place; needs-hash gave app-files a hash suffix
    assert len(objects) == 3, names
    hashed = [n for n in names if n.startswith("app-files-")]
    assert len(hashed) == 1 and len(hashed[0]) == len("app-files-") + 10, names
    found = by_name(objects)
    found["app-files"] = found.pop(hashed[0])
    found["app-files"]["metadata"]["name"] = "app-files"
    assert "placeholder" not in yaml.safe_dump(objects)
    overlay = fixtures / "overlay"
    for name in ("app-credentials", "app-files"):
        annotations = found[name]["metadata"].get("annotations") or {}
        assert not any(k.startswith("kustomize.config.k8s.io/") for k in annotations), annotations
    credentials = yaml.safe_load(sops_decrypt(overlay / "credentials.enc.yaml", env))
    del credentials["metadata"]["annotations"]  # kustomize consumed the behavior annotation
    assert found["app-credentials"] == credentials
    assert found["app-settings"] == json.loads(sops_decrypt(overlay / "settings.enc.json", env))
    secret = found["app-files"]
    assert base64.b64decode(secret["data"]["logo.png"]) == sops_decrypt(overlay / "logo.enc", env)
    assert secret["stringData"]["app.ini"] == sops_decrypt(overlay / "app.enc.ini", env).decode()
    for key, value in dotenv_pairs(sops_decrypt(overlay / "app.enc.env", env)).items():
        assert secret["stringData"][key] == value


def test_kubectl_kustomize_builds_the_sample_overlay(tmp_path: Path) -> None:
    """sample-repo/apps/staging/argocd: the Secrets come out decrypted, equal to
    `sops decrypt` with the staging cluster's key, and the Deployment refers to
    the hashed name of the generated env Secret."""
    kubectl = tool_or_skip("kubectl")
    xdg, _launcher = install_plugin(tmp_path)
    env = key_env(SAMPLE / lib.KEYS_SUBDIR / lib.STAGING_FLUX, XDG_CONFIG_HOME=str(xdg),
                  GNUPGHOME=str(tmp_path / "no-gnupg"))
    overlay = SAMPLE / SAMPLE_OVERLAY
    objects = kustomize_build(kubectl, overlay, env)
    secrets = {d["metadata"]["name"]: d for d in objects if d["kind"] == "Secret"}
    assert "ENC[" not in yaml.safe_dump(objects)
    db = yaml.safe_load(sops_decrypt(overlay / "db-credentials.yaml", env))
    assert secrets.pop("billing-db") == db
    (env_name, env_secret), = secrets.items()
    assert env_name.startswith("billing-api-env-")
    assert env_secret["stringData"] == dotenv_pairs(sops_decrypt(overlay / "billing-api.env", env))
    deployment = next(d for d in objects if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": env_name}}]
    assert deployment["spec"]["replicas"] == 1


def test_kpt_fn_eval_runs_the_krm_function(fixtures: Path, tmp_path: Path) -> None:
    kpt = tool_or_skip("kpt")
    _xdg, launcher = install_plugin(tmp_path)
    overlay = fixtures / "overlay"
    env = key_env()
    done = subprocess.run([kpt, "fn", "eval", ".", "--exec", str(launcher), "-o", "stdout"], cwd=overlay, env=env,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rl = yaml.safe_load(done.stdout)
    objects = [i for i in rl["items"] if "kind" in i and i["kind"] != "Kustomization"]
    names = sorted(i["metadata"]["name"] for i in objects)
    # the generator and the encrypted file it read are gone; the decrypted objects took their place
    assert names == ["app-credentials", "app-files", "app-settings"], names
    assert "ENC[" not in done.stdout.decode() and not any("sops" in i for i in rl["items"])
    check_against_sops(by_name(objects), overlay, env)
    # kpt left the package on disk as it was
    assert (overlay / "generator.yaml").read_bytes() == (FIXTURES / "overlay" / "generator.yaml").read_bytes()


# --- the YAML the generator writes ---------------------------------------------------------------

_KEYS = st.from_regex(r"[-._a-zA-Z0-9]{1,12}", fullmatch=True)
_VALUES = st.text(st.characters(blacklist_categories=("Cs", "Co", "Cn"), blacklist_characters="\ufeff"),
                  max_size=40) | st.sampled_from(["on", "y", "N", "0755", "12:30", "~", "null", "2024-01-01", "a\n",
                                                  "  lead\n", "trail \nx", "\ttab\n", "x\r\ny", "\n", "-", "? x"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_generated_secrets_read_back_the_same_in_yaml_1_1_and_1_2(string_data: dict[str, str]) -> None:
    """A YAML 1.1 reader (PyYAML; Kubernetes' sigs.k8s.io/yaml is 1.1 too) and a
    1.2 one (ruamel) read every generated value back as the same string."""
    from ruamel.yaml import YAML

    from sopsflow.gitops.ksops import dump_yaml

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": string_data}
    text = dump_yaml(secret)
    assert yaml.safe_load(text) == secret
    assert YAML(typ="safe").load(text) == secret
