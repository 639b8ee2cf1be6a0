"""sopsflow.gitops.merge: the three-way tree merge (pure) and whole encrypted
documents (files made and checked by the real sops binary)."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow import errors
from sopsflow.errors import SopsError
from sopsflow.gitops.merge import (
    FRESH,
    MISSING,
    OURS,
    THEIRS_RECIPIENTS,
    KeyPolicy,
    merge_documents,
    merge_trees,
    same,
    show_path,
)
from sopsflow.operations import decrypt_document, encrypt_document, rewrap_keys
from sopsflow.stores import store_for_path
from sopsflow.tree import Comment, TreeMap

from .conftest import base_env, run_sops
from .vectors import AGE_KEY_FILE, AGE_RECIPIENT

ENC_LINE = re.compile(r"ENC\[AES256_GCM,[^\]]*\]")


def tm(*entries: Any) -> TreeMap:
    return TreeMap(entries)


def merge1(base: TreeMap | None, ours: TreeMap, theirs: TreeMap) -> tuple[TreeMap, list[str]]:
    result = merge_trees(None if base is None else [base], [ours], [theirs])
    return result.branches[0], result.conflicts


# --- the tree merge ------------------------------------------------------------------------


def test_changes_to_different_keys_are_combined() -> None:
    base = tm(("a", 1), ("b", "x"), ("c", tm(("d", True), ("e", 2.5))))
    ours = tm(("a", 2), ("b", "x"), ("c", tm(("d", True), ("e", 2.5))))
    theirs = tm(("a", 1), ("b", "x"), ("c", tm(("d", True), ("e", 3.5))))
    merged, conflicts = merge1(base, ours, theirs)
    assert conflicts == []
    assert same(merged, tm(("a", 2), ("b", "x"), ("c", tm(("d", True), ("e", 3.5)))))


def test_identical_change_on_both_sides_is_fine() -> None:
    base = tm(("a", "old"))
    merged, conflicts = merge1(base, tm(("a", "new")), tm(("a", "new")))
    assert conflicts == [] and same(merged, tm(("a", "new")))


def test_conflict_names_the_key_path_and_never_a_value() -> None:
    base = tm(("db", tm(("user", "u"), ("password", "base-pw"))), ("list", ["x", tm(("k", "v0"))]))
    ours = tm(("db", tm(("user", "u"), ("password", "ours-pw"))), ("list", ["x", tm(("k", "v1"))]))
    theirs = tm(("db", tm(("user", "u"), ("password", "theirs-pw"))), ("list", ["x", tm(("k", "v2"))]))
    _merged, conflicts = merge1(base, ours, theirs)
    assert conflicts == ['["db"]["password"]', '["list"][1]["k"]']
    text = "\n".join(conflicts)
    for value in ("base-pw", "ours-pw", "theirs-pw", "v0", "v1", "v2"):
        assert value not in text


def test_types_are_not_confused() -> None:
    # 1, 1.0 and True are equal in Python but different YAML values.
    base = tm(("a", 1))
    _m, conflicts = merge1(base, tm(("a", True)), tm(("a", 1.0)))
    assert conflicts == ['["a"]']
    merged, conflicts = merge1(base, tm(("a", 1)), tm(("a", 1.0)))
    assert conflicts == [] and type(merged.get("a")) is float
    nan = float("nan")
    merged, conflicts = merge1(tm(("n", nan)), tm(("n", nan)), tm(("n", nan), ("x", 1)))
    assert conflicts == [] and merged.keys_() == ["n", "x"]


def test_delete_on_one_side() -> None:
    base = tm(("a", 1), ("b", 2))
    merged, conflicts = merge1(base, tm(("a", 1)), base)
    assert conflicts == [] and same(merged, tm(("a", 1)))
    merged, conflicts = merge1(base, tm(("a", 1)), tm(("a", 5), ("b", 2)))
    assert conflicts == [] and same(merged, tm(("a", 5)))
    _m, conflicts = merge1(base, tm(("a", 1)), tm(("a", 1), ("b", 3)))
    assert conflicts == ['["b"] (deleted on one side, changed on the other)']
    merged, conflicts = merge1(base, tm(("a", 1)), tm(("a", 1)))
    assert conflicts == [] and same(merged, tm(("a", 1)))


def test_additions_and_order() -> None:
    base = tm(("a", 1), ("z", 9))
    ours = tm(("a", 1), ("o", 2), ("z", 9))
    theirs = tm(("first", 0), ("a", 1), ("t", 3), ("z", 9), ("last", 4))
    merged, conflicts = merge1(base, ours, theirs)
    assert conflicts == []
    assert merged.keys_() == ["first", "a", "o", "t", "z", "last"]
    _m, conflicts = merge1(base, tm(("a", 1), ("z", 9), ("n", "x")), tm(("a", 1), ("z", 9), ("n", "y")))
    assert conflicts == ['["n"]']


def test_no_base_merges_maps_added_on_both_sides() -> None:
    merged, conflicts = merge1(None, tm(("a", tm(("x", 1)))), tm(("a", tm(("y", 2)))))
    assert conflicts == [] and same(merged, tm(("a", tm(("x", 1), ("y", 2)))))
    _m, conflicts = merge1(None, tm(("a", 1)), tm(("a", 2)))
    assert conflicts == ['["a"]']


def test_comments_follow_their_keys() -> None:
    base = tm(Comment(" about a"), ("a", 1), Comment(" about b"), ("b", 2), ("c", 3), Comment(" trailer"))
    # ours deletes b (its comment goes with it); theirs comments c and changes the trailer
    ours = tm(Comment(" about a"), ("a", 1), ("c", 3), Comment(" trailer"))
    theirs = tm(Comment(" about a"), ("a", 1), Comment(" about b"), ("b", 2), Comment(" about c"), ("c", 3),
                Comment(" new trailer"))
    merged, conflicts = merge1(base, ours, theirs)
    assert conflicts == []
    assert same(merged, tm(Comment(" about a"), ("a", 1), Comment(" about c"), ("c", 3), Comment(" new trailer")))
    # a key added by theirs brings its comment along
    theirs2 = tm(Comment(" about a"), ("a", 1), Comment(" new key"), ("n", 0), Comment(" about b"), ("b", 2),
                 ("c", 3), Comment(" trailer"))
    merged, conflicts = merge1(base, ours, theirs2)
    assert conflicts == []
    assert same(merged, tm(Comment(" about a"), ("a", 1), Comment(" new key"), ("n", 0), ("c", 3),
                           Comment(" trailer")))


def test_comment_conflict_is_reported_without_text() -> None:
    base = tm(Comment(" old"), ("a", 1))
    _m, conflicts = merge1(base, tm(Comment(" secret-ours"), ("a", 1)), tm(Comment(" secret-theirs"), ("a", 1)))
    assert conflicts == ['["a"] (comments above it)']


def test_lists() -> None:
    base = tm(("l", ["a", "b", "c"]))
    merged, conflicts = merge1(base, tm(("l", ["A", "b", "c"])), tm(("l", ["a", "b", "C"])))
    assert conflicts == [] and same(merged, tm(("l", ["A", "b", "C"])))
    merged, conflicts = merge1(base, tm(("l", ["a", "b", "c", "d"])), base)
    assert conflicts == [] and same(merged, tm(("l", ["a", "b", "c", "d"])))
    _m, conflicts = merge1(base, tm(("l", ["a", "b", "c", "d"])), tm(("l", ["a", "b"])))
    assert conflicts == ['["l"]']


def test_repeated_keys_make_a_mapping_one_value() -> None:
    base = tm(("m", tm(("k", 1), ("k", 2), ("x", 0))))
    ours = tm(("m", tm(("k", 1), ("k", 2), ("x", 1))))
    theirs = tm(("m", tm(("k", 5), ("k", 2), ("x", 0))))
    _m, conflicts = merge1(base, ours, theirs)
    assert conflicts == ['["m"]']


def test_several_documents() -> None:
    base = [tm(("a", 1)), tm(("b", 1))]
    result = merge_trees(base, [tm(("a", 2)), tm(("b", 1))], [tm(("a", 1)), tm(("b", 2))])
    assert result.conflicts == [] and same(result.branches, [tm(("a", 2)), tm(("b", 2))])
    result = merge_trees(base, [tm(("a", 2)), tm(("b", 1))], [tm(("a", 1)), tm(("b", 1)), tm(("c", 1))])
    assert result.conflicts == ["(the number of YAML documents changed)"]
    result = merge_trees(base, base, [tm(("a", 1)), tm(("b", 1)), tm(("c", 1))])
    assert result.conflicts == [] and len(result.branches) == 3
    result = merge_trees(base, [tm(("a", 2)), tm(("b", 1))], [tm(("a", 3)), tm(("b", 1))])
    assert result.conflicts == ['document 1: ["a"]']


def test_show_path_quotes() -> None:
    assert show_path(("a", 0, 'say "hi"')) == "[\"a\"][0]['say \"hi\"']"
    assert show_path(()) == "(top level)"
    assert MISSING is not None


# --- properties ------------------------------------------------------------------------------

_keys = st.sampled_from(["a", "b", "c", "d", "e"])
_scalars = st.one_of(st.integers(-3, 3), st.booleans(), st.sampled_from(["x", "y", "", "1"]), st.none(),
                     st.sampled_from([1.0, 2.5]))


def _maps(depth: int) -> st.SearchStrategy[TreeMap]:
    values: st.SearchStrategy[Any] = _scalars if depth == 0 else st.one_of(_scalars, _maps(depth - 1),
                                                                            st.lists(_scalars, max_size=3))
    return st.dictionaries(_keys, values, max_size=4).map(lambda d: TreeMap(list(d.items())))


@settings(max_examples=50, deadline=None)
@given(_maps(2), _maps(2), _maps(2))
def test_merge_laws(base: TreeMap, ours: TreeMap, theirs: TreeMap) -> None:
    # one-sided changes always merge to that side; the merge is symmetric in conflicts
    assert same(merge1(base, ours, base)[0], ours) and not merge1(base, ours, base)[1]
    assert same(merge1(base, base, theirs)[0], theirs) and not merge1(base, base, theirs)[1]
    assert same(merge1(base, ours, ours)[0], ours) and not merge1(base, ours, ours)[1]
    one, c1 = merge1(base, ours, theirs)
    two, c2 = merge1(base, theirs, ours)
    assert sorted(c1) == sorted(c2)
    if not c1:
        # Keys both sides added are laid out ours-first, so compare content, not order.
        assert _canonical(one) == _canonical(two)


def _canonical(node: Any) -> Any:
    if isinstance(node, TreeMap):
        return sorted((repr(k), _canonical(v)) for k, v in node.items_())
    if isinstance(node, list):
        return [_canonical(v) for v in node]
    return repr(node)


@settings(max_examples=50, deadline=None)
@given(_maps(1), st.data())
def test_disjoint_top_level_changes_never_conflict(base: TreeMap, data: st.DataObject) -> None:
    keys = ["a", "b", "c", "d", "e"]
    mine = set(data.draw(st.sets(st.sampled_from(keys))))
    rest = sorted(set(keys) - mine)
    new_ours = data.draw(st.dictionaries(st.sampled_from(sorted(mine)), _scalars) if mine else st.just({}))
    new_theirs = data.draw(st.dictionaries(st.sampled_from(rest), _scalars) if rest else st.just({}))
    ours, theirs = TreeMap(list(base)), TreeMap(list(base))
    for k, v in new_ours.items():
        ours.set(k, v)
    for k, v in new_theirs.items():
        theirs.set(k, v)
    merged, conflicts = merge1(base, ours, theirs)
    assert conflicts == []
    expected = dict(base.items_()) | new_ours | new_theirs
    assert set(merged.keys_()) == set(expected)
    for k, v in expected.items():
        assert same(merged.get(k), v)


# --- whole encrypted documents (real sops) ----------------------------------------------------

AGE_ENV = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))


@pytest.fixture(autouse=True)
def _age_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process decryption uses the vectors' age key."""
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))

