"""Kubernetes documents judged as Kubernetes tools read them, end to end on
real git repositories through ``sopsflow check`` and ``sopsflow verify``:
Secrets in any document, kustomize ``$patch: delete`` patches, Flux's
``decrypt: Disabled`` annotation and kustomize ``secretGenerator`` sources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.gitfixtures import AGE_RECIPIENT, git_env, init_repo, run_check, sops_encrypt, stage, write

RULES = f"""\
creation_rules:
  - path_regex: ^secrets/
    age: {AGE_RECIPIENT}
  - path_regex: ^apps/.*\\.enc\\.(yaml|env)$
    encrypted_regex: ^(data|stringData)$
    age: {AGE_RECIPIENT}
"""
SECRET_B = "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\nstringData:\n  token: Zq8vN3xLw2Rt7Kp9\n"


def _verify(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sopsflow", "verify", "--format", "json", *args], cwd=repo,
                          env=git_env(), capture_output=True, text=True, timeout=120)


def _findings(repo: Path, *args: str) -> list[dict[str, object]]:
    done = _verify(repo, *args)
    assert done.returncode in (0, 1), done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout)["findings"]
    return found


def _flux_kustomization(path: str, decryption: bool) -> str:
    text = ("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n"
            "  namespace: flux-system\nspec:\n  interval: 10m\n  path: " + path + "\n  prune: true\n"
            "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n")
    if decryption:
        text += "  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n"
    return text


# --- Secrets in any document --------------------------------------------------------------


def test_a_secret_in_a_later_document_is_judged_by_the_hook_and_verify(tmp_path: Path) -> None:
    deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n"
    # a SOPS file (every value encrypted) with a plaintext Secret document added by hand
    encrypted = sops_encrypt("db.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n"
                             "stringData:\n  password: hunter2\n")
    repo = init_repo(tmp_path / "r", {"README.md": "x\n"}, rules=RULES)
    write(repo, "deploy/web.yaml", deployment + SECRET_B)
    write(repo, "deploy/db.yaml", encrypted + SECRET_B.encode())
    # at a rule path that selects data and stringData: the Secret in document 2 is what matters
    write(repo, "apps/web.enc.yaml", deployment + SECRET_B)
    stage(repo, "deploy/web.yaml", "deploy/db.yaml", "apps/web.enc.yaml")
    done = run_check(repo)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    web = [x for x in lines if x.startswith("deploy/web.yaml:13: error: Kubernetes Secret 'b'")]
    assert len(web) == 1, done.stdout
    db = [x for x in lines if x.startswith("deploy/db.yaml:") and "'stringData.token' (document 2)" in x]
    assert len(db) == 1 and "[partly-plaintext]" in db[0], done.stdout
    rule = [x for x in lines if x.startswith("apps/web.enc.yaml:13: error: not encrypted")]
    assert len(rule) == 1 and "'stringData.token'" in rule[0], done.stdout

    verified = _findings(repo, "--index")
    assert {(f["path"], f["kind"]) for f in verified if f["severity"] == "error"} == {
        ("deploy/web.yaml", "leaked-secret"), ("deploy/db.yaml", "partly-plaintext"),
        ("apps/web.enc.yaml", "plaintext-secret")}


def test_a_sops_secret_that_encrypts_its_data_passes(tmp_path: Path) -> None:
    encrypted = sops_encrypt("db.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n"
                             "stringData:\n  password: hunter2\n  user: admin\n", "--encrypted-regex",
                             "^(data|stringData)$")
    repo = init_repo(tmp_path / "r", {"README.md": "x\n"}, rules=RULES)
    write(repo, "apps/db.enc.yaml", encrypted)
    stage(repo, "apps/db.enc.yaml")
    assert run_check(repo).returncode == 0


# --- $patch: delete ---------------------------------------------------------------------------


DELETE_PATCH = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: old-creds\n  namespace: web\n$patch: delete\n"


def test_a_delete_patch_at_a_rule_path_carries_no_data_and_passes(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", {"README.md": "x\n"}, rules=RULES)
    write(repo, "secrets/remove-old-creds.yaml", DELETE_PATCH)
    stage(repo, "secrets/remove-old-creds.yaml")
    done = run_check(repo)
    assert done.returncode == 0, done.stdout
    assert not [f for f in _findings(repo, "--index") if f["path"] == "secrets/remove-old-creds.yaml"]

    # with data beside it, it is data: refused
    write(repo, "secrets/remove-old-creds.yaml", DELETE_PATCH + "stringData:\n  password: hunter2\n")
    stage(repo, "secrets/remove-old-creds.yaml")
    refused = run_check(repo)
    assert refused.returncode == 1 and "[plaintext-secret]" in refused.stdout
    # and a second document with data is judged on its own
    write(repo, "secrets/remove-old-creds.yaml", DELETE_PATCH + "---\napiVersion: v1\nkind: Secret\n"
          "metadata:\n  name: new\nstringData:\n  password: hunter2\n")
    stage(repo, "secrets/remove-old-creds.yaml")
    second = run_check(repo)
    assert second.returncode == 1
    assert "first plaintext value it selects: 'apiVersion'" in second.stdout
    assert "secrets/remove-old-creds.yaml:8:" in second.stdout


# --- Flux: decrypt: Disabled ------------------------------------------------------------------


def test_flux_lint_honours_decrypt_disabled(tmp_path: Path) -> None:
    annotated = sops_encrypt("passthrough.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: passthrough\n"
                             "  annotations:\n    kustomize.toolkit.fluxcd.io/decrypt: Disabled\n"
                             "stringData:\n  password: hunter2\n", "--encrypted-regex", "^(data|stringData)$")
    repo = init_repo(tmp_path / "r", {
        "clusters/prod/apps.yaml": _flux_kustomization("./apps", decryption=False),
        "apps/passthrough.enc.yaml": annotated,
    }, rules=RULES)
    assert not [f for f in _findings(repo) if f["kind"] == "flux-missing-decryption"]

    plain_meta = sops_encrypt("db.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n"
                              "stringData:\n  password: hunter2\n", "--encrypted-regex", "^(data|stringData)$")
    write(repo, "apps/db.enc.yaml", plain_meta)
    stage(repo, "apps/db.enc.yaml")
    missing = [f for f in _findings(repo, "--index") if f["kind"] == "flux-missing-decryption"]
    assert len(missing) == 1
    assert "apps/db.enc.yaml" in str(missing[0]["message"]) and "passthrough" not in str(missing[0]["message"])


# --- kustomize secretGenerator ----------------------------------------------------------------


KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
secretGenerator:
  - name: db
    envs:
      - db.env
    files:
      - ca.crt=certs/ca.crt
"""


