"""`make demo`: run the walkthrough's steps (scripts/demo.py) one by one and
check, independently of the demo's own checks, that each did what it says:
git history, file contents, and what the real sops binary can decrypt."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from .conftest import REPO, base_env, run_sops

SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))

import make_sample_repo  # noqa: E402 - from scripts/, added above
import samplelib as lib  # noqa: E402


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sopsflow_demo_script", SCRIPTS / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo_mod = load_demo()


def git_out(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True,
                          env=base_env(GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1"))
    return done.stdout


def only_age(demo: Any, key_file: Path) -> dict[str, str]:
    """The age key and nothing else (no AWS, an empty GnuPG home)."""
    return demo_mod._only_key_env(demo, key_file)


def assert_verify_green(repo: Path) -> None:
    from sopsflow.gitops.verify import verify

    result = verify(repo)
    assert result.exit_code == 0
    assert [f for f in result.findings if f.severity == "error"] == []


def staging_files(repo: Path) -> list[str]:
    return [p.relative_to(repo).as_posix() for p in lib.sops_files(repo) if "/staging/" in p.as_posix()]


class Walkthrough:
    """Runs STEPS in order, keeping the printed output of each."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.demo = demo_mod.Demo(out=self.buffer, color=False)
        self.steps = {step.__name__: step for step in demo_mod.STEPS}

    def run(self, name: str) -> str:
        start = len(self.buffer.getvalue())
        self.steps[name](self.demo)
        return self.buffer.getvalue()[start:]


@pytest.fixture(scope="module")
def walk() -> Any:
    w = Walkthrough()
    yield w
    w.demo.close()


def test_steps_are_the_ones_the_issue_lists() -> None:
    assert [s.__name__ for s in demo_mod.STEPS] == [
        "step_setup", "step_rules", "step_verify", "step_decrypt", "step_hook", "step_add_member",
        "step_remove_member", "step_verify_again", "step_flux_secret", "step_coverage", "step_rotation",
        "step_publish",
    ]


def test_walkthrough(walk: Walkthrough) -> None:
    d = walk.demo
    repo: Path = d.repo

    out = walk.run("step_setup")
    assert git_out(repo, "rev-list", "--count", "HEAD").strip() == "1"
    assert "sopsflow-managed-hook" in (repo / ".git" / "hooks" / "pre-commit").read_text()
    assert git_out(repo, "status", "--porcelain") == ""
    # production now opens through the moto_server's KMS key, with no age key at all
    kms_only = {**only_age(d, d.work / "missing.agekey"), **d.moto.env()}
    done = run_sops(["decrypt", demo_mod.SHOWN_SECRET], env=kms_only, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout == make_sample_repo.SECRETS[demo_mod.SHOWN_SECRET].encode()
    assert "re-wrapped:" in out and d.moto.url in out

    out = walk.run("step_rules")
    assert "rule 3: MATCH" in out and "encrypted_regex" in out

    out = walk.run("step_verify")
    assert "OK verify is green" in out
    assert_verify_green(repo)

    out = walk.run("step_decrypt")
    assert make_sample_repo.SECRETS[demo_mod.SHOWN_SECRET] in out.replace("\n    ", "\n")
    assert "same bytes" in out

    head = git_out(repo, "rev-parse", "HEAD")
    out = walk.run("step_hook")
    assert "plaintext-secret" in out and "commit refused" in out
    log = git_out(repo, "log", "--format=%s").splitlines()
    assert log == ["billing: stripe webhook secret", "Flux fleet: production, staging, dev"]
    assert git_out(repo, "rev-parse", "HEAD~1") == head
    committed = git_out(repo, "show", f"HEAD:{demo_mod.NEW_SECRET}")
    assert demo_mod.NEW_SECRET_VALUE not in committed
    assert yaml.safe_load(committed)["metadata"]["name"] == "stripe-webhook"
    alice_env = only_age(d, d.alice_key)
    done = run_sops(["decrypt", demo_mod.NEW_SECRET], env=alice_env, cwd=repo)
    assert done.returncode == 0 and done.stdout.decode() == demo_mod.NEW_SECRET_TEXT

    plain_before = {rel: run_sops(["decrypt", rel], env=alice_env, cwd=repo).stdout for rel in staging_files(repo)}
    # the sample's six staging files (two in the Argo CD overlay) and the one just committed
    assert len(plain_before) == 7 and all(plain_before.values())
    out = walk.run("step_add_member")
    assert d.carol and d.carol in (repo / ".sops.yaml").read_text()
    carol_env = only_age(d, d.carol_key)
    for rel, plain in plain_before.items():
        done = run_sops(["decrypt", rel], env=carol_env, cwd=repo)
        assert done.returncode == 0 and done.stdout == plain, rel
    assert git_out(repo, "log", "-1", "--format=%s").strip() == "staging: add carol"
    assert "+" + d.carol in out

    out = walk.run("step_remove_member")
    assert d.alice not in (repo / ".sops.yaml").read_text()
    assert '["stringData"]["password"]' in out  # the values to change, as printed
    report = json.loads((d.work / "exposure.json").read_text())
    assert {f["path"] for f in report["files"]} == set(plain_before)
    assert all(f["removed_recipients"] == [d.alice] and f["data_key_rotated"] for f in report["files"])
    for rel, plain in plain_before.items():
        assert d.alice not in (repo / rel).read_text(), rel
        assert run_sops(["decrypt", rel], env=alice_env, cwd=repo).returncode == 128, rel
        done = run_sops(["decrypt", rel], env=carol_env, cwd=repo)
        assert done.returncode == 0 and done.stdout == plain, rel
    assert git_out(repo, "status", "--porcelain") == ""

    out = walk.run("step_verify_again")
    assert_verify_green(repo)
    assert "alice's key decrypts none of them" in out
    assert out.count("refused (exit 128)") == len(list(lib.sops_files(repo))) == 14
    for rel in (p.relative_to(repo).as_posix() for p in lib.sops_files(repo)):
        assert run_sops(["decrypt", rel], env=alice_env, cwd=repo).returncode == 128, rel

    out = walk.run("step_flux_secret")
    assert "age.agekey:" in out and "refusing to write a private key" in out
    assert not (repo / "clusters" / "staging" / "sops-age.yaml").exists()
    assert git_out(repo, "status", "--porcelain") == ""

    out = walk.run("step_coverage")
    assert "[cluster-cannot-decrypt]" in out and demo_mod.STRAY_SECRET in out and "cluster 'staging'" in out
    assert f"fix: sopsflow updatekeys {demo_mod.STRAY_SECRET}" in out
    assert git_out(repo, "log", "-1", "--format=%s").strip() == "billing: sentry token"
    flux_env = only_age(d, repo / demo_mod.FLUX_KEY)
    done = run_sops(["decrypt", demo_mod.STRAY_SECRET], env=flux_env, cwd=repo)
    assert done.returncode == 0 and done.stdout.decode() == demo_mod.STRAY_SECRET_TEXT
    assert_verify_green(repo)

    plain = {rel: run_sops(["decrypt", rel], env=flux_env, cwd=repo).stdout for rel in staging_files(repo)}
    out = walk.run("step_rotation")
    assert "phase 1 (add)" in out and "2. secret   NEXT" in out
    assert git_out(repo, "status", "--porcelain") == ""
    plans = git_out(repo, "ls-files", ".sopsflow/rotations").split()
    assert len(plans) == 1 and yaml.safe_load((repo / plans[0]).read_text())["cluster"] == "staging"
    for key_file in (repo / demo_mod.FLUX_KEY, d.new_flux_key):
        for rel, text in plain.items():
            done = run_sops(["decrypt", rel], env=only_age(d, key_file), cwd=repo)
            assert done.returncode == 0 and done.stdout == text, (rel, key_file)
    assert_verify_green(repo)


def _expected_values(rel: str) -> dict[str, str]:
    """The Secret keys and values a production file stands for, from its plaintext."""
    text = make_sample_repo.SECRETS[rel]
    if rel.endswith(".env"):
        return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    doc = yaml.safe_load(text)
    return {k: str(v) for k, v in doc["stringData"].items()}


def test_publish_step(walk: Walkthrough) -> None:
    """Secrets Manager holds one secret per production file, with one version
    after the second run; the committed ExternalSecrets validate against the
    ESO CRDs (when they are present) and resolve to the files' values."""
    from .test_publish_eso import resolve, validate
    from .vectors import ESO_SCHEMAS

    d = walk.demo
    if not (d.repo / ".git").is_dir():  # run alone (-k): the walkthrough's setup first
        walk.run("step_setup")
    out = walk.run("step_publish")
    assert "OK every secret still has one version" in out
    files = demo_mod._production_sops_files(d)
    assert len(files) == 4
    sm = lib_client(d)
    names = sorted(s["Name"] for s in sm.list_secrets()["SecretList"])
    assert names == sorted("fleet/" + rel.rsplit(".", 1)[0] for rel in files)
    assert all(len(sm.list_secret_version_ids(SecretId=n)["Versions"]) == 1 for n in names)
    assert git_out(d.repo, "status", "--porcelain") == ""
    eso = d.repo / demo_mod.ESO_DIR
    namespaces = set()
    checked = 0
    for path in eso.iterdir():
        store, external = yaml.safe_load_all(path.read_text())
        if ESO_SCHEMAS.is_dir():
            validate(store)
            validate(external)
        namespaces.add(external["metadata"].get("namespace", ""))
        source = external["metadata"]["annotations"]["sopsflow/source"]
        if source not in make_sample_repo.SECRETS:
            continue  # origin-tls.key: a binary file, not in the generator's table
        resolved = {item["secretKey"]: resolve(store, item["remoteRef"], None, lambda service, region: lib_client(d))
                    for item in external["spec"]["data"]}
        assert resolved == _expected_values(source), source
        checked += 1
    assert checked == 3 and namespaces == {"", "billing", "cert-manager"}


def lib_client(d: Any) -> Any:
    return demo_mod._secrets_manager(d)


def test_main_fails_and_cleans_up_when_a_step_misbehaves(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    made: list[Any] = []

    def broken(d: Any) -> None:
        made.append(d)
        (d.work / "marker").write_text("x")
        raise demo_mod.DemoFailure("this step lies")

    monkeypatch.setattr(demo_mod, "STEPS", [broken])
    assert demo_mod.main() == 1
    assert "demo step failed: this step lies" in capsys.readouterr().out
    assert not made[0].work.exists()


def test_demo_close_stops_moto(tmp_path: Path) -> None:
    d = demo_mod.Demo(out=io.StringIO(), color=False)
    d.moto.start()
    process = d.moto.process
    assert process is not None and process.poll() is None
    d.close()
    assert process.poll() is not None
    assert not d.work.exists()
