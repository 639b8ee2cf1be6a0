#!/usr/bin/env python3
"""(Re)generate the encrypted files of sample-repo/ from the plaintext kept here.

    python scripts/make_sample_repo.py            # keep the keys in sample-repo/keys/
    python scripts/make_sample_repo.py --new-keys # also make new test keys (changes .sops.yaml)
    python scripts/make_sample_repo.py --only apps/staging/argocd/billing-api.env
        # encrypt just the named sources (a new one), leaving every other file as it is
    python scripts/make_sample_repo.py rewrap-kms DIR
        # wrap the production data keys of the copy DIR for the KMS key of the
        # moto_server named by AWS_ENDPOINT_URL_KMS, unwrapping them with the
        # keys of SOPS_AGE_KEY_FILE (see scripts/samplelib.py)

Everything is encrypted by the real `sops` binary (the compatibility oracle),
through the creation rules of the `.sops.yaml` written below, in a scratch copy:
no plaintext is ever written inside sample-repo/. The production KMS key comes
from a moto_server started for the run; its wrapped data keys die with it,
which is fine: the age break-glass key sits in the same key group (and
`rewrap-kms` restores the KMS path wherever the sample is used).

The Flux manifests, READMEs and settings of sample-repo/ are ordinary files
edited by hand; only `.sops.yaml`, the keys, the encrypted files and the
public certificate next to the binary key come from here.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import samplelib as lib  # noqa: E402 - the script's own directory, added above

# --- .sops.yaml ---------------------------------------------------------------------

SOPS_YAML = """\
# Where each environment's secrets are encrypted to. sops (and sopsflow) use
# the FIRST rule whose path_regex matches the file's path relative to this file.
#
# Every environment has two rules: Kubernetes manifests (*.yaml) encrypt only
# `data` and `stringData`, so Flux and kubectl can still read apiVersion, kind
# and metadata; the other formats (.env, .ini, .json, binary *.key) are
# encrypted whole.
#
# Test keys only: their private halves are in keys/ (see keys/README.md).
stores:
  yaml:
    indent: 2
  json:
    indent: 2
  json_binary:
    indent: 2
creation_rules:
  # --- production root CA: any 2 of 3 custodians -----------------------------
  # Shamir secret sharing: the data key is split in three shares, one per key
  # group, and any two of them rebuild it. Nobody - not even KMS - reads the
  # root CA alone. Not applied by Flux (see pki/README.md).
  - path_regex: ^pki/production-root-ca\\.yaml$
    shamir_threshold: 2
    key_groups:
      - kms:
          - arn: {kms_arn}
      - age:
          - {breakglass}  # production break-glass
      - age:
          - {officer}  # security officer

  # --- production: AWS KMS, with an age break-glass key ------------------------
  # KMS and the break-glass key are in ONE key group, and any key of a group
  # unwraps the data key: the cluster decrypts through KMS, an operator with
  # the break-glass key decrypts when KMS is unreachable or the key is lost.
  # Why not two key groups with shamir_threshold: 1 ("either group")? sops
  # refuses a threshold below 2 ("threshold must be at least 2"); one group is
  # how sops says "either key".
  - path_regex: ^(apps|infrastructure)/production/.+\\.ya?ml$
    encrypted_regex: ^(data|stringData)$
    kms: {kms_arn}
    age:
      - {breakglass}  # production break-glass
  - path_regex: ^(apps|infrastructure)/production/.+\\.(env|ini|json|key)$
    kms: {kms_arn}
    age:
      - {breakglass}  # production break-glass

  # --- staging: two age recipients ----------------------------------------------
  # The staging cluster's Flux key (Secret flux-system/sops-age, made with
  # `sopsflow flux age-secret`) and the staging on-call engineer.
  - path_regex: ^(apps|infrastructure)/staging/.+\\.ya?ml$
    encrypted_regex: ^(data|stringData)$
    age:
      - {staging_flux}  # flux-staging
      - {alice}  # alice
  - path_regex: ^(apps|infrastructure)/staging/.+\\.(env|ini|json|key)$
    age:
      - {staging_flux}  # flux-staging
      - {alice}  # alice

  # --- dev: one PGP key, shared by the dev cluster and the developers ----------
  - path_regex: ^(apps|infrastructure)/dev/.+\\.ya?ml$
    encrypted_regex: ^(data|stringData)$
    pgp: {dev_pgp}  # dev team (keys/dev-pgp.asc)
  - path_regex: ^(apps|infrastructure)/dev/.+\\.(env|ini|json|key)$
    pgp: {dev_pgp}  # dev team (keys/dev-pgp.asc)
