"""Test repositories for the updatekeys / recipients tests.

A repository holds 60 SOPS files (12 in each of the five formats) under four
directories, each with its own creation rule: a YAML list of recipients
(with owner comments), a comma string, two key groups with a Shamir
threshold, and a folded ``>-`` string. The files are encrypted by the real
sops 3.11 binary (once per session; tests copy the template).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .conftest import base_env, run_sops

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}

DIRS = ("clusters/prod", "clusters/staging", "shared", "apps")
FORMATS = ("yaml", "json", "env", "ini", "pem")  # .pem -> the binary store
PER_DIR_AND_FORMAT = 3  # 4 dirs x 5 formats x 3 = 60 files

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class AgeId:
    name: str
    identity: str
    recipient: str


def new_age_id(name: str) -> AgeId:
    from pyrage import x25519

    ident = x25519.Identity.generate()
    return AgeId(name, str(ident), str(ident.to_public()))


def write_key_file(path: Path, ids: Iterable[AgeId]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"# {i.name}\n# public key: {i.recipient}\n{i.identity}\n" for i in ids))
    path.chmod(0o600)
    return path


@dataclass
class Team:
    """The age identities of the test repository and one key file per person."""

    admin: AgeId
    prod: AgeId
    staging: AgeId
    ops: AgeId
    dev: AgeId
    newcomer: AgeId
    key_dir: Path

    @classmethod
    def create(cls, key_dir: Path) -> Team:
        names = ("admin", "prod", "staging", "ops", "dev", "newcomer")
        admin, prod, staging, ops, dev, newcomer = (new_age_id(n) for n in names)
        team = cls(admin, prod, staging, ops, dev, newcomer, key_dir=key_dir)
        for ident in team.everyone():
            write_key_file(team.key_file(ident), [ident])
        write_key_file(key_dir / "all.txt", team.everyone())
        return team

    def everyone(self) -> list[AgeId]:
        return [self.admin, self.prod, self.staging, self.ops, self.dev, self.newcomer]

    def key_file(self, ident: AgeId) -> Path:
        return self.key_dir / f"{ident.name}.txt"

    def env(self, *ids: AgeId, **extra: str) -> dict[str, str]:
        """Environment for sops/sopsflow holding exactly ``ids`` (all if none)."""
        key_file = self.key_dir / "all.txt" if not ids else self.key_dir / ("+".join(i.name for i in ids) + ".txt")
        if ids and not key_file.exists():
            write_key_file(key_file, ids)
        return base_env(SOPS_AGE_KEY_FILE=str(key_file), **extra)


def sops_yaml(team: Team, *, prod: Sequence[AgeId] | None = None, staging: Sequence[AgeId] | None = None,
              shared: tuple[Sequence[AgeId], Sequence[AgeId]] | None = None,
              apps: Sequence[AgeId] | None = None, shared_threshold: int = 2,
              shared_flat: Sequence[AgeId] | None = None) -> str:
    """The repository's ``.sops.yaml`` in its four styles."""
    prod = prod if prod is not None else [team.admin, team.prod]
    staging = staging if staging is not None else [team.admin, team.staging]
    shared = shared if shared is not None else ([team.admin], [team.ops])
    apps = apps if apps is not None else [team.admin, team.dev]
    prod_lines = "".join(f"      - {i.recipient}  # {i.name}\n" for i in prod)
    group_lines = "".join(
        "      - age:\n" + "".join(f"          - {i.recipient}  # {i.name}\n" for i in g) for g in shared
    )
    apps_lines = ",\n".join(f"      {i.recipient}" for i in apps)
    shared_rule = (
        f"    shamir_threshold: {shared_threshold}\n    key_groups:\n{group_lines}"
        if shared_flat is None
        else f"    age: {','.join(i.recipient for i in shared_flat)}\n"
    )
    return (
        "# Secrets of the test repository.\n"
        "creation_rules:\n"
        "  # production: admins and the prod deployer\n"
        "  - path_regex: ^clusters/prod/\n"
        "    age:\n"
        f"{prod_lines}"
        "  - path_regex: ^clusters/staging/\n"
        f"    age: {','.join(i.recipient for i in staging)}\n"
        "  # two groups: admin AND ops are both needed\n"
        "  - path_regex: ^shared/\n"
        f"{shared_rule}"
        "  - path_regex: ^apps/\n"
        "    age: >-\n"
        f"{apps_lines}\n"
    )


def plaintext(fmt: str, n: int, where: str) -> bytes:
    tag = f"{where.replace('/', '-')}-{n}"
    if fmt == "yaml":
        return (
            f"# {tag}\ndata:\n    password: pw-{tag}\n    user: user{n}\nlist:\n    - a{n}\n    - {n}\n"
            f"enabled: true\nratio: {n}.5\nnote_unencrypted: visible\n"
        ).encode()
    if fmt == "json":
        return f'{{"password": "pw-{tag}", "nested": {{"port": {n}, "tags": ["x", "y"]}}, "on": true}}'.encode()
    if fmt == "env":
        return f"# {tag}\nPASSWORD=pw-{tag}\nTOKEN=t{n}=x\n".encode()
    if fmt == "ini":
        return f"[db]\npassword = pw-{tag}\nuser = u{n}\n\n[api]\ntoken = tok{n}\n".encode()
    return f"-----BEGIN SECRET-----\n{tag}\nbinary\x01\x02 data {n}\n-----END SECRET-----\n".encode("latin-1")


def file_names() -> list[str]:
    return [f"{d}/secret-{n}.{fmt}" for d in DIRS for fmt in FORMATS for n in range(PER_DIR_AND_FORMAT)]


