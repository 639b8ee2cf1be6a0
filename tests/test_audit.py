"""audit.audit_file on files made by the real sops 3.11 binary, and on the
ways people (and adversaries) break them. No private key is used by audit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sopsflow.config.decoder import parse_config
from sopsflow.errors import SopsError
from sopsflow.gitops.check import (
    BROKEN_SOPS,
    LEAKED_SECRET,
    PARTLY_PLAINTEXT,
    PLAINTEXT_SECRET,
    RECIPIENTS_OUTSIDE_RULE,
    STALE_RECIPIENTS,
    SYMLINK_AT_RULE_PATH,
    UNMATCHED_SOPS_FILE,
    FileAudit,
    audit_file,
    fingerprint,
)
from sopsflow.gitops.drift import recipient_diff
from sopsflow.gitops.settings import AuditSettings, parse_settings
from tests.gitfixtures import OTHER_RECIPIENT, RULES_YAML, sops_encrypt
from tests.vectors import AGE_KEY_FILE, AGE_RECIPIENT, GENERATED, UPSTREAM, external

ROOT = Path("/repo")

YAML_PLAIN = "password: hunter2\nuser: bob\nport: 5432\nlist:\n    - a\n    - b\n"
K8S_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
    name: db
    namespace: prod
type: Opaque
data:
    password: aHVudGVyMg==
stringData:
    token: abc123
"""


def run_audit(rel: str, data: bytes | str, *, rules: str | None = RULES_YAML, strict: bool = False,
              is_symlink: bool = False, allow_paths: list[str] | None = None,
              allow_fingerprints: list[str] | None = None) -> FileAudit:
    config = parse_config(rules.encode(), str(ROOT / ".sops.yaml")) if rules is not None else None
    raw = data.encode() if isinstance(data, str) else data
    settings = AuditSettings(strict=strict, allow_paths=allow_paths or [], allow_fingerprints=allow_fingerprints or [])
    return audit_file(rel, raw, config=config, settings=settings, is_symlink=is_symlink, repo_root=ROOT)


def kinds(result: FileAudit, severity: str | None = "error") -> list[str]:
    return [f.kind for f in result.findings if severity is None or f.severity == severity]


@pytest.fixture(scope="module")
def enc_yaml() -> bytes:
    return sops_encrypt("db.yaml", YAML_PLAIN)


# --- inside rule paths ---------------------------------------------------------------


def test_sops_encrypted_yaml_at_rule_path_is_clean(enc_yaml: bytes) -> None:
    result = run_audit("secrets/db.yaml", enc_yaml)
    assert result.status == "encrypted"
    assert result.findings == []
    assert result.rule is not None and result.rule.index == 0
    assert result.metadata is not None and result.metadata.all_keys()[0].identity() == AGE_RECIPIENT
    assert result.store_name == "yaml"


def test_plaintext_at_rule_path_is_refused_with_the_fix() -> None:
    result = run_audit("secrets/db.yaml", YAML_PLAIN)
    assert result.status == "plaintext"
    (finding,) = result.findings
    assert finding.kind == PLAINTEXT_SECRET and finding.severity == "error"
    assert finding.fix == "sopsflow encrypt -i secrets/db.yaml"
    assert finding.line == 1 and "creation_rules[0]" in finding.message
    assert "hunter2" not in finding.message


def test_hand_added_plaintext_key_is_caught_with_path_and_line(enc_yaml: bytes) -> None:
    text = enc_yaml.decode()
    tampered = text.replace("sops:\n", "api:\n    extra_token: s3cr3t\nsops:\n", 1)
    line = tampered.splitlines().index("    extra_token: s3cr3t") + 1
    result = run_audit("secrets/db.yaml", tampered)
    assert result.status == "partial"
    (finding,) = result.findings
    assert finding.kind == PARTLY_PLAINTEXT
    assert "'api.extra_token'" in finding.message and finding.line == line
    assert "s3cr3t" not in finding.message and "s3cr3t" not in (finding.fix or "")
    assert '["api"]["extra_token"]' in (finding.fix or "")


