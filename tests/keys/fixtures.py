"""Real services for the key tests: a throwaway GnuPG home, a moto KMS/STS
server and an OpenBao dev server, plus helpers to run the real sops binary.

Import the fixtures into a test module (``from .fixtures import moto_server``);
they are kept here so that they can later move to the shared conftest.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..vectors import GENERATED, HAVE_EXTERNAL, PGP_FP, PGP_SECRET_KEY_FILE, UPSTREAM

BIN = Path(sys.executable).parent
# The upstream functional-tests keys join the vectors' key when the external files are there.
PGP_SECRET_KEYS = (
    *([UPSTREAM / "pgp" / "sops_functional_tests_key.asc"] if HAVE_EXTERNAL else []),
    PGP_SECRET_KEY_FILE,
)
# Fingerprints of the two upstream functional-tests keys (the vectors' key is vectors.PGP_FP).
UPSTREAM_PGP_FP = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"
UPSTREAM_SECOND_FP = "D7229043384BCC60326C6FB9D8720D957C3D3074"
#: The primary keys whose secrets gnupg_home holds, in keyring (import) order.
HELD_PGP_FPS = [*([UPSTREAM_PGP_FP, UPSTREAM_SECOND_FP] if HAVE_EXTERNAL else []), PGP_FP]
DUMMY_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_SCRUBBED_PREFIXES = ("SOPS_", "AWS_", "VAULT_", "BAO_")


# --------------------------------------------------------------------------
# small helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # the server answers; the status does not matter
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def sops_path() -> str:
    found = BIN / "sops"
    return str(found) if found.exists() else (shutil.which("sops") or "sops")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """A minimal environment for the sops binary: nothing of the developer's keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.pop("GNUPGHOME", None)
    env.pop("XDG_CONFIG_HOME", None)
    env["HOME"] = str(home)
    env["SOPS_DISABLE_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def run_sops(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sops_path(), *args], env=env, cwd=cwd, capture_output=True, timeout=120, check=False)


def sops_metadata(path: Path) -> dict[str, Any]:
    """The ``sops`` block of an encrypted YAML file (first document), read with PyYAML."""
    loaded = next(iter(yaml.safe_load_all(path.read_text())))
    assert isinstance(loaded, dict)
    return dict(loaded["sops"])


def replace_sops_block(yaml_text: str, metadata: dict[str, Any]) -> str:
    """Swap the ``sops:`` block at the end of a sops YAML file for ``metadata``.

    The values, the MAC and lastmodified stay byte for byte: master-key
    entries are not covered by the MAC, so sops must accept new wraps.
    """
    index = yaml_text.index("\nsops:\n")
    block = yaml.safe_dump({"sops": metadata}, sort_keys=False, default_flow_style=False, width=1000)
    return yaml_text[: index + 1] + block


@dataclass
class Meta:
    """Duck-typed stand-in for metadata.Metadata, as get_data_key needs it."""

    key_groups: list[list[Any]]
    shamir_threshold: int = 0


def load_meta(path: Path) -> Meta:
    """Key groups of a sops YAML file, built with the key registry (flat or grouped)."""
    from sopsflow.keys.registry import key_from_entry

    raw = sops_metadata(path)
    order = ("kms", "gcp_kms", "azure_kv", "hc_vault", "pgp", "age")
    flat = [key_from_entry(name, entry) for name in order for entry in raw.get(name) or []]
    if flat:
        groups = [flat]
    else:
        groups = [
            [key_from_entry(name, entry) for name in order for entry in group.get(name) or []]
            for group in raw["key_groups"]
        ]
    return Meta(groups, int(raw.get("shamir_threshold") or 0))


# --------------------------------------------------------------------------
# GnuPG


@pytest.fixture(scope="session")
def gnupg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A GnuPG home with the test secret keys imported (PGP_SECRET_KEYS)."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    for key in PGP_SECRET_KEYS:
        subprocess.run(["gpg", "--batch", "--import", str(key)], env=env, check=True, capture_output=True)
    yield home
    # Only the agent of this throwaway home.
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)


@pytest.fixture()
def gpg_env(gnupg_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GNUPGHOME", str(gnupg_home))
    monkeypatch.delenv("SOPS_GPG_EXEC", raising=False)
    return gnupg_home


@pytest.fixture()
def empty_gnupg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "gnupg-empty"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)


# --------------------------------------------------------------------------
# moto (AWS KMS + STS)


