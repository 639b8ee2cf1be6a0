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

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow.lazyre import compile_lazy

from .conftest import REPO, base_env
from .vectors import AGE_KEY_FILE, AGE_RECIPIENT

#: Loaded only when a file, identity or command needs them.
LAZY = {
    "sopsflow.keys.ageplugin",  # plugin identities (and subprocess)
    "sopsflow.keys.agepq",  # post-quantum identities
    "sopsflow.keys.agefmt",  # our own age parser, for those two
    "sopsflow.shamir",  # several key groups
    "sopsflow.stores.yaml.store",
    "sopsflow.stores.ini_store",
    "sopsflow.stores.dotenv_store",
    "sopsflow.api",
    "sopsflow.gitops.check",
    "sopsflow.gitops.updatekeys",
    "sopsflow.gitops.verify",
}

#: Never loaded by a decrypt that succeeds: AES-GCM comes from cryptography's
#: binding (cryptography.exceptions only when a value fails), the MAC from
#: CPython's built-in SHA-512, JSON from the C scanner (json only on an error).
NOT_ON_SUCCESS = {
    "json",
    "json.decoder",
    "json.encoder",
    "cryptography.exceptions",
    "cryptography.hazmat.primitives.ciphers",
    "cryptography.hazmat.primitives.hashes",
    "cryptography.utils",
    "hashlib",
    "_hashlib",
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
    assert not names & NOT_ON_SUCCESS, sorted(names & NOT_ON_SUCCESS)
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

    # a value that fails to authenticate still fails cleanly (the exception's module loads then)
    doc = json.loads(encrypted)
    value = doc["key0"]
    data = value.split("data:")[1].split(",")[0]
    doc["key0"] = value.replace(data, ("B" if data[0] != "B" else "C") + data[1:])
    (tmp_path / "forged.json").write_text(json.dumps(doc))
    failed = subprocess.run([sys.executable, "-m", "sopsflow", "decrypt", "forged.json"], cwd=tmp_path, env=env,
                            capture_output=True)
    assert failed.returncode == 25 and b"message authentication failed" in failed.stderr, failed.stderr
    assert b"Traceback" not in failed.stderr


#: What ``updatekeys -y`` of plain age files never loads: the hook's judgement
#: (the recipient drift lives in gitops.drift), age plugins and post-quantum
#: age, and copy (with weakref).
UPDATEKEYS_LAZY = {
    "sopsflow.gitops.check",
    "sopsflow.gitops.detectors",
    "sopsflow.gitops.settings",
    "sopsflow.keys.ageplugin",
    "sopsflow.keys.agepq",
    "sopsflow.keys.agefmt",
    "sopsflow.shamir",
    "copy",
}


def test_updatekeys_loads_neither_the_hook_nor_age_extensions(tmp_path: Path) -> None:
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), PYTHONPATH=str(REPO))

    def run(*argv: str) -> bytes:
        return subprocess.run(list(argv), cwd=tmp_path, env=env, capture_output=True, check=True).stdout

    run("git", "init", "-q")
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {AGE_RECIPIENT}\n")
    for name, text in (("a.json", '{"k": "v"}'), ("b.yaml", "k: v\n"), ("c.env", "K=v\n")):
        (tmp_path / f"plain-{name}").write_text(text)
        (tmp_path / name).write_bytes(run(sys.executable, "-m", "sopsflow", "encrypt", f"plain-{name}"))
        (tmp_path / f"plain-{name}").unlink()
    newcomer = "age1jc4htn29tef243euqajtv80w27ktg7hzkkmcqvdzwh29j7zjqgaskn46zj"
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {AGE_RECIPIENT},{newcomer}\n")
    run("git", "add", "-A")

    names, out = _imported(["updatekeys", "-y"], tmp_path)

    assert b"Updated 3 file(s)" in out
    assert all(newcomer in (tmp_path / name).read_text() for name in ("a.json", "b.yaml", "c.env"))
    assert {"sopsflow.gitops.updatekeys", "sopsflow.gitops.drift"} <= names
    assert not names & UPDATEKEYS_LAZY, sorted(names & UPDATEKEYS_LAZY)


