"""Hostile input: every case runs the real sops and sopsflow on the same bytes.

sopsflow must exit with sops' code (asserted against the binary on every run
and against the code recorded here) and, where sops fails, print a short
error with no traceback and no "internal error", write nothing to stdout, and
leave a file given with ``-i`` byte for byte as it was. Where sops succeeds,
sopsflow prints the same plaintext. A recorded ``flow_code`` is a deliberate
difference, and the case says why.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..vectors import AGE_RECIPIENT
from . import Run, age_env, flow_argv, layout, run_all, run_each, sops_argv

PLAIN = {
    ".yaml": b"a: hello\nb: 12\nc: true\nd: 1.5\nl:\n  - x\n  - 2\n",
    ".json": b'{"a": "hello", "b": 12, "c": true, "d": 1.5, "l": ["x", 2]}\n',
    ".env": b"a=hello\nb=12\n",
    ".ini": b"[s]\na = hello\nb = 12\n",
    ".bin": b"some binary \x00\xff payload\n",
}
HUGE = b"9" * 5000  # past Python's 4,300-digit int() limit
STORE = {".yaml": "yaml", ".json": "json", ".env": "dotenv", ".ini": "ini", ".bin": "binary"}

Content = bytes | Callable[[bytes], bytes]


@dataclass
class Case:
    id: str
    args: list[str]  # the command and its options; the file comes last
    suffix: str
    content: Content  # bytes, or made from the sops-encrypted file of the suffix
    sops_code: int
    flow_code: int | None = None  # a deliberate difference: sopsflow's code
    config: str | None = None  # .sops.yaml next to the file
    why: str = ""
    inplace: bool = True  # also run sopsflow with -i when sops fails
    compare: str = "stdout"  # on success: "stdout" (same bytes) or "layout" (encrypt)
    extra: list[str] = field(default_factory=list)


# --- transforms of a sops-encrypted file --------------------------------------------------------

_ENC = re.compile(rb"ENC\[AES256_GCM,data:[^,]*,iv:[^,]*,tag:[^,]*,type:([a-z]+)\]")


def _values(data: bytes) -> list[re.Match[bytes]]:
    """The document's ENC[] values (the MAC excluded)."""
    return [m for m in _ENC.finditer(data) if b"mac" not in data[max(0, m.start() - 30) : m.start()]]


def retag(tag: str, index: int = 0) -> Callable[[bytes], bytes]:
    """The type tag of one value changed: the tag is not authenticated."""

    def change(data: bytes) -> bytes:
        m = _values(data)[index]
        return data[: m.start(1)] + tag.encode() + data[m.end(1) :]

    return change


def bad_age_byte(data: bytes) -> bytes:
    """One byte of the age armor (the flattened ``enc`` field) made invalid UTF-8."""
    start = data.index(b"BEGIN AGE ENCRYPTED FILE-----\\n") + 40
    return data[:start] + b"\xff" + data[start + 1 :]


def metadata_line(line: bytes) -> Callable[[bytes], bytes]:
    """A line added to the flattened (dotenv) metadata."""
    return lambda data: data.replace(b"sops_lastmodified=", line + b"\nsops_lastmodified=", 1)


def yaml_threshold(data: bytes) -> bytes:
    return data.replace(b"    lastmodified:", b"    shamir_threshold: " + HUGE + b"\n    lastmodified:", 1)


def ini_threshold(data: bytes) -> bytes:
    return data.replace(b"[sops]\n", b"[sops]\nshamir_threshold = " + HUGE + b"\n", 1)


def deep_config(levels: int) -> str:
    return f"creation_rules:\n  - age: {AGE_RECIPIENT}\nx: " + "[" * levels + "]" * levels + "\n"


