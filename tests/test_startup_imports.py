"""What ``sopsflow decrypt`` imports: the modules a plain age-encrypted file
does not need stay unloaded (other commands' argument parsers, plugin and
post-quantum age, Shamir, the other stores, the product parts), read from
``python -X importtime`` of a real decrypt. Nothing here is timed."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from sopsflow.lazyre import compile_lazy

from .conftest import REPO, base_env
from .vectors import AGE_KEY_FILE, AGE_RECIPIENT

#: Loaded only when a file, identity or command needs them.
LAZY = {
    "sopsflow.keys.ageplugin",  # plugin identities (and subprocess)
    "sopsflow.keys.agepq",  # post-quantum identities
    "sopsflow.keys.agefmt",  # our own age parser, for those two
    "sopsflow.shamir",  # several key groups
    "sopsflow.stores.yaml_store",
    "sopsflow.stores.ini_store",
    "sopsflow.stores.dotenv_store",
    "sopsflow.api",
    "sopsflow.audit",
    "sopsflow.updater",
    "sopsflow.verify",
}


def _imported(argv: list[str], cwd: Path) -> tuple[set[str], bytes]:
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "sopsflow", *argv], cwd=cwd, env=env,
                          capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    names = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr.decode(), re.M))
    return names, done.stdout


def test_decrypt_loads_only_what_a_plain_age_file_needs(tmp_path: Path) -> None:
    plain = {f"key{i}": f"value-{i}" for i in range(100)}
    source = tmp_path / "plain.json"
    source.write_text(json.dumps(plain))
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), PYTHONPATH=str(REPO))
    encrypted = subprocess.run([sys.executable, "-m", "sopsflow", "encrypt", "--age", AGE_RECIPIENT, str(source)],
                               cwd=tmp_path, env=env, capture_output=True, check=True).stdout
    (tmp_path / "secret.json").write_bytes(encrypted)

    names, out = _imported(["decrypt", "secret.json"], tmp_path)

    assert json.loads(out) == plain
    assert {"sopsflow.commands.common", "sopsflow.stores.json_store", "sopsflow.keys.age"} <= names
    assert not names & LAZY, sorted(names & LAZY)
    # importtime does not see importlib.import_module, which loads the command
    # module; sys.modules after a run in-process does.
    probe = ("import sys; from sopsflow.main import main; code = main(['decrypt', 'secret.json']); "
             "sys.stdout.flush(); print(sorted(m for m in sys.modules if m.startswith('sopsflow')), file=sys.stderr); "
             "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True)
    assert done.returncode == 0 and json.loads(done.stdout) == plain, done.stderr.decode()[-2000:]
    loaded = set(ast.literal_eval(done.stderr.decode().strip().splitlines()[-1]))
    assert {n for n in loaded if n.startswith("sopsflow.commands.")} == {
        "sopsflow.commands.common", "sopsflow.commands.decrypt"}
    assert not loaded & LAZY, sorted(loaded & LAZY)


def test_a_lazy_pattern_acts_as_the_compiled_one() -> None:
    text = compile_lazy(r"(\w+)=(\d+)", re.I)
    data = compile_lazy(rb"[\x21-\x7e]+\Z")
    assert text.fullmatch("Port=80") is not None and text.fullmatch("Port=80").groups() == ("Port", "80")
    assert text.sub(r"\2", "a=1 b=2") == "1 2"
    assert text.search("x") is None
    assert data.match(b"abc") is not None and data.match(b"a c") is None
    assert text.pattern == r"(\w+)=(\d+)" and text.flags & re.I
