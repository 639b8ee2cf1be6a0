"""`sopsflow rules FILE`: the explanation, checked against the vectors and
against what the real sops 3.11.0 writes into the metadata."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from sopsflow import errors
from sopsflow.config.explain import explain, format_text, store_name_for
from sopsflow.errors import SopsError
from sopsflow.metadata import SELECTION_OPTIONS

from .test_config import CASES, in_parallel, recipients, run_sops, write
from .vectors import GENERATED

TOP_KEYS = {"file", "absolute_path", "cwd", "config", "config_source", "config_dir", "status", "matched_path",
            "inside_config_dir", "skipped_rules", "rule", "key_override_env", "store"}
RULE_KEYS = {"index", "path_regex", "match", "key_source", "key_groups", "shamir_threshold", "selection",
             "effective_selection", "mac_only_encrypted", "effective_mac_only_encrypted"}


def vector_layout(root: Path) -> None:
    shutil.copy(GENERATED / "config" / "dot-sops.yaml", write(root / "repo" / ".sops.yaml", ""))
    write(root / "alt" / ".sops.yml", "creation_rules: []\n")
    (root / "alt" / "sub").mkdir(parents=True)


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: f"{c['cwd']}:{c['file_argument']}")
def test_explains_the_vector_cases(tmp_path: Path, case: dict[str, Any]) -> None:
    vector_layout(tmp_path)
    cwd = tmp_path / case["cwd"]
    flags = case.get("extra_flags", "").split()
    info = explain(case["file_argument"], config_path=flags[1] if flags else None, cwd=cwd, env={})
    assert set(info) == TOP_KEYS
    json.loads(json.dumps(info))  # JSON-ready
    absolute = os.path.normpath(cwd / case["file_argument"])
    assert info["absolute_path"] == absolute
    expected = case["matched_rule_index"]
    if expected is None:
        assert info["status"] == "no_config" and info["config"] is None and info["rule"] is None
        assert "no .sops.yaml found" in format_text(info)
        return
    assert info["status"] == "matched"
    assert info["config"] == str(tmp_path / "repo" / ".sops.yaml")
    assert info["config_source"] == ("argument" if flags else "search")
    repo_prefix = str(tmp_path / "repo") + "/"
    inside = absolute.startswith(repo_prefix)
    assert info["inside_config_dir"] is inside
    assert info["matched_path"] == (absolute[len(repo_prefix):] if inside else absolute)
    rule = info["rule"]
    assert set(rule) == RULE_KEYS
    assert rule["index"] == expected
    assert [r["index"] for r in info["skipped_rules"]] == list(range(expected))
    assert rule["selection"] == {"unencrypted_suffix": f"_rule{expected}"}
    if rule["path_regex"]:
        m = rule["match"]
        assert info["matched_path"][m["start"]:m["end"]] == m["text"]
    else:
        assert rule["match"] is None
    text = format_text(info)
    assert f"rule {expected}: MATCH" in text
    assert all(f"rule {i}: no match" in text for i in range(expected))


def _read_metadata(name: str, output: str) -> dict[str, Any]:
    if name.endswith(".yaml"):
        meta: dict[str, Any] = yaml.safe_load(output)["sops"]
        return meta
    if name.endswith(".env"):
        return _unflatten(dict(line[5:].split("=", 1) for line in output.splitlines() if line.startswith("sops_")))
    meta = json.loads(output)["sops"]  # json and binary
    return meta


def _unflatten(flat: dict[str, str]) -> dict[str, Any]:
    """The dotenv metadata layout (sops' `stores/flatten.go`) back to nested data, enough for these checks."""
    root: dict[str, Any] = {}
    for key, value in sorted(flat.items()):
        parts = key.split("__")
        node: Any = root
        for part, nxt in zip(parts, parts[1:], strict=False):
            name = part.split("_", 1)[1] if part.startswith(("map_", "list_")) else part
            slot = int(name) if part.startswith("list_") else name
            child_type = list if nxt.startswith("list_") else dict
            if isinstance(node, list):
                while len(node) <= slot:  # type: ignore[operator]
                    node.append(child_type())
                node = node[slot]  # type: ignore[index]
            else:
                node = node.setdefault(slot, child_type())
        last = parts[-1].split("_", 1)[1] if parts[-1].startswith("map_") and len(parts) > 1 else parts[-1]
        node[last] = value
    if "mac_only_encrypted" in root:
        root["mac_only_encrypted"] = root["mac_only_encrypted"] == "true"
    if "shamir_threshold" in root:
        root["shamir_threshold"] = int(root["shamir_threshold"])
    return root


def _metadata_groups(meta: dict[str, Any]) -> list[list[str]]:
    if meta.get("key_groups"):
        return [[e["recipient"] for e in g.get("age") or []] for g in meta["key_groups"]]
    return [[e["recipient"] for e in meta.get("age") or []]]


def _indent_of(name: str, output: str) -> int | None:
    """Indentation of the first indented line: spaces, or -1 for a tab."""
    if not name.endswith((".yaml", ".json", ".txt")):
        return None
    line = next(line for line in output.splitlines() if line[:1] in (" ", "\t"))
    return -1 if line.startswith("\t") else len(line) - len(line.lstrip(" "))


def test_explanation_matches_what_sops_writes(tmp_path: Path) -> None:
    r = recipients()
    config = (
        "stores:\n  json:\n    indent: 2\n"
        "creation_rules:\n"
        f"  - path_regex: ^mac/\n    age: {r[0]}\n    mac_only_encrypted: true\n    encrypted_regex: ^k$\n"
        f"  - path_regex: ^groups/\n    shamir_threshold: 2\n    key_groups:\n"
        f"      - age: [{r[1]}]\n      - age: [{r[2]}, {r[3]}]\n"
        f"  - path_regex: ^comments/\n    age: '{r[4]}, {r[5]}'\n    encrypted_comment_regex: 'sops:enc'\n"
        f"  - age: [{r[6]}]\n"
    )
    write(tmp_path / ".sops.yaml", config)
    names = ["mac/a.yaml", "mac/b.json", "groups/c.yaml", "groups/d.env", "comments/e.yaml", "other/f.yaml",
             "other/g.json", "other/h.txt", "mac/i.txt"]
    contents = {".yaml": "k: v\nn:\n  k: w\n", ".json": '{"k": "v", "n": {"k": "w"}}', ".env": "k=v\n",
                ".txt": "raw\n"}
    for name in names:
        write(tmp_path / name, contents[Path(name).suffix])
    infos = [explain(name, cwd=tmp_path, env={}) for name in names]
    outputs = in_parallel(run_sops, [(["encrypt", name], tmp_path) for name in names])
    for name, info, proc in zip(names, infos, outputs, strict=True):
        assert proc.returncode == 0, (name, proc.stderr)
        meta = _read_metadata(name, proc.stdout)
        rule = info["rule"]
        assert info["store"]["name"] == store_name_for(name)
        assert [[k["identity"] for k in g] for g in rule["key_groups"]] == _metadata_groups(meta), name
        assert {k: meta[k] for k in SELECTION_OPTIONS if k in meta} == rule["effective_selection"], name
        assert meta.get("mac_only_encrypted", False) == rule["effective_mac_only_encrypted"], name
        assert meta.get("shamir_threshold", 0) == rule["shamir_threshold"], name
        indent = _indent_of(name, proc.stdout)
        if indent is not None:
            assert indent == info["store"]["indent"], name
    by_name = dict(zip(names, infos, strict=True))
    assert by_name["other/h.txt"]["rule"]["effective_selection"] == {}
    binary = by_name["mac/i.txt"]["rule"]
    assert binary["mac_only_encrypted"] and not binary["effective_mac_only_encrypted"]
    assert "ignored by the binary store" in format_text(by_name["mac/i.txt"])
    assert by_name["groups/c.yaml"]["rule"]["key_source"] == "key_groups"
    assert by_name["other/g.json"]["store"] == {"name": "json", "indent": 2, "indent_source": "config"}


def test_config_precedence_and_statuses(tmp_path: Path) -> None:
    r = recipients()
    searched = write(tmp_path / "repo" / ".sops.yaml", f"creation_rules:\n  - path_regex: ^x/\n    age: {r[0]}\n")
    from_env = write(tmp_path / "env.yaml", "stores:\n  yaml:\n    indent: 0\n")
    explicit = write(tmp_path / "arg.yaml", "creation_rules: []\n")
    cwd = tmp_path / "repo"

    info = explain("y/f.yaml", cwd=cwd, env={})
    assert (info["config"], info["config_source"], info["status"]) == (str(searched), "search", "no_matching_rule")
    assert [s["index"] for s in info["skipped_rules"]] == [0]
    assert "no creation rule matches" in format_text(info)

    info = explain("x/f.yaml", cwd=cwd, env={"SOPS_CONFIG": str(from_env), "SOPS_AGE_RECIPIENTS": r[1],
                                              "SOPS_PGP_FP": ""})
    assert (info["config"], info["config_source"], info["status"]) == (str(from_env), "SOPS_CONFIG",
                                                                        "no_creation_rules")
    assert info["key_override_env"] == ["SOPS_AGE_RECIPIENTS"]
    assert info["store"] == {"name": "yaml", "indent": 4, "indent_source": "default"}  # 0 means default for YAML
    text = format_text(info)
    assert "no creation_rules" in text and "SOPS_AGE_RECIPIENTS" in text and r[1] not in text

    info = explain("x/f.yaml", config_path="../arg.yaml", cwd=cwd, env={"SOPS_CONFIG": str(from_env)})
    assert (info["config"], info["config_source"], info["status"]) == (str(explicit), "argument",
                                                                        "no_matching_rule")

    info = explain("x/f.yaml", cwd=cwd, env={})
    assert info["status"] == "matched" and info["rule"]["index"] == 0
    assert info["rule"]["key_groups"] == [[{"type": "age", "identity": r[0]}]]


def test_explain_uses_the_process_cwd_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / ".sops.yaml", f"creation_rules:\n  - age: {recipients()[0]}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOPS_CONFIG", raising=False)
    info = explain("sub/f.ini")
    assert info["cwd"] == str(tmp_path)
    assert info["matched_path"] == "sub/f.ini"
    assert info["rule"]["match"] is None and "matches every file" in format_text(info)
    assert info["store"] == {"name": "ini", "indent": None, "indent_source": None}


def test_explain_reports_an_invalid_config(tmp_path: Path) -> None:
    path = write(tmp_path / ".sops.yaml", "creation_rules:\n  - path_regex: '(['\n")
    with pytest.raises(SopsError) as info:
        explain("f.yaml", cwd=tmp_path, env={})
    assert info.value.code == errors.ERROR_READING_CONFIG
    assert str(path) in info.value.message and "can not compile regexp" in info.value.message


@pytest.mark.parametrize("name,store", [
    ("a.yaml", "yaml"), ("a.yml", "yaml"), ("a.YAML", "binary"), ("a.json", "json"), ("a.env", "dotenv"),
    ("x.env.local", "binary"), ("a.ini", "ini"), ("a.txt", "binary"), ("noext", "binary"),
])
def test_store_names(name: str, store: str) -> None:
    assert store_name_for(name) == store