def test_a_lazy_pattern_acts_as_the_compiled_one() -> None:
    text = compile_lazy(r"(\w+)=(\d+)", re.I)
    data = compile_lazy(rb"[\x21-\x7e]+\Z")
    assert text.fullmatch("Port=80") is not None and text.fullmatch("Port=80").groups() == ("Port", "80")
    assert text.sub(r"\2", "a=1 b=2") == "1 2"
    assert text.search("x") is None
    assert data.match(b"abc") is not None and data.match(b"a c") is None
    assert text.pattern == r"(\w+)=(\d+)" and text.flags & re.I


#: Run in a child: sopsflow.main with a finder in front of sys.meta_path that
#: notes which module asked for each watched import; printed as the last line.
_WATCH_PROBE = r"""
import sys
WATCHED = {"typing", "dataclasses", "argparse", "binascii"}
asked = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in WATCHED and name not in sys.modules:
            frame = sys._getframe(1)
            while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen")):
                frame = frame.f_back
            asked.append((name, frame.f_globals.get("__name__", "?") if frame is not None else "?"))
        return None

sys.meta_path.insert(0, Watch())
from sopsflow.main import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(sorted(asked), sorted(m for m in sys.modules if m.startswith("sopsflow.commands.")), file=sys.stderr)
sys.exit(code)
"""


