"""sopsflow.gitops.updatekeys in-process: planning, re-wrapping, rotation, failures, reports."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from sopsflow import errors
from sopsflow.errors import SopsError
from sopsflow.gitops import updatekeys as updater
from sopsflow.keys.base import KeyFailure

from .keys.fixtures import Moto, kms_env, moto_server  # noqa: F401 - fixtures, used by name
from .updatefixtures import (
    AgeId,
    Team,
    decrypt_with,
    encrypt_with_sopsflow,
    metadata_of,
    recipients_of,
    values_part,
)

YAML_DOC = b"data:\n    password: s3cret\n    user: admin\nlist:\n    - one\n    - 2\n# note\nplain_unencrypted: x\n"


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return Team.create(tmp_path / "keys")


def _config(root: Path, text: str):  # type: ignore[no-untyped-def]
    from sopsflow.config.decoder import load_config

    (root / ".sops.yaml").write_text(text)
    return load_config(root / ".sops.yaml")


def _rule(regex: str, ids: list[AgeId]) -> str:
    lines = "".join(f"      - {i.recipient}  # {i.name}\n" for i in ids)
    return f"  - path_regex: {regex}\n    age:\n{lines}"


def _store_for(path: str):  # type: ignore[no-untyped-def]
    from sopsflow.stores import store_for_path

    return store_for_path(path)


def _plan(path: Path, config, rotate: str = updater.ROTATE_AUTO, explicit: bool = True) -> updater.FilePlan:  # type: ignore[no-untyped-def]
    return updater.plan_file(path, path.name, config=config, store_for=_store_for, rotate=rotate, explicit=explicit)


@pytest.fixture
def repo(tmp_path: Path, team: Team) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    encrypt_with_sopsflow(root / "add.yaml", YAML_DOC, [[team.admin]])
    encrypt_with_sopsflow(root / "remove.yaml", YAML_DOC, [[team.admin, team.prod]])
    encrypt_with_sopsflow(root / "same.json", b'{"a": "b", "n": [1, {"k": "v"}]}', [[team.admin]])
    (root / "plain.yaml").write_text("not: encrypted\n")
    encrypt_with_sopsflow(root / "norule.yaml", YAML_DOC, [[team.admin]])
    return root


def _repo_config(root: Path, team: Team):  # type: ignore[no-untyped-def]
    return _config(root, "creation_rules:\n"
                   + _rule(r"^add\.yaml$", [team.admin, team.newcomer])
                   + _rule(r"^remove\.yaml$", [team.admin])
                   + _rule(r"^same\.json$", [team.admin])
                   + _rule(r"^plain\.yaml$", [team.admin]))


def test_plan_per_file(repo: Path, team: Team) -> None:
    config = _repo_config(repo, team)
    add = _plan(repo / "add.yaml", config)
    assert add.status == updater.STATUS_UPDATE and not add.rotate
    assert [(c.index, c.added, c.removed) for c in add.changes] == [(0, [team.newcomer.recipient], [])]
    assert add.rule_index == 0 and add.secret_paths == []

    remove = _plan(repo / "remove.yaml", config)
    assert remove.status == updater.STATUS_UPDATE and remove.rotate
    assert remove.removed == [team.prod.recipient] and remove.added == []
    assert remove.secret_paths == ['["data"]["password"]', '["data"]["user"]', '["list"][0]', '["list"][1]']

    assert _plan(repo / "same.json", config).status == updater.STATUS_CURRENT
    plain = _plan(repo / "plain.yaml", config)
    assert plain.status == updater.STATUS_ERROR and "not a SOPS file" in plain.reason
    assert _plan(repo / "plain.yaml", config, explicit=False).status == updater.STATUS_SKIPPED
    norule = _plan(repo / "norule.yaml", config)
    assert norule.status == updater.STATUS_ERROR and "no creation rule" in norule.reason
    assert _plan(repo / "norule.yaml", config, explicit=False).status == updater.STATUS_SKIPPED


def test_rotate_modes(repo: Path, team: Team) -> None:
    config = _repo_config(repo, team)
    assert not _plan(repo / "remove.yaml", config, rotate=updater.ROTATE_NEVER).rotate
    forced = _plan(repo / "same.json", config, rotate=updater.ROTATE_ALWAYS)
    assert forced.status == updater.STATUS_UPDATE and forced.rotate
    assert _plan(repo / "add.yaml", config, rotate=updater.ROTATE_ALWAYS).rotate


def test_rewrap_keeps_values_mac_and_data_key(repo: Path, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _repo_config(repo, team)
    path = repo / "add.yaml"
    before_meta = metadata_of(path)
    before_values = values_part(path)
    before_key = decrypt_with(path, team.key_file(team.admin), monkeypatch).data_key
    result = updater.apply_file(_plan(path, config))
    assert result.ok and not result.rotated, result.reason
    after = metadata_of(path)
    assert recipients_of(path) == [[team.admin.recipient, team.newcomer.recipient]]
    assert values_part(path) == before_values
    assert (after.mac, after.lastmodified, after.version) == (before_meta.mac, before_meta.lastmodified, before_meta.version)
    doc = decrypt_with(path, team.key_file(team.newcomer), monkeypatch)  # the new key alone
    assert doc.data_key == before_key
    assert doc.branches[0].get("data").get("password") == "s3cret"


def test_rotation_on_removal(repo: Path, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _repo_config(repo, team)
    path = repo / "remove.yaml"
    before = decrypt_with(path, team.key_file(team.prod), monkeypatch)
    ivs_before = _ivs(path)
    result = updater.apply_file(_plan(path, config))
    assert result.ok and result.rotated, result.reason
    after = decrypt_with(path, team.key_file(team.admin), monkeypatch)
    assert after.data_key != before.data_key
    assert after.branches == before.branches
    assert _ivs(path) == ivs_before  # IVs kept, ciphertexts new
    assert values_part(path) != before.encrypted_branches
    with pytest.raises(SopsError) as info:
        decrypt_with(path, team.key_file(team.prod), monkeypatch)
    assert info.value.code == errors.COULD_NOT_RETRIEVE_KEY


def _ivs(path: Path) -> list[str]:
    import re

    return re.findall(r"iv:([^,]+),", path.read_text().split("\nsops:")[0])


def test_missing_identity_is_reported_and_file_untouched(repo: Path, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _repo_config(repo, team)
    path = repo / "remove.yaml"
    before = path.read_bytes()
    plan = _plan(path, config)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(team.key_file(team.dev)))
    labels = {team.admin.recipient: "admin", team.prod.recipient: "prod"}
    result = updater.apply_file(plan, labels=labels)
    assert not result.ok and result.code == errors.COULD_NOT_RETRIEVE_KEY
    assert result.reason == (
        f"no identity for any of: {team.admin.recipient}, {team.prod.recipient}; held by: admin, prod"
    )
    assert path.read_bytes() == before


def test_file_changed_after_plan_is_not_overwritten(repo: Path, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _repo_config(repo, team)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(team.key_file(team.admin)))
    path = repo / "add.yaml"
    plan = _plan(path, config)
    encrypt_with_sopsflow(path, b"other: value\n", [[team.admin]])
    changed = path.read_bytes()
    result = updater.apply_file(plan)
    assert not result.ok and "changed after the plan" in result.reason
    assert path.read_bytes() == changed


def test_wrong_data_key_is_never_rewrapped(repo: Path, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose wrapped key does not belong to it (here: another file's key
    entries) fails the key check and stays as it is."""
    from sopsflow.operations import load_metadata
    from sopsflow.stores import store_for_path

    config = _repo_config(repo, team)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(team.key_file(team.admin)))
    path, donor = repo / "add.yaml", repo / "norule.yaml"
    store = store_for_path(str(path))
    branches, meta = load_metadata(store, path.read_bytes())
    meta.key_groups = load_metadata(store, donor.read_bytes())[1].key_groups
    path.write_bytes(store.dump_encrypted(branches, meta.to_dict()))
    broken = path.read_bytes()
    result = updater.apply_file(_plan(path, config))
    assert not result.ok and result.code == errors.MAC_MISMATCH
    assert path.read_bytes() == broken