# name -> (plaintext, [ours' set], [theirs' set], untouched path, expected union as checked by sops decrypt)
FORMATS: dict[str, tuple[str, tuple[str, str], tuple[str, str], str, str]] = {
    "m.yaml": (
        "db:\n    user: admin\n    # the password\n    password: base-pw\napi: k1\nkeep: same\n",
        ('["db"]["user"]', '"root"'),
        ('["api"]', '"k2"'),
        "keep",
        "db:\n    user: root\n    # the password\n    password: base-pw\napi: k2\nkeep: same\n",
    ),
    "m.json": (
        '{"db": {"user": "admin", "password": "base-pw"}, "api": "k1", "keep": "same"}',
        ('["db"]["user"]', '"root"'),
        ('["api"]', '"k2"'),
        "keep",
        '{\n\t"db": {\n\t\t"user": "root",\n\t\t"password": "base-pw"\n\t},\n\t"api": "k2",\n\t"keep": "same"\n}\n',
    ),
    "m.env": (
        "USER=admin\n# comment\nPASSWORD=base-pw\nAPI=k1\nKEEP=same\n",
        ('["USER"]', '"root"'),
        ('["API"]', '"k2"'),
        "KEEP",
        "USER=root\n# comment\nPASSWORD=base-pw\nAPI=k2\nKEEP=same\n",
    ),
    "m.ini": (
        "[db]\nuser = admin\npassword = base-pw\n\n[api]\nkey = k1\nkeep = same\n",
        ('["db"]["user"]', '"root"'),
        ('["api"]["key"]', '"k2"'),
        "keep",
        "[db]\nuser     = root\npassword = base-pw\n\n[api]\nkey  = k2\nkeep = same\n",
    ),
}


