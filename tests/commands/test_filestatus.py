"""`sopsflow filestatus` against the real sops binary: identical stdout and
exit code on encrypted, plain, broken, binary and missing files."""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from ..conftest import run_sops, run_sopsflow
from ..vectors import AGE_RECIPIENT, GENERATED

PLAIN_INPUTS = {
    "plain.yaml": b"a: 1\nb: [x, y]\n",
    "plain.json": b'{"a": 1, "b": ["x"]}\n',
    "plain.env": b"A=1\nB=two\n",
    "plain.ini": b"[s]\na = 1\n",
    "plain.bin": b"just some bytes\n",
}


def _encrypted(tmp: Path, name: str, data: bytes, env: dict[str, str]) -> Path:
    src = tmp / name
    src.write_bytes(data)
    done = run_sops(["encrypt", "--age", AGE_RECIPIENT, str(src)], env=env)
    assert done.returncode == 0, done.stderr
    out = tmp / ("enc." + name)
    out.write_bytes(done.stdout)
    return out


def _file_set(tmp: Path, env: dict[str, str]) -> list[str]:
    """Every case as a path relative to ``tmp`` (sops prints the path it was given)."""
    names: list[str] = []
    for name, data in PLAIN_INPUTS.items():
        names.append(_encrypted(tmp, name, data, env).name)
        names.append(name)
    enc_yaml = (tmp / "enc.plain.yaml").read_text()
    enc_json = (tmp / "enc.plain.json").read_text()
    extra = {
        # broken or odd documents per store
        "broken.yaml": "a: [\n",
        "dup.yaml": "a: 1\na: 2\n",
        "list.yaml": "- a\n- b\n",
        "empty.yaml": "",
        "comment-only.yaml": "# nothing here\n",
        "dashes.yaml": "---\n",
        "null.yaml": "~\n",
        "broken.json": '{"a": \n',
        "array.json": "[1, 2]\n",
        "empty-object.json": "{}\n",
        "broken.env": "NOEQUALS\n",
        "empty.env": "",
        "broken.ini": "[unclosed\n",
        # sops metadata present but incomplete or invalid
        "sops-scalar.yaml": "a: 1\nsops: 1\n",
        "no-keys.yaml": "a: 1\nsops:\n    lastmodified: '2024-01-01T00:00:00Z'\n    mac: x\n    version: 3.11.0\n",
        "no-lastmodified.yaml": re.sub(r"(?m)^    lastmodified: .*\n", "", enc_yaml),
        "bad-lastmodified.yaml": re.sub(r"(?m)^(    lastmodified: ).*$", r"\1yesterday", enc_yaml),
        "empty-mac.yaml": re.sub(r"(?m)^(    mac: ).*$", r'\1""', enc_yaml),
        "no-version.yaml": re.sub(r"(?m)^    version: .*\n", "", enc_yaml),
        "empty-version.json": re.sub(r'"version": "[^"]*"', '"version": ""', enc_json),
        "sops-key.env": "A=1\nsops_version=3.11.0\n",
        "sops-section.ini": "[sops]\nversion = 3.11.0\n",
        "sops-plain.json": '{"sops": {"version": "3.11.0", "mac": "m"}}\n',
    }
    for name, text in extra.items():
        (tmp / name).write_text(text)
        names.append(name)
    (tmp / "random.bin").write_bytes(bytes(range(256)))
    names.append("random.bin")
    (tmp / "adir.yaml").mkdir()
    names += ["adir.yaml", "missing.yaml", "missing.bin"]
    return names


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    from ..conftest import base_env
    from ..vectors import AGE_KEY_FILE

    tmp = tmp_path_factory.mktemp("filestatus")
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    env["HOME"] = str(tmp)
    names = _file_set(tmp, env)
    # the real vectors, every format, multi-group and partial encryption included
    for vec in sorted(GENERATED.rglob("*.enc.*")):
        target = tmp / f"vec-{vec.parent.name}-{vec.name}"
        shutil.copyfile(vec, target)
        names.append(target.name)
    return tmp, names


def test_same_stdout_and_exit_code_as_sops(cases: tuple[Path, list[str]], age_env: dict[str, str]) -> None:
    tmp, names = cases

    def pair(name: str) -> tuple[str, CompletedProcess[bytes], CompletedProcess[bytes]]:
        ours = run_sopsflow(["filestatus", name], env=age_env, cwd=tmp)
        return name, ours, run_sops(["filestatus", name], env=age_env, cwd=tmp)

    mismatches = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(pair, names))
    for name, ours, theirs in results:
        if (ours.returncode, ours.stdout) != (theirs.returncode, theirs.stdout):
            mismatches.append((name, ours.returncode, ours.stdout, theirs.returncode, theirs.stdout))
        if ours.returncode != 0:
            assert ours.stdout == b"", name
            assert ours.stderr.count(b"\n") == 1, (name, ours.stderr)
            assert b"Traceback" not in ours.stderr
    assert not mismatches, mismatches
    assert len(names) >= 40


def test_expected_answers(cases: tuple[Path, list[str]], age_env: dict[str, str]) -> None:
    # Independent of the oracle: what each kind of file must give.
    tmp, _ = cases
    expect = {
        "enc.plain.yaml": (0, b'{"encrypted":true}\n'),
        "enc.plain.env": (0, b'{"encrypted":true}\n'),
        "enc.plain.ini": (0, b'{"encrypted":true}\n'),
        "enc.plain.bin": (0, b'{"encrypted":true}\n'),
        "plain.yaml": (0, b'{"encrypted":false}\n'),
        "plain.env": (0, b'{"encrypted":false}\n'),
        "empty-mac.yaml": (0, b'{"encrypted":false}\n'),
        "no-version.yaml": (0, b'{"encrypted":false}\n'),
        "broken.yaml": (1, b""),
        "plain.bin": (1, b""),
        "no-keys.yaml": (1, b""),
        "missing.yaml": (1, b""),
    }
    for name, (code, out) in expect.items():
        done = run_sopsflow(["filestatus", name], env=age_env, cwd=tmp)
        assert (done.returncode, done.stdout) == (code, out), (name, done.stderr)


def test_input_type_and_no_file(tmp_path: Path, age_env: dict[str, str]) -> None:
    enc = _encrypted(tmp_path, "x.json", b'{"a": "b"}', age_env)
    renamed = tmp_path / "x.txt"
    os.rename(enc, renamed)
    for args in (["filestatus", str(renamed)], ["filestatus", "--input-type", "json", str(renamed)]):
        ours, theirs = run_sopsflow(args, env=age_env), run_sops(args, env=age_env)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    done = run_sopsflow(["filestatus"], env=age_env)
    assert done.returncode == run_sops(["filestatus"], env=age_env).returncode == 100
