"""Shared by scripts/make_sample_repo.py, scripts/demo.py and the tests:
where sample-repo/ keeps its test keys, the AWS KMS stand-in (moto_server)
and the one trick that makes the production KMS group usable anywhere.

Why a re-wrap is needed: moto creates every KMS key with random key
material, so a data key wrapped by one moto_server can never be unwrapped by
another. The committed production files are therefore wrapped for a KMS key
that no longer exists, next to the age break-glass key in the same key group.
:func:`rewrap_kms` does what an operator does after losing a KMS key: it
unwraps each data key with the break-glass key (and, for the 2-of-3 root CA,
the security officer's key) and wraps it again for the KMS key of the running
moto_server. Values, MAC and lastmodified stay byte for byte; only the ``sops``
block changes. The KMS ARN in ``.sops.yaml`` names an *alias*, which
:func:`ensure_kms_key` creates in every new moto_server, so the ARN is fixed
although moto's key ids are random.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The scripts use this source tree's sopsflow, installed or not (as their
# subprocesses do through PYTHONPATH).
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
SAMPLE_DIR = REPO / "sample-repo"
KEYS_SUBDIR = "keys"

# moto answers every request as account 123456789012, AWS's documentation account.
KMS_REGION = "eu-west-1"
KMS_ACCOUNT = "123456789012"
KMS_ALIAS = "alias/sopsflow-sample-production"
KMS_ARN = f"arn:aws:kms:{KMS_REGION}:{KMS_ACCOUNT}:{KMS_ALIAS}"
DUMMY_AWS = {"AWS_ACCESS_KEY_ID": "sample-test", "AWS_SECRET_ACCESS_KEY": "sample-test"}

#: age identities shipped in sample-repo/keys/ (file name -> who holds it)
AGE_KEYS = {
    "production-breakglass.agekey": "production break-glass key (kept offline, in the safe)",
    "security-officer.agekey": "security officer (one of three custodians of the production root CA)",
    "staging-flux.agekey": "the staging cluster's Flux kustomize-controller (Secret flux-system/sops-age)",
    "staging-alice.agekey": "alice, staging on-call engineer",
}
BREAKGLASS = "production-breakglass.agekey"
OFFICER = "security-officer.agekey"
STAGING_FLUX = "staging-flux.agekey"
ALICE = "staging-alice.agekey"
#: the dev environment's PGP key (secret key, no passphrase)
DEV_PGP = "dev-pgp.asc"

#: variables that would let the caller's own keys, config or AWS account leak in
SCRUB_PREFIXES = ("SOPS_", "AWS_", "VAULT_", "BAO_", "GIT_", "PRE_COMMIT")
SCRUB_NAMES = ("GNUPGHOME", "XDG_CONFIG_HOME", "EDITOR", "VISUAL")


def tool(name: str) -> str:
    """A console script of this virtualenv, else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run `make venv` (it installs the test extra into .venv)")
    return found


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus anything key-, AWS- or git-related, with
    a private HOME (so ~/.config/sops/age/keys.txt is never read)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB_PREFIXES) and k not in SCRUB_NAMES}
    env["HOME"] = str(home)
    env["SOPS_DISABLE_VERSION_CHECK"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env.update(extra)
    return env


def age_recipient(key_file: Path) -> str:
    """The public key of the (single) identity in an age key file."""
    import pyrage

    for line in key_file.read_text().splitlines():
        if line.startswith("AGE-SECRET-KEY-1"):
            return str(pyrage.x25519.Identity.from_str(line.strip()).to_public())
    raise ValueError(f"{key_file}: no age identity")


def pgp_fingerprint(gnupg_home: Path) -> str:
    """Fingerprint of the one secret key in ``gnupg_home``."""
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
        env={**os.environ, "GNUPGHOME": str(gnupg_home)}, capture_output=True, text=True, check=True,
    ).stdout
    fprs = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]
    return fprs[0]


def import_pgp_key(gnupg_home: Path, key_file: Path) -> str:
    gnupg_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    subprocess.run(
        ["gpg", "--batch", "--import", str(key_file)],
        env={**os.environ, "GNUPGHOME": str(gnupg_home)}, capture_output=True, check=True,
    )
    return pgp_fingerprint(gnupg_home)