def _sops(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> bytes:
    done = run_sops(args, cwd=cwd, env=env or AGE_ENV)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _enc_of(text: bytes, key: str) -> str:
    for line in text.decode().splitlines():
        if re.match(rf'^\s*"?{re.escape(key)}"?\s*[:=]', line):
            found = ENC_LINE.search(line)
            assert found, line
            return found.group(0)
    raise AssertionError(f"{key} not found")


@pytest.fixture(scope="module")
def three_versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, bytes, bytes]]:
    """Per format: base made by `sops encrypt`, ours/theirs by `sops set` on copies."""
    tmp = tmp_path_factory.mktemp("versions")
    (tmp / ".sops.yaml").write_text("")
    out = {}
    for name, (plain, ours_set, theirs_set, _keep, _expected) in FORMATS.items():
        src = tmp / name
        src.write_text(plain)
        base = _sops(["encrypt", "--age", AGE_RECIPIENT, name], tmp)
        versions = [base]
        for path, value in (ours_set, theirs_set):
            src.write_bytes(base)
            _sops(["set", name, path, value], tmp)
            versions.append(src.read_bytes())
        out[name] = (versions[0], versions[1], versions[2])
    return out


def test_documents_merge_in_every_format_and_sops_reads_them(
    three_versions: dict[str, tuple[bytes, bytes, bytes]], tmp_path: Path
) -> None:
    (tmp_path / ".sops.yaml").write_text("")
    for name, (base, ours, theirs) in three_versions.items():
        _plain, _o, _t, keep, expected = FORMATS[name]
        store = store_for_path(name)
        outcome = merge_documents(store, base, ours, theirs)
        assert outcome.conflicts == [] and outcome.key_source == "ours", name
        assert outcome.data is not None
        (tmp_path / name).write_bytes(outcome.data)
        assert _sops(["decrypt", name], tmp_path).decode() == expected, name
        # untouched by both: the exact ciphertext of the base; the data key is ours'
        assert _enc_of(outcome.data, keep) == _enc_of(base, keep), name
        assert decrypt_document(store, outcome.data).data_key == decrypt_document(store, ours).data_key