def _watched_imports(argv: list[str], cwd: Path) -> tuple[dict[str, set[str]], set[str], bytes]:
    """({watched module: the modules that imported it}, sopsflow.commands modules loaded, stdout)."""
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", _WATCH_PROBE, *argv], cwd=cwd, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    asked, commands = ast.literal_eval(done.stderr.decode().strip().splitlines()[-1].replace("] [", "], ["))
    by: dict[str, set[str]] = {}
    for name, importer in asked:
        by.setdefault(name, set()).add(importer)
    return by, set(commands), done.stdout


def test_the_decrypt_and_encrypt_paths_import_neither_typing_nor_dataclasses(tmp_path: Path) -> None:
    """sopsflow's own modules keep their annotations for the type checker:
    neither ``typing`` nor ``dataclasses`` is imported by them at run time
    (a third-party package may still import typing), and only the parser of
    the command being run is built."""
    plain = {f"key{i}": f"value-{i}" for i in range(100)}
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    by, commands, encrypted = _watched_imports(["encrypt", "--age", AGE_RECIPIENT, "plain.json"], tmp_path)
    assert commands == {"sopsflow.commands.common", "sopsflow.commands.encrypt"}
    (tmp_path / "secret.json").write_bytes(encrypted)
    for name in ("typing", "dataclasses", "argparse"):
        assert not {m for m in by.get(name, ()) if m.startswith("sopsflow")}, (name, by)

    by, commands, out = _watched_imports(["decrypt", "secret.json"], tmp_path)
    assert json.loads(out) == plain
    assert commands == {"sopsflow.commands.common", "sopsflow.commands.decrypt"}
    for name in ("typing", "dataclasses"):
        assert not {m for m in by.get(name, ()) if m.startswith("sopsflow")}, (name, by)
    # plain decrypt and encrypt command lines are read without argparse (main._fast_args)
    assert "argparse" not in by, by
    # the watcher works: binascii is imported, and by sopsflow
    assert {m for m in by["binascii"] if m.startswith("sopsflow")}, by


def test_records_act_as_dataclasses() -> None:
    import dataclasses

    from sopsflow.records import NamedTuple, dataclass, field

    @dataclass
    class Point:
        x: int
        y: int = 0
        tags: list[str] = field(default_factory=list)
        secret: str = field(default="", repr=False)

    a, b = Point(1), Point(1, y=0)
    assert a == b and a is not b and a.tags is not b.tags
    assert Point(1, 2, ["t"], "s") != a
    assert repr(Point(1, 2)) == "test_records_act_as_dataclasses.<locals>.Point(x=1, y=2, tags=[])"
    assert dataclasses.is_dataclass(a) and [f.name for f in dataclasses.fields(a)] == ["x", "y", "tags", "secret"]
    c = dataclasses.replace(a, y=5)
    assert (c.x, c.y, type(c)) == (1, 5, Point)
    assert dataclasses.asdict(c) == {"x": 1, "y": 5, "tags": [], "secret": ""}
    for bad in ((), (1, 2, [], "", "extra")):
        try:
            Point(*bad)
        except TypeError:
            pass
        else:
            raise AssertionError(f"Point{bad} was accepted")

    @dataclass(frozen=True)
    class Frozen:
        name: str
        keys: tuple[str, ...] = ()

    one = Frozen("a", ("k",))
    assert one == Frozen("a", ("k",)) and hash(one) == hash(Frozen("a", ("k",))) and len({one, Frozen("b")}) == 2
    try:
        one.name = "b"  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("a frozen record was assigned to")
    assert dataclasses.replace(one, name="b") == Frozen("b", ("k",))

    class Pair(NamedTuple):
        left: int
        right: str = "r"

        def both(self) -> str:
            return f"{self.left}{self.right}"

    pair = Pair(1)
    assert pair == (1, "r") and pair.both() == "1r" and pair._replace(left=2) == Pair(2, "r")


def test_civil_time_check_agrees_with_datetime() -> None:
    import datetime
    import itertools

    from sopsflow.keys.base import is_civil_time

    def accepted(*fields: int) -> bool:
        try:
            datetime.datetime(*fields)
        except ValueError:
            return False
        return True

    for year, month, day in itertools.product((0, 1, 1900, 2000, 2023, 2024, 2100, 9999), range(0, 14), range(0, 33)):
        assert is_civil_time(year, month, day, 12, 0, 0) == accepted(year, month, day, 12, 0, 0), (year, month, day)
    for hour, minute, second in itertools.product((-1, 0, 23, 24), (-1, 0, 59, 60), (-1, 0, 59, 60)):
        assert is_civil_time(2024, 2, 29, hour, minute, second) == accepted(2024, 2, 29, hour, minute, second)


def test_pyyaml_imported_with_deferred_patterns_still_resolves() -> None:
    """PyYAML loaded through lazyre.import_yaml (its import-time patterns
    deferred) reads as the normal import does, and re.compile is restored."""
    probe = (
        "import re, sys; compile_before = re.compile\n"
        "from sopsflow.lazyre import import_yaml; import_yaml(); import yaml\n"
        "assert re.compile is compile_before\n"
        "text = 'a: yes\\nb: 1_000\\nc: 2001-12-14t21:59:43.10-05:00\\nd: .NaN\\ne: ~\\nf: 0b101\\ng: \\x07x'\n"
        "try:\n    yaml.safe_load(text)\nexcept yaml.YAMLError as exc:\n    print('rejected', type(exc).__name__)\n"
        "doc = yaml.safe_load(text.rsplit('\\n', 1)[0])\n"
        "print(doc['a'], doc['b'], doc['c'].isoformat(), doc['d'] != doc['d'], doc['e'], doc['f'])\n"
    )
    env = base_env(PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["rejected ReaderError", "True 1000 2001-12-14T21:59:43.100000-05:00 True None 5"]


_STAMP_CHARS = st.sampled_from(list("0123456789-:TtZz+.\n ") + ["\u0663"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.lists(_STAMP_CHARS, min_size=18, max_size=22).map("".join),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.tuples(st.datetimes(), st.sampled_from(["", "z", "\n", ".5Z", "+01:00", "x"])).map(
        lambda p: p[0].strftime("%Y-%m-%dT%H:%M:%S") + p[1]),
))
def test_lastmodified_split_without_the_pattern_agrees_with_it(stamp: str) -> None:
    """The form sops writes is split by position (no pattern compiled at start);
    every stamp must come out as the pattern reads it."""
    from sopsflow import metadata

    m = metadata._RFC3339.match(stamp)
    assert metadata._rfc3339_fields(stamp) == (None if m is None else m.groups())


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.lists(st.sampled_from(list("0123456789.-+av") + ["\u0663", "00", "10"]), max_size=9).map("".join),
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6)).map(
        lambda t: ".".join(map(str, t))),
))
def test_release_versions_read_without_the_pattern_agree_with_it(text: str) -> None:
    """Plain releases skip the semver pattern (its compile costs every decrypt
    ~0.5 ms); every text must read, or fail, as the pattern has it."""
    from sopsflow import operations

    body = text[1:] if text.startswith("v") else text
    m = operations._SEMVER.match(body) if body.count(".") >= 2 else None
    try:
        key = operations.semver_key(text)
    except ValueError:
        assert m is None
        return
    assert m is not None
    major, minor, patch, pre = m.groups()
    assert key[:3] == (int(major), int(minor), int(patch))
    assert (key[3] == (1,)) == (pre is None)


