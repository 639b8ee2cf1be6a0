"""`sopsflow flux age-secret`: the Secret Flux reads age keys from, and the
refusal to write it into a git work tree."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sopsflow.errors import SopsError
from sopsflow.gitops import flux

from .conftest import REPO, base_env, run_sops, run_sopsflow
from .gitfixtures import git, init_repo, sops_encrypt
from .vectors import AGE_RECIPIENT


@pytest.fixture()
def key_file(tmp_path: Path) -> tuple[Path, str]:
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    path = tmp_path / "cluster.agekey"
    path.write_text(f"# created: 2025-01-01T00:00:00Z\n# public key: {identity.to_public()}\n{identity}\n")
    return path, str(identity.to_public())


def test_manifest_is_the_secret_flux_expects(key_file: tuple[Path, str]) -> None:
    path, recipient = key_file
    done = run_sopsflow(["flux", "age-secret", "--key-file", str(path)])
    assert done.returncode == 0, done.stderr
    doc = yaml.safe_load(done.stdout)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "Secret" and doc["type"] == "Opaque"
    assert doc["metadata"] == {"name": "sops-age", "namespace": "flux-system"}
    assert list(doc["data"]) == ["age.agekey"]
    assert base64.b64decode(doc["data"]["age.agekey"]) == path.read_bytes()
    assert recipient in done.stdout.decode()  # the public key, in a comment
    assert b"PRIVATE" in done.stderr and b"never commit" in done.stderr
    assert b"AGE-SECRET-KEY" not in done.stderr


def test_name_namespace_and_data_key_options(key_file: tuple[Path, str]) -> None:
    path, _ = key_file
    done = run_sopsflow(["flux", "age-secret", "--key-file", str(path), "--namespace", "gitops",
                         "--name", "cluster-keys", "--data-key", "team.agekey"])
    assert done.returncode == 0, done.stderr
    doc = yaml.safe_load(done.stdout)
    assert doc["metadata"] == {"name": "cluster-keys", "namespace": "gitops"}
    assert list(doc["data"]) == ["team.agekey"]


def test_key_file_from_stdin(key_file: tuple[Path, str]) -> None:
    path, _ = key_file
    done = run_sopsflow(["flux", "age-secret", "--key-file", "-"], input=path.read_bytes())
    assert done.returncode == 0
    assert base64.b64decode(yaml.safe_load(done.stdout)["data"]["age.agekey"]) == path.read_bytes()


def test_the_secret_content_decrypts_what_sops_encrypted_for_the_cluster(key_file: tuple[Path, str],
                                                                          tmp_path: Path) -> None:
    """The decoded data key is a key file the real sops (same age parser as
    Flux) uses to decrypt a file encrypted for the cluster's recipient."""
    path, recipient = key_file
    secret = yaml.safe_load(run_sopsflow(["flux", "age-secret", "--key-file", str(path)]).stdout)
    decoded = tmp_path / "from-secret.agekey"
    decoded.write_bytes(base64.b64decode(secret["data"]["age.agekey"]))
    encrypted = tmp_path / "s.yaml"
    encrypted.write_bytes(sops_encrypt("s.yaml", "stringData:\n    token: t0k3n\n", recipients=recipient))
    done = run_sops(["decrypt", str(encrypted)], env=base_env(SOPS_AGE_KEY_FILE=str(decoded)))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"stringData:\n    token: t0k3n\n"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "holds no age identity"),
        ("# only a comment\n\n", "holds no age identity"),
        (AGE_RECIPIENT + "\n", "recipient (public key)"),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n", "not an age X25519 identity"),
        ("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n", "not a valid age identity"),
    ],
)
def test_refuses_key_files_flux_could_not_use(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.agekey"
    path.write_text(content)
    done = run_sopsflow(["flux", "age-secret", "--key-file", str(path)])
    assert done.returncode == 2, done.stderr
    assert needle.encode() in done.stderr
    assert done.stdout == b""
    assert b"AGE-SECRET-KEY-1QQQ" not in done.stderr  # never echoes key material


def test_missing_key_file() -> None:
    done = run_sopsflow(["flux", "age-secret", "--key-file", "/nonexistent/k.agekey"])
    assert done.returncode == 100


@pytest.mark.parametrize(("name", "namespace", "data_key"), [
    ("Sops-Age", "flux-system", "age.agekey"),
    ("sops-age", "flux_system", "age.agekey"),
    ("sops-age", "flux-system", "age.key"),
    ("sops-age", "flux-system", "bad/slash.agekey"),
])
def test_invalid_names(name: str, namespace: str, data_key: str) -> None:
    with pytest.raises(SopsError) as err:
        flux.check_names(name, namespace, data_key)
    assert err.value.code == 1


def test_output_outside_git_is_written_private(key_file: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = key_file
    target = tmp_path / "outside" / "sops-age.yaml"
    target.parent.mkdir()
    done = run_sopsflow(["flux", "age-secret", "--key-file", str(path), "--output", str(target)])
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    assert (target.stat().st_mode & 0o777) == 0o600
    assert base64.b64decode(yaml.safe_load(target.read_text())["data"]["age.agekey"]) == path.read_bytes()


def test_output_inside_a_git_work_tree_is_refused(key_file: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = key_file
    repo = init_repo(tmp_path / "repo", {"clusters/staging/kustomization.yaml": "resources: []\n"})
    target = repo / "clusters" / "staging" / "sops-age.yaml"
    done = run_sopsflow(["flux", "age-secret", "--key-file", str(path), "--output", "clusters/staging/sops-age.yaml"],
                        cwd=repo / ".")
    assert done.returncode == 3, done.stderr
    assert b"refusing to write a private key into the git work tree" in done.stderr
    assert not target.exists()
    # also through a symlink that leads into the work tree
    link = tmp_path / "link-dir"
    link.symlink_to(repo / "clusters")
    done = run_sopsflow(["flux", "age-secret", "--key-file", str(path), "--output", str(link / "sops-age.yaml")])
    assert done.returncode == 3
    assert not (repo / "clusters" / "sops-age.yaml").exists()


def test_stdout_redirected_into_a_git_work_tree_is_refused(key_file: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = key_file
    repo = init_repo(tmp_path / "repo", {"README.md": "fleet\n"})
    target = repo / "sops-age.yaml"
    env = dict(base_env())
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    with open(target, "wb") as handle:
        done = subprocess.run([sys.executable, "-m", "sopsflow", "flux", "age-secret", "--key-file", str(path)],
                              stdout=handle, stderr=subprocess.PIPE, env=env, timeout=60)
    assert done.returncode == 3
    assert b"stdout is" in done.stderr and b"created it empty" in done.stderr
    assert target.read_bytes() == b""
    assert git(repo, "status", "--porcelain").stdout == b"?? sops-age.yaml\n"
    # the same redirection outside any repository works
    outside = tmp_path / "plain-dir" / "sops-age.yaml"
    outside.parent.mkdir()
    with open(outside, "wb") as handle:
        done = subprocess.run([sys.executable, "-m", "sopsflow", "flux", "age-secret", "--key-file", str(path)],
                              stdout=handle, stderr=subprocess.PIPE, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert b"kind: Secret" in outside.read_bytes()


def test_git_work_tree_detection(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"a/b/c.txt": "x\n"})
    assert flux.git_work_tree(repo / "a" / "b") == repo
    assert flux.git_work_tree(repo / ".git" / "hooks") is not None
    assert flux.git_work_tree(tmp_path / "elsewhere") is None
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    assert flux.git_work_tree(bare / "refs") == bare
    # a linked work tree has a .git *file*
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked))
    assert (linked / ".git").is_file()
    assert flux.git_work_tree(linked / "a") == linked


def test_manifest_keys_pass_the_verify_flux_lint(key_file: tuple[Path, str]) -> None:
    """verify's flux-decryption-key-name check accepts what this helper makes."""
    from sopsflow.gitops.verify import _flux_key_ok

    path, _ = key_file
    doc = yaml.safe_load(flux.age_secret_manifest(path.read_bytes()))
    assert all(_flux_key_ok(k) for k in doc["data"])
