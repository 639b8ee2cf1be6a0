"""Partial encryption against the real sops binary: every selection option,
``mac_only_encrypted`` and the conflicts between them.

For each option and store, sops and sopsflow encrypt the same file (the
option from a ``.sops.yaml`` rule, or from command-line flags), then:

* ``sops decrypt`` of sopsflow's file prints what it prints for its own file;
* ``sopsflow decrypt`` of sops' file prints the same as ``sops decrypt``;
* the same lines hold ENC[] values in both files, the masked layouts are
  identical, and the metadata records the same options;
* conflicting options are refused with sops' exit code, nothing written.

sops 3.11's ``encrypt`` command has no flags for the comment regexes and
``mac_only_encrypted`` (before the command they are accepted and ignored,
after it rejected): on the sops side those always come from ``.sops.yaml``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..vectors import AGE_RECIPIENT, GENERATED
from . import Run, age_env, encrypted_lines, flow_argv, layout, run_all, sops_argv, without_metadata

SUFFIX = {"yaml": ".yaml", "json": ".json", "dotenv": ".env", "ini": ".ini"}

INPUTS = {
    "yaml": (GENERATED / "partial" / "k8s-secret.input.yaml").read_bytes()
    + b"plain_list:\n  - [nested, list]\n  - name: x\n    password_secret: y\nLetters: only\n",
    "json": (GENERATED / "partial" / "config.input.json").read_bytes(),
    "dotenv": (
        b"# sops:enc\nPASSWORD=secret\nusername_unencrypted=admin\napi_secret=xyz\ntoken=abc123\n"
        b"# plain comment\nname=app\ndata=d\nLetters=only\n"
    ),
    "ini": (
        b"; top comment\ntop = level\n[data]\npassword = secret\nusername_unencrypted = admin\n"
        b"[metadata]\nname = app\n; sops:enc\ntoken = abc123\nafter_marker = v\n[stringData]\napi_secret = xyz\nLetters = only\n"
    ),
}

#: option name -> value; the comment options and mac_only_encrypted are config-only in sops 3.11
OPTIONS: dict[str, Any] = {
    "encrypted_regex": "^(data|stringData|password|PASSWORD|token)$",
    "unencrypted_regex": "^(apiVersion|kind|metadata|name|replicas)$",
    "encrypted_suffix": "_secret",
    "unencrypted_suffix": "_unencrypted",
    "unencrypted_suffix_custom": "name",
    "encrypted_comment_regex": "sops:enc",
    "unencrypted_comment_regex": "sops:enc",
    # RE2 syntax that Python's re reads differently (POSIX class, flags group)
    "encrypted_regex_re2_class": "^[[:upper:]][[:alpha:]]+$",
    "unencrypted_regex_re2_flags": "(?i)^(API|NAME|TOP)",
}
FLAG_OPTIONS = ("encrypted_regex", "unencrypted_regex", "encrypted_suffix", "unencrypted_suffix", "unencrypted_suffix_custom")
RECORDED = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
    "mac_only_encrypted",
)


def option_field(option: str) -> str:
    """The metadata/config field of a test option (``encrypted_regex_re2_class`` -> ``encrypted_regex``)."""
    return next(f for f in RECORDED if option == f or option.startswith(f + "_"))


@dataclass
class Case:
    store: str
    rule: dict[str, Any] = field(default_factory=dict)  # .sops.yaml rule options (both tools unless flow_flags)
    sops_flags: list[str] = field(default_factory=list)
    flow_flags: list[str] | None = None  # None: the same as sops_flags
    data: bytes | None = None


@dataclass
class Outcome:
    enc_sops: Run
    enc_flow: Run
    sops_file: Path
    flow_file: Path
    decrypts: list[Run] = field(default_factory=list)  # sops(sops file), sops(flow file), flow(sops file)


def _config(rule: dict[str, Any]) -> str:
    return yaml.safe_dump({"creation_rules": [{"age": AGE_RECIPIENT, **rule}]}, sort_keys=False)


def run_case(case: Case, flow_rule: dict[str, Any] | None = None) -> Iterator[Outcome]:
    """Encrypt with both tools (each in its own directory with its own
    .sops.yaml) and decrypt crosswise. A generator so that the temporary
    directories live while the caller looks at the files."""
    env = age_env()
    data = case.data if case.data is not None else INPUTS[case.store]
    with tempfile.TemporaryDirectory(prefix="sopsflow-partial-") as tmp:
        dirs = {"sops": Path(tmp) / "sops", "flow": Path(tmp) / "flow"}
        rules = {"sops": case.rule, "flow": case.rule if flow_rule is None else flow_rule}
        for tool, directory in dirs.items():
            directory.mkdir()
            (directory / ("in" + SUFFIX[case.store])).write_bytes(data)
            (directory / ".sops.yaml").write_text(_config(rules[tool]))
        name = "in" + SUFFIX[case.store]
        out = "out" + SUFFIX[case.store]
        flow_flags = case.sops_flags if case.flow_flags is None else case.flow_flags
        key_flags = [] if case.rule or (flow_rule is not None) else ["--age", AGE_RECIPIENT]
        enc_sops = run_all([sops_argv(["encrypt", *key_flags, *case.sops_flags, "--output", out, name])], env=env, cwd=dirs["sops"])[0]
        enc_flow = run_all([flow_argv(["encrypt", *key_flags, *flow_flags, "--output", out, name])], env=env, cwd=dirs["flow"])[0]
        outcome = Outcome(enc_sops, enc_flow, dirs["sops"] / out, dirs["flow"] / out)
        if enc_sops.rc == 0 and enc_flow.rc == 0:
            outcome.decrypts = run_all(
                [
                    sops_argv(["decrypt", str(outcome.sops_file)]),
                    sops_argv(["decrypt", str(outcome.flow_file)]),
                    flow_argv(["decrypt", str(outcome.sops_file)]),
                ],
                env=env,
                cwd=tmp,
            )
        yield outcome


def recorded_options(store: str, data: bytes) -> dict[str, str]:
    """The selection options written into the metadata, as text."""
    text = data.decode()
    raw: dict[str, Any]
    if store == "yaml":
        raw = next(iter(yaml.safe_load_all(text)))["sops"]
    elif store == "json":
        raw = json.loads(text)["sops"]
    elif store == "dotenv":
        raw = dict(line[5:].split("=", 1) for line in text.splitlines() if line.startswith("sops_"))
    else:
        section = text[text.index("[sops]\n") + 7 :]
        raw = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in section.splitlines() if "=" in line)}
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in raw.items() if k in RECORDED}


def assert_same_result(case: Case, outcome: Outcome) -> None:
    assert outcome.enc_sops.rc == 0, outcome.enc_sops.why()
    assert outcome.enc_flow.rc == 0, outcome.enc_flow.why()
    sops_of_sops, sops_of_flow, flow_of_sops = outcome.decrypts
    assert sops_of_sops.rc == 0, sops_of_sops.why()
    assert sops_of_flow.rc == 0, sops_of_flow.why()
    assert sops_of_flow.out == sops_of_sops.out
    assert flow_of_sops.rc == 0, flow_of_sops.why()
    assert flow_of_sops.out == sops_of_sops.out
    by_sops, by_flow = outcome.sops_file.read_bytes(), outcome.flow_file.read_bytes()
    body_sops = without_metadata(case.store, by_sops.decode()).encode()
    body_flow = without_metadata(case.store, by_flow.decode()).encode()
    assert encrypted_lines(body_flow) == encrypted_lines(body_sops)
    assert layout(case.store, by_flow) == layout(case.store, by_sops)
    assert recorded_options(case.store, by_flow) == recorded_options(case.store, by_sops)
    # the option really selected: some lines plain, some encrypted
    lines = [line for line in body_sops.decode().splitlines() if line.strip()]
    assert 0 < len(encrypted_lines(body_sops)) < len(lines) or case.store == "json"


def _config_cases() -> list[Any]:
    cases = []
    for store in SUFFIX:
        for option, value in OPTIONS.items():
            cases.append(pytest.param(Case(store, rule={option_field(option): value}), id=f"{store}-{option}"))
        # mac_only_encrypted combined with a selection option
        rule = {"encrypted_regex": OPTIONS["encrypted_regex"], "mac_only_encrypted": True}
        cases.append(pytest.param(Case(store, rule=rule), id=f"{store}-mac_only_encrypted"))
        rule = {"mac_only_encrypted": True}  # alone: the default _unencrypted suffix applies
        cases.append(pytest.param(Case(store, rule=rule), id=f"{store}-mac_only_encrypted-default"))
    return cases


@pytest.mark.parametrize("case", _config_cases())
def test_option_from_config(case: Case) -> None:
    for outcome in run_case(case):
        assert_same_result(case, outcome)


@pytest.mark.parametrize("option", FLAG_OPTIONS)
@pytest.mark.parametrize("store", ["yaml", "dotenv"])
def test_option_from_flags(store: str, option: str) -> None:
    flags = ["--" + option_field(option).replace("_", "-"), OPTIONS[option]]
    case = Case(store, sops_flags=flags)
    for outcome in run_case(case):
        assert_same_result(case, outcome)


@pytest.mark.parametrize(
    ("option", "value"),
    [("encrypted_comment_regex", "sops:enc"), ("unencrypted_comment_regex", "sops:enc"), ("mac_only_encrypted", True)],
)
def test_sopsflow_flag_equals_sops_config(option: str, value: Any) -> None:
    """sopsflow also takes these as ``encrypt`` flags (sops 3.11 only from
    .sops.yaml): the flag gives the file sops writes from the rule."""
    flag = ["--" + option.replace("_", "-")] + ([] if value is True else [str(value)])
    case = Case("yaml", rule={option: value}, flow_flags=[*flag, "--age", AGE_RECIPIENT])
    for outcome in run_case(case, flow_rule={"path_regex": "^nothing-matches$"}):
        assert_same_result(case, outcome)


# --- conflicts ------------------------------------------------------------------------------

CONFLICTS = [
    pytest.param(Case("yaml", sops_flags=["--encrypted-regex", "a", "--unencrypted-regex", "b"]), id="two-regex-flags"),
    pytest.param(Case("yaml", sops_flags=["--encrypted-suffix", "a", "--unencrypted-suffix", "b"]), id="two-suffix-flags"),
    pytest.param(Case("json", sops_flags=["--encrypted-regex", "a", "--encrypted-suffix", "b"]), id="regex-and-suffix-flags"),
    pytest.param(Case("yaml", rule={"encrypted_regex": "a"}, sops_flags=["--unencrypted-suffix", "x"]), id="config-and-flag"),
    pytest.param(Case("dotenv", rule={"encrypted_comment_regex": "a"}, sops_flags=["--encrypted-regex", "x"]), id="comment-config-and-flag"),
    pytest.param(
        Case("ini", rule={"unencrypted_comment_regex": "a", "mac_only_encrypted": True}, sops_flags=["--encrypted-suffix", "x"]),
        id="mac-only-config-and-flag",
    ),
]


@pytest.mark.parametrize("case", CONFLICTS)
def test_conflicting_options_refused(case: Case) -> None:
    for outcome in run_case(case):
        assert outcome.enc_sops.rc == 8, outcome.enc_sops.why()
        assert outcome.enc_flow.rc == outcome.enc_sops.rc, outcome.enc_flow.why()
        assert not outcome.flow_file.exists()
        err = outcome.enc_flow.err.decode()
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_two_options_in_one_rule_is_an_invalid_config() -> None:
    """Deliberate difference: sops exits 1 ("error loading config"); sopsflow
    treats every invalid .sops.yaml alike, exit 5 with the file named (issue 2)."""
    case = Case("yaml", rule={"encrypted_regex": "a", "unencrypted_regex": "b"})
    for outcome in run_case(case):
        assert outcome.enc_sops.rc == 1, outcome.enc_sops.why()
        assert outcome.enc_flow.rc == 5, outcome.enc_flow.why()
        assert b".sops.yaml" in outcome.enc_flow.err
        assert not outcome.flow_file.exists()


def test_comment_inside_list_decrypts() -> None:
    """Deliberate difference (upstream #2281): under encrypted_comment_regex an
    encrypted comment inside a list makes sops' own file fail its MAC check
    (exit 51); sopsflow writes the same file and decrypts it correctly."""
    data = b"items:\n    # sops:enc\n    # second comment\n    - a\nplain: x\n"
    case = Case("yaml", rule={"encrypted_comment_regex": "sops:enc"}, data=data)
    for outcome in run_case(case):
        sops_of_sops, sops_of_flow, flow_of_sops = outcome.decrypts
        assert sops_of_sops.rc == 51, "sops 3.11 bug fixed? then compare like the other cases"
        assert sops_of_flow.rc == 51
        assert layout("yaml", outcome.flow_file.read_bytes()) == layout("yaml", outcome.sops_file.read_bytes())
        assert flow_of_sops.rc == 0, flow_of_sops.why()
        assert flow_of_sops.out == data
