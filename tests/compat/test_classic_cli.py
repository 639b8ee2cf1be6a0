"""The classic sops command line, differential: every top-level flag of the
pinned binary's ``--help`` in at least one success and one error case, run
through the real sops and through sopsflow called as ``sops``.

The flag list is read from the binary's own ``--help``, so a flag sopsflow
lacks (or a case missing for one) fails ``test_every_flag_has_cases``.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest

from sopsflow.commands import classic

from ..conftest import base_env, sops_binary
from ..keys.fixtures import Bao, Moto, bao_server, gnupg_home, moto_server  # noqa: F401 (fixtures)
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT, PGP_FP
from .classic_oracle import compare_encrypted, copy_tree, has_metadata, run_in, sops_named_sopsflow

HCKMS = "cn-north-4:0a1b2c3d-0000-0000-0000-000000000000"
GCP = "projects/p/locations/global/keyRings/r/cryptoKeys/k"
AZURE = "https://v.vault.azure.net/keys/k/0123"
PLAIN_YAML = """\
a: 1
password: x
note_unencrypted: hi
data:
    token: t
    list:
        - 1
        - 2
"""
RULES = """\
creation_rules:
    - path_regex: \\.yaml$
      age: {AGE}
      encrypted_regex: ^password$
    - path_regex: \\.json$
      age: {AGE}
"""
# An editor both tools run the same way: one value changes; a new file's example too.
EDITOR = """\
import sys
path = sys.argv[-1]
text = open(path).read()
text = text.replace("password: x", "password: edited", 1).replace("example_value", "edited", 1)
open(path, "w").write(text)
"""


@lru_cache(maxsize=1)
def binary_flags() -> dict[str, tuple[frozenset[str], bool]]:
    """The binary's top-level flags: canonical name -> (every name, takes a value)."""
    text = subprocess.run([sops_binary(), "--help"], capture_output=True, check=True,
                          env=base_env()).stdout.decode()
    section = text.split("GLOBAL OPTIONS:", 1)[1]
    flags: dict[str, tuple[frozenset[str], bool]] = {}
    for line in section.splitlines():
        match = re.match(r"^\s+(-\S.*?)\s{2,}\S", line)
        if not match:
            continue
        spellings = [s.strip() for s in match.group(1).split(",")]
        names = [s.split()[0].lstrip("-") for s in spellings]
        flags[names[0]] = (frozenset(names), any(s.endswith(" value") for s in spellings))
    return flags


@dataclass
class Case:
    id: str
    argv: list[str]
    ok: bool  # the real sops exits 0
    compare: str = "bytes"  # bytes | stdout | error | usage | version | help | encrypted | file:NAME
    fmt: str = "yaml"  # the format of encrypt-side output
    stdin: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # pgp, kms, vault


def C(id: str, argv: str | list[str], ok: bool, compare: str = "bytes", **kw: object) -> Case:  # noqa: N802
    return Case(id, argv.split() if isinstance(argv, str) else argv, ok, compare, **kw)  # type: ignore[arg-type]


