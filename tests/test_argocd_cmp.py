"""argocd/plugin.yaml, the Argo CD Config Management Plugin: its `generate`
and `discover` commands run as Argo CD runs them (in the Application's
directory, `sopsflow` found on PATH) on sample-repo/ paths. The output must
parse as Kubernetes objects, hold every SOPS manifest decrypted exactly as the
real `sops decrypt` prints it, pass the plain manifests through, and hold no
ciphertext."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, base_env, run_sops

PLUGIN = REPO / "argocd" / "plugin.yaml"
SAMPLE = REPO / "sample-repo"

sys.path.insert(0, str(REPO / "scripts"))

import samplelib as lib  # noqa: E402 - from scripts/, added above


@pytest.fixture(scope="module")
def plugin() -> dict[str, Any]:
    doc = yaml.safe_load(PLUGIN.read_text())
    assert doc["apiVersion"] == "argoproj.io/v1alpha1" and doc["kind"] == "ConfigManagementPlugin"
    assert doc["metadata"]["name"] == "sopsflow"
    return dict(doc["spec"])


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `sopsflow` on PATH running this checkout, as the sidecar image's would."""
    bin_dir = tmp_path_factory.mktemp("bin")
    script = bin_dir / "sopsflow"
    script.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" -m sopsflow "$@"\n')
    script.chmod(0o755)
    return bin_dir


@pytest.fixture(scope="module")
def gnupg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("gnupg")
    lib.import_pgp_key(home, SAMPLE / lib.KEYS_SUBDIR / lib.DEV_PGP)
    yield home
    lib.stop_gpg_agent(home)


def argo_env(shim: Path, age_key: str | None, gnupg: Path | None = None) -> dict[str, str]:
    """What the sidecar sees: its own environment (keys from a mounted Secret) and Argo CD's build variables."""
    env = base_env(PATH=f"{shim}{os.pathsep}{os.environ['PATH']}", ARGOCD_APP_NAME="billing",
                   ARGOCD_APP_NAMESPACE="billing", ARGOCD_APP_REVISION="0123abcd")
    env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    if age_key:
        env["SOPS_AGE_KEY_FILE"] = str(SAMPLE / lib.KEYS_SUBDIR / age_key)
    env["GNUPGHOME"] = str(gnupg) if gnupg else os.devnull
    return env


def run_step(step: dict[str, Any], app_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*step["command"], *step.get("args", [])], cwd=app_dir, env=env, capture_output=True,
                          timeout=300)


def sops_files_below(app_dir: Path) -> list[Path]:
    """The SOPS-encrypted Kubernetes manifests the plugin must decrypt (outside separate kustomizations)."""
    found = []
    for path in lib.sops_files(app_dir):
        rel = path.relative_to(app_dir)
        if any((app_dir / Path(*rel.parts[:i]) / "kustomization.yaml").exists() for i in range(1, len(rel.parts))):
            continue
        if path.suffix in (".yaml", ".yml", ".json") and "apiVersion" in path.read_text():
            found.append(path)
    return found


CASES = [
    ("apps/staging", lib.ALICE, False, 1),
    ("apps/staging/argocd", lib.STAGING_FLUX, False, 1),
    ("infrastructure/staging", lib.STAGING_FLUX, False, 1),
    ("apps/production", lib.BREAKGLASS, False, 1),
    ("infrastructure/production", lib.BREAKGLASS, False, 1),
    ("apps/dev", None, True, 1),
]