def test_plaintext_list_item_and_typed_values_are_caught(enc_yaml: bytes) -> None:
    text = enc_yaml.decode()
    # an int and a bool are encrypted by sops too (type:int / type:bool)
    tampered = re.sub(r"port: ENC\[[^\]]*\]", "port: 5432", text)
    tampered = re.sub(r"(list:\n\s+- )ENC\[[^\]]*\]", r"\1plain-item", tampered)
    result = run_audit("secrets/db.yaml", tampered)
    messages = " ".join(f.message for f in result.findings)
    assert kinds(result) == [PARTLY_PLAINTEXT, PARTLY_PLAINTEXT]
    assert "'port'" in messages and "'list[0]'" in messages


def test_unencrypted_suffix_values_are_legitimately_plain() -> None:
    enc = sops_encrypt("db.yaml", "password: x\nhost_unencrypted: db.local\n")
    assert b"host_unencrypted: db.local" in enc
    assert run_audit("secrets/db.yaml", enc).findings == []


def test_flux_style_partial_encryption_is_accepted_and_weaker_options_are_not() -> None:
    good = sops_encrypt("db-secret.yaml", K8S_SECRET, "--encrypted-regex", "^(data|stringData)$")
    result = run_audit("k8s/db-secret.yaml", good)
    assert result.status == "encrypted" and result.findings == []
    # encrypted with options weaker than the rule demands: stringData.token stays plain
    weak = sops_encrypt("db-secret.yaml", K8S_SECRET, "--encrypted-regex", "^data$")
    result = run_audit("k8s/db-secret.yaml", weak)
    assert result.status == "partial"
    (finding,) = [f for f in result.findings if f.kind == PARTLY_PLAINTEXT]
    assert "'stringData.token'" in finding.message and "encrypted_regex '^(data|stringData)$'" in finding.message
    assert finding.fix == "sopsflow decrypt -i k8s/db-secret.yaml && sopsflow encrypt -i k8s/db-secret.yaml"


def test_plaintext_file_whose_values_the_rule_does_not_select_passes() -> None:
    deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n    name: web\n"
    result = run_audit("k8s/secret-free-deploy-secret.yaml", deployment)
    assert result.findings == [] and result.status == "not-sops"
    result = run_audit("k8s/db-secret.yaml", K8S_SECRET)
    assert kinds(result) == [PLAINTEXT_SECRET]


def test_every_yaml_document_must_be_encrypted() -> None:
    docs = "a: 1\nb: two\n---\nc: three\n"
    enc = sops_encrypt("multi.yaml", docs).decode()
    assert run_audit("secrets/multi.yaml", enc).findings == []
    added = enc + "---\nextra: plaintext-doc\n"
    result = run_audit("secrets/multi.yaml", added)
    (finding,) = result.findings
    assert finding.kind == PARTLY_PLAINTEXT and "(document 3)" in finding.message
    assert finding.line == len(enc.splitlines()) + 2


def test_metadata_outside_the_first_document_is_broken() -> None:
    enc = sops_encrypt("one.yaml", "a: 1\n").decode()
    swapped = "plain: doc\n---\n" + enc
    result = run_audit("secrets/one.yaml", swapped)
    assert result.status == "plaintext" or BROKEN_SOPS in kinds(result)
    assert result.refused


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda t: re.sub(r"(password: ENC\[AES256_GCM,data:)[^,]*", r"\1!!notbase64", t), "malformed ENC"),
        (lambda t: re.sub(r"    mac: .*\n", "", t), "no mac"),
        (lambda t: re.sub(r"    mac: ENC\[", "    mac: ENCX[", t), "mac is not a well-formed"),
        (lambda t: re.sub(r"    lastmodified: .*\n", "", t), "lastmodified"),
        (lambda t: re.sub(r"    age:\n(?:        .*\n)+", "", t), "No keys"),
        (lambda t: re.sub(r"          enc: \|\n(?:            .*\n)+", '          enc: ""\n', t), "every enc is empty"),
    ],
)
def test_broken_sops_documents(enc_yaml: bytes, edit, expect: str) -> None:  # type: ignore[no-untyped-def]
    tampered = edit(enc_yaml.decode())
    assert tampered != enc_yaml.decode()
    result = run_audit("secrets/db.yaml", tampered)
    assert result.status == "broken"
    assert BROKEN_SOPS in kinds(result)
    assert any(expect in f.message for f in result.findings), [f.message for f in result.findings]


