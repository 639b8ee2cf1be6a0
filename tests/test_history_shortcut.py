"""The history scan's shortcut for intact SOPS files
(:func:`sopsflow.gitops.check.holds_no_plaintext`): it vouches only for blobs
in which the whole audit finds nothing history reports (plaintext-secret,
partly-plaintext, leaked-secret) and declines everything unusual, so the scan
reports exactly what it reports when every blob gets the whole audit.

Every SOPS file here is written by the real sops; the odd ones are edited by
hand from there, as people do."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sopsflow.config.decoder import parse_config
from sopsflow.gitops import check
from sopsflow.gitops.check import PLAINTEXT_KINDS, audit_file, governing_rule, holds_no_plaintext
from sopsflow.gitops.history import HistoryOptions, scan
from sopsflow.gitops.settings import AuditSettings
from tests import gitfixtures
from tests.test_history_pipeline import straightforward
from tests.vectors import AGE_KEY_FILE
from tests.verifyfixtures import commit_all, make_repo, sops_encrypt, sops_yaml, write

RULES = sops_yaml("^secrets/")
IDENTITY = next(line for line in AGE_KEY_FILE.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))
TOKEN = "ghp_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8"


def _replace_line(data: bytes, prefix: bytes, line: bytes | None) -> bytes:
    """``data`` with its first line starting with ``prefix`` replaced (None: removed)."""
    lines = data.split(b"\n")
    at = next(i for i, text in enumerate(lines) if text.startswith(prefix))
    if line is None:
        del lines[at]
    else:
        lines[at] = line
    return b"\n".join(lines)


def _json_with(data: bytes, **extra: object) -> bytes:
    doc = json.loads(data)
    doc.update(extra)
    return json.dumps(doc, indent=4).encode() + b"\n"


def build_cases() -> dict[str, tuple[str, bytes, bool]]:
    """name -> (path, content, whether the shortcut may vouch for it)."""
    yaml = sops_encrypt("app.yaml", "password: pw-Tz4Kq\nport_unencrypted: 8080\nlist:\n  - a\n  - b\n")
    env = sops_encrypt("app.env", "PASSWORD=pw-Tz4Kq\nPORT_unencrypted=8080\n")
    js = sops_encrypt("app.json", '{"password": "pw-Tz4Kq", "port_unencrypted": 8080}\n')
    ini = sops_encrypt("app.ini", "[db]\npassword = pw-Tz4Kq\n")
    binary = sops_encrypt("app.bin", b"\x00\x01 raw bytes \xff")
    commented = sops_encrypt("app.yaml", "# rotated monthly\npassword: pw-Tz4Kq\n")
    env_commented = sops_encrypt("app.env", "# rotated monthly\nPASSWORD=pw-Tz4Kq\n")
    multi = sops_encrypt("app.yaml", "password: pw-Tz4Kq\n---\nother: pw-Lm8Vc\n")
    by_regex = sops_encrypt("app.yaml", "password: pw-Tz4Kq\nuser: admin\n", args=("--encrypted-regex", "^password$"))
    by_comment = gitfixtures.sops_encrypt("app.yaml", "# sops:enc\npassword: pw-Tz4Kq\nuser: admin\n",
                                          global_flags=("--encrypted-comment-regex", "sops:enc"))
    return {
        # intact SOPS files: vouched for
        "yaml": ("secrets/app.yaml", yaml, True),
        "dotenv": ("secrets/app.env", env, True),
        "json": ("secrets/app.json", js, True),
        "ini": ("secrets/app.ini", ini, True),
        "binary": ("secrets/app.bin", binary, True),
        "encrypted comment": ("secrets/commented.yaml", commented, True),
        "encrypted dotenv comment": ("secrets/commented.env", env_commented, True),
        "several documents": ("secrets/multi.yaml", multi, True),
        "outside the rules": ("other/app.yaml", yaml, True),
        # broken in ways the audit reports as broken-sops, never as an exposure
        "no mac": ("secrets/app.yaml", _replace_line(yaml, b"    mac: ", None), True),
        "bad lastmodified": ("secrets/app.yaml", _replace_line(yaml, b"    lastmodified: ", b"    lastmodified: soon"), True),
        # everything else: the whole audit
        "hand-added yaml value": ("secrets/app.yaml", yaml + b"extra_password: pw-Hd7Ns\n", False),
        "hand-added dotenv value": ("secrets/app.env", env + b"EXTRA=pw-Hd7Ns\n", False),
        "hand-added json value": ("secrets/app.json", _json_with(js, extra="pw-Hd7Ns"), False),
        "hand-added ini value": ("secrets/app.ini", ini.replace(b"[db]\n", b"[db]\nextra = pw-Hd7Ns\n", 1), False),
        "hand-added binary value": ("secrets/app.bin", _json_with(binary, extra="pw-Hd7Ns"), False),
        "hand-added comment": ("secrets/app.yaml", b"# old password was pw-Hd7Ns\n" + yaml, False),
        "hand-added dotenv comment": ("secrets/app.env", env + b"# old password was pw-Hd7Ns\n", False),
        "dotenv line without =": ("secrets/app.env", env + b"garbage\n", False),
        "hand-added metadata entry": ("secrets/app.yaml", yaml.replace(b"sops:\n", b"sops:\n    note: pw-Hd7Ns\n", 1), False),
        "decrypted and committed": ("secrets/app.yaml", b"password: pw-Tz4Kq\nport_unencrypted: 8080\n", False),
        "decrypted dotenv": ("secrets/app.env", b"PASSWORD=pw-Tz4Kq\n", False),
        "not a SOPS file": ("secrets/notes.txt", b"the password is pw-Tz4Kq\n", False),
        "metadata not a mapping": ("secrets/app.yaml", yaml.split(b"sops:\n")[0] + b"sops: gone\n", False),
        "two selection options": ("secrets/app.yaml", yaml.replace(b"    unencrypted_suffix: _unencrypted\n",
                                                                    b"    unencrypted_suffix: _unencrypted\n"
                                                                    b"    encrypted_regex: ^password$\n", 1), False),
        "age identity in a plain value": ("secrets/app.yaml", _replace_line(yaml, b"port_unencrypted: ",
                                                                            f"port_unencrypted: {IDENTITY}".encode()), False),
        "token in a plain value": ("secrets/app.yaml", _replace_line(yaml, b"port_unencrypted: ",
                                                                     f"port_unencrypted: {TOKEN}".encode()), False),
        "options the rule outdoes": ("secrets/app.yaml", by_regex, False),
        "comment-driven options": ("secrets/app.yaml", by_comment, False),
        "config file": ("secrets/.sops.yaml", yaml, False),
    }


@pytest.fixture(scope="module")
def cases() -> dict[str, tuple[str, bytes, bool]]:
    return build_cases()


CASE_NAMES = [
    "yaml", "dotenv", "json", "ini", "binary", "encrypted comment", "encrypted dotenv comment", "several documents",
    "outside the rules", "hand-added dotenv comment", "dotenv line without =",
    "no mac", "bad lastmodified", "hand-added yaml value", "hand-added dotenv value", "hand-added json value",
    "hand-added ini value", "hand-added binary value", "hand-added comment", "hand-added metadata entry",
    "decrypted and committed", "decrypted dotenv", "not a SOPS file", "metadata not a mapping",
    "two selection options", "age identity in a plain value", "token in a plain value",
    "options the rule outdoes", "comment-driven options", "config file",
]


def test_every_case_is_named(cases: dict[str, tuple[str, bytes, bool]]) -> None:
    assert sorted(cases) == sorted(CASE_NAMES)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_the_shortcut_vouches_only_where_the_audit_finds_no_exposure(
        cases: dict[str, tuple[str, bytes, bool]], tmp_path: Path, name: str) -> None:
    path, data, vouched = cases[name]
    config = parse_config(RULES.encode(), str(tmp_path / ".sops.yaml"), strict=False)
    audit = audit_file(path, data, config=config, settings=AuditSettings(), repo_root=tmp_path)
    exposures = [f.kind for f in audit.findings if f.kind in PLAINTEXT_KINDS]
    assert holds_no_plaintext(path, data, governing_rule(path, config, tmp_path)) is vouched
    if vouched:
        assert exposures == []
    elif name not in ("config file", "metadata not a mapping", "two selection options", "comment-driven options",
                      "dotenv line without ="):
        assert exposures, audit.findings  # each hand edit above is an exposure the audit names


def test_the_scan_reports_what_the_whole_audit_reports(cases: dict[str, tuple[str, bytes, bool]],
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case, committed in turn over the same paths (and re-encrypted in
    between): the scan equals the straightforward one, and the scan with the
    shortcut switched off."""
    repo = make_repo(tmp_path / "repo", {".sops.yaml": RULES, "README.md": "hello\n"})
    intact = {path: data for path, data, vouched in cases.values() if vouched}
    for name, (path, data, _) in cases.items():
        if check.is_config_file(path):
            continue  # a second .sops.yaml: the straightforward scan reads only the root's
        write(repo, {path: data})
        commit_all(repo, name)
        if path in intact and intact[path] != data:
            write(repo, {path: intact[path]})
            commit_all(repo, f"{name}: re-encrypted")
    expected = straightforward(repo)
    assert {kind for row in expected for kind, *_ in row[2]} == set(PLAINTEXT_KINDS)  # type: ignore[attr-defined]

    def rows(jobs: int) -> list[tuple[object, ...]]:
        result = scan(repo, HistoryOptions(jobs=jobs))
        return sorted((e.path, e.blob, sorted({(w.kind, w.severity, w.message, w.line) for w in e.findings}),
                       sorted(e.introduced_in), sorted(e.removed_in), e.refs, e.in_head) for e in result.exposures)

    assert rows(1) == rows(2) == expected
    monkeypatch.setattr(check, "holds_no_plaintext", lambda *args, **kwargs: False)
    assert rows(1) == expected


