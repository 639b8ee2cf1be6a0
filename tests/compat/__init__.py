"""End-to-end compatibility tests: sopsflow's command line against the real sops 3.11 binary.

Shared helpers: run both tools (several processes at once, so that a batch of
independent calls costs one process start-up instead of many), and reduce an
encrypted file to what must be identical between the two tools (the layout
and the plaintext lengths and types, not the random ciphertexts or the
metadata block).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..conftest import REPO, base_env, sops_binary
from ..vectors import AGE_KEY_FILE

#: One ENC[] value, with its base64 data (length only matters) and type.
ENC_RE = re.compile(r"ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:[A-Za-z0-9+/=]*,tag:[A-Za-z0-9+/=]*,type:([a-z]+)\]")
TIMEOUT = 120


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    rc: int
    out: bytes
    err: bytes

    def why(self) -> str:
        """For assertion messages: the command and its stderr."""
        return f"{' '.join(self.argv)} -> {self.rc}: {self.err.decode(errors='replace')[:2000]}"


def sops_argv(args: Sequence[str]) -> list[str]:
    return [sops_binary(), *args]


def flow_argv(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "sopsflow", *args]


def tool_env(**extra: str) -> dict[str, str]:
    """base_env plus PYTHONPATH for ``python -m sopsflow`` from this checkout."""
    env = base_env(**extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def age_env(**extra: str) -> dict[str, str]:
    """Environment holding the vectors' age identity (and nothing else)."""
    return tool_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), **extra)


def run_all(
    argvs: Sequence[Sequence[str]], *, env: dict[str, str], cwd: str | Path | None = None, stdin: bytes | None = None
) -> list[Run]:
    """Run independent commands at the same time; results in the given order."""
    procs = [
        subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for argv in argvs
    ]
    runs = []
    for argv, proc in zip(argvs, procs, strict=True):
        out, err = proc.communicate(stdin, timeout=TIMEOUT)
        runs.append(Run(tuple(argv), proc.returncode, out, err))
    return runs


def run_each(commands: Sequence[tuple[Sequence[str], str | Path]], *, env: dict[str, str]) -> list[Run]:
    """Like run_all, each command in its own working directory."""
    procs = [
        (argv, subprocess.Popen(list(argv), env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE))
        for argv, cwd in commands
    ]
    runs = []
    for argv, proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT)
        runs.append(Run(tuple(argv), proc.returncode, out, err))
    return runs


# --- comparing encrypted files -------------------------------------------------------------


def mask_enc(text: str) -> str:
    """ENC[...] values replaced by their data length and type (IVs and tags are random)."""
    return ENC_RE.sub(lambda m: f"ENC[{len(m.group(1))}:{m.group(2)}]", text)


def without_metadata(store: str, text: str) -> str:
    """The document part of an encrypted file: the sops metadata removed (its
    wrapped keys, lastmodified and MAC differ on every run, and sops writes
    INI metadata keys in random order)."""
    if store == "yaml":
        kept: list[str] = []
        skipping = False
        for line in text.split("\n"):
            if line == "sops:":
                skipping = True
                continue
            if skipping and line.startswith((" ", "\t")):
                continue
            skipping = False
            kept.append(line)
        return "\n".join(kept)
    if store in ("json", "binary"):
        index = text.rfind('"sops":')
        return text if index < 0 else text[:index]
    if store == "dotenv":
        return "\n".join(line for line in text.split("\n") if not line.startswith("sops_"))
    if store == "ini":
        index = text.find("[sops]\n")
        return text if index < 0 else text[:index]
    raise ValueError(store)


def layout(store: str, data: bytes) -> str:
    """What two encryptions of the same input by sops and sopsflow must share."""
    return mask_enc(without_metadata(store, data.decode("utf-8", "surrogateescape")))


def encrypted_lines(data: bytes) -> list[int]:
    """0-based numbers of the lines that hold an ENC[] value."""
    return [i for i, line in enumerate(data.decode("utf-8", "replace").split("\n")) if "ENC[AES256_GCM," in line]