def stop_gpg_agent(gnupg_home: Path) -> None:
    # Only the agent of this throwaway home.
    subprocess.run(["gpgconf", "--homedir", str(gnupg_home), "--kill", "gpg-agent"], capture_output=True, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto_server on 127.0.0.1 at a free port, as a context manager."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_dir = log_dir
        self._own_dir: str | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._log_dir is None:
            self._own_dir = tempfile.mkdtemp(prefix="sopsflow-moto-")
            self._log_dir = Path(self._own_dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(DUMMY_AWS)
        with open(self._log_dir / "moto.log", "wb") as log:
            self.process = subprocess.Popen(
                [tool("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=log, env=env
            )
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise

    def _wait(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answers; the status does not matter
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not come up") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._own_dir:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def env(self) -> dict[str, str]:
        return aws_env(self.url)


def aws_env(url: str) -> dict[str, str]:
    """Dummy credentials and endpoints: boto3 and the sops binary both go to moto."""
    return {**DUMMY_AWS, "AWS_ENDPOINT_URL_KMS": url, "AWS_ENDPOINT_URL_STS": url, "AWS_REGION": KMS_REGION}


def kms_client(url: str) -> Any:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=DUMMY_AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_AWS["AWS_SECRET_ACCESS_KEY"],
        region_name=KMS_REGION,
    )
    return session.client("kms", endpoint_url=url)


def ensure_kms_key(url: str) -> str:
    """Create the production KMS key and its alias in the moto_server at ``url``
    (once); returns the key's own ARN."""
    client = kms_client(url)
    try:
        return str(client.describe_key(KeyId=KMS_ARN)["KeyMetadata"]["Arn"])
    except client.exceptions.NotFoundException:
        pass
    key = client.create_key(Description="sopsflow sample-repo production (moto, test only)")["KeyMetadata"]
    client.create_alias(AliasName=KMS_ALIAS, TargetKeyId=key["KeyId"])
    return str(key["Arn"])


def write_key_file(path: Path, *texts: str) -> Path:
    """An age key file made of the given key files' contents, mode 0600."""
    path.write_text("".join(t if t.endswith("\n") else t + "\n" for t in texts))
    path.chmod(0o600)
    return path


def sops_files(root: Path) -> Iterator[Path]:
    """Every file below ``root`` (outside .git and keys/) that carries SOPS
    metadata (found by its ``ENC[...]`` values)."""
    from sopsflow.stores import store_for_path

    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or path.is_symlink() or rel.parts[0] in (".git", KEYS_SUBDIR):
            continue
        data = path.read_bytes()
        if b"ENC[AES256_GCM," not in data:
            continue
        # No error is swallowed here: in the sample every file with ENC[...]
        # is a SOPS file, and one that stops loading must fail loudly.
        _branches, meta = store_for_path(str(path)).load_encrypted(data)
        if meta:
            yield path


def rewrap_kms(root: Path) -> list[str]:
    """Wrap the data key of every file holding the sample KMS key again, for
    the KMS key reachable now (AWS_* from the environment), using whatever
    other keys the environment provides to unwrap it first. Returns the
    rewritten paths (relative to ``root``)."""
    from sopsflow.config.decoder import load_config
    from sopsflow.config.discovery import find_config
    from sopsflow.keys import kms
    from sopsflow.keys.groups import get_data_key
    from sopsflow.operations import load_metadata, rewrap_keys
    from sopsflow.stores import store_by_name, store_for_path

    config_path = find_config(root)
    config = load_config(config_path) if config_path else None
    kms.clear_client_cache()
    done = []
    for path in sops_files(root):
        probe = store_for_path(str(path))
        indent = config.store_indent(probe.name) if config else None
        store = store_by_name(probe.name, indent=indent) if indent is not None else probe
        branches, meta = load_metadata(store, path.read_bytes())
        if not any(k.type_name == "kms" and getattr(k, "arn", "") == KMS_ARN for k in meta.all_keys()):
            continue
        data_key = get_data_key(meta)
        rewrap_keys(meta, data_key)
        path.write_bytes(store.dump_encrypted(branches, meta.to_dict(json_style=store.name != "yaml")))
        done.append(path.relative_to(root).as_posix())
    return done
