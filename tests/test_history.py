"""`sopsflow history` end to end on real git repositories: leaks on a side
branch, in a tag only, in a commit later reverted, a decrypted-and-committed
SOPS file, a hand-added plaintext value in a SOPS file, ``--since``, every
output format, exit codes, and no secret value in any output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import run_sopsflow
from tests.verifyfixtures import commit_all, git, make_repo, sops_encrypt, sops_yaml, write

# Values that must never appear in any output or report.
DB_PASSWORD = "hunter2-Zq8vLr4Tx9Wm"
SIDE_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
TAG_PASSWORD = "tag-only-Pw7Rk2Hs9Lq"
REVERTED_PASSWORD = "reverted-Xy5Vb8Nm3Kd"
HAND_ADDED = "hand-added-Jf6Tg2Wp4Qs"
PR_PASSWORD = "pull-request-Ud3Ce7Rb1Ya"
SECRETS = (DB_PASSWORD, SIDE_TOKEN, TAG_PASSWORD, REVERTED_PASSWORD, HAND_ADDED, PR_PASSWORD)
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----"

RULES = sops_yaml("^secrets/")


def history(repo: Path, *args: str) -> tuple[int, str, str]:
    done = run_sopsflow(["history", "-C", str(repo), *args])
    out, err = done.stdout.decode(), done.stderr.decode()
    assert "Traceback" not in err, err
    return done.returncode, out, err


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for value in SECRETS:
            assert value not in text


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """main: a clean start, a decrypted-and-committed SOPS file (later
    re-encrypted), a hand-added plaintext value, a reverted leak; a side
    branch with a token; a tag on a commit no branch holds."""
    root = tmp_path_factory.mktemp("history")
    encrypted = sops_encrypt("secrets/db.yaml", f"password: {DB_PASSWORD}\n")
    repo = make_repo(root / "repo", {".sops.yaml": RULES, "secrets/db.yaml": encrypted, "README.md": "hello\n"})
    # decrypted and committed, then encrypted again
    write(repo, {"secrets/db.yaml": f"password: {DB_PASSWORD}\n"})
    commit_all(repo, "oops: decrypted")
    write(repo, {"secrets/db.yaml": encrypted})
    commit_all(repo, "re-encrypt")
    # a plaintext value added by hand to a SOPS file (still in HEAD)
    api = sops_encrypt("secrets/api.yaml", "key: something\n").decode()
    write(repo, {"secrets/api.yaml": api})
    commit_all(repo, "api")
    write(repo, {"secrets/api.yaml": f"extra: {HAND_ADDED}\n" + api})
    commit_all(repo, "hand edit")
    # a leak, reverted
    write(repo, {"secrets/old.yaml": f"password: {REVERTED_PASSWORD}\n"})
    leak = commit_all(repo, "leak")
    git(repo, "revert", "--no-edit", leak)
    # a side branch with a token outside every rule
    git(repo, "checkout", "-q", "-b", "side")
    write(repo, {"app/config.py": f'TOKEN = "{SIDE_TOKEN}"\n'})
    commit_all(repo, "side token")
    git(repo, "checkout", "-q", "main")
    # a tag on a commit no branch holds
    git(repo, "checkout", "-q", "--detach")
    write(repo, {"secrets/tagged.yaml": f"password: {TAG_PASSWORD}\n"})
    commit_all(repo, "tagged only")
    git(repo, "tag", "v-leak")
    git(repo, "checkout", "-q", "main")
    return repo


def report_of(repo: Path, tmp_path: Path, *args: str) -> tuple[int, str, dict[str, object]]:
    path = tmp_path / "report.json"
    code, out, err = history(repo, "--report", str(path), *args)
    text = path.read_text()
    no_secret_in(out, err, text)
    return code, out, json.loads(text)


def by_path(report: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for e in report["exposures"]:  # type: ignore[attr-defined]
        out.setdefault(e["path"], []).append(e)
    return out


def test_every_leak_is_found_once_with_its_commits_and_refs(leaky: Path, tmp_path: Path) -> None:
    code, out, report = report_of(leaky, tmp_path)
    assert code == 1
    found = by_path(report)
    assert set(found) == {"secrets/db.yaml", "secrets/api.yaml", "secrets/old.yaml", "app/config.py",
                          "secrets/tagged.yaml"}
    assert all(len(v) == 1 for v in found.values())  # each exposure once
    log = {line.split(" ", 1)[1]: line.split(" ", 1)[0]
           for line in git(leaky, "log", "--all", "--format=%H %s").splitlines()}

    db = found["secrets/db.yaml"][0]
    assert db["introduced_in"] == [log["oops: decrypted"]] and db["removed_in"] == [log["re-encrypt"]]
    assert db["kinds"] == ["plaintext-secret"] and db["in_head"] is False
    assert "password" in db["key_paths"]
    assert set(db["refs"]) >= {"main", "side", "v-leak", "HEAD"}

    api = found["secrets/api.yaml"][0]
    assert api["kinds"] == ["partly-plaintext"] and api["in_head"] is True
    assert api["introduced_in"] == [log["hand edit"]] and api["removed_in"] == []
    assert "extra" in api["key_paths"]

    old = found["secrets/old.yaml"][0]
    assert old["introduced_in"] == [log["leak"]]
    assert old["removed_in"] == [log['Revert "leak"']] and old["in_head"] is False

    side = found["app/config.py"][0]
    assert side["kinds"] == ["leaked-secret"] and side["refs"] == ["side"] and side["in_head"] is False

    tagged = found["secrets/tagged.yaml"][0]
    assert tagged["refs"] == ["v-leak"] and tagged["removed_in"] == []
    assert out.rstrip().endswith(report["advice"])  # type: ignore[union-attr]
    assert "rotate these at their source" in out


def test_refs_limit_the_walk(leaky: Path, tmp_path: Path) -> None:
    code, _, report = report_of(leaky, tmp_path, "v-leak")
    assert code == 1
    assert "app/config.py" not in by_path(report) and "secrets/tagged.yaml" in by_path(report)


def test_since_scans_only_new_commits(leaky: Path, tmp_path: Path) -> None:
    repo = tmp_path / "pr"
    git(leaky, "clone", "-q", "--no-local", str(leaky), str(repo))
    git(repo, "checkout", "-q", "-b", "feature", "origin/main")
    code, out, report = report_of(repo, tmp_path, "--since", "origin/main")
    assert code == 0 and report["exposures"] == [] and "0 commits" in out
    write(repo, {"secrets/pr.env": f"PASSWORD={PR_PASSWORD}\n"})
    pr = commit_all(repo, "pr leak")
    code, out, report = report_of(repo, tmp_path, "--since", "origin/main")
    assert code == 1
    assert [(e["path"], e["introduced_in"], e["in_head"]) for e in report["exposures"]] == [  # type: ignore[attr-defined]
        ("secrets/pr.env", [pr], True)]
    assert report["summary"]["commits"] == 1  # type: ignore[index]


def test_a_clean_history_exits_0(tmp_path: Path) -> None:
    encrypted = sops_encrypt("secrets/a.yaml", f"password: {DB_PASSWORD}\n")
    repo = make_repo(tmp_path / "clean", {".sops.yaml": RULES, "secrets/a.yaml": encrypted})
    code, out, err = history(repo)
    assert code == 0, out
    assert "0 exposures" in out and "rotate" not in out
    assert err == ""  # no progress when stderr is not a terminal


def test_config_change_makes_an_old_file_an_exposure(tmp_path: Path) -> None:
    """A file committed before a rule covered it is judged again under the new rule."""
    repo = make_repo(tmp_path / "rule", {".sops.yaml": RULES, "conf/app.yaml": f"password: {DB_PASSWORD}\n"})
    code, _, report = report_of(repo, tmp_path)
    assert code == 0 and report["exposures"] == []
    write(repo, {".sops.yaml": sops_yaml("^secrets/", "^conf/")})
    commit_all(repo, "cover conf/")
    code, _, report = report_of(repo, tmp_path)
    assert code == 1 and [e["path"] for e in report["exposures"]] == ["conf/app.yaml"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit", "github", "gitlab"])
def test_each_output_format_parses_and_holds_no_secret(leaky: Path, fmt: str) -> None:
    code, out, err = history(leaky, "--format", fmt)
    assert code == 1
    no_secret_in(out, err)
    if fmt in ("json", "sarif", "gitlab"):
        doc = json.loads(out)
        if fmt == "sarif":
            assert len(doc["runs"][0]["results"]) == 5
        elif fmt == "gitlab":
            assert len(doc) == 5
        else:
            assert len(doc["findings"]) == 5
    elif fmt == "junit":
        assert len(ET.fromstring(out).findall(".//failure")) == 5
    elif fmt == "github":
        assert out.count("::error") == 5
    else:
        assert len(out.splitlines()) <= 40 and max(map(len, out.splitlines())) <= 100


def test_usage_errors_exit_2(leaky: Path, tmp_path: Path) -> None:
    assert history(leaky, "--since", "no-such-rev")[0] == 2
    assert history(leaky, "no-such-ref")[0] == 2
    assert history(leaky, "--jobs", "0")[0] == 2
    assert history(leaky, "--format", "yaml")[0] == 2
    (tmp_path / "plain").mkdir()
    code, _, err = history(tmp_path / "plain")
    assert code == 2 and err.count("\n") == 1


def test_text_report_stays_within_40_lines_of_100_columns(tmp_path: Path) -> None:
    from sopsflow.gitops.history import ROTATE_LINE, Exposure, HistoryResult, Where, render_text

    exposures = [
        Exposure(path=f"secrets/{'deeply/' * 12}nested/file{n}.yaml", blob=f"{n:040x}",
                 findings=[Where("plaintext-secret", "error", "not encrypted", 1)],
                 introduced_in=[f"{n:040x}", f"{n + 1:040x}", f"{n + 2:040x}"], removed_in=[f"{n + 3:040x}"],
                 refs=[f"release/{'x' * 30}-{n}", "main", "v1"], in_head=n % 2 == 0)
        for n in range(200)
    ]
    result = HistoryResult(root=tmp_path, refs=["main"], since=None, commits=10_000, blobs=12_000,
                           exposures=exposures)
    long_report = str(tmp_path / ("very-long-directory-name-" * 6) / "history.json")
    for report in (None, long_report):
        lines = render_text(result, report).splitlines()
        assert len(lines) <= 40 and max(map(len, lines)) <= 100
        assert lines[-1] == ROTATE_LINE and "175 more" in lines[-2]


def test_progress_only_on_a_terminal() -> None:
    import io
    import os

    from sopsflow.gitops.history import progress_printer

    assert progress_printer(io.StringIO()) is None  # a pipe or a file: silent
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as terminal:
        show = progress_printer(terminal)
        assert show is not None
        show("judging", 3, 10)
    assert b"judging 3/10 blobs" in os.read(master, 1024)
    os.close(master)


def test_a_merge_does_not_introduce_what_a_parent_had(tmp_path: Path) -> None:
    """Introduced-in names the branch commit, not the merge that brought it in."""
    repo = make_repo(tmp_path / "merge", {".sops.yaml": RULES, "README.md": "x\n"})
    git(repo, "checkout", "-q", "-b", "topic")
    write(repo, {"secrets/topic.yaml": f"password: {DB_PASSWORD}\n"})
    leak = commit_all(repo, "topic leak")
    git(repo, "checkout", "-q", "main")
    write(repo, {"README.md": "y\n"})
    commit_all(repo, "main moves")
    git(repo, "merge", "-q", "--no-ff", "--no-edit", "topic")
    merge = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "rm", "-q", "secrets/topic.yaml")
    gone = commit_all(repo, "remove it")
    code, _, report = report_of(repo, tmp_path)
    assert code == 1
    [exposure] = report["exposures"]  # type: ignore[misc]
    assert exposure["introduced_in"] == [leak] and merge not in exposure["introduced_in"]
    assert exposure["removed_in"] == [gone] and exposure["in_head"] is False
    assert set(exposure["refs"]) == {"main", "topic", "HEAD"}