def test_copied_sops_block_over_plaintext_values_is_caught(enc_yaml: bytes) -> None:
    block = enc_yaml.decode()[enc_yaml.decode().index("sops:"):]
    forged = "password: hunter2\napi_key: abcdef\n" + block
    result = run_audit("secrets/db.yaml", forged)
    assert result.status == "partial"
    assert [f.kind for f in result.findings] == [PARTLY_PLAINTEXT, PARTLY_PLAINTEXT]


def test_mentioning_sops_or_enc_does_not_make_a_file_encrypted() -> None:
    fake = "# sops: encrypted with ENC[AES256_GCM,data:abc,iv:def,tag:ghi,type:str]\npassword: hunter2\nsops: yes\n"
    result = run_audit("secrets/db.yaml", fake)
    assert result.refused
    assert "hunter2" not in " ".join(f.message for f in result.findings)


def test_duplicate_plaintext_key_next_to_its_encrypted_twin(enc_yaml: bytes) -> None:
    tampered = enc_yaml.decode().replace("sops:\n", "password: hunter2\nsops:\n", 1)
    result = run_audit("secrets/db.yaml", tampered)
    found = kinds(result)
    assert PARTLY_PLAINTEXT in found and BROKEN_SOPS in found  # sops refuses duplicate keys


@pytest.mark.parametrize(
    ("name", "plain", "tamper", "key_path"),
    [
        ("s.json", '{"password": "hunter2", "n": 5, "nested": {"k": "v"}}',
         lambda t: t.replace('"sops": {', '"extra": "plain",\n\t"sops": {', 1), "'extra'"),
        ("s.env", "PASSWORD=hunter2\nUSER=bob\n", lambda t: "EXTRA_TOKEN=plain\n" + t, "'EXTRA_TOKEN'"),
        ("s.ini", "[db]\npassword = hunter2\nuser = bob\n", lambda t: t.replace("[db]\n", "[db]\nextra = plain\n", 1),
         "'db.extra'"),
    ],
)
def test_other_formats_encrypted_and_tampered(name: str, plain: str, tamper, key_path: str) -> None:  # type: ignore[no-untyped-def]
    enc = sops_encrypt(name, plain).decode()
    clean = run_audit(f"secrets/{name}", enc)
    assert clean.findings == [] and clean.status == "encrypted", clean.findings
    bad = run_audit(f"secrets/{name}", tamper(enc))
    assert kinds(bad) == [PARTLY_PLAINTEXT], bad.findings
    assert key_path in bad.findings[0].message
    assert bad.findings[0].line == tamper(enc).splitlines().index(
        next(x for x in tamper(enc).splitlines() if "plain" in x and "sops" not in x)) + 1
    plain_result = run_audit(f"secrets/{name}", plain)
    assert kinds(plain_result) == [PLAINTEXT_SECRET]


def test_binary_store_files() -> None:
    blob = b"\x00\xffkey material\n"
    enc = sops_encrypt("cert.bin", blob)
    assert run_audit("blobs/cert.bin", enc).findings == []
    assert kinds(run_audit("blobs/cert.bin", blob)) == [PLAINTEXT_SECRET]
    doc = json.loads(enc)
    doc["data"] = "plain text"
    assert kinds(run_audit("blobs/cert.bin", json.dumps(doc))) == [PARTLY_PLAINTEXT]
    # a YAML SOPS document under a name sops reads as binary (JSON) is not readable
    yaml_doc = sops_encrypt("x.yaml", "a: b\n")
    result = run_audit("blobs/x.txt", yaml_doc)
    assert kinds(result) == [BROKEN_SOPS] and "binary" in result.findings[0].message


