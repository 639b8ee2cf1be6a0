#!/usr/bin/env python3
"""(Re)write tests/data/ksops/: a kustomize base and overlay whose overlay uses
the KSOPS-compatible generator, SOPS files encrypted by the real `sops` binary
for the test vectors' age recipient, and the expected outputs of
`sopsflow ksops` in both modes.

    python scripts/make_ksops_fixtures.py

Run it again after the vectors get new keys (scripts/generate_vectors.py
--new-keys). The plaintext lives here; the values are made up. The expected
outputs are sopsflow's own, checked by tests/test_ksops.py against what
`sops decrypt` prints for every file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import samplelib as lib  # noqa: E402 - the script's own directory, added above

FIXTURES = REPO / "tests" / "data" / "ksops"

BASE_KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - secret.yaml
"""

BASE_SECRET = """\
# A placeholder the overlay replaces (kustomize.config.k8s.io/behavior: replace).
apiVersion: v1
kind: Secret
metadata:
  name: app-credentials
stringData:
  password: placeholder
"""

OVERLAY_KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base
generators:
  - generator.yaml
"""

GENERATOR = """\
# Every field the generator reads: whole manifests (YAML and JSON) and a
# Secret from an INI file (under its own name and under a key), a binary file
# and a dotenv file.
apiVersion: viaduct.ai/v1
kind: ksops
metadata:
  name: app-secrets
files:
  - credentials.enc.yaml
  - settings.enc.json
secretFrom:
  - metadata:
      name: app-files
      namespace: app
      labels:
        app.kubernetes.io/name: app
      annotations:
        kustomize.config.k8s.io/needs-hash: "true"
    type: Opaque
    files:
      - app.enc.ini
      - app.ini=app.enc.ini
    binaryFiles:
      - logo.png=logo.enc
    envs:
      - app.enc.env
"""

#: encrypted file -> (plaintext, extra sops flags)
SOURCES: dict[str, tuple[bytes, list[str]]] = {
    "credentials.enc.yaml": (
        b"apiVersion: v1\n"
        b"kind: Secret\n"
        b"metadata:\n"
        b"  name: app-credentials\n"
        b"  annotations:\n"
        b"    kustomize.config.k8s.io/behavior: replace\n"
        b"type: Opaque\n"
        b"stringData:\n"
        b"  password: test-only-Vb7qLm2x\n"
        b"  token: |\n"
        b"    first line\n"
        b"    second line\n",
        ["--encrypted-regex", "^(data|stringData)$"],
    ),
    "settings.enc.json": (
        b'{\n  "apiVersion": "v1",\n  "kind": "ConfigMap",\n  "metadata": {\n    "name": "app-settings"\n  },\n'
        b'  "data": {\n    "feature": "on",\n    "endpoint": "https://api.example.com"\n  }\n}\n',
        ["--encrypted-regex", "^data$"],
    ),
    "app.enc.ini": (b"[database]\nuser = app\npassword = test-only-ini-K3v9\n", []),
    "logo.enc": (bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes(range(0xF0, 0x100)), []),
    "app.enc.env": (b"API_KEY=test-only-env-Q8w2\nGREETING=hello world\nQUOTED=\"kept\"\nMULTI=one\\ntwo\n", []),
}

RESOURCE_LIST = """\
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: unrelated
      annotations:
        config.kubernetes.io/path: unrelated.yaml
    data:
      keep: "as it is"
  - apiVersion: viaduct.ai/v1
    kind: ksops
    metadata:
      name: krm-secrets
      annotations:
        config.kubernetes.io/local-config: "true"
        config.kubernetes.io/path: generator.yaml
    files:
      - credentials.enc.yaml
    secretFrom:
      - metadata:
          name: krm-files
        binaryFiles:
          - logo.enc
        envs:
          - app.enc.env
"""


def main() -> int:
    from tests.vectors import AGE_KEY_FILE, AGE_RECIPIENT

    overlay = FIXTURES / "overlay"
    base = FIXTURES / "base"
    for directory in (overlay, base):
        directory.mkdir(parents=True, exist_ok=True)
    (base / "kustomization.yaml").write_text(BASE_KUSTOMIZATION)
    (base / "secret.yaml").write_text(BASE_SECRET)
    (overlay / "kustomization.yaml").write_text(OVERLAY_KUSTOMIZATION)
    (overlay / "generator.yaml").write_text(GENERATOR)
    (FIXTURES / "resource-list.yaml").write_text(RESOURCE_LIST)
    scratch = Path(tempfile.mkdtemp(prefix="sopsflow-ksops-fixtures-"))
    try:
        env = lib.clean_env(scratch, SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
        for name, (plain, flags) in SOURCES.items():
            source = scratch / name
            source.write_bytes(plain)
            done = subprocess.run([lib.tool("sops"), "encrypt", "--age", AGE_RECIPIENT, *flags, str(source)],
                                  env=env, capture_output=True, cwd=scratch)
            if done.returncode != 0:
                raise SystemExit(f"sops could not encrypt {name}: {done.stderr.decode(errors='replace')}")
            (overlay / name).write_bytes(done.stdout)
        env["PYTHONPATH"] = str(REPO)
        exec_out = subprocess.run([sys.executable, "-m", "sopsflow", "ksops", "generator.yaml"], cwd=overlay,
                                  env=env, capture_output=True, check=True)
        (FIXTURES / "expected-exec.yaml").write_bytes(exec_out.stdout)
        krm_out = subprocess.run([sys.executable, "-m", "sopsflow", "ksops"], cwd=overlay, env=env,
                                 input=RESOURCE_LIST.encode(), capture_output=True, check=True)
        (FIXTURES / "expected-krm.yaml").write_bytes(krm_out.stdout)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"wrote {FIXTURES.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    os.environ.pop("SOPS_CONFIG", None)
    sys.exit(main())
