"""Inline suppressions of detector findings and position-free key
fingerprints, end to end on real git repositories through ``sopsflow check``
and ``sopsflow verify``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyrage
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sopsflow.gitops.check import fingerprint
from tests.gitfixtures import AGE_RECIPIENT, init_repo, run_check, stage, write

RULES = f"""\
creation_rules:
  - path_regex: ^secrets/
    age: {AGE_RECIPIENT}
  - path_regex: ^k8s/.*secret.*\\.yaml$
    encrypted_regex: ^(data|stringData)$
    age: {AGE_RECIPIENT}
"""
PASSWORD = "Zq8vN3xLw2Rt7Kp9"  # a credential-like value (no placeholder)
TOKEN = "ghp_" + "R8kd2LpQ9vXz4NbT7wHc3Mf6Ys1Ja5Ue0GiK"  # a GitHub token shape


def _repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "r", {"README.md": "docs\n"}, rules=RULES)


def _sopsflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from tests.gitfixtures import git_env

    return subprocess.run([sys.executable, "-m", "sopsflow", *args], cwd=repo, env=git_env(),
                          capture_output=True, text=True, timeout=120)


def _lines(text: str, prefix: str) -> list[str]:
    return [x for x in text.splitlines() if x.startswith(prefix)]


def test_markers_silence_heuristic_findings_on_their_line_or_after_a_comment_line(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    write(repo, "app/.env", "\n".join([
        f"DB_PASSWORD={PASSWORD}  # pragma: allowlist secret",         # 1: same line
        "# pragma: allowlist nextline secret",                         # 2
        f"API_TOKEN={PASSWORD}",                                        # 3: covered by 2
        "# sopsflow:allow",                                             # 4
        f"SMTP_PASSWORD={PASSWORD}",                                    # 5: covered by 4
        f"REDIS_PASSWORD={PASSWORD} # gitleaks:allow",                  # 6: same line
        "# pragma: allowlist secret",                                   # 7: same-line form only
        f"CACHE_PASSWORD={PASSWORD}",                                   # 8: NOT covered
        f"A_PASSWORD={PASSWORD} # sopsflow:allow",                      # 9: covers itself only
        f"B_PASSWORD={PASSWORD}",                                       # 10: NOT covered
    ]) + "\n")
    write(repo, "tools/deploy.py", f'TOKEN = "{TOKEN}"  # gitleaks:allow\n')
    stage(repo, "app/.env", "tools/deploy.py")
    done = run_check(repo)
    assert done.returncode == 1, done.stdout
    refused = _lines(done.stdout, "app/.env")
    assert [x.split(":")[1] for x in refused] == ["8", "10"], done.stdout
    assert _lines(done.stdout, "tools/deploy.py") == []
    summary = done.stdout.splitlines()[-1]
    assert "6 suppressed inline" in summary
    assert "suppressed:" not in done.stdout  # listed only on request

    shown = run_check(repo, "--show-suppressed")
    listed = [x for x in shown.stdout.splitlines() if ": suppressed: " in x]
    assert len(listed) == 6
    assert any(x.startswith("app/.env:1: suppressed: dotenv credential DB_PASSWORD")
               and x.endswith("by inline `pragma: allowlist secret`") for x in listed)
    assert any(x.startswith("app/.env:3: ") and x.endswith("by inline `pragma: allowlist nextline secret`")
               for x in listed)
    assert any(x.startswith("tools/deploy.py:1: ") and "GitHub token" in x and x.endswith("`gitleaks:allow`")
               for x in listed)
    assert PASSWORD not in shown.stdout and TOKEN not in shown.stdout


def test_key_material_is_never_suppressed_inline(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    identity = str(pyrage.x25519.Identity.generate())
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    write(repo, "ops/age.txt", f"# sopsflow:allow\n{identity}  # pragma: allowlist secret gitleaks:allow\n")
    write(repo, "ops/tls.txt", "# pragma: allowlist nextline secret\n" + pem)
    stage(repo, "ops/age.txt", "ops/tls.txt")
    done = run_check(repo)
    assert done.returncode == 1
    assert len(_lines(done.stdout, "ops/age.txt:2: error: age identity")) == 1, done.stdout
    assert len(_lines(done.stdout, "ops/tls.txt:2: error: PEM private key")) == 1, done.stdout
    assert "suppressed inline" not in done.stdout


def test_a_pragma_cannot_smuggle_plaintext_through_a_rule_path(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    # the rule encrypts everything: plaintext is refused, marker or not
    write(repo, "secrets/app.env", f"# sopsflow:allow\nDB_PASSWORD={PASSWORD}  # pragma: allowlist secret\n")
    # the rule selects no value here (no data/stringData), so the detectors
    # judge the text: their findings stay, markers or not
    write(repo, "k8s/app-secret.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n"
                                       f"  annotations:\n    token: {TOKEN}  # gitleaks:allow sopsflow:allow\n")
    stage(repo, "secrets/app.env", "k8s/app-secret.yaml")
    done = run_check(repo, "--show-suppressed")
    assert done.returncode == 1
    assert _lines(done.stdout, "secrets/app.env") and "[plaintext-secret]" in _lines(done.stdout, "secrets/app.env")[0]
    assert any("GitHub token" in x for x in _lines(done.stdout, "k8s/app-secret.yaml:6")), done.stdout
    assert "suppressed" not in done.stdout

    verified = _sopsflow(repo, "verify", "--index", "--show-suppressed")
    assert verified.returncode == 1
    assert "suppressed" not in verified.stdout


def test_verify_counts_and_lists_suppressed_findings(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", {
        "app/.env": f"DB_PASSWORD={PASSWORD}  # pragma: allowlist secret\nLOG_LEVEL=debug\n",
        "tools/deploy.py": f'TOKEN = "{TOKEN}"  # sopsflow:allow\n',
    }, rules=RULES)
    done = _sopsflow(repo, "verify")
    assert done.returncode == 0, done.stdout
    summary = done.stdout.splitlines()[-1]
    assert " 0 errors, " in summary and summary.endswith(", 2 suppressed"), summary
    assert "note: 2 finding(s) suppressed inline" in done.stdout
    assert ": suppressed: " not in done.stdout
    shown = _sopsflow(repo, "verify", "--show-suppressed")
    assert "app/.env:1: suppressed: dotenv credential DB_PASSWORD outside every creation rule " \
           "[leaked-secret] by inline `pragma: allowlist secret`" in shown.stdout
    assert "tools/deploy.py:1: suppressed: " in shown.stdout
    doc = json.loads(_sopsflow(repo, "verify", "--format", "json").stdout)
    assert [f["kind"] for f in doc["findings"]] == ["unused-creation-rule"] * 2
    assert sorted((s["path"], s["suppressed_by"]) for s in doc["suppressed"]) == [
        ("app/.env", "inline `pragma: allowlist secret`"), ("tools/deploy.py", "inline `sopsflow:allow`")]


def _age_lines(n: int) -> list[str]:
    return [str(pyrage.x25519.Identity.generate()) for _ in range(n)]


def test_key_fingerprints_do_not_shift_when_a_key_is_inserted_above(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    first, inserted = _age_lines(2)
    write(repo, "ops/keys.txt", f"{first}\n")
    stage(repo, "ops/keys.txt")
    before = _lines(run_check(repo).stdout, "ops/keys.txt")
    assert len(before) == 1
    fp = before[0].split("(fp:")[1].rstrip(")")
    write(repo, "ops/keys.txt", f"{inserted}\n{first}\n")
    stage(repo, "ops/keys.txt")
    after = _lines(run_check(repo).stdout, "ops/keys.txt")
    assert len(after) == 2
    assert after[1].startswith("ops/keys.txt:2:") and after[1].endswith(f"(fp:{fp})")
    assert not after[0].endswith(f"(fp:{fp})")
    # the anchor is the identity's public half: the same key elsewhere in the file, same fingerprint
    recipient = str(pyrage.x25519.Identity.from_str(first).to_public())
    assert fp == fingerprint("leaked-secret", "ops/keys.txt", f"age-identity:{recipient}")

    write(repo, ".sopsflow.yaml", f"allow:\n  fingerprints: [{fp}]\n")
    stage(repo, ".sopsflow.yaml")
    allowed = run_check(repo)
    assert _lines(allowed.stdout, "ops/keys.txt:2") == [] and len(_lines(allowed.stdout, "ops/keys.txt:1")) == 1


def test_old_ordinal_fingerprints_are_honoured_with_a_warning_naming_the_new_one(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    (identity,) = _age_lines(1)
    write(repo, "ops/bundle.txt", pem + identity + "\n")
    # what earlier versions printed: ordinal anchors
    old_key = fingerprint("leaked-secret", "ops/bundle.txt", "private-key:PRIVATE KEY:0")
    old_age = fingerprint("leaked-secret", "ops/bundle.txt", "age-identity:0")
    write(repo, ".sopsflow.yaml", f"allow:\n  fingerprints: [{old_key}, {old_age}]\n")
    stage(repo, "ops/bundle.txt", ".sopsflow.yaml")
    done = run_check(repo)
    assert done.returncode == 0, done.stdout
    warnings = [x for x in done.stdout.splitlines() if "[old-fingerprint]" in x]
    assert len(warnings) == 2, done.stdout
    for old in (old_key, old_age):
        line = next(x for x in warnings if f"entry {old} " in x)
        new = line.split("its fingerprint is now ")[1].split(" ")[0]
        assert len(new) == 16 and new != old
        assert f"fix: replace {old} with {new} in .sopsflow.yaml" in line
        assert "honoured until sopsflow 0.4" in line
    # with the new fingerprints the warnings go away
    news = [x.split("its fingerprint is now ")[1].split(" ")[0] for x in warnings]
    write(repo, ".sopsflow.yaml", f"allow:\n  fingerprints: [{', '.join(news)}]\n")
    stage(repo, ".sopsflow.yaml")
    clean = run_check(repo)
    assert clean.returncode == 0 and "old-fingerprint" not in clean.stdout, clean.stdout
