"""`sopsflow.gitops.verify` on real git repositories, one test per finding kind.

SOPS files are made by the real sops 3.11 binary (cached per content so the
suite calls it only a few dozen times); repositories are built with git.
"""

from __future__ import annotations

import datetime
import functools
import os
from pathlib import Path

import pytest

from sopsflow.errors import SopsError
from sopsflow.gitops import verify as verify_mod
from sopsflow.gitops.policy import parse_policy
from sopsflow.gitops.verify import VerifyOptions, VerifyResult, parse_rfc3339, verify

from .vectors import AGE_KEY_FILE, AGE_RECIPIENT
from .verifyfixtures import commit_all, git, make_repo, new_age_recipient, sops_encrypt, sops_yaml, write

SECRET_YAML = "password: hunter2-but-longer\napi_token: abcdef0123456789\nname_unencrypted: app\n"
K8S_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: apps
type: Opaque
stringData:
  password: correct-horse-battery-staple
"""
K8S_REGEX = ("--encrypted-regex", "^(data|stringData)$")


@functools.cache
def enc(name: str, content: str = SECRET_YAML, recipients: str = AGE_RECIPIENT,
        args: tuple[str, ...] = ()) -> bytes:
    return sops_encrypt(name, content, recipients=recipients, args=args)


@functools.lru_cache(maxsize=1)
def stranger() -> str:
    return new_age_recipient()


def kinds(result: VerifyResult) -> set[tuple[str, str]]:
    return {(f.kind, f.path) for f in result.findings}


def only(result: VerifyResult, kind: str) -> list[tuple[str, str, str, int | None]]:
    return [(f.kind, f.path, f.severity, f.line) for f in result.findings if f.kind == kind]


def run(root: Path, **options: object) -> VerifyResult:
    return verify(root, VerifyOptions(**options))  # type: ignore[arg-type]


def base_files() -> dict[str, str | bytes]:
    return {
        ".sops.yaml": sops_yaml("^secrets/"),
        "README.md": "# demo\n",
        "secrets/app.yaml": enc("app.yaml"),
    }


# --- a clean repository --------------------------------------------------------------


def test_clean_repository_has_no_findings(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", base_files())
    result = run(root)
    assert result.findings == []
    assert result.exit_code == 0
    assert sorted(a.path for a in result.files) == [".sops.yaml", "README.md", "secrets/app.yaml"]
    assert {a.path: a.status for a in result.files}["secrets/app.yaml"] == "encrypted"
    assert result.target == "HEAD" and result.commit == git(root, "rev-parse", "HEAD").strip()
    assert "flux" not in result.checks


def test_verify_reads_git_objects_not_the_work_tree(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", base_files())
    (root / "secrets" / "app.yaml").write_text(SECRET_YAML)  # plaintext, uncommitted
    assert run(root).findings == []
    assert ("plaintext-secret", "secrets/app.yaml") in kinds(run(root, source="worktree"))
    assert run(root, source="index").findings == []
    git(root, "add", "secrets/app.yaml")
    assert ("plaintext-secret", "secrets/app.yaml") in kinds(run(root, source="index"))
    # an older revision by name
    commit_all(root, "oops")
    assert ("plaintext-secret", "secrets/app.yaml") in kinds(run(root))
    assert run(root, rev="HEAD~1").findings == []


# --- audit findings, reported through verify -----------------------------------------------


def test_plaintext_at_rule_path_is_an_error(tmp_path: Path) -> None:
    files = base_files() | {"secrets/db.yaml": SECRET_YAML}
    result = run(make_repo(tmp_path / "r", files))
    assert kinds(result) == {("plaintext-secret", "secrets/db.yaml")}
    assert result.findings[0].severity == "error"
    assert result.exit_code == 1


def test_leaked_secret_outside_rules(tmp_path: Path) -> None:
    files = base_files() | {"deploy/app.env": "DB_PASSWORD=Zq8vN3xLk2mP9wRt\n"}
    result = run(make_repo(tmp_path / "r", files))
    assert kinds(result) == {("leaked-secret", "deploy/app.env")}
    assert result.findings[0].line == 1
    assert "Zq8vN3xLk2mP9wRt" not in repr(result.findings)


def test_broken_and_partly_plaintext_sops_files(tmp_path: Path) -> None:
    good = enc("app.yaml").decode()
    # metadata that does not load: no lastmodified
    broken = "\n".join(line for line in good.splitlines() if "lastmodified" not in line) + "\n"
    # a value that was added in plaintext after encryption
    partial = good.replace("sops:\n", "new_password: plain-text-here\nsops:\n", 1)
    files = base_files() | {"secrets/broken.yaml": broken, "secrets/partial.yaml": partial}
    result = run(make_repo(tmp_path / "r", files))
    found = kinds(result)
    assert ("broken-sops", "secrets/broken.yaml") in found
    assert ("partly-plaintext", "secrets/partial.yaml") in found
    assert {p for _, p in found} == {"secrets/broken.yaml", "secrets/partial.yaml"}
    assert result.exit_code == 1


def test_stale_recipients(tmp_path: Path) -> None:
    files = base_files() | {"secrets/old.yaml": enc("old.yaml", recipients=f"{AGE_RECIPIENT},{stranger()}")}
    result = run(make_repo(tmp_path / "r", files))
    # the stranger is a recipient the rule does not name: an error, not only stale
    assert kinds(result) == {("stale-recipients", "secrets/old.yaml"), ("recipients-outside-rule", "secrets/old.yaml")}
    assert [f.severity for f in result.findings if f.kind == "recipients-outside-rule"] == ["error"]
    assert result.exit_code == 1


def test_symlink_at_rule_path(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", base_files())
    os.symlink("app.yaml", root / "secrets" / "link.yaml")
    commit_all(root)
    result = run(root)
    assert kinds(result) == {("symlink-at-rule-path", "secrets/link.yaml")}


# --- verify-only findings -----------------------------------------------------------------


def test_unmatched_sops_file(tmp_path: Path) -> None:
    files = base_files() | {"other/x.yaml": enc("x.yaml")}
    result = run(make_repo(tmp_path / "r", files))
    assert only(result, "unmatched-sops-file") == [("unmatched-sops-file", "other/x.yaml", "warning", None)]
    assert kinds(result) == {("unmatched-sops-file", "other/x.yaml")}
    assert result.exit_code == 0


def test_unused_creation_rule_names_its_line(tmp_path: Path) -> None:
    files = base_files() | {".sops.yaml": sops_yaml("^secrets/", "^nothing/here/", "^secrets/app")}
    result = run(make_repo(tmp_path / "r", files))
    # rule 2 is shadowed by rule 0 but its regex matches a file: not reported
    assert only(result, "unused-creation-rule") == [("unused-creation-rule", ".sops.yaml", "warning", 4)]
    assert "creation_rules[1]" in result.findings[0].message and "^nothing/here/" in result.findings[0].message
    assert kinds(result) == {("unused-creation-rule", ".sops.yaml")}
    assert result.exit_code == 0


def test_invalid_config_is_an_error_and_other_rules_still_apply(tmp_path: Path) -> None:
    config = sops_yaml("^secrets/", "(unclosed")
    files = base_files() | {".sops.yaml": config, "secrets/db.yaml": SECRET_YAML}
    result = run(make_repo(tmp_path / "r", files))
    invalid = only(result, "invalid-config")
    assert [(k, p, s) for k, p, s, _ in invalid] == [("invalid-config", ".sops.yaml", "error")]
    message = next(f.message for f in result.findings if f.kind == "invalid-config")
    assert str(tmp_path) not in message and "creation_rules[1]" in message
    # the first rule still works, so the plaintext file is still caught
    assert ("plaintext-secret", "secrets/db.yaml") in kinds(result)
    assert result.exit_code == 1


def test_invalid_yaml_config(tmp_path: Path) -> None:
    files = base_files() | {".sops.yaml": "creation_rules: [\n"}
    result = run(make_repo(tmp_path / "r", files))
    assert ("invalid-config", ".sops.yaml") in kinds(result)
    assert result.exit_code == 1


# --- --mac -----------------------------------------------------------------------------------


@pytest.fixture
def age_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))


def test_mac_check(tmp_path: Path, age_identity: None) -> None:
    good = enc("app.yaml").decode()
    # plaintext value changed: the MAC no longer matches
    changed = good.replace("name_unencrypted: app", "name_unencrypted: evil")
    assert changed != good
    # two encrypted values swapped: each fails its path AAD
    lines = good.splitlines()
    pw = next(i for i, line in enumerate(lines) if line.startswith("password:"))
    tok = next(i for i, line in enumerate(lines) if line.startswith("api_token:"))
    lines[pw], lines[tok] = "password:" + lines[tok].split(":", 1)[1], "api_token:" + lines[pw].split(":", 1)[1]
    swapped = "\n".join(lines) + "\n"
    files = base_files() | {
        "secrets/changed.yaml": changed,
        "secrets/swapped.yaml": swapped,
        "secrets/foreign.yaml": enc("foreign.yaml", recipients=stranger()),
        ".sops.yaml": "creation_rules:\n  - path_regex: ^secrets/\n",
    }
    root = make_repo(tmp_path / "r", files)
    plain = run(root)
    assert not {k for k, _ in kinds(plain)} & {"mac-failure", "mac-unverified"}
    result = run(root, mac=True)
    assert set(only(result, "mac-failure")) == {
        ("mac-failure", "secrets/changed.yaml", "error", None),
        ("mac-failure", "secrets/swapped.yaml", "error", None),
    }
    assert only(result, "mac-unverified") == [("mac-unverified", "secrets/foreign.yaml", "warning", None)]
    assert any("not MAC-checked" in n for n in result.notes)
    assert "mac" in result.checks and result.exit_code == 1


def test_mac_unwraps_each_data_key_once(tmp_path: Path, age_identity: None,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from sopsflow.keys import groups

    calls: list[int] = []
    real = groups.get_data_key

    def counting(meta, order=None):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(meta, order)

    monkeypatch.setattr(groups, "get_data_key", counting)
    copy = enc("app.yaml")
    files = base_files() | {"secrets/copy1.yaml": copy, "secrets/copy2.yaml": copy,
                            "secrets/other.yaml": enc("other.yaml")}
    result = run(make_repo(tmp_path / "r", files), mac=True)
    assert result.findings == []
    assert len(calls) == 2  # app.yaml and its copies share one data key


def test_mac_without_any_key_is_reported_not_skipped(tmp_path: Path) -> None:
    result = run(make_repo(tmp_path / "r", base_files()), mac=True)
    assert only(result, "mac-unverified") == [("mac-unverified", "secrets/app.yaml", "warning", None)]
    assert result.exit_code == 0


# --- rotation policy -----------------------------------------------------------------------


def _lastmodified(data: bytes) -> datetime.datetime:
    line = next(x for x in data.decode().splitlines() if "lastmodified" in x)
    stamp = parse_rfc3339(line.split(":", 1)[1].strip().strip("'\""))
    assert stamp is not None
    return stamp


def test_rotation_age_policy(tmp_path: Path) -> None:
    files = base_files() | {
        "secrets/db-main.yaml": enc("db-main.yaml"),
        ".sopsflow.yaml": "verify:\n  rotation:\n    - path: secrets/db-*.yaml\n      max_age_days: 30\n"
                          "      severity: error\n    - path: secrets/**\n      max_age_days: 90\n",
    }
    root = make_repo(tmp_path / "r", files)
    born = _lastmodified(files["secrets/db-main.yaml"])  # type: ignore[arg-type]
    assert run(root, now=born + datetime.timedelta(days=29)).findings == []
    result = run(root, now=born + datetime.timedelta(days=45))
    assert [(k, p, s) for k, p, s, _ in only(result, "rotation-age")] == [
        ("rotation-age", "secrets/db-main.yaml", "error")]
    finding = result.findings[0]
    assert finding.line is not None and b"lastmodified" in files["secrets/db-main.yaml"].splitlines()[finding.line - 1]  # type: ignore[union-attr]
    assert "45 days" in finding.message and "30 days" in finding.message
    assert finding.fix == "sopsflow rotate -i secrets/db-main.yaml"
    later = run(root, now=born + datetime.timedelta(days=100))
    assert {(k, p, s) for k, p, s, _ in only(later, "rotation-age")} == {
        ("rotation-age", "secrets/db-main.yaml", "error"), ("rotation-age", "secrets/app.yaml", "warning")}


# --- policy: severities and allow-list -----------------------------------------------------


def test_policy_severity_and_allow_list(tmp_path: Path) -> None:
    files = base_files() | {
        "other/x.yaml": enc("x.yaml"),
        "secrets/db.yaml": SECRET_YAML,
        ".sops.yaml": sops_yaml("^secrets/", "^nothing/"),
    }
    root = make_repo(tmp_path / "r", files)
    base = run(root)
    assert {k for k, _ in kinds(base)} == {"unmatched-sops-file", "plaintext-secret", "unused-creation-rule"}
    policy = parse_policy(
        b"verify:\n  severity:\n    unmatched-sops-file: error\n    unused-creation-rule: off\n"
        b"  allow:\n    - path: secrets/db.yaml\n      kinds: [plaintext-secret]\n      reason: test\n"
    )
    result = verify(root, VerifyOptions(), policy)
    assert [(k, p, s) for k, p, s, _ in (only(result, "unmatched-sops-file"))] == [
        ("unmatched-sops-file", "other/x.yaml", "error")]
    assert kinds(result) == {("unmatched-sops-file", "other/x.yaml")}
    assert any("suppressed" in n for n in result.notes)
    assert result.exit_code == 1


def test_policy_file_is_read_from_the_repository(tmp_path: Path) -> None:
    files = base_files() | {"other/x.yaml": enc("x.yaml"),
                            ".sopsflow.yaml": "verify:\n  allow: [other/]\n"}
    assert run(make_repo(tmp_path / "r", files)).findings == []


def test_configuration_errors_exit_2(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", base_files())
    with pytest.raises(SopsError) as err:
        run(root, rev="no-such-rev")
    assert err.value.code == 2
    with pytest.raises(SopsError) as err:
        run(root, since="no-such-rev")
    assert err.value.code == 2
    (tmp_path / "plain").mkdir()
    with pytest.raises(SopsError) as err:
        run(tmp_path / "plain")
    assert err.value.code == 2
    (root / ".sopsflow.yaml").write_text("verify:\n  rotaton: []\n")
    run(root)  # HEAD: an untracked policy file is not part of what is verified
    with pytest.raises(SopsError) as err:
        run(root, source="worktree")
    assert err.value.code == 2 and "rotaton" in err.value.message
    commit_all(root)
    with pytest.raises(SopsError) as err:
        run(root)
    assert err.value.code == 2 and "rotaton" in err.value.message
    (root / ".sopsflow.yaml").write_text("strict: maybe\n")  # the hook's settings, broken
    commit_all(root)
    with pytest.raises(SopsError) as err:
        run(root)
    assert err.value.code == 2 and "strict" in err.value.message


# --- --since -----------------------------------------------------------------------------


def test_since_limits_to_changed_files(tmp_path: Path) -> None:
    files = base_files() | {"secrets/old.yaml": SECRET_YAML, ".sops.yaml": sops_yaml("^secrets/", "^nothing/")}
    root = make_repo(tmp_path / "r", files)
    base = git(root, "rev-parse", "HEAD").strip()
    write(root, {"secrets/new.yaml": SECRET_YAML, "README.md": "changed\n"})
    commit_all(root)
    full = run(root)
    assert kinds(full) == {("plaintext-secret", "secrets/old.yaml"), ("plaintext-secret", "secrets/new.yaml"),
                           ("unused-creation-rule", ".sops.yaml")}
    since = run(root, since=base)
    assert kinds(since) == {("plaintext-secret", "secrets/new.yaml")}
    assert sorted(a.path for a in since.files) == ["README.md", "secrets/new.yaml"]
    # a change to .sops.yaml brings the rule checks back
    write(root, {".sops.yaml": sops_yaml("^secrets/", "^nothing/", "^nada/")})
    commit_all(root)
    assert {k for k, _ in kinds(run(root, since=base))} == {"plaintext-secret", "unused-creation-rule"}


# --- Flux lint -----------------------------------------------------------------------------


def kustomization(name: str, path: str, decryption: str = "") -> str:
    return f"""\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
  interval: 10m
  path: {path}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
{decryption}"""


DECRYPTION = "  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n"
AGE_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: sops-age
  namespace: flux-system
stringData:
  age.agekey: placeholder-key-one
  identity.txt: placeholder-key-two
"""