def test_wrong_store_for_the_name_is_broken() -> None:
    yaml_doc = sops_encrypt("x.yaml", "a: b\n")
    result = run_audit("secrets/x.env", yaml_doc)
    assert kinds(result) == [BROKEN_SOPS] and "dotenv" in result.findings[0].message


def test_empty_file_at_rule_path_holds_nothing() -> None:
    assert run_audit("blobs/.gitkeep", b"").findings == []
    assert kinds(run_audit("blobs/notes.txt", b"x")) == [PLAINTEXT_SECRET]


def test_crlf_and_non_utf8_and_unicode_paths() -> None:
    enc = sops_encrypt("db.yaml", YAML_PLAIN).replace(b"\n", b"\r\n")
    assert run_audit("secrets/crlf.yaml", enc).findings == []
    assert kinds(run_audit("secrets/crlf.yaml", YAML_PLAIN.replace("\n", "\r\n"))) == [PLAINTEXT_SECRET]
    latin1 = "password: caf\xe9\n".encode("latin-1")
    assert kinds(run_audit("secrets/latin1.yaml", latin1)) == [PLAINTEXT_SECRET]
    assert run_audit("docs/latin1.txt", latin1).findings == []
    assert kinds(run_audit("secrets/dépôt/ünï.yaml", YAML_PLAIN)) == [PLAINTEXT_SECRET]


def test_multi_megabyte_files() -> None:
    big = ("key_%d: value\n" * 1) * 0 + "".join(f"key_{i}: value {i}\n" for i in range(120_000))
    assert len(big) > 2_000_000
    result = run_audit("secrets/big.yaml", big)
    assert kinds(result) == [PLAINTEXT_SECRET]
    assert run_audit("assets/big.bin", bytes(range(256)) * 20_000).findings == []


def test_alias_bomb_does_not_hang() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    result = run_audit("secrets/bomb.yaml", bomb)
    assert result.refused


# --- symlinks, rules, outside the rules -------------------------------------------------------


def test_symlink_at_rule_path_is_refused_but_fine_elsewhere() -> None:
    result = run_audit("secrets/link.yaml", b"../real.yaml", is_symlink=True)
    assert kinds(result) == [SYMLINK_AT_RULE_PATH]
    assert run_audit("docs/link.md", b"../README.md", is_symlink=True).findings == []


def test_sops_file_outside_rules_is_a_warning_but_must_be_consistent(enc_yaml: bytes) -> None:
    result = run_audit("elsewhere/db.yaml", enc_yaml)
    assert result.status == "encrypted" and not result.refused
    assert kinds(result, "warning") == [UNMATCHED_SOPS_FILE]
    tampered = enc_yaml.decode().replace("sops:\n", "extra_password: hunter2\nsops:\n", 1)
    assert kinds(run_audit("elsewhere/db.yaml", tampered)) == [PARTLY_PLAINTEXT]


def test_no_config_means_detectors_only(enc_yaml: bytes) -> None:
    assert run_audit("secrets/db.yaml", YAML_PLAIN, rules=None).findings == []
    assert kinds(run_audit(".env", "DB_PASSWORD=hunter2\n", rules=None)) == [LEAKED_SECRET]


def test_catch_all_rule_covers_every_file() -> None:
    rules = f"creation_rules:\n  - age: {AGE_RECIPIENT}\n"
    assert kinds(run_audit("anything/notes.txt", "hello", rules=rules)) == [PLAINTEXT_SECRET]
    assert run_audit(".sops.yaml", rules, rules=rules).findings == []


