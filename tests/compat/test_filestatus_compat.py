"""``sopsflow filestatus`` agrees with ``sops filestatus`` (stdout and exit code)
on every file of the test vectors (and of the external oracle files, when
present) and on files sopsflow itself wrote
in every store, fully and partially encrypted.

(tests/commands/test_filestatus.py covers hand-made broken and odd files.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..vectors import AGE_RECIPIENT, FLUX_AGE_PQ, GENERATED, UPSTREAM, external_params
from . import age_env, flow_argv, run_all, sops_argv

VECTOR_FILES = sorted(p for p in GENERATED.rglob("*") if p.is_file())
BATCH = 6

WRITTEN = {
    "full.yaml": (b"a: 1\nb: [x, y]\n", []),
    "partial.yaml": (b"data:\n    password: p\nkind: Secret\n", ["--encrypted-regex", "^data$"]),
    "nothing-selected.yaml": (b"kind: Secret\n", ["--encrypted-regex", "^data$"]),
    "full.json": (b'{"a": 1, "b": ["x"]}\n', []),
    "partial.json": (b'{"password": "p", "name": "n"}\n', ["--unencrypted-regex", "^name$"]),
    "full.env": (b"A=1\nB=two\n", []),
    "full.ini": (b"[s]\na = 1\n", []),
    "full.bin": (b"\x00\xffbytes\n", []),
    "empty.env": (b"", []),
}


def _compare(paths: list[Path], cwd: Path) -> list[str]:
    """Mismatches between the two tools, as readable lines."""
    problems = []
    env = age_env()
    for start in range(0, len(paths), BATCH):
        chunk = paths[start : start + BATCH]
        argvs = [argv for p in chunk for argv in (sops_argv(["filestatus", str(p)]), flow_argv(["filestatus", str(p)]))]
        runs = run_all(argvs, env=env, cwd=cwd)
        for path, sops, flow in zip(chunk, runs[0::2], runs[1::2], strict=True):
            if (flow.rc, flow.out) != (sops.rc, sops.out):
                problems.append(f"{path}: sops {sops.rc} {sops.out!r}, sopsflow {flow.rc} {flow.out!r} {flow.err[:200]!r}")
            elif flow.rc != 0:
                # sops' error text names its own internals; only the code must match, and ours must be short
                assert b"Traceback" not in flow.err
    return problems


def test_vector_files(tmp_path: Path) -> None:
    assert len(VECTOR_FILES) > 50
    assert not _compare(VECTOR_FILES, tmp_path)


@pytest.mark.parametrize(
    "folder", external_params(lambda: [UPSTREAM, FLUX_AGE_PQ]), ids=lambda p: p.name if p else "absent"
)
def test_external_vector_files(folder: Path, tmp_path: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert files
    assert not _compare(files, tmp_path)


@pytest.fixture(scope="module")
def written_by_sopsflow(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    work = tmp_path_factory.mktemp("filestatus")
    argvs = []
    for name, (data, flags) in WRITTEN.items():
        (work / ("in-" + name)).write_bytes(data)
        argvs.append(flow_argv(["encrypt", "--age", AGE_RECIPIENT, *flags, "--output", name, "in-" + name]))
    for run in run_all(argvs, env=age_env(), cwd=work):
        assert run.rc == 0, run.why()
    return sorted(work.iterdir())


def test_files_written_by_sopsflow(written_by_sopsflow: list[Path], tmp_path: Path) -> None:
    encrypted = [p for p in written_by_sopsflow if not p.name.startswith("in-")]
    assert len(encrypted) == len(WRITTEN)
    assert not _compare(written_by_sopsflow, tmp_path)
    # and sops says "encrypted" for every file sopsflow encrypted
    for run in run_all([sops_argv(["filestatus", str(p)]) for p in encrypted], env=age_env(), cwd=tmp_path):
        assert run.out == b'{"encrypted":true}\n', run.why()