# --- the reader of the YAML subset sops writes ----------------------------------------------

_VALUES = ["ENC[AES256_GCM,data:AA==,iv:BB,tag:CC,type:str]", "x", "a:b", "[]", "{}", "~", "null", "NULL", '"q"',
           "'s'", '""', "1", "true", "x,y", "a]", "x-", "=", "/p", "a: b", "|+", ">", "&a x", "*a", "!!str x", "x:",
           "- x", "[a]", "-x", '"ENC[AES256_GCM,data:AA==,iv:BB,tag:CC,type:str]"']
_KEYS = ["a", "b", "c_unencrypted", "mac", "x.y", "age", "enc", "unencrypted_suffix", "1", "k/v", "a", "a b", "-"]
_BLOCK_LINES = ["-----BEGIN X-----", "abc", "k: v", "- z", "YW=="]


def _document(rng: random.Random, column: int, depth: int, out: list[str], first_prefix: str = "") -> None:
    """Block mappings and sequences at random (and sometimes wrong) columns."""
    if rng.random() < 0.7 or depth > 3:
        for i in range(rng.randint(1, 4)):
            prefix = first_prefix if i == 0 and first_prefix else " " * column
            key = rng.choice(_KEYS)
            draw = rng.random()
            if draw < 0.5 or depth > 3:
                out.append(f"{prefix}{key}: {rng.choice(_VALUES)}")
            elif draw < 0.65:
                out.append(f"{prefix}{key}: {rng.choice(['|', '|-'])}")
                inner = column + rng.choice([1, 2, 4])
                for _ in range(rng.randint(0, 3)):
                    if rng.random() < 0.2:
                        out.append("")
                    out.append(" " * (inner + rng.choice([0, 0, 0, 1, 2, -1])) + rng.choice(_BLOCK_LINES))
            else:
                out.append(f"{prefix}{key}:")
                if draw > 0.72:
                    _document(rng, column + rng.choice([0, 1, 2, 4]), depth + 1, out)
    else:
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.5:
                out.append(" " * column + "- " + rng.choice(_VALUES))
            else:
                _document(rng, column + 2, depth + 1, out, first_prefix=" " * column + "- ")


