"""`sopsflow verify` on the command line: exit codes, formats, files."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml

from sopsflow.main import main

from ..conftest import REPO, base_env, run_sopsflow
from ..vectors import AGE_KEY_FILE
from ..verifyfixtures import commit_all, git, make_repo, sops_encrypt, sops_yaml, write

SCHEMA = json.loads((REPO / "tests" / "data" / "sarif-2.1.0.json").read_text())
GITHUB_LINE = re.compile(r"^::(error|warning) file=([^,]+)(?:,line=(\d+))?,title=([^:]+)::(.*)$")
PLAIN = "password: hunter2-but-longer\n"


@pytest.fixture(scope="module")
def encrypted() -> bytes:
    return sops_encrypt("app.yaml", "password: s3cret-value\nname_unencrypted: app\n")


@pytest.fixture
def clean_repo(tmp_path: Path, encrypted: bytes) -> Path:
    return make_repo(tmp_path / "repo", {
        ".sops.yaml": sops_yaml("^secrets/"),
        "README.md": "hello\n",
        "secrets/app.yaml": encrypted,
    })


@pytest.fixture
def dirty_repo(clean_repo: Path, encrypted: bytes) -> Path:
    write(clean_repo, {
        "secrets/db.yaml": PLAIN,
        "deploy/app.env": "DB_PASSWORD=Zq8vN3xLk2mP9wRt\n",
        "other/x.yaml": encrypted,
        ".sops.yaml": sops_yaml("^secrets/", "^nothing/"),
    })
    commit_all(clean_repo)
    return clean_repo


def cli(root: Path, *args: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> tuple[int, str, str]:
    monkeypatch.chdir(root)
    code = main(["verify", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_clean_repository_exits_0(clean_repo: Path) -> None:
    done = run_sopsflow(["verify"], cwd=clean_repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip().endswith("3 files checked, 0 errors, 0 warnings")


def test_findings_exit_1_and_every_format_parses(dirty_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    done = run_sopsflow(["verify", "--format", "text",
                         "--format", f"sarif={out / 'v.sarif'}", "--format", f"junit={out / 'v.xml'}",
                         "--format", f"github={out / 'gh.txt'}", "--format", f"gitlab={out / 'gl.json'}",
                         "--format", f"json={out / 'v.json'}"], cwd=dirty_repo)
    assert done.returncode == 1, done.stderr
    text = done.stdout.decode()
    assert "secrets/db.yaml:1: error:" in text and "[plaintext-secret]" in text

    summary = json.loads((out / "v.json").read_text())
    found = {(f["kind"], f["path"]) for f in summary["findings"]}
    assert found == {
        ("plaintext-secret", "secrets/db.yaml"),
        ("leaked-secret", "deploy/app.env"),
        ("unmatched-sops-file", "other/x.yaml"),
        ("unused-creation-rule", ".sops.yaml"),
    }
    assert summary["summary"]["exit_code"] == 1 and summary["summary"]["errors"] == 2

    sarif = json.loads((out / "v.sarif").read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in results} == found
    assert {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]} == {k for k, _ in found}
    lines = {r["ruleId"]: r["locations"][0]["physicalLocation"].get("region", {}).get("startLine") for r in results}
    assert lines["leaked-secret"] == 1 and lines["unused-creation-rule"] == 4

    suite = ET.parse(out / "v.xml").getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    tracked = set(git(dirty_repo, "ls-files").split())
    assert set(cases) == tracked
    failed = {name for name, c in cases.items() if c.find("failure") is not None}
    assert failed == {"secrets/db.yaml", "deploy/app.env"}
    assert suite.get("failures") == "2" and suite.get("tests") == str(len(tracked))

    gh = (out / "gh.txt").read_text().splitlines()
    parsed = [GITHUB_LINE.match(line) for line in gh[:-1]]
    assert all(parsed), gh
    assert {(m.group(1), m.group(2)) for m in parsed if m} == {
        ("error", "secrets/db.yaml"), ("error", "deploy/app.env"),
        ("warning", "other/x.yaml"), ("warning", ".sops.yaml")}

    gl = json.loads((out / "gl.json").read_text())
    assert {(i["check_name"], i["location"]["path"], i["severity"]) for i in gl} == {
        ("plaintext-secret", "secrets/db.yaml", "major"), ("leaked-secret", "deploy/app.env", "major"),
        ("unmatched-sops-file", "other/x.yaml", "minor"), ("unused-creation-rule", ".sops.yaml", "minor")}
    assert all(i["description"] and i["fingerprint"] and i["location"]["lines"]["begin"] >= 1 for i in gl)
    assert "Zq8vN3xLk2mP9wRt" not in "".join(p.read_text() for p in out.iterdir())


def test_output_flag_and_repo_flag(dirty_repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.sarif"
    done = run_sopsflow(["verify", "-C", str(dirty_repo), "--format", "sarif", "--output", str(target)],
                        cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == b""
    jsonschema.Draft4Validator(SCHEMA).validate(json.loads(target.read_text()))


@pytest.mark.parametrize("args", [
    ["--format", "nope"],
    ["--format", "text", "--format", "json"],
    ["--format", "text", "--format", "json", "--output", "x"],
    ["--rev", "does-not-exist"],
    ["--since", "does-not-exist"],
    ["--index", "--worktree"],
    ["--policy", "missing.yaml"],
    ["--jobs", "0"],
])
def test_usage_errors_exit_2(clean_repo: Path, args: list[str], monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(clean_repo)
    try:
        code = main(["verify", *args])
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    assert code == 2
    assert capsys.readouterr().err.strip()


def test_config_errors_exit_2(clean_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    (clean_repo / ".sopsflow.yaml").write_text("verify:\n  severity: {plaintext-secret: loud}\n")
    code, _, err = cli(clean_repo, "--worktree", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "plaintext-secret" in err
    commit_all(clean_repo)
    code, _, err = cli(clean_repo, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "plaintext-secret" in err
    (clean_repo / ".sopsflow.yaml").write_text("allow: {path: x}\n")  # the hook's section, broken
    commit_all(clean_repo)
    code, _, err = cli(clean_repo, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "allow" in err
    (tmp_path / "norepo").mkdir()
    code, _, err = cli(tmp_path / "norepo", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "git repository" in err


def test_warnings_alone_exit_0_and_policy_can_raise_them(clean_repo: Path, encrypted: bytes,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    write(clean_repo, {"other/x.yaml": encrypted})
    commit_all(clean_repo)
    code, out, _ = cli(clean_repo, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "warning: " in out and "[unmatched-sops-file]" in out
    policy = clean_repo.parent / "policy.yaml"
    policy.write_text("verify:\n  severity:\n    unmatched-sops-file: error\n")
    code, out, _ = cli(clean_repo, "--policy", str(policy), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "other/x.yaml: error:" in out


def test_since_index_and_worktree(clean_repo: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    base = git(clean_repo, "rev-parse", "HEAD").strip()
    write(clean_repo, {"secrets/new.yaml": PLAIN})
    code, out, _ = cli(clean_repo, "--worktree", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0  # not tracked yet: verify looks at tracked files only
    git(clean_repo, "add", "secrets/new.yaml")
    assert cli(clean_repo, monkeypatch=monkeypatch, capsys=capsys)[0] == 0
    code, out, _ = cli(clean_repo, "--index", "--format", "github", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and out.startswith("::error file=secrets/new.yaml,line=1,title=sopsflow plaintext-secret::")
    commit_all(clean_repo)
    code, out, _ = cli(clean_repo, "--since", base, "--format", "json", monkeypatch=monkeypatch, capsys=capsys)
    doc = json.loads(out)
    assert code == 1 and [f["path"] for f in doc["findings"]] == ["secrets/new.yaml"]
    assert [f["path"] for f in doc["files"]] == ["secrets/new.yaml"]
    code, out, _ = cli(clean_repo, "--rev", base, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0


def test_mac_on_the_command_line(clean_repo: Path) -> None:
    app = clean_repo / "secrets" / "app.yaml"
    app.write_text(app.read_text().replace("name_unencrypted: app", "name_unencrypted: evil"))
    commit_all(clean_repo)
    assert run_sopsflow(["verify"], cwd=clean_repo).returncode == 0
    without_key = run_sopsflow(["verify", "--mac"], cwd=clean_repo)
    assert without_key.returncode == 0 and b"[mac-unverified]" in without_key.stdout
    done = run_sopsflow(["verify", "--mac", "--format", "github"], cwd=clean_repo,
                        env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
    assert done.returncode == 1
    assert done.stdout.decode().startswith("::error file=secrets/app.yaml,title=sopsflow mac-failure::")


def test_pre_commit_hook_entry() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    entry = next(h for h in hooks if h["id"] == "sopsflow-verify")
    assert entry["entry"].split()[:2] == ["sopsflow", "verify"]
    assert entry["always_run"] is True and entry["pass_filenames"] is False
    assert set(entry["stages"]) == {"manual", "pre-push"}
    assert entry["language"] == "python"