def test_threshold_capped_at_new_group_count(tmp_path: Path, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    encrypt_with_sopsflow(tmp_path / "s.yaml", YAML_DOC, [[team.admin], [team.ops]], threshold=2)
    config = _config(tmp_path, "creation_rules:\n" + _rule("s", [team.admin]))
    plan = _plan(tmp_path / "s.yaml", config)
    assert (plan.threshold_before, plan.threshold_after) == (2, 1)
    assert plan.removed == [team.ops.recipient] and plan.rotate
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "keys" / "all.txt"))
    assert updater.apply_file(plan).ok
    meta = metadata_of(tmp_path / "s.yaml")
    assert meta.shamir_threshold == 1 and len(meta.key_groups) == 1
    assert decrypt_with(tmp_path / "s.yaml", team.key_file(team.admin), monkeypatch).branches[0].get("data")


def test_threshold_only_change_is_an_update(tmp_path: Path, team: Team) -> None:
    # The file records threshold 3 for two groups (sops would cap it): same recipients, new threshold.
    from sopsflow.operations import load_metadata
    from sopsflow.stores import store_for_path

    path = tmp_path / "s.yaml"
    encrypt_with_sopsflow(path, YAML_DOC, [[team.admin], [team.ops]], threshold=2)
    store = store_for_path(str(path))
    branches, meta = load_metadata(store, path.read_bytes())
    meta.shamir_threshold = 3
    path.write_bytes(store.dump_encrypted(branches, meta.to_dict()))
    group_rule = (
        "creation_rules:\n  - path_regex: s\n    key_groups:\n"
        f"      - age: [{team.admin.recipient}]\n      - age: [{team.ops.recipient}]\n"
    )
    plan = _plan(path, _config(tmp_path, group_rule))
    assert plan.status == updater.STATUS_UPDATE and plan.changes == [] and not plan.rotate
    assert "shamir_threshold: 3 -> 2" in updater.format_plan([plan])


