"""Every stored test vector decrypts with ``sopsflow decrypt`` to exactly the
bytes ``sops decrypt`` prints, and to the stored plaintext.

* ``tests/data/vectors``: the sops 3.11.0 vectors of every store
  (the age identity decrypts them; the two Shamir vectors need the age AND
  the PGP key), plus the before/after files of the rotate and updatekeys
  operations (no stored plaintext: compared with sops only);
* ``vectors.UPSTREAM`` (external, skipped when absent): sops' own example and
  functional-test files (PGP key groups, files written by sops 3.3 to 3.13),
  decrypted with the upstream test PGP key in a throwaway GnuPG home.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..keys import fixtures as key_fixtures
from ..vectors import GENERATED, UPSTREAM, manifest, needs_external
from . import Run, age_env, flow_argv, run_all, sops_argv, tool_env

# The session GnuPG home holding both test secret keys (tests/keys/fixtures.py).
gnupg_home = key_fixtures.gnupg_home


def _generated_cases() -> list[Any]:
    cases = []
    for vector in manifest()["vectors"]:
        needs_pgp = not vector["decrypts_with_age_key_alone"]
        cases.append(pytest.param(vector["encrypted"], vector["plaintext"], needs_pgp, id=vector["id"]))
    for operation in manifest()["operations"]:
        for side in ("before", "after"):
            cases.append(pytest.param(operation[side], None, False, id=f"{operation['id']}-{side}"))
    return cases


# encrypted file -> sops 3.11.0's output (README of sops-upstream)
UPSTREAM_CASES = {
    "example.yaml": "expected/example.plain.yaml",
    "example.json": "expected/example.plain.json",
    "example.ini": "expected/example.plain.ini",
    "example.txt": "expected/example.plain.txt",
    "functional-tests/res/comments.enc.yaml": "expected/functional-tests/res/comments.enc.plain.yaml",
    "functional-tests/res/comments_unencrypted_comments.yaml": (
        "expected/functional-tests/res/comments_unencrypted_comments.plain.yaml"
    ),
    "functional-tests/res/format.enc.yaml": "expected/functional-tests/res/format.enc.plain.yaml",
    "functional-tests/res/format.enc.json": "expected/functional-tests/res/format.enc.plain.json",
    "functional-tests/res/format.enc.env": "expected/functional-tests/res/format.enc.plain.env",
    "functional-tests/res/format.enc.ini": "expected/functional-tests/res/format.enc.plain.ini",
    "functional-tests/res/format-2.enc.ini": "expected/functional-tests/res/format-2.enc.plain.ini",
    "functional-tests/res/multiple_keys.yaml": "expected/functional-tests/res/multiple_keys.plain.yaml",
}


def _decrypt_both(path: Path, env: dict[str, str], *extra: str) -> tuple[Run, Run]:
    flow, sops = run_all(
        [flow_argv(["decrypt", *extra, str(path)]), sops_argv(["decrypt", *extra, str(path)])], env=env, cwd=path.parent
    )
    return flow, sops


def _assert_same(flow: Run, sops: Run, stored: Path | None) -> None:
    assert sops.rc == 0, sops.why()
    assert flow.rc == 0, flow.why()
    assert flow.out == sops.out
    if stored is not None:
        assert flow.out == stored.read_bytes()


@pytest.mark.parametrize(("encrypted", "plaintext", "needs_pgp"), _generated_cases())
def test_generated_vector(encrypted: str, plaintext: str | None, needs_pgp: bool, request: pytest.FixtureRequest) -> None:
    extra = {"GNUPGHOME": str(request.getfixturevalue("gnupg_home"))} if needs_pgp else {}
    flow, sops = _decrypt_both(GENERATED / encrypted, age_env(**extra))
    _assert_same(flow, sops, GENERATED / plaintext if plaintext else None)


def test_shamir_vector_needs_both_groups() -> None:
    """With the age key alone a 2-of-2 file does not open: both tools exit 128."""
    vector = next(v for v in manifest()["vectors"] if v["id"] == "shamir-2of2-yaml")
    flow, sops = _decrypt_both(GENERATED / vector["encrypted"], age_env())
    assert sops.rc == 128
    assert flow.rc == sops.rc
    assert flow.out == b""


@needs_external
@pytest.mark.parametrize("encrypted", sorted(UPSTREAM_CASES))
def test_upstream_file(encrypted: str, gnupg_home: Path) -> None:
    flow, sops = _decrypt_both(UPSTREAM / encrypted, tool_env(GNUPGHOME=str(gnupg_home)))
    _assert_same(flow, sops, UPSTREAM / UPSTREAM_CASES[encrypted])


@needs_external
def test_upstream_file_without_mac(gnupg_home: Path) -> None:
    """no_mac.yaml: exit 51 in both; with --ignore-mac both print the stored output."""
    path = UPSTREAM / "functional-tests/res/no_mac.yaml"
    env = tool_env(GNUPGHOME=str(gnupg_home))
    flow, sops = _decrypt_both(path, env)
    assert sops.rc == 51
    assert flow.rc == sops.rc
    assert flow.out == b""
    flow, sops = _decrypt_both(path, env, "--ignore-mac")
    _assert_same(flow, sops, UPSTREAM / "expected/functional-tests/res/no_mac.plain-ignore-mac.yaml")


def test_every_generated_vector_is_covered() -> None:
    """A vector added to the generated folders later is not silently skipped."""
    covered = {GENERATED / p.values[0] for p in _generated_cases()}
    missing = sorted(str(p) for p in set(GENERATED.rglob("*.enc.*")) - covered)
    assert not missing


@needs_external
def test_every_upstream_file_is_covered() -> None:
    """An upstream file added later is not silently skipped."""
    covered = {UPSTREAM / p for p in UPSTREAM_CASES}
    covered.add(UPSTREAM / "functional-tests/res/no_mac.yaml")
    on_disk = {
        p
        for p in UPSTREAM.rglob("*")
        if p.is_file() and "expected" not in p.parts and p.suffix in (".yaml", ".json", ".ini", ".txt", ".env")
    }
    plain_fixtures = {"comments.yaml", "comments_list.yaml", "plainfile.yaml"}
    missing = sorted(str(p) for p in on_disk - covered if p.name not in plain_fixtures)
    assert not missing