CASES = [
    # invalid UTF-8 in an age enc field: a key failure, as sops (the armor does not parse)
    Case("age-enc-invalid-utf8-dotenv", ["decrypt"], ".env", bad_age_byte, 128),
    Case("age-enc-invalid-utf8-ini", ["decrypt"], ".ini", bad_age_byte, 128),
    Case("age-enc-invalid-utf8-rotate", ["rotate"], ".env", bad_age_byte, 128),
    # an invalid-UTF-8 key under a regex option: Go's regexp sees U+FFFD for the byte
    *(
        Case(f"invalid-utf8-key-{opt}-{pattern}{suffix}", ["encrypt", "--age", AGE_RECIPIENT, f"--{opt}", pattern],
             suffix, text, 0, compare="layout")
        for opt in ("encrypted-regex", "unencrypted-regex")
        for pattern in ("pa", "pa.ss", "pa[^a]ss", "pa.{2}ss")
        for suffix, text in ((".env", b"pa\xffss=hello\nb=world\n"), (".ini", b"[s]\npa\xffss = hello\nb = x\n"))
    ),
    Case("invalid-utf8-key-two-bytes", ["encrypt", "--age", AGE_RECIPIENT, "--encrypted-regex", "pa..ss"], ".env",
         b"pa\xe2\x82ss=hello\nb=world\n", 0, compare="layout"),
    Case("invalid-utf8-key-decrypt", ["decrypt"], ".env", b"", 0,
         extra=["encrypt-first", "--encrypted-regex", "pa"]),
    # an invalid option regex: sops compiles nothing and leaves the choice to the other options
    *(
        Case(f"invalid-option-regex-{name}", ["encrypt", "--age", AGE_RECIPIENT, "--encrypted-regex", pattern], ".env",
             PLAIN[".env"], 0, flow_code=1, why="sopsflow refuses a pattern Go cannot compile instead of ignoring it")
        for name, pattern in (("syntax", "(("), ("not-go-syntax", "\\C"))
    ),
    # YAML integers past 4,300 digits: go-yaml keeps them as strings
    *(
        Case(f"yaml-huge-int-{name}", ["encrypt", "--age", AGE_RECIPIENT], ".yaml", text, 0, compare="layout")
        for name, text in (
            ("positive", b"a: " + HUGE + b"\n"),
            ("negative", b"a: -" + HUGE + b"\n"),
            ("plus", b"a: +" + HUGE + b"\n"),
            ("underscores", b"a: 1" + b"_000" * 1500 + b"\n"),
            ("in-list", b"a:\n  - " + HUGE + b"\n"),
        )
    ),
    Case("yaml-huge-int-tagged", ["encrypt", "--age", AGE_RECIPIENT], ".yaml", b"a: !!int " + HUGE + b"\n", 2),
    # the same number in a file's metadata
    Case("metadata-huge-threshold-yaml", ["decrypt"], ".yaml", yaml_threshold, 1),
    Case("metadata-huge-threshold-dotenv", ["decrypt"], ".env", metadata_line(b"sops_shamir_threshold=" + HUGE), 1),
    Case("metadata-huge-threshold-ini", ["decrypt"], ".ini", ini_threshold, 1),
    Case(
        "metadata-huge-list-position", ["decrypt"], ".env",
        lambda d: d.replace(b"sops_age__list_0__map_recipient", b"sops_age__list_1000000000000__map_recipient"),
        2, flow_code=1, why="sops runs out of memory and panics (exit 2); sopsflow refuses the key, as other "
        "flattened keys sops panics on",
    ),
    Case(
        "metadata-huge-digit-list-position", ["decrypt"], ".env",
        lambda d: d.replace(b"sops_age__list_0__map_recipient", b"sops_age__list_" + HUGE + b"__map_recipient"),
        2, flow_code=1, why="sops panics (exit 2); sopsflow refuses the key",
    ),
    # .sops.yaml: a 5,000-digit shamir_threshold, 50,000 levels of nesting
    *(
        Case(f"config-{name}-{command}", [command, *keys], ".env", source, 1, flow_code=5, config=config,
             why="an invalid .sops.yaml is exit 5 naming the file; sops exits 1")
        for name, config in (
            ("huge-threshold", f"creation_rules:\n  - age: {AGE_RECIPIENT}\n    shamir_threshold: {HUGE.decode()}\n"),
            ("deep-flow-sequence", deep_config(50000)),
            ("deep-flow-mapping", f"creation_rules:\n  - age: {AGE_RECIPIENT}\nx: " + "{a: " * 50000 + "1" + "}" * 50000 + "\n"),
        )
        for command, keys, source in (("encrypt", [], PLAIN[".env"]), ("decrypt", [], lambda d: d))
    ),
    # a type tag changed on a value: Go's parsers refuse the plaintext (exit 25)
    *(Case(f"binary-retag-{tag}", ["decrypt"], ".bin", retag(tag), 25) for tag in ("int", "float", "bool", "time")),
    *(Case(f"binary-retag-{tag}-ignore-mac", ["decrypt", "--ignore-mac"], ".bin", retag(tag), 25)
      for tag in ("float", "time")),
    *(Case(f"retag-time{s}", ["decrypt"], s, retag("time"), 25) for s in (".yaml", ".json", ".env", ".ini")),
    Case("retag-int-to-time-yaml", ["decrypt"], ".yaml", retag("time", 1), 25),
    # type:comment on a value: sops prints its Comment struct (with --ignore-mac) or fails the MAC
    *(Case(f"retag-comment{s}", ["decrypt"], s, retag("comment"), 51) for s in (".yaml", ".json", ".env", ".ini")),
    *(
        Case(f"retag-comment-ignore-mac-{i}{s}", ["decrypt", "--ignore-mac"], s, retag("comment", i), 0)
        for s in (".yaml", ".json", ".env", ".ini")
        for i in (0, 1)
    ),
    Case("retag-comment-ignore-mac.bin", ["decrypt", "--ignore-mac"], ".bin", retag("comment"), 4),
    *(
        Case(f"retag-comment-ignore-mac-{out}", ["decrypt", "--ignore-mac", "--output-type", out], ".yaml",
             retag("comment"), 0)
        for out in ("json", "yaml")
    ),
    Case("retag-comment-ignore-mac-extract", ["decrypt", "--ignore-mac", "--extract", '["a"]'], ".yaml",
         retag("comment"), 0),
    Case("retag-comment-ignore-mac-extract-json", ["decrypt", "--ignore-mac", "--extract", '["a"]'], ".json",
         retag("comment"), 0),
]


