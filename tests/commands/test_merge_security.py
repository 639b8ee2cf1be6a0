"""Merges never hand a file to someone its rule does not name.

Each attack is played end to end on real git repositories with the real
drivers and hooks installed (`sopsflow install-hooks --drivers`), and the
outcome is read back with the real sops binary:

* (a) an outsider, holding no private key, re-encrypts `secrets/app.yaml` on a
  branch for the team key plus their own (public keys are enough);
* (b) a member removed on main (updatekeys rotated the data key) runs an
  ordinary `sopsflow rotate -i` on a branch forked before;
* the same branch (a) merged as a hosted merge button does (no driver, no
  hook): `verify --since` must fail, and the local pre-merge-commit hook
  refuses it;
* theirs changing the rule of the file stops the merge with a conflict naming
  the change;
* `git diff` through textconv shows recipient changes and metadata-only changes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import base_env, run_sops
from tests.gitfixtures import commit, git, git_env, init_repo, sops_encrypt, write
from tests.vectors import AGE_KEY_FILE, AGE_RECIPIENT

NAME = "secrets/app.yaml"
PLAIN = "db:\n    user: admin\n    password: base-pw\napi: k1\n"


def sopsflow(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "sopsflow", *args], cwd=repo, env=env or git_env(),
                          capture_output=True, timeout=120)


def ok(done: subprocess.CompletedProcess[bytes]) -> bytes:
    assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")
    return done.stdout


def rules(*recipients: str) -> str:
    return f"creation_rules:\n  - path_regex: ^secrets/\n    age: {','.join(recipients)}\n"


def make_repo(path: Path, *recipients: str) -> Path:
    """A repository whose rule names ``recipients`` (the vectors' key first),
    with secrets/app.yaml encrypted for them, hooks and drivers installed."""
    recipients = recipients or (AGE_RECIPIENT,)
    repo = init_repo(path, {NAME: sops_encrypt("app.yaml", PLAIN, recipients=",".join(recipients))},
                     rules=rules(*recipients))
    ok(sopsflow(repo, "install-hooks", "--drivers"))
    git(repo, "add", ".gitattributes")
    commit(repo, "drivers")
    return repo


def reads(repo: Path, key_file: Path, rev: str | None = None) -> str | None:
    """What the real sops decrypts from NAME (work tree, or at ``rev``) with
    only ``key_file``; None when it cannot."""
    if rev is not None:
        (repo / "at-rev.yaml").write_bytes(git(repo, "show", f"{rev}:{NAME}").stdout)
    done = run_sops(["decrypt", "at-rev.yaml" if rev else NAME], cwd=repo,
                    env=base_env(SOPS_AGE_KEY_FILE=str(key_file)))
    if rev is not None:
        (repo / "at-rev.yaml").unlink()
    return done.stdout.decode() if done.returncode == 0 else None


def attack_a_branch(repo: Path, attacker: str) -> None:
    """Branch `evil`: secrets/app.yaml re-encrypted with the real sops for the
    team key plus the attacker's, without any private key."""
    git(repo, "checkout", "-q", "-b", "evil", "main")
    write(repo, NAME, "db:\n    user: admin\n")
    no_key = {k: v for k, v in base_env().items() if k != "SOPS_AGE_KEY_FILE"}
    done = run_sops(["encrypt", "-i", "--age", f"{AGE_RECIPIENT},{attacker}", NAME], cwd=repo, env=no_key)
    assert done.returncode == 0, done.stderr
    git(repo, "add", NAME)
    commit(repo, "evil: tidy up app.yaml")  # the attacker's clone has no hooks
    git(repo, "checkout", "-q", "main")


# --- (a) an outsider re-encrypts for their own key ---------------------------------------------


def test_attack_a_outsider_key_never_gets_main_secrets(tmp_path: Path, second_key: tuple[str, Path]) -> None:
    attacker, attacker_key = second_key
    repo = make_repo(tmp_path / "repo")
    attack_a_branch(repo, attacker)
    # main moves on: a secret added after the branch was forked
    ok(sopsflow(repo, "set", NAME, '["added_after_fork"]', '"main-secret-after-fork"'))
    git(repo, "commit", "-q", "-am", "main: new secret")
    done = git(repo, "merge", "--no-edit", "evil", check=False)
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, output
    assert reads(repo, attacker_key) is None
    assert attacker not in (repo / NAME).read_text()
    assert "not adopted" in output and f"does not name ({attacker})" in output
    team = reads(repo, AGE_KEY_FILE)
    assert team is not None and "added_after_fork: main-secret-after-fork" in team
    # the merge commit passes the repository's own check
    ok(sopsflow(repo, "verify"))


# --- (b) a removed member rotates an old branch ------------------------------------------------


def test_attack_b_removed_member_never_comes_back(tmp_path: Path, second_key: tuple[str, Path]) -> None:
    member, member_key = second_key
    repo = make_repo(tmp_path / "repo", AGE_RECIPIENT, member)
    git(repo, "branch", "old", "main")
    # main removes the member; updatekeys rotates the data key; a new password follows
    write(repo, ".sops.yaml", rules(AGE_RECIPIENT))
    out = ok(sopsflow(repo, "updatekeys", "-y", NAME)) + b""
    assert reads(repo, member_key) is None, out
    ok(sopsflow(repo, "set", NAME, '["db"]["password"]', '"set-after-member-left"'))
    git(repo, "commit", "-q", "-am", "main: remove the member, new password")
    # the member, on the old branch, runs an ordinary rotate with their own key
    git(repo, "checkout", "-q", "old")
    ok(sopsflow(repo, "rotate", "-i", NAME, env=git_env(SOPS_AGE_KEY_FILE=str(member_key))))
    git(repo, "commit", "-q", "-am", "old: rotate")
    git(repo, "checkout", "-q", "main")
    done = git(repo, "merge", "--no-edit", "old", check=False)
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, output
    assert member not in (repo / NAME).read_text()
    assert reads(repo, member_key) is None
    team = reads(repo, AGE_KEY_FILE)
    assert team is not None and "password: set-after-member-left" in team


# --- a hosted merge: no driver, no hook -------------------------------------------------------


def test_hosted_merge_of_attack_a_fails_verify_and_the_local_merge_hook(tmp_path: Path,
                                                                        second_key: tuple[str, Path]) -> None:
    attacker, _attacker_key = second_key
    repo = make_repo(tmp_path / "repo")
    attack_a_branch(repo, attacker)
    write(repo, "README.md", "unrelated change on main\n")
    git(repo, "add", "README.md")
    commit(repo, "main: docs")
    before = git(repo, "rev-parse", "main").stdout.decode().strip()
    # A clone has neither the driver configuration nor the hooks (as a hosting
    # service merging a pull request): git's text merge takes theirs' file.
    hosted = tmp_path / "hosted"
    git(tmp_path, "clone", "-q", str(repo), str(hosted))
    assert git(hosted, "config", "--get", "merge.sopsflow.driver", check=False).returncode != 0
    git(hosted, "merge", "--no-edit", "origin/evil")
    assert attacker in (hosted / NAME).read_text()
    done = sopsflow(hosted, "verify", "--since", before)
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 1, output
    assert any(NAME in line and "recipients-outside-rule" in line and attacker in line
               for line in output.splitlines()), output
    # A clone with the hooks (no drivers): the merge commit is refused
    local = tmp_path / "local"
    git(tmp_path, "clone", "-q", str(repo), str(local))
    ok(sopsflow(local, "install-hooks"))
    assert (local / ".git" / "hooks" / "pre-merge-commit").exists()
    refused = git(local, "merge", "--no-edit", "origin/evil", check=False)
    assert refused.returncode != 0
    assert attacker in (refused.stdout + refused.stderr).decode()
    assert git(local, "rev-parse", "HEAD").stdout.decode().strip() == before  # no merge commit


# --- theirs changes the rule ------------------------------------------------------------------


def test_theirs_changing_the_rule_stops_with_a_conflict_naming_it(tmp_path: Path,
                                                                 second_key: tuple[str, Path]) -> None:
    newcomer, newcomer_key = second_key
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "onboard", "main")
    write(repo, ".sops.yaml", rules(AGE_RECIPIENT, newcomer))
    ok(sopsflow(repo, "updatekeys", "-y", NAME))
    ok(sopsflow(repo, "set", NAME, '["api"]', '"k2"'))
    git(repo, "commit", "-q", "-am", "onboard the newcomer")
    git(repo, "checkout", "-q", "main")
    ok(sopsflow(repo, "set", NAME, '["db"]["user"]', '"root"'))
    git(repo, "commit", "-q", "-am", "main: edit")
    done = git(repo, "merge", "--no-edit", "onboard", check=False)
    output = (done.stdout + done.stderr).decode()
    assert done.returncode != 0
    assert "theirs changes the creation rule of .sops.yaml for this file" in output and f"+{newcomer}" in output
    assert "sopsflow updatekeys -y secrets/app.yaml" in output
    # the merged values are in place, for ours' recipients only
    assert newcomer not in (repo / NAME).read_text() and reads(repo, newcomer_key) is None
    team = reads(repo, AGE_KEY_FILE)
    assert team is not None and "user: root" in team and "api: k2" in team
    assert newcomer in (repo / ".sops.yaml").read_text()  # git merged the rule change itself
    # the printed resolution: apply the merged rule, mark resolved, commit
    ok(sopsflow(repo, "updatekeys", "-y", NAME))
    git(repo, "add", NAME)
    git(repo, "commit", "-q", "--no-edit")
    newcomer_sees = reads(repo, newcomer_key)
    assert newcomer_sees is not None and "api: k2" in newcomer_sees and "user: root" in newcomer_sees