def flux_files() -> dict[str, str | bytes]:
    return {
        ".sops.yaml": "creation_rules:\n  - path_regex: (secret|sops-age).*\\.yaml$\n"
                      f"    encrypted_regex: ^(data|stringData)$\n    age: {AGE_RECIPIENT}\n",
        "clusters/prod/infra.yaml": kustomization("infra", "./infra"),
        "clusters/prod/apps.yaml": kustomization("apps", "./apps", DECRYPTION),
        "clusters/prod/sops-age.yaml": enc("sops-age.yaml", AGE_SECRET, args=K8S_REGEX),
        "infra/db-secret.yaml": enc("db-secret.yaml", K8S_SECRET, args=K8S_REGEX),
        "infra/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n",
        "apps/secret.yaml": enc("secret.yaml", K8S_SECRET),  # everything encrypted, kind included
    }


def test_flux_lint(tmp_path: Path) -> None:
    files = flux_files()
    result = run(make_repo(tmp_path / "r", files))
    assert "flux" in result.checks
    assert kinds(result) == {
        ("flux-missing-decryption", "clusters/prod/infra.yaml"),
        ("flux-secret-metadata-encrypted", "apps/secret.yaml"),
        ("flux-decryption-key-name", "clusters/prod/sops-age.yaml"),
    }
    by_kind = {f.kind: f for f in result.findings}
    missing = by_kind["flux-missing-decryption"]
    assert missing.severity == "error" and missing.line == 2  # the `kind:` line
    assert "infra/db-secret.yaml" in missing.message
    key = by_kind["flux-decryption-key-name"]
    assert "identity.txt" in key.message and "age.agekey" not in key.message
    secret_file = files["clusters/prod/sops-age.yaml"]
    assert isinstance(secret_file, bytes)
    secret_lines = secret_file.splitlines()
    assert key.line is not None and secret_lines[key.line - 1].strip().startswith(b"identity.txt:")
    meta = by_kind["flux-secret-metadata-encrypted"]
    assert "apiVersion" in meta.message and "kind" in meta.message and "metadata" in meta.message
    assert meta.line == 1
    assert result.exit_code == 1


