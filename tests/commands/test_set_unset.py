"""`sopsflow set` / `unset` against the real sops binary: the same command on
two copies of one encrypted file must give the same exit code, the same
plaintext, and the same encrypted text except for the new values' ENC[]
(random IVs), lastmodified and mac. Unchanged values stay byte-identical."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sopsflow.commands.set_unset import json_value
from sopsflow.errors import SopsError
from sopsflow.tree import TreeMap, parse_tree_path, set_path, unset_path

from ..conftest import run_sops, run_sopsflow
from ..vectors import AGE_RECIPIENT

ENC = re.compile(r"ENC\[AES256_GCM,[^\]]*\]")
META_LINE = re.compile(r'^\s*"?(lastmodified|mac|sops_lastmodified|sops_mac)"?\s*[:=]')

BASES = {
    "yaml": (
        "f.yaml",
        "a: 1\n"
        'b:\n    - x\n    - "y"\n    - z: 1\n    # in list\n    - last\n'
        "c:\n    d: e\n    f: [1, 2]\n"
        "n: null\nt: true\ns_unencrypted: plain\n# a comment\ne: ''\nw: 2024-01-02T03:04:05Z\n",
    ),
    "json": ("f.json", '{"a": 1, "b": ["x", {"z": 1}], "c": {"d": "e"}, "dup": 1, "dup": 2, "s": ""}'),
    "dotenv": ("f.env", "A=1\n# comment\nB=two words\nC=x=y\n"),
    "ini": ("f.ini", "[sec]\na = 1\nb = two\n[other]\nc = 3\n"),
}

CASES = [
    ("yaml", ["set", '["a"]', "2"]),
    ("yaml", ["set", '["a"]', "1"]),
    ("yaml", ["set", '["new"]', '"v"']),
    ("yaml", ["set", '["c"]["d"]', '{"x": [1, {"y": null}], "z": true, "x2": 1.5e-7}']),
    ("yaml", ["set", '["b"][1]', '"Y"']),
    ("yaml", ["set", '["b"][3]', '"replaces the comment item"']),
    ("yaml", ["set", '["b"][9]', '"appended"']),
    ("yaml", ["set", '["b"][9]["k"]', '"appended map"']),
    ("yaml", ["set", '["b"][2]["z"]', "2.5"]),
    ("yaml", ["set", '["a"]["deep"][0]', '"replaces a scalar"']),
    ("yaml", ["set", '["new"][0]["k"]', '"v"']),
    ("yaml", ["set", '["s_unencrypted"]', '"still plain"']),
    ("yaml", ["set", '["n"]', '"was null"']),
    ("yaml", ["set", '["t"]', "null"]),
    ("yaml", ["set", "[0]", "1"]),
    ("yaml", ["set", '["a"]', '"\\u00e9\\ud83d\\ude00 \\ud800"']),
    ("yaml", ["set", '["big"]', "12345678901234567890123"]),
    ("yaml", ["set", '["c"]["f"]', "{}"]),
    ("yaml", ["set", "['c']['d']", '"single quotes"']),
    ("yaml", ["set", '["a"]', "[1, 2]"]),
    ("yaml", ["set", '["a"]', "nope"]),
    ("yaml", ["set", '["a"]', "1e400"]),
    ("yaml", ["set", '["a"]', "NaN"]),
    ("yaml", ["set", '["a"]', ""]),
    ("yaml", ["set", "a", "1"]),
    ("yaml", ["set", '["a"', "1"]),
    ("yaml", ["set", "[x]", "1"]),
    ("yaml", ["set", '["b"]["x"]', "1"]),
    ("yaml", ["set", '["b"][-1]', "1"]),
    ("yaml", ["set", "[]", "1"]),
    ("yaml", ["set", "", "1"]),
    ("yaml", ["set", '["a"]']),
    ("yaml", ["unset", '["a"]']),
    ("yaml", ["unset", '["b"][0]']),
    ("yaml", ["unset", '["b"][3]']),
    ("yaml", ["unset", '["c"]["f"][1]']),
    ("yaml", ["unset", '["c"]']),
    ("yaml", ["unset", '["zz"]']),
    ("yaml", ["unset", "[3]"]),
    ("yaml", ["unset", '["b"][7]']),
    ("yaml", ["unset", '["a"]["q"]']),
    ("yaml", ["unset", '["n"]["q"]']),
    ("yaml", ["unset", '["b"][-1]']),
    ("yaml", ["unset", '["b"]["x"]']),
    ("yaml", ["unset", "bad"]),
    ("yaml", ["unset", '["zz"]', "--idempotent"]),
    ("yaml", ["set", "--idempotent", '["a"]', "2"]),
    ("json", ["set", '["a"]', "3"]),
    ("json", ["set", '["dup"]', '"first only"']),
    ("json", ["set", '["b"][1]["z"]', '{"q": [true]}']),
    ("json", ["unset", '["dup"]']),
    ("json", ["unset", '["b"][0]']),
    ("dotenv", ["set", '["B"]', '"changed"']),
    ("dotenv", ["set", '["NEW"]', "1.5"]),
    ("dotenv", ["set", '["B"]', '{"nested": 1}']),
    ("dotenv", ["unset", '["C"]']),
    ("ini", ["set", '["sec"]["b"]', '"changed"']),
    ("ini", ["set", '["third"]["k"]', '"v"']),
    ("ini", ["unset", '["other"]']),
]


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ..conftest import base_env
    from ..vectors import AGE_KEY_FILE

    tmp = tmp_path_factory.mktemp("setbase")
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), HOME=str(tmp))
    out = {}
    for fmt, (name, text) in BASES.items():
        src = tmp / name
        src.write_text(text)
        done = run_sops(["encrypt", "--age", AGE_RECIPIENT, str(src)], env=env)
        assert done.returncode == 0, done.stderr
        enc = tmp / ("enc-" + name)
        enc.write_bytes(done.stdout)
        out[fmt] = enc
    return out


def normalise(text: str, original: set[str]) -> list[str]:
    """Lines of an encrypted file with what must differ between two runs blanked:
    lastmodified/mac, and the ENC[] of values that are new (not in the original)."""
    lines = []
    for line in text.splitlines():
        if META_LINE.match(line):
            lines.append(META_LINE.match(line).group(1))  # type: ignore[union-attr]
        elif line in original:
            lines.append(line)
        else:
            lines.append(ENC.sub("ENC[*]", line))
    if "[sops]" in lines:  # sops 3.11 writes the INI [sops] section in random order
        start = lines.index("[sops]") + 1
        lines[start:] = sorted(lines[start:])
    return lines


def _pair(tmp: Path, source: Path) -> tuple[Path, Path]:
    a, b = tmp / "sops" / source.name, tmp / "ours" / source.name
    for target in (a, b):
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, target)
    return a, b


def _compare(tmp: Path, source: Path, args: list[str], env: dict[str, str], stdin: bytes | None = None) -> int:
    a, b = _pair(tmp, source)
    command, rest = args[0], args[1:]
    flags = [x for x in rest if x.startswith("--")]
    positional = [x for x in rest if not x.startswith("--")]
    theirs = run_sops([command, *flags, str(a), *positional], env=env, input=stdin)
    ours = run_sopsflow([command, *flags, str(b), *positional], env=env, input=stdin)
    assert ours.returncode == theirs.returncode, (args, ours.stderr, theirs.stderr)
    assert b"Traceback" not in ours.stderr
    if ours.returncode != 0:
        assert b.read_bytes() == source.read_bytes(), "nothing may be written on failure"
        assert len(ours.stderr.strip().splitlines()) >= 1
        return ours.returncode
    original = set(source.read_text().splitlines())
    assert normalise(b.read_text(), original) == normalise(a.read_text(), original), args
    plain_theirs = run_sops(["decrypt", str(a)], env=env)
    plain_ours = run_sops(["decrypt", str(b)], env=env)
    assert plain_ours.returncode == 0, plain_ours.stderr
    assert plain_ours.stdout == plain_theirs.stdout
    return 0


@pytest.mark.parametrize(("fmt", "args"), CASES, ids=[" ".join([f, *a]) for f, a in CASES])
def test_same_result_as_sops(
    fmt: str, args: list[str], encrypted: dict[str, Path], tmp_path: Path, age_env: dict[str, str]
) -> None:
    _compare(tmp_path, encrypted[fmt], args, age_env)


def test_unchanged_values_keep_their_exact_ciphertext(
    encrypted: dict[str, Path], tmp_path: Path, age_env: dict[str, str]
) -> None:
    _, target = _pair(tmp_path, encrypted["yaml"])
    before = target.read_text().splitlines()
    done = run_sopsflow(["set", str(target), '["c"]["d"]', '"other"'], env=age_env)
    assert done.returncode == 0, done.stderr
    after = target.read_text().splitlines()
    changed = [(x, y) for x, y in zip(before, after, strict=True) if x != y]
    assert [y.split(":")[0].strip() for _, y in changed] == ["d", "lastmodified", "mac"]
    assert "version: 3.11.0" in after[-1]


def test_value_file_and_stdin(encrypted: dict[str, Path], tmp_path: Path, age_env: dict[str, str]) -> None:
    value = tmp_path / "value.json"
    value.write_text('{"from": "file"}')
    assert _compare(tmp_path, encrypted["yaml"], ["set", "--value-file", '["v"]', str(value)], age_env) == 0
    assert _compare(tmp_path, encrypted["yaml"], ["set", "--value-stdin", '["v"]'], age_env, b'"stdin"') == 0
    code = _compare(tmp_path, encrypted["yaml"], ["set", "--value-stdin", "--value-file", '["v"]'], age_env, b"1")
    assert code == 1
    assert _compare(tmp_path, encrypted["yaml"], ["set", "--value-file", '["v"]', str(tmp_path / "no")], age_env) == 1


def test_idempotent_set_does_not_write(encrypted: dict[str, Path], tmp_path: Path, age_env: dict[str, str]) -> None:
    _, target = _pair(tmp_path, encrypted["json"])
    before = target.read_bytes()
    done = run_sopsflow(["set", "--idempotent", str(target), '["c"]["d"]', '"e"'], env=age_env)
    assert done.returncode == 0 and target.read_bytes() == before
    done = run_sopsflow(["set", str(target), '["c"]["d"]', '"e"'], env=age_env)
    assert done.returncode == 0 and target.read_bytes() != before  # written (new lastmodified/mac)


def test_ignore_mac_and_version_kept(encrypted: dict[str, Path], tmp_path: Path, age_env: dict[str, str]) -> None:
    text = encrypted["yaml"].read_text()
    tampered = tmp_path / "t.yaml"
    # version is outside the MAC: an old version must survive set/unset untouched
    tampered.write_text(re.sub(r"version: .*", "version: 3.7.3", text))
    for args in (["set", '["a"]', "5"], ["unset", '["a"]']):
        assert _compare(tmp_path, tampered, args, age_env) == 0
        assert (tmp_path / "ours" / "t.yaml").read_text().rstrip().endswith("version: 3.7.3")
    # a value moved to another key breaks the MAC (and its AAD): exit codes as sops
    lines = text.splitlines()
    a_line = next(i for i, x in enumerate(lines) if x.startswith("a: "))
    lines[a_line] = re.sub(r"(?m)^a: ENC\[AES256_GCM,data:[^,]*", "a: ENC[AES256_GCM,data:AA==", lines[a_line])
    tampered.write_text("\n".join(lines) + "\n")
    assert _compare(tmp_path, tampered, ["set", '["t"]', "1"], age_env) != 0
    # a version that is not semver is refused on load, before any key is asked
    bad_version = tmp_path / "v.yaml"
    bad_version.write_text(text.replace("version: 3.11.0", "version: 3.x"))
    assert _compare(tmp_path, bad_version, ["set", '["t"]', "1"], age_env) == 1
    assert _compare(tmp_path, bad_version, ["unset", '["t"]'], age_env) == 1
    mac_broken = tmp_path / "m.yaml"
    mac_broken.write_text(re.sub(r"(?m)^(    mac: ENC\[AES256_GCM,data:)(.)", r"\1A\2", text))
    assert _compare(tmp_path, mac_broken, ["set", '["t"]', "1"], age_env) == 51
    assert _compare(tmp_path, mac_broken, ["set", "--ignore-mac", '["t"]', "1"], age_env) == 0
    assert _compare(tmp_path, mac_broken, ["unset", "--ignore-mac", '["t"]'], age_env) == 0


def test_missing_file_and_argument_errors(tmp_path: Path, age_env: dict[str, str]) -> None:
    for args in (
        ["set", str(tmp_path / "missing.yaml"), '["a"]', "1"],
        ["unset", str(tmp_path / "missing.yaml"), '["a"]'],
        ["set", str(tmp_path / "x.yaml")],
        ["unset", str(tmp_path / "x.yaml")],
        ["set"],
    ):
        ours, theirs = run_sopsflow(args, env=age_env), run_sops(args, env=age_env)
        assert ours.returncode == theirs.returncode, (args, ours.stderr, theirs.stderr)
        assert not (tmp_path / "missing.yaml").exists()


# --- the tree operations without subprocesses (bounded property tests) ---------------------

json_scalars = st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def _to_python(node: object) -> object:
    if type(node) is TreeMap:
        return {k: _to_python(v) for k, v in node.items_()}
    if type(node) is list:
        return [_to_python(v) for v in node]
    return node


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.dictionaries(st.text(max_size=4), json_values, max_size=4))
def test_json_objects_become_trees(value: dict[str, object]) -> None:
    tree = json_value(json.dumps(value))
    assert type(tree) is TreeMap
    expected = json.loads(json.dumps(value), parse_int=float)
    assert _to_python(tree) == expected


@settings(max_examples=40, deadline=None)
@given(
    keys=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3),
    value=st.text(max_size=5) | st.floats(allow_nan=False),
)
def test_set_then_unset_round_trip(keys: list[str], value: object) -> None:
    root = TreeMap([("a", TreeMap([("x", 1.0)])), ("keep", "me")])
    root, changed = set_path(root, list(keys), value)
    current: object = root
    for key in keys:
        assert type(current) is TreeMap
        current = current.get(key)
    assert current == value
    root, changed_again = set_path(root, list(keys), value)
    assert changed_again is False
    root = unset_path(root, list(keys))
    assert root.get("keep") == "me"


def test_path_syntax_matches_sops() -> None:
    assert parse_tree_path("[\"a\"][0]['b']") == ["a", 0, "b"]
    assert parse_tree_path('["a"]["b]') == ["a", ""]  # sops drops the first and last character
    assert parse_tree_path("[+3]") == [3]
    for bad in ("a", '["a"', "[x]", "[ 1]", "[1_0]"):
        with pytest.raises(ValueError):
            parse_tree_path(bad)
    with pytest.raises(SopsError) as exc:
        json_value("[1]")
    assert exc.value.code == 7