"""

# --- plaintext sources --------------------------------------------------------------
# Made-up values in realistic shapes. Never real credentials.


def _k8s_secret(comment: str, name: str, namespace: str, body: str, secret_type: str = "Opaque") -> str:
    return (
        f"{comment}"
        "apiVersion: v1\n"
        "kind: Secret\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {namespace}\n"
        f"type: {secret_type}\n"
        f"{body}"
    )


def _db_secret(env: str, host: str, password: str, where: str = "") -> str:
    return _k8s_secret(
        f"# Credentials of the billing database ({env}). Change with:\n"
        f"#   sopsflow edit {where or f'apps/{env}'}/db-credentials.yaml\n",
        "billing-db",
        "billing",
        "stringData:\n"
        "  username: billing_app\n"
        f"  password: {password}\n"
        f"  host: {host}\n"
        '  port: "5432"\n'
        f"  url: postgres://billing_app:{password}@{host}:5432/billing?sslmode=require\n",
    )


def _cloudflare_secret(env: str, token: str) -> str:
    return _k8s_secret(
        "# API token for cert-manager's DNS-01 solver (Zone:DNS:Edit on example.com only).\n",
        "cloudflare-api-token",
        "cert-manager",
        f"stringData:\n  api-token: {token}\n",
    )


def _billing_env(env: str, stripe: str, webhook: str, sentry: str, jwt: str,
                 via: str = "the secretGenerator in kustomization.yaml") -> str:
    return (
        f"# billing-api runtime settings ({env}); becomes Secret billing/billing-api-env\n"
        f"# through {via}.\n"
        f"STRIPE_SECRET_KEY={stripe}\n"
        f"STRIPE_WEBHOOK_SECRET={webhook}\n"
        f"SENTRY_DSN=https://{sentry}@o123456.ingest.sentry.io/4504\n"
        f"JWT_SIGNING_KEY={jwt}\n"
        "LOG_LEVEL=info\n"
    )


GRAFANA_INI = """\
; Grafana settings for the staging monitoring stack; mounted from Secret
; monitoring/grafana-ini (secretGenerator in kustomization.yaml).
[security]
admin_user     = admin
admin_password = staging-Gr4fana-7vQx
secret_key     = 9f2c1e7a4b8d6035e1c7b9a2f4d80613

[auth.generic_oauth]
enabled       = true
name          = Example SSO
client_id     = grafana-staging
client_secret = oauth-staging-b71d09c2e4f5a6
auth_url      = https://sso.example.com/oauth2/authorize
token_url     = https://sso.example.com/oauth2/token

[smtp]
enabled  = true
host     = smtp.example.com:587
user     = grafana@example.com
password = smtp-staging-kd93Ld0qP2
"""

REGISTRY_AUTH = """\
{
  "auths": {
    "registry.example.com": {
      "username": "ci-dev-pull",
      "password": "dev-pull-token-6f1e2d3c4b5a",
      "auth": "Y2ktZGV2LXB1bGw6ZGV2LXB1bGwtdG9rZW4tNmYxZTJkM2M0YjVh"
    }
  }
}
"""

ROOT_CA = """\
# Offline root CA of the production PKI. Two of three custodians (KMS, the
# break-glass key, the security officer) are needed to read this file.
root_ca:
  subject: CN=Example Production Root CA 2025,O=Example Ltd
  key_passphrase: correct-horse-battery-root-2025
  hsm_slot: 3
  hsm_so_pin: "40917733"
  hsm_user_pin: "55082614"
"""


def _origin_key() -> tuple[bytes, bytes]:
    """A fresh EC key and a self-signed certificate standing in for a
    Cloudflare Origin CA certificate (the key is made new each build, so no
    private key is kept in plaintext in this script)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "*.example.com")])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x5A3F1E)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=15 * 365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("*.example.com"), x509.DNSName("example.com")]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