def test_flux_lint_passes_a_correct_setup(tmp_path: Path) -> None:
    files = flux_files()
    files["clusters/prod/infra.yaml"] = kustomization("infra", "./infra", DECRYPTION)
    files["apps/secret.yaml"] = enc("secret.yaml", K8S_SECRET, args=K8S_REGEX)
    files["clusters/prod/sops-age.yaml"] = enc(
        "sops-age.yaml", AGE_SECRET.replace("identity.txt", "backup.agekey"), args=K8S_REGEX)
    result = run(make_repo(tmp_path / "r", files))
    assert result.findings == [] and "flux" in result.checks


def test_flux_lint_only_with_flux_manifests_unless_forced(tmp_path: Path) -> None:
    files = {k: v for k, v in flux_files().items() if not k.startswith("clusters/")}
    root = make_repo(tmp_path / "r", files)
    result = run(root)
    assert "flux" not in result.checks and result.findings == []
    forced = run(root, flux=True)
    assert kinds(forced) == {("flux-secret-metadata-encrypted", "apps/secret.yaml")}
    assert run(make_repo(tmp_path / "r2", flux_files()), flux=False).findings == []


def test_flux_large_encrypted_file(tmp_path: Path) -> None:
    files = flux_files()
    files["clusters/prod/infra.yaml"] = kustomization("infra", "./infra", DECRYPTION)
    files["apps/secret.yaml"] = enc("secret.yaml", K8S_SECRET, args=K8S_REGEX)
    files["clusters/prod/sops-age.yaml"] = enc("sops-age.yaml", AGE_SECRET.replace("identity.txt", "b.agekey"),
                                               args=K8S_REGEX)
    # 5 MiB of binary: sops writes it base64-encoded, well over the limit
    files["infra/blob-secret.bin"] = enc("blob-secret.bin", os.urandom(4 * 1024 * 1024).hex()[:5 * 1024 * 1024])
    files[".sops.yaml"] = files[".sops.yaml"] + f"  - path_regex: \\.bin$\n    age: {AGE_RECIPIENT}\n"  # type: ignore[operator]
    result = run(make_repo(tmp_path / "r", files))
    assert kinds(result) == {("large-encrypted-file", "infra/blob-secret.bin")}
    assert result.findings[0].severity == "warning" and result.exit_code == 0