def test_path_matching_is_sops_own() -> None:
    # unanchored, case-sensitive, relative to the config's directory
    assert kinds(run_audit("apps/k8s/db-secret.yaml", K8S_SECRET)) == [PLAINTEXT_SECRET]
    assert run_audit("Secrets/db.yaml", YAML_PLAIN).findings == []
    assert run_audit("other/secrets/db.yaml", YAML_PLAIN).findings == []


def test_private_key_in_an_unencrypted_value_of_a_sops_file() -> None:
    key = AGE_KEY_FILE.read_text().split("AGE-SECRET-KEY-")[1].split()[0]
    enc = sops_encrypt("db.yaml", f"password: x\nbackup_unencrypted: AGE-SECRET-KEY-{key}\n")
    result = run_audit("secrets/db.yaml", enc)
    assert kinds(result) == [LEAKED_SECRET] and "age identity" in result.findings[0].message


# --- strict / recipients ------------------------------------------------------------------------


def test_stale_recipients_warn_and_strict_refuses() -> None:
    enc = sops_encrypt("team.yaml", "a: b\n")  # only AGE_RECIPIENT; the rule also names OTHER
    loose = run_audit("team/x.yaml", enc)
    assert kinds(loose, "warning") == [STALE_RECIPIENTS] and not loose.refused
    strict = run_audit("team/x.yaml", enc, strict=True)
    (finding,) = strict.findings
    assert finding.kind == STALE_RECIPIENTS and finding.severity == "error"
    assert f"+{OTHER_RECIPIENT}" in finding.message and finding.fix == "sopsflow updatekeys team/x.yaml"
    both = sops_encrypt("team.yaml", "a: b\n", recipients=f"{AGE_RECIPIENT},{OTHER_RECIPIENT}")
    assert run_audit("team/x.yaml", both, strict=True).findings == []


def test_recipient_diff_per_group() -> None:
    enc = sops_encrypt("team.yaml", "a: b\n", recipients=OTHER_RECIPIENT)
    result = run_audit("secrets/x.yaml", enc)
    assert result.metadata is not None and result.rule is not None
    (diff,) = recipient_diff(result.metadata, result.rule)
    assert diff.index == 0 and diff.added == [AGE_RECIPIENT] and diff.removed == [OTHER_RECIPIENT]
    rules = (f"creation_rules:\n  - key_groups:\n      - age: [{OTHER_RECIPIENT}]\n"
             f"      - age: [{AGE_RECIPIENT}]\n    shamir_threshold: 2\n")
    grouped = run_audit("x.yaml", enc, rules=rules)
    assert grouped.rule is not None and grouped.metadata is not None
    assert recipient_diff(grouped.metadata, grouped.rule) == [(1, [AGE_RECIPIENT], [])]


@pytest.mark.parametrize("strict", [False, True])
def test_recipients_outside_the_rule_are_an_error_in_every_mode(strict: bool) -> None:
    # secrets/ names only AGE_RECIPIENT: OTHER_RECIPIENT can read a file it should not
    extra = sops_encrypt("db.yaml", "a: b\n", recipients=f"{AGE_RECIPIENT},{OTHER_RECIPIENT}")
    result = run_audit("secrets/x.yaml", extra, strict=strict)
    assert result.refused and kinds(result) == [RECIPIENTS_OUTSIDE_RULE] + ([STALE_RECIPIENTS] if strict else [])
    finding = next(f for f in result.findings if f.kind == RECIPIENTS_OUTSIDE_RULE)
    assert OTHER_RECIPIENT in finding.message and AGE_RECIPIENT not in finding.message
    # a missing recipient alone stays a warning outside strict mode
    missing = sops_encrypt("team.yaml", "a: b\n")
    assert kinds(run_audit("team/x.yaml", missing, strict=strict)) == ([STALE_RECIPIENTS] if strict else [])