@pytest.fixture(scope="module")
def sops_encrypted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A file per store, encrypted by the real sops."""
    work = tmp_path_factory.mktemp("hostile-sources")
    for suffix, data in PLAIN.items():
        (work / ("plain" + suffix)).write_bytes(data)
    runs = run_all([sops_argv(["encrypt", "--age", AGE_RECIPIENT, "plain" + s]) for s in PLAIN], env=age_env(), cwd=work)
    for run in runs:
        assert run.rc == 0, run.why()
    return {s: r.out for s, r in zip(PLAIN, runs, strict=True)}


def assert_clean_failure(run: Run) -> None:
    err = run.err.decode(errors="replace")
    assert "Traceback" not in err and "internal error" not in err, err
    if run.rc == 128:
        # a key failure adds sops' per-group report after its one-line message
        assert err.startswith("Failed to get the data key required to decrypt the SOPS file.\n"), err
    else:
        assert 1 <= len(err.strip().splitlines()) <= 3, err
    assert run.out == b"", run.out[:200]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, sops_encrypted: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory(prefix="sopsflow-hostile-") as tmp:
        work = Path(tmp)
        content = case.content(sops_encrypted[case.suffix]) if callable(case.content) else case.content
        args = case.args
        if case.extra[:1] == ["encrypt-first"]:
            # a sops-encrypted file made from an invalid-UTF-8 key, then decrypted
            source = work / ("src" + case.suffix)
            source.write_bytes(b"pa\xffss=hello\nb=world\n")
            made = run_all([sops_argv(["encrypt", "--age", AGE_RECIPIENT, *case.extra[1:], str(source)])], env=age_env())[0]
            assert made.rc == 0, made.why()
            content = made.out
        expected = case.sops_code if case.flow_code is None else case.flow_code
        roles = ["sops", "flow"] + (["inplace"] if case.inplace and expected != 0 else [])
        files = {}
        for role in roles:
            (work / role).mkdir()
            if case.config is not None:
                (work / role / ".sops.yaml").write_text(case.config)
            files[role] = work / role / ("f" + case.suffix)
            files[role].write_bytes(content)
        commands = [
            (sops_argv([*args, str(files["sops"])]), work / "sops"),
            (flow_argv([*args, str(files["flow"])]), work / "flow"),
        ]
        if "inplace" in files:
            commands.append((flow_argv([*args, "-i", str(files["inplace"])]), work / "inplace"))
        runs = run_each(commands, env=age_env())
        sops, flow = runs[0], runs[1]

        assert sops.rc == case.sops_code, sops.why()
        assert flow.rc == expected, flow.why()
        if expected != 0:
            for run in runs[1:]:
                assert_clean_failure(run)
            if "inplace" in files:
                assert files["inplace"].read_bytes() == content, "-i changed the file"
                left = sorted(p.name for p in (work / "inplace").iterdir())
                assert left == sorted([files["inplace"].name, *([".sops.yaml"] if case.config else [])]), left
        elif case.compare == "layout":
            assert layout(STORE[case.suffix], flow.out) == layout(STORE[case.suffix], sops.out)
            _assert_both_decrypt(work, case.suffix, sops.out, flow.out)
        else:
            assert flow.out == sops.out


def _assert_both_decrypt(work: Path, suffix: str, sops_out: bytes, flow_out: bytes) -> None:
    """Each tool decrypts the other's file to the same plaintext."""
    (work / ("by-sops" + suffix)).write_bytes(sops_out)
    (work / ("by-flow" + suffix)).write_bytes(flow_out)
    runs = run_all(
        [
            sops_argv(["decrypt", str(work / ("by-flow" + suffix))]),
            flow_argv(["decrypt", str(work / ("by-sops" + suffix))]),
            sops_argv(["decrypt", str(work / ("by-sops" + suffix))]),
        ],
        env=age_env(),
    )
    for run in runs:
        assert run.rc == 0, run.why()
    assert runs[0].out == runs[1].out == runs[2].out


