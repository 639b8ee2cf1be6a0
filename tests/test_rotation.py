"""`sopsflow rotate-recipient`: the staging cluster's Flux key of sample-repo/
replaced phase by phase, in a git copy of the sample.

At every phase each file the staging cluster deploys must decrypt with the
real sops binary using only the identities of the Secret printed for that
phase (the cluster's keys), and with those of the phase before (a cluster
not yet updated)."""

from __future__ import annotations

import base64
import shutil
import sys
from pathlib import Path

import pyrage
import pytest
import yaml

from sopsflow.gitops.rotate_recipient import Plan
from sopsflow.gitops.verify import verify

from .conftest import REPO, base_env, run_sops, run_sopsflow
from .gitfixtures import commit, git

sys.path.insert(0, str(REPO / "scripts"))

import make_sample_repo  # noqa: E402 - from scripts/, added above
import samplelib as lib  # noqa: E402

KEYS = lib.SAMPLE_DIR / lib.KEYS_SUBDIR
STAGING_DIRS = ("apps/staging/", "infrastructure/staging/")


def secret_identities(manifest: str, tmp: Path, name: str) -> Path:
    """The age key file inside a printed Secret, written where sops can read it."""
    doc = yaml.safe_load(manifest)
    assert doc["kind"] == "Secret" and doc["metadata"] == {"name": "sops-age", "namespace": "flux-system"}
    path = tmp / name
    path.write_bytes(base64.b64decode(doc["data"]["age.agekey"]))
    return path