def test_looks_sops_helper_and_rfc3339() -> None:
    assert parse_rfc3339("2024-01-02T03:04:05Z") == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert parse_rfc3339("2024-01-02T05:04:05.123456789+02:00") == datetime.datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert parse_rfc3339("yesterday") is None
    assert verify_mod._normalise_dir("./clusters/prod/") == "clusters/prod"
    assert verify_mod._normalise_dir("./") == ""
    assert verify_mod._under("a/b/c.yaml", "a/b") and not verify_mod._under("a/bc/x.yaml", "a/b")


def test_nested_configs_govern_their_subtrees(tmp_path: Path) -> None:
    files = base_files() | {
        # team/ has its own config (as the hook and sops run from team/ see it)
        "team/.sops.yaml": sops_yaml("^vault/", "^unused/"),
        "team/vault/db.yaml": SECRET_YAML,
        "team/secrets/ok.txt": "plain, and team/.sops.yaml has no rule for secrets/\n",
    }
    result = run(make_repo(tmp_path / "r", files))
    assert kinds(result) == {("plaintext-secret", "team/vault/db.yaml"), ("unused-creation-rule", "team/.sops.yaml")}
    assert "creation_rules[1]" in next(f.message for f in result.findings if f.kind == "unused-creation-rule")


