#!/usr/bin/env python3
"""`make demo`: the whole sopsflow workflow on a copy of sample-repo/.

A Flux repository with three environments is copied to a temp dir, made a
git repository, and walked through: verify, decrypt, a plaintext commit
refused by the hook, a team member added and another removed (with data key
rotation), verify again, the Flux decryption Secret, the clusters' key
coverage and the first phase of a Flux key rotation. AWS KMS is a
moto_server on 127.0.0.1. Every step checks what it shows; the script exits
non-zero at the first step that does not behave as described, and removes
everything it made.

tests/test_demo.py runs the same steps (:data:`STEPS` on a :class:`Demo`).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

import samplelib as lib  # noqa: E402 - the script's own directory, added above

STAGING_YAML_RULE = 3  # creation_rules index of staging manifests in sample-repo/.sops.yaml
STAGING_OTHER_RULE = 4  # ... and of staging .env/.ini/.json/binary files
NEW_SECRET = "apps/staging/stripe-webhook.yaml"
NEW_SECRET_VALUE = "whsec_demo_5f3c9a1e7b2d40a8"
NEW_SECRET_TEXT = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: stripe-webhook
  namespace: billing
type: Opaque
stringData:
  signing-secret: {NEW_SECRET_VALUE}
"""
SHOWN_SECRET = "apps/production/db-credentials.yaml"
STAGING_SECRET = "apps/staging/db-credentials.yaml"
FLUX_KEY = f"{lib.KEYS_SUBDIR}/{lib.STAGING_FLUX}"


class DemoFailure(Exception):
    """A step did not behave as the demo says it does."""