ENCRYPT = "encrypted"
CASES: list[Case] = [
    # --- modes and their spellings
    C("decrypt-short", "-d enc.yaml", True),
    C("decrypt-long", "--decrypt enc.yaml", True),
    C("decrypt-single-dash-long", "-decrypt enc.yaml", True),
    C("decrypt-double-dash-short", "--d enc.yaml", True),
    C("decrypt-eq-true", "--decrypt=true enc.yaml", True),
    C("decrypt-repeated-same-form", "-d -d enc.yaml", True),
    C("decrypt-after-double-dash", "-d -- enc.yaml", True),
    C("decrypt-json", "-d enc.json", True),
    C("command-after-double-dash", "-- decrypt enc.yaml", True),
    C("command-after-flags", "--verbose decrypt enc.yaml", True, "stdout"),
    C("decrypt-missing-file", "-d missing.yaml", False, "error"),
    C("decrypt-plaintext-file", "-d plain.yaml", False, "error"),
    C("decrypt-two-forms", "-d --decrypt enc.yaml", False, "usage"),
    C("decrypt-bad-bool", "--decrypt=yes enc.yaml", False, "usage"),
    C("no-file", "-d", False, "error"),
    C("no-arguments", [], False, "error"),
    C("extra-positional-warns", "-d enc.yaml extra", True),
    C("unknown-flag", "--frobnicate enc.yaml", False, "usage"),
    C("bad-flag-syntax", "---d enc.yaml", False, "usage"),
    C("abbreviation-refused", "--decry enc.yaml", False, "usage"),
    C("decrypt-then-encrypt-flags", "-e -a {AGE} -d enc.yaml", True),
    C("encrypt", "-e -a {AGE} plain.yaml", True, ENCRYPT),
    C("encrypt-long", "--encrypt --age={AGE} plain.json", True, ENCRYPT, fmt="json"),
    C("encrypt-dotenv", "-e -a {AGE} plain.env", True, ENCRYPT, fmt="dotenv"),
    C("encrypt-already-encrypted", "-e -a {AGE} enc.yaml", False, "error"),
    C("encrypt-no-keys", "-e plain.yaml", False, "error"),
    C("encrypt-missing-file", "-e -a {AGE} missing.yaml", False, "error"),
    C("rotate", "-r enc.yaml", True, ENCRYPT),
    C("rotate-long-in-place", "--rotate --in-place enc.yaml", True, "file:enc.yaml"),
    C("rotate-plaintext", "-r plain.yaml", False, "error"),
    C("rotate-bad-bool", "--rotate=2 enc.yaml", False, "usage"),
    # --- version and help
    C("version-short", "-v", True, "version"),
    C("version-long", "--version", True, "version"),
    C("version-bad-bool", "--version=maybe", False, "usage"),
    C("disable-version-check", "--disable-version-check --version", True, "version"),
    C("disable-version-check-bad", "--disable-version-check=x -d enc.yaml", False, "usage"),
    C("check-for-updates-decrypt", "--check-for-updates -d enc.yaml", True),
    C("check-for-updates-bad", "--check-for-updates=x -d enc.yaml", False, "usage"),
    C("help-short", "-h", True, "help"),
    C("help-long-with-file", "--help -d enc.yaml", True, "help"),
    C("help-bad-bool", "--help=x", False, "usage"),
    # --- key flags for new files (ignored by -d, as sops does)
    C("age-flag", "-e --age {AGE},{AGE2} plain.yaml", True, ENCRYPT),
    C("age-short-eq", "-e -a={AGE} plain.yaml", True, ENCRYPT),
    C("age-repeated-last-wins", "-e -a {AGE2} -a {AGE} plain.yaml", True, ENCRYPT),
    C("age-bad-recipient", "-e -a bad plain.yaml", False, "error"),
    C("age-no-value", "-e -a", False, "usage"),
    C("flags-after-the-file-are-ignored", "-e plain.yaml -a {AGE}", False, "error"),
    C("pgp-flag", "-e -p {PGP} plain.yaml", True, ENCRYPT, needs=("pgp",)),
    C("pgp-long", "-e --pgp {PGP} plain.yaml", True, ENCRYPT, needs=("pgp",)),
    C("pgp-unknown-key", "-e -p DEADBEEF plain.yaml", False, "error", needs=("pgp",)),
    C("kms-flag", "-e -k {KMS} plain.yaml", True, ENCRYPT, needs=("kms",)),
    C("kms-with-context", "-e --kms {KMS} --encryption-context app:web,env:prod plain.yaml", True, ENCRYPT,
      needs=("kms",)),
    C("kms-bad-arn", "-e -k notarn plain.yaml", False, "error"),
    C("aws-profile-ignored-by-decrypt", "--aws-profile none -d enc.yaml", True),
    C("aws-profile-unknown", "-e -k {KMS} --aws-profile no-such-profile plain.yaml", False, "error",
      needs=("kms",)),
    C("encryption-context-ignored-by-decrypt", "--encryption-context a:b -d enc.yaml", True),
    C("encryption-context-no-value", "-d --encryption-context", False, "usage"),
    C("gcp-kms-ignored-by-decrypt", f"--gcp-kms {GCP} -d enc.yaml", True),
    C("gcp-kms-cannot-wrap", f"-e --gcp-kms {GCP} plain.yaml", False, "error"),
    C("hckms-ignored-by-decrypt", f"--hckms {HCKMS} -d enc.yaml", True),
    C("hckms-cannot-wrap", f"-e --hckms {HCKMS} plain.yaml", False, "error"),
    C("azure-kv-ignored-by-decrypt", f"--azure-kv {AZURE} -d enc.yaml", True),
    C("azure-kv-bad-url", "-e --azure-kv notaurl plain.yaml", False, "error"),
    C("hc-vault-transit-flag", "-e --hc-vault-transit {VAULT} plain.yaml", True, ENCRYPT, needs=("vault",)),
    C("hc-vault-transit-bad-uri", "-e --hc-vault-transit notauri plain.yaml", False, "error"),
    C("age-env-flag-wins", "-e -a {AGE} plain.yaml", True, ENCRYPT, env={"SOPS_AGE_RECIPIENTS": "{AGE2}"}),
    C("age-from-env", "-e plain.yaml", True, ENCRYPT, env={"SOPS_AGE_RECIPIENTS": "{AGE2}"}),
    C("shamir-threshold", "-e -a {AGE} --shamir-secret-sharing-threshold 1 plain.yaml", True, ENCRYPT),
    C("shamir-threshold-not-int", "-e -a {AGE} --shamir-secret-sharing-threshold x plain.yaml", False, "usage"),
    # --- output placement
    C("in-place-encrypt", "-e -i -a {AGE} plain.yaml", True, "file:plain.yaml"),
    C("in-place-decrypt", "-d --in-place enc.yaml", True, "file:enc.yaml"),
    C("in-place-and-output", "-d -i --output out.yaml enc.yaml", False, "error"),
    C("output-decrypt", "-d --output out.yaml enc.yaml", True, "file:out.yaml"),
    C("output-eq-encrypt", "-e -a {AGE} --output=out.yaml plain.yaml", True, "file:out.yaml"),
    C("output-repeated-last-wins", "-d --output first.yaml --output out.yaml enc.yaml", True, "file:out.yaml"),
    C("output-unwritable", "-d --output nodir/out.yaml enc.yaml", False, "error"),
    # --- decrypt options
    C("extract", ["-d", "--extract", '["data"]["token"]', "enc.yaml"], True),
    C("extract-branch", ["-d", "--extract", '["data"]', "enc.yaml"], True),
    C("extract-bad-path", "-d --extract bad enc.yaml", False, "error"),
    C("extract-no-value", "-d --extract", False, "usage"),
    C("input-type", "-d --input-type json --output-type json enc-json.txt", True),
    C("input-type-binary-output", "-d --input-type json enc-json.txt", False, "error"),
    C("input-type-wrong", "-d --input-type json enc.yaml", False, "error"),
    C("output-type", "-d --output-type json enc.yaml", True),
    C("output-type-dotenv-nested", "-d --output-type dotenv enc.yaml", False, "error"),
    C("filename-override", "-d --filename-override x.json enc-json.txt", True),
    C("filename-override-no-rule", "-e --config rules.yaml --filename-override x.ini plain.yaml", False, "error"),
    C("ignore-mac", "-d --ignore-mac tampered.yaml", True),
    C("ignore-mac-false", "-d --ignore-mac=false tampered.yaml", False, "error"),
    C("decryption-order", "-d --decryption-order pgp,age both.yaml", True, needs=("pgp",)),
    C("decryption-order-duplicate", "-d --decryption-order age,age enc.yaml", False, "error"),
    C("decryption-order-env", "-d both.yaml", True, env={"SOPS_DECRYPTION_ORDER": "age,pgp"}, needs=("pgp",)),
    C("indent", "-d --indent 4 --output-type json enc.yaml", True),
    C("indent-yaml", "-d --indent=2 enc.yaml", True),
    C("indent-not-int", "-d --indent x enc.yaml", False, "usage"),
    C("verbose", "--verbose -d enc.yaml", True, "stdout"),
    C("verbose-bad-bool", "--verbose=x -d enc.yaml", False, "usage"),
    C("config", "-e --config rules.yaml plain.yaml", True, ENCRYPT),
    C("config-json-rule", "-e --config=rules.yaml plain.json", True, ENCRYPT, fmt="json"),
    C("config-env", "-e plain.yaml", True, ENCRYPT, env={"SOPS_CONFIG": "rules.yaml"}),
    C("config-flag-beats-env", "-e --config rules.yaml plain.yaml", True, ENCRYPT,
      env={"SOPS_CONFIG": "nothere.yaml"}),
    C("config-missing", "-e --config nothere.yaml -a {AGE} plain.yaml", False, "error"),
    C("enable-local-keyservice", "--enable-local-keyservice -d enc.yaml", True),
    C("enable-local-keyservice-bad", "--enable-local-keyservice=x -d enc.yaml", False, "usage"),
    C("keyservice-with-version", "--keyservice tcp://127.0.0.1:1 --version", True, "version"),
    C("keyservice-no-value", "-d --keyservice", False, "usage"),
    # --- selection options for new files
    C("encrypted-regex", ["-e", "-a", "{AGE}", "--encrypted-regex", "^(password|token)$", "plain.yaml"], True,
      ENCRYPT),
    C("unencrypted-regex", "-e -a {AGE} --unencrypted-regex ^a$ plain.yaml", True, ENCRYPT),
    C("encrypted-suffix", "-e -a {AGE} --encrypted-suffix word plain.yaml", True, ENCRYPT),
    C("unencrypted-suffix", "-e -a {AGE} --unencrypted-suffix _unencrypted plain.yaml", True, ENCRYPT),
    C("encrypted-comment-regex", "-e -a {AGE} --encrypted-comment-regex secret commented.yaml", True, ENCRYPT),
    C("unencrypted-comment-regex", "-e -a {AGE} --unencrypted-comment-regex secret commented.yaml", True, ENCRYPT),
    C("mac-only-encrypted", "-e -a {AGE} --mac-only-encrypted --encrypted-regex ^password$ plain.yaml", True,
      ENCRYPT),
    C("mac-only-encrypted-bad", "-e -a {AGE} --mac-only-encrypted=2 plain.yaml", False, "usage"),
    C("flag-beats-rule", "-e --config rules.yaml --encrypted-regex ^a$ plain.yaml", True, ENCRYPT),
    C("two-selection-flags", "-e -a {AGE} --encrypted-regex a --unencrypted-regex b plain.yaml", False, "error"),
    C("encrypted-suffix-and-rule", "-e --config rules.yaml --encrypted-suffix s plain.yaml", False, "error"),
    C("unencrypted-suffix-no-value", "-e -a {AGE} --unencrypted-suffix", False, "usage"),
    C("encrypted-comment-and-suffix",
      "-e -a {AGE} --encrypted-comment-regex s --unencrypted-suffix u commented.yaml", False, "error"),
    C("unencrypted-comment-and-regex",
      "-e -a {AGE} --unencrypted-comment-regex s --encrypted-regex u commented.yaml", False, "error"),
    C("unencrypted-regex-and-suffix",
      "-e -a {AGE} --unencrypted-regex s --encrypted-suffix u commented.yaml", False, "error"),
    # --- rotate with key changes
    C("add-age", "-r --add-age {AGE2} enc.yaml", True, ENCRYPT),
    C("add-age-bad", "-r --add-age bad enc.yaml", False, "error"),
    C("rm-age", "-r --rm-age {AGE2} enc2.yaml", True, ENCRYPT),
    C("rm-age-missing-file", "-r --rm-age {AGE2} missing.yaml", False, "error"),
    C("add-pgp", "-r --add-pgp {PGP} enc.yaml", True, ENCRYPT, needs=("pgp",)),
    C("add-pgp-unknown", "-r --add-pgp DEADBEEF enc.yaml", False, "error", needs=("pgp",)),
    C("rm-pgp", "-r --rm-pgp {PGP} both.yaml", True, ENCRYPT, needs=("pgp",)),
    C("rm-pgp-missing-file", "-r --rm-pgp {PGP} missing.yaml", False, "error"),
    C("add-kms", "-r --add-kms {KMS} enc.yaml", True, ENCRYPT, needs=("kms",)),
    C("add-kms-missing-file", "-r --add-kms {KMS} missing.yaml", False, "error", needs=("kms",)),
    C("rm-kms-absent-key", "-r --rm-kms arn:aws:kms:us-east-1:000000000000:key/none enc.yaml", True, ENCRYPT),
    C("rm-kms-missing-file", "-r --rm-kms arn:aws:kms:us-east-1:000000000000:key/none missing.yaml", False,
      "error"),
    C("add-gcp-kms-ignored-by-decrypt", f"--add-gcp-kms {GCP} -d enc.yaml", True),
    C("add-gcp-kms-cannot-wrap", f"-r --add-gcp-kms {GCP} enc.yaml", False, "error"),
    C("rm-gcp-kms-absent-key", f"-r --rm-gcp-kms {GCP} enc.yaml", True, ENCRYPT),
    C("rm-gcp-kms-missing-file", f"-r --rm-gcp-kms {GCP} missing.yaml", False, "error"),
    C("add-hckms-ignored-by-decrypt", f"--add-hckms {HCKMS} -d enc.yaml", True),
    C("add-hckms-cannot-wrap", f"-r --add-hckms {HCKMS} enc.yaml", False, "error"),
    C("add-hckms-bad-id", "-r --add-hckms bad enc.yaml", False, "error"),
    C("rm-hckms-absent-key", f"-r --rm-hckms {HCKMS} enc.yaml", True, ENCRYPT),
    C("rm-hckms-missing-file", f"-r --rm-hckms {HCKMS} missing.yaml", False, "error"),
    C("add-azure-kv-ignored-by-decrypt", f"--add-azure-kv {AZURE} -d enc.yaml", True),
    C("add-azure-kv-bad-url", "-r --add-azure-kv notaurl enc.yaml", False, "error"),
    C("rm-azure-kv-absent-key", f"-r --rm-azure-kv {AZURE} enc.yaml", True, ENCRYPT),
    C("rm-azure-kv-missing-file", f"-r --rm-azure-kv {AZURE} missing.yaml", False, "error"),
    C("add-hc-vault-transit", "-r --add-hc-vault-transit {VAULT} enc.yaml", True, ENCRYPT, needs=("vault",)),
    C("add-hc-vault-transit-bad", "-r --add-hc-vault-transit notauri enc.yaml", False, "error"),
    C("rm-hc-vault-transit-absent", "-r --rm-hc-vault-transit http://127.0.0.1:1/v1/transit/keys/k enc.yaml",
      True, ENCRYPT),
    C("rm-hc-vault-transit-missing-file",
      "-r --rm-hc-vault-transit http://127.0.0.1:1/v1/transit/keys/k missing.yaml", False, "error"),
    # --- --set, edit
    C("set", ["--set", '["a"] 5', "enc.yaml"], True, "file:enc.yaml"),
    C("set-new-key", ["--set=[\"data\"][\"new\"] {{\"x\": [true]}}", "enc.yaml"], True, "file:enc.yaml"),
    C("set-no-value", ["--set", '["a"]', "enc.yaml"], False, "error"),
    C("set-bad-json", ["--set", '["a"] {{nope', "enc.yaml"], False, "error"),
    C("edit-bare", "enc.yaml", True, "file:enc.yaml"),
    C("edit-with-store-flags", "--input-type yaml --output-type yaml enc.yaml", True, "file:enc.yaml"),
    C("edit-new-file", "-a {AGE} new.yaml", True, "file:new.yaml"),
    # An edit under -s is an expected divergence (test_show_master_keys_edit_divergence).
    C("show-master-keys-ignored-by-decrypt", "-s -d enc.yaml", True),
    C("show-master-keys-long-ignored-by-decrypt", "--show-master-keys -d enc.yaml", True),
    C("edit-show-master-keys-bad", "--show-master-keys=x enc.yaml", False, "usage"),
    C("edit-new-file-no-keys", "new.yaml", False, "error"),
    C("edit-ignore-mac", "--ignore-mac tampered.yaml", True, "file:tampered.yaml"),
    # --- stdin
    C("decrypt-dev-stdin", "-d --input-type yaml --output-type yaml /dev/stdin", True, stdin=b"@enc.yaml"),
    C("encrypt-dev-stdin", "-e -a {AGE} --input-type yaml --output-type yaml /dev/stdin", True, ENCRYPT,
      stdin=b"@plain.yaml"),
    C("encrypt-dev-stdin-binary", "-e -a {AGE} /dev/stdin", True, ENCRYPT, fmt="json", stdin=b"@plain.yaml"),
    C("decrypt-dev-stdin-garbage", "-d --input-type yaml /dev/stdin", False, "error", stdin=b"not: sops\n"),
]