def test_since_with_an_older_revision_and_broken_config(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", base_files())
    first = git(root, "rev-parse", "HEAD").strip()
    write(root, {"secrets/a.yaml": SECRET_YAML})
    second = commit_all(root)
    write(root, {"secrets/b.yaml": SECRET_YAML})
    commit_all(root)
    # --rev R --since S: what changed from S to R, judged at R
    assert kinds(run(root, rev=second, since=first)) == {("plaintext-secret", "secrets/a.yaml")}
    # a broken .sops.yaml that did not change still matters for changed files it governs
    write(root, {".sops.yaml": sops_yaml("^secrets/", "(")})
    third = commit_all(root)
    write(root, {"docs/new.md": "hello\n"})
    commit_all(root)
    assert ("invalid-config", ".sops.yaml") in kinds(run(root, since=third))


def test_flux_metadata_check_reads_json_and_multi_document_files(tmp_path: Path) -> None:
    import json as _json

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": {"k": "v"}}
    two_docs = K8S_SECRET + "---\n" + K8S_SECRET.replace("name: db", "name: db2")
    files: dict[str, str | bytes] = {
        ".sops.yaml": "creation_rules:\n  - path_regex: ^apps/\n" f"    age: {AGE_RECIPIENT}\n",
        "apps/secret.json": enc("secret.json", _json.dumps(secret)),
        "apps/ok.json": enc("ok.json", _json.dumps(secret), args=K8S_REGEX),
        # second document encrypted with a regex that also takes metadata
        "apps/two.yaml": enc("two.yaml", two_docs, args=("--encrypted-regex", "^(stringData|metadata)$")),
    }
    result = run(make_repo(tmp_path / "r", files), flux=True)
    found = [(k, p, line) for k, p, _, line in only(result, "flux-secret-metadata-encrypted")]
    assert found[0] == ("flux-secret-metadata-encrypted", "apps/secret.json", None)
    two = [x for x in found if x[1] == "apps/two.yaml"]
    assert len(found) == 3 and len(two) == 2 and all(line is not None for _, _, line in two)
    assert all("metadata" in f.message and "kind" not in f.message.split(":")[0]
               for f in result.findings if f.path == "apps/two.yaml" and f.kind == "flux-secret-metadata-encrypted")


def test_worker_processes_give_the_same_result(tmp_path: Path, age_identity: None) -> None:
    files = flux_files() | {
        "vault/plain.yaml": SECRET_YAML,
        "secrets/app.yaml": enc("app.yaml"),
        "secrets/changed.yaml": enc("app.yaml").replace(b"name_unencrypted: app", b"name_unencrypted: x"),
        "secrets/foreign.yaml": enc("foreign.yaml", recipients=stranger()),
        "deploy/app.env": "DB_PASSWORD=Zq8vN3xLk2mP9wRt\n",
        ".sopsflow.yaml": "verify:\n  rotation:\n    - path: secrets/**\n      max_age_days: 1\n",
    }
    files[".sops.yaml"] = files[".sops.yaml"] + f"  - path_regex: ^(secrets|vault)/\n    age: {AGE_RECIPIENT}\n"  # type: ignore[operator]
    root = make_repo(tmp_path / "r", files)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    one = run(root, mac=True, jobs=1, now=later)
    three = run(root, mac=True, jobs=3, now=later)
    assert one.findings == three.findings
    assert [(a.path, a.status) for a in one.files] == [(a.path, a.status) for a in three.files]
    assert one.notes == three.notes
    assert {"mac-failure", "mac-unverified", "rotation-age", "plaintext-secret", "leaked-secret",
            "flux-missing-decryption"} <= {k for k, _ in kinds(one)}
