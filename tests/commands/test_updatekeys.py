"""``sopsflow updatekeys`` end to end on a 60-file repository made by the real sops.

Every result is read back by the real ``sops decrypt`` (calls run in parallel).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import base_env, run_sops, run_sopsflow
from ..updatefixtures import (
    UpdateRepo,
    commit_all,
    data_key_of,
    metadata_of,
    recipients_of,
    sops_decrypt_all,
    sops_decrypt_codes,
    sops_yaml,
    template_repo,
    values_part,
)
from ..vectors import GENERATED, PGP_FP

OPS = GENERATED / "ops"


@pytest.fixture
def repo(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> UpdateRepo:
    return template_repo(tmp_path_factory).copy_to(tmp_path / "repo")


def _out(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stdout.decode() + done.stderr.decode()


def test_add_recipient(repo: UpdateRepo) -> None:
    team = repo.team
    os.symlink("secret-0.yaml", repo.path("clusters/prod/link.yaml"))
    commit_all(repo.root, "a symlink at a rule path")
    repo.write_config(sops_yaml(team, prod=[team.admin, team.prod, team.newcomer],
                                apps=[team.admin, team.dev, team.newcomer]))
    affected = repo.in_dir("clusters/prod") + repo.in_dir("apps")
    before = repo.snapshot()
    env = team.env(team.admin)

    dry = run_sopsflow(["updatekeys", "--dry-run"], env=env, cwd=repo.root)
    assert dry.returncode == 1, _out(dry)
    assert repo.snapshot() == before
    text = dry.stdout.decode()
    assert "Plan: 30 to update (0 with a new data key), 30 up to date, 1 skipped" in text
    for rel in affected:
        assert f"{rel}  [rule {0 if rel.startswith('clusters') else 3}]  re-wrap data key\n" \
               f"    group 1: +{team.newcomer.recipient}\n" in text
    assert "link.yaml" not in text and "README" not in text

    done = run_sopsflow(["updatekeys", "-y"], env=env, cwd=repo.root)
    assert done.returncode == 0, _out(done)
    assert "Updated 30 file(s) (0 with a new data key)." in done.stdout.decode()
    after = repo.snapshot()
    for rel in repo.files:
        if rel in affected:
            assert team.newcomer.recipient in recipients_of(repo.path(rel))[0], rel
            meta_b = metadata_of_bytes(rel, before[rel])
            meta_a = metadata_of(repo.path(rel))
            assert (meta_a.mac, meta_a.lastmodified, meta_a.version) == (meta_b.mac, meta_b.lastmodified, meta_b.version)
        else:
            assert after[rel] == before[rel], rel
    assert os.path.islink(repo.path("clusters/prod/link.yaml"))
    # The new key alone decrypts every affected file, read by the real sops.
    plain = sops_decrypt_all(repo, affected, team.env(team.newcomer))
    assert plain == [repo.plain[rel] for rel in affected]
    assert run_sopsflow(["updatekeys", "--dry-run"], env=env, cwd=repo.root).returncode == 0


def metadata_of_bytes(rel: str, data: bytes):  # type: ignore[no-untyped-def]
    from sopsflow.operations import load_metadata
    from sopsflow.stores import store_for_path

    return load_metadata(store_for_path(rel), data)[1]


def test_add_keeps_values_byte_identical(repo: UpdateRepo) -> None:
    team = repo.team
    repo.write_config(sops_yaml(team, staging=[team.admin, team.staging, team.newcomer]))
    rels = repo.in_dir("clusters/staging")
    values = {rel: values_part(repo.path(rel)) for rel in rels}
    texts = {rel: repo.path(rel).read_text(errors="replace") for rel in rels}
    done = run_sopsflow(["updatekeys", "-y", "clusters/staging"], env=team.env(team.staging), cwd=repo.root)
    assert done.returncode == 0, _out(done)
    for rel in rels:
        assert values_part(repo.path(rel)) == values[rel]
        if rel.endswith(".yaml"):  # the text before the sops block, byte for byte
            assert repo.path(rel).read_text().split("\nsops:\n")[0] == texts[rel].split("\nsops:\n")[0]
        if rel.endswith(".env"):
            data_lines = [line for line in texts[rel].splitlines() if not line.startswith("sops_")]
            assert [line for line in repo.path(rel).read_text().splitlines() if not line.startswith("sops_")] == data_lines


def test_remove_recipient_rotates_and_reports(repo: UpdateRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    team = repo.team
    repo.write_config(sops_yaml(team, prod=[team.admin], staging=[team.admin]))
    affected = repo.in_dir("clusters/prod") + repo.in_dir("clusters/staging")
    all_keys = team.key_dir / "all.txt"
    keys_before = {rel: data_key_of(repo.path(rel), all_keys, monkeypatch) for rel in affected}
    before = repo.snapshot()
    report = repo.root / "exposure.json"

    done = run_sopsflow(["updatekeys", "-y", "--report", str(report)], env=team.env(team.admin), cwd=repo.root)
    assert done.returncode == 0, _out(done)
    out = done.stdout.decode()
    assert "Updated 30 file(s) (30 with a new data key)." in out
    assert "git history keeps the old ciphertext" in out
    for rel in repo.files:
        if rel not in affected:
            assert repo.path(rel).read_bytes() == before[rel], rel
    for rel in affected:
        assert recipients_of(repo.path(rel)) == [[team.admin.recipient]]
        assert data_key_of(repo.path(rel), all_keys, monkeypatch) != keys_before[rel], rel
    # The removed keys open none of the files; the remaining one opens all (real sops).
    assert set(sops_decrypt_codes(repo, repo.in_dir("clusters/prod"), team.env(team.prod))) == {128}
    assert set(sops_decrypt_codes(repo, repo.in_dir("clusters/staging"), team.env(team.staging))) == {128}
    assert sops_decrypt_all(repo, affected, team.env(team.admin)) == [repo.plain[r] for r in affected]

    data = json.loads(report.read_text())
    assert sorted(f["path"] for f in data["files"]) == sorted(affected)
    assert sorted(data["removed_recipients"]) == sorted([team.prod.recipient, team.staging.recipient])
    by_path = {f["path"]: f for f in data["files"]}
    assert by_path["clusters/prod/secret-0.yaml"]["removed_recipients"] == [team.prod.recipient]
    assert by_path["clusters/prod/secret-0.yaml"]["keys"] == [
        '["data"]["password"]', '["data"]["user"]', '["list"][0]', '["list"][1]', '["enabled"]', '["ratio"]'
    ]
    assert by_path["clusters/staging/secret-1.env"]["keys"] == ['["PASSWORD"]', '["TOKEN"]']
    assert by_path["clusters/staging/secret-2.pem"]["keys"] == ['["data"]']
    assert all(f["status"] == "updated" and f["data_key_rotated"] for f in data["files"])
    assert "clusters/prod/secret-0.ini" in out and '["db"]["password"]' in out


def test_no_rotate_keeps_data_key(repo: UpdateRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    team = repo.team
    repo.write_config(sops_yaml(team, apps=[team.admin]))
    rels = repo.in_dir("apps")
    all_keys = team.key_dir / "all.txt"
    keys_before = {rel: data_key_of(repo.path(rel), all_keys, monkeypatch) for rel in rels}
    report = repo.root / "r.json"
    done = run_sopsflow(["updatekeys", "-y", "--no-rotate", "--report", str(report), "apps"],
                        env=team.env(team.admin), cwd=repo.root)
    assert done.returncode == 0, _out(done)
    assert "data key NOT rotated" in done.stdout.decode()
    for rel in rels:
        assert data_key_of(repo.path(rel), all_keys, monkeypatch) == keys_before[rel]
        assert recipients_of(repo.path(rel)) == [[team.admin.recipient]]
    entries = json.loads(report.read_text())["files"]
    assert len(entries) == 15 and not any(e["data_key_rotated"] for e in entries)


def test_forced_rotation_of_up_to_date_files(repo: UpdateRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    team = repo.team
    rels = repo.in_dir("shared")
    all_keys = team.key_dir / "all.txt"
    keys_before = {rel: data_key_of(repo.path(rel), all_keys, monkeypatch) for rel in rels}
    done = run_sopsflow(["updatekeys", "-y", "--rotate", "shared"], env=team.env(), cwd=repo.root)
    assert done.returncode == 0, _out(done)
    assert "Updated 15 file(s) (15 with a new data key)." in done.stdout.decode()
    for rel in rels:
        assert data_key_of(repo.path(rel), all_keys, monkeypatch) != keys_before[rel]
        assert metadata_of(repo.path(rel)).shamir_threshold == 2
    assert sops_decrypt_all(repo, rels, team.env(team.admin, team.ops)) == [repo.plain[r] for r in rels]


def test_failures_are_listed_and_do_not_stop_others(repo: UpdateRepo) -> None:
    team = repo.team
    repo.write_config(sops_yaml(team, prod=[team.admin, team.prod, team.newcomer],
                                staging=[team.admin, team.staging, team.newcomer]))
    before = repo.snapshot()
    done = run_sopsflow(["updatekeys", "-y"], env=team.env(team.staging), cwd=repo.root)
    assert done.returncode == 128, _out(done)
    out = done.stdout.decode()
    assert "Updated 15 file(s) (0 with a new data key); 15 failed:" in out
    reason = f"no identity for any of: {team.admin.recipient}, {team.prod.recipient}; held by: admin, prod"
    for rel in repo.in_dir("clusters/prod"):
        assert f"  {rel}: {reason}\n" in out
        assert repo.path(rel).read_bytes() == before[rel]
    for rel in repo.in_dir("clusters/staging"):
        assert team.newcomer.recipient in recipients_of(repo.path(rel))[0]
    verbose = run_sopsflow(["updatekeys", "-y", "--verbose", "clusters/prod/secret-0.yaml"],
                           env=team.env(team.staging), cwd=repo.root)
    assert verbose.returncode == 128 and "Group 0: FAILED" in verbose.stdout.decode()


def test_dry_run_exit_codes_and_confirmation(repo: UpdateRepo) -> None:
    team = repo.team
    env = team.env(team.admin)
    assert run_sopsflow(["updatekeys", "--dry-run"], env=env, cwd=repo.root).returncode == 0
    repo.write_config(sops_yaml(team, staging=[team.admin]))
    before = repo.snapshot()
    refused = run_sopsflow(["updatekeys"], env=env, cwd=repo.root, input=b"y\n")
    assert refused.returncode == 1
    assert "stdin is not a terminal" in refused.stderr.decode() and "-y" in refused.stderr.decode()
    assert "clusters/staging/secret-0.yaml  [rule 1]  rotate data key" in refused.stdout.decode()
    assert repo.snapshot() == before
    dry = run_sopsflow(["updatekeys", "--dry-run", "--report", "r.json"], env=env, cwd=repo.root)
    assert dry.returncode == 1 and repo.snapshot() == before
    assert all(f["status"] == "pending" for f in json.loads(repo.path("r.json").read_text())["files"])
    assert run_sopsflow(["updatekeys", "-y"], env=env, cwd=repo.root).returncode == 0
    assert run_sopsflow(["updatekeys", "--dry-run"], env=env, cwd=repo.root).returncode == 0


def test_paths(repo: UpdateRepo) -> None:
    team = repo.team
    env = team.env(team.admin)
    repo.write_config(sops_yaml(team, prod=[team.admin, team.newcomer]))
    one = run_sopsflow(["updatekeys", "--dry-run", "clusters/prod/secret-1.json"], env=env, cwd=repo.root)
    assert one.returncode == 1 and "Plan: 1 to update" in one.stdout.decode()
    plain = run_sopsflow(["updatekeys", "--dry-run", "apps/notes.txt"], env=env, cwd=repo.root)
    assert plain.returncode == 1 and "apps/notes.txt  ERROR: not a SOPS file" in plain.stdout.decode()
    missing = run_sopsflow(["updatekeys", "nope.yaml"], env=env, cwd=repo.root)
    assert missing.returncode == 100
    # From a subdirectory the display names are relative to the cwd.
    sub = run_sopsflow(["updatekeys", "--dry-run", "."], env=env, cwd=repo.path("clusters"))
    assert sub.returncode == 1 and "prod/secret-0.yaml  [rule 0]" in sub.stdout.decode()
    assert "Plan: 15 to update (15 with a new data key), 15 up to date" in sub.stdout.decode()


def test_threshold_capped_like_sops(repo: UpdateRepo) -> None:
    """Rule goes from two key groups to one: the file's threshold 2 becomes
    min(2, 1) = 1, exactly what sops updatekeys writes."""
    team = repo.team
    repo.write_config(sops_yaml(team, shared_flat=[team.admin, team.ops]))
    rel = "shared/secret-0.yaml"
    theirs = repo.path("shared/theirs.yaml")
    shutil.copy(repo.path(rel), theirs)
    env = team.env()
    assert run_sops(["updatekeys", "-y", "shared/theirs.yaml"], env=env, cwd=repo.root).returncode == 0
    done = run_sopsflow(["updatekeys", "-y", "--no-rotate", rel], env=env, cwd=repo.root)
    assert done.returncode == 0, _out(done)
    assert "shamir_threshold: 2 -> 1" in done.stdout.decode()
    ours_meta, theirs_meta = metadata_of(repo.path(rel)), metadata_of(theirs)
    assert ours_meta.shamir_threshold == theirs_meta.shamir_threshold == 1
    assert recipients_of(repo.path(rel)) == recipients_of(theirs)
    assert _normalized(repo.path(rel).read_text()) == _normalized(theirs.read_text())
    assert sops_decrypt_all(repo, [rel], team.env(team.ops)) == [repo.plain[rel]]


# --- the vector pair: our output against sops updatekeys ---------------------------


@pytest.fixture
def pgp_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--import", str(GENERATED / "pgp-secret-key.asc")], env=env,
                   check=True, capture_output=True)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)


def _normalized(text: str) -> str:
    """The file with wrapped keys and created_at stamps blanked (they differ on every run)."""
    text = re.sub(r"-----BEGIN (AGE ENCRYPTED FILE|PGP MESSAGE)-----.*?-----END \1-----", "<ENC>", text, flags=re.S)
    return re.sub(r'created_at: "[^"]+"', "created_at: <T>", text)


def test_vector_pair_like_sops_updatekeys(tmp_path: Path, pgp_home: Path) -> None:
    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(OPS / "updatekeys.config-after.yaml", work / ".sops.yaml")
    shutil.copy(OPS / "updatekeys.before.enc.yaml", work / "f.yaml")
    shutil.copy(OPS / "updatekeys.before.enc.yaml", work / "theirs.yaml")
    env = base_env(SOPS_AGE_KEY_FILE=str(GENERATED / "age-key.txt"), GNUPGHOME=str(pgp_home))
    theirs = run_sops(["updatekeys", "-y", "theirs.yaml"], env=env, cwd=work)
    assert theirs.returncode == 0, theirs.stderr.decode()
    ours = run_sopsflow(["updatekeys", "-y", "f.yaml"], env=env, cwd=work)
    assert ours.returncode == 0, _out(ours)
    assert f"f.yaml  [rule 0]  re-wrap data key\n    group 1: +{PGP_FP}\n" in ours.stdout.decode()
    ours_text = (work / "f.yaml").read_text()
    assert _normalized(ours_text) == _normalized((work / "theirs.yaml").read_text())
    assert _normalized(ours_text) == _normalized((OPS / "updatekeys.after.enc.yaml").read_text())
    # values, mac, lastmodified byte-identical to the input. Where sops re-wraps
    # the age entry too, sopsflow keeps it (it wraps the same data key), so the
    # diff shows only the added PGP entry (README: departures from sops).
    before = (OPS / "updatekeys.before.enc.yaml").read_text()
    assert ours_text.split("\nsops:\n")[0] == before.split("\nsops:\n")[0]
    for line in before.splitlines():
        if line.lstrip().startswith(("mac:", "lastmodified:", "version:")):
            assert line in ours_text.splitlines()
    assert _age_enc(ours_text) == _age_enc(before)
    assert _age_enc((work / "theirs.yaml").read_text()) != _age_enc(before)
    lines = ours_text.splitlines(keepends=True)
    start = lines.index("    pgp:\n")
    end = next(i for i in range(start + 1, len(lines)) if re.match(r"    \S", lines[i]))
    assert "".join(lines[:start] + lines[end:]) == before  # nothing but the pgp entry was added
    # The PGP key alone now decrypts it, through the real sops.
    pgp_only = base_env(GNUPGHOME=str(pgp_home))
    by_pgp = run_sops(["decrypt", "f.yaml"], env=pgp_only, cwd=work)
    by_age = run_sops(["decrypt", str(OPS / "updatekeys.before.enc.yaml")], env=env, cwd=work)
    assert by_pgp.returncode == 0 and by_pgp.stdout == by_age.stdout
    again = run_sopsflow(["updatekeys", "--dry-run", "f.yaml"], env=env, cwd=work)
    assert again.returncode == 0, _out(again)


def _age_enc(text: str) -> str:
    return re.search(r"-----BEGIN AGE ENCRYPTED FILE-----.*?-----END AGE ENCRYPTED FILE-----", text, re.S).group(0)  # type: ignore[union-attr]


def test_terminal_progress_and_confirmation(repo: UpdateRepo) -> None:
    """On a terminal: one prompt (answered on the terminal) and a progress bar
    on stderr; without one (every other test) stderr stays quiet."""
    import pty
    import select
    import sys

    from ..conftest import REPO

    team = repo.team
    repo.write_config(sops_yaml(team, apps=[team.admin, team.dev, team.newcomer]))
    before = repo.snapshot()
    env = team.env(team.admin, PYTHONPATH=str(REPO))

    def run_on_tty(answer: bytes) -> tuple[int, str, str]:
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "sopsflow", "updatekeys"], cwd=repo.root, env=env,
                                stdin=slave, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        seen = b""
        answered = False
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(master, answer)
                answered = True
        stdout = proc.stdout.read().decode() if proc.stdout else ""
        code = proc.wait(timeout=60)
        os.close(master)
        return code, stdout, seen.decode(errors="replace")

    code, stdout, terminal = run_on_tty(b"n\n")
    assert code == 0 and "Update 15 file(s)? [y/N]" in terminal and "No file was changed." in stdout
    assert repo.snapshot() == before
    code, stdout, terminal = run_on_tty(b"y\n")
    assert code == 0, stdout + terminal
    assert "updating [" in terminal and "15/15" in terminal
    assert "Updated 15 file(s)" in stdout
    quiet = run_sopsflow(["updatekeys", "-y", "--rotate", "apps"], env=team.env(team.admin), cwd=repo.root)
    assert quiet.returncode == 0 and quiet.stderr == b""