class Demo:
    """The state of one walkthrough: the temp dir, the moto_server, the keys
    of the people in the story and the environment every command runs in."""

    def __init__(self, out: TextIO | None = None, color: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.color = self.out.isatty() if color is None else color
        self.work = Path(tempfile.mkdtemp(prefix="sopsflow-demo-"))
        self.repo = self.work / "fleet"
        self.home = self.work / "home"
        self.gnupg = self.work / "gnupg"
        self.moto = lib.MotoServer(self.work)
        self.env: dict[str, str] = {}
        self.alice_key = self.work / "alice.agekey"
        self.carol_key = self.work / "carol.agekey"
        self.alice = ""
        self.carol = ""
        self.new_flux_key = self.work / "flux-staging-new.agekey"

    # --- output -------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def heading(self, text: str) -> None:
        bar = "=" * min(78, len(text) + 6)
        if self.color:
            self.say(f"\n\033[1;36m{bar}\n== {text}\033[0m")
        else:
            self.say(f"\n{bar}\n== {text}")

    def ok(self, text: str) -> None:
        self.say(f"\033[32mOK\033[0m {text}" if self.color else f"OK {text}")

    # --- running commands ---------------------------------------------------------

    def run(self, cmd: list[str], *, expect: int | None = 0, show: bool = True, shown: str | None = None,
            env: dict[str, str] | None = None, max_lines: int | None = None,
            stdout: TextIO | None = None, echo: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` in the work copy; print it (as ``shown``) and its output."""
        if echo:
            self.say("$ " + (shown or _display(cmd)))
        proc = subprocess.run(_argv(cmd), cwd=self.repo, env=env or self.env, text=True, timeout=300,
                              stdout=stdout if stdout is not None else subprocess.PIPE, stderr=subprocess.PIPE)
        if show:
            for text in (proc.stdout or "", proc.stderr or ""):
                self._show(text, max_lines)
        if expect is not None and proc.returncode != expect:
            if not show:
                self._show((proc.stdout or "") + (proc.stderr or ""), 40)
            raise DemoFailure(f"`{shown or _display(cmd)}` exited {proc.returncode}, expected {expect}")
        return proc

    def _show(self, text: str, max_lines: int | None) -> None:
        lines = text.rstrip("\n").splitlines()
        if not lines:
            return
        if max_lines is not None and len(lines) > max_lines:
            hidden = len(lines) - max_lines
            lines = lines[:max_lines] + [f"   [... {hidden} more line(s)]"]
        self.say("\n".join("    " + line for line in lines))

    def git(self, *args: str, echo: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(["git", *args], show=False, echo=echo)

    def with_key(self, key_file: Path) -> dict[str, str]:
        return {**self.env, "SOPS_AGE_KEY_FILE": str(key_file)}

    # --- lifecycle ----------------------------------------------------------------

    def close(self) -> None:
        self.moto.stop()
        lib.stop_gpg_agent(self.gnupg)
        lib.stop_gpg_agent(self.work / "gnupg-empty")
        shutil.rmtree(self.work, ignore_errors=True)


def _argv(cmd: list[str]) -> list[str]:
    if cmd and cmd[0] == "sopsflow":
        return [sys.executable, "-m", "sopsflow", *cmd[1:]]
    if cmd and cmd[0] == "sops":
        return [lib.tool("sops"), *cmd[1:]]
    return cmd


def _display(cmd: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in cmd)


# --- the steps ----------------------------------------------------------------------------


def step_setup(d: Demo) -> None:
    d.heading("0. A Flux repository with three environments (a copy of sample-repo/)")
    shutil.copytree(lib.SAMPLE_DIR, d.repo, ignore=shutil.ignore_patterns(".git"))
    d.home.mkdir()
    git_config = d.work / "gitconfig"
    git_config.write_text("[init]\n\tdefaultBranch = main\n")
    d.moto.start()
    lib.ensure_kms_key(d.moto.url)
    dev_fpr = lib.import_pgp_key(d.gnupg, d.repo / lib.KEYS_SUBDIR / lib.DEV_PGP)
    shutil.copyfile(d.repo / lib.KEYS_SUBDIR / lib.ALICE, d.alice_key)
    d.alice = lib.age_recipient(d.alice_key)
    d.env = lib.clean_env(
        d.home,
        **d.moto.env(),
        GNUPGHOME=str(d.gnupg),
        SOPS_AGE_KEY_FILE=str(d.alice_key),
        GIT_CONFIG_GLOBAL=str(git_config),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Alice", GIT_AUTHOR_EMAIL="alice@example.com",
        GIT_COMMITTER_NAME="Alice", GIT_COMMITTER_EMAIL="alice@example.com",
    )
    d.say(f"work copy:   {d.repo}")
    d.say(f"AWS KMS:     moto_server on {d.moto.url}, {lib.KMS_ALIAS} created")
    d.say("production:  AWS KMS + the age break-glass key; pki/ root CA: 2 of 3 key groups (Shamir)")
    d.say("staging:     two age recipients: the staging cluster's Flux key and alice")
    d.say(f"dev:         one PGP key ({dev_fpr}), imported into a throwaway GNUPGHOME")
    d.say("You are alice: staging on-call, with AWS access to the production KMS key and the dev PGP key.")
    d.say("\nmoto creates keys with random key material, so the committed production files are wrapped for a")
    d.say("KMS key that no longer exists. The break-glass key re-wraps them for this moto_server's key:")
    rewrap_env = {**d.env, "SOPS_AGE_KEY_FILE": str(_custodian_keys(d))}
    proc = d.run([sys.executable, str(Path(__file__).with_name("make_sample_repo.py")), "rewrap-kms", "."],
                 shown="SOPS_AGE_KEY_FILE=custodians.agekey python scripts/make_sample_repo.py rewrap-kms .",
                 env=rewrap_env, show=False)
    rewrapped = [line.rsplit(": ", 1)[-1] for line in proc.stdout.splitlines() if line.startswith("re-wrapped")]
    d.say("    re-wrapped: " + ", ".join(rewrapped))
    if len(rewrapped) < 5:
        raise DemoFailure("the production files were not re-wrapped for the KMS key")
    d.git("init", "-q")
    d.git("add", "-A")
    d.git("commit", "-q", "-m", "Flux fleet: production, staging, dev")
    d.run(["sopsflow", "install-hooks"])
    if not (d.repo / ".git" / "hooks" / "pre-commit").exists():
        raise DemoFailure("install-hooks did not install .git/hooks/pre-commit")
    d.ok("git repository with one commit; the native pre-commit hook runs `sopsflow check`")


def _custodian_keys(d: Demo) -> Path:
    keys = d.repo / lib.KEYS_SUBDIR
    return lib.write_key_file(d.work / "custodians.agekey", (keys / lib.BREAKGLASS).read_text(),
                              (keys / lib.OFFICER).read_text())


def step_rules(d: Demo) -> None:
    d.heading("1. Which creation rule encrypts a file, and why")
    proc = d.run(["sopsflow", "rules", STAGING_SECRET])
    if f"rule {STAGING_YAML_RULE}: MATCH" not in proc.stdout:
        raise DemoFailure(f"{STAGING_SECRET} should match creation rule {STAGING_YAML_RULE}")
    d.ok("first matching path_regex wins; staging manifests encrypt only data/stringData")


def step_verify(d: Demo) -> None:
    d.heading("2. `sopsflow verify`: every secret encrypted, for the right recipients")
    _verify_green(d)


def _verify_green(d: Demo) -> None:
    d.run(["sopsflow", "verify"])  # exit 1 on any error finding
    d.ok("verify is green (exit 0)")


def step_decrypt(d: Demo) -> None:
    d.heading("3. Decrypt a production Secret (through AWS KMS: alice holds no production age key)")
    ours = d.run(["sopsflow", "decrypt", SHOWN_SECRET])
    theirs = d.run(["sops", "decrypt", SHOWN_SECRET], show=False)
    if "kind: Secret" not in ours.stdout or "ENC[" in ours.stdout:
        raise DemoFailure("the decrypted Secret is not plaintext")
    if ours.stdout != theirs.stdout:
        raise DemoFailure("sopsflow and sops disagree about the decrypted Secret")
    d.ok("the real sops binary prints the same bytes")


def step_hook(d: Demo) -> None:
    d.heading("4. The commit hook refuses a plaintext Secret")
    (d.repo / NEW_SECRET).write_text(NEW_SECRET_TEXT)
    d.say(f"alice writes {NEW_SECRET} in plaintext and commits it:")
    head = _head(d)
    d.git("add", NEW_SECRET)
    proc = d.run(["git", "commit", "-m", "billing: stripe webhook secret"], expect=1)
    if "plaintext-secret" not in proc.stdout + proc.stderr or _head(d) != head:
        raise DemoFailure("the hook did not refuse the plaintext Secret")
    d.ok("commit refused; nothing entered history")
    d.say("\nThe fix the hook names:")
    d.run(["sopsflow", "encrypt", "-i", NEW_SECRET])
    d.run(["head", "-n", "9", NEW_SECRET])
    d.git("add", NEW_SECRET)
    d.run(["git", "commit", "-m", "billing: stripe webhook secret"])
    committed = d.git("show", f"HEAD:{NEW_SECRET}", echo=False).stdout
    if NEW_SECRET_VALUE in committed or "ENC[AES256_GCM" not in committed:
        raise DemoFailure("the committed Secret is not encrypted")
    d.ok("the encrypted Secret is committed (metadata stays readable for Flux)")


def _head(d: Demo) -> str:
    return d.git("rev-parse", "HEAD", echo=False).stdout.strip()


def step_add_member(d: Demo) -> None:
    import pyrage

    d.heading("5. carol joins the staging team")
    identity = pyrage.x25519.Identity.generate()
    lib.write_key_file(d.carol_key, f"# carol's own key (made on her laptop)\n{identity}\n")
    d.carol = str(identity.to_public())
    d.say(f"carol sends her age public key: {d.carol}")
    d.say("Staging has two rules (manifests, other formats); carol goes into both:")
    for rule in (STAGING_YAML_RULE, STAGING_OTHER_RULE):
        d.run(["sopsflow", "recipients", "add", d.carol, "--rule", str(rule)])
    d.run(["sopsflow", "updatekeys", "-y"])
    staging = _staging_sops_files(d)
    for rel in staging:
        if d.carol not in (d.repo / rel).read_text():
            raise DemoFailure(f"{rel} is not encrypted for carol")
    proc = d.run(["sopsflow", "decrypt", "--extract", '["stringData"]["password"]', STAGING_SECRET],
                 env=d.with_key(d.carol_key), show=False,
                 shown=f"SOPS_AGE_KEY_FILE=carol.agekey sopsflow decrypt --extract '[\"stringData\"][\"password\"]' "
                       f"{STAGING_SECRET}")
    if not proc.stdout:
        raise DemoFailure("carol cannot read staging")
    d.say("    (carol reads the staging password)")
    d.git("commit", "-q", "-a", "-m", "staging: add carol")
    d.ok(f"{len(staging)} staging files re-wrapped for carol; values and data keys unchanged")


def step_remove_member(d: Demo) -> None:
    d.heading("6. alice leaves staging: her key is removed and the data keys rotate")
    d.say("From now on carol runs the commands (SOPS_AGE_KEY_FILE=carol.agekey).")
    d.env = d.with_key(d.carol_key)
    before = {rel: (d.repo / rel).read_text() for rel in _staging_sops_files(d)}
    d.run(["sopsflow", "recipients", "remove", d.alice])
    report_file = d.work / "exposure.json"
    d.run(["sopsflow", "updatekeys", "-y", "--report", str(report_file)],
          shown="sopsflow updatekeys -y --report ../exposure.json")
    report = json.loads(report_file.read_text())
    listed = {entry["path"]: entry for entry in report["files"]}
    if set(listed) != set(before) or not all(e["data_key_rotated"] and e["keys"] for e in listed.values()):
        raise DemoFailure("updatekeys did not rotate every staging data key and list the values to change")
    for rel, old in before.items():
        new = (d.repo / rel).read_text()
        if d.alice in new or _values(old) & _values(new):
            raise DemoFailure(f"{rel}: alice is still a recipient or a value kept its ciphertext")
    d.git("commit", "-q", "-a", "-m", "staging: remove alice, rotate data keys")
    d.ok(f"{len(before)} staging files have new data keys; the report lists each value to change at its source")


def _values(text: str) -> set[str]:
    import re

    return set(re.findall(r"ENC\[AES256_GCM,data:[^,]*", text))


def step_verify_again(d: Demo) -> None:
    d.heading("7. verify is green again, and alice's key decrypts nothing")
    _verify_green(d)
    files = [p.relative_to(d.repo).as_posix() for p in lib.sops_files(d.repo)]
    alice_env = _only_key_env(d, d.alice_key)
    d.say("alice's age key and nothing else (no AWS access, an empty GnuPG home):")
    d.say(f"$ SOPS_AGE_KEY_FILE=alice.agekey sopsflow decrypt FILE   # for each of the {len(files)} SOPS files")
    opened = []
    for rel in files:
        proc = subprocess.run([sys.executable, "-m", "sopsflow", "decrypt", rel], cwd=d.repo, env=alice_env,
                              capture_output=True, text=True, timeout=120)
        d.say(f"    {rel:<52} {'DECRYPTED' if proc.returncode == 0 else f'refused (exit {proc.returncode})'}")
        if proc.returncode == 0:
            opened.append(rel)
    if opened:
        raise DemoFailure(f"alice's key still decrypts {', '.join(opened)}")
    d.ok("alice's key decrypts none of them")
    d.say("\nGit history keeps the old ciphertext, which alice's key still opens - hence the report above:")
    old = d.git("show", f"HEAD~1:{STAGING_SECRET}", echo=False).stdout
    proc = subprocess.run([sys.executable, "-m", "sopsflow", "decrypt", "--input-type", "yaml", "--output-type",
                           "yaml", "--extract", '["stringData"]["password"]', "/dev/stdin"],
                          cwd=d.repo, env=alice_env, input=old, capture_output=True, text=True, timeout=120)
    d.say(f"$ git show HEAD~1:{STAGING_SECRET} | SOPS_AGE_KEY_FILE=alice.agekey sopsflow decrypt ... /dev/stdin")
    d.say(f"    {'opens: change these values at their source' if proc.returncode == 0 else 'does not open'}")
    if proc.returncode != 0:
        raise DemoFailure("the old revision should still open with alice's key")


def step_flux_secret(d: Demo) -> None:
    d.heading("8. The staging cluster's decryption key for Flux (Secret flux-system/sops-age)")
    proc = d.run(["sopsflow", "flux", "age-secret", "--key-file", FLUX_KEY], max_lines=12)
    if ".agekey:" not in proc.stdout or "PRIVATE" not in proc.stderr:
        raise DemoFailure("flux age-secret did not print the Secret with its warning")
    d.say("Applied with `sopsflow flux age-secret --key-file ... | kubectl apply -f -`. Written into the")
    d.say("repository, it would leak the key, so that is refused:")
    target = d.repo / "clusters" / "staging" / "sops-age.yaml"
    with open(target, "w") as handle:
        d.run(["sopsflow", "flux", "age-secret", "--key-file", FLUX_KEY], expect=3, stdout=handle,
              shown=f"sopsflow flux age-secret --key-file {FLUX_KEY} > clusters/staging/sops-age.yaml")
    if target.read_text():
        raise DemoFailure("the private key reached the work tree")
    target.unlink()
    d.ok("refused; nothing was written")


PUBLISH_SETTINGS = """
# `sopsflow publish`: production secrets into AWS Secrets Manager, one secret
# per file holding the JSON of its values; External Secrets reads them back.
publish:
  - path_regex: '^(apps|infrastructure)/production/'
    aws_secretsmanager:
      name: "fleet/{dir}/{stem}"
      region: eu-west-1
"""
ESO_DIR = "deploy/external-secrets"


def _production_sops_files(d: Demo) -> list[str]:
    return [p.relative_to(d.repo).as_posix() for p in lib.sops_files(d.repo)
            if p.relative_to(d.repo).as_posix().startswith(("apps/production/", "infrastructure/production/"))]


def _secrets_manager(d: Demo) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=lib.DUMMY_AWS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=lib.DUMMY_AWS["AWS_SECRET_ACCESS_KEY"],
        region_name=lib.KMS_REGION,
    ).client("secretsmanager", endpoint_url=d.moto.url)


def _secret_versions(d: Demo) -> dict[str, int]:
    """Each fleet/ secret in the moto_server and its number of versions."""
    client = _secrets_manager(d)
    names = [s["Name"] for s in client.list_secrets()["SecretList"] if s["Name"].startswith("fleet/")]
    return {n: len(client.list_secret_version_ids(SecretId=n)["Versions"]) for n in names}


def _published_values(d: Demo) -> list[str]:
    """The secret values now in Secrets Manager (data/stringData of Secret
    manifests, every value of other files), to check the manifests hold none."""
    client = _secrets_manager(d)
    values: list[str] = []
    for name in _secret_versions(d):
        doc = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
        if doc.get("kind") == "Secret":
            for block in ("data", "stringData"):
                values.extend(str(v) for v in (doc.get(block) or {}).values())
        else:
            values.extend(str(v) for v in doc.values())
    return values


def step_publish(d: Demo) -> None:
    d.heading("11. Publish production's secrets to AWS Secrets Manager, for External Secrets")
    settings = d.repo / ".sopsflow.yaml"
    settings.write_text(settings.read_text() + PUBLISH_SETTINGS)
    d.say("The destination goes into .sopsflow.yaml (.sops.yaml stays exactly what sops reads):")
    d.say("\n".join("    " + line for line in PUBLISH_SETTINGS.strip().splitlines()))
    files = _production_sops_files(d)
    env = {**d.env, "AWS_ENDPOINT_URL_SECRETS_MANAGER": d.moto.url}
    d.say(f"Secrets Manager: the same moto_server ({d.moto.url}). First the plan; nothing is written:")
    proc = d.run(["sopsflow", "publish", "--dry-run", *files], env=env, expect=1)
    if proc.stdout.count("create ") != len(files) or _secret_versions(d):
        raise DemoFailure("the dry run should plan one new secret per file and write none")
    d.say("\nApplied, with the External Secrets manifests that read the secrets back:")
    proc = d.run(["sopsflow", "publish", "-y", "--emit-external-secrets", ESO_DIR, *files], env=env)
    versions = _secret_versions(d)
    if len(versions) != len(files) or set(versions.values()) != {1}:
        raise DemoFailure("publish did not create one secret per production file")
    manifest = d.repo / ESO_DIR / "billing-billing-db.yaml"
    d.run(["cat", f"{ESO_DIR}/{manifest.name}"])
    texts = "".join(p.read_text() for p in (d.repo / ESO_DIR).iterdir())
    leaked = [v for v in _published_values(d) if len(v) >= 4 and v in texts]
    if leaked or texts.count("kind: ExternalSecret") != len(files):
        raise DemoFailure("the manifests should be one ExternalSecret per file, without any secret value")
    d.ok(f"{len(files)} secrets in Secrets Manager; {len(files)} SecretStore + ExternalSecret files in {ESO_DIR}/, "
         "no value in them")
    d.say("\nA second run compares with what the store holds and writes nothing (no new secret version):")
    proc = d.run(["sopsflow", "publish", "-y", "--emit-external-secrets", ESO_DIR, *files], env=env)
    if proc.stdout.count("unchanged") != 2 * len(files) or _secret_versions(d) != versions:
        raise DemoFailure("the second run should leave every secret and manifest unchanged")
    d.git("add", ".sopsflow.yaml", ESO_DIR)
    d.git("commit", "-q", "-m", "production: publish to Secrets Manager, ExternalSecrets to read it back")
    d.ok("every secret still has one version; the manifests are committed next to the Flux manifests")


def _only_key_env(d: Demo, key_file: Path) -> dict[str, str]:
    empty_gnupg = d.work / "gnupg-empty"
    empty_gnupg.mkdir(mode=0o700, exist_ok=True)
    # No credentials and no instance metadata: boto3 fails at once instead of probing.
    return lib.clean_env(d.home, SOPS_AGE_KEY_FILE=str(key_file), GNUPGHOME=str(empty_gnupg),
                         AWS_EC2_METADATA_DISABLED="true")


def _staging_sops_files(d: Demo) -> list[str]:
    return [p.relative_to(d.repo).as_posix() for p in lib.sops_files(d.repo)
            if "/staging/" in p.relative_to(d.repo).as_posix()]


STRAY_SECRET = "apps/staging/sentry-token.yaml"
STRAY_SECRET_TEXT = """\
apiVersion: v1
kind: Secret
metadata:
  name: sentry-token
  namespace: billing
type: Opaque
stringData:
  token: sntrys_demo_2f9c4b7e1a
"""


def step_coverage(d: Demo) -> None:
    d.heading("9. Can each cluster decrypt what it deploys? (`clusters:` in .sopsflow.yaml, no key needed)")
    d.run(["sed", "-n", "/^clusters:/,/^  production:/p", ".sopsflow.yaml"], shown="sed -n '/^clusters:/,/^  production:/p' .sopsflow.yaml")
    (d.repo / STRAY_SECRET).write_text(STRAY_SECRET_TEXT)
    d.say("carol encrypts a new staging Secret for her own key only, and stages it:")
    d.run(["sopsflow", "encrypt", "-i", "--age", d.carol, "--encrypted-regex", "^(data|stringData)$", STRAY_SECRET],
          shown=f"sopsflow encrypt -i --age $CAROL --encrypted-regex '^(data|stringData)$' {STRAY_SECRET}")
    d.git("add", STRAY_SECRET)
    proc = d.run(["sopsflow", "verify", "--index"], expect=1)
    if "cluster-cannot-decrypt" not in proc.stdout or "'staging'" not in proc.stdout:
        raise DemoFailure("verify did not say that the staging cluster cannot decrypt the new file")
    d.ok("caught before Flux fails with \"0 successful groups required, got 0\"")
    d.say("\nThe fix verify names: re-wrap the file for its creation rule (the Flux key and carol):")
    d.run(["sopsflow", "updatekeys", "-y", STRAY_SECRET])
    d.git("add", STRAY_SECRET)
    d.run(["sopsflow", "verify", "--index"])
    d.git("commit", "-q", "-m", "billing: sentry token")
    d.ok("the staging cluster's key opens every file it deploys")


def step_rotation(d: Demo) -> None:
    import pyrage

    d.heading("10. Rotating the staging cluster's Flux key, phase 1 of 5")
    identity = pyrage.x25519.Identity.generate()
    lib.write_key_file(d.new_flux_key, f"# the staging cluster's next Flux key\n{identity}\n")
    old, new = lib.age_recipient(d.repo / FLUX_KEY), str(identity.to_public())
    d.say(f"old key: {old}\nnew key: {new}")
    d.run(["sopsflow", "rotate-recipient", old, new], shown="sopsflow rotate-recipient $OLD $NEW")
    staging = _staging_sops_files(d)
    for key_file in (d.repo / FLUX_KEY, d.new_flux_key):
        for rel in staging:
            proc = d.run(["sops", "decrypt", rel], env=_only_key_env(d, key_file), show=False, echo=False)
            if not proc.stdout:
                raise DemoFailure(f"{rel} does not open with {key_file.name}")
    d.say(f"(sops decrypts each of the {len(staging)} staging files with the old key alone, and with the new one)")
    d.run(["sopsflow", "rotate-recipient", "--status"])
    d.git("add", "-A")
    d.git("commit", "-q", "-m", "staging: rotate the Flux key, phase 1 (add, re-wrap)")
    d.ok("the cluster keeps working with its current Secret; phase 2 prints the Secret with both keys")


STEPS: list[Callable[[Demo], None]] = [
    step_setup,
    step_rules,
    step_verify,
    step_decrypt,
    step_hook,
    step_add_member,
    step_remove_member,
    step_verify_again,
    step_flux_secret,
    step_coverage,
    step_rotation,
    step_publish,
]


def main() -> int:
    demo = Demo()
    try:
        for step in STEPS:
            step(demo)
    except (DemoFailure, RuntimeError) as exc:
        demo.say(f"\ndemo step failed: {exc}")
        return 1
    finally:
        demo.close()
    demo.say("\nDemo finished: every step behaved as shown. The temp dir and moto_server are gone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