def test_values_taken_from_theirs_keep_their_ciphertext(three_versions: dict[str, tuple[bytes, bytes, bytes]]) -> None:
    base, ours, theirs = three_versions["m.yaml"]
    outcome = merge_documents(store_for_path("m.yaml"), base, ours, theirs)
    assert outcome.data is not None
    assert _enc_of(outcome.data, "api") == _enc_of(theirs, "api")  # same data key: theirs' IV reused
    assert _enc_of(outcome.data, "user") == _enc_of(ours, "user")
    assert _enc_of(outcome.data, "api") != _enc_of(base, "api")


def test_conflicting_documents_return_no_data(three_versions: dict[str, tuple[bytes, bytes, bytes]],
                                              tmp_path: Path) -> None:
    base, ours, _theirs = three_versions["m.json"]
    (tmp_path / ".sops.yaml").write_text("")
    (tmp_path / "c.json").write_bytes(base)
    _sops(["set", "c.json", '["db"]["user"]', '"someone-else"'], tmp_path)
    outcome = merge_documents(store_for_path("c.json"), base, ours, (tmp_path / "c.json").read_bytes())
    assert outcome.data is None and outcome.conflicts == ['["db"]["user"]']


def _rotated(base: bytes, name: str, recipient: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, ".sops.yaml").write_text("")
        Path(tmp, name).write_bytes(base)
        _sops(["rotate", "-i", "--add-age", recipient, name], Path(tmp))
        return Path(tmp, name).read_bytes()


