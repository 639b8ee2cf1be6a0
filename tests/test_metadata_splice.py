"""updatekeys rewrites only the metadata block: ``updater.splice_metadata`` and
the stores' ``metadata_tail``, and the reuse of existing wraps.

The splice must keep every data byte, load back to the same tree with the new
metadata, give exactly the bytes of a whole-file rewrite wherever the store
rewrites the file unchanged (checked over random documents of every format,
through the generators the sops cross-checks use), refuse layouts it does not
recognise (the caller then rewrites the whole file), and cope with sops'
random order of the INI ``[sops]`` section. Where a rewrite would move or drop
a comment (sops 3.11 drops some INI comments), the splice keeps it.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sopsflow.errors import SopsError
from sopsflow.gitops import updatekeys as updater
from sopsflow.keys.age import AgeKey
from sopsflow.metadata import Metadata
from sopsflow.operations import encrypt_new
from sopsflow.stores import store_by_name

from .compat.test_roundtrip_property import binary_files, dotenv_files, ini_files, json_files, yaml_files
from .updatefixtures import Team, encrypt_with_sopsflow, metadata_of, recipients_of

SPLICE = settings(max_examples=25, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FILES = {"yaml": yaml_files(), "json": json_files(), "dotenv": dotenv_files(), "ini": ini_files(),
         "binary": binary_files}
SELECTIONS = [{}, {"encrypted_regex": "^(data|pass)"}, {"unencrypted_suffix": "_plain"},
              {"encrypted_comment_regex": "^enc"}]


def _recipients(count: int) -> list[str]:
    from pyrage import x25519

    return [str(x25519.Identity.generate().to_public()) for _ in range(count)]


RECIPIENTS = _recipients(4)


def _encrypted(store_name: str, plain: bytes, selection: dict[str, str]) -> bytes | None:
    store = store_by_name(store_name)
    try:
        branches = store.load_plain(plain)
        return encrypt_new(store, branches, [[AgeKey(RECIPIENTS[0])]],
                           selection=selection if store_name != "binary" else None)
    except SopsError:
        return None  # an input the store refuses: nothing to update


#: A block-scalar key inside a sequence item: sops 3.11 writes it as ``? |4-`` and its own
#: parser then refuses the file ("did not find expected key").
UNREADABLE_YAML = '#\n#\n"a:b": "" #\n#\n"0": #\n#\n- "\\n0": null #\n'


def test_a_document_sops_writes_but_cannot_read_back(tmp_path: Path) -> None:
    """The splice property covers files that can be read; this one cannot, by
    sops as by sopsflow, whichever of the two wrote it."""
    from .compat import age_env, flow_argv, run_each, sops_argv
    from .vectors import AGE_RECIPIENT

    (tmp_path / "p.yaml").write_text(UNREADABLE_YAML)
    args = ["encrypt", "--age", AGE_RECIPIENT, "p.yaml"]
    sops, flow = run_each([(sops_argv(args), tmp_path), (flow_argv(args), tmp_path)], env=age_env())
    assert sops.rc == flow.rc == 0, (sops.why(), flow.why())
    assert sops.out.split(b"\nsops:")[0].count(b"? |4-") == flow.out.split(b"\nsops:")[0].count(b"? |4-") == 1
    for writer, data in (("sops", sops.out), ("sopsflow", flow.out)):
        (tmp_path / f"{writer}.yaml").write_bytes(data)
        reads = run_each([(sops_argv(["decrypt", f"{writer}.yaml"]), tmp_path),
                          (flow_argv(["decrypt", f"{writer}.yaml"]), tmp_path)], env=age_env())
        for run in reads:
            assert run.rc == 1 and b"did not find expected key" in run.err and run.out == b"", run.why()


def _changed(meta: Metadata, data_key: bytes, change: str) -> Metadata:
    """The metadata after a recipient change: same data key, new key groups."""
    if change == "add":
        groups = [[AgeKey(RECIPIENTS[0]), AgeKey(RECIPIENTS[1])]]
    elif change == "swap":
        groups = [[AgeKey(RECIPIENTS[2])]]
    else:  # two Shamir groups
        groups = [[AgeKey(RECIPIENTS[1])], [AgeKey(RECIPIENTS[3])]]
    new = dataclasses.replace(meta, key_groups=groups, shamir_threshold=2 if change == "groups" else 0)
    from sopsflow.operations import wrap_keys

    wrap_keys(new, data_key)
    return new


@pytest.mark.parametrize("store_name", sorted(FILES))
def test_splice_equals_whole_file_rewrite(store_name: str) -> None:
    @SPLICE
    @given(plain=FILES[store_name], selection=st.sampled_from(SELECTIONS),
           change=st.sampled_from(["add", "swap", "groups"]))
    def check(plain: bytes, selection: dict[str, str], change: str) -> None:
        data = _encrypted(store_name, plain, selection)
        assume(data is not None)
        assert data is not None
        store = store_by_name(store_name)
        try:
            branches, raw = store.load_encrypted(data)
        except SopsError:
            # sops writes a few documents it cannot read back, and neither can we
            # (test_a_document_sops_writes_but_cannot_read_back): nothing to update.
            assume(False)
        assert raw is not None
        meta = Metadata.from_dict(raw)
        data_key = _data_key(meta)
        new = _changed(meta, data_key, change)
        json_style = store.name != "yaml"
        old_md, new_md = meta.to_dict(json_style=json_style), new.to_dict(json_style=json_style)
        spliced = updater.splice_metadata(store, data, branches, old_md, new_md)
        try:
            whole: bytes | None = store.dump_encrypted(branches, new_md)
            canonical = store.dump_encrypted(branches, old_md) == data
        except SopsError:  # sops cannot write this tree again (an INI comment it panics on)
            whole, canonical = None, False
        if len(branches) > 1:
            assert spliced is None  # a YAML stream repeats the block per document
            return
        if store_name == "binary":
            # A binary file is written without unencrypted_suffix, which loading
            # supplies (as in sops): the rewrite adds it, as sops updatekeys does.
            assert spliced is None
            return
        assert spliced is not None or not canonical
        if spliced is None:
            return
        # Only the block changed; the data bytes are the file's own, and they
        # load to the same tree with the new metadata.
        tail = store.metadata_tail(old_md)
        assert spliced == data[: len(data) - len(tail)] + store.metadata_tail(new_md)
        again, raw_again = store.load_encrypted(spliced)
        assert again == branches and raw_again is not None
        assert Metadata.from_dict(raw_again).to_dict(json_style=json_style) == new_md
        if canonical:
            assert spliced == whole
    check()


def _data_key(meta: Metadata) -> bytes:
    """The data key, unwrapped with the generated identity of RECIPIENTS[0]."""
    return _IDENTITY.decrypt_key(meta)


class _Identity:
    """Unwraps the data key of files made by _encrypted (no key files needed)."""

    def __init__(self) -> None:
        from pyrage import x25519

        self.ident = x25519.Identity.generate()
        RECIPIENTS[0] = str(self.ident.to_public())

    def decrypt_key(self, meta: Metadata) -> bytes:
        import pyrage

        (key,) = meta.key_groups[0]
        return bytes(pyrage.decrypt(key.enc.encode(), [self.ident]))


_IDENTITY = _Identity()


def test_ini_section_in_sops_random_order_is_spliced() -> None:
    """sops writes the [sops] lines in Go map order; the splice still applies."""
    store = store_by_name("ini")
    data = _encrypted("ini", b"[db]\npassword = x\nuser = y\n", {})
    assert data is not None
    head, _, section = data.partition(b"[sops]\n")
    lines = section.splitlines(keepends=True)
    random.Random(7).shuffle(lines)
    shuffled = head + b"[sops]\n" + b"".join(lines)
    branches, raw = store.load_encrypted(shuffled)
    meta = Metadata.from_dict(raw or {})
    new = _changed(meta, _data_key(meta), "add")
    spliced = updater.splice_metadata(store, shuffled, branches, meta.to_dict(json_style=True),
                                      new.to_dict(json_style=True))
    assert spliced == store.dump_encrypted(branches, new.to_dict(json_style=True))
    assert spliced is not None and spliced.startswith(head)


@pytest.mark.parametrize("layout", ["two-space indent", "comment after the block", "sops not last"])
def test_unrecognised_layout_is_not_spliced(layout: str) -> None:
    store = store_by_name("yaml")
    plain = b"a: 1\nb:\n    c: d\n"
    if layout == "two-space indent":  # written with stores.yaml.indent 2, read with the default
        narrow = store_by_name("yaml", indent=2)
        changed = encrypt_new(narrow, narrow.load_plain(plain), [[AgeKey(RECIPIENTS[0])]])
        assert b"\n  age:\n" in changed
    else:
        data = _encrypted("yaml", plain, {})
        assert data is not None
        head, _, block = data.partition(b"sops:\n")
        changed = data + b"# trailing\n" if layout == "comment after the block" else b"sops:\n" + block + head
    branches, raw = store.load_encrypted(changed)
    meta = Metadata.from_dict(raw or {})
    new = _changed(meta, _data_key(meta), "add")
    assert updater.splice_metadata(store, changed, branches, meta.to_dict(), new.to_dict()) is None


# --- kept wraps, through the updater --------------------------------------------------------


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return Team.create(tmp_path / "keys")


def _config(root: Path, text: str) -> Any:
    from sopsflow.config.decoder import load_config

    (root / ".sops.yaml").write_text(text)
    return load_config(root / ".sops.yaml")


def _apply(path: Path, config: Any) -> updater.FileResult:
    from sopsflow.stores import store_for_path

    plan = updater.plan_file(path, path.name, config=config, store_for=store_for_path)
    return updater.apply_file(plan)


def _enc_of(path: Path) -> dict[str, str]:
    return {k.identity(): k.enc for group in metadata_of(path).key_groups for k in group}


def test_added_recipient_keeps_the_other_wraps_and_only_the_block_changes(
        tmp_path: Path, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "app.yaml"
    encrypt_with_sopsflow(path, b"# top\ndata:\n  password: s3cret  # inline\nlist: [1, 2]\n", [[team.admin, team.prod]])
    before, wraps = path.read_bytes(), _enc_of(path)
    config = _config(tmp_path, "creation_rules:\n  - age: " + ",".join(
        i.recipient for i in (team.admin, team.prod, team.newcomer)) + "\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(team.key_file(team.admin)))
    assert _apply(path, config).ok
    after = _enc_of(path)
    assert recipients_of(path) == [[team.admin.recipient, team.prod.recipient, team.newcomer.recipient]]
    assert {k: after[k] for k in wraps} == wraps  # kept byte for byte
    data_part = before.split(b"\nsops:\n")[0]
    assert path.read_bytes().startswith(data_part + b"\nsops:\n")


def test_shamir_groups_are_all_wrapped_afresh(tmp_path: Path, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "app.json"
    encrypt_with_sopsflow(path, b'{"a": "b"}', [[team.admin], [team.prod]])
    wraps = _enc_of(path)
    config = _config(tmp_path, "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n"
                     f"      - age: [{team.admin.recipient}]\n      - age: [{team.prod.recipient}]\n"
                     f"      - age: [{team.newcomer.recipient}]\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(team.key_dir / "all.txt"))
    assert _apply(path, config).ok
    after = _enc_of(path)
    assert all(after[k] != v for k, v in wraps.items())  # new shares for every group