def test_a_deliberate_extra_recipient_can_be_allow_listed_per_file() -> None:
    extra = sops_encrypt("db.yaml", "a: b\n", recipients=f"{AGE_RECIPIENT},{OTHER_RECIPIENT}")
    settings = parse_settings(
        f"allow:\n  paths: [docs/**]\n  recipients:\n    - path: secrets/ops.yaml\n      keys: [{OTHER_RECIPIENT}]\n"
        "      reason: break-glass\n".encode())
    config = parse_config(RULES_YAML.encode(), str(ROOT / ".sops.yaml"))
    allowed = audit_file("secrets/ops.yaml", extra, config=config, settings=settings, repo_root=ROOT)
    assert allowed.findings == []
    strict = AuditSettings(strict=True, allow_recipients=settings.allow_recipients)
    assert audit_file("secrets/ops.yaml", extra, config=config, settings=strict, repo_root=ROOT).findings == []
    other = audit_file("secrets/db.yaml", extra, config=config, settings=settings, repo_root=ROOT)
    assert kinds(other) == [RECIPIENTS_OUTSIDE_RULE]


@pytest.mark.parametrize("text, problem", [
    ("allow: {recipients: {path: x}}", "must be a list"),
    ("allow: {recipients: [{path: x}]}", "must name at least one key"),
    ("allow: {recipients: [{keys: [age1x]}]}", "path` must be a glob"),
    ("allow: {recipients: [{path: x, keys: [a], who: me}]}", "unknown key(s)"),
])
def test_allow_recipients_typos_are_errors(text: str, problem: str) -> None:
    with pytest.raises(SopsError) as raised:
        parse_settings(text.encode())
    assert problem in raised.value.message


def test_an_unknown_key_type_is_a_warning_not_an_error() -> None:
    """hckms (and newer types) cannot be named by a rule sopsflow parses: the
    entry cannot be judged, so it is reported but does not refuse."""
    enc = sops_encrypt("db.yaml", "a: b\n").decode()
    entry = "    hckms:\n        - key_id: tenant-1:key-1\n          created_at: \"2026-01-01T00:00:00Z\"\n" \
            "          enc: b3BhcXVl\n"
    with_hckms = enc.replace("sops:\n", "sops:\n" + entry, 1)
    result = run_audit("secrets/x.yaml", with_hckms)
    assert not result.refused and kinds(result, "warning") == [STALE_RECIPIENTS]
    assert "tenant-1:key-1" in result.findings[0].message


# --- allow-list -----------------------------------------------------------------------------------


def test_allow_list_by_path_and_fingerprint() -> None:
    plain = run_audit("secrets/db.yaml", YAML_PLAIN)
    fp = plain.findings[0].fingerprint
    assert fp == fingerprint(PLAINTEXT_SECRET, "secrets/db.yaml", "")
    by_fp = run_audit("secrets/db.yaml", YAML_PLAIN, allow_fingerprints=[fp])
    assert by_fp.findings == [] and by_fp.allowed[0][1] == f"fingerprint {fp}"
    by_path = run_audit("secrets/db.yaml", YAML_PLAIN, allow_paths=["secrets/*.yaml"])
    assert by_path.findings == [] and by_path.allowed[0][1] == "path secrets/*.yaml"
    other = run_audit("secrets/db.yaml", YAML_PLAIN, allow_paths=["docs/**"], allow_fingerprints=["0" * 16])
    assert kinds(other) == [PLAINTEXT_SECRET] and other.allowed == []


def test_detector_fingerprints_survive_line_moves() -> None:
    a = run_audit(".env", "DB_PASSWORD=hunter2\n", rules=None).findings[0]
    b = run_audit(".env", "# moved\n\nDB_PASSWORD=hunter2\n", rules=None).findings[0]
    assert a.fingerprint == b.fingerprint and a.line == 1 and b.line == 3


# --- comment-driven selection ----------------------------------------------------------------

COMMENTED = """\
apiVersion: v1
kind: Secret
metadata:
    name: web
# sops:enc
data:
    password: hunter2
    user: admin
stringData:
    plain: visible
"""
COMMENT_RULES = f"""\
creation_rules:
  - path_regex: ^marked/
    encrypted_comment_regex: sops:enc
    age: {AGE_RECIPIENT}
  - path_regex: ^unmarked/
    unencrypted_comment_regex: sops:plain
    age: {AGE_RECIPIENT}
"""