# --- a deleted working directory ---------------------------------------------------------------

#: Enter the directory, delete it, then run the command there.
_FROM_DELETED = 'cd "$1" && rmdir "$1" && shift && exec "$@"'


def _from_deleted_directory(argv: list[str], parent: Path) -> Run:
    gone = parent / "gone"
    gone.mkdir(parents=True)
    env = age_env()
    # An empty PYTHONPATH entry means the working directory, which Python's own
    # start-up (of sopsflow and of the sops wrapper script) cannot resolve.
    env["PYTHONPATH"] = os.pathsep.join(p for p in env["PYTHONPATH"].split(os.pathsep) if p)
    done = subprocess.run(["sh", "-c", _FROM_DELETED, "sh", str(gone), *argv], env=env, capture_output=True,
                          timeout=120)
    return Run(tuple(argv), done.returncode, done.stdout, done.stderr)


DELETED_CWD = [
    # (id, arguments with {abs} for an absolute encrypted file, {plain} for an absolute plaintext one, sops' code)
    ("decrypt-absolute", ["decrypt", "{abs}"], 0),
    ("encrypt-absolute", ["encrypt", "--age", AGE_RECIPIENT, "{plain}"], 0),
    ("encrypt-absolute-no-keys", ["encrypt", "{plain}"], 1),
    ("filestatus-absolute", ["filestatus", "{abs}"], 0),
    ("decrypt-relative", ["decrypt", "f.env"], 1),
    ("encrypt-relative", ["encrypt", "--age", AGE_RECIPIENT, "f.env"], 1),
    ("rotate-in-place-relative", ["rotate", "-i", "f.env"], 1),
    ("set-relative", ["set", "f.env", '["a"]', '"1"'], 1),
    ("edit-relative", ["edit", "f.env"], 1),
]


@pytest.mark.parametrize(("args", "code"), [c[1:] for c in DELETED_CWD], ids=[c[0] for c in DELETED_CWD])
def test_deleted_working_directory(args: list[str], code: int, sops_encrypted: dict[str, bytes],
                                   tmp_path: Path) -> None:
    """Absolute paths work as in sops (no config file is found); a relative one
    is sops' "getwd" error, exit 1."""
    encrypted = tmp_path / "enc.env"
    encrypted.write_bytes(sops_encrypted[".env"])
    plain = tmp_path / "plain.env"
    plain.write_bytes(PLAIN[".env"])
    argv = [a.replace("{abs}", str(encrypted)).replace("{plain}", str(plain)) for a in args]
    sops = _from_deleted_directory(sops_argv(argv), tmp_path / "sops")
    flow = _from_deleted_directory(flow_argv(argv), tmp_path / "flow")
    assert sops.rc == code, sops.why()
    assert flow.rc == code, flow.why()
    if code:
        assert_clean_failure(flow)
        if args[-1] == "f.env":
            assert b"getwd" in flow.err
    elif args[0] == "decrypt" or args[0] == "filestatus":
        assert flow.out == sops.out
    else:
        assert layout("dotenv", flow.out) == layout("dotenv", sops.out)
    assert encrypted.read_bytes() == sops_encrypted[".env"] and plain.read_bytes() == PLAIN[".env"]


