"""Ansible's community.sops against sopsflow: a localhost playbook reads
encrypted YAML with ``load_vars`` and the ``sops`` lookup and writes a file
with ``sops_encrypt``, once with ``sops_binary`` a ``sops`` symlink to
sopsflow, once with sopsflow's own path.

community.sops parses ``sops --version``: as ``sops`` sopsflow says
``sops 3.11.0 (...)`` and the collection uses the subcommands; under its own
name the version does not parse, the collection warns and falls back to the
classic ``--decrypt`` / ``--encrypt /dev/stdin`` flags. Both must work.

Ansible is large, so it lives in its own venv, which ``make test`` creates
(SOPSFLOW_ANSIBLE_VENV points the test at it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import REPO, base_env, sops_binary
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT

PLAYBOOK = """\
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    sops_binary: "BINARY"
    sops_age_keyfile: "KEYFILE"
  tasks:
    - name: read with load_vars
      community.sops.load_vars:
        file: secrets.sops.yaml
        name: loaded
        sops_binary: BINARY
    - name: read with the lookup
      ansible.builtin.set_fact:
        looked_up: "{{ lookup('community.sops.sops', 'secrets.sops.yaml', sops_binary=sops_binary) | from_yaml }}"
    - name: both saw the plaintext
      ansible.builtin.assert:
        that:
          - loaded.db.password == 'hunter2'
          - looked_up.db.password == 'hunter2'
    - name: write with sops_encrypt
      community.sops.sops_encrypt:
        path: "{{ playbook_dir }}/written.sops.yaml"
        content_yaml:
          token: written-by-ansible
        age: AGE
        sops_binary: BINARY
"""


def _ansible_venv() -> Path | None:
    configured = os.environ.get("SOPSFLOW_ANSIBLE_VENV")
    venv = Path(configured) if configured else REPO / ".venv-ansible"
    if (venv / "bin" / "ansible-playbook").exists():
        return venv
    if configured:
        raise AssertionError(f"SOPSFLOW_ANSIBLE_VENV={configured} has no ansible-playbook (make test installs it)")
    return None


@pytest.fixture(scope="module")
def ansible_venv() -> Path:
    venv = _ansible_venv()
    if venv is None:
        pytest.skip("no Ansible venv: run `make test` (it installs Ansible into .venv-ansible) "
                    "or set SOPSFLOW_ANSIBLE_VENV")
    return venv


def _sopsflow_program(directory: Path) -> Path:
    """An executable named ``sopsflow`` running this checkout (the console script's equivalent)."""
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / "sopsflow"
    program.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
        "from sopsflow.main import run\nrun()\n"
    )
    program.chmod(0o755)
    return program


@pytest.mark.parametrize("form", ["sops-symlink", "own-path"])
def test_playbook(form: str, ansible_venv: Path, tmp_path: Path) -> None:
    program = _sopsflow_program(tmp_path / "bin")
    if form == "sops-symlink":
        binary = tmp_path / "linkdir" / "sops"
        binary.parent.mkdir()
        binary.symlink_to(program)
    else:
        binary = program
    work = tmp_path / "play"
    work.mkdir()
    (work / "playbook.yml").write_text(PLAYBOOK.replace("AGE", AGE_RECIPIENT).replace("BINARY", str(binary))
                                     .replace("KEYFILE", str(AGE_KEY_FILE)))
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
                   ANSIBLE_PYTHON_INTERPRETER=str(ansible_venv / "bin" / "python"),
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_LOCALHOST_WARNING="False",
                   PATH="/usr/bin:/bin")  # no real sops to fall back on
    encrypted = subprocess.run([sops_binary(), "encrypt", "--age", AGE_RECIPIENT, "--input-type", "yaml",
                                "--output-type", "yaml", "/dev/stdin"], input=b"db:\n    password: hunter2\n",
                               env=env, capture_output=True, check=True).stdout
    (work / "secrets.sops.yaml").write_bytes(encrypted)
    done = subprocess.run([str(ansible_venv / "bin" / "ansible-playbook"), "-vvvv", "playbook.yml"], cwd=work,
                          env=env, capture_output=True, timeout=300, check=False)
    log = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    assert done.returncode == 0, log[-4000:]
    assert "failed=0" in log
    if form == "sops-symlink":
        # The version parsed: the collection calls the subcommands (decrypt, encrypt).
        assert "SOPS version detected as (3, 11, 0)" in log
        assert "Cannot extract SOPS version" not in log
    else:
        # Not a sops version line: the collection falls back to --decrypt / --encrypt /dev/stdin.
        assert "Cannot extract SOPS version from" in log and "sopsflow" in log
        assert "SOPS version detected" not in log
    written = work / "written.sops.yaml"
    plain = subprocess.run([sops_binary(), "decrypt", str(written)], env=env, capture_output=True, check=False)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == b"token: written-by-ansible\n"