# --- textconv shows who can read ---------------------------------------------------------------


def test_git_diff_shows_recipient_and_metadata_only_changes(tmp_path: Path, second_key: tuple[str, Path]) -> None:
    recipient, _key_file = second_key
    repo = make_repo(tmp_path / "repo")
    ok(sopsflow(repo, "rotate", "-i", "--add-age", recipient, NAME))
    diff = git(repo, "diff", "--", NAME).stdout.decode()
    assert f"+# sops: group 1: age {recipient}\n" in diff
    assert "ENC[" not in diff
    git(repo, "checkout", "--", NAME)
    # a new data key for the same recipients: no value and no recipient changes
    ok(sopsflow(repo, "rotate", "-i", NAME))
    diff = git(repo, "diff", "--", NAME).stdout.decode()
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed and all(line[1:].startswith("# sops: ") for line in changed)
    assert any(line.startswith("+# sops: metadata sha256: ") for line in changed)


@pytest.mark.parametrize("allow", [False, True])
def test_an_extra_recipient_is_refused_by_check_unless_allow_listed(tmp_path: Path, second_key: tuple[str, Path],
                                                                    allow: bool) -> None:
    recipient, _key_file = second_key
    repo = make_repo(tmp_path / "repo")
    if allow:
        write(repo, ".sopsflow.yaml", f"allow:\n  recipients:\n    - path: {NAME}\n      keys: [{recipient}]\n"
                                      "      reason: break-glass key\n")
    ok(sopsflow(repo, "rotate", "-i", "--add-age", recipient, NAME))
    git(repo, "add", "-A")
    done = sopsflow(repo, "check")
    output = (done.stdout + done.stderr).decode()
    if allow:
        assert done.returncode == 0, output
        assert "recipients-outside-rule" not in output and "does not name" not in output
    else:
        assert done.returncode == 1, output
        assert f"{NAME}: error: recipients that creation_rules[0]" in output and recipient in output
