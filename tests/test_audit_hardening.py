"""What the hook and verify judge beyond values: plaintext comments in SOPS
files (checked against what the real sops binary writes for YAML, dotenv and
INI under each comment option), comments-only files at rule paths, plaintext
nested in the ``sops:`` block, config files that hold data, and a
``.sops.yml`` that sops ignores."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from sopsflow.config.decoder import parse_config
from sopsflow.gitops.check import (
    IGNORED_CONFIG,
    LEAKED_SECRET,
    PARTLY_PLAINTEXT,
    PLAINTEXT_SECRET,
    FileAudit,
    audit_file,
)
from sopsflow.gitops.settings import AuditSettings
from tests.conftest import base_env, run_sops
from tests.gitfixtures import RULES_YAML, sops_encrypt
from tests.vectors import AGE_KEY_FILE, AGE_RECIPIENT

ROOT = Path("/repo")


def run_audit(rel: str, data: bytes | str, rules: str | None = RULES_YAML) -> FileAudit:
    config = parse_config(rules.encode(), str(ROOT / ".sops.yaml")) if rules is not None else None
    raw = data.encode() if isinstance(data, str) else data
    return audit_file(rel, raw, config=config, settings=AuditSettings(), repo_root=ROOT)


def errors(result: FileAudit) -> list[str]:
    return [f.kind for f in result.findings if f.severity == "error"]


# --- plaintext comments ----------------------------------------------------------------

PLAIN = {
    "yaml": "# header note\ndb:\n    # the primary\n    password: hunter2\n    host: db.local\nlist:\n    # first\n"
            "    - a\n    - b\n#\n",
    "env": "# header note\nPASSWORD=hunter2\n# the host\nHOST=db.local\n#\n",
    "ini": "; header note\n[db]\n; the primary\npassword = hunter2\n# hash style\nhost = db.local\n",
}
#: (encrypt flags, sops 3.11 global-only flags) of each option set
OPTIONS = {
    "default": ((), ()),
    "unencrypted_comment_regex": ((), ("--unencrypted-comment-regex", "primary|first|hash")),
    "encrypted_comment_regex": ((), ("--encrypted-comment-regex", "primary|first|hash")),
    "encrypted_regex": (("--encrypted-regex", "^(db|password|PASSWORD)$"), ()),
    "unencrypted_regex": (("--unencrypted-regex", "^(list|HOST|host)$"), ()),
}
ADDED = {"yaml": "# old password was hunter2\n", "env": "# old password was hunter2\n",
         "ini": "; old password was hunter2\n"}


def _encrypt(ext: str, options: str) -> str:
    flags, global_flags = OPTIONS[options]
    return sops_encrypt(f"c.{ext}", PLAIN[ext], *flags, global_flags=global_flags).decode()


@pytest.mark.parametrize("options", sorted(OPTIONS))
@pytest.mark.parametrize("ext", sorted(PLAIN))
def test_what_sops_writes_with_comments_is_never_flagged(ext: str, options: str) -> None:
    enc = _encrypt(ext, options)
    result = run_audit(f"any/c.{ext}", enc, rules=None)
    assert result.status == "encrypted" and result.findings[1:] == [], result.findings
    assert [f.kind for f in result.findings] in ([], ["unmatched-sops-file"])


def _insert_before(enc: str, ext: str, anchor: str) -> str:
    at = enc.index(anchor)
    return enc[:at] + ADDED[ext] + enc[at:]


@pytest.mark.parametrize("ext", sorted(PLAIN))
def test_a_hand_added_plaintext_comment_is_partly_plaintext(ext: str) -> None:
    enc = _encrypt(ext, "default")
    anchor = {"yaml": "db:", "env": "PASSWORD=", "ini": "[db]"}[ext]
    tampered = _insert_before(enc, ext, anchor)
    result = run_audit(f"secrets/c.{ext}", tampered)
    assert errors(result) == [PARTLY_PLAINTEXT] and result.status == "partial", result.findings
    (finding,) = result.findings
    assert "comment" in finding.message and "hunter2" not in finding.message and "old password" not in finding.message
    assert finding.line == tampered.splitlines().index(ADDED[ext].strip()) + 1
    assert run_audit(f"secrets/c.{ext}", enc).findings == []


def test_comment_options_decide_which_added_comments_may_stay_plain() -> None:
    # unencrypted_comment_regex: a comment it matches stays plain, any other is hand-added
    enc = _encrypt("yaml", "unencrypted_comment_regex")
    matching = _insert_before(enc, "yaml", "db:").replace("# old password", "# primary: old password")
    assert PARTLY_PLAINTEXT not in errors(run_audit("x/c.yaml", matching, rules=None))
    assert PARTLY_PLAINTEXT in errors(run_audit("x/c.yaml", _insert_before(enc, "yaml", "db:"), rules=None))
    # encrypted_comment_regex: comments stay plain unless a marker comment precedes them
    enc = _encrypt("yaml", "encrypted_comment_regex")
    assert PARTLY_PLAINTEXT not in errors(run_audit("x/c.yaml", _insert_before(enc, "yaml", "db:"), rules=None))
    marker = enc.index("# the primary")
    after_marker = enc[:marker] + "# the primary\n    # old password was hunter2\n" + enc[marker + len("# the primary\n"):]
    assert errors(run_audit("x/c.yaml", after_marker, rules=None)) == [PARTLY_PLAINTEXT]
    # encrypted_regex: a top-level comment stays plain, one inside an encrypted key is hand-added
    enc = _encrypt("yaml", "encrypted_regex")
    assert PARTLY_PLAINTEXT not in errors(run_audit("x/c.yaml", _insert_before(enc, "yaml", "db:"), rules=None))
    inside = enc.replace("    password:", "    # old password was hunter2\n    password:", 1)
    assert errors(run_audit("x/c.yaml", inside, rules=None)) == [PARTLY_PLAINTEXT]


COMMENTS_ONLY = {"yaml": "# old password was hunter2\n# nothing else\n", "env": "# old password was hunter2\n",
                 "ini": "; old password was hunter2\n"}


@pytest.mark.parametrize("ext", sorted(COMMENTS_ONLY))
def test_comments_only_file_at_a_rule_path_is_plaintext(ext: str) -> None:
    text = COMMENTS_ONLY[ext]
    result = run_audit(f"secrets/notes.{ext}", text)
    assert errors(result) == [PLAINTEXT_SECRET] and result.status == "plaintext", result.findings
    assert "hunter2" not in result.findings[0].message
    assert run_audit(f"docs/notes.{ext}", text).findings == []  # outside the rules: nothing to protect
    # what sops does with such a file: YAML it refuses, INI it drops, dotenv it encrypts (and passes)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, ".sops.yaml").write_text("")
        Path(tmp, f"notes.{ext}").write_text(text)
        done = run_sops(["encrypt", "--age", AGE_RECIPIENT, f"notes.{ext}"], cwd=tmp,
                        env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
    if ext == "yaml":
        assert done.returncode != 0
    else:
        assert done.returncode == 0 and b"hunter2" not in done.stdout
        assert run_audit(f"secrets/notes.{ext}", done.stdout).findings == []


# --- plaintext nested in the sops block ----------------------------------------------------


@pytest.fixture(scope="module")
def enc_yaml() -> str:
    return sops_encrypt("db.yaml", "password: hunter2\n").decode()


@pytest.mark.parametrize(
    ("where", "edit"),
    [
        ("age[0].password", lambda t: t.replace("          enc: |", "          password: hunter2\n          enc: |", 1)),
        ("notes", lambda t: t.replace("    lastmodified:", "    notes:\n        db: {password: hunter2}\n    lastmodified:", 1)),
        ("notes", lambda t: t.replace("    lastmodified:", "    notes:\n        - hunter2\n    lastmodified:", 1)),
    ],
)
def test_plaintext_nested_in_the_sops_block(enc_yaml: str, where: str, edit) -> None:  # type: ignore[no-untyped-def]
    tampered = edit(enc_yaml)
    assert tampered != enc_yaml
    result = run_audit("secrets/db.yaml", tampered)
    assert PARTLY_PLAINTEXT in errors(result), result.findings
    assert any(f"'{where}'" in f.message for f in result.findings)


def test_a_comment_in_the_sops_block_is_plaintext(enc_yaml: str) -> None:
    tampered = enc_yaml.replace("    lastmodified:", "    # old password was hunter2\n    lastmodified:", 1)
    result = run_audit("secrets/db.yaml", tampered)
    assert errors(result) == [PARTLY_PLAINTEXT] and "sops metadata" in result.findings[0].message
    assert "hunter2" not in result.findings[0].message


def test_unknown_key_types_in_the_sops_block_are_kept_not_flagged(enc_yaml: str) -> None:
    newer = enc_yaml.replace("    lastmodified:", "    hckms:\n        - key_id: tr-west-1:abc\n          enc: xyz\n"
                             "    future_kms:\n        - region: x\n          enc: abc\n    lastmodified:", 1)
    assert PARTLY_PLAINTEXT not in errors(run_audit("secrets/db.yaml", newer))


# --- config files -------------------------------------------------------------------------


def test_a_config_file_name_is_no_bypass() -> None:
    text = "password: hunter2\n"
    assert errors(run_audit("secrets/db.yaml", text)) == [PLAINTEXT_SECRET]
    for name in ("secrets/.sops.yaml", "secrets/.sopsflow.yaml", "secrets/deeper/.sops.yaml"):
        result = run_audit(name, text)
        assert errors(result) == [PLAINTEXT_SECRET], (name, result.findings)
        assert "'password'" in result.findings[0].message and "hunter2" not in result.findings[0].message
    rules = f"creation_rules:\n  - path_regex: ^secrets/\n    age: {AGE_RECIPIENT}\n"
    mixed = rules + "password: hunter2\n"
    assert errors(run_audit("secrets/.sops.yaml", mixed)) == [PLAINTEXT_SECRET]
    settings = "strict: true\nallow:\n  paths: [docs/**]\nverify:\n  severity: {}\ndb_password: hunter2\n"
    assert errors(run_audit("secrets/.sopsflow.yaml", settings)) == [PLAINTEXT_SECRET]
    broken = "password: hunter2\n  - [\n"  # no YAML at all: judged as any other file
    assert errors(run_audit("secrets/.sops.yaml", broken)) == [PLAINTEXT_SECRET]


def test_the_keys_a_config_file_defines_are_exempt() -> None:
    rules = f"creation_rules:\n  - path_regex: ^secrets/\n    age: {AGE_RECIPIENT}\nstores:\n  yaml:\n    indent: 4\n"
    assert run_audit("secrets/.sops.yaml", rules).findings == []
    assert run_audit(".sops.yaml", rules + "password: hunter2\n").findings == []  # no rule matches it
    settings = "strict: true\nallow:\n  paths: [docs/**]\n"
    assert run_audit("secrets/.sopsflow.yaml", settings).findings == []
    # Every section `.sopsflow.yaml` defines is exempt, the publish destinations included.
    publish = "publish:\n  - path_regex: ^secrets/\n    secrets_manager:\n      name: app/{stem}\n"
    assert run_audit("secrets/.sopsflow.yaml", publish).findings == []


def test_detectors_run_on_the_whole_config_file() -> None:
    identity = next(line for line in AGE_KEY_FILE.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    rules = f"creation_rules:\n  # {identity}\n  - path_regex: ^secrets/\n    age: {AGE_RECIPIENT}\n"
    result = run_audit(".sops.yaml", rules)
    assert errors(result) == [LEAKED_SECRET] and result.findings[0].line == 2
    token = "ghp_" + "Zx8Kq2Lm7Wc4Rt1YvB6nH3pQ9sD5fG0jA2bE"
    assert errors(run_audit(".sopsflow.yaml", f"allow:\n  paths: [docs/**]  # {token}\n")) == [LEAKED_SECRET]


def test_sops_yml_is_warned_about() -> None:
    text = f"creation_rules:\n  - age: {AGE_RECIPIENT}\n"
    for name in (".sops.yml", "deploy/.sops.yml"):
        result = run_audit(name, text, rules=None)
        assert [(f.kind, f.severity) for f in result.findings] == [(IGNORED_CONFIG, "warning")]
        assert ".sops.yaml" in result.findings[0].message and re.search(r"\bignored\b", result.findings[0].message)
    assert run_audit(".sops.yaml", text, rules=None).findings == []


def test_a_nested_sops_yaml_holding_data_is_refused_by_check_and_verify(tmp_path: Path) -> None:
    """With real git: a `secrets/.sops.yaml` with no creation rules governs
    nothing, so its data is judged by the rules above it."""
    import subprocess
    import sys

    from tests.gitfixtures import git_env, init_repo, run_check, stage, write

    repo = init_repo(tmp_path / "r", {"README.md": "notes\n"})
    write(repo, "secrets/.sops.yaml", "password: hunter2\n")
    stage(repo, "secrets/.sops.yaml")
    done = run_check(repo)
    assert done.returncode == 1 and "secrets/.sops.yaml:1: error:" in done.stdout, done.stdout + done.stderr
    assert "[plaintext-secret]" in done.stdout and "hunter2" not in done.stdout
    subprocess.run(["git", "commit", "-q", "--no-verify", "-m", "bypass"], cwd=repo, env=git_env(), check=True)
    verify = subprocess.run([sys.executable, "-m", "sopsflow", "verify"], cwd=repo, env=git_env(),
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode != 0 and "secrets/.sops.yaml" in verify.stdout and "plaintext-secret" in verify.stdout, \
        verify.stdout + verify.stderr