def _policy(*recipients: str) -> KeyPolicy:
    """ours' rule naming these age recipients in one group."""
    from sopsflow.config.keyspecs import KeySpec

    specs = [[KeySpec("age", r) for r in recipients]]
    return KeyPolicy([[("age", r) for r in recipients]], specs, "the test rule")


def _sops_reads(data: bytes, key_file: Path) -> bool:
    """Whether the real sops decrypts ``data`` with only ``key_file``."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, ".sops.yaml").write_text("")
        Path(tmp, "m.yaml").write_bytes(data)
        return run_sops(["decrypt", "m.yaml"], cwd=Path(tmp), env=base_env(SOPS_AGE_KEY_FILE=str(key_file))
                        ).returncode == 0


def _recipients(data: bytes) -> set[str]:
    return set(re.findall(r"age1[0-9a-z]{58}", data.decode()))


def test_ours_rotation_keeps_ours_key_set(three_versions: dict[str, tuple[bytes, bytes, bytes]],
                                          second_key: tuple[str, Path]) -> None:
    recipient, key_file = second_key
    base, ours, _theirs = three_versions["m.yaml"]
    store = store_for_path("m.yaml")
    rotated = _rotated(base, "m.yaml", recipient)  # ours rotated (and added a key), theirs edited
    outcome = merge_documents(store, base, rotated, ours)
    assert outcome.conflicts == [] and outcome.key_source == OURS and outcome.data is not None
    assert decrypt_document(store, outcome.data).data_key == decrypt_document(store, rotated).data_key
    assert _sops_reads(outcome.data, key_file)
    # untouched values keep the rotated ciphertext, the edited one is encrypted afresh
    assert _enc_of(outcome.data, "keep") == _enc_of(rotated, "keep")
    assert _enc_of(outcome.data, "user") not in (_enc_of(ours, "user"), _enc_of(rotated, "user"))


@pytest.mark.parametrize("rule_names_it", [False, True])
def test_theirs_rotation_gets_a_fresh_key_for_ours_rule(three_versions: dict[str, tuple[bytes, bytes, bytes]],
                                                        second_key: tuple[str, Path], rule_names_it: bool) -> None:
    """Theirs' data key is never adopted, even with exactly the rule's
    recipients: its author may know it. Theirs' rotation is honoured with a
    fresh key wrapped for ours' rule only."""
    recipient, key_file = second_key
    base, ours, _theirs = three_versions["m.yaml"]
    store = store_for_path("m.yaml")
    rotated = _rotated(base, "m.yaml", recipient)
    policy = _policy(AGE_RECIPIENT, recipient) if rule_names_it else _policy(AGE_RECIPIENT)
    outcome = merge_documents(store, base, ours, rotated, policy)
    assert outcome.conflicts == [] and outcome.key_source == FRESH and outcome.data is not None
    key = decrypt_document(store, outcome.data).data_key
    assert key not in (decrypt_document(store, rotated).data_key, decrypt_document(store, ours).data_key)
    assert _recipients(outcome.data) == ({AGE_RECIPIENT, recipient} if rule_names_it else {AGE_RECIPIENT})
    assert _sops_reads(outcome.data, key_file) is rule_names_it
    assert _sops_reads(outcome.data, AGE_KEY_FILE)
    plain = decrypt_document(store, outcome.data).branches[0]
    assert plain.get("db").get("user") == "root" and plain.get("api") == "k1"