def parallel(func: Callable[[_T], _R], items: Sequence[_T], workers: int = 8) -> list[_R]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items))


def git(root: Path, *args: str) -> str:
    env = base_env(**GIT_ENV)
    env["HOME"] = str(root.parent)
    done = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode()


def commit_all(root: Path, message: str = "change") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)


@dataclass
class UpdateRepo:
    root: Path
    team: Team
    files: list[str]  # the 60 SOPS files, repo-relative
    plain: dict[str, bytes] = field(default_factory=dict)  # `sops decrypt` output of each file

    def path(self, rel: str) -> Path:
        return self.root / rel

    def snapshot(self) -> dict[str, bytes]:
        return {rel: self.path(rel).read_bytes() for rel in self.files}

    def in_dir(self, prefix: str) -> list[str]:
        return [f for f in self.files if f.startswith(prefix + "/")]

    def write_config(self, text: str) -> None:
        self.path(".sops.yaml").write_text(text)

    def copy_to(self, root: Path) -> UpdateRepo:
        shutil.copytree(self.root, root, symlinks=True)
        return UpdateRepo(root, self.team, list(self.files), dict(self.plain))


def build_template(root: Path, team: Team) -> UpdateRepo:
    """The 60-file repository, encrypted with the real sops, committed with git."""
    root.mkdir(parents=True)
    repo = UpdateRepo(root, team, file_names())
    repo.write_config(sops_yaml(team))
    for rel in repo.files:
        fmt = rel.rsplit(".", 1)[1]
        target = repo.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(plaintext(fmt, int(rel.rsplit("-", 1)[1].split(".")[0]), rel.rsplit("/", 1)[0]))
    env = team.env()

    def encrypt(rel: str) -> None:
        done = run_sops(["encrypt", "-i", rel], env=env, cwd=root)
        assert done.returncode == 0, (rel, done.stderr.decode())

    parallel(encrypt, repo.files)
    repo.plain = dict(zip(repo.files, sops_decrypt_all(repo, repo.files, env), strict=True))
    # Files that are no SOPS files: a README (a rule-less path) and a plain
    # file under a rule's directory, which updatekeys must skip.
    (root / "README.md").write_text("# test repository\n")
    (root / "apps" / "notes.txt").write_text("not a secret, not encrypted\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "commit.gpgsign", "false")
    commit_all(root, "initial")
    return repo


def sops_decrypt_all(repo: UpdateRepo, rels: Sequence[str], env: Mapping[str, str]) -> list[bytes]:
    """``sops decrypt`` of each file (in parallel); fails on any error."""

    def one(rel: str) -> bytes:
        done = run_sops(["decrypt", rel], env=dict(env), cwd=repo.root)
        assert done.returncode == 0, (rel, done.returncode, done.stderr.decode(errors="replace"))
        return done.stdout

    return parallel(one, list(rels))


def sops_decrypt_codes(repo: UpdateRepo, rels: Sequence[str], env: Mapping[str, str]) -> list[int]:
    def one(rel: str) -> int:
        return run_sops(["decrypt", rel], env=dict(env), cwd=repo.root).returncode

    return parallel(one, list(rels))


def metadata_of(path: Path) -> Any:
    """The file's Metadata, read by sopsflow without any key."""
    from sopsflow.operations import load_metadata
    from sopsflow.stores import store_for_path

    return load_metadata(store_for_path(str(path)), path.read_bytes())[1]


def recipients_of(path: Path) -> list[list[str]]:
    return [[k.identity() for k in group] for group in metadata_of(path).key_groups]


def data_key_of(path: Path, key_file: Path, monkeypatch: Any) -> bytes:
    """The file's data key, unwrapped in-process with the identities of ``key_file``."""
    from sopsflow.keys.groups import get_data_key

    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    return get_data_key(metadata_of(path))


def values_part(path: Path) -> Any:
    """The encrypted document without its metadata (values, comments, IVs)."""
    from sopsflow.stores import store_for_path

    return store_for_path(str(path)).load_encrypted(path.read_bytes())[0]


_TEMPLATES: dict[str, UpdateRepo] = {}


def template_repo(tmp_path_factory: Any) -> UpdateRepo:
    """The session's template repository (built on first use; copy before changing it)."""
    base = str(tmp_path_factory.getbasetemp())
    if base not in _TEMPLATES:
        keys = tmp_path_factory.mktemp("update-keys")
        team = Team.create(keys)
        _TEMPLATES[base] = build_template(tmp_path_factory.mktemp("update-template") / "repo", team)
    return _TEMPLATES[base]


def encrypt_with_sopsflow(path: Path, plain: bytes, groups: Sequence[Sequence[AgeId]], threshold: int = 0) -> None:
    """Encrypt ``plain`` into ``path`` in-process for age key groups (fast, for unit tests)."""
    from sopsflow.keys.age import AgeKey
    from sopsflow.operations import encrypt_new
    from sopsflow.stores import store_for_path

    store = store_for_path(str(path))
    key_groups: list[list[Any]] = [[AgeKey(i.recipient) for i in g] for g in groups]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encrypt_new(store, store.load_plain(plain), key_groups, shamir_threshold=threshold))


def decrypt_with(path: Path, key_file: Path, monkeypatch: Any) -> Any:
    """sopsflow's in-process decryption of ``path`` with only ``key_file``'s identities."""
    from sopsflow.operations import decrypt_document
    from sopsflow.stores import store_for_path

    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    return decrypt_document(store_for_path(str(path)), path.read_bytes())
