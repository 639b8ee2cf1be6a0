"""``sopsflow recipients add|remove``: .sops.yaml edits that keep comments and layout,
checked against what sopsflow's config loader and the real sops read from the result."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from sopsflow import errors
from sopsflow.errors import SopsError
from sopsflow.gitops.recipients import (
    add_recipient,
    detect_type,
    load_round_trip,
    recipient_labels,
    remove_recipient,
)

from ..conftest import run_sops, run_sopsflow
from ..updatefixtures import UpdateRepo, new_age_id, recipients_of, sops_decrypt_all, template_repo
from ..vectors import PGP_FP

NEW = new_age_id("new").recipient
A = new_age_id("a").recipient
B = new_age_id("b").recipient
C = new_age_id("c").recipient
FP = PGP_FP
ARN = "arn:aws:kms:us-east-1:123456789012:key/8a4b6e75-0000-4000-8000-000000000001"
ROLE = "arn:aws:iam::123456789012:role/sops"

CONFIG = f"""\
# Company secrets. Keep this comment.
creation_rules:
  # prod: list with owners
  - path_regex: ^prod/
    encrypted_regex: '^(data|stringData)$'
    age:
      - {A}  # alice
      # bob joined in May
      - {B}  # bob
    pgp: {FP}

  - path_regex: "^staging/"
    age: {A}, {B}
  - path_regex: ^apps/
    age: >-
      {A},
      {B}
  - path_regex: ^shared/
    shamir_threshold: 2
    key_groups:
      - age:
          - {A}
        kms:
          - arn: {ARN}
            role: {ROLE}
      - age: [{B}]
        merge:
          - pgp: [{FP}]
  - kms: '{ARN}'   # catch-all, quoted
stores:
  yaml:
    indent: 2 # two spaces
"""


def _changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]


def _rule_identities(text: str, tmp_path: Path, index: int) -> list[list[str]]:
    from sopsflow.config.decoder import load_config

    path = tmp_path / f"check-{abs(hash(text))}.yaml"
    path.write_text(text)
    # sorted: the order inside a group is the config loader's business
    return [sorted(s.identity() for s in g) for g in load_config(path).rules[index].key_specs()]


def test_round_trip_is_exact() -> None:
    _, _, exact = load_round_trip(CONFIG)
    assert exact
    for layout in ("creation_rules:\n- age: x\n  path_regex: a\n", "creation_rules:\n    -   age: x\n",
                   "---\ncreation_rules:\n    - age: [x, y]   # flow\n"):
        assert load_round_trip(layout)[2], layout


@pytest.mark.parametrize(("rule", "removed", "added"), [
    (0, [], [f"      - {NEW}"]),
    (1, [f"    age: {A}, {B}"], [f"    age: {A}, {B}, {NEW}"]),
    (2, [f"      {B}"], [f"      {B},", f"      {NEW}"]),
])
def test_add_to_flat_rules_changes_only_that_rule(rule: int, removed: list[str], added: list[str],
                                                  tmp_path: Path) -> None:
    result = add_recipient(CONFIG, NEW, rule=rule)
    assert result.changed_rules == [rule] and result.layout_exact
    changed = _changed_lines(CONFIG, result.text)
    assert [line[2:] for line in changed if line.startswith("- ")] == removed
    assert [line[2:] for line in changed if line.startswith("+ ")] == added
    assert set(_rule_identities(result.text, tmp_path, rule)[0]) >= {A, B, NEW}


def test_add_to_folded_string_keeps_one_per_line() -> None:
    text = add_recipient(CONFIG, NEW, rule=2).text
    assert f"    age: >-\n      {A},\n      {B},\n      {NEW}\n" in text


def test_add_to_key_group_and_kms(tmp_path: Path) -> None:
    with pytest.raises(SopsError, match="choose one with --group"):
        add_recipient(CONFIG, NEW, rule=3)
    text = add_recipient(CONFIG, NEW, rule=3, group=2).text
    assert _rule_identities(text, tmp_path, 3) == [sorted([A, f"{ARN}+{ROLE}"]), sorted([B, NEW, FP])]
    kms_text = add_recipient(CONFIG, f"{ARN.replace('0001', '0002')}+{ROLE}", rule=3, group=1).text
    assert f"          - arn: {ARN.replace('0001', '0002')}\n            role: {ROLE}\n" in kms_text
    already = add_recipient(CONFIG, ARN, rule=4)
    assert already.changed_rules == [] and "already" in already.messages[0] and already.text == CONFIG


SECTIONED = """\
creation_rules:
  # --- one -------------------------------------------------------------
  - path_regex: ^one/
    age:
      - {a}  # first
      - {b}  # second

  # --- two: a string field ---------------------------------------------
  - path_regex: ^two/
    pgp: 85D77543B3D624B63CEA9E6DBC17301B491B3F21  # dev team

  # --- three: key groups -----------------------------------------------
  - path_regex: ^three/
    key_groups:
      - kms:
          - arn: arn:aws:kms:us-east-1:111111111111:key/one  # main

  # --- four ---------------------------------------------------------------
  - age: {a}
