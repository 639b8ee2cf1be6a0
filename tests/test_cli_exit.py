"""The command-line entry point exits without tearing the interpreter down
(``sopsflow.main.run``): its output must still arrive whole, its exit code
must be the command's, and a reader that goes away early is no error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import REPO, base_env
from .vectors import AGE_KEY_FILE, AGE_RECIPIENT, GENERATED


def _env() -> dict[str, str]:
    return base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), PYTHONPATH=str(REPO))


def test_output_arrives_whole_through_a_pipe_and_a_file(tmp_path: Path) -> None:
    vector = sorted((GENERATED / "yaml").glob("*.enc.yaml"))[0]
    piped = subprocess.run([sys.executable, "-m", "sopsflow", "decrypt", str(vector)], env=_env(),
                           capture_output=True)
    assert piped.returncode == 0, piped.stderr
    out = tmp_path / "plain.yaml"
    with out.open("wb") as handle:
        to_file = subprocess.run([sys.executable, "-m", "sopsflow", "decrypt", str(vector)], env=_env(),
                                 stdout=handle, stderr=subprocess.PIPE)
    assert to_file.returncode == 0 and out.read_bytes() == piped.stdout and piped.stdout


def test_exit_code_and_message_of_a_failing_command(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "sopsflow", "decrypt", str(tmp_path / "missing.yaml")],
                          env=_env(), capture_output=True)
    assert done.returncode == 100 and done.stdout == b""  # sops' exit code for a missing file
    assert done.stderr.decode().strip().startswith("Error: cannot operate on non-existent file")


def test_a_reader_that_leaves_early_is_no_error(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 4_000_000)
    encrypted = subprocess.run([sys.executable, "-m", "sopsflow", "encrypt", "--age", AGE_RECIPIENT, str(big)],
                               env=_env(), capture_output=True, check=True).stdout
    (tmp_path / "big.enc").write_bytes(encrypted)
    proc = subprocess.Popen([sys.executable, "-m", "sopsflow", "decrypt", str(tmp_path / "big.enc")], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10) == b"x" * 10
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert b"Traceback" not in err and b"Exception ignored" not in err