def test_a_json_syntax_error_is_reported_before_json_is_loaded() -> None:
    """The JSON store scans without importing json; the C scanner can only raise
    its error once json.decoder is loaded. A fresh interpreter must still report
    each syntax error as JSONDecoder would."""
    probe = (
        "import sys\n"
        "from sopsflow.errors import SopsError\n"
        "from sopsflow.stores.json_store import JsonStore\n"
        "assert 'json' not in sys.modules and 'json.decoder' not in sys.modules\n"
        "for doc in (b'{\"a\": 1,\\n', b'{\"a\": x}', b'{\"a\": \"\\x01\"}', b'{\"a\" 1}'):\n"
        "    try:\n        JsonStore().load_plain(doc)\n    except SopsError as exc:\n        print(exc.code, exc.message)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=base_env(PYTHONPATH=str(REPO)), capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "2 Could not unmarshal input data: Expecting property name enclosed in double quotes at offset 9",
        "2 Could not unmarshal input data: Expecting value at offset 6",
        "2 Could not unmarshal input data: Invalid control character at at offset 7",
        "2 Could not unmarshal input data: Expecting ':' delimiter at offset 5",
    ]


def _argparse_result(argv: list[str]) -> dict[str, object] | None:
    """vars() of what the full parser makes of ``argv``; None when it refuses it."""
    import contextlib
    import io

    from sopsflow.main import build_parser

    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return vars(build_parser(argv[0]).parse_args(argv))
    except SystemExit:
        return None


@pytest.mark.parametrize("command", ["decrypt", "encrypt"])
def test_fast_command_line_defaults_are_the_parsers(command: str) -> None:
    """_fast_args keeps its own copy of the defaults: a flag added to the
    command (or a global one) must show up here."""
    from sopsflow.main import _fast_args

    for argv in ([command], [command, "f.yaml"]):
        fast = _fast_args(argv)
        assert fast is not None and vars(fast) == _argparse_result(argv)


_ARG_TOKENS = st.sampled_from([
    "decrypt", "encrypt", "f.yaml", "g.json", "-", "--", "", "-i", "--in-place", "--output", "--extract",
    "--ignore-mac", "--input-type", "--output-type", "--filename-override", "-a", "--age", "-p", "--pgp",
    "--kms", "--verbose", "--config", "--output=o", "-iv", "-1", "--in", "-h", "x y", "age1abc", "json",
])


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(["decrypt", "encrypt"]), st.lists(_ARG_TOKENS, max_size=6))
def test_fast_command_line_reads_as_argparse_or_not_at_all(command: str, rest: list[str]) -> None:
    """Whatever _fast_args reads, the full parser reads the same way; what it
    leaves alone goes to the parser."""
    from sopsflow.main import _fast_args

    argv = [command, *rest]
    fast = _fast_args(argv)
    if fast is not None:
        assert vars(fast) == _argparse_result(argv), argv


def test_the_hook_path_imports_neither_typing_nor_dataclasses(tmp_path: Path) -> None:
    """``sopsflow check`` runs on every commit: sopsflow's own modules on its
    path (the snapshot, the policy, the judgement, the Flux lint) import
    neither ``typing`` nor ``dataclasses`` at run time, and only the ``check``
    parser is built. A real repository with a staged SOPS file and a staged
    plain file, so that both judgements run."""
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), PYTHONPATH=str(REPO))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, env=env, check=True)
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: secret\\.yaml$\n    age: {AGE_RECIPIENT}\n")
    (tmp_path / "plain.yaml").write_text("replicas: 3\n")
    (tmp_path / "secret.yaml").write_text("password: hunter2\n")
    subprocess.run([sys.executable, "-m", "sopsflow", "encrypt", "-i", "secret.yaml"], cwd=tmp_path, env=env,
                   check=True, capture_output=True)
    subprocess.run(["git", "add", "."], cwd=tmp_path, env=env, check=True)

    by, commands, _out = _watched_imports(["check"], tmp_path)

    assert commands == {"sopsflow.commands.common", "sopsflow.commands.check"}
    for name in ("typing", "dataclasses"):
        assert not {m for m in by.get(name, ()) if m.startswith("sopsflow")}, (name, by)
    assert {m for m in by["argparse"] if m.startswith("sopsflow")}, by
