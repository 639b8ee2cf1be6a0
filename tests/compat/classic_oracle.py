"""Running one command line through the real sops and through sopsflow called
as ``sops``, and comparing what each produced.

Deterministic output (decrypt, --extract, errors) is compared byte for byte.
Encrypt-side output (-e, -r, --set, edit) differs in its random parts, so each
tool's result is decrypted by the other tool and the plaintexts compared, with
which values are encrypted and the metadata's keys and options.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..conftest import REPO, sops_binary


def sops_named_sopsflow(directory: Path) -> Path:
    """An executable called ``sops`` that runs this checkout's sopsflow (argv[0] is ``sops``)."""
    directory.mkdir(parents=True, exist_ok=True)
    launcher = directory / "sops"
    launcher.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
        "from sopsflow.main import run\nrun()\n"
    )
    launcher.chmod(0o755)
    return launcher


@dataclass
class Outcome:
    code: int
    stdout: bytes
    stderr: bytes
    workdir: Path


def run_in(program: str, argv: list[str], workdir: Path, env: dict[str, str], stdin: bytes | None) -> Outcome:
    done = subprocess.run([program, *argv], cwd=workdir, env=env, input=stdin if stdin is not None else b"",
                          capture_output=True, timeout=120, check=False)
    return Outcome(done.returncode, done.stdout, done.stderr, workdir)


def has_metadata(data: bytes) -> bool:
    return b"sops" in data and (b"mac" in data and b"ENC[" in data)


def decrypt_with(program: str, data: bytes, fmt: str, env: dict[str, str], scratch: Path) -> bytes:
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"cross.{fmt}"
    path.write_bytes(data)
    argv = [program, "decrypt", "--input-type", fmt, "--output-type", fmt, str(path)]
    env = {k: v for k, v in env.items() if k != "SOPS_CONFIG"}  # a relative path, for the case's directory
    done = subprocess.run(argv, env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, (program, done.stderr.decode(errors="replace"))
    return done.stdout


def load(data: bytes, fmt: str) -> Any:
    if fmt == "json":
        return json.loads(data)
    if fmt == "yaml":
        return yaml.safe_load(data)
    if fmt == "dotenv":
        return dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
    raise AssertionError(f"no loader for {fmt}")


def encrypted_paths(tree: Any, prefix: tuple[Any, ...] = ()) -> set[tuple[Any, ...]]:
    found: set[tuple[Any, ...]] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not prefix and key == "sops":
                continue
            found |= encrypted_paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found |= encrypted_paths(value, (*prefix, index))
    elif isinstance(tree, str) and tree.startswith("ENC["):
        found.add(prefix)
    return found


def _key_id(entry: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in entry.items() if k not in ("enc", "created_at")}, sort_keys=True)


def metadata_summary(tree: Any, fmt: str) -> dict[str, Any]:
    """The metadata's keys and options, without what is random or time-dependent."""
    if fmt == "dotenv":
        meta = {k: v for k, v in tree.items() if k.startswith("sops_")}
        return {k: v for k, v in meta.items() if not k.endswith(("_enc", "_created_at", "lastmodified", "mac"))}
    meta = dict(tree["sops"])
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key in ("lastmodified", "mac"):
            continue
        if key == "key_groups":
            out[key] = [sorted((t, _key_id(e)) for t, entries in g.items() for e in entries) for g in value]
        elif isinstance(value, list):
            out[key] = sorted(_key_id(e) for e in value)
        else:
            out[key] = value
    return out


def compare_encrypted(ours: bytes, theirs: bytes, fmt: str, sopsflow: str, env: dict[str, str],
                      scratch: Path) -> None:
    """Each tool decrypts the other's output; same plaintext, same encrypted
    values, same metadata keys and options."""
    assert has_metadata(ours) and has_metadata(theirs), (ours[:200], theirs[:200])
    plain_ours = decrypt_with(sops_binary(), ours, fmt, env, scratch / "a")
    plain_theirs = decrypt_with(sopsflow, theirs, fmt, env, scratch / "b")
    assert plain_ours == plain_theirs
    doc_ours, doc_theirs = load(ours, fmt), load(theirs, fmt)
    if fmt != "dotenv":
        assert encrypted_paths(doc_ours) == encrypted_paths(doc_theirs)
    else:
        enc = {k for k, v in doc_ours.items() if v.startswith("ENC[") and not k.startswith("sops_")}
        assert enc == {k for k, v in doc_theirs.items() if v.startswith("ENC[") and not k.startswith("sops_")}
    assert metadata_summary(doc_ours, fmt) == metadata_summary(doc_theirs, fmt)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst
