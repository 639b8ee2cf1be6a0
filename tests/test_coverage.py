"""Cluster key coverage (`clusters:` of .sopsflow.yaml, checked by `sopsflow verify`).

Files are encrypted by the real sops through a `.sops.yaml`; the keyless
verdict is compared with what sops itself decrypts given the cluster's keys."""

from __future__ import annotations

from pathlib import Path

import pyrage
import pytest

from sopsflow.errors import SopsError
from sopsflow.gitops.coverage import evaluate, parse_clusters
from sopsflow.gitops.verify import verify

from .conftest import base_env, run_sops
from .gitfixtures import commit, git, init_repo, write

SECRET = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  token: hunter2-but-longer\n"


class Keys:
    def __init__(self, tmp: Path, names: list[str]) -> None:
        self.tmp = tmp
        self.identity = {n: pyrage.x25519.Identity.generate() for n in names}
        self.public = {n: str(i.to_public()) for n, i in self.identity.items()}

    def file(self, *names: str) -> Path:
        path = self.tmp / ("-".join(names) + ".agekey")
        path.write_text("".join(f"{self.identity[n]}\n" for n in names))
        return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Keys]:
    """A repository with a one-group file (key a) under apps/one/, a 2-of-3
    file (keys k1, k2, k3) under apps/shamir/, and a Flux Kustomization that
    applies apps/one with Secret sops-age."""
    tmp = tmp_path_factory.mktemp("coverage")
    keys = Keys(tmp, ["a", "b", "k1", "k2", "k3"])
    rules = f"""\
creation_rules:
  - path_regex: ^apps/one/
    encrypted_regex: ^(data|stringData)$
    age: {keys.public["a"]}
  - path_regex: ^apps/shamir/
    encrypted_regex: ^(data|stringData)$
    shamir_threshold: 2
    key_groups:
      - age: [{keys.public["k1"]}]
      - age: [{keys.public["k2"]}]
      - age: [{keys.public["k3"]}]
"""
    repo = init_repo(tmp / "repo", rules=rules, commit_message=None)
    for rel in ("apps/one/secret.yaml", "apps/shamir/secret.yaml"):
        write(repo, rel, SECRET)
        done = run_sops(["encrypt", "-i", rel], cwd=repo, env=base_env())
        assert done.returncode == 0, done.stderr
    write(repo, "clusters/one/apps.yaml", """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  path: ./apps/one
  sourceRef: {kind: GitRepository, name: flux-system}
  decryption:
    provider: sops
    secretRef:
      name: sops-age
""")
    git(repo, "add", "-A")
    commit(repo, "fleet")
    return repo, keys


def settings(repo: Path, text: str) -> None:
    write(repo, ".sopsflow.yaml", text)


def cluster_findings(repo: Path) -> list[tuple[str, str, str, str | None]]:
    result = verify(repo, _worktree())
    return [(f.kind, f.path, f.message, f.fix) for f in result.findings
            if f.kind.startswith(("cluster-", "flux-secret"))]


def _worktree() -> object:
    from sopsflow.gitops.verify import VerifyOptions

    return VerifyOptions(source="worktree")


def sops_opens(repo: Path, rel: str, key_file: Path) -> bool:
    done = run_sops(["decrypt", rel], cwd=repo, env=base_env(SOPS_AGE_KEY_FILE=str(key_file)))
    return done.returncode == 0


def test_a_file_encrypted_only_for_a_key_the_cluster_lacks_is_caught(fleet: tuple[Path, Keys]) -> None:
    repo, keys = fleet
    settings(repo, f"clusters:\n  one:\n    recipients: [{keys.public['b']}]\n    paths: [apps/one/]\n")
    found = cluster_findings(repo)
    assert [(k, p) for k, p, _m, _f in found] == [("cluster-cannot-decrypt", "apps/one/secret.yaml")]
    _kind, _path, message, fix = found[0]
    assert "cluster 'one'" in message and keys.public["a"] in message
    assert fix is not None and f"sopsflow recipients add {keys.public['b']} --rule 0" in fix
    assert "sopsflow updatekeys apps/one/secret.yaml" in fix
    assert verify(repo, _worktree()).exit_code == 1  # type: ignore[arg-type]
    # the real sops agrees: the cluster's key does not open the file
    assert not sops_opens(repo, "apps/one/secret.yaml", keys.file("b"))


def test_passes_when_the_cluster_holds_the_key(fleet: tuple[Path, Keys]) -> None:
    repo, keys = fleet
    settings(repo, f"clusters:\n  one:\n    recipients: [{keys.public['b']}, {keys.public['a']}]\n"
                   "    paths: [apps/one/]\n")
    assert cluster_findings(repo) == []
    assert sops_opens(repo, "apps/one/secret.yaml", keys.file("b", "a"))


def test_a_stale_file_whose_rule_names_the_cluster_key_is_fixed_by_updatekeys(fleet: tuple[Path, Keys]) -> None:
    repo, keys = fleet
    write(repo, "apps/one/stale.yaml", SECRET)
    done = run_sops(["encrypt", "-i", "--age", keys.public["b"], "apps/one/stale.yaml"], cwd=repo, env=base_env())
    assert done.returncode == 0, done.stderr
    git(repo, "add", "apps/one/stale.yaml")  # verify reads tracked files
    try:
        settings(repo, f"clusters:\n  one:\n    recipients: [{keys.public['a']}]\n    paths: [apps/one/]\n")
        found = cluster_findings(repo)
        assert [(k, p) for k, p, _m, _f in found] == [("cluster-cannot-decrypt", "apps/one/stale.yaml")]
        assert found[0][3] is not None and found[0][3].startswith("sopsflow updatekeys apps/one/stale.yaml")
    finally:
        git(repo, "rm", "-q", "-f", "apps/one/stale.yaml")


def test_two_of_three_with_one_share_is_caught(fleet: tuple[Path, Keys]) -> None:
    repo, keys = fleet
    settings(repo, f"clusters:\n  ca:\n    recipients: [{keys.public['k2']}, {keys.public['a']}]\n"
                   "    paths: [apps/shamir/**]\n")
    found = cluster_findings(repo)
    assert [(k, p) for k, p, _m, _f in found] == [("cluster-cannot-decrypt", "apps/shamir/secret.yaml")]
    message, fix = found[0][2], found[0][3]
    assert "opens 1 of 3 key groups, the file needs 2" in message
    assert keys.public["k1"] in message and keys.public["k3"] in message and keys.public["k2"] not in message
    assert fix is not None and "--group 1" in fix
    assert not sops_opens(repo, "apps/shamir/secret.yaml", keys.file("k2", "a"))


def test_two_of_three_with_two_shares_passes(fleet: tuple[Path, Keys]) -> None:
    repo, keys = fleet
    settings(repo, f"clusters:\n  ca:\n    recipients: [{keys.public['k1']}, {keys.public['k3']}]\n"
                   "    paths: [apps/shamir/**]\n")
    assert cluster_findings(repo) == []
    assert sops_opens(repo, "apps/shamir/secret.yaml", keys.file("k1", "k3"))


def test_kustomization_deploys_its_path(fleet: tuple[Path, Keys]) -> None:
    repo, keys = fleet
    settings(repo, f"clusters:\n  one:\n    recipients: [{keys.public['k1']}]\n"
                   "    kustomizations: [clusters/one/apps.yaml#apps]\n")
    found = cluster_findings(repo)
    # apps/one only: the Kustomization's spec.path, not apps/shamir
    assert [(k, p) for k, p, _m, _f in found] == [("cluster-cannot-decrypt", "apps/one/secret.yaml")]


def test_kustomization_follows_its_overlay_bases(fleet: tuple[Path, Keys]) -> None:
    """An overlay's kustomization.yaml pulling in ../shamir makes the cluster
    deploy that file too, though it lies outside spec.path."""
    repo, keys = fleet
    write(repo, "apps/one/kustomization.yaml", "resources:\n  - secret.yaml\n  - ../shamir\n")
    git(repo, "add", "apps/one/kustomization.yaml")
    try:
        settings(repo, f"clusters:\n  one:\n    recipients: [{keys.public['a']}]\n"
                       "    kustomizations: [clusters/one/apps.yaml]\n")
        found = cluster_findings(repo)
        assert [(k, p) for k, p, _m, _f in found] == [("cluster-cannot-decrypt", "apps/shamir/secret.yaml")]
    finally:
        git(repo, "rm", "-q", "-f", "apps/one/kustomization.yaml")


def test_kustomization_entry_that_names_nothing(fleet: tuple[Path, Keys]) -> None:
    repo, keys = fleet
    settings(repo, f"clusters:\n  one:\n    recipients: [{keys.public['a']}]\n"
                   "    kustomizations: [clusters/one/apps.yaml#nope]\n")
    found = cluster_findings(repo)
    assert [(k, p) for k, p, _m, _f in found] == [("cluster-config", ".sopsflow.yaml")]
    assert "'clusters/one/apps.yaml#nope'" in found[0][2]


def test_secret_ref_checked_against_the_secrets_public_half(fleet: tuple[Path, Keys]) -> None:
    repo, keys = fleet
    # The cluster as a whole holds a, but the Secret the Kustomization names holds only b.
    settings(repo, f"clusters:\n  one:\n    recipients: [{keys.public['a']}, {keys.public['b']}]\n"
                   "    kustomizations: [clusters/one/]\n"
                   f"    secrets:\n      sops-age: [{keys.public['b']}]\n")
    found = cluster_findings(repo)
    assert [(k, p) for k, p, _m, _f in found] == [("flux-secret-cannot-decrypt", "apps/one/secret.yaml")]
    assert "Secret 'sops-age'" in found[0][2] and "'apps'" in found[0][2]
    settings(repo, f"clusters:\n  one:\n    recipients: [{keys.public['a']}]\n"
                   "    kustomizations: [clusters/one/]\n"
                   f"    secrets:\n      sops-age: [{keys.public['a']}]\n")
    assert cluster_findings(repo) == []
    # a Secret the Kustomization does not use: its public half is unknown
    settings(repo, f"clusters:\n  one:\n    recipients: [{keys.public['a']}]\n"
                   "    kustomizations: [clusters/one/]\n"
                   f"    secrets:\n      other: [{keys.public['a']}]\n")
    assert [k for k, _p, _m, _f in cluster_findings(repo)] == ["flux-secret-unknown"]


def test_a_private_key_in_the_settings_is_refused_without_echo(fleet: tuple[Path, Keys]) -> None:
    repo, keys = fleet
    secret = str(keys.identity["a"])
    settings(repo, f"clusters:\n  one:\n    recipients: ['{secret}']\n    paths: [apps/]\n")
    with pytest.raises(SopsError) as caught:
        verify(repo, _worktree())  # type: ignore[arg-type]
    assert caught.value.code == 2
    assert "private key" in caught.value.message and secret[20:] not in caught.value.message


@pytest.mark.parametrize("body, problem", [
    ("clusters: [a]", "must map each cluster"),
    ("clusters:\n  x:\n    paths: [a/]\n", "at least one public key"),
    ("clusters:\n  x:\n    recipients: [age1zzzzzzzzzzzzzzzzzzzzzzzzzz]\n", "deploys nothing"),
    ("clusters:\n  x:\n    recipients: [hello]\n    paths: [a/]\n", "not a public key"),
    ("clusters:\n  x:\n    recipient: [age1zz]\n    paths: [a/]\n", "unknown key(s)"),
])
def test_malformed_clusters(body: str, problem: str) -> None:
    import yaml

    with pytest.raises(SopsError) as caught:
        parse_clusters(yaml.safe_load(body), ".sopsflow.yaml")
    assert problem in caught.value.message


def test_evaluate_follows_sops_thresholds() -> None:
    groups = [[("age", "x")], [("age", "y")], [("age", "z")]]
    assert evaluate(groups, 0, [("age", "x"), ("age", "y")]).ok is False  # 0 = every group
    assert evaluate(groups, 0, [("age", "x"), ("age", "y"), ("age", "z")]).ok
    assert evaluate(groups, 2, [("age", "z"), ("age", "x")]).ok
    assert evaluate([[("pgp", "E1A780104E35BB38BDABE4155A1C1E1FAD41735B")]], 0, [("pgp", "5A1C1E1FAD41735B")]).ok
    assert evaluate([[("kms", "arn:aws:kms:r:1:key/k")]], 0, [("kms", "arn:aws:kms:r:1:key/k")]).ok


class _Blob:
    def __init__(self, path: str, data: bytes) -> None:
        self.path, self.data, self.is_symlink = path, data, False


@pytest.mark.parametrize("held, caught", [
    (["arn:aws:kms:eu-west-1:123456789012:alias/sopsflow-sample-production"], True),
    (["arn:aws:kms:eu-west-1:123456789012:alias/sopsflow-sample-production",
      "age10wqacdhgeul3jc6rqax2krvm0vsuynekka9s6nwuful9sj4y43hq7r8qc3"], False),
    (["age1w428nqy8xgd6d2fqs27hnxedj62jcqzwj0pqenu4aj7a6se4lqgszwlp90",
      "age10wqacdhgeul3jc6rqax2krvm0vsuynekka9s6nwuful9sj4y43hq7r8qc3"], False),
])
def test_sample_root_ca_two_of_three_with_kms(held: list[str], caught: bool) -> None:
    """sample-repo's root CA: KMS, break-glass and officer in three groups, 2 needed."""
    from sopsflow.gitops.coverage import check

    from .conftest import REPO

    rel = "pki/production-root-ca.yaml"
    blob = _Blob(rel, (REPO / "sample-repo" / rel).read_bytes())
    clusters = parse_clusters({"clusters": {"ca": {"recipients": held, "paths": ["pki/"]}}}, ".sopsflow.yaml")
    found = check(clusters, [blob], [], ".sopsflow.yaml")
    assert [(p.kind, p.path) for p in found] == ([("cluster-cannot-decrypt", rel)] if caught else [])
    if caught:
        assert "opens 1 of 3 key groups, the file needs 2" in found[0].message
