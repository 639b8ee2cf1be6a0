"""The flattened metadata layout of dotenv/INI files (sops' `stores/flatten.go`), checked
against files written by sops 3.11.0."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopsflow.errors import SopsError
from sopsflow.stores.flatten import flatten, unflatten

from ..vectors import GENERATED, PGP_FP


def _sops_lines(path: str) -> dict[str, str]:
    """The ``sops_*`` lines of a dotenv file written by sops, prefix removed."""
    flat = {}
    for line in (GENERATED / path).read_text().splitlines():
        if line.startswith("sops_"):
            key, _, value = line.partition("=")
            flat[key[len("sops_") :]] = value
    return flat


def test_shamir_file_unflattens_to_nested_groups() -> None:
    meta = unflatten(_sops_lines("shamir/secrets.enc.env"))
    assert meta["shamir_threshold"] == 2
    assert set(meta) == {"key_groups", "lastmodified", "mac", "shamir_threshold", "unencrypted_suffix", "version"}
    groups = meta["key_groups"]
    assert len(groups) == 2
    assert groups[0]["age"][0]["recipient"].startswith("age1")
    age_enc = groups[0]["age"][0]["enc"]
    assert age_enc.startswith("-----BEGIN AGE ENCRYPTED FILE-----\n") and age_enc.endswith(
        "-----END AGE ENCRYPTED FILE-----\n"
    )
    pgp = groups[1]["pgp"][0]
    assert pgp["fp"] == PGP_FP
    assert "\\n" not in pgp["enc"] and pgp["enc"].startswith("-----BEGIN PGP MESSAGE-----\n\n")


@pytest.mark.parametrize("path", ["shamir/secrets.enc.env", "dotenv/edge.enc.env"])
def test_flatten_reproduces_what_sops_wrote(path: str) -> None:
    written = _sops_lines(path)
    assert flatten(unflatten(written)) == written


def test_json_style_group_members_are_dropped() -> None:
    # What Metadata.to_dict(json_style=True) gives for a two-group file: the
    # always-present hc_vault/age members are null and must leave no line.
    meta = {
        "shamir_threshold": 2,
        "key_groups": [
            {"hc_vault": None, "age": [{"recipient": "age1x", "enc": "a\nb\n"}]},
            {"pgp": [{"created_at": "t", "enc": "p", "fp": "F"}], "hc_vault": None, "age": None},
        ],
        "lastmodified": "2026-11-28T21:20:13Z",
        "mac": "ENC[...]",
        "unencrypted_suffix": "_unencrypted",
        "version": "3.11.0",
    }
    assert flatten(meta) == {
        "shamir_threshold": "2",
        "key_groups__list_0__map_age__list_0__map_recipient": "age1x",
        "key_groups__list_0__map_age__list_0__map_enc": "a\\nb\\n",
        "key_groups__list_1__map_pgp__list_0__map_created_at": "t",
        "key_groups__list_1__map_pgp__list_0__map_enc": "p",
        "key_groups__list_1__map_pgp__list_0__map_fp": "F",
        "lastmodified": "2026-11-28T21:20:13Z",
        "mac": "ENC[...]",
        "unencrypted_suffix": "_unencrypted",
        "version": "3.11.0",
    }


def test_flatten_scalars() -> None:
    meta = {
        "kms": [{"arn": "a", "context": {"app": "web"}, "aws_profile": ""}],
        "mac_only_encrypted": True,
        "empty_list": [],
        "empty_map": {},
        "none": None,
    }
    assert flatten(meta) == {
        "kms__list_0__map_arn": "a",
        "kms__list_0__map_context__map_app": "web",
        "kms__list_0__map_aws_profile": "",
        "mac_only_encrypted": "true",
    }
    assert flatten({"mac_only_encrypted": False, "shamir_threshold": 3.0}) == {
        "mac_only_encrypted": "false",
        "shamir_threshold": "3",
    }


@pytest.mark.parametrize(("text", "expected"), [("2", 2), ("+2", 2), ("2.0", 2), ("20e-1", 2), ("-1", -1)])
def test_shamir_threshold_accepts_integral_text(text: str, expected: int) -> None:
    assert unflatten({"shamir_threshold": text})["shamir_threshold"] == expected


@pytest.mark.parametrize("text", ["2.5", "two", "", " 2"])
def test_shamir_threshold_rejects_other_text(text: str) -> None:
    with pytest.raises(SopsError) as err:
        unflatten({"shamir_threshold": text})
    assert err.value.code == 1


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("false", False), ("True", False), ("yes", False)])
def test_mac_only_encrypted_is_true_only_for_true(text: str, expected: bool) -> None:
    assert unflatten({"mac_only_encrypted": text})["mac_only_encrypted"] is expected


def test_unflatten_fills_list_holes_and_decodes_newlines() -> None:
    meta = unflatten({"pgp__list_2__map_enc": "a\\nb", "pgp__list_0__map_fp": "F"})
    assert meta == {"pgp": [{"fp": "F"}, None, {"enc": "a\nb"}]}


def test_unflatten_refuses_conflicting_names() -> None:
    with pytest.raises(SopsError) as err:
        unflatten({"a": "x", "a__map_b": "y"})
    assert err.value.code == 1


_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_LEAF = st.text(alphabet=st.characters(exclude_characters="\\"), max_size=12)


def _tree(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return _LEAF
    child = _tree(depth - 1)
    return st.one_of(
        _LEAF,
        st.lists(child, min_size=1, max_size=3),
        st.dictionaries(_NAME, child, min_size=1, max_size=3),
    )


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(_NAME.filter(lambda n: n not in ("shamir_threshold", "mac_only_encrypted")), _tree(3), max_size=4)
)
def test_flatten_unflatten_round_trip(meta: dict[str, Any]) -> None:
    flat = flatten(meta)
    assert all("\n" not in value for value in flat.values())
    assert unflatten(flat) == meta


@pytest.mark.parametrize("position", ["100000", "1000000000000", "9" * 5000])
def test_unflatten_refuses_huge_list_positions(position: str) -> None:
    """A position is a length to allocate: a huge one is refused before any list
    is built (sops runs out of memory), also past int()'s 4,300 digits."""
    with pytest.raises(SopsError) as err:
        unflatten({f"age__list_{position}__map_enc": "x"})
    assert err.value.code == 1
    assert len(err.value.message) < 100


def test_unflatten_keeps_holes_below_the_position_limit() -> None:
    assert unflatten({"age__list_3__map_enc": "x"}) == {"age": [None, None, None, {"enc": "x"}]}
