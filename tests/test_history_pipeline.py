"""The pipelined history scan (the walk feeding forked judges, blobs asked
for in batches) reports exactly what the straightforward scan reports: every
commit listed with ``git ls-tree``, every file in it judged with
:func:`audit_file` under that commit's own ``.sops.yaml`` and ``.sopsflow.yaml``,
introduced-in and removed-in found by comparing each commit with its parents."""

from __future__ import annotations

from pathlib import Path

import pytest

from sopsflow.config.decoder import parse_config
from sopsflow.gitops.check import audit_file
from sopsflow.gitops.history import EXPOSURE_KINDS, HistoryOptions, scan
from sopsflow.gitops.settings import AuditSettings, parse_settings
from tests.verifyfixtures import commit_all, git, make_repo, sops_encrypt, sops_yaml, write

TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
RULES = sops_yaml("^secrets/")


@pytest.fixture(scope="module")
def every_leak(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each leak kind (plaintext at a rule path, a detector hit, a hand-added
    value in a SOPS file, a SOPS file committed decrypted), each in YAML,
    dotenv and JSON; a rule added later over an old file; a branch merged; a
    tag on a commit no branch holds; a symbolic link at a rule path."""
    root = tmp_path_factory.mktemp("pipeline")
    files: dict[str, str | bytes] = {".sops.yaml": RULES, "README.md": "hello\n"}
    plain = {"yaml": "password: pw-{n}-Qm4Zt\n", "env": "PASSWORD=pw-{n}-Qm4Zt\n", "json": '{{"password": "pw-{n}-Qm4Zt"}}\n'}
    encrypted = {}
    for ext, text in plain.items():
        encrypted[ext] = sops_encrypt(f"secrets/app.{ext}", text.format(n=0))
        files[f"secrets/app.{ext}"] = encrypted[ext]
    repo = make_repo(root / "repo", files)
    for n, (ext, text) in enumerate(plain.items(), 1):
        write(repo, {f"secrets/leak{n}.{ext}": text.format(n=n)})  # plaintext at a rule path
        commit_all(repo, f"leak {ext}")
        write(repo, {f"secrets/app.{ext}": text.format(n=10 + n)})  # decrypted and committed
        commit_all(repo, f"decrypted {ext}")
        write(repo, {f"secrets/app.{ext}": encrypted[ext]})
        commit_all(repo, f"re-encrypted {ext}")
    write(repo, {"secrets/app.yaml": b"extra: hand-added-Kp3Vx\n" + encrypted["yaml"]})  # hand-added value
    commit_all(repo, "hand edit")
    write(repo, {"app/settings.py": f'TOKEN = "{TOKEN}"\n'})  # a detector hit outside the rules
    commit_all(repo, "token")
    write(repo, {"conf/app.yaml": "password: old-Lq9Wc\n"})
    commit_all(repo, "conf")
    git(repo, "checkout", "-q", "-b", "topic")
    write(repo, {"secrets/topic.env": "TOKEN=topic-Hs5Rn\n"})
    commit_all(repo, "topic leak")
    git(repo, "rm", "-q", "app/settings.py")
    commit_all(repo, "token gone")
    git(repo, "checkout", "-q", "main")
    write(repo, {".sops.yaml": sops_yaml("^secrets/", "^conf/")})  # the old conf file is now at a rule path
    commit_all(repo, "cover conf/")
    git(repo, "merge", "-q", "--no-ff", "--no-edit", "topic")
    (repo / "secrets" / "link.yaml").symlink_to("../README.md")
    commit_all(repo, "symlink")
    git(repo, "checkout", "-q", "--detach")
    write(repo, {"secrets/tagged.yaml": "password: tagged-Bn2Xe\n"})
    commit_all(repo, "tagged only")
    git(repo, "tag", "v-leak")
    git(repo, "checkout", "-q", "main")
    return repo


def _tree(repo: Path, commit: str) -> dict[tuple[str, str], str]:
    out = {}
    for line in git(repo, "ls-tree", "-r", "--full-tree", commit).splitlines():
        meta, path = line.split("\t", 1)
        mode, _, blob = meta.split()
        out[(path, blob)] = mode
    return out


def _blob(repo: Path, blob: str) -> bytes:
    import subprocess

    return subprocess.run(["git", "cat-file", "blob", blob], cwd=repo, check=True, capture_output=True).stdout


def straightforward(repo: Path) -> list[tuple[object, ...]]:
    """Every commit, every file, judged one by one."""
    tips = {}
    for line in git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads", "refs/tags").splitlines():
        name, oid = line.split()
        tips[name] = git(repo, "rev-parse", f"{oid}^{{commit}}").strip()
    tips["HEAD"] = git(repo, "rev-parse", "HEAD").strip()
    rows = [line.split() for line in git(repo, "rev-list", "--parents", *tips.values()).splitlines()]
    trees = {row[0]: _tree(repo, row[0]) for row in rows}
    found: dict[tuple[str, str], set[tuple[object, ...]]] = {}
    for tree in trees.values():
        blobs = {path: blob for path, blob in tree}
        config = parse_config(_blob(repo, blobs[".sops.yaml"]), str(repo / ".sops.yaml"), strict=False)
        settings = (parse_settings(_blob(repo, blobs[".sopsflow.yaml"]), ".sopsflow.yaml")
                    if ".sopsflow.yaml" in blobs else AuditSettings())
        for (path, blob), mode in tree.items():
            audit = audit_file(path, _blob(repo, blob), config=config, settings=settings,
                               is_symlink=mode == "120000", repo_root=repo)
            for f in audit.findings:
                if f.kind in EXPOSURE_KINDS:
                    found.setdefault((path, blob), set()).add((f.kind, f.severity, f.message, f.line))
    reachable = {name: set(git(repo, "rev-list", oid).split()) for name, oid in tips.items()}
    out = []
    for (path, blob), findings in found.items():
        introduced, removed = [], []
        for row in rows:
            here = (path, blob) in trees[row[0]]
            before = [(path, blob) in trees[p] for p in row[1:]]
            if here and not any(before):
                introduced.append(row[0])
            if not here and any(before):
                removed.append(row[0])
        refs = sorted(name for name, commits in reachable.items() if commits & set(introduced))
        out.append((path, blob, sorted(findings), sorted(introduced), sorted(removed), refs,
                    (path, blob) in trees[tips["HEAD"]]))
    return sorted(out)


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_pipelined_scan_reports_what_the_straightforward_one_does(every_leak: Path, jobs: int) -> None:
    expected = straightforward(every_leak)
    kinds = {kind for row in expected for kind, *_ in row[2]}  # type: ignore[attr-defined]
    assert kinds == set(EXPOSURE_KINDS)  # the repository holds every leak kind
    result = scan(every_leak, HistoryOptions(jobs=jobs))
    got = sorted((e.path, e.blob, sorted({(w.kind, w.severity, w.message, w.line) for w in e.findings}),
                  sorted(e.introduced_in), sorted(e.removed_in), e.refs, e.in_head) for e in result.exposures)
    assert got == expected


def test_a_worker_that_dies_has_its_share_judged_again(every_leak: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The only stand-in here: the workers are made to die (a real exit of the
    forked process) on their first batch; this process judges their share."""
    import os

    from sopsflow.gitops import history

    parent = os.getpid()
    judge_batch = history._Judging.batch

    def dies_in_a_worker(self: history._Judging, jobs: list[history._Job]) -> None:
        if os.getpid() != parent:
            os._exit(3)
        judge_batch(self, jobs)

    monkeypatch.setattr(history._Judging, "batch", dies_in_a_worker)
    expected = scan(every_leak, HistoryOptions(jobs=1))
    result = scan(every_leak, HistoryOptions(jobs=2))
    assert result.exposures and result.exposures == expected.exposures