def test_encrypted_paths_formats() -> None:
    from sopsflow.tree import Comment, TreeMap

    enc = "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]"
    doc = TreeMap([("a", TreeMap([("b", enc), Comment(enc)])), ("l", ["plain", enc, "ENC[AES256_GCM,data:c,iv:i,tag:t,type:comment]", enc]),
                   ("p", "plain")])
    second = TreeMap([("k", enc)])
    assert updater.encrypted_paths([doc, second]) == ['["a"]["b"]', '["l"][1]', '["l"][2]', 'document 2: ["k"]']


def test_exposure_report_and_plan_text(repo: Path, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _repo_config(repo, team)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(team.key_file(team.admin)))
    plans = [_plan(repo / n, config) for n in ("add.yaml", "remove.yaml", "same.json", "plain.yaml")]
    pending = updater.exposure_report(plans)
    assert [f["path"] for f in pending["files"]] == ["remove.yaml"]
    assert pending["files"][0]["status"] == "pending" and not pending["files"][0]["data_key_rotated"]
    results = [updater.apply_file(p) for p in plans if p.status == updater.STATUS_UPDATE]
    report = updater.exposure_report(plans, results)
    assert report["removed_recipients"] == [team.prod.recipient]
    entry = report["files"][0]
    assert entry["status"] == "updated" and entry["data_key_rotated"] and entry["keys"][0] == '["data"]["password"]'
    assert "git history" in report["advice"]
    text = updater.format_plan(plans)
    assert f"add.yaml  [rule 0]  re-wrap data key\n    group 1: +{team.newcomer.recipient}\n" in text
    assert f"remove.yaml  [rule 1]  rotate data key\n    group 1: -{team.prod.recipient}\n" in text
    assert "plain.yaml  ERROR: not a SOPS file" in text and "same.json" not in text
    assert updater.plan_summary(plans) == "Plan: 2 to update (1 with a new data key), 1 up to date, 1 with errors\n"