@dataclass
class Moto:
    url: str
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        return {**DUMMY_AWS, "AWS_ENDPOINT_URL_KMS": self.url, "AWS_ENDPOINT_URL_STS": self.url}

    def client(self, service: str, region: str = "us-east-1") -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
        ).client(service, endpoint_url=self.url)

    def create_key(self, region: str = "us-east-1") -> str:
        return str(self.client("kms", region).create_key()["KeyMetadata"]["Arn"])


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, **DUMMY_AWS}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out, env=env
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/")
        yield Moto(url, process)
    finally:
        stop_process(process)


@pytest.fixture()
def kms_env(moto_server: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """Point boto3 at moto for this test (dummy credentials, no profile)."""
    from sopsflow.keys import kms

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    kms.clear_client_cache()
    return moto_server


# --------------------------------------------------------------------------
# OpenBao (Vault transit)


@dataclass
class Bao:
    address: str
    token: str
    process: subprocess.Popen[bytes]

    def client(self) -> Any:
        import hvac

        return hvac.Client(url=self.address, token=self.token)

    def create_key(self, name: str, mount: str = "transit") -> None:
        self.client().secrets.transit.create_key(name, mount_point=mount)


@pytest.fixture(scope="session")
def bao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    port = free_port()
    token = "sopsflow-test-root"
    home = tmp_path_factory.mktemp("bao-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    # The dev server writes its token helper file into $HOME.
    env["HOME"] = str(home)
    with open(home / "bao.log", "wb") as out:
        process = subprocess.Popen(
            [
                str(BIN / "bao"),
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{port}",
                f"-dev-root-token-id={token}",
            ],
            stdout=out,
            stderr=out,
            env=env,
        )
    server = Bao(f"http://127.0.0.1:{port}", token, process)
    try:
        wait_http(server.address + "/v1/sys/health")
        _wait_unsealed(server)
        server.client().sys.enable_secrets_engine("transit", path="transit")
        server.client().sys.enable_secrets_engine("transit", path="team/transit")
        server.create_key("sops")
        server.create_key("nested", mount="team/transit")
        yield server
    finally:
        stop_process(process)


def _wait_unsealed(server: Bao, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(server.address + "/v1/sys/health", timeout=2) as response:
                if json.loads(response.read()).get("sealed") is False:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("OpenBao dev server did not come up")
        time.sleep(0.1)


@pytest.fixture()
def vault_env(bao_server: Bao, monkeypatch: pytest.MonkeyPatch) -> Bao:
    for name in list(os.environ):
        if name.startswith(("VAULT_", "BAO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VAULT_TOKEN", bao_server.token)
    return bao_server


# --------------------------------------------------------------------------
# building files for the real sops from a sops vector

#: a single-document sops 3.11 vector (age + pgp, one group) and its decrypted form
SPLICE_VECTOR = GENERATED / "yaml" / "edge-types.enc.yaml"
SPLICE_PLAIN = GENERATED / "yaml" / "edge-types.plain.yaml"
_KEY_FIELDS = ("shamir_threshold", "key_groups", "kms", "gcp_kms", "azure_kv", "hc_vault", "age", "pgp")


def vector_data_key(path: Path) -> bytes:
    """The manifest's data key of a generated vector."""
    from ..vectors import manifest

    relative = path.relative_to(GENERATED).as_posix()
    vector = next(v for v in manifest()["vectors"] if v["encrypted"] == relative)
    return bytes.fromhex(vector["data_key_hex"])


def respliced(path: Path, key_fields: dict[str, Any]) -> str:
    """The vector's text with its master keys replaced by ``key_fields``
    (``{"age": [...], "pgp": [...]}`` or ``{"shamir_threshold": n, "key_groups": [...]}``)."""
    meta = sops_metadata(path)
    rest = {k: v for k, v in meta.items() if k not in _KEY_FIELDS}
    return replace_sops_block(path.read_text(), {**key_fields, **rest})


def decrypt_value(enc: str, data_key: bytes, aad: str) -> bytes:
    """Independent AES-GCM check of one ``ENC[AES256_GCM,...]`` value (sops' `aes/cipher.go`)."""
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    fields = dict(part.split(":", 1) for part in enc[len("ENC[AES256_GCM,") : -1].split(","))
    data = base64.b64decode(fields["data"]) + base64.b64decode(fields["tag"])
    return AESGCM(data_key).decrypt(base64.b64decode(fields["iv"]), data, aad.encode())