def _with_stamp(store: Any, data: bytes, stamp: str) -> bytes:
    """``data`` re-encrypted unchanged but with ``stamp`` as lastmodified (the
    MAC binds it, so it is computed again)."""
    from sopsflow.engine import encrypt_branches, encrypt_mac

    doc = decrypt_document(store, data)
    enc, mac_hex = encrypt_branches(doc.branches, doc.cipher, doc.metadata)
    doc.metadata.lastmodified = stamp
    doc.metadata.mac = encrypt_mac(doc.cipher, mac_hex, stamp)
    return bytes(store.dump_encrypted(enc, doc.metadata.to_dict()))


def test_both_rotated_ours_key_set_stays_whatever_the_timestamps(
        three_versions: dict[str, tuple[bytes, bytes, bytes]], second_key: tuple[str, Path]) -> None:
    """lastmodified is written by theirs' author too: a later one wins nothing."""
    recipient, key_file = second_key
    base, _ours, _theirs = three_versions["m.yaml"]
    store = store_for_path("m.yaml")
    earlier = _with_stamp(store, _rotated(base, "m.yaml", recipient), "2001-01-01T00:00:00Z")
    later = _with_stamp(store, _rotated(base, "m.yaml", recipient), "2999-01-01T00:00:00Z")
    for ours, theirs in ((earlier, later), (later, earlier)):
        outcome = merge_documents(store, base, ours, theirs)
        assert outcome.conflicts == [] and outcome.key_source == OURS and outcome.data is not None
        assert decrypt_document(store, outcome.data).data_key == decrypt_document(store, ours).data_key


def _with_keys(store: Any, data: bytes, recipients: list[str], *, rotate: bool = False,
               value: tuple[str, str] | None = None) -> bytes:
    """``data`` re-encrypted for ``recipients`` (same data key unless ``rotate``),
    optionally with one top-level value changed."""
    from sopsflow.keys.age import AgeKey
    from sopsflow.operations import new_data_key

    doc = decrypt_document(store, data)
    if value is not None:
        doc.branches[0].set(value[0], value[1])
    doc.metadata.key_groups = [[AgeKey(r) for r in recipients]]
    key = new_data_key() if rotate else doc.data_key
    rewrap_keys(doc.metadata, key)
    from sopsflow.cipher import Cipher

    cipher = Cipher(key) if rotate else doc.cipher
    return encrypt_document(store, doc.branches, doc.metadata, key, cipher)


def test_recipient_change_without_rotation(three_versions: dict[str, tuple[bytes, bytes, bytes]],
                                           second_key: tuple[str, Path]) -> None:
    """updatekeys on theirs (same data key, one more recipient), an edit on
    ours: kept when ours' rule names the recipient; otherwise the recipient,
    who holds the shared data key, gets a fresh one withheld."""
    recipient, key_file = second_key
    base, ours, _theirs = three_versions["m.yaml"]
    store = store_for_path("m.yaml")
    theirs = _with_keys(store, base, [AGE_RECIPIENT, recipient])
    outcome = merge_documents(store, base, ours, theirs, _policy(AGE_RECIPIENT, recipient))
    assert outcome.data is not None and outcome.key_source == THEIRS_RECIPIENTS
    assert _recipients(outcome.data) == {AGE_RECIPIENT, recipient} and _sops_reads(outcome.data, key_file)
    assert decrypt_document(store, outcome.data).data_key == decrypt_document(store, ours).data_key
    outcome = merge_documents(store, base, ours, theirs, _policy(AGE_RECIPIENT))
    assert outcome.data is not None and outcome.key_source == FRESH
    assert _recipients(outcome.data) == {AGE_RECIPIENT} and not _sops_reads(outcome.data, key_file)
    assert "does not name" in outcome.notes[0] and recipient in outcome.notes[0]