"""


@pytest.mark.parametrize("rule,key_type", [(0, "age"), (1, "age"), (2, "kms")])
def test_added_recipient_goes_above_the_next_sections_comment(rule: int, key_type: str) -> None:
    """ruamel keeps the lines after an entry in that entry's comment; the new
    recipient must still land inside its rule, above the next heading."""
    a, b, c = (new_age_id(n).recipient for n in "abc")
    text = SECTIONED.format(a=a, b=b)
    key = c if key_type == "age" else "arn:aws:kms:us-east-1:111111111111:key/two"
    result = add_recipient(text, key, rule=rule)
    diff = [line for line in difflib.ndiff(text.splitlines(), result.text.splitlines()) if line[:1] in "+-"]
    assert all(line.startswith("+ ") for line in diff) and len(diff) == 1, diff
    added = diff[0][2:]
    lines = result.text.splitlines()
    position = lines.index(added)
    assert lines[position + 1] == "", lines[position - 2:position + 3]  # the blank line before the next heading
    assert lines[position + 2].startswith("  # ---")
    assert key in added


def test_add_needs_a_rule_choice_when_ambiguous() -> None:
    with pytest.raises(SopsError, match="choose one with --rule N or --path-regex RE"):
        add_recipient(CONFIG, NEW)
    assert add_recipient(CONFIG, NEW, path_regex="^staging/").changed_rules == [1]
    with pytest.raises(SopsError, match="no creation rule has path_regex"):
        add_recipient(CONFIG, NEW, path_regex="^nope/")
    with pytest.raises(SopsError, match="there is no rule 9"):
        add_recipient(CONFIG, NEW, rule=9)


def test_remove_everywhere_keeps_comments(tmp_path: Path) -> None:
    result = remove_recipient(CONFIG, B)
    assert result.changed_rules == [0, 1, 2, 3]
    text = result.text
    assert B not in text
    assert "# bob joined in May" in text and "# alice" in text and "  # bob\n" not in text
    assert _rule_identities(text, tmp_path, 0) == [sorted([A, FP])]
    assert _rule_identities(text, tmp_path, 1) == [[A]]
    assert _rule_identities(text, tmp_path, 2) == [[A]]
    assert _rule_identities(text, tmp_path, 3) == [sorted([A, f"{ARN}+{ROLE}"]), [FP]]
    assert "    indent: 2 # two spaces\n" in text
    # Lines of rules and sections that did not hold B are untouched.
    untouched = [line for line in CONFIG.splitlines() if B not in line and not line.startswith(("    age:", "      " + A))]
    for line in untouched:
        if line.strip() not in ("- age: [" + B + "]", "merge:"):
            assert line in text.splitlines(), line


def test_remove_pgp_and_kms_forms(tmp_path: Path) -> None:
    text = remove_recipient(CONFIG, FP.lower(), rule=0).text
    assert "pgp:" not in text.split("  - path_regex: \"^staging/\"")[0]
    assert _rule_identities(text, tmp_path, 0) == [sorted([A, B])]
    grouped = remove_recipient(CONFIG, ARN, rule=3).text  # an ARN alone matches it with any role
    assert _rule_identities(grouped, tmp_path, 3) == [[A], sorted([B, FP])]


def test_remove_refuses_to_empty_a_rule_or_group() -> None:
    with pytest.raises(SopsError, match="without any key"):
        remove_recipient(CONFIG, ARN, rule=4)
    lone = f"creation_rules:\n  - key_groups:\n      - age: [{A}]\n      - age: [{B}]\n"
    with pytest.raises(SopsError, match="key group 2 .* empty"):
        remove_recipient(lone, B)
    with pytest.raises(SopsError, match="not a recipient"):
        remove_recipient(CONFIG, NEW)


def test_key_types_and_validation() -> None:
    assert detect_type(NEW) == "age" and detect_type(FP) == "pgp" and detect_type(ARN) == "kms"
    assert detect_type(f"{ARN}+{ROLE}") == "kms"
    assert detect_type("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x") == "age"
    with pytest.raises(SopsError) as info:
        detect_type("bogus")
    assert info.value.code == errors.GENERIC
    with pytest.raises(SopsError, match="not a valid age recipient"):
        add_recipient(CONFIG, NEW[:-1] + ("q" if NEW[-1] != "q" else "p"), rule=0)


def test_labels() -> None:
    labels = recipient_labels(CONFIG)
    assert labels == {A: "alice", B: "bob", ARN: "catch-all, quoted"}


# --- the command -------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> UpdateRepo:
    return template_repo(tmp_path_factory).copy_to(tmp_path / "repo")


def test_cli_add_then_sops_sees_the_new_recipient(repo: UpdateRepo) -> None:
    """After each edit the real sops reads the config: its updatekeys diff
    (answered "n", so nothing is written) names the added key for the rule."""
    team = repo.team
    before_config = repo.path(".sops.yaml").read_text()
    cases = [("0", None, "clusters/prod/secret-0.yaml"), ("1", None, "clusters/staging/secret-0.json"),
             ("2", "2", "shared/secret-0.env"), ("3", None, "apps/secret-0.ini")]
    env = team.env()
    for rule, group, probe in cases:
        args = ["recipients", "add", team.newcomer.recipient, "--rule", rule] + (["--group", group] if group else [])
        done = run_sopsflow(args, env=env, cwd=repo.root)
        assert done.returncode == 0, done.stderr.decode()
        assert "Run `sopsflow updatekeys`" in done.stdout.decode()
        before = repo.path(probe).read_bytes()
        sops = run_sops(["updatekeys", probe], env=env, cwd=repo.root, input=b"n\n")
        assert f"+++ {team.newcomer.recipient}" in sops.stdout.decode(), (rule, sops.stdout.decode())
        assert repo.path(probe).read_bytes() == before
    after_config = repo.path(".sops.yaml").read_text()
    assert [line for line in _changed_lines(before_config, after_config) if line.startswith("- ")] == [
        f"-     age: {team.admin.recipient},{team.staging.recipient}",
        f"-       {team.dev.recipient}",
    ]
    assert "# two groups: admin AND ops are both needed" in after_config


def test_cli_add_with_update(repo: UpdateRepo) -> None:
    team = repo.team
    done = run_sopsflow(["recipients", "add", team.newcomer.recipient, "--path-regex", "^clusters/staging/",
                         "--update", "-y"], env=team.env(team.admin), cwd=repo.root)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert "Updated 15 file(s) (0 with a new data key)." in done.stdout.decode()
    rels = repo.in_dir("clusters/staging")
    assert all(team.newcomer.recipient in recipients_of(repo.path(r))[0] for r in rels)
    assert sops_decrypt_all(repo, rels[:5], team.env(team.newcomer)) == [repo.plain[r] for r in rels[:5]]


def test_cli_remove_with_update_rotates(repo: UpdateRepo) -> None:
    team = repo.team
    done = run_sopsflow(["recipients", "remove", team.dev.recipient, "--update", "-y"],
                        env=team.env(team.admin), cwd=repo.root)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    out = done.stdout.decode()
    assert f"removed {team.dev.recipient} from rule 3 (^apps/)" in out
    assert "Updated 15 file(s) (15 with a new data key)." in out and "git history" in out
    assert all(recipients_of(repo.path(r)) == [[team.admin.recipient]] for r in repo.in_dir("apps"))


def test_cli_errors(repo: UpdateRepo) -> None:
    team = repo.team
    before = repo.path(".sops.yaml").read_bytes()
    ambiguous = run_sopsflow(["recipients", "add", team.newcomer.recipient], env=team.env(), cwd=repo.root)
    assert ambiguous.returncode == 1 and "--rule N" in ambiguous.stderr.decode()
    missing = run_sopsflow(["recipients", "remove", team.newcomer.recipient], env=team.env(), cwd=repo.root)
    assert missing.returncode == 1 and "not a recipient" in missing.stderr.decode()
    assert repo.path(".sops.yaml").read_bytes() == before
    elsewhere = run_sopsflow(["recipients", "add", team.newcomer.recipient], env=team.env(), cwd=repo.root.parent)
    assert elsewhere.returncode == errors.CONFIG_FILE_NOT_FOUND


def test_cli_refuses_an_edit_that_breaks_the_config(tmp_path: Path) -> None:
    # The file is valid YAML that sops rejects once the edit lands (a scalar
    # where key_groups needs a list is rejected already; here: two options).
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - age: {A}\n    encrypted_regex: a\n    unencrypted_regex: b\n"
    )
    done = run_sopsflow(["recipients", "add", NEW, "--rule", "0"], cwd=tmp_path)
    assert done.returncode == errors.ERROR_READING_CONFIG, done.stderr.decode()
    assert NEW not in (tmp_path / ".sops.yaml").read_text()
