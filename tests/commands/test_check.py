"""`sopsflow check` end to end: real repositories, what is staged, exit codes
and the one-line-per-finding output."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.gitfixtures import (
    OTHER_RECIPIENT,
    commit,
    git,
    git_env,
    init_repo,
    run_check,
    sops_encrypt,
    stage,
    write,
)
from tests.vectors import AGE_RECIPIENT

PLAIN = "password: hunter2\nuser: admin\n"


@pytest.fixture(scope="module")
def enc() -> bytes:
    return sops_encrypt("db.yaml", PLAIN)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", {"README.md": "Set the database password with `sopsflow edit`.\n"})


def finding_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if not line.startswith("sopsflow check")]


def test_nothing_staged_is_fine(repo: Path) -> None:
    done = run_check(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "sopsflow check (index): 0 files checked, nothing refused"
    assert run_check(repo, "-q").stdout == ""


def test_plaintext_refused_encrypted_allowed(repo: Path, enc: bytes) -> None:
    write(repo, "secrets/db.yaml", PLAIN)
    write(repo, "secrets/ok.yaml", enc)
    write(repo, "docs/guide.md", "Never commit a password; rotate the secret token.\n")
    stage(repo, ".")
    done = run_check(repo)
    assert done.returncode == 1
    (line,) = finding_lines(done.stdout)
    assert line.startswith("secrets/db.yaml:1: error: not encrypted: creation_rules[0]")
    assert "[plaintext-secret] -- fix: sopsflow encrypt -i secrets/db.yaml (fp:" in line
    assert "hunter2" not in done.stdout
    summary = done.stdout.splitlines()[-1]
    assert summary.startswith("sopsflow check (index): 3 files checked, 1 refused (1 plaintext-secret)")
    assert "Commit refused" in summary
    git(repo, "rm", "-q", "--cached", "secrets/db.yaml")
    assert run_check(repo).returncode == 0


def test_index_is_judged_not_the_worktree(repo: Path, enc: bytes) -> None:
    # plaintext staged, then encrypted on disk without re-staging: refused
    write(repo, "secrets/db.yaml", PLAIN)
    stage(repo, "secrets/db.yaml")
    write(repo, "secrets/db.yaml", enc)
    assert run_check(repo).returncode == 1
    assert run_check(repo, "secrets/db.yaml").returncode == 1
    # encrypted staged, plaintext on disk: allowed (the plaintext is not committed)
    stage(repo, "secrets/db.yaml")
    write(repo, "secrets/db.yaml", PLAIN)
    done = run_check(repo)
    assert done.returncode == 0, done.stdout


def test_deletions_renames_and_forced_adds(repo: Path, enc: bytes) -> None:
    write(repo, "secrets/old.yaml", PLAIN)  # a plaintext file committed before the hook existed
    write(repo, "notes/db.yaml", PLAIN)
    write(repo, "secrets/enc.yaml", enc)
    git(repo, "add", "-A")
    commit(repo, "legacy")
    git(repo, "rm", "-q", "secrets/old.yaml")
    assert run_check(repo).returncode == 0  # deleting a plaintext secret is always allowed
    git(repo, "mv", "notes/db.yaml", "secrets/moved.yaml")
    done = run_check(repo)
    assert done.returncode == 1 and finding_lines(done.stdout)[0].startswith("secrets/moved.yaml:1:")
    git(repo, "mv", "secrets/moved.yaml", "notes/db.yaml")
    git(repo, "mv", "secrets/enc.yaml", "secrets/renamed.yaml")
    assert run_check(repo).returncode == 0
    write(repo, ".gitignore", ".env\n")
    write(repo, ".env", "DB_PASSWORD=hunter2\n")
    assert git(repo, "add", ".env", check=False).returncode != 0  # ignored...
    git(repo, "add", "-f", ".env")  # ...until forced
    done = run_check(repo)
    assert done.returncode == 1
    assert finding_lines(done.stdout)[0].startswith(".env:1: error: dotenv credential DB_PASSWORD outside every creation rule")


def test_symlink_at_rule_path(repo: Path, enc: bytes) -> None:
    write(repo, "vault/db.yaml", enc)
    (repo / "secrets").mkdir()
    os.symlink("../vault/db.yaml", repo / "secrets/db.yaml")
    os.symlink("../README.md", repo / "secrets/README-link")
    stage(repo, ".")
    done = run_check(repo)
    assert done.returncode == 1
    errors = [line for line in finding_lines(done.stdout) if ": error: " in line]
    assert [line.split(":")[0] for line in errors] == ["secrets/db.yaml"]
    assert "[symlink-at-rule-path]" in errors[0]
    assert "vault/db.yaml: warning: SOPS file that no creation rule of .sops.yaml matches" in done.stdout


def test_unicode_crlf_binary_and_large_files(repo: Path, enc: bytes) -> None:
    write(repo, "secrets/dépôt/ünï.yaml", PLAIN.replace("\n", "\r\n"))
    write(repo, "secrets/crlf-ok.yaml", enc.replace(b"\n", b"\r\n"))
    write(repo, "assets/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4000)
    write(repo, "blobs/big.bin", os.urandom(3 * 1024 * 1024))
    stage(repo, ".")
    done = run_check(repo)
    assert done.returncode == 1
    refused = sorted(line.split(":")[0] for line in finding_lines(done.stdout))
    assert refused == ["blobs/big.bin", "secrets/dépôt/ünï.yaml"]
    done = run_check(repo, "secrets/dépôt/ünï.yaml")
    assert done.returncode == 1 and "1 file checked" in done.stdout


def test_files_arguments_all_files_and_unstaged(repo: Path, enc: bytes) -> None:
    write(repo, "secrets/a.yaml", enc)
    write(repo, "secrets/b.yaml", PLAIN)
    stage(repo, "secrets/a.yaml")
    done = run_check(repo, "secrets/a.yaml", "secrets/b.yaml")
    assert done.returncode == 0  # b.yaml is not staged: nothing of it is committed
    assert "1 file checked" in done.stdout and "1 argument(s) not staged, skipped" in done.stdout
    stage(repo, "secrets/b.yaml")
    assert run_check(repo, "secrets").returncode == 1  # a directory covers what is staged below it
    commit(repo, "bypassed")
    assert run_check(repo).returncode == 0  # nothing staged any more...
    done = run_check(repo, "--all-files")  # ...but the index still holds it
    assert done.returncode == 1 and "4 files checked" in done.stdout
    sub = repo / "secrets"
    done = run_check(sub, "b.yaml")  # paths are relative to the cwd, reported relative to the root
    assert done.returncode == 1 and finding_lines(done.stdout)[0].startswith("secrets/b.yaml:1:")


def test_invalid_sops_yaml_fails_closed(repo: Path) -> None:
    write(repo, ".sops.yaml", "creation_rules:\n  - path_regex: ([unclosed\n    age: x\n")
    write(repo, "docs/x.md", "hello\n")
    stage(repo, ".")
    done = run_check(repo)
    assert done.returncode == 1
    (line,) = finding_lines(done.stdout)
    assert line.startswith(".sops.yaml: error: invalid config file") and "[invalid-config]" in line
    write(repo, ".sops.yaml", "creation_rules: [\n")
    stage(repo, ".sops.yaml")
    assert run_check(repo).returncode == 1


def test_staged_config_wins_over_the_worktree(repo: Path) -> None:
    # the rules that will be committed decide, not the ones being edited
    write(repo, ".sops.yaml", f"creation_rules:\n  - path_regex: ^private/\n    age: {AGE_RECIPIENT}\n")
    write(repo, "private/x.yaml", PLAIN)
    stage(repo, "private/x.yaml")
    assert run_check(repo).returncode == 0
    stage(repo, ".sops.yaml")
    assert run_check(repo).returncode == 1
    untracked = init_repo(repo.parent / "untracked-config", commit_message=None)
    write(untracked, "secrets/x.yaml", PLAIN)
    stage(untracked, "secrets/x.yaml")  # .sops.yaml itself never added: read from disk
    assert run_check(untracked).returncode == 1


def test_nested_sops_yaml(repo: Path) -> None:
    write(repo, "clusters/prod/.sops.yaml",
          f"creation_rules:\n  - path_regex: .*\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: {AGE_RECIPIENT}\n")
    write(repo, "clusters/prod/apps/secret.yaml", "kind: Secret\nstringData:\n  token: abc\n")
    write(repo, "clusters/prod/apps/deploy.yaml", "kind: Deployment\nmetadata:\n  name: web\n")
    write(repo, "clusters/dev/config.yaml", "password: dev\n")
    stage(repo, ".")
    done = run_check(repo)
    assert done.returncode == 1
    assert [line.split(":")[0] for line in finding_lines(done.stdout)] == ["clusters/prod/apps/secret.yaml"]
    assert "stringData.token" in done.stdout


def test_strict_flag_and_settings(repo: Path) -> None:
    stale = sops_encrypt("t.yaml", "a: b\n")  # the team rule also names OTHER_RECIPIENT
    write(repo, "team/t.yaml", stale)
    stage(repo, "team/t.yaml")
    loose = run_check(repo)
    assert loose.returncode == 0 and "team/t.yaml: warning: recipients differ" in loose.stdout
    strict = run_check(repo, "--strict")
    assert strict.returncode == 1
    (line,) = finding_lines(strict.stdout)
    assert f"+{OTHER_RECIPIENT}" in line
    assert re.search(r"-- fix: sopsflow updatekeys team/t\.yaml \(fp:[0-9a-f]{16}\)$", line)
    write(repo, ".sopsflow.yaml", "strict: true\n")
    stage(repo, ".sopsflow.yaml")
    assert run_check(repo).returncode == 1
    write(repo, "team/t.yaml", sops_encrypt("t.yaml", "a: b\n", recipients=f"{AGE_RECIPIENT},{OTHER_RECIPIENT}"))
    stage(repo, "team/t.yaml")
    assert run_check(repo).returncode == 0


def test_allow_list_shown_in_summary(repo: Path) -> None:
    write(repo, "docs/leaked.env", "DB_PASSWORD=hunter2\n")
    write(repo, "secrets/fixture.yaml", PLAIN)
    stage(repo, ".")
    done = run_check(repo)
    fp = re.search(r"secrets/fixture\.yaml.*\(fp:([0-9a-f]{16})\)", done.stdout)
    assert done.returncode == 1 and fp is not None
    write(repo, ".sopsflow.yaml", f"allow:\n  paths: [docs/]\n  fingerprints: ['{fp.group(1)}']\n")
    stage(repo, ".sopsflow.yaml")
    done = run_check(repo)
    assert done.returncode == 0, done.stdout
    summary = done.stdout.strip().splitlines()[-1]
    assert "allow-listed in .sopsflow.yaml: 2" in summary
    assert "docs/leaked.env leaked-secret by path docs/" in summary
    assert f"secrets/fixture.yaml plaintext-secret by fingerprint {fp.group(1)}" in summary
    write(repo, ".sopsflow.yaml", "allow:\n  path: [docs/]\n")  # a typo must not silently allow nothing
    stage(repo, ".sopsflow.yaml")
    done = run_check(repo)
    assert done.returncode == 1 and "unknown key(s) in `allow`: path" in done.stdout


def test_rev_and_pre_push_refs(repo: Path, enc: bytes) -> None:
    base = git(repo, "rev-parse", "HEAD").stdout.decode().strip()
    write(repo, "secrets/db.yaml", PLAIN)
    stage(repo, "secrets/db.yaml")
    commit(repo, "oops")  # --no-verify
    write(repo, "secrets/db.yaml", enc)
    stage(repo, "secrets/db.yaml")  # fixed in the index, but the commit being pushed is not
    assert run_check(repo).returncode == 0
    assert run_check(repo, "--rev", "HEAD", "secrets/db.yaml").returncode == 1
    env = git_env(PRE_COMMIT_FROM_REF=base, PRE_COMMIT_TO_REF="HEAD")
    done = run_check(repo, env=env)
    assert done.returncode == 1 and "(commit HEAD)" in done.stdout


def test_git_index_file_from_commit_dash_a(repo: Path) -> None:
    write(repo, "secrets/db.yaml", sops_encrypt("db.yaml", PLAIN))
    git(repo, "add", "-A")
    commit(repo, "encrypted")
    write(repo, "secrets/db.yaml", PLAIN)  # modified, not staged: `git commit -a` would take it
    alt = repo / ".git" / "index-commit-a"
    env = git_env(GIT_INDEX_FILE=str(alt))
    git(repo, "read-tree", "HEAD", env=env)
    git(repo, "add", "-u", env=env)
    assert run_check(repo).returncode == 0
    assert run_check(repo, env=env).returncode == 1


def test_not_a_repository(tmp_path: Path) -> None:
    done = run_check(tmp_path)
    assert done.returncode == 1 and "not inside a git repository" in done.stderr


def test_secrets_outside_rule_paths(repo: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from tests.vectors import AGE_IDENTITY_LINE, AGE_KEY_FILE

    ssh_key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    write(repo, "deploy/id_ed25519", ssh_key)
    write(repo, "keys/age.txt", AGE_KEY_FILE.read_bytes())
    write(repo, "apps/web/all.yaml", "kind: ConfigMap\ndata: {a: b}\n---\nkind: 'Secret'\nstringData:\n  pw: x1\n")
    write(repo, "apps/web/.env", "DATABASE_URL=postgres://app:s3cret@db/app\nDEBUG=1\n")
    write(repo, "apps/web/.env.example", "DATABASE_URL=postgres://app:password@db/app\nAPI_KEY=<your key>\n")
    write(repo, "docs/secrets.md", "# Secrets\nNever commit a password, token or -----BEGIN PRIVATE KEY----- block.\n")
    write(repo, "k8s/sealed.yaml", "kind: SealedSecret\nspec:\n  encryptedData:\n    pw: AgBy3i4OJSWK+PiTySYZZA==\n")
    stage(repo, ".")
    done = run_check(repo)
    assert done.returncode == 1
    errors = {line.split(":")[0]: line for line in finding_lines(done.stdout) if ": error: " in line}
    assert sorted(errors) == ["apps/web/.env", "apps/web/all.yaml", "deploy/id_ed25519", "keys/age.txt"]
    assert "apps/web/all.yaml:6:" in errors["apps/web/all.yaml"] and "(pw)" in errors["apps/web/all.yaml"]
    assert "OpenSSH private key" in errors["deploy/id_ed25519"]
    assert f"keys/age.txt:{AGE_IDENTITY_LINE}:" in errors["keys/age.txt"]
    assert "s3cret" not in done.stdout and "x1" not in done.stdout