class Fleet:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.repo = tmp / "fleet"
        shutil.copytree(lib.SAMPLE_DIR, self.repo, ignore=shutil.ignore_patterns(".git"))
        git(self.repo, "init", "-q", "-b", "main")
        git(self.repo, "add", "-A")
        commit(self.repo, "fleet")
        self.old_file = KEYS / lib.STAGING_FLUX
        self.old = lib.age_recipient(self.old_file)
        identity = pyrage.x25519.Identity.generate()
        self.new = str(identity.to_public())
        self.new_file = tmp / "new-flux.agekey"
        self.new_file.write_text(f"{identity}\n")
        # the operator: alice, staging on-call (a recipient of every staging file)
        self.env = base_env(SOPS_AGE_KEY_FILE=str(KEYS / lib.ALICE), CI="true")

    def staging_files(self) -> list[str]:
        files = [p.relative_to(self.repo).as_posix() for p in lib.sops_files(self.repo)]
        return [f for f in files if f.startswith(STAGING_DIRS)]

    def sopsflow(self, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> tuple[str, str]:
        done = run_sopsflow(["rotate-recipient", *args], cwd=self.repo, env=env or self.env)
        out, err = done.stdout.decode(), done.stderr.decode()
        assert done.returncode == expect, f"exit {done.returncode}\n{out}\n{err}"
        return out, err

    def assert_cluster_decrypts(self, *key_files: Path) -> None:
        for key_file in key_files:
            for rel in self.staging_files():
                done = run_sops(["decrypt", rel], cwd=self.repo,
                                env=base_env(SOPS_AGE_KEY_FILE=str(key_file)))
                assert done.returncode == 0, (rel, key_file.name, done.stderr)
                assert done.stdout.decode() == make_sample_repo.SECRETS[rel], rel

    def opens(self, rel: str, key_file: Path) -> bool:
        return run_sops(["decrypt", rel], cwd=self.repo, env=base_env(SOPS_AGE_KEY_FILE=str(key_file))).returncode == 0

    def commit_phase(self, message: str) -> None:
        git(self.repo, "add", "-A")
        commit(self.repo, message)
        result = verify(self.repo)
        assert [f for f in result.findings if f.severity == "error"] == [], message
        assert "clusters" in result.checks and "rotations" in result.checks

    def plan(self) -> Plan:
        (path,) = (self.repo / ".sopsflow" / "rotations").glob("*.yaml")
        return Plan.from_yaml(path.read_bytes(), path.name)


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return Fleet(tmp_path)


def test_full_rotation_of_the_staging_flux_key(fleet: Fleet) -> None:
    staging = fleet.staging_files()
    assert len(staging) == 6 and all(rel in make_sample_repo.SECRETS for rel in staging)
    before = fleet.old_file  # the cluster's Secret today: the old identity alone
    fleet.assert_cluster_decrypts(before)

    # 1. add NEW next to OLD and re-wrap: the cluster keeps its Secret
    out, _err = fleet.sopsflow(fleet.old, fleet.new)
    plan = fleet.plan()
    assert (plan.id, plan.cluster, plan.next_phase) == (f"staging-{fleet.new[4:12]}", "staging", "secret")
    assert sorted(plan.phases["add"]["files"]) == staging
    assert "The cluster keeps its current Secret" in out
    for rel in staging:
        assert fleet.old in (fleet.repo / rel).read_text() and fleet.new in (fleet.repo / rel).read_text()
        assert fleet.opens(rel, fleet.new_file)
    fleet.assert_cluster_decrypts(before, before)
    fleet.commit_phase("rotation: phase 1")
    # idempotent: phase 1 again changes nothing
    fleet.sopsflow("--id", plan.id, "--phase", "add")
    assert git(fleet.repo, "status", "--porcelain").stdout == b""

    # 2. the dual-key Secret
    out, err = fleet.sopsflow("--id", plan.id, "--key-file", str(fleet.old_file), "--key-file", str(fleet.new_file))
    dual = secret_identities(out, fleet.tmp, "phase2.agekey")
    assert {lib.age_recipient(fleet.old_file)} | {fleet.new} == set(_publics(dual))
    assert "PRIVATE" in err and "phase 2" in err
    fleet.assert_cluster_decrypts(dual, before)
    fleet.commit_phase("rotation: phase 2")

    # 3. the cluster confirms (no prompt: CI, no terminal)
    out, _err = fleet.sopsflow("--id", plan.id, "--confirm-cluster", "staging")
    assert fleet.plan().phases["confirm"]["cluster"] == "staging"
    settings = yaml.safe_load((fleet.repo / ".sopsflow.yaml").read_text())
    assert settings["clusters"]["staging"]["recipients"] == [fleet.old, fleet.new]
    fleet.assert_cluster_decrypts(dual, dual)
    fleet.commit_phase("rotation: phase 3")

    # 4. remove OLD, rotate the data keys, with the exposure report
    out, _err = fleet.sopsflow("--id", plan.id)
    assert f"Exposure: {fleet.old} could read these values" in out
    assert '["stringData"]["password"]' in out
    exposure = fleet.plan().phases["remove"]["exposure"]
    assert sorted(e["path"] for e in exposure) == staging
    assert fleet.old not in (fleet.repo / ".sops.yaml").read_text()
    for rel in staging:
        assert fleet.old not in (fleet.repo / rel).read_text()
        assert not fleet.opens(rel, fleet.old_file)
    fleet.assert_cluster_decrypts(dual, dual)
    fleet.commit_phase("rotation: phase 4")

    # 5. the final Secret: NEW alone
    out, _err = fleet.sopsflow("--id", plan.id, "--key-file", str(fleet.new_file))
    final = secret_identities(out, fleet.tmp, "phase5.agekey")
    assert _publics(final) == [fleet.new]
    fleet.assert_cluster_decrypts(final, dual)
    settings = yaml.safe_load((fleet.repo / ".sopsflow.yaml").read_text())
    assert settings["clusters"]["staging"]["recipients"] == [fleet.new]
    assert settings["clusters"]["staging"]["secrets"]["sops-age"] == [fleet.new]
    fleet.commit_phase("rotation: phase 5")
    assert fleet.plan().next_phase is None
    status, _err = fleet.sopsflow("--status")
    assert "5. final    done" in status and "is retired" in status

    # verify refuses a rule that lists the retired key again
    done = run_sopsflow(["recipients", "add", fleet.old, "--rule", "3"], cwd=fleet.repo, env=fleet.env)
    assert done.returncode == 0, done.stderr
    result = verify(fleet.repo, _worktree())
    retired = [f for f in result.findings if f.kind == "retired-recipient"]
    assert [(f.path, f.severity) for f in retired] == [(".sops.yaml", "error")]
    assert plan.id in retired[0].message and result.exit_code == 1


def test_phases_keep_their_order_and_resume(fleet: Fleet) -> None:
    fleet.sopsflow(fleet.old, fleet.new)
    plan_id = fleet.plan().id
    # the remove phase cannot run before the cluster confirmed
    _out, err = fleet.sopsflow("--id", plan_id, "--phase", "remove", expect=1)
    assert "'remove' comes after 'secret'" in err
    # a Secret without NEW's identity is refused, and nothing is recorded
    _out, err = fleet.sopsflow("--id", plan_id, "--key-file", str(fleet.old_file), expect=1)
    assert f"no identity for {fleet.new}" in err and fleet.plan().next_phase == "secret"
    fleet.sopsflow("--id", plan_id, "--key-file", str(fleet.old_file), "--key-file", str(fleet.new_file))
    _out, err = fleet.sopsflow("--id", plan_id, "--confirm-cluster", "production", expect=1)
    assert "is for cluster 'staging'" in err
    fleet.sopsflow("--id", plan_id, "--confirm-cluster", "staging")
    git(fleet.repo, "add", "-A")
    commit(fleet.repo, "phases 1-3")

    # phase 4 interrupted: the operator's key opens nothing, so no file is rotated
    nobody = fleet.tmp / "nobody.agekey"
    nobody.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    _out, err = fleet.sopsflow("--id", plan_id, expect=1, env=base_env(SOPS_AGE_KEY_FILE=str(nobody), CI="1"))
    assert "not updated (run the phase again" in err
    plan = fleet.plan()
    assert plan.retired and plan.next_phase == "remove"
    status, _err = fleet.sopsflow("--status")
    assert "in progress" in status
    # meanwhile verify names every file still encrypted for the retired key
    result = verify(fleet.repo, _worktree())
    flagged = sorted(f.path for f in result.findings if f.kind == "retired-recipient")
    assert flagged == fleet.staging_files() and result.exit_code == 1
    assert any(f"rotation {plan_id} in progress: phase 4 (remove)" in note for note in result.notes)

    # run again with a working key: it finishes
    out, _err = fleet.sopsflow("--id", plan_id)
    assert fleet.plan().done("remove")
    assert sorted(e["path"] for e in fleet.plan().phases["remove"]["exposure"]) == fleet.staging_files()
    assert "already in no rule" in out
    result = verify(fleet.repo, _worktree())
    assert [f for f in result.findings if f.severity == "error"] == []


def test_a_private_key_as_recipient_is_refused(fleet: Fleet) -> None:
    identity = str(pyrage.x25519.Identity.generate())
    _out, err = fleet.sopsflow(fleet.old, identity, expect=1)
    assert "private key" in err and identity[20:] not in err


def test_the_secret_is_never_written_into_the_work_tree(fleet: Fleet) -> None:
    fleet.sopsflow(fleet.old, fleet.new)
    target = fleet.repo / "sops-age.yaml"
    with open(target, "wb") as handle:
        import subprocess

        done = subprocess.run([sys.executable, "-m", "sopsflow", "rotate-recipient", "--key-file",
                               str(fleet.old_file), "--key-file", str(fleet.new_file)], cwd=fleet.repo,
                              env={**fleet.env, "PYTHONPATH": str(REPO)}, stdout=handle, stderr=subprocess.PIPE,
                              timeout=120)
    assert done.returncode == 3 and b"refusing to write a private key" in done.stderr
    assert target.read_bytes() == b"" and fleet.plan().next_phase == "secret"


def _publics(key_file: Path) -> list[str]:
    from sopsflow.gitops.flux import age_recipients

    return age_recipients(key_file.read_text())


def _worktree() -> object:
    from sopsflow.gitops.verify import VerifyOptions

    return VerifyOptions(source="worktree")