# --- recipient removal on either side -----------------------------------------------------------


@pytest.fixture
def two_recipients(three_versions: dict[str, tuple[bytes, bytes, bytes]],
                   second_key: tuple[str, Path]) -> tuple[bytes, str, Path]:
    """The m.yaml base re-encrypted (new key) for the vectors' key and a member."""
    recipient, key_file = second_key
    base = _with_keys(store_for_path("m.yaml"), three_versions["m.yaml"][0], [AGE_RECIPIENT, recipient], rotate=True)
    return base, recipient, key_file


@pytest.mark.parametrize("side", ["ours", "theirs"])
@pytest.mark.parametrize("rotate", [False, True])
def test_recipient_removed_on_one_side(two_recipients: tuple[bytes, str, Path], side: str, rotate: bool) -> None:
    """One side removes the member (with or without a new data key), the other
    edits a value. ours' rule no longer names the member: the member never
    gets the merged file back."""
    base, member, member_key = two_recipients
    store = store_for_path("m.yaml")
    removed = _with_keys(store, base, [AGE_RECIPIENT], rotate=rotate)
    edited = _with_keys(store, base, [AGE_RECIPIENT, member], value=("api", "set-after-removal"))
    ours, theirs = (removed, edited) if side == "ours" else (edited, removed)
    outcome = merge_documents(store, base, ours, theirs, _policy(AGE_RECIPIENT))
    assert outcome.conflicts == [] and outcome.data is not None
    assert decrypt_document(store, outcome.data).branches[0].get("api") == "set-after-removal"
    if side == "ours":
        # ours' key set as it is: removed, and (when ours rotated) under ours' new key
        assert outcome.key_source == OURS
        assert decrypt_document(store, outcome.data).data_key == decrypt_document(store, removed).data_key
    elif rotate:
        assert outcome.key_source == FRESH
    else:
        assert outcome.key_source == THEIRS_RECIPIENTS
    assert _recipients(outcome.data) == {AGE_RECIPIENT}
    assert not _sops_reads(outcome.data, member_key)
    assert _sops_reads(outcome.data, AGE_KEY_FILE)


def test_removal_on_theirs_cannot_drop_a_member_ours_rule_names(two_recipients: tuple[bytes, str, Path]) -> None:
    """Theirs rotates the member out, but ours' rule still names them: the
    policy is ours', so the fresh key is wrapped for the member too."""
    base, member, member_key = two_recipients
    store = store_for_path("m.yaml")
    theirs = _with_keys(store, base, [AGE_RECIPIENT], rotate=True)
    outcome = merge_documents(store, base, base, theirs, _policy(AGE_RECIPIENT, member))
    assert outcome.key_source == FRESH and outcome.data is not None
    assert _recipients(outcome.data) == {AGE_RECIPIENT, member} and _sops_reads(outcome.data, member_key)


# --- the MAC of every side is checked ------------------------------------------------------------


def _mac_only_tamper(store: Any, data: bytes) -> bytes:
    """``data`` with one value re-encrypted under the same data key and the same
    key path (so it decrypts cleanly) but the old MAC kept: only the MAC check
    can tell."""
    from sopsflow.engine import encrypt_branches

    doc = decrypt_document(store, data)
    doc.branches[0].set("keep", "tampered")
    enc, _mac_hex = encrypt_branches(doc.branches, doc.cipher, doc.metadata)
    return bytes(store.dump_encrypted(enc, doc.metadata.to_dict()))