@pytest.mark.parametrize(("app", "age_key", "pgp", "secrets"), CASES, ids=[c[0] for c in CASES])
def test_generate_decrypts_every_sops_manifest(plugin: dict[str, Any], shim: Path, gnupg: Path, app: str,
                                               age_key: str | None, pgp: bool, secrets: int) -> None:
    app_dir = SAMPLE / app
    env = argo_env(shim, age_key, gnupg if pgp else None)
    done = run_step(plugin["generate"], app_dir, env)
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert "ENC[" not in text and "sops:" not in text
    objects = [d for d in yaml.safe_load_all(text) if d is not None]
    assert objects, "no objects"
    for obj in objects:
        assert isinstance(obj, dict) and obj.get("apiVersion") and obj.get("kind"), obj
        assert obj["metadata"]["name"], obj
        assert obj["kind"] not in ("Kustomization", "ksops"), obj
    # each SOPS manifest comes out as the real sops decrypts it (same working directory, same .sops.yaml)
    expected_secrets = []
    for path in sops_files_below(app_dir):
        theirs = run_sops(["decrypt", str(path.relative_to(app_dir))], env=env, cwd=app_dir)
        assert theirs.returncode == 0, (path, theirs.stderr)
        decrypted = (json.loads(theirs.stdout) if path.suffix == ".json"
                     else yaml.safe_load(theirs.stdout))
        assert decrypted in objects, path
        expected_secrets.append(decrypted)
    assert len([o for o in objects if o["kind"] == "Secret"]) == secrets == len(expected_secrets)
    # the plain manifests pass through byte for byte
    for path in sorted(app_dir.glob("*.yaml")):
        if path.name != "kustomization.yaml" and b"sops:" not in path.read_bytes():
            body = path.read_text()
            if "kind: ksops" not in body:
                assert body.split("---\n")[0].strip() in text, path


def test_generate_names_what_it_left_out(plugin: dict[str, Any], shim: Path) -> None:
    done = run_step(plugin["generate"], SAMPLE / "apps/staging", argo_env(shim, lib.ALICE))
    assert done.returncode == 0
    notes = done.stderr.decode()
    assert "skipped argocd/: a separate kustomization" in notes
    assert "skipped kustomization.yaml: a kustomization file" in notes
    assert "st4g" not in notes  # values never reach stderr, which Argo CD shows in its UI


def test_generate_passes_plain_directories_through(plugin: dict[str, Any], shim: Path) -> None:
    app_dir = SAMPLE / "apps/base/billing-api"
    done = run_step(plugin["generate"], app_dir, argo_env(shim, None))
    assert done.returncode == 0, done.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(done.stdout))
    assert kinds == ["Deployment", "Namespace", "Service"]


def test_generate_fails_without_the_key_and_prints_nothing(plugin: dict[str, Any], shim: Path) -> None:
    done = run_step(plugin["generate"], SAMPLE / "apps/staging", argo_env(shim, lib.BREAKGLASS))
    assert done.returncode == 128, done.stderr
    assert done.stdout == b""
    assert b"db-credentials.yaml" in done.stderr and b"st4g" not in done.stderr


def test_generate_refuses_a_link_out_of_the_app(plugin: dict[str, Any], shim: Path, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: outside\n")
    (app / "link.yaml").symlink_to(outside)
    done = run_step(plugin["generate"], app, argo_env(shim, None))
    assert done.returncode == 1 and b"links outside the application directory" in done.stderr
    assert done.stdout == b""


def test_discover_matches_directories_with_sops_manifests(plugin: dict[str, Any], shim: Path) -> None:
    find = plugin["discover"]["find"]
    env = argo_env(shim, None)  # discovery decrypts nothing, so it needs no key
    staging = run_step(find, SAMPLE / "apps/staging", env)
    assert staging.returncode == 0 and staging.stdout.decode().split() == ["db-credentials.yaml"]
    plain = run_step(find, SAMPLE / "apps/base/billing-api", env)
    assert plain.returncode == 0 and plain.stdout == b""


def test_plugin_yaml_runs_sopsflow(plugin: dict[str, Any]) -> None:
    assert plugin["generate"]["command"][0] == "sopsflow"
    assert plugin["discover"]["find"]["command"][0] == "sopsflow"
    assert plugin.get("preserveFileMode") is False