def _mutated(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(text))
        draw = rng.randrange(3)
        if draw == 0:
            text = text[:at] + rng.choice(list(" :-#'\"|>[]{}&*!?%@\n~,\t") + ["\n  ", "\n- ", "---\n", "\xe9"]) + text[at:]
        elif draw == 1:
            text = text[:at] + text[at + 1:]
        else:
            lines = text.split("\n")
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines)), lines[i] if rng.random() < 0.5 else " " + lines[i])
            text = "\n".join(lines)
    return text


def _agrees(data: bytes) -> bool:
    """What the subset reader reads (if anything), libyaml composes alike:
    the same metadata, its plain values among the paths given, no problem."""
    quick = check._sops_yaml_subset(data)
    if quick is None:
        return False
    paths, meta = quick
    doc = check._load_yaml_fast(data)  # raises if the reader accepted what libyaml refuses
    plain = {leaf.path for leaf in doc.leaves if leaf.kind == "plain"}
    assert not doc.problems, data
    assert doc.has_meta is (meta is not None) and (meta is None or doc.raw_meta == meta), data
    assert plain <= set(paths) <= {leaf.path for leaf in doc.leaves}, data
    return True


def test_the_subset_reader_reads_what_libyaml_reads_or_declines(cases: dict[str, tuple[str, bytes, bool]]) -> None:
    rng = random.Random(17)
    read = 0
    for _ in range(4000):
        out: list[str] = []
        _document(rng, 0, 0, out)
        if rng.random() < 0.7:
            meta: list[str] = []
            _document(rng, 4, 1, meta)
            out += ["sops:", *meta]
        read += _agrees(("\n".join(out) + rng.choice(["", "\n", "\n\n"])).encode())
    samples = [data.decode() for path, data, _ in cases.values() if path.endswith(".yaml") and data.isascii()]
    for _ in range(2000):
        text = _mutated(rng, rng.choice(samples))
        read += _agrees(text.encode("utf-8", "surrogateescape"))
    assert read > 400  # the generators reach what the reader accepts, not only what it declines
    yaml = cases["yaml"][1]
    assert check._sops_yaml_subset(yaml) is not None  # what sops writes is read without libyaml