def test_remove_stray_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "a.yaml"
    target.write_text("x")
    mine = tmp_path / ".a.yaml.abcd1234.sopsflow-tmp"
    other_file = tmp_path / ".a.yaml.b.yaml.abcd1234.sopsflow-tmp"  # belongs to "a.yaml.b.yaml"
    wrong_len = tmp_path / ".a.yaml.abc.sopsflow-tmp"
    for p in (mine, other_file, wrong_len):
        p.write_text("partial")
    assert updater.remove_stray_temp_files(target) == [mine]
    assert not mine.exists() and other_file.exists() and wrong_len.exists()
    assert updater.is_temp_file(mine.name) and not updater.is_temp_file("a.yaml")


def test_atomic_write_temp_name_matches_cleanup_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cleanup pattern must match the temp names fileio really creates."""
    import os

    from sopsflow import fileio

    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: object) -> None:
        seen.append(os.path.basename(src))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(fileio.os, "replace", spy)
    fileio.atomic_write(tmp_path / "a.yaml", b"new")
    (tmp_path / seen[0]).write_text("left by a kill")
    # Created by this process, which is alive: another writer's work in progress.
    assert updater.remove_stray_temp_files(tmp_path / "a.yaml") == []
    # The same name from a process that has ended is a stray.
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    name = re.sub(r"\.p\d+\.", f".p{int(ended.stdout)}.", seen[0])
    assert name != seen[0]
    os.rename(tmp_path / seen[0], tmp_path / name)
    assert updater.remove_stray_temp_files(tmp_path / "a.yaml") == [tmp_path / name]


def test_run_parallel_order_progress_and_concurrency() -> None:
    calls: list[tuple[int, int]] = []
    active, peak = [0], [0]
    lock = threading.Lock()
    # The first four items meet here: that only happens when four run at once. The timeout
    # only turns a missing worker into a failure (BrokenBarrierError) instead of a hang.
    meet = threading.Barrier(4, timeout=120)

    def work(n: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        if n < 4:
            meet.wait()
        with lock:
            active[0] -= 1
        return n * n

    out = updater.run_parallel(work, list(range(20)), jobs=4, progress=lambda d, t: calls.append((d, t)))
    assert out == [n * n for n in range(20)]
    assert calls[-1] == (20, 20) and all(t == 20 for _, t in calls)
    assert peak[0] == 4
    assert updater.run_parallel(work, [5], jobs=1) == [25]


def test_run_parallel_propagates_errors() -> None:
    def boom(n: int) -> int:
        if n == 5:
            raise ValueError("x")
        return n

    with pytest.raises(ValueError):
        updater.run_parallel(boom, list(range(10)), jobs=3)


def test_many_files_are_built_in_workers_and_written_together(tmp_path: Path, team: Team,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """apply_files (the confirmed, non -y path) and update_files (-y) over enough
    files to fork workers: every file updated, one failure reported, the rest kept."""
    from sopsflow import forkpool

    if not sys.platform.startswith("linux"):
        pytest.skip("forked workers are used on Linux only")
    assert forkpool.usable(), "on Linux the fork pool must be usable (is another thread running?)"
    root = tmp_path / "many"
    names = [f"f{n:02d}.{'yaml' if n % 2 else 'json'}" for n in range(40)]
    for n, name in enumerate(names):
        plain = b"a: 1\nb: two\n" if name.endswith("yaml") else b'{"a": 1, "b": "two"}'
        owner = team.prod if n == 7 else team.admin  # one file the admin cannot open
        encrypt_with_sopsflow(root / name, plain, [[owner]])
    config = _config(root, "creation_rules:\n" + _rule(r".*", [team.admin, team.newcomer]))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(team.key_file(team.admin)))
    forked: list[int] = []
    real_run = forkpool._run

    def spy(func, items, workers, progress):  # type: ignore[no-untyped-def]
        forked.append(workers)
        return real_run(func, items, workers, progress)

    monkeypatch.setattr(forkpool, "_run", spy)
    plans = [_plan(root / name, config) for name in names[:20]]
    results = updater.apply_files(plans, jobs=2)
    targets = [(root / name, name, False, None) for name in names[20:]]
    _, more = updater.update_files(targets, config=config, store_for=_store_for, jobs=2)
    assert forked == [2, 2]
    failed = [r.plan.display for r in [*results, *more] if not r.ok]
    assert failed == [names[7]]
    for name in names:
        if name != names[7]:
            assert recipients_of(root / name) == [[team.admin.recipient, team.newcomer.recipient]], name
    assert recipients_of(root / names[7]) == [[team.prod.recipient]]
    assert not list(root.glob(".*.sopsflow-tmp"))


def test_key_command_runs_only_when_a_key_is_needed_and_once(tmp_path: Path, team: Team,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """SOPS_AGE_KEY_CMD may prompt (a password manager): an up-to-date run must
    not start it, and an update of many files starts it once, not per worker."""
    from sopsflow.keys.age import clear_identity_cache

    root = tmp_path / "cmd"
    names = [f"f{n:02d}.json" for n in range(24)]
    for name in names:
        encrypt_with_sopsflow(root / name, b'{"a": "b"}', [[team.admin]])
    log = tmp_path / "calls.log"
    command = f"sh -c 'echo call >> {log}; cat {team.key_file(team.admin)}'"
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    monkeypatch.setenv("SOPS_AGE_KEY_CMD", command)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    targets = [(root / name, name, False, None) for name in names]

    clear_identity_cache()
    same = _config(root, "creation_rules:\n" + _rule(r".*", [team.admin]))
    plans, results = updater.update_files(targets, config=same, store_for=_store_for, jobs=2)
    assert results == [] and all(p.status == updater.STATUS_CURRENT for p in plans)
    assert not log.exists()

    clear_identity_cache()
    grown = _config(root, "creation_rules:\n" + _rule(r".*", [team.admin, team.newcomer]))
    _, results = updater.update_files(targets, config=grown, store_for=_store_for, jobs=2)
    assert len(results) == 24 and all(r.ok for r in results), [r.reason for r in results if not r.ok]
    assert log.read_text() == "call\n"


def test_passphrase_protected_identity_keeps_the_work_in_this_process(tmp_path: Path, team: Team,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An identity unlocked on first use would be asked for by every worker."""
    import pyrage

    from sopsflow.keys.age import clear_identity_cache

    locked = tmp_path / "locked.age"
    locked.write_bytes(pyrage.passphrase.encrypt(team.admin.identity.encode(), "secret"))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(locked))
    clear_identity_cache()
    assert updater._age_ready_for_workers(run_key_command=True) is False
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(team.key_file(team.admin)))
    clear_identity_cache()
    assert updater._age_ready_for_workers(run_key_command=True) is True