def test_secret_generator_sources_must_not_be_plaintext(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", {"README.md": "x\n"}, rules=RULES)
    write(repo, "apps/kustomization.yaml", KUSTOMIZATION)
    write(repo, "apps/db.env", "DB_HOST=db.internal\nDB_NAME=app\n")  # nothing any detector flags
    write(repo, "apps/certs/ca.crt", "ca-bundle-v2\n")  # not a SOPS file
    write(repo, "apps/certs/tls.crt", "-----BEGIN CERTIFICATE-----\nMIIBSTCB8KADAgECAgNaPx4w\n"
          "-----END CERTIFICATE-----\n")  # public material: no secret data
    write(repo, "apps/kustomization.yaml", KUSTOMIZATION + "      - tls.crt=certs/tls.crt\n")
    stage(repo, "apps")
    done = run_check(repo)
    assert done.returncode == 1
    lines = [x for x in done.stdout.splitlines() if "[secret-generator-plaintext]" in x]
    assert [x.split(":")[0] for x in lines] == ["apps/certs/ca.crt", "apps/db.env"], done.stdout
    assert "secretGenerator 'db' of apps/kustomization.yaml (envs) makes it Kubernetes Secret data" in lines[1]

    verified = _findings(repo, "--index")
    assert sorted(str(f["path"]) for f in verified if f["kind"] == "secret-generator-plaintext") == [
        "apps/certs/ca.crt", "apps/db.env"]


def test_a_staged_kustomization_naming_a_committed_plaintext_file_is_refused(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", {"apps/db.env": "DB_HOST=db.internal\n"}, rules=RULES)
    write(repo, "apps/kustomization.yaml", "secretGenerator:\n  - name: db\n    envs: [db.env]\n"
          "    literals:\n      - API_KEY=k3y-Zq8vN3xL\n      - FROM_ENV=${API_KEY}\n      - LOG_LEVEL=debug\n"
          "      # sopsflow:allow\n      - DEV_PASSWORD=Zq8vN3xLw2Rt7Kp9\n")
    stage(repo, "apps/kustomization.yaml")
    done = run_check(repo)
    assert done.returncode == 1
    assert any(x.startswith("apps/db.env: error: plaintext, but secretGenerator 'db'") for x in done.stdout.splitlines())
    literal = [x for x in done.stdout.splitlines() if x.startswith("apps/kustomization.yaml:5: error:")]
    assert len(literal) == 1 and "literal 'API_KEY'" in literal[0], done.stdout
    # templated and configuration values are judged as dotenv lines are
    assert "FROM_ENV" not in done.stdout and "LOG_LEVEL" not in done.stdout
    assert "k3y-Zq8vN3xL" not in done.stdout
    # a literal is a heuristic finding: a marker suppresses it (counted)
    assert "DEV_PASSWORD" not in done.stdout and "1 suppressed inline" in done.stdout


def test_sops_encrypted_generator_sources_that_flux_decrypts_pass(tmp_path: Path) -> None:
    env = sops_encrypt("db.enc.env", "DB_PASSWORD=hunter2\n")
    repo = init_repo(tmp_path / "r", {
        "clusters/prod/apps.yaml": _flux_kustomization("./apps", decryption=True),
        "apps/kustomization.yaml": "secretGenerator:\n  - name: db\n    envs: [db.enc.env]\n",
        "apps/db.enc.env": env,
    }, rules=RULES)
    found = _findings(repo)
    assert not [f for f in found if f["severity"] == "error"], found
    stage(repo, "apps")
    assert run_check(repo, "--all-files").returncode == 0

    # without decryption Flux would put ciphertext into the Secret: the Flux lint says so
    write(repo, "clusters/prod/apps.yaml", _flux_kustomization("./apps", decryption=False))
    stage(repo, "clusters/prod/apps.yaml")
    missing = [f for f in _findings(repo, "--index") if f["kind"] == "flux-missing-decryption"]
    assert len(missing) == 1 and "apps/db.enc.env" in str(missing[0]["message"])
