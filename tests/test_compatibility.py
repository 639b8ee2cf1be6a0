"""Golden tests for what docs/compatibility.md promises to keep stable.

Each golden file under tests/golden/ holds one promise: the public Python API,
every command's flags (read from the argparse parsers), the exit codes, the
`.sopsflow.yaml` schema, SARIF rule ids, and a fixture repository's findings
(SARIF rule ids, SARIF fingerprints, allow-list fingerprints, exit codes).

A golden entry that disappears or changes fails the test; an entry that is new
(a command, a flag, a finding kind) does not. Exit codes and fingerprints must
match exactly. ``SOPSFLOW_UPDATE_GOLDEN=1`` rewrites the golden files from the
code; changing a golden is a breaking change (docs/compatibility.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

import sopsflow

from .conftest import REPO, run_sopsflow
from .gitfixtures import commit, git, git_env

GOLDEN = REPO / "tests" / "golden"
UPDATE = os.environ.get("SOPSFLOW_UPDATE_GOLDEN") == "1"
HOW = ("a golden is a compatibility promise (docs/compatibility.md); if the change is a deliberate "
       "breaking change, regenerate with SOPSFLOW_UPDATE_GOLDEN=1 and record it in CHANGELOG.md")


def _lines_golden(name: str, current: set[str]) -> None:
    """Every line of the golden file must still be produced; new lines may appear."""
    path = GOLDEN / name
    if UPDATE:
        path.write_text("".join(f"{line}\n" for line in sorted(current)))
        return
    golden = {line for line in path.read_text().splitlines() if line}
    missing = sorted(golden - current)
    assert not missing, f"{name}: removed or changed: {missing}; {HOW}"


def _json_golden(name: str, current: Any) -> Any:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    return json.loads(path.read_text())


# --- Python API ----------------------------------------------------------------------------------


def _signature_lines(qualname: str, obj: Any) -> set[str]:
    lines = set()
    for param in inspect.signature(obj).parameters.values():
        required = "required" if param.default is inspect.Parameter.empty else "optional"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            required = "variadic"
        lines.add(f"{qualname} parameter {param.name} {param.kind.name.lower()} {required}")
    return lines


def api_surface() -> set[str]:
    lines = set()
    for name in sopsflow.__all__:
        obj = getattr(sopsflow, name)
        qualname = f"sopsflow.{name}"
        if inspect.isclass(obj):
            lines.add(f"{qualname} class")
            lines |= _signature_lines(qualname, obj)
            for base in obj.__mro__[1:]:
                lines.add(f"{qualname} subclass-of {base.__module__}.{base.__qualname__}")
        elif callable(obj):
            lines.add(f"{qualname} function")
            lines |= _signature_lines(qualname, obj)
        else:
            lines.add(f"{qualname} {type(obj).__name__}")
    err = sopsflow.SopsError(2, "message", "detail")
    for attribute in ("code", "message", "detail"):
        assert hasattr(err, attribute)
        lines.add(f"sopsflow.SopsError attribute {attribute}")
    return lines


def test_python_api() -> None:
    _lines_golden("api.txt", api_surface())


# --- command line --------------------------------------------------------------------------------


def _parser_lines(parser: argparse.ArgumentParser, path: str) -> set[str]:
    lines = {path}
    positional = 0
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                lines |= _parser_lines(sub, f"{path} {name}")
            continue
        if action.option_strings:
            kind = "switch" if action.nargs == 0 else "value"
            for option in action.option_strings:
                lines.add(f"{path} {option} {kind}")
        else:
            lines.add(f"{path} positional {positional} nargs={action.nargs if action.nargs is not None else 1}")
            positional += 1
    return lines


def cli_surface() -> set[str]:
    from sopsflow.main import build_parser

    return _parser_lines(build_parser(), "sopsflow")


def test_cli_commands_and_flags() -> None:
    _lines_golden("cli.txt", cli_surface())


def test_exit_codes() -> None:
    from sopsflow import errors
    from sopsflow.gitops import policy

    current = {name: value for name, value in vars(errors).items() if name.isupper() and isinstance(value, int)}
    current["VERIFY_USAGE_ERROR"] = policy.USAGE_ERROR
    golden = _json_golden("exit-codes.json", current)
    assert current == golden, f"exit codes differ from the golden; {HOW}"


# --- .sopsflow.yaml ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (frozenset, set)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _assert_contains(golden: Any, current: Any, where: str) -> None:
    """``current`` holds everything ``golden`` does (mappings may gain keys)."""
    if isinstance(golden, dict):
        assert isinstance(current, dict), f"{where}: no longer a mapping; {HOW}"
        for key, value in golden.items():
            assert key in current, f"{where}.{key}: removed; {HOW}"
            _assert_contains(value, current[key], f"{where}.{key}")
    elif isinstance(golden, list):
        assert isinstance(current, list) and len(current) == len(golden), f"{where}: changed; {HOW}"
        for i, (g, c) in enumerate(zip(golden, current, strict=True)):
            _assert_contains(g, c, f"{where}[{i}]")
    else:
        assert golden == current, f"{where}: {golden!r} became {current!r}; {HOW}"


def test_sopsflow_yaml_schema() -> None:
    """tests/golden/sopsflow-yaml.yaml uses every key of the schema; it must keep
    loading, to the same meaning (sopsflow-yaml.parsed.json)."""
    from sopsflow.gitops.policy import parse_policy
    from sopsflow.gitops.settings import parse_settings

    data = (GOLDEN / "sopsflow-yaml.yaml").read_bytes()
    settings = _plain(parse_settings(data))
    settings.pop("source", None)
    current = {"settings": settings, "verify": _plain(parse_policy(data))}
    _assert_contains(_json_golden("sopsflow-yaml.parsed.json", current), current, ".sopsflow.yaml")


# --- SARIF rule ids and the fixture repository -----------------------------------------------------


def test_sarif_rule_ids() -> None:
    from sopsflow.gitops import check as audit
    from sopsflow.gitops import report

    _lines_golden("sarif-rule-ids.txt", set(report.RULES) | set(audit.KINDS))


def _fixture_repo(dest: Path) -> Path:
    """tests/golden/verify-repo as a git repository: path parts named `dot-X` become
    `.X` (so this repository holds no live `.sops.yaml`), plus one symlink."""
    source = GOLDEN / "verify-repo"
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = Path(*[("." + part[4:]) if part.startswith("dot-") else part for part in path.relative_to(source).parts])
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)
    os.symlink("db.yaml", dest / "secrets" / "link.yaml")
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    return dest


_CHECK_LINE = re.compile(r"^(?P<path>\S+?)(?::\d+)?: (?:error|warning): .* \[(?P<kind>[a-z-]+)\].*\(fp:(?P<fp>[0-9a-f]+)\)$")


@pytest.mark.slow
def test_fixture_repository_findings(tmp_path: Path) -> None:
    root = _fixture_repo(tmp_path / "repo")
    env = git_env()
    checked = run_sopsflow(["check"], cwd=root, env=env)
    allow_fps = set()
    for line in checked.stdout.decode().splitlines():
        m = _CHECK_LINE.match(line)
        if m:
            allow_fps.add(f"{m['kind']} {m['path']} fp:{m['fp']}")
    commit(root, "fixture")
    verified = run_sopsflow(["verify", "--format", "sarif"], cwd=root, env=env)
    assert verified.stdout, verified.stderr
    sarif = json.loads(verified.stdout)
    run = sarif["runs"][0]
    results = {
        f"{r['ruleId']} {r['locations'][0]['physicalLocation']['artifactLocation']['uri']} "
        f"{r['partialFingerprints']['sopsflowFindingHash/v1']}"
        for r in run["results"]
    }
    # Exit codes of typical outcomes, run in the fixture (no key is available there).
    exit_codes = {"check": checked.returncode, "verify --format sarif": verified.returncode}
    for args in (["check", "--strict", "team/t.yaml"], ["verify", "--format", "no-such-format"],
                 ["verify", "--rev", "no-such-rev"], ["updatekeys", "--dry-run"], ["filestatus", "secrets/db.yaml"],
                 ["decrypt", "secrets/db.yaml"], ["decrypt", "no-such-file.yaml"], ["encrypt", "secrets/db.yaml"],
                 ["decrypt", "--extract", "[bad", "secrets/db.yaml"]):
        exit_codes[" ".join(args)] = run_sopsflow(args, cwd=root, env=env).returncode
    current = {
        "exit_codes": exit_codes,
        "sarif_rule_ids": sorted(rule["id"] for rule in run["tool"]["driver"]["rules"]),
        "sarif_results": sorted(results),
        "allow_list_fingerprints": sorted(allow_fps),
    }
    golden = _json_golden("verify-repo.json", current)
    assert current["exit_codes"] == golden["exit_codes"], f"exit codes changed; {HOW}"
    golden_ids = set(golden["sarif_rule_ids"])
    missing_ids = golden_ids - set(current["sarif_rule_ids"])
    assert not missing_ids, f"SARIF rule ids no longer reported: {sorted(missing_ids)}; {HOW}"

    # Findings of the golden kinds must match exactly; a new kind of finding may be added.
    def of_golden_kinds(entries: list[str]) -> set[str]:
        return {e for e in entries if e.split(" ", 1)[0] in golden_ids}

    assert of_golden_kinds(current["sarif_results"]) == set(golden["sarif_results"]), (
        f"SARIF findings or fingerprints changed; {HOW}")
    assert of_golden_kinds(current["allow_list_fingerprints"]) == set(golden["allow_list_fingerprints"]), (
        f"allow-list fingerprints changed; {HOW}")
    assert len(golden["allow_list_fingerprints"]) >= 8 and len(golden["sarif_results"]) >= 15