def test_wrong_data_key_is_never_rewrapped_without_a_mac(repo: Path, team: Team,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A file without a MAC proves its key by one value instead: another
    file's key entries fail that check, and the file stays as it is."""
    from sopsflow.operations import load_metadata
    from sopsflow.stores import store_for_path

    config = _repo_config(repo, team)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(team.key_file(team.admin)))
    path, donor = repo / "add.yaml", repo / "norule.yaml"
    store = store_for_path(str(path))
    branches, meta = load_metadata(store, path.read_bytes())
    meta.mac = ""
    path.write_bytes(store.dump_encrypted(branches, meta.to_dict()))
    # the check itself: with the file's own key entries, the MAC-less file updates
    control = repo / "control.yaml"
    control.write_bytes(path.read_bytes())
    control_config = _config(repo, "creation_rules:\n" + _rule(r"^control\.yaml$", [team.admin, team.newcomer]))
    assert updater.apply_file(_plan(control, control_config)).ok
    assert recipients_of(control) == [[team.admin.recipient, team.newcomer.recipient]]

    meta.key_groups = load_metadata(store, donor.read_bytes())[1].key_groups
    path.write_bytes(store.dump_encrypted(branches, meta.to_dict()))
    broken = path.read_bytes()
    result = updater.apply_file(_plan(path, config))
    assert not result.ok and result.code == errors.ERROR_DECRYPTING_TREE, result.reason
    assert path.read_bytes() == broken