#: path (relative to the repository root) -> plaintext; the binary origin key
#: is added at build time (see _origin_key)
SECRETS: dict[str, str] = {
    # production (AWS KMS + break-glass)
    "apps/production/db-credentials.yaml": _db_secret(
        "production", "billing.cluster-c9akciq32xyz.eu-west-1.rds.amazonaws.com", "Zr8q-prod-Vx41-kTn9-pQ2w"),
    "apps/production/billing-api.env": _billing_env(
        "production", "sk_test_sampleProd51HqLyjWDarjtT1zdp7dc", "whsec_sampleProd8Jd2kQ0vN5mW",
        "e3b0c44298fc1c149afbf4c8996fb924", "prod-jwt-7d1f0a9e5c3b2a1f4e6d8c0b9a7f5e3d"),
    "infrastructure/production/cloudflare-api-token.yaml": _cloudflare_secret(
        "production", "cf-prod-Y2h8vR4kLm9QeT6wXz1pNb3s"),
    "pki/production-root-ca.yaml": ROOT_CA,
    # staging (two age recipients)
    "apps/staging/db-credentials.yaml": _db_secret(
        "staging", "billing.cluster-s7fd02k1abc.eu-west-1.rds.amazonaws.com", "st4g-Qm2x-Lp9v-Hc6n"),
    "apps/staging/billing-api.env": _billing_env(
        "staging", "sk_test_sampleStaging9rTyU2vWx3yZa4bC", "whsec_sampleStaging3Tb7pX1c",
        "5d41402abc4b2a76b9719d911017c592", "staging-jwt-0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f"),
    # staging for Argo CD: the same Secrets, decrypted at build time by the
    # KSOPS-compatible generator (apps/staging/argocd/secret-generator.yaml)
    "apps/staging/argocd/db-credentials.yaml": _db_secret(
        "staging", "billing.cluster-s7fd02k1abc.eu-west-1.rds.amazonaws.com", "st4g-Qm2x-Lp9v-Hc6n",
        where="apps/staging/argocd"),
    "apps/staging/argocd/billing-api.env": _billing_env(
        "staging", "sk_test_sampleStaging9rTyU2vWx3yZa4bC", "whsec_sampleStaging3Tb7pX1c",
        "5d41402abc4b2a76b9719d911017c592", "staging-jwt-0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f",
        via="the ksops generator in secret-generator.yaml (sopsflow ksops)"),
    "infrastructure/staging/cloudflare-api-token.yaml": _cloudflare_secret(
        "staging", "cf-staging-Jk3m5N7pQ9rS1tU3vW5x"),
    "infrastructure/staging/grafana.ini": GRAFANA_INI,
    # dev (PGP)
    "apps/dev/db-credentials.yaml": _db_secret(
        "dev", "billing-db.dev.svc.cluster.local", "dev-only-password-41"),
    "apps/dev/registry-auth.json": REGISTRY_AUTH,
}
#: binary secret (sops' binary store: any other file name) and its public certificate
ORIGIN_KEY = "infrastructure/production/origin-tls.key"
ORIGIN_CERT = "infrastructure/production/origin-tls.crt"


# --- keys -----------------------------------------------------------------------------


def make_age_key(path: Path, holder: str) -> None:
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(
        "# TEST KEY - sopsflow sample repository only. NOT A SECRET: it is public on\n"
        "# purpose. Never use it for anything real.\n"
        f"# holder: {holder}\n"
        f"# created: {stamp}\n"
        f"# public key: {identity.to_public()}\n"
        f"{identity}\n"
    )
    path.chmod(0o600)


def make_pgp_key(path: Path, scratch: Path) -> None:
    home = scratch / "gnupg-new"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    params = (
        "%no-protection\n"
        "Key-Type: RSA\nKey-Length: 3072\nKey-Usage: sign,cert\n"
        "Subkey-Type: RSA\nSubkey-Length: 3072\nSubkey-Usage: encrypt\n"
        "Name-Real: sopsflow sample dev (TEST KEY - NOT SECRET)\n"
        "Name-Email: dev-test-key@sample.invalid\n"
        "Expire-Date: 0\n%commit\n"
    )
    try:
        subprocess.run(["gpg", "--batch", "--gen-key"], input=params.encode(), env=env, capture_output=True, check=True)
        fpr = lib.pgp_fingerprint(home)
        armored = subprocess.run(["gpg", "--batch", "--armor", "--export-secret-keys", fpr],
                                 env=env, capture_output=True, check=True).stdout
    finally:
        lib.stop_gpg_agent(home)
    path.write_bytes(
        b"# TEST KEY - sopsflow sample repository only. NOT A SECRET: public on purpose.\n"
        b"# No passphrase. Import into a throwaway GNUPGHOME: gpg --import dev-pgp.asc\n" + armored
    )
    path.chmod(0o600)


def ensure_keys(keys_dir: Path, scratch: Path, new: bool) -> None:
    keys_dir.mkdir(exist_ok=True)
    for name, holder in lib.AGE_KEYS.items():
        if new or not (keys_dir / name).exists():
            make_age_key(keys_dir / name, holder)
    if new or not (keys_dir / lib.DEV_PGP).exists():
        make_pgp_key(keys_dir / lib.DEV_PGP, scratch)


