"""sample-repo/: the real sops binary decrypts every file with the shipped keys
(AWS KMS through a moto_server), sopsflow prints the same bytes, each
environment opens with its own keys only, and the repository passes its own
checks (verify --mac, updatekeys, check, the pre-commit config)."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, base_env, run_sops, run_sopsflow
from .gitfixtures import git
from .keys.fixtures import Moto, moto_server  # noqa: F401 - the session fixture, used by name

sys.path.insert(0, str(REPO / "scripts"))

import make_sample_repo  # noqa: E402 - from scripts/, added above
import samplelib as lib  # noqa: E402

SAMPLE = lib.SAMPLE_DIR
KEYS = SAMPLE / lib.KEYS_SUBDIR
ENVIRONMENTS = ("production", "staging", "dev")


def sample_sops_files(root: Path = SAMPLE) -> list[str]:
    return [p.relative_to(root).as_posix() for p in lib.sops_files(root)]


def environment_of(rel: str) -> str:
    if rel.startswith("pki/"):
        return "root-ca"
    return rel.split("/")[1]


# --- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Key files for every combination the tests need, and a GnuPG home with the dev key."""
    tmp = tmp_path_factory.mktemp("sample-keys")
    ring = {name: KEYS / name for name in lib.AGE_KEYS}
    ring["all-age"] = lib.write_key_file(tmp / "all.txt", *(p.read_text() for p in list(ring.values())))
    ring["custodians"] = lib.write_key_file(tmp / "custodians.txt", (KEYS / lib.BREAKGLASS).read_text(),
                                            (KEYS / lib.OFFICER).read_text())
    ring["gnupg"] = tmp / "gnupg"
    lib.import_pgp_key(ring["gnupg"], KEYS / lib.DEV_PGP)
    ring["gnupg-empty"] = tmp / "gnupg-empty"
    ring["gnupg-empty"].mkdir(mode=0o700)
    yield ring
    lib.stop_gpg_agent(ring["gnupg"])
    lib.stop_gpg_agent(ring["gnupg-empty"])


def key_env(keyring: dict[str, Path], age: str | None, *, pgp: bool = False, moto: Moto | None = None) -> dict[str, str]:
    """Only the keys named: an age key file (or none), the dev PGP key, AWS KMS."""
    env = base_env(GNUPGHOME=str(keyring["gnupg" if pgp else "gnupg-empty"]), AWS_EC2_METADATA_DISABLED="true")
    env = {k: v for k, v in env.items() if not k.startswith("AWS_") or k == "AWS_EC2_METADATA_DISABLED"}
    if age is not None:
        env["SOPS_AGE_KEY_FILE"] = str(keyring[age])
    if moto is not None:
        env.update(moto.env())
    return env


@pytest.fixture(scope="module")
def kms_copy(tmp_path_factory: pytest.TempPathFactory, moto_server: Moto,  # noqa: F811
             keyring: dict[str, Path]) -> Path:
    """A copy of sample-repo/ whose production files are re-wrapped for the
    moto_server's KMS key (scripts/make_sample_repo.py rewrap-kms)."""
    copy = tmp_path_factory.mktemp("kms") / "fleet"
    shutil.copytree(SAMPLE, copy)
    lib.ensure_kms_key(moto_server.url)
    env = key_env(keyring, "custodians", moto=moto_server)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "make_sample_repo.py"), "rewrap-kms", str(copy)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("re-wrapped") == 5, done.stdout
    return copy


@pytest.fixture()
def git_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "fleet"
    shutil.copytree(SAMPLE, copy)
    git(copy, "init", "-q", "-b", "main")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "--no-verify", "-m", "sample")
    return copy


# --- the layout the issue asks for ----------------------------------------------------


def test_layout_has_three_environments_and_every_format() -> None:
    for env in ENVIRONMENTS:
        assert (SAMPLE / "clusters" / env / "apps.yaml").is_file()
        assert (SAMPLE / "clusters" / env / "infrastructure.yaml").is_file()
        assert (SAMPLE / "apps" / env / "kustomization.yaml").is_file()
    files = sample_sops_files()
    stores = {make_sample_repo_store(rel) for rel in files}
    assert stores == {"yaml", "json", "dotenv", "ini", "binary"}
    assert {environment_of(rel) for rel in files} == {*ENVIRONMENTS, "root-ca"}
    # every source in the generator is in the sample, and nothing else is encrypted
    assert sorted(files) == sorted([*make_sample_repo.SECRETS, make_sample_repo.ORIGIN_KEY])


def make_sample_repo_store(rel: str) -> str:
    from sopsflow.stores import store_for_path

    return store_for_path(rel).name


