"""The verify report formats, each parsed back.

tests/data/sarif-2.1.0.json is the official OASIS SARIF 2.1.0 JSON schema
(errata 01), copied unchanged from github.com/oasis-tcs/sarif-spec, file
sarif-2.1/schema/sarif-schema-2.1.0.json at commit
e0583813964ec43cea53b6b531b402866095ed1f (identical to
Schemata/sarif-schema-2.1.0.json of the "Approved Errata" update, ffa72eb).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow.errors import SopsError
from sopsflow.gitops.check import Finding
from sopsflow.gitops.report import FORMATS, fingerprints, parse_targets, render
from sopsflow.gitops.verify import AuditedFile, VerifyResult

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-2.1.0.json").read_text())
GITHUB_LINE = re.compile(r"^::(error|warning) file=([^,:]+)(?:,line=(\d+))?,title=([^:]+)::(.*)$")


def sample(tmp_path: Path) -> VerifyResult:
    findings = [
        Finding("plaintext-secret", "secrets/db.yaml", "plaintext file at a rule path", "error", None,
                "sopsflow encrypt -i secrets/db.yaml"),
        Finding("leaked-secret", "app/config.py", "AWS access key id", "error", 12, None),
        Finding("leaked-secret", "app/config.py", "private key block", "error", 30, None),
        Finding("unused-creation-rule", ".sops.yaml", "creation_rules[1] matches no tracked file", "warning", 4,
                None),
        Finding("rotation-age", "dir with space/a%b,c:d.yaml", "data key is old\nsecond line", "warning", 7, None),
    ]
    return VerifyResult(
        root=tmp_path,
        target="HEAD",
        commit="0" * 40,
        files=[AuditedFile(p, s) for p, s in [
            (".sops.yaml", "not-sops"), ("app/config.py", "not-sops"), ("secrets/db.yaml", "plaintext"),
            ("secrets/ok.yaml", "encrypted"), ("dir with space/a%b,c:d.yaml", "encrypted")]],
        findings=findings,
        checks=["audit", "rules"],
        started="2024-01-01T00:00:00Z",
        seconds=0.25,
    )


def test_sarif_is_schema_valid_and_complete(tmp_path: Path) -> None:
    result = sample(tmp_path)
    doc = json.loads(render("sarif", result))
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted({f.kind for f in result.findings})
    results = run["results"]
    assert len(results) == len(result.findings)
    by_rule = {r["id"]: i for i, r in enumerate(rules)}
    for res, finding in zip(results, result.findings, strict=True):
        assert res["ruleId"] == finding.kind
        assert res["ruleIndex"] == by_rule[finding.kind]
        assert res["level"] == finding.severity
        loc = res["locations"][0]["physicalLocation"]
        assert not loc["artifactLocation"]["uri"].startswith(("/", "file:"))
        if finding.line:
            assert loc["region"]["startLine"] == finding.line
        else:
            assert "region" not in loc
        assert len(res["partialFingerprints"]["sopsflowFindingHash/v1"]) == 64
    assert results[4]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "dir%20with%20space/a%25b%2Cc%3Ad.yaml"
    # Two findings of one kind in one file keep distinct fingerprints.
    prints = [r["partialFingerprints"]["sopsflowFindingHash/v1"] for r in results]
    assert len(set(prints)) == len(prints)
    assert {r["id"]: r["defaultConfiguration"]["level"] for r in rules}["unused-creation-rule"] == "warning"


def test_sarif_schema_rejects_a_broken_log(tmp_path: Path) -> None:
    # The schema check must be able to fail: a region with line 0 is invalid.
    doc = json.loads(render("sarif", sample(tmp_path)))
    doc["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate(doc)


def test_empty_result_renders_in_every_format(tmp_path: Path) -> None:
    result = VerifyResult(root=tmp_path, target="index", commit=None, started="2024-01-01T00:00:00Z")
    for fmt in FORMATS:
        text = render(fmt, result)
        assert text.endswith("\n")
    jsonschema.Draft4Validator(SCHEMA).validate(json.loads(render("sarif", result)))
    assert json.loads(render("gitlab", result)) == []
    root = ET.fromstring(render("junit", result))
    assert root.get("tests") == "0" and root.get("failures") == "0"


def test_fingerprints_are_stable_and_ignore_messages() -> None:
    a = [Finding("rotation-age", "a.yaml", "30 days old", "warning", 3, None)]
    b = [Finding("rotation-age", "a.yaml", "31 days old", "error", 4, None)]
    c = [Finding("rotation-age", "b.yaml", "30 days old", "warning", 3, None)]
    assert fingerprints(a) == fingerprints(b)
    assert fingerprints(a) != fingerprints(c)


def test_github_commands_parse_back(tmp_path: Path) -> None:
    result = sample(tmp_path)
    lines = render("github", result).splitlines()
    commands = [GITHUB_LINE.match(line) for line in lines[:-1]]
    assert all(commands), lines
    parsed = [m.groups() for m in commands if m]
    assert [p[0] for p in parsed] == [f.severity for f in result.findings]
    assert parsed[1][1:3] == ("app/config.py", "12")
    assert parsed[0][2] is None  # no line known
    assert parsed[4][1] == "dir with space/a%25b%2Cc%3Ad.yaml"
    assert parsed[4][4] == "data key is old%0Asecond line"
    assert parsed[0][4].startswith("plaintext file at a rule path Fix: sopsflow encrypt")
    assert "5 files checked, 3 errors, 2 warnings" in lines[-1]
    assert not lines[-1].startswith("::")


def test_gitlab_code_quality(tmp_path: Path) -> None:
    result = sample(tmp_path)
    issues = json.loads(render("gitlab", result))
    assert len(issues) == len(result.findings)
    for issue, finding in zip(issues, result.findings, strict=True):
        assert issue["check_name"] == finding.kind
        assert issue["description"] == finding.message
        assert issue["severity"] == ("major" if finding.severity == "error" else "minor")
        assert issue["location"]["path"] == finding.path
        assert issue["location"]["lines"]["begin"] == (finding.line or 1)
        assert re.fullmatch(r"[0-9a-f]{64}", issue["fingerprint"])
    assert len({i["fingerprint"] for i in issues}) == len(issues)


def test_junit_one_case_per_file(tmp_path: Path) -> None:
    result = sample(tmp_path)
    root = ET.fromstring(render("junit", result))
    suite = root.find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {a.path for a in result.files}
    assert suite.get("tests") == "5" and suite.get("failures") == "2" and root.get("failures") == "2"
    failure = cases["app/config.py"].find("failure")
    assert failure is not None and failure.get("type") == "leaked-secret"
    assert failure.text is not None and "app/config.py:12" in failure.text and "app/config.py:30" in failure.text
    assert cases["secrets/ok.yaml"].find("failure") is None
    # warnings do not fail a case but are shown
    sops_case = cases[".sops.yaml"]
    assert sops_case.find("failure") is None
    out = sops_case.find("system-out")
    assert out is not None and out.text is not None and "unused-creation-rule" in out.text


def test_junit_adds_cases_for_paths_not_audited(tmp_path: Path) -> None:
    result = sample(tmp_path)
    result.files = []
    suite = ET.fromstring(render("junit", result)).find("testsuite")
    assert suite is not None
    assert {c.get("name") for c in suite.findall("testcase")} == {f.path for f in result.findings}


def test_text_and_json(tmp_path: Path) -> None:
    result = sample(tmp_path)
    text = render("text", result)
    assert "app/config.py:12: error: AWS access key id [leaked-secret]" in text
    assert "    fix: sopsflow encrypt -i secrets/db.yaml" in text
    assert text.rstrip().endswith("5 files checked, 3 errors, 2 warnings")
    doc = json.loads(render("json", result))
    assert doc["summary"] == {"files": 5, "errors": 3, "warnings": 2, "exit_code": 1}
    assert doc["findings"][1] == {"kind": "leaked-secret", "severity": "error", "path": "app/config.py",
                                  "line": 12, "message": "AWS access key id", "fix": None}


@settings(max_examples=40, deadline=None)
@given(
    path=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30),
    message=st.text(st.characters(exclude_categories=["Cs"]), max_size=60),
    line=st.one_of(st.none(), st.integers(min_value=1, max_value=10**6)),
)
def test_any_path_and_message_stay_well_formed(path: str, message: str, line: int | None) -> None:
    result = VerifyResult(root=Path("/r"), target="HEAD", commit=None,
                          files=[AuditedFile(path, "plaintext")],
                          findings=[Finding("plaintext-secret", path, message, "error", line, None)])
    jsonschema.Draft4Validator(SCHEMA).validate(json.loads(render("sarif", result)))
    ET.fromstring(render("junit", result))
    # The runner reads commands line by line (on \n only).
    gh = render("github", result).split("\n")
    assert len(gh) == 3 and gh[2] == ""
    assert GITHUB_LINE.match(gh[0])
    assert json.loads(render("gitlab", result))[0]["location"]["path"] == path


def test_parse_targets() -> None:
    assert parse_targets(None, None) == [("text", None)]
    assert parse_targets(["sarif"], "out.sarif") == [("sarif", "out.sarif")]
    assert parse_targets(["text", "sarif=a.sarif", "junit=b.xml"], None) == [
        ("text", None), ("sarif", "a.sarif"), ("junit", "b.xml")]
    bad: list[tuple[list[str], str | None]] = [
        (["nope"], None), (["text", "json"], None), (["text", "json"], "f"), (["sarif=a"], "b"), (["sarif="], None)]
    for specs, output in bad:
        with pytest.raises(SopsError) as err:
            parse_targets(specs, output)
        assert err.value.code == 2