def test_encrypted_comment_regex_files() -> None:
    enc = sops_encrypt("c.yaml", COMMENTED, global_flags=("--encrypted-comment-regex", "sops:enc")).decode()
    assert "plain: visible" in enc and "password: ENC[" in enc
    assert run_audit("marked/c.yaml", enc, rules=COMMENT_RULES).findings == []
    tampered = re.sub(r"password: ENC\[[^\]]*\]", "password: hunter2", enc)
    result = run_audit("marked/c.yaml", tampered, rules=COMMENT_RULES)
    (finding,) = result.findings
    assert finding.kind == PARTLY_PLAINTEXT and "'data.password'" in finding.message
    # a plaintext value added under the marker is caught, one outside it is fine
    added = enc.replace("stringData:\n", "stringData:\n    note: fine\n", 1).replace(
        "\ndata:\n", "\ndata:\n    token: leaked\n", 1)
    result = run_audit("marked/c.yaml", added, rules=COMMENT_RULES)
    assert [f.message.split("'")[1] for f in result.findings] == ["data.token"]


def test_unencrypted_comment_regex_files() -> None:
    text = "# sops:plain\nhost: db.local\npassword: hunter2\n"
    enc = sops_encrypt("u.yaml", text, global_flags=("--unencrypted-comment-regex", "sops:plain")).decode()
    assert "host: db.local" in enc
    assert run_audit("unmarked/u.yaml", enc, rules=COMMENT_RULES).findings == []
    tampered = re.sub(r"password: ENC\[[^\]]*\]", "password: hunter2", enc)
    assert kinds(run_audit("unmarked/u.yaml", tampered, rules=COMMENT_RULES)) == [PARTLY_PLAINTEXT]


def test_enc_values_sops_cannot_decrypt_are_malformed(enc_yaml: bytes) -> None:
    text = enc_yaml.decode()
    m = re.search(r"password: (ENC\[AES256_GCM,data:[^,]*,iv:[^,]*,tag:[^,]*,type:str\])", text)
    assert m is not None
    good = m.group(1)
    for bad, why in [
        (re.sub(r"iv:[^,]*", "iv:", good), "empty iv"),
        (re.sub(r"tag:[^,]*", "tag:AAAA", good), "tag is not 16 bytes"),
        (good.replace("type:str", "type:bytes"), "unknown type 'bytes'"),
        (good.replace("data:", "data:%"), "bad base64"),
    ]:
        result = run_audit("secrets/db.yaml", text.replace(good, bad))
        assert kinds(result) == [BROKEN_SOPS] and why in result.findings[0].message, (why, result.findings)


def test_plaintext_hidden_in_the_sops_metadata(enc_yaml: bytes) -> None:
    text = enc_yaml.decode().replace("    version: 3.11.0", "    db_password: hunter2\n    version: 3.11.0")
    result = run_audit("secrets/db.yaml", text)
    assert kinds(result) == [PARTLY_PLAINTEXT] and "'db_password'" in result.findings[0].message
    env = sops_encrypt("s.env", "A=b\n").decode() + "sops_db_password=hunter2\n"
    assert kinds(run_audit("secrets/s.env", env)) == [PARTLY_PLAINTEXT]


@pytest.mark.parametrize(("base", "at_least"), [(GENERATED, 22), external(UPSTREAM, 3)],
                         ids=["generated", "upstream"])
def test_every_sops_made_vector_is_clean(base: Path, at_least: int) -> None:
    """Every encrypted file of the test vectors (sops 3.11 and upstream fixtures,
    all formats and selection options) passes as encrypted against its own options."""
    seen = 0
    for path in sorted(base.rglob("*.enc.*")):
        if ".plain." in path.name or not path.is_file():
            continue
        seen += 1
        result = audit_file(path.relative_to(base).as_posix(), path.read_bytes(), config=None,
                            settings=AuditSettings(), repo_root=ROOT)
        assert result.status == "encrypted" and not result.refused, (path, result.findings)
    assert seen >= at_least