@pytest.mark.parametrize("which", ["base", "ours", "theirs"])
def test_a_mac_only_tamper_on_any_side_stops_the_merge(three_versions: dict[str, tuple[bytes, bytes, bytes]],
                                                       which: str) -> None:
    store = store_for_path("m.yaml")
    versions = dict(zip(("base", "ours", "theirs"), three_versions["m.yaml"], strict=True))
    tampered = _mac_only_tamper(store, versions[which])
    # the tamper decrypts: only the MAC tells
    assert decrypt_document(store, tampered, ignore_mac=True).branches[0].get("keep") == "tampered"
    versions[which] = tampered
    with pytest.raises(SopsError) as raised:
        merge_documents(store, versions["base"], versions["ours"], versions["theirs"])
    assert raised.value.code == errors.MAC_MISMATCH


# --- key types a rule cannot name ----------------------------------------------------------------


def _with_hckms(store: Any, data: bytes) -> bytes:
    """``data`` with an hckms entry in its key group (kept verbatim, as sops 3.11+ writes it)."""
    from sopsflow.keys.opaque import OpaqueKey

    doc = decrypt_document(store, data)
    doc.metadata.key_groups[0].append(OpaqueKey("hckms", {
        "key_id": "tenant-1:key-1", "created_at": "2026-01-01T00:00:00Z", "enc": "b3BhcXVl"}))
    return encrypt_document(store, doc.branches, doc.metadata, doc.data_key, doc.cipher)


def test_an_unknown_key_type_is_never_dropped(three_versions: dict[str, tuple[bytes, bytes, bytes]],
                                              second_key: tuple[str, Path]) -> None:
    recipient, _key_file = second_key
    store = store_for_path("m.yaml")
    base, ours, _theirs = (_with_hckms(store, v) for v in three_versions["m.yaml"])
    # theirs rotated (and dropped the entry): a fresh key would drop it -> refused
    theirs = _with_keys(store, base, [AGE_RECIPIENT], rotate=True)
    outcome = merge_documents(store, base, ours, theirs, _policy(AGE_RECIPIENT))
    assert outcome.data is None and outcome.refused is not None
    assert "hckms" in outcome.refused and "tenant-1:key-1" in outcome.refused
    # theirs removed it without rotating: ours' recipients are kept, with a note
    doc = decrypt_document(store, base)
    doc.metadata.key_groups[0] = [k for k in doc.metadata.key_groups[0] if k.type_name != "hckms"]
    theirs = encrypt_document(store, doc.branches, doc.metadata, doc.data_key, doc.cipher)
    outcome = merge_documents(store, base, ours, theirs, _policy(AGE_RECIPIENT))
    assert outcome.key_source == OURS and outcome.data is not None and b"tenant-1:key-1" in outcome.data
    assert "hckms" in outcome.notes[0]


def test_json_numbers_and_types_survive(tmp_path: Path) -> None:
    (tmp_path / ".sops.yaml").write_text("")
    (tmp_path / "t.json").write_text(json.dumps({"i": 1, "f": 1.5, "b": True, "n": None, "s": "x"}))
    base = _sops(["encrypt", "--age", AGE_RECIPIENT, "t.json"], tmp_path)
    (tmp_path / "t.json").write_bytes(base)
    _sops(["set", "t.json", '["s"]', '"y"'], tmp_path)
    theirs = (tmp_path / "t.json").read_bytes()
    (tmp_path / "t.json").write_bytes(base)
    _sops(["set", "t.json", '["i"]', "2"], tmp_path)
    ours = (tmp_path / "t.json").read_bytes()
    outcome = merge_documents(store_for_path("t.json"), base, ours, theirs)
    assert outcome.data is not None
    (tmp_path / "t.json").write_bytes(outcome.data)
    assert json.loads(_sops(["decrypt", "t.json"], tmp_path)) == {"i": 2, "f": 1.5, "b": True, "n": None, "s": "y"}
