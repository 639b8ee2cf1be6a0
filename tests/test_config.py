"""`.sops.yaml` discovery, decoding, validation and rule matching, checked
against the sops 3.11.0 vectors and against the real binary."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sopsflow import errors
from sopsflow.config.decoder import load_config, parse_config
from sopsflow.config.discovery import find_config, go_abs, go_clean
from sopsflow.config.keyspecs import KeySpec
from sopsflow.config.rules import CreationRule
from sopsflow.errors import SopsError
from sopsflow.keys.age import is_age_x25519_recipient

from .conftest import base_env, sops_binary
from .vectors import AGE_RECIPIENT, GENERATED, PGP_FP

CASES = json.loads((GENERATED / "config" / "rule-resolution-cases.json").read_text())
DOT_SOPS = GENERATED / "config" / "dot-sops.yaml"


# --- helpers ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def recipients() -> tuple[str, ...]:
    """Distinct throw-away age recipients: recipient i tags rule i."""
    import pyrage

    return tuple(str(pyrage.x25519.Identity.generate().to_public()) for _ in range(16))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def plain_content(name: str) -> str:
    if name.endswith((".yaml", ".yml")):
        return "k: v\n"
    if name.endswith(".json"):
        return '{"k": "v"}\n'
    if name.endswith(".env"):
        return "K=v\n"
    if name.endswith(".ini"):
        return "[s]\nk = v\n"
    return "binary content\n"


def tagged_config(regexes: Sequence[str | None]) -> str:
    """A config whose rule i encrypts to recipients()[i]."""
    lines = ["creation_rules:"]
    for i, regex in enumerate(regexes):
        lines.append(f"  - age: {recipients()[i]}")
        if regex is not None:
            lines.append(f"    path_regex: {json.dumps(regex)}")
    return "\n".join(lines) + "\n"


def run_sops(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sops_binary(), *args], cwd=cwd, env=env or base_env(), capture_output=True,
                          text=True, timeout=120)


def sops_metadata(args: list[str], cwd: Path) -> dict[str, Any] | str:
    """`sops encrypt --output-type json ...`: the sops metadata, or the last
    stderr line when sops fails."""
    if args[0] == "--config":  # a global flag in sops 3.11: it goes before the command
        args = [*args[:2], "encrypt", "--output-type", "json", *args[2:]]
    else:
        args = ["encrypt", "--output-type", "json", *args]
    proc = run_sops(args, cwd)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return f"exit {proc.returncode}: {lines[-1] if lines else ''}"
    meta: dict[str, Any] = json.loads(proc.stdout)["sops"]
    return meta


def sops_rule(args: list[str], cwd: Path) -> int | str:
    """The index of the rule sops picked (from the tagging recipient), or its error."""
    meta = sops_metadata(args, cwd)
    if isinstance(meta, str):
        return meta
    found = [e["recipient"] for e in meta.get("age") or []]
    assert len(found) == 1, meta
    return recipients().index(found[0])


def in_parallel(fn: Any, jobs: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda job: fn(*job), jobs))


def our_rule(config_path: Path | None, file_arg: str, cwd: Path) -> int | str:
    """Our answer in the same shape as sops_rule: rule index, or the kind of failure."""
    if config_path is None:
        return "no config"
    try:
        config = load_config(config_path, strict=False)
        rule = config.match(file_arg, cwd=cwd)
    except SopsError as exc:
        return f"error: {exc.message}"
    if rule is None:
        return "no match" if config.has_creation_rules else "no config"
    return rule.index


def same_outcome(ours: int | str, theirs: int | str) -> bool:
    if isinstance(ours, int) or isinstance(theirs, int):
        return ours == theirs
    if ours == "no config":
        return "config file not found, or has no creation rules" in theirs
    if ours == "no match":
        return "no matching creation rules found" in theirs
    return ours.startswith("error:") and "can not compile regexp" in theirs


def assert_no_config_above(path: Path) -> None:
    # The vectors' "no config" cases need a tmp dir without .sops.yaml above it.
    assert find_config(path) is None, f"a .sops.yaml above {path} spoils the test"


# --- the sops 3.11.0 vectors -----------------------------------------------------------


def build_vector_layout(root: Path) -> None:
    repo = root / "repo"
    shutil.copy(DOT_SOPS, write(repo / ".sops.yaml", ""))
    write(root / "alt" / ".sops.yml", tagged_config([None]))
    (root / "alt" / "sub").mkdir(parents=True)
    for case in CASES["cases"]:
        target = root / case["cwd"] / case["file_argument"]
        write(Path(os.path.normpath(target)), plain_content(target.name))


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: f"{c['cwd']}:{c['file_argument']}")
def test_rule_resolution_vectors(tmp_path: Path, case: dict[str, Any]) -> None:
    build_vector_layout(tmp_path)
    assert_no_config_above(tmp_path)
    cwd = tmp_path / case["cwd"]
    flags = case.get("extra_flags", "").split()
    if flags:
        assert flags[0] == "--config"
        config_path: Path | None = Path(go_abs(flags[1], cwd))
    else:
        config_path = find_config(cwd)
    if case["matched_rule_index"] is None:
        assert config_path is None
        return
    assert config_path is not None
    rule = load_config(config_path).match(case["file_argument"], cwd=cwd)
    assert rule is not None
    assert rule.index == case["matched_rule_index"]
    # The vector config tags each rule with its own suffix.
    assert rule.selection == {"unencrypted_suffix": f"_rule{case['matched_rule_index']}"}


def test_vectors_with_the_process_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_vector_layout(tmp_path)
    monkeypatch.chdir(tmp_path / "repo" / "secrets")
    found = find_config(".")
    assert found == tmp_path / "repo" / ".sops.yaml"
    assert load_config(found).match("prod/a.yaml").index == 0  # type: ignore[union-attr]
    assert load_config(found).match("../top.yaml").index == 3  # type: ignore[union-attr]


# --- cross-checks against the real binary ------------------------------------------------

CROSS_REGEXES = [
    r"^secrets/prod/.*\.ya?ml$",
    r"(?i)^CONF/",
    r"[[:alpha:]]+-[[:digit:]]+\.json$",
    r"^link/",
    r"secrets/",
    r"\.env$",
    r"/outside/",
]

CROSS_FILES = [
    "secrets/prod/a.yaml", "secrets/prod/b.yml", "secrets/dev/c.yaml", "conf/x.yaml", "Conf/y.json",
    "data/abc-12.json", "data/abc_12.json", "other/z.env", "other/z.ini", "top.txt", "a/secrets/n.yaml",
    "deep/er/p.yaml",
]


def build_cross_repo(root: Path) -> Path:
    repo = root / "repo"
    write(repo / ".sops.yaml", tagged_config(CROSS_REGEXES))
    for name in CROSS_FILES:
        write(repo / name, plain_content(name))
    write(root / "outside" / "o.yaml", "k: v\n")
    write(root / "secrets" / "s.yaml", "k: v\n")
    os.symlink(repo / "secrets", repo / "link")
    return repo


def cross_jobs(root: Path, repo: Path) -> list[tuple[list[str], Path]]:
    jobs: list[tuple[list[str], Path]] = [([name], repo) for name in CROSS_FILES]
    jobs += [
        (["prod/a.yaml"], repo / "secrets"),                 # relative to the config, not the cwd
        (["../../conf/x.yaml"], repo / "secrets" / "prod"),
        (["./secrets//prod/../prod/a.yaml"], repo),          # cleaned lexically
        (["link/prod/a.yaml"], repo),                        # symlink kept: ^link/ matches
        ([str(repo / "secrets" / "dev" / "c.yaml")], repo),  # absolute argument
        (["../outside/o.yaml"], repo),                       # outside: whole absolute path
        (["../secrets/s.yaml"], repo),
        (["er/p.yaml"], repo / "deep"),
        (["--config", "repo/.sops.yaml", "repo/secrets/prod/a.yaml"], root),
        (["--config", "repo/.sops.yaml", "repo/top.txt"], root),
        (["--config", str(repo / ".sops.yaml"), "../repo/other/z.env"], root / "outside"),
        (["repo/secrets/prod/a.yaml"], root),                # no config found from here
    ]
    return jobs


def our_answer(args: list[str], cwd: Path) -> int | str:
    if args[0] == "--config":
        return our_rule(Path(go_abs(args[1], cwd)), args[2], cwd)
    return our_rule(find_config(cwd), args[0], cwd)


def test_matching_agrees_with_sops(tmp_path: Path) -> None:
    repo = build_cross_repo(tmp_path)
    assert_no_config_above(tmp_path)
    jobs = cross_jobs(tmp_path, repo)
    theirs = in_parallel(sops_rule, jobs)
    ours = [our_answer(args, cwd) for args, cwd in jobs]
    mismatches = [(args, o, t) for (args, _), o, t in zip(jobs, ours, theirs, strict=True) if not same_outcome(o, t)]
    assert not mismatches
    # The layout exercises every rule and the failure paths.
    assert {o for o in ours if isinstance(o, int)} == set(range(len(CROSS_REGEXES)))
    assert "no match" in ours and "no config" in ours


REGEX_PIECES = ["^", "a", "b", "/", "secrets", "prod", ".*", r"\.yaml$", r"\.json", "[[:alnum:]]+", "(a|b)",
                "x?", "[^/]*", "$", "(?i)S", r"\b", "/b/", "("]
PATH_DIRS = ["a", "b", "secrets", "prod", "S", "x"]
FILE_NAMES = ["f.yaml", "g.json", "h.env", "b.txt", "A1.yaml"]

regexes = st.lists(st.sampled_from(REGEX_PIECES), min_size=1, max_size=4).map("".join)
paths = st.tuples(
    st.sampled_from(["", "./", "../repo/"]),
    st.lists(st.sampled_from(PATH_DIRS), max_size=3),
    st.sampled_from(FILE_NAMES),
).map(lambda t: t[0] + "/".join([*t[1], t[2]]))


# No shrinking: every step would run sops again.
@settings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule_regexes=st.lists(regexes, min_size=1, max_size=5), files=st.lists(paths, min_size=4, max_size=8,
                                                                               unique=True))
def test_random_rules_agree_with_sops(rule_regexes: list[str], files: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        config = write(repo / ".sops.yaml", tagged_config(list(rule_regexes)))
        for name in files:
            write(Path(os.path.normpath(repo / name)), plain_content(name))
        jobs = [([name], repo) for name in files]
        theirs = in_parallel(sops_rule, jobs)
        ours = [our_rule(config, name, repo) for name in files]
    assert all(same_outcome(o, t) for o, t in zip(ours, theirs, strict=True)), list(zip(files, ours, theirs, strict=True))


def test_config_search_depth_limit_agrees_with_sops(tmp_path: Path) -> None:
    write(tmp_path / ".sops.yaml", tagged_config([None]))
    deep = tmp_path
    for _ in range(100):
        deep = deep / "d"
    write(deep / "f.yaml", "k: v\n")
    # 100 directories are looked at: the start and 99 parents.
    assert find_config(deep) is None
    assert find_config(deep.parent) == tmp_path / ".sops.yaml"
    theirs = in_parallel(sops_rule, [(["f.yaml"], deep), (["d/f.yaml"], deep.parent)])
    assert "config file not found" in theirs[0]
    assert theirs[1] == 0


def test_sops_yml_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / ".sops.yaml", tagged_config([None]))
    write(tmp_path / "sub" / ".sops.yml", tagged_config(["never", None]))
    with caplog.at_level(logging.WARNING, logger="sopsflow.config"):
        found = find_config(tmp_path / "sub")
    assert found == tmp_path / ".sops.yaml"
    assert any(".sops.yml" in r.getMessage() and "using" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sopsflow.config"):
        assert find_config(tmp_path / "sub" / ".." / "sub") == tmp_path / ".sops.yaml"
    (tmp_path / ".sops.yaml").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sopsflow.config"):
        assert find_config(tmp_path / "sub") is None
    assert any("must be called" in r.getMessage() for r in caplog.records)


# --- YAML decoding like go-yaml v3 -----------------------------------------------------


def test_scalars_decode_like_go_yaml_and_sops_agrees(tmp_path: Path) -> None:
    r = recipients()
    repo = tmp_path / "repo"
    text = (
        "x-common: &common\n"
        f"  age: {r[2]}\n"
        "  mac_only_encrypted: yes\n"       # yaml 1.1 bool accepted into a typed bool
        "creation_rules:\n"
        "  - path_regex: 1.10\n"            # the source text, not the float 1.1
        f"    age: {r[0]}\n"
        "  - path_regex: ^merged/\n"
        "    <<: *common\n"
        "    shamir_threshold: 2.7\n"       # truncated to 2
        "  - path_regex: ^hex/\n"
        f"    age: {r[3]}\n"
        "    shamir_threshold: 0x3\n"
        "    encrypted_suffix: 123\n"        # a non-string scalar is taken as text
        "  -\n"                              # null entries are dropped
        f"  - age: {r[1]}\n"
    )
    write(repo / ".sops.yaml", text)
    names = ["x1.1.yaml", "v1.10.yaml", "merged/m.yaml", "hex/h.yaml"]
    for name in names:
        write(repo / name, "k: v\nk123: w\n")
    config = load_config(repo / ".sops.yaml")
    assert [rule.index for rule in config.rules] == [0, 1, 2, 4]
    merged, hexed = config.rules[1], config.rules[2]
    assert (merged.mac_only_encrypted, merged.shamir_threshold) == (True, 2)
    assert merged.key_specs() == [[KeySpec("age", r[2])]]
    assert hexed.shamir_threshold == 3 and hexed.selection == {"encrypted_suffix": "123"}
    ours = [config.match(name, cwd=repo) for name in names]
    assert [rule.index if rule else None for rule in ours] == [4, 0, 1, 2]
    theirs = in_parallel(sops_metadata, [([name], repo) for name in names])
    for rule, meta in zip(ours, theirs, strict=True):
        assert isinstance(meta, dict), meta
        assert rule is not None
        assert [e["recipient"] for e in meta["age"]] == [s.value for s in rule.key_specs()[0]]
        assert meta.get("mac_only_encrypted", False) == rule.mac_only_encrypted
        assert meta.get("shamir_threshold", 0) == rule.shamir_threshold
        expected_sel = rule.selection or {"unencrypted_suffix": "_unencrypted"}
        assert {k: meta[k] for k in expected_sel} == expected_sel


# --- validation ----------------------------------------------------------------------------

A = AGE_RECIPIENT

# (name, config text, a piece of our message, does sops decrypt fail too?)
INVALID = [
    ("syntax", "creation_rules: [\n", "YAML syntax error", True),
    ("rules-not-list", "creation_rules: 5\n", "creation_rules: expected a list, got !!int `5`", True),
    ("rule-scalar", "creation_rules:\n  - foo\n", "creation_rules[0]: expected a mapping, got !!str `foo`", True),
    ("top-list", "- a\n", "top level: expected a mapping", True),
    ("age-int", "creation_rules:\n  - age: 5\n", "creation_rules[0].age: expected a string or a list", False),
    ("age-list-int", f"creation_rules:\n  - age: [{A}, 5]\n", "creation_rules[0].age[1]: expected a string", False),
    ("pgp-bool", "creation_rules:\n  - pgp: true\n", "creation_rules[0].pgp: expected a string", False),
    ("bad-regex", f"creation_rules:\n  - path_regex: '(['\n    age: {A}\n", "can not compile regexp", False),
    ("go-only-regex", f"creation_rules:\n  - path_regex: 'a\\C'\n    age: {A}\n", "can not compile regexp", False),
    ("two-selection", f"creation_rules:\n  - age: {A}\n    encrypted_regex: a\n    unencrypted_suffix: _u\n",
     "cannot use more than one of", False),
    ("comment-and-suffix", f"creation_rules:\n  - age: {A}\n    encrypted_comment_regex: a\n"
     "    encrypted_suffix: _e\n", "cannot use more than one of", False),
    ("shamir-string", f"creation_rules:\n  - age: {A}\n    shamir_threshold: x\n",
     "creation_rules[0].shamir_threshold: expected an integer, got !!str `x`", True),
    ("shamir-list", f"creation_rules:\n  - age: {A}\n    shamir_threshold: [2]\n",
     "shamir_threshold: expected an integer, got a list", True),
    ("shamir-bool", f"creation_rules:\n  - age: {A}\n    shamir_threshold: true\n",
     "shamir_threshold: expected an integer, got !!bool", True),
    ("group-scalar", f"creation_rules:\n  - key_groups:\n    - age: {A}\n",
     "key_groups[0].age: expected a list of strings", True),
    ("group-kms-scalar", "creation_rules:\n  - key_groups:\n    - kms: arn\n",
     "key_groups[0].kms: expected a list", True),
    ("duplicate-key", f"creation_rules:\n  - age: {A}\n    age: {A}\n", 'mapping key "age" already defined', True),
    ("bad-age", "creation_rules:\n  - age: age1notvalid\n", "Bech32", False),
    ("unknown-recipient", "creation_rules:\n  - age: AGE1XYZ\n", "unknown recipient type", False),
    ("bad-vault", "creation_rules:\n  - hc_vault_transit_uri: https://vault:8200/transit/k\n",
     "vault path does not seem to be formatted correctly", False),
    ("bad-azure", "creation_rules:\n  - azure_keyvault: http://v/keys/n/1\n", "Azure Key Vault", False),
    ("indent-string", "stores:\n  json:\n    indent: two\n", "stores.json.indent: expected an integer", True),
    ("mac-only-word", f"creation_rules:\n  - age: {A}\n    mac_only_encrypted: maybe\n",
     "mac_only_encrypted: expected a boolean", True),
]


@pytest.mark.parametrize("name,text,piece,_decrypt_fails", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_config_names_file_and_problem(tmp_path: Path, name: str, text: str, piece: str,
                                              _decrypt_fails: bool) -> None:
    path = write(tmp_path / name / ".sops.yaml", text)
    with pytest.raises(SopsError) as info:
        config = load_config(path)
        config.match("f.yaml", cwd=path.parent)  # rule problems surface at match time at the latest
    err = info.value
    assert err.code == errors.ERROR_READING_CONFIG
    assert str(path) in err.message
    assert piece in err.message
    assert "\n" not in err.message


def test_invalid_configs_fail_sops_in_the_same_places(tmp_path: Path, age_env: dict[str, str]) -> None:
    """sops fails `encrypt` (exit 1) for each of them, and `decrypt` only for the
    problems go-yaml reports; `load_config(strict=False)` draws the same line."""
    source = write(tmp_path / "src" / "e.yaml", "k: v\n")
    proc = run_sops(["encrypt", "--age", A, str(source)], tmp_path / "src")
    assert proc.returncode == 0, proc.stderr
    jobs = []
    for name, text, _, _ in INVALID:
        d = tmp_path / name
        write(d / ".sops.yaml", text)
        write(d / "f.yaml", "k: v\n")
        write(d / "e.yaml", proc.stdout)
        jobs.append(d)

    def both(d: Path) -> tuple[int, int]:
        enc = run_sops(["encrypt", "f.yaml"], d)
        dec = run_sops(["decrypt", "e.yaml"], d, env=age_env)
        return enc.returncode, dec.returncode

    results = in_parallel(both, [(d,) for d in jobs])
    for (name, _, _, decrypt_fails), d, (enc_rc, dec_rc) in zip(INVALID, jobs, results, strict=True):
        assert enc_rc == 1, name
        assert (dec_rc != 0) == decrypt_fails, name
        lenient_fails = False
        try:
            load_config(d / ".sops.yaml", strict=False)
        except SopsError:
            lenient_fails = True
        assert lenient_fails == decrypt_fails, name


def test_lenient_mode_reports_rule_problems_only_when_reached(tmp_path: Path) -> None:
    text = (f"creation_rules:\n  - path_regex: ^ok/\n    age: {A}\n"
            f"  - path_regex: '(['\n    age: {A}\n"
            f"  - age: {A}\n    encrypted_regex: a\n    encrypted_suffix: b\n")
    path = write(tmp_path / ".sops.yaml", text)
    with pytest.raises(SopsError, match=r"creation_rules\[1\]: can not compile regexp"):
        load_config(path)
    config = load_config(path, strict=False)
    assert config.match("ok/f.yaml", cwd=tmp_path).index == 0  # type: ignore[union-attr]
    with pytest.raises(SopsError, match="can not compile regexp"):
        config.match("other.yaml", cwd=tmp_path)
    fixed = write(tmp_path / "b" / ".sops.yaml", text.replace("'(['", "^never$"))
    with pytest.raises(SopsError, match=r"creation_rules\[2\]: cannot use more than one"):
        load_config(fixed, strict=False).match("other.yaml", cwd=fixed.parent)


def test_unreadable_config(tmp_path: Path) -> None:
    (tmp_path / ".sops.yaml").mkdir()
    found = find_config(tmp_path)
    assert found == tmp_path / ".sops.yaml"  # sops stats it and then fails to read it
    with pytest.raises(SopsError) as info:
        load_config(found)
    assert info.value.code == errors.ERROR_READING_CONFIG
    assert str(found) in info.value.message
    with pytest.raises(SopsError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")


def test_unknown_keys_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / ".sops.yaml", f"creation_rules:\n  - agee: x\n    age: {A}\n")
    with caplog.at_level(logging.WARNING, logger="sopsflow.config"):
        config = load_config(path)
    assert config.rules[0].key_specs() == [[KeySpec("age", A)]]
    assert any("'agee'" in r.getMessage() for r in caplog.records)


# --- no config, empty config, stores ---------------------------------------------------


@pytest.mark.parametrize("text,has_rules", [
    ("", False),
    ("creation_rules:\n", False),
    ("stores:\n  yaml:\n    indent: 2\n", False),
    ("creation_rules: []\n", True),
    ("creation_rules:\n  -\n", True),
])
def test_configs_without_usable_rules(tmp_path: Path, text: str, has_rules: bool) -> None:
    path = write(tmp_path / ".sops.yaml", text)
    config = load_config(path)
    assert config.rules == []
    assert config.has_creation_rules is has_rules
    assert config.match("f.yaml", cwd=tmp_path) is None
    # sops words the two cases differently; our_rule maps them back.
    write(tmp_path / "f.yaml", "k: v\n")
    assert same_outcome(our_rule(path, "f.yaml", tmp_path), sops_rule(["f.yaml"], tmp_path))


def test_store_indents(tmp_path: Path) -> None:
    path = write(tmp_path / ".sops.yaml", "stores:\n  yaml:\n    indent: 2\n  json:\n    indent: 0\n"
                                          "  json_binary:\n    indent: ~\n  dotenv: {}\n")
    config = load_config(path)
    assert config.store_indent("yaml") == 2
    assert config.store_indent("json") == 0
    assert config.store_indent("json_binary") is None
    assert config.store_indent("binary") is None
    assert config.store_indent("dotenv") is None
    assert config.path == path and config.dir == tmp_path


def test_store_indent_is_what_sops_uses(tmp_path: Path) -> None:
    path = write(tmp_path / ".sops.yaml", f"stores:\n  yaml:\n    indent: 2\n  json:\n    indent: 3\n"
                                          f"creation_rules:\n  - age: {A}\n")
    write(tmp_path / "f.yaml", "a:\n  b: c\n")
    write(tmp_path / "f.json", '{"a": {"b": "c"}}')
    config = load_config(path)
    out_yaml = run_sops(["encrypt", "f.yaml"], tmp_path).stdout
    out_json = run_sops(["encrypt", "f.json"], tmp_path).stdout
    assert out_yaml.splitlines()[1].startswith(" " * config.store_indent("yaml") + "b:")  # type: ignore[operator]
    assert out_json.splitlines()[1].startswith(" " * config.store_indent("json") + '"a"')  # type: ignore[operator]


def test_load_config_cache_follows_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / ".sops.yaml", f"creation_rules:\n  - age: {A}\n")
    first = load_config(path)
    assert load_config(path) is first
    # No wait for the clock: the new content differs in size, which the cache key includes.
    write(path, f"creation_rules:\n  - path_regex: x\n    age: {A}\n  - age: {A}\n")
    second = load_config(path)
    assert second is not first and len(second.rules) == 2


# --- keys ----------------------------------------------------------------------------------

FULL_FLAT = (
    "creation_rules:\n"
    "  - hc_vault_transit_uri: http://127.0.0.1:8200/v1/transit/keys/k\n"
    "    azure_keyvault: https://v.vault.azure.net/keys/n/ver1\n"
    "    gcp_kms: projects/p/locations/l/keyRings/r/cryptoKeys/k\n"
    '    kms: "arn:aws:kms:us-east-1:111111111111:key/k1+arn:aws:iam::111111111111:role/r, '
    'arn:aws:kms:us-east-1:111111111111:key/k2"\n'
    "    aws_profile: prof\n"
    f"    pgp: {PGP_FP}\n"
    "    age: [{r1}, {r1}]\n"
)
FULL_GROUPS = (
    "creation_rules:\n"
    "  - shamir_threshold: 2\n"
    "    age: {r3}\n"  # ignored: key_groups wins
    "    key_groups:\n"
    "    - hc_vault: [http://127.0.0.1:8200/v1/transit/keys/k, http://127.0.0.1:8200/v1/transit/keys/k]\n"
    '      azure_keyvault: [{{vaultUrl: "https://v.vault.azure.net", key: n, version: ver1}}]\n'
    "      gcp_kms: [{{resource_id: projects/p/locations/l/keyRings/r/cryptoKeys/k}}]\n"
    '      kms: [{{arn: "arn:aws:kms:us-east-1:111111111111:key/k1", role: "arn:aws:iam::111111111111:role/r",'
    ' context: {{b: "2", a: "1"}}, aws_profile: prof}}]\n'
    f"      pgp: [{PGP_FP}, '{PGP_FP[:20]} {PGP_FP[20:]}']\n"
    "      age: ['{r1},{r2}']\n"
    "      merge:\n"
    "        - age: [{r0}]\n"
    f"        - pgp: [{PGP_FP}]\n"
    "          age: [{r2}]\n"
    "    - age: [{r0}]\n"
)


def _rule_from(text: str, tmp_path: Path) -> CreationRule:
    r = recipients()
    path = write(tmp_path / ".sops.yaml", text.format(r0=r[0], r1=r[1], r2=r[2], r3=r[3]))
    rule = load_config(path).rules[0]
    return rule


def test_flat_rule_key_specs(tmp_path: Path) -> None:
    r = recipients()
    rule = _rule_from(FULL_FLAT, tmp_path)
    assert not rule.uses_key_groups
    assert [s.identity() for s in rule.key_specs()[0]] == [
        r[1], r[1],  # flat rules keep duplicates, age first
        PGP_FP,
        "arn:aws:kms:us-east-1:111111111111:key/k1+arn:aws:iam::111111111111:role/r||prof",
        "arn:aws:kms:us-east-1:111111111111:key/k2||prof",
        "projects/p/locations/l/keyRings/r/cryptoKeys/k",
        "https://v.vault.azure.net/keys/n/ver1",
        "http://127.0.0.1:8200/v1/transit/keys/k",
    ]
    kms = rule.key_specs({"app": "web"})[0][3]
    assert kms == KeySpec("kms", {"arn": "arn:aws:kms:us-east-1:111111111111:key/k1",
                                  "role": "arn:aws:iam::111111111111:role/r", "context": {"app": "web"},
                                  "aws_profile": "prof"})
    assert kms.identity().endswith("|app:web|prof")
    assert rule.key_specs()[0][6] == KeySpec("azure_kv", {"vault_url": "https://v.vault.azure.net", "name": "n",
                                                          "version": "ver1"})


def test_group_rule_key_specs(tmp_path: Path) -> None:
    r = recipients()
    rule = _rule_from(FULL_GROUPS, tmp_path)
    assert rule.uses_key_groups and rule.shamir_threshold == 2
    groups = [[s.identity() for s in g] for g in rule.key_specs()]
    assert groups == [
        [r[0], r[2], PGP_FP, r[1],  # merge first, then age/pgp/...; duplicates dropped
         "arn:aws:kms:us-east-1:111111111111:key/k1+arn:aws:iam::111111111111:role/r|a:1,b:2|prof",
         "projects/p/locations/l/keyRings/r/cryptoKeys/k",
         "https://v.vault.azure.net/keys/n/ver1",
         "http://127.0.0.1:8200/v1/transit/keys/k"],
        [r[0]],
    ]
    # key_specs builds new lists every call (callers may mutate them)
    assert rule.key_specs() is not rule.key_specs()


def _updatekeys_groups(output: str) -> list[list[str]]:
    groups: list[list[str]] = []
    for line in output.splitlines():
        if line.startswith("Group "):
            groups.append([])
        elif groups and line.startswith(("+++ ", "    ")):
            groups[-1].append(line[4:])
    return groups


@pytest.mark.parametrize("text", [FULL_FLAT, FULL_GROUPS], ids=["flat", "groups"])
def test_key_specs_match_sops_updatekeys(tmp_path: Path, text: str) -> None:
    """updatekeys prints the rule's keys (sops' ToString, in sops' order) for a
    file none of whose keys are in the rule."""
    rule = _rule_from(text, tmp_path)
    other = recipients()[15]
    write(tmp_path / "src.yaml", "k: v\n")
    proc = run_sops(["encrypt", "--age", other, "src.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    write(tmp_path / "f.yaml", proc.stdout)
    upd = subprocess.run([sops_binary(), "updatekeys", "f.yaml"], cwd=tmp_path, env=base_env(), input="n\n",
                         capture_output=True, text=True, timeout=120)
    shown = _updatekeys_groups(upd.stdout)
    assert shown, upd.stdout + upd.stderr
    assert shown == [[s.identity() for s in g] for g in rule.key_specs()]


@pytest.mark.parametrize("text", [FULL_FLAT, FULL_GROUPS], ids=["flat", "groups"])
def test_key_groups_agree_with_key_specs(tmp_path: Path, text: str) -> None:
    rule = _rule_from(text, tmp_path)
    built = rule.key_groups(kms_context={"app": "web"})
    specs = rule.key_specs(kms_context={"app": "web"})
    assert [[(k.type_name, k.identity()) for k in g] for g in built] == \
        [[(s.type_name, s.identity()) for s in g] for g in specs]
    assert all(k.enc == "" for g in built for k in g)


def test_key_groups_build_fresh_key_objects(tmp_path: Path) -> None:
    r = recipients()
    path = write(tmp_path / ".sops.yaml", f"creation_rules:\n  - key_groups:\n    - age: [{r[0]}]\n"
                                          f"      pgp: [{PGP_FP}]\n    - age: [{r[1]}]\n")
    rule = load_config(path).rules[0]
    first, second = rule.key_groups(), rule.key_groups()
    assert [[k.type_name for k in g] for g in first] == [["age", "pgp"], ["age"]]
    assert [[k.identity() for k in g] for g in first] == [[r[0], PGP_FP], [r[1]]]
    assert all(a is not b for ga, gb in zip(first, second, strict=True) for a, b in zip(ga, gb, strict=True))


def test_age_recipient_check_agrees_with_pyrage() -> None:
    import pyrage

    for recipient in recipients():
        assert is_age_x25519_recipient(recipient)
        broken = recipient[:-1] + ("q" if recipient[-1] != "q" else "p")
        assert not is_age_x25519_recipient(broken)
        with pytest.raises(Exception):  # noqa: B017 - pyrage raises its own error type
            pyrage.x25519.Recipient.from_str(broken)
    assert not is_age_x25519_recipient(recipients()[0].upper())


# --- paths ---------------------------------------------------------------------------------


def test_go_path_helpers() -> None:
    assert go_clean("//a//b/../c/") == "/a/c"
    assert go_clean("") == "."
    assert go_abs("x/../y", "/r") == "/r/y"
    assert go_abs("/abs", "/r") == "/abs"
    assert go_abs("../../..", "/r") == "/"


def test_relative_path_rules(tmp_path: Path) -> None:
    config = parse_config(b"creation_rules:\n  - path_regex: ^a\n    age: " + A.encode() + b"\n",
                          str(tmp_path / "repo" / ".sops.yaml"))
    repo = tmp_path / "repo"
    assert config.relative_path("a/b.yaml", cwd=repo) == "a/b.yaml"
    assert config.relative_path(str(repo), cwd="/") == str(repo)  # the directory itself has no "dir/" prefix
    assert config.relative_path("../repo2/a", cwd=repo) == str(tmp_path / "repo2" / "a")
    root_config = parse_config(b"creation_rules:\n  - path_regex: ^/a\n    age: " + A.encode() + b"\n",
                               "/.sops.yaml")
    # sops strips "<dir>/", which for "/" is "//": paths stay absolute.
    assert root_config.relative_path("/a/b") == "/a/b"
    assert root_config.match("/a/b") is not None


# --- the two YAML front ends ------------------------------------------------------------------

#: Texts libyaml and ruamel both parse, chosen for where they resolve differently:
#: YAML 1.1 booleans and octals, explicit tags (alone, after an anchor, on aliases),
#: quoted scalars, merge keys, flow style, later documents.
FRONT_END_TEXTS = [
    FULL_FLAT,
    FULL_GROUPS,
    f"creation_rules:\n  - age: {A}\n    mac_only_encrypted: yes\n",
    f"creation_rules:\n  - age: {A}\n    mac_only_encrypted: !!bool true\n",
    f"creation_rules:\n  - age: {A}\n    mac_only_encrypted: !!bool yes\n",
    f"creation_rules:\n  - age: {A}\n    shamir_threshold: 0o2\n",
    f"creation_rules:\n  - age: {A}\n    shamir_threshold: !!int '2'\n",
    f"creation_rules:\n  - age: {A}\n    shamir_threshold: !!str 2\n",
    f"creation_rules:\n  - path_regex: !!str null\n    age: {A}\n",
    f"creation_rules:\n  - path_regex: &r !!str on\n    age: {A}\n  - path_regex: *r\n    age: {A}\n",
    f"creation_rules:\n  - path_regex: 'null'\n    age: \"{A}\"\n  - path_regex: ~\n    age: {A}\n",
    f"base: &b\n  age: {A}\ncreation_rules:\n  - <<: *b\n    path_regex: x\n",
    f"creation_rules: [{{path_regex: a, age: {A}}}, {{encrypted_regex: '^d', age: [{A}]}}]\n",
    f"creation_rules:\n  - age: {A}\n---\ncreation_rules: 5\n",
    "stores:\n  json:\n    indent: !!int 2\n  yaml:\n    indent: 0x4\ncreation_rules: []\n",
    f"creation_rules:\n  - age: {A}\n    unknown_key: !!binary aGVsbG8=\n",
    *[text for _, text, _, _ in INVALID if "YAML syntax" not in text and not text.startswith("creation_rules: [")],
]


def _decoded(text: str, path: str) -> str:
    """Everything parse_config decided, as text (or the error it raised)."""
    try:
        config = parse_config(text.encode(), path, strict=False)
    except SopsError as exc:
        return f"error {exc.code}: {exc.message}"
    out = [repr(config), repr(config._store_indents), str(config.has_creation_rules)]
    for rule in config.rules:
        fields = {k: v for k, v in vars(rule).items() if k not in ("_regex", "_specs_cache")}
        out.append(repr(sorted(fields.items(), key=lambda kv: kv[0])))
        try:
            out.append(repr(rule.key_specs()))
        except SopsError as exc:
            out.append(f"specs error {exc.code}: {exc.message}")
    return "\n".join(out)


@pytest.mark.parametrize("text", FRONT_END_TEXTS)
def test_libyaml_and_ruamel_front_ends_decode_alike(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """parse_config reads through libyaml and falls back to ruamel only for text
    libyaml rejects; both must decode whatever they both accept the same way."""
    import sopsflow.config.decoder as config_module

    path = "/repo/.sops.yaml"
    assert config_module._compose_libyaml(text) is not config_module._UNPARSED
    fast = _decoded(text, path)
    monkeypatch.setattr(config_module, "_compose_libyaml", lambda _text: config_module._UNPARSED)
    assert _decoded(text, path) == fast