def render_sops_yaml(keys_dir: Path, dev_fpr: str) -> str:
    return SOPS_YAML.format(
        kms_arn=lib.KMS_ARN,
        breakglass=lib.age_recipient(keys_dir / lib.BREAKGLASS),
        officer=lib.age_recipient(keys_dir / lib.OFFICER),
        staging_flux=lib.age_recipient(keys_dir / lib.STAGING_FLUX),
        alice=lib.age_recipient(keys_dir / lib.ALICE),
        dev_pgp=dev_fpr,
    )


# --- build --------------------------------------------------------------------------------


def build(sample: Path, new_keys: bool, only: list[str] | None = None) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="sopsflow-sample-build-"))
    try:
        _build(sample, scratch, new_keys, only)
    finally:
        lib.stop_gpg_agent(scratch / "gnupg")
        shutil.rmtree(scratch, ignore_errors=True)


def _build(sample: Path, scratch: Path, new_keys: bool, only: list[str] | None = None) -> None:
    keys_dir = sample / lib.KEYS_SUBDIR
    ensure_keys(keys_dir, scratch, new_keys)
    dev_fpr = lib.import_pgp_key(scratch / "gnupg", keys_dir / lib.DEV_PGP)
    config_text = render_sops_yaml(keys_dir, dev_fpr)
    work = scratch / "work"
    work.mkdir()
    (work / ".sops.yaml").write_text(config_text)
    key_file = lib.write_key_file(scratch / "age-keys.txt", *((keys_dir / n).read_text() for n in lib.AGE_KEYS))
    origin_key, origin_cert = _origin_key()
    plaintexts = {path: text.encode() for path, text in SECRETS.items()}
    plaintexts[ORIGIN_KEY] = origin_key
    if only:
        unknown = sorted(set(only) - set(plaintexts))
        if unknown:
            raise SystemExit(f"--only: no such secret source: {', '.join(unknown)}")
        plaintexts = {path: plain for path, plain in plaintexts.items() if path in only}
    with lib.MotoServer(scratch) as moto:
        lib.ensure_kms_key(moto.url)
        env = lib.clean_env(scratch, GNUPGHOME=str(scratch / "gnupg"), SOPS_AGE_KEY_FILE=str(key_file), **moto.env())
        for path, plain in plaintexts.items():
            _encrypt(work, path, plain, env)
        _check_round_trip(work, env, plaintexts)
    (sample / ".sops.yaml").write_text(config_text)
    for path in plaintexts:
        target = sample / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / path, target)
    if ORIGIN_KEY in plaintexts:  # the certificate belongs to the key made in this run
        (sample / ORIGIN_CERT).write_bytes(origin_cert)
    print(f"wrote {len(plaintexts)} encrypted files and .sops.yaml into {sample}")


def _encrypt(work: Path, path: str, plain: bytes, env: dict[str, str]) -> None:
    target = work / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(plain)
    proc = subprocess.run([lib.tool("sops"), "encrypt", "-i", path], cwd=work, env=env, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"sops could not encrypt {path}: {proc.stderr.decode(errors='replace').strip()}")


def _check_round_trip(work: Path, env: dict[str, str], plaintexts: dict[str, bytes]) -> None:
    """Every file decrypts with sops to exactly its plaintext source (KMS is up
    here): the sources are kept in the layout sops writes back."""
    for path, plain in plaintexts.items():
        out = subprocess.run([lib.tool("sops"), "decrypt", path], cwd=work, env=env, capture_output=True)
        if out.returncode != 0:
            raise SystemExit(f"sops could not decrypt {path}: {out.stderr.decode(errors='replace').strip()}")
        if out.stdout != plain:
            raise SystemExit(f"{path}: sops decrypts it to something else than its source; fix the source's layout")


# --- rewrap-kms ----------------------------------------------------------------------------


def rewrap_main(root: Path) -> int:
    done = lib.rewrap_kms(root)
    for path in done:
        print(f"re-wrapped for {lib.KMS_ARN}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["rewrap-kms"]:
        rewrap = argparse.ArgumentParser(prog="make_sample_repo.py rewrap-kms",
                                         description="wrap production data keys for the running moto_server's KMS key")
        rewrap.add_argument("root", type=Path, help="a copy of sample-repo/")
        return rewrap_main(rewrap.parse_args(argv[1:]).root)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--new-keys", action="store_true", help="replace the test keys too (rewrites .sops.yaml)")
    parser.add_argument("--dest", type=Path, default=lib.SAMPLE_DIR, help="sample repository (default: sample-repo/)")
    parser.add_argument("--only", action="append", metavar="PATH",
                        help="encrypt only this source (repeatable; e.g. a newly added one), keep the others")
    args = parser.parse_args(argv)
    if args.only and args.new_keys:
        parser.error("--only keeps the other files, which --new-keys would leave unreadable")
    build(args.dest, args.new_keys, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