def test_kubernetes_secrets_encrypt_only_data_and_stringdata() -> None:
    secrets = [rel for rel in sample_sops_files() if rel.endswith(".yaml") and not rel.startswith("pki/")]
    assert len(secrets) >= 5
    for rel in secrets:
        doc = yaml.safe_load((SAMPLE / rel).read_text())
        assert doc["kind"] == "Secret" and doc["apiVersion"] == "v1", rel
        assert "ENC[" not in yaml.safe_dump(doc["metadata"]), rel
        assert doc["sops"]["encrypted_regex"] == "^(data|stringData)$", rel
        assert all(str(v).startswith("ENC[AES256_GCM,") for v in doc["stringData"].values()), rel


def test_flux_kustomizations_decrypt_with_sops() -> None:
    seen = {}
    for path in sorted((SAMPLE / "clusters").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Kustomization" and "toolkit.fluxcd.io" in doc["apiVersion"]:
                seen[(path.parent.name, doc["metadata"]["name"])] = doc["spec"]
    for env in ENVIRONMENTS:
        for name in ("apps", "infrastructure"):
            spec = seen[(env, name)]
            assert spec["path"] == f"./{name}/{env}"
            assert spec["decryption"]["provider"] == "sops"
    # staging reads its age key from the Secret `flux age-secret` makes
    assert seen[("staging", "apps")]["decryption"]["secretRef"] == {"name": "sops-age"}
    assert seen[("staging", "infrastructure")]["decryption"]["secretRef"] == {"name": "sops-age"}
    assert seen[("dev", "apps")]["decryption"]["secretRef"] == {"name": "sops-gpg"}


def test_creation_rules_per_environment() -> None:
    from sopsflow.config.decoder import load_config

    config = load_config(SAMPLE / ".sops.yaml")
    recipient = {name: lib.age_recipient(KEYS / name) for name in lib.AGE_KEYS}

    def groups(rel: str) -> tuple[list[list[tuple[str, str]]], int]:
        rule = config.match(str(SAMPLE / rel))
        assert rule is not None, rel
        specs = [sorted((s.type_name, s.identity()) for s in group) for group in rule.key_specs()]
        return specs, rule.shamir_threshold

    production = ([[("age", recipient[lib.BREAKGLASS]), ("kms", lib.KMS_ARN)]], 0)
    for rel in ("apps/production/db-credentials.yaml", "apps/production/billing-api.env",
                "infrastructure/production/origin-tls.key"):
        assert groups(rel) == production
    assert groups("pki/production-root-ca.yaml") == (
        [[("kms", lib.KMS_ARN)], [("age", recipient[lib.BREAKGLASS])], [("age", recipient[lib.OFFICER])]], 2)
    staging = [sorted([("age", recipient[lib.STAGING_FLUX]), ("age", recipient[lib.ALICE])])]
    assert groups("infrastructure/staging/grafana.ini") == (staging, 0)
    assert groups("apps/staging/db-credentials.yaml") == (staging, 0)
    dev_specs, _ = groups("apps/dev/registry-auth.json")
    assert [t for t, _ in dev_specs[0]] == ["pgp"]


def test_sopsflow_settings_have_a_rotation_policy() -> None:
    from sopsflow.gitops.policy import load_policy
    from sopsflow.gitops.settings import load_settings

    policy = load_policy(SAMPLE)
    rule = policy.rotation_rule("apps/production/db-credentials.yaml")
    assert rule is not None and rule.max_age_days == 90
    assert policy.rotation_rule("apps/staging/billing-api.env") is not None
    settings = load_settings(SAMPLE)
    assert settings.allows_path("keys/staging-alice.agekey")
    assert not settings.allows_path("apps/keys/x.agekey")


def test_keys_readme_says_loudly_they_are_test_keys() -> None:
    text = (KEYS / "README.md").read_text()
    assert "TEST KEYS" in text.splitlines()[0]
    assert "NEVER USE THEM FOR ANYTHING REAL" in text
    for name in (*lib.AGE_KEYS, lib.DEV_PGP):
        assert name in text
        assert "TEST KEY" in (KEYS / name).read_text().splitlines()[0]


# --- decryption with the shipped keys -----------------------------------------------------


def test_sops_decrypts_every_file_and_sopsflow_prints_the_same_bytes(keyring: dict[str, Path]) -> None:
    """The committed files, no KMS: the age keys (two custodians for the root
    CA) and the dev PGP key open everything; the plaintext is the generator's."""
    env = key_env(keyring, "all-age", pgp=True)
    files = sample_sops_files()
    assert len(files) == 13
    for rel in files:
        theirs = run_sops(["decrypt", rel], env=env, cwd=SAMPLE)
        assert theirs.returncode == 0, (rel, theirs.stderr)
        ours = run_sopsflow(["decrypt", rel], env=env, cwd=SAMPLE)
        assert ours.returncode == 0, (rel, ours.stderr)
        assert ours.stdout == theirs.stdout, rel
        expected = make_sample_repo.SECRETS.get(rel)
        if expected is not None:
            assert theirs.stdout == expected.encode(), rel
        else:
            assert theirs.stdout.startswith(b"-----BEGIN PRIVATE KEY-----"), rel


@pytest.mark.parametrize(
    ("age", "pgp", "opens"),
    [
        (lib.BREAKGLASS, False, {"production"}),
        ("custodians", False, {"production", "root-ca"}),
        (lib.OFFICER, False, set()),
        (lib.STAGING_FLUX, False, {"staging"}),
        (lib.ALICE, False, {"staging"}),
        (None, True, {"dev"}),
    ],
)
def test_each_key_opens_exactly_its_environments(keyring: dict[str, Path], age: str | None, pgp: bool,
                                                 opens: set[str]) -> None:
    env = key_env(keyring, age, pgp=pgp)
    for rel in sample_sops_files():
        done = run_sops(["decrypt", rel], env=env, cwd=SAMPLE)
        expected = 0 if environment_of(rel) in opens else 128
        assert done.returncode == expected, (rel, done.stderr[-300:])


def test_kms_decrypts_production_after_rewrap(kms_copy: Path, moto_server: Moto,  # noqa: F811
                                              keyring: dict[str, Path]) -> None:
    """Through moto's KMS and no age key at all; the root CA needs a second share."""
    kms_only = key_env(keyring, None, moto=moto_server)
    production = [rel for rel in sample_sops_files(kms_copy) if environment_of(rel) == "production"]
    assert len(production) == 4
    for rel in production:
        theirs = run_sops(["decrypt", rel], env=kms_only, cwd=kms_copy)
        assert theirs.returncode == 0, (rel, theirs.stderr)
        ours = run_sopsflow(["decrypt", rel], env=kms_only, cwd=kms_copy)
        assert ours.returncode == 0 and ours.stdout == theirs.stdout, rel
    root_ca = "pki/production-root-ca.yaml"
    assert run_sops(["decrypt", root_ca], env=kms_only, cwd=kms_copy).returncode == 128
    kms_and_officer = key_env(keyring, lib.OFFICER, moto=moto_server)
    theirs = run_sops(["decrypt", root_ca], env=kms_and_officer, cwd=kms_copy)
    assert theirs.returncode == 0 and theirs.stdout == make_sample_repo.ROOT_CA.encode()
    ours = run_sopsflow(["decrypt", root_ca], env=kms_and_officer, cwd=kms_copy)
    assert ours.stdout == theirs.stdout


def test_committed_kms_wrap_is_dead_without_rewrap(moto_server: Moto, keyring: dict[str, Path]) -> None:  # noqa: F811
    """Why the re-wrap exists: moto's key material is random per server."""
    lib.ensure_kms_key(moto_server.url)
    done = run_sops(["decrypt", "apps/production/db-credentials.yaml"],
                    env=key_env(keyring, None, moto=moto_server), cwd=SAMPLE)
    assert done.returncode == 128


def test_rewrap_changes_only_the_master_keys(kms_copy: Path) -> None:
    from sopsflow.stores import store_for_path

    changed = 0
    for rel in sample_sops_files():
        before, after = (SAMPLE / rel).read_bytes(), (kms_copy / rel).read_bytes()
        if "kms" not in before.decode():
            assert before == after, rel
            continue
        store = store_for_path(rel)
        old_tree, old_meta = store.load_encrypted(before)
        new_tree, new_meta = store.load_encrypted(after)
        assert old_meta is not None and new_meta is not None
        assert new_tree == old_tree, rel
        for field in ("mac", "lastmodified", "version"):
            assert new_meta[field] == old_meta[field], (rel, field)
        assert _kms_enc(new_meta) != _kms_enc(old_meta), rel
        changed += 1
    assert changed == 5


def _kms_enc(meta: dict[str, object]) -> str:
    groups = meta.get("key_groups") or [meta]
    assert isinstance(groups, list)
    return "".join(str(k.get("enc")) for g in groups for k in (g.get("kms") or []))


# --- the repository passes its own checks --------------------------------------------------


def test_verify_mac_is_clean_with_every_key(kms_copy: Path, moto_server: Moto,  # noqa: F811
                                            keyring: dict[str, Path]) -> None:
    git(kms_copy, "init", "-q", "-b", "main")
    git(kms_copy, "add", "-A")
    git(kms_copy, "commit", "-q", "--no-verify", "-m", "sample")
    env = key_env(keyring, "all-age", pgp=True, moto=moto_server)
    done = run_sopsflow(["verify", "--mac"], env=env, cwd=kms_copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"0 errors, 0 warnings" in done.stdout, done.stdout


def test_rotation_policy_reports_old_data_keys(git_copy: Path) -> None:
    from sopsflow.gitops.verify import VerifyOptions, parse_rfc3339, verify

    stamp = yaml.safe_load((git_copy / "apps/production/db-credentials.yaml").read_text())["sops"]["lastmodified"]
    made = parse_rfc3339(stamp)
    assert made is not None
    fresh = verify(git_copy, VerifyOptions(now=made + datetime.timedelta(days=30)))
    assert fresh.exit_code == 0 and not fresh.findings
    aged = verify(git_copy, VerifyOptions(now=made + datetime.timedelta(days=120)))
    rotation = {f.path for f in aged.findings if f.kind == "rotation-age"}
    # production and pki (90 days) are due; staging and dev (180 days) are not yet
    assert rotation == {rel for rel in sample_sops_files(git_copy) if environment_of(rel) in ("production", "root-ca")}
    assert aged.exit_code == 0  # warnings: verify stays green


def test_updatekeys_and_check_find_nothing_to_do(git_copy: Path) -> None:
    env = base_env()
    plan = run_sopsflow(["updatekeys", "--dry-run"], env=env, cwd=git_copy)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert b"0 to update" in plan.stdout
    check = run_sopsflow(["check", "--all-files"], env=env, cwd=git_copy)
    assert check.returncode == 0, check.stdout + check.stderr


def test_pre_commit_config_runs_the_check(git_copy: Path, tmp_path: Path) -> None:
    """`pre-commit run` with the sample's config: green on the sample, red on a
    staged plaintext Secret."""
    pre_commit = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "sopsflow"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m sopsflow "$@"\n')
    shim.chmod(0o755)
    env = base_env(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-cache"),
                   PATH=f"{shim_dir}{os.pathsep}{os.environ['PATH']}",
                   PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    clean = subprocess.run([pre_commit, "run", "--all-files"], cwd=git_copy, env=env, capture_output=True,
                           timeout=300)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert b"sopsflow check" in clean.stdout and b"Passed" in clean.stdout
    (git_copy / "apps/staging/leak.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak\nstringData:\n  token: hunter2-plaintext\n"
    )
    git(git_copy, "add", "apps/staging/leak.yaml")
    dirty = subprocess.run([pre_commit, "run", "sopsflow-check"], cwd=git_copy, env=env, capture_output=True,
                           timeout=300)
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    assert b"plaintext-secret" in dirty.stdout
    assert b"hunter2-plaintext" not in dirty.stdout + dirty.stderr


def test_generator_sources_match_the_layout_sops_writes() -> None:
    """make_sample_repo.py keeps its plaintext in sops' output layout (its
    build checks decrypt == source); here: every source is at a rule path
    and would be refused by the hook in plaintext."""
    from sopsflow.config.decoder import load_config
    from sopsflow.gitops.check import audit_file
    from sopsflow.gitops.settings import AuditSettings

    config = load_config(SAMPLE / ".sops.yaml")
    for rel, text in make_sample_repo.SECRETS.items():
        audit = audit_file(rel, text.encode(), config=config, settings=AuditSettings(), repo_root=SAMPLE)
        assert audit.status == "plaintext" and audit.refused, rel


# --- the generator ------------------------------------------------------------------------


def test_committed_sops_yaml_is_what_the_generator_renders(keyring: dict[str, Path]) -> None:
    rendered = make_sample_repo.render_sops_yaml(KEYS, lib.pgp_fingerprint(keyring["gnupg"]))
    assert rendered == (SAMPLE / ".sops.yaml").read_text()


@pytest.mark.slow
def test_generator_rebuilds_the_sample(tmp_path: Path, keyring: dict[str, Path]) -> None:
    """scripts/make_sample_repo.py on a copy: new ciphertext for every secret,
    everything hand-written (and the keys) untouched, sources decrypt back."""
    copy = tmp_path / "sample"
    shutil.copytree(SAMPLE, copy)
    env = base_env(PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "make_sample_repo.py"), "--dest", str(copy)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    secrets = set(sample_sops_files())
    cert = make_sample_repo.ORIGIN_CERT
    for path in sorted(SAMPLE.rglob("*")):
        rel = path.relative_to(SAMPLE).as_posix()
        if not path.is_file():
            continue
        if rel in secrets or rel == cert:
            assert (copy / rel).read_bytes() != path.read_bytes(), rel
        else:
            assert (copy / rel).read_bytes() == path.read_bytes(), rel
    env = key_env(keyring, "all-age", pgp=True)
    for rel, text in make_sample_repo.SECRETS.items():
        decrypted = run_sops(["decrypt", rel], env=env, cwd=copy)
        assert decrypted.returncode == 0 and decrypted.stdout == text.encode(), rel