def test_flag_table_matches_the_binary_help() -> None:
    """Every flag of the pinned binary, with its aliases and value-ness; no extra ones."""
    ours = {flag.name: (frozenset(flag.names), flag.takes_value) for flag in classic.FLAGS}
    assert ours == binary_flags()


def _flags_in(argv: list[str]) -> set[str]:
    names = set()
    for arg in argv:
        if arg == "--" or not arg.startswith("-") or arg == "-":
            continue
        flag = classic.BY_NAME.get(arg.lstrip("-").split("=", 1)[0])
        if flag:
            names.add(flag.name)
    return names


def test_every_flag_has_cases() -> None:
    for name in binary_flags():
        successes = [c.id for c in CASES if c.ok and name in _flags_in(c.argv)]
        errors = [c.id for c in CASES if not c.ok and name in _flags_in(c.argv)]
        assert successes and errors, f"--{name}: success cases {successes}, error cases {errors}"
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# --- the shared files -------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory, second_key: tuple[str, Path]) -> dict[str, str]:
    both = tmp_path_factory.mktemp("agekeys") / "keys.txt"
    both.write_text(AGE_KEY_FILE.read_text() + "\n" + second_key[1].read_text())
    return {"AGE": AGE_RECIPIENT, "AGE2": second_key[0], "PGP": PGP_FP, "AGE_KEY_FILE": str(both)}


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, str], gnupg_home: Path) -> Path:  # noqa: F811
    """Inputs every case starts from, encrypted by the real sops."""
    base = tmp_path_factory.mktemp("classic-base")
    env = base_env(SOPS_AGE_KEY_FILE=keys["AGE_KEY_FILE"], GNUPGHOME=str(gnupg_home))
    (base / "plain.yaml").write_text(PLAIN_YAML)
    (base / "plain.json").write_text('{"a": 1, "password": "x", "nested": {"list": [1, "two"]}}\n')
    (base / "plain.env").write_text("A=1\nPASSWORD=x\n")
    (base / "commented.yaml").write_text("a: 1 # secret\nb: 2\n# secret\nc: 3\n")
    (base / "rules.yaml").write_text(RULES.format(**keys))
    (base / "editor.py").write_text(EDITOR)

    def sops(*argv: str) -> bytes:
        done = subprocess.run([sops_binary(), *argv], cwd=base, env=env, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    (base / "enc.yaml").write_bytes(sops("-e", "-a", keys["AGE"], "plain.yaml"))
    (base / "enc.json").write_bytes(sops("-e", "-a", keys["AGE"], "plain.json"))
    (base / "enc-json.txt").write_bytes((base / "enc.json").read_bytes())
    (base / "enc2.yaml").write_bytes(sops("-e", "-a", f"{keys['AGE']},{keys['AGE2']}", "plain.yaml"))
    (base / "both.yaml").write_bytes(sops("-e", "-a", keys["AGE"], "-p", keys["PGP"], "plain.yaml"))
    # A plaintext value changed behind the MAC's back.
    tampered = (base / "enc.yaml").read_text().replace("note_unencrypted: hi", "note_unencrypted: changed")
    assert tampered != (base / "enc.yaml").read_text()
    (base / "tampered.yaml").write_text(tampered)
    return base


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sops_named_sopsflow(tmp_path_factory.mktemp("sopsflow-as-sops"))


def _env_for(case: Case, keys: dict[str, str], request: pytest.FixtureRequest, base: Path) -> tuple[
        dict[str, str], dict[str, str]]:
    values = dict(keys)
    env = base_env(SOPS_AGE_KEY_FILE=keys["AGE_KEY_FILE"], EDITOR=f"python3 {base}/editor.py")
    if "pgp" in case.needs:
        env["GNUPGHOME"] = str(request.getfixturevalue("gnupg_home"))
    if "kms" in case.needs:
        moto: Moto = request.getfixturevalue("moto_server")
        env.update(moto.env())
        env["AWS_DEFAULT_REGION"] = "us-east-1"
        values["KMS"] = _moto_key(moto)
    if "vault" in case.needs:
        bao: Bao = request.getfixturevalue("bao_server")
        env.update(VAULT_TOKEN=bao.token)
        values["VAULT"] = f"{bao.address}/v1/transit/keys/sops"
    env.update({k: v.format(**values) for k, v in case.env.items()})
    return env, values


_MOTO_KEYS: dict[str, str] = {}


def _moto_key(moto: Moto) -> str:
    if moto.url not in _MOTO_KEYS:
        _MOTO_KEYS[moto.url] = moto.create_key()
    return _MOTO_KEYS[moto.url]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_classic_against_sops(case: Case, keys: dict[str, str], base_dir: Path, launcher: Path,
                              tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env, values = _env_for(case, keys, request, base_dir)
    argv = [a.format(**values) for a in case.argv]
    stdin = case.stdin
    if stdin is not None and stdin.startswith(b"@"):
        stdin = (base_dir / stdin[1:].decode()).read_bytes()
    theirs = run_in(sops_binary(), argv, copy_tree(base_dir, tmp_path / "sops"), env, stdin)
    ours = run_in(str(launcher), argv, copy_tree(base_dir, tmp_path / "sopsflow"), env, stdin)
    detail = (f"sops: {theirs.code} {theirs.stderr[-300:]!r}\nsopsflow: {ours.code} {ours.stderr[-300:]!r}\n"
              f"stdout: {theirs.stdout[:200]!r} / {ours.stdout[:200]!r}")
    assert (theirs.code == 0) == case.ok, detail
    assert ours.code == theirs.code, detail
    if case.compare == "bytes":
        assert ours.stdout == theirs.stdout, detail
        assert bool(ours.stderr) == bool(theirs.stderr), detail
    elif case.compare == "stdout":
        assert ours.stdout == theirs.stdout, detail
    elif case.compare == "error":
        assert ours.stdout == theirs.stdout == b"", detail
        assert ours.stderr and theirs.stderr, detail
        assert b"Traceback" not in ours.stderr and len(ours.stderr.decode().strip().splitlines()) <= 2, detail
    elif case.compare == "usage":
        assert ours.stdout.splitlines()[0] == theirs.stdout.splitlines()[0], detail
        assert ours.stderr and theirs.stderr, detail
    elif case.compare == "version":
        assert theirs.stdout.startswith(b"sops 3.11.0") and ours.stdout.startswith(b"sops 3.11.0 (sopsflow "), detail
        assert not ours.stderr, detail
    elif case.compare == "help":
        assert ours.stdout and theirs.stdout and not ours.stderr, detail
    elif case.compare == ENCRYPT:
        assert ours.stdout and theirs.stdout and bool(ours.stderr) == bool(theirs.stderr), detail
        compare_encrypted(ours.stdout, theirs.stdout, case.fmt, str(launcher), env, tmp_path / "cross")
    elif case.compare.startswith("file:"):
        name = case.compare.split(":", 1)[1]
        mine, real = (ours.workdir / name).read_bytes(), (theirs.workdir / name).read_bytes()
        assert ours.stdout == theirs.stdout, detail
        if has_metadata(real):
            compare_encrypted(mine, real, Path(name).suffix.lstrip(".") or "yaml", str(launcher), env,
                              tmp_path / "cross")
        else:
            assert mine == real
    else:
        raise AssertionError(case.compare)


def test_show_master_keys_edit_divergence(keys: dict[str, str], base_dir: Path, launcher: Path, tmp_path: Path,
                                          request: pytest.FixtureRequest) -> None:
    """Deliberate difference, under the name sops too: sops discards the edits
    made with -s (it re-encrypts the tree it read); sopsflow applies them."""
    env, _values = _env_for(C("s", "-s enc.yaml", True), keys, request, base_dir)
    theirs = run_in(sops_binary(), ["-s", "enc.yaml"], copy_tree(base_dir, tmp_path / "sops"), env, None)
    ours = run_in(str(launcher), ["-s", "enc.yaml"], copy_tree(base_dir, tmp_path / "sopsflow"), env, None)
    assert theirs.code == ours.code == 0, (theirs.stderr, ours.stderr)
    decrypt = [sops_binary(), "-d", "enc.yaml"]
    real = subprocess.run(decrypt, cwd=theirs.workdir, env=env, capture_output=True, check=True).stdout
    mine = subprocess.run(decrypt, cwd=ours.workdir, env=env, capture_output=True, check=True).stdout
    assert b"password: x" in real and b"password: edited" in mine
