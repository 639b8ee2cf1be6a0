"""The git diff/merge drivers: path_regex -> gitattributes (checked with
`git check-attr`), `install-hooks --drivers`, `textconv`, and `merge-driver`
driven by real `git merge` in temporary repositories; results are read back
with sopsflow and the real sops binary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow.git.drivers import (
    BLOCK_BEGIN,
    BLOCK_END,
    Untranslatable,
    literal_pattern,
    quote_pattern,
    regex_to_patterns,
    replace_block,
)
from tests.conftest import base_env, run_sops
from tests.gitfixtures import commit, git, git_env, init_repo, sops_encrypt, write
from tests.vectors import AGE_KEY_FILE, AGE_RECIPIENT

ENC = re.compile(r"ENC\[AES256_GCM,[^\]]*\]")


def sopsflow(repo: Path, *args: str, env: dict[str, str] | None = None,
             input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "sopsflow", *args], cwd=repo, env=env or git_env(),
                          capture_output=True, input=input, timeout=120)


def ok(done: subprocess.CompletedProcess[bytes]) -> bytes:
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def check_attr(repo: Path, paths: list[str]) -> dict[str, set[str]]:
    """path -> names of the attributes set on it (git's own matching)."""
    done = git(repo, "check-attr", "-z", "--stdin", "--all", input="\0".join(paths).encode() + b"\0")
    fields = done.stdout.split(b"\0")
    found: dict[str, set[str]] = {p: set() for p in paths}
    for i in range(0, len(fields) - 2, 3):
        path, attr, value = (f.decode() for f in fields[i : i + 3])
        if value == "set" or attr in ("diff", "merge"):
            found[path].add(attr if value == "set" else f"{attr}={value}")
    return found


# --- path_regex -> patterns ----------------------------------------------------------------

EXPECTED = {
    r"^secrets/.*\.(yaml|json)$": ["secrets/**/*.yaml", "secrets/**/*.json"],
    r"(^|/)k8s/.*secret.*\.yaml$": ["**/k8s/**/*secret*.yaml", "**/k8s/**/*secret*/**/*.yaml"],
    r"^blobs/": ["blobs/**"],
    r"\.enc\.yaml$": ["**/*.enc.yaml"],
    r"^env/(dev|prod)/.+": ["env/dev/**", "env/prod/**"],
    r"^[^/]+\.env$": ["/?*.env"],
    r"^a/.*/b$": ["a/*/**/b"],
    "": ["**"],
    "^$": [],
}


def test_known_regexes_translate_to_these_patterns() -> None:
    for regex, patterns in EXPECTED.items():
        assert regex_to_patterns(regex) == patterns, regex


@pytest.mark.parametrize("regex", [r"(?i)^secrets/", "a+", r"^(ab)*$", r"x{2}", r"\bfoo", r"[[:alpha:]]",
                                   r"^a\sb", r"[a\]]"])
def test_untranslatable_regexes_are_refused(regex: str) -> None:
    with pytest.raises(Untranslatable):
        regex_to_patterns(regex)


PIECES = ["a", "b", "x", r"\.", "-", "/", "/", ".", ".*", ".+", "[^/]*", "[^/]+", "[ab]", "[^a]", "[a-b.]",
          r"\d", "(a|b/)", "(?:x|)", "(^|/)", "a?", "(ab)?", "[/a]", ".?", "$", "^", "(.*|a)", "(/|$)", "[^/]?",
          "(a/|)", " ", "[ a]", r"\*", ".*?", "(x|.+)"]
_component = st.text(alphabet="abx.-1 *", min_size=1, max_size=3).filter(lambda c: c not in (".", ".."))
_paths = st.lists(_component, min_size=1, max_size=4).map("/".join)
_regexes = st.tuples(st.booleans(), st.lists(st.sampled_from(PIECES), min_size=1, max_size=5), st.booleans()).map(
    lambda t: ("^" if t[0] else "") + "".join(t[1]) + ("$" if t[2] else "")
)


@pytest.fixture(scope="module")
def attr_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("attrs")
    git(repo, "init", "-q")
    return repo


@settings(max_examples=50, deadline=None)
@given(st.lists(_regexes, min_size=4, max_size=4), st.lists(_paths, min_size=24, max_size=24, unique=True))
def test_patterns_match_exactly_what_the_regex_matches(attr_repo: Path, regexes: list[str], paths: list[str]) -> None:
    lines: list[str] = []
    translated: list[tuple[int, str]] = []
    for i, regex in enumerate(regexes):
        try:
            patterns = regex_to_patterns(regex)
        except Untranslatable:
            continue
        translated.append((i, regex))
        lines.extend(f"{quote_pattern(p)} r{i}" for p in patterns)
    (attr_repo / ".gitattributes").write_text("\n".join(lines) + "\n")
    found = check_attr(attr_repo, paths)
    for i, regex in translated:
        compiled = re2.compile(regex)
        for path in paths:
            expected = compiled.search(path) is not None
            assert (f"r{i}" in found[path]) == expected, (regex, regex_to_patterns(regex), path)


def test_every_piece_of_the_grammar_translates() -> None:
    for piece in PIECES:
        for regex in (piece, "^" + piece + "$", "^a/" + piece + r"\.yaml$"):
            regex_to_patterns(regex)  # raises if not


def test_literal_patterns_for_awkward_names(attr_repo: Path) -> None:
    names = ["we ird*[x].yaml", "#hash.yaml", "!bang.yaml", 'q"uote.yaml', "back\\slash.yaml", "d/tab\tx.yaml"]
    decoys = ["we irdX[x].yaml", "we ird*x.yaml", "d/hash.yaml", "sub/#hash.yaml", "bang.yaml"]
    (attr_repo / ".gitattributes").write_text("".join(f"{quote_pattern(literal_pattern(n))} lit\n" for n in names))
    found = check_attr(attr_repo, names + decoys)
    assert all("lit" in found[n] for n in names), found
    assert not any("lit" in found[d] for d in decoys), found


def test_block_replacement_keeps_other_lines() -> None:
    block = f"{BLOCK_BEGIN}\nnew\n{BLOCK_END}\n"
    assert replace_block("", block) == block
    assert replace_block("*.png binary", block) == "*.png binary\n" + block
    old = f"*.png binary\n{BLOCK_BEGIN}\nold\n{BLOCK_END}\n*.jpg binary\n"
    assert replace_block(old, block) == f"*.png binary\n{block}*.jpg binary\n"


# --- install-hooks --drivers -----------------------------------------------------------------


def install_drivers(repo: Path, cwd: Path | None = None) -> str:
    return ok(sopsflow(cwd or repo, "install-hooks", "--drivers")).decode()


def test_install_configures_git_and_writes_gitattributes(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", {"README.md": "x\n", ".gitattributes": "*.png binary\n"})
    plain = sopsflow(repo, "install-hooks")
    assert plain.returncode == 0 and git(repo, "config", "--get", "merge.sopsflow.driver", check=False).returncode
    out = install_drivers(repo)
    assert "wrote the sopsflow block" in out
    config = {k: git(repo, "config", "--get", k).stdout.decode().strip() for k in (
        "diff.sopsflow.textconv", "diff.sopsflow.cachetextconv", "merge.sopsflow.driver", "merge.sopsflow.name")}
    assert config["diff.sopsflow.textconv"] == f"{sys.executable} -m sopsflow textconv"
    assert config["diff.sopsflow.cachetextconv"] == "false"
    assert config["merge.sopsflow.driver"] == f"{sys.executable} -m sopsflow merge-driver --marker-size %L %O %A %B %P"
    assert config["merge.sopsflow.name"]
    text = (repo / ".gitattributes").read_text()
    assert text.startswith("*.png binary\n" + BLOCK_BEGIN)
    found = check_attr(repo, ["secrets/a.yaml", "secrets/d/b.env", "x/k8s/my-secret.yaml", "k8s/a/secret/b.yaml",
                              "blobs/x.bin", "team/n.txt", "other/a.yaml", "secrets/a.txt", "k8s/config.yaml"])
    sops = {p for p, attrs in found.items() if {"diff=sopsflow", "merge=sopsflow"} <= attrs}
    assert sops == {"secrets/a.yaml", "secrets/d/b.env", "x/k8s/my-secret.yaml", "k8s/a/secret/b.yaml",
                    "blobs/x.bin", "team/n.txt"}
    assert "already up to date" in install_drivers(repo)
    assert (repo / ".gitattributes").read_text() == text


def test_untranslatable_rule_lists_tracked_files_and_subdirectory_config(tmp_path: Path) -> None:
    rules = f"creation_rules:\n  - path_regex: (?i)^Secrets/\n    age: {AGE_RECIPIENT}\n  - path_regex: ^plain/\n" \
            f"    age: {AGE_RECIPIENT}\n"
    repo = init_repo(tmp_path / "r", {"deploy/secrets/a.yaml": "a: 1\n", "deploy/SECRETS/b.yaml": "b: 1\n",
                                      "deploy/other/c.yaml": "c: 1\n", "secrets/top.yaml": "t: 1\n"}, rules=None)
    write(repo, "deploy/.sops.yaml", rules)
    git(repo, "add", "-A")
    commit(repo, "config")
    out = install_drivers(repo, cwd=repo / "deploy")
    assert "creation_rules[0]: path_regex cannot be written" in out and "2 tracked file(s)" in out
    text = (repo / "deploy" / ".gitattributes").read_text()
    assert "/secrets/a.yaml diff=sopsflow merge=sopsflow" in text and "plain/** diff=sopsflow" in text
    assert not (repo / ".gitattributes").exists()
    found = check_attr(repo, ["deploy/secrets/a.yaml", "deploy/SECRETS/b.yaml", "deploy/other/c.yaml",
                              "secrets/top.yaml", "deploy/plain/x", "plain/x", "deploy/x/secrets/a.yaml"])
    covered = {p for p, attrs in found.items() if "merge=sopsflow" in attrs}
    assert covered == {"deploy/secrets/a.yaml", "deploy/SECRETS/b.yaml", "deploy/plain/x"}


# --- textconv ----------------------------------------------------------------------------------------


def test_textconv_decrypts_and_falls_back(tmp_path: Path) -> None:
    plain = "user: admin\n# note\npassword: hunter2\n"
    (tmp_path / "s.yaml").write_bytes(sops_encrypt("s.yaml", plain))
    (tmp_path / "p.yaml").write_text("just: text\n")
    done = sopsflow(tmp_path, "textconv", "s.yaml")
    assert done.returncode == 0
    real = run_sops(["decrypt", "s.yaml"], cwd=tmp_path, env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
    assert real.stdout.decode() == plain
    # the plaintext as sops prints it, then the metadata lines
    text = done.stdout.decode()
    assert text.startswith(plain)
    trailer = text[len(plain):].splitlines()
    assert trailer[:3] == ["", "# sops metadata (shown by sopsflow textconv; not part of the file)",
                           f"# sops: group 1: age {AGE_RECIPIENT}"]
    assert trailer[3].startswith("# sops: lastmodified: ") and re.fullmatch(
        r"# sops: metadata sha256: [0-9a-f]{16}", trailer[4]) and len(trailer) == 5
    done = sopsflow(tmp_path, "textconv", "p.yaml")
    assert done.returncode == 0 and done.stdout == b"just: text\n" and b"not a SOPS file" in done.stderr
    no_key = {k: v for k, v in git_env().items() if k != "SOPS_AGE_KEY_FILE"}
    done = sopsflow(tmp_path, "textconv", "s.yaml", env=no_key)
    assert done.returncode == 0 and done.stdout == (tmp_path / "s.yaml").read_bytes()
    assert b"cannot decrypt s.yaml" in done.stderr and b"hunter2" not in done.stderr


# --- real git merges ------------------------------------------------------------------------------------

FILES = {
    "secrets/app.yaml": "db:\n    user: admin\n    # the password\n    password: base-pw\napi: k1\nkeep: same\n",
    "secrets/app.json": '{"db": {"user": "admin", "password": "base-pw"}, "api": "k1", "keep": "same"}',
    "secrets/app.env": "USER=admin\n# comment\nPASSWORD=base-pw\nAPI=k1\nKEEP=same\n",
    "secrets/app.ini": "[db]\nuser = admin\npassword = base-pw\n\n[api]\nkey = k1\nkeep = same\n",
}
# (ours' change, theirs' change, untouched key, the key ours changed for the conflict test)
EDITS = {
    "secrets/app.yaml": ('["db"]["user"]', '["api"]', "keep"),
    "secrets/app.json": ('["db"]["user"]', '["api"]', "keep"),
    "secrets/app.env": ('["USER"]', '["API"]', "KEEP"),
    "secrets/app.ini": ('["db"]["user"]', '["api"]["key"]', "keep"),
}
MERGED = {
    "secrets/app.yaml": "db:\n    user: root\n    # the password\n    password: base-pw\napi: k2\nkeep: same\n",
    "secrets/app.json": '{\n\t"db": {\n\t\t"user": "root",\n\t\t"password": "base-pw"\n\t},\n\t"api": "k2",\n'
                        '\t"keep": "same"\n}\n',
    "secrets/app.env": "USER=root\n# comment\nPASSWORD=base-pw\nAPI=k2\nKEEP=same\n",
    "secrets/app.ini": "[db]\nuser     = root\npassword = base-pw\n\n[api]\nkey  = k2\nkeep = same\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one SOPS file per format, drivers installed and the
    .gitattributes block committed."""
    files: dict[str, str | bytes] = {name: sops_encrypt(name, text) for name, text in FILES.items()}
    repo = init_repo(tmp_path / "repo", files)
    install_drivers(repo)
    git(repo, "add", ".gitattributes")
    commit(repo, "drivers")
    return repo


def set_value(repo: Path, name: str, path: str, value: str, *, real_sops: bool = False) -> None:
    if real_sops:
        done = run_sops(["set", name, path, f'"{value}"'], cwd=repo,
                        env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
        assert done.returncode == 0, done.stderr
    else:
        ok(sopsflow(repo, "set", name, path, f'"{value}"'))


def enc_of(text: bytes, key: str) -> str:
    for line in text.decode().splitlines():
        if re.match(rf'^\s*"?{re.escape(key)}"?\s*[:=]', line):
            found = ENC.search(line)
            assert found, line
            return found.group(0)
    raise AssertionError(key)


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    commit(repo, message)


def branch(repo: Path, name: str, start: str = "main") -> None:
    git(repo, "checkout", "-q", "-b", name, start)


def test_changes_to_different_keys_merge_cleanly(repo: Path) -> None:
    base = {name: (repo / name).read_bytes() for name in FILES}
    branch(repo, "feature")
    for name, (_ours_key, theirs_key, _keep) in EDITS.items():
        set_value(repo, name, theirs_key, "k2", real_sops=True)
    commit_all(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    for name, (ours_key, _theirs_key, _keep) in EDITS.items():
        set_value(repo, name, ours_key, "root")
    commit_all(repo, "ours")
    done = git(repo, "merge", "--no-edit", "feature", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "status", "--porcelain").stdout == b""
    for name, expected in MERGED.items():
        assert ok(sopsflow(repo, "decrypt", name)).decode() == expected, name
        real = run_sops(["decrypt", name], cwd=repo, env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
        assert real.returncode == 0 and real.stdout.decode() == expected, name
        merged = (repo / name).read_bytes()
        assert enc_of(merged, EDITS[name][2]) == enc_of(base[name], EDITS[name][2]), name
    # The merge commit's diff against ours is the other side's key, the MAC and
    # lastmodified. lastmodified has whole seconds: when ours' `set` and the
    # merge ran within the same second it is unchanged (a diff of 2, not 3).
    diff = git(repo, "diff", "--no-textconv", "-U0", "HEAD^1", "HEAD", "--", "secrets/app.yaml").stdout.decode()
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    keys = [(line[0], line[1:].split(":")[0].strip()) for line in changed]
    stamps = [git(repo, "show", f"{rev}:secrets/app.yaml").stdout.decode().split("lastmodified: ")[1].split()[0]
              for rev in ("HEAD^1", "HEAD")]
    assert stamps[1] >= stamps[0]
    expected = ["api", "mac"] + (["lastmodified"] if stamps[0] != stamps[1] else [])
    assert sorted(k for sign, k in keys if sign == "-") == sorted(expected)
    assert sorted(k for sign, k in keys if sign == "+") == sorted(expected)


def _all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    """Every file under ``root``; git's loose objects decompressed."""
    out = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if "objects" in path.parts and len(path.parent.name) == 2:
                try:
                    data = zlib.decompress(data)
                except zlib.error:
                    pass
            out.append((path, data))
    return out


def test_same_key_changed_differently_stops_without_plaintext(repo: Path, tmp_path: Path) -> None:
    private_tmp = tmp_path / "private-tmp"
    private_tmp.mkdir()
    env = git_env(TMPDIR=str(private_tmp))
    secrets = {b"ours-conflicting-secret", b"theirs-conflicting-secret", b"base-pw"}
    branch(repo, "feature")
    set_value(repo, "secrets/app.yaml", '["db"]["password"]', "theirs-conflicting-secret")
    set_value(repo, "secrets/app.yaml", '["api"]', "k2")
    commit_all(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    set_value(repo, "secrets/app.yaml", '["db"]["password"]', "ours-conflicting-secret")
    commit_all(repo, "ours")
    ours_bytes = (repo / "secrets/app.yaml").read_bytes()
    done = git(repo, "merge", "--no-edit", "feature", env=env, check=False)
    output = (done.stdout + done.stderr).decode()
    assert done.returncode != 0
    assert '["db"]["password"]' in output and "CONFLICT" in output
    assert '["api"]' not in output.replace('["db"]["password"]', "")
    assert "sopsflow edit secrets/app.yaml" in output and "git show :3:secrets/app.yaml" in output
    assert (repo / "secrets/app.yaml").read_bytes() == ours_bytes
    stages = git(repo, "ls-files", "-u", "--", "secrets/app.yaml").stdout.decode().split("\n")
    assert len([s for s in stages if s]) == 3
    for secret in secrets:
        assert secret not in output.encode()
        for root in (repo, private_tmp):
            leaks = [p for p, data in _all_bytes(root) if secret in data]
            assert leaks == [], (secret, leaks)
    assert b"ours-conflicting-secret" in ok(sopsflow(repo, "decrypt", "secrets/app.yaml"))
    # the printed inspection command works
    theirs = subprocess.run(f"git show :3:secrets/app.yaml | {sys.executable} -m sopsflow decrypt "
                            "--filename-override secrets/app.yaml --extract '[\"db\"][\"password\"]'",
                            shell=True, cwd=repo, env=env, capture_output=True, timeout=60)
    assert theirs.stdout == b"theirs-conflicting-secret"


def test_edit_resolves_a_conflict_showing_both_values(repo: Path, tmp_path: Path) -> None:
    branch(repo, "feature")
    set_value(repo, "secrets/app.yaml", '["db"]["password"]', "theirs-conflicting-secret")
    commit_all(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    set_value(repo, "secrets/app.yaml", '["db"]["password"]', "ours-conflicting-secret")
    commit_all(repo, "ours")
    assert git(repo, "merge", "--no-edit", "feature", check=False).returncode != 0
    before = (repo / "secrets/app.yaml").read_text()
    # The editor checks that theirs' value is shown next to ours, then resolves.
    mark = tmp_path / "shown"
    editor = tmp_path / "resolve.sh"
    shown_line = ('sopsflow-conflict: ["db"]["password"] is changed on both sides; '
                  'shown below is ours, theirs has: "theirs-conflicting-secret"')
    editor.write_text(
        "#!/bin/sh\n"
        f"grep -qF '{shown_line}' \"$1\" && grep -q '^    password: ours-conflicting-secret$' \"$1\" "
        f"&& echo yes > {mark}\n"
        "sed -i 's/ours-conflicting-secret/resolved-secret/' \"$1\"\n"
    )
    editor.chmod(0o700)
    ok(sopsflow(repo, "edit", "secrets/app.yaml", env=git_env(EDITOR=str(editor))))
    assert mark.read_text().strip() == "yes"
    after = (repo / "secrets/app.yaml").read_text()
    plain = ok(sopsflow(repo, "decrypt", "secrets/app.yaml")).decode()
    assert "resolved-secret" in plain and "sopsflow-conflict" not in plain
    assert "resolved-secret" not in after and "theirs-conflicting-secret" not in after
    # values nobody touched keep their exact ciphertext
    assert enc_of(after.encode(), "api") == enc_of(before.encode(), "api")
    real = run_sops(["decrypt", "secrets/app.yaml"], cwd=repo, env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
    assert real.returncode == 0 and real.stdout.decode() == plain


def _data_key(repo: Path, name: str, rev: str) -> bytes:
    """The file's data key at ``rev`` (in-process, vectors' key)."""
    from sopsflow.operations import decrypt_document
    from sopsflow.stores import store_for_path

    data = git(repo, "show", f"{rev}:{name}").stdout
    old = os.environ.get("SOPS_AGE_KEY_FILE")
    os.environ["SOPS_AGE_KEY_FILE"] = str(AGE_KEY_FILE)
    try:
        return decrypt_document(store_for_path(name), data).data_key
    finally:
        if old is None:
            del os.environ["SOPS_AGE_KEY_FILE"]
        else:
            os.environ["SOPS_AGE_KEY_FILE"] = old


@pytest.mark.parametrize("rotator", ["sopsflow-theirs", "sops-ours"])
def test_rotation_on_one_side_edit_on_the_other(repo: Path, second_key: tuple[str, Path], rotator: str) -> None:
    recipient, key_file = second_key
    name = "secrets/app.yaml"

    def rotate() -> None:
        if rotator.startswith("sopsflow"):
            ok(sopsflow(repo, "rotate", "-i", "--add-age", recipient, name))
        else:
            done = run_sops(["rotate", "-i", "--add-age", recipient, name], cwd=repo,
                            env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
            assert done.returncode == 0, done.stderr

    branch(repo, "feature")
    if rotator.endswith("theirs"):
        rotate()
    else:
        set_value(repo, name, '["api"]', "edited-value")
    commit_all(repo, "feature")
    git(repo, "checkout", "-q", "main")
    if rotator.endswith("ours"):
        # main's rule names the added key (else the merge commit's hook refuses it)
        rules = (repo / ".sops.yaml").read_text()
        write(repo, ".sops.yaml", rules.replace(f"    age: {AGE_RECIPIENT}\n", f"    age: {AGE_RECIPIENT},{recipient}\n", 1))
        rotate()
    else:
        set_value(repo, name, '["api"]', "edited-value")
    commit_all(repo, "main")
    rotated_rev = "feature" if rotator.endswith("theirs") else "main"
    rotated_key = _data_key(repo, name, rotated_rev)
    rotated_bytes = git(repo, "show", f"{rotated_rev}:{name}").stdout
    done = git(repo, "merge", "--no-edit", "feature", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    merged = (repo / name).read_bytes()
    expected = FILES[name].replace("api: k1", "api: edited-value")
    added_key_reads = run_sops(["decrypt", name], cwd=repo, env=base_env(SOPS_AGE_KEY_FILE=str(key_file)))
    if rotator.endswith("ours"):
        # ours' key set (rotated, with the key its rule now names) is kept as it is
        assert recipient in merged.decode()
        assert added_key_reads.returncode == 0 and added_key_reads.stdout.decode() == expected
        assert _data_key(repo, name, "HEAD") == rotated_key
        assert enc_of(merged, "keep") == enc_of(rotated_bytes, "keep")
    else:
        # theirs' rotation added a key ours' rule does not name: neither theirs'
        # data key nor that recipient comes along; a fresh key for the rule does
        assert recipient not in merged.decode() and added_key_reads.returncode != 0
        assert _data_key(repo, name, "HEAD") not in (rotated_key, _data_key(repo, name, "HEAD^1"))
        assert b"fresh one" in done.stderr + done.stdout
    real = run_sops(["decrypt", name], cwd=repo, env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
    assert real.returncode == 0 and real.stdout.decode() == expected


def test_git_diff_and_log_show_plaintext(repo: Path) -> None:
    set_value(repo, "secrets/app.yaml", '["db"]["user"]', "root")
    set_value(repo, "secrets/app.env", '["API"]', "k9")
    diff = git(repo, "diff").stdout.decode()
    assert "-    user: admin\n+    user: root\n" in diff and "-API=k1\n+API=k9\n" in diff
    assert "ENC[" not in diff
    assert "ENC[" in git(repo, "diff", "--no-textconv").stdout.decode()
    git(repo, "commit", "-q", "--no-verify", "-am", "edit")
    log = git(repo, "log", "-p", "-1").stdout.decode()
    assert "+    user: root" in log and "+API=k9" in log and "ENC[" not in log


def test_binary_sops_files_conflict_untouched(tmp_path: Path) -> None:
    blob = sops_encrypt("x.bin", b"line one\nline two\n")
    repo = init_repo(tmp_path / "repo", {"blobs/x.bin": blob, "team/notes.txt": "a\nb\nc\nd\ne\n"})
    install_drivers(repo)
    git(repo, "add", ".gitattributes")
    commit(repo, "drivers")
    branch(repo, "feature")
    write(repo, "blobs/x.bin", sops_encrypt("x.bin", b"line one\nTHEIRS\n"))
    write(repo, "team/notes.txt", "a\nb\nc\nd\nE-theirs\n")
    git(repo, "commit", "-q", "--no-verify", "-am", "theirs")
    git(repo, "checkout", "-q", "main")
    write(repo, "blobs/x.bin", sops_encrypt("x.bin", b"OURS\nline two\n"))
    write(repo, "team/notes.txt", "A-ours\nb\nc\nd\ne\n")
    git(repo, "commit", "-q", "--no-verify", "-am", "ours")
    ours_blob = (repo / "blobs/x.bin").read_bytes()
    done = git(repo, "merge", "--no-edit", "feature", check=False)
    output = (done.stdout + done.stderr).decode()
    assert done.returncode != 0 and "binary SOPS files cannot be merged" in output
    assert (repo / "blobs/x.bin").read_bytes() == ours_blob
    # a file the rules cover that is not SOPS at all: git's own text merge
    assert (repo / "team/notes.txt").read_text() == "A-ours\nb\nc\nd\nE-theirs\n"
    unmerged = git(repo, "diff", "--name-only", "--diff-filter=U").stdout.decode().split()
    assert unmerged == ["blobs/x.bin"]


def test_merge_driver_refuses_mixed_and_undecryptable_inputs(tmp_path: Path) -> None:
    enc = sops_encrypt("m.yaml", "a: 1\n")
    (tmp_path / "O").write_bytes(enc)
    (tmp_path / "A").write_bytes(enc)
    (tmp_path / "B").write_text("a: 2\n")
    done = sopsflow(tmp_path, "merge-driver", "O", "A", "B", "m.yaml")
    assert done.returncode == 1 and b"one side is a SOPS file" in done.stderr
    assert (tmp_path / "A").read_bytes() == enc
    (tmp_path / "B").write_bytes(enc.replace(b"a: ENC", b"b: ENC"))  # MAC no longer matches
    done = sopsflow(tmp_path, "merge-driver", "O", "A", "B", "m.yaml")
    assert done.returncode == 1 and b"cannot merge" in done.stderr
    assert (tmp_path / "A").read_bytes() == enc
    no_key = {k: v for k, v in git_env().items() if k != "SOPS_AGE_KEY_FILE"}
    (tmp_path / "B").write_bytes(sops_encrypt("m.yaml", "a: 3\n"))
    done = sopsflow(tmp_path, "merge-driver", "O", "A", "B", "m.yaml", env=no_key)
    assert done.returncode == 1 and (tmp_path / "A").read_bytes() == enc


def test_merge_driver_without_a_base_merges_added_keys(tmp_path: Path) -> None:
    """add/add: git hands over an empty %O when both branches created the file."""
    (tmp_path / "O").write_bytes(b"")
    (tmp_path / "A").write_bytes(sops_encrypt("n.yaml", "shared: 1\nours: a\n"))
    (tmp_path / "B").write_bytes(sops_encrypt("n.yaml", "shared: 1\ntheirs: b\n"))
    done = sopsflow(tmp_path, "merge-driver", "O", "A", "B", "n.yaml")
    assert done.returncode == 0, done.stderr
    (tmp_path / "m.yaml").write_bytes((tmp_path / "A").read_bytes())
    real = run_sops(["decrypt", "m.yaml"], cwd=tmp_path, env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
    assert real.stdout == b"shared: 1\nours: a\ntheirs: b\n"
    (tmp_path / "B").write_bytes(sops_encrypt("n.yaml", "shared: 2\n"))
    (tmp_path / "A").write_bytes(sops_encrypt("n.yaml", "shared: 1\nours: a\n"))
    before = (tmp_path / "A").read_bytes()
    done = sopsflow(tmp_path, "merge-driver", "O", "A", "B", "n.yaml")
    assert done.returncode == 1 and b'["shared"]' in done.stderr and (tmp_path / "A").read_bytes() == before