# --- property: whatever sops encrypts passes; any one value put back in plaintext is named ----------

_KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda k: not k.endswith("_unencrypted"))
_SCALARS = st.one_of(st.integers(-10**6, 10**6), st.booleans(), st.text(alphabet="abcdefgh XYZ0123", min_size=1, max_size=12))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, min_size=1, max_size=3),
                                                         st.dictionaries(_KEYS, inner, min_size=1, max_size=3)),
                       max_leaves=8)


# sops refuses to encrypt a document with a top-level ``sops`` key (it would clash with the
# metadata block), so such documents are outside this property.
_TOP_KEYS = _KEYS.filter(lambda k: k != "sops")


@settings(max_examples=25, deadline=None)
@given(doc=st.dictionaries(_TOP_KEYS, _VALUES, min_size=1, max_size=5), pick=st.integers(0, 1000))
@example(doc={"_": "0e0"}, pick=0)  # PyYAML writes 0e0 plain, which sops reads as a float
def test_property_sops_output_passes_and_any_reverted_value_is_caught(doc: dict, pick: int) -> None:  # type: ignore[type-arg]
    import yaml as pyyaml

    text = pyyaml.safe_dump(doc, sort_keys=False)
    enc = sops_encrypt("p.yaml", text).decode()
    assert run_audit("secrets/p.yaml", enc).findings == []
    body = enc[: enc.index("\nsops:\n")]  # values only, not the mac
    values = list(re.finditer(r"(?<=: |- )ENC\[AES256_GCM,[^\]]*type:(?:str|int|float|bool)\]", body))
    assert values
    chosen = values[pick % len(values)]
    tampered = enc[: chosen.start()] + "plain-again" + enc[chosen.end():]
    result = run_audit("secrets/p.yaml", tampered)
    (finding,) = result.findings
    assert finding.kind == PARTLY_PLAINTEXT
    assert finding.line == enc.count("\n", 0, chosen.start()) + 1


# --- .sopsflow.yaml ------------------------------------------------------------------------------


def test_settings_file_tolerates_other_sections(tmp_path: Path) -> None:
    from sopsflow.gitops.settings import load_settings, parse_settings

    assert load_settings(tmp_path) == AuditSettings()
    (tmp_path / ".sopsflow.yaml").write_text(
        "strict: true\nallow:\n  paths: [docs/**, '*.sample.env']\n  fingerprints: ['FP:ABCDEF0123456789']\n"
        "verify:\n  severity: {stale-recipients: off}\nfuture_section: {anything: 1}\n"
    )
    settings = load_settings(tmp_path)
    assert settings.strict and settings.allow_paths == ["docs/**", "*.sample.env"]
    assert settings.allow_fingerprints == ["abcdef0123456789"]
    assert settings.allows_path("docs/a/b.md") == "docs/**" and settings.allows_path("x/y.sample.env") == "*.sample.env"
    assert settings.allows_path("src/docs.md") is None
    assert parse_settings(b"") == AuditSettings(source=".sopsflow.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"strict: maybe\n", "`strict` must be true or false"),
        (b"allow: [docs/]\n", "`allow` must be a mapping"),
        (b"allow:\n  path: docs/\n", "unknown key(s) in `allow`: path"),
        (b"allow:\n  paths: {a: b}\n", "`allow.paths` must be a list of strings"),
        (b"allow:\n  paths: ['[unclosed']\n", "unclosed ["),
        (b"- a list\n", "expected a mapping"),
        (b"strict: [\n", "not valid YAML"),
    ],
)
def test_settings_errors_fail_closed(text: bytes, message: str) -> None:
    from sopsflow.errors import SopsError
    from sopsflow.gitops.settings import parse_settings

    with pytest.raises(SopsError, match=re.escape(message)):
        parse_settings(text)