# --- KMS entries whose role or encryption context the rule changes ----------------------


KMS_ROLE = "arn:aws:iam::123456789012:role/sops-tests"


def _kms_group_rule(arn: str, entry: str, ids: list[AgeId]) -> str:
    ages = "".join(f"          - {i.recipient}\n" for i in ids)
    return (f"creation_rules:\n  - path_regex: s\\.yaml$\n    key_groups:\n      - kms:\n          - arn: {arn}\n"
            f"{entry}        age:\n{ages}")


@pytest.mark.parametrize(
    ("before", "after", "rule_entry"),
    [
        pytest.param({}, {"role": KMS_ROLE}, f"            role: {KMS_ROLE}\n", id="role-added"),
        pytest.param({"role": KMS_ROLE}, {}, "", id="role-removed"),
        pytest.param({"context": {"app": "web"}}, {"context": {"app": "db"}},
                     "            context:\n              app: db\n", id="context-changed"),
        # Both contexts print as "k:v1,k2:v2", so the key's identity is the same:
        # only a comparison of the whole entry sees the change.
        pytest.param({"context": {"k": "v1,k2:v2"}}, {"context": {"k": "v1", "k2": "v2"}},
                     "            context:\n              k: v1\n              k2: v2\n", id="context-same-identity"),
    ],
)
def test_changed_kms_role_or_context_is_rewrapped(tmp_path: Path, team: Team, monkeypatch: pytest.MonkeyPatch,
                                                  kms_env: Moto,  # noqa: F811 - the fixture
                                                  before: dict[str, Any], after: dict[str, Any],
                                                  rule_entry: str) -> None:
    """updatekeys applies the rule's KMS role and encryption context: the entry
    is wrapped afresh through KMS with them, never kept with the old ones. The
    data key stays (no rotation), and the new wrap opens only as the rule says."""
    from sopsflow.keys.age import AgeKey
    from sopsflow.keys.kms import KmsKey
    from sopsflow.operations import encrypt_new
    from sopsflow.stores import store_for_path

    arn = kms_env.create_key()
    path = tmp_path / "s.yaml"
    store = store_for_path(str(path))
    path.write_bytes(encrypt_new(store, store.load_plain(YAML_DOC), [[KmsKey(arn, **before), AgeKey(team.admin.recipient)]]))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(team.key_file(team.admin)))
    data_key = decrypt_with(path, team.key_file(team.admin), monkeypatch).data_key
    # newcomer joins too, so that the file is updated even where the KMS identity is unchanged
    config = _config(tmp_path, _kms_group_rule(arn, rule_entry, [team.admin, team.newcomer]))

    result = updater.apply_file(_plan(path, config, rotate=updater.ROTATE_NEVER))
    assert result.ok and not result.rotated, result.reason
    (kms_entry,) = [k for k in metadata_of(path).key_groups[0] if k.type_name == "kms"]
    assert (kms_entry.role, kms_entry.context or {}) == (after.get("role", ""), after.get("context", {}))
    assert kms_entry.decrypt() == data_key
    stale = KmsKey(arn, **before, enc=kms_entry.enc)
    if before.get("context"):  # the old context no longer opens the wrap
        with pytest.raises(KeyFailure):
            stale.decrypt()