@pytest.mark.parametrize("command", [["check"], ["verify"], ["updatekeys", "-y"]])
def test_deleted_working_directory_repository_commands(command: list[str], tmp_path: Path) -> None:
    """Commands that look for the repository say why they cannot, in one line."""
    flow = _from_deleted_directory(flow_argv(command), tmp_path)
    assert flow.rc in (1, 2), flow.why()
    assert_clean_failure(flow)


# --- check: an invalid-UTF-8 key under a rule with a regex option ------------------------------


def test_check_invalid_utf8_key_with_regex_rule(tmp_path: Path) -> None:
    """The hook judges such a file instead of crashing: the sops-encrypted one
    passes, the plaintext one is refused."""
    from ..gitfixtures import git, init_repo, run_check, sops_encrypt, stage, write

    rules = f"creation_rules:\n  - path_regex: \\.env$\n    encrypted_regex: pa\n    age: {AGE_RECIPIENT}\n"
    repo = init_repo(tmp_path / "repo", rules=rules)
    text = b"pa\xffss=hello\nb=world\n"
    write(repo, "good.env", sops_encrypt("good.env", text, "--encrypted-regex", "pa"))
    stage(repo, "good.env")
    done = run_check(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    write(repo, "bad.env", text)
    stage(repo, "bad.env")
    done = run_check(repo)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert "bad.env" in done.stdout + done.stderr
    git(repo, "reset", "-q")


def test_path_regex_sees_invalid_utf8_as_go_does(tmp_path: Path) -> None:
    """A file name with an undecodable byte matches ``.`` in path_regex, as in sops."""
    config = f"creation_rules:\n  - path_regex: ^x.\\.yaml$\n    age: {AGE_RECIPIENT}\n"
    (tmp_path / ".sops.yaml").write_text(config)
    name = os.fsdecode(b"x\xff.yaml")
    (tmp_path / name).write_bytes(b"a: 1\n")
    sops, flow = run_all([sops_argv(["encrypt", name]), flow_argv(["encrypt", name])], env=age_env(), cwd=tmp_path)
    # only plain values in the assertions: a report holding the undecodable
    # name cannot travel back from a pytest-xdist worker
    codes = (sops.rc, flow.rc)
    assert codes == (0, 0), flow.err.decode(errors="replace")
    same = layout("yaml", flow.out) == layout("yaml", sops.out)
    assert same


def test_case_list_is_complete() -> None:
    """Every kind of hostile input named in the hardening review has a case."""
    ids = " ".join(c.id for c in CASES) + " " + " ".join(c[0] for c in DELETED_CWD)
    for kind in (
        "age-enc-invalid-utf8-dotenv", "age-enc-invalid-utf8-ini", "invalid-utf8-key-encrypted-regex",
        "yaml-huge-int", "config-huge-threshold", "config-deep-flow-sequence", "binary-retag",
        "retag-comment-ignore-mac", "decrypt-relative", "decrypt-absolute",
    ):  # fmt: skip
        assert kind in ids


# --- sopsflow's own settings files -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [b"x: " + HUGE + b"\n", b"verify:\n  max_age_days: " + HUGE + b"\n", b"x: " + b"[" * 50000 + b"]" * 50000 + b"\n"],
    ids=["huge-int", "huge-int-in-verify", "deep-nesting"],
)
def test_sopsflow_yaml_hostile_numbers_and_nesting(text: bytes) -> None:
    """.sopsflow.yaml is read by PyYAML, whose int() refuses 4,300+ digits and
    whose pure-Python loader recurses: both are a one-line error naming the file."""
    from sopsflow.errors import SopsError
    from sopsflow.gitops.policy import parse_policy
    from sopsflow.gitops.settings import parse_settings

    for parse, code in ((parse_settings, 1), (parse_policy, 2)):
        with pytest.raises(SopsError) as failed:
            parse(text)
        assert failed.value.code == code
        assert failed.value.message.startswith(".sopsflow.yaml: not valid YAML")
