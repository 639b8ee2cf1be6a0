"""Randomized: no command ever drops a key sopsflow cannot use.

Files hold, next to an age key sopsflow can decrypt with, any mix of the key
types sopsflow keeps but cannot wrap for: GCP KMS, Azure Key Vault, HuaweiCloud
KMS and types of a future sops (unknown list names with unknown fields), in
one or two key groups, YAML or JSON. Each command - updatekeys under a rule
that names the nameable ones, rotate, edit, set, groups add, and the git
merge driver (through its command line) - either leaves the file byte for
byte as it was (a clean error) or writes a file that still holds every such
entry verbatim and that the pinned sops binary decrypts.

The commands run in this process through :func:`sopsflow.main.main` so that
many examples stay cheap; only the oracle runs as a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sopsflow.keys.age import AgeKey, clear_identity_cache
from sopsflow.keys.opaque import OpaqueKey
from sopsflow.main import main
from sopsflow.operations import encrypt_new
from sopsflow.stores import store_for_path

from .conftest import base_env, run_sops
from .vectors import AGE_KEY_FILE, AGE_RECIPIENT

PLAIN = {"yaml": b"a: secret\nb:\n    c: 2\n", "json": b'{"a": "secret", "b": {"c": 2}}'}
STAMP = "2025-06-07T08:09:10Z"
_WORD = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).map(lambda s: "k" + s)
_ENC = st.binary(min_size=1, max_size=24).map(lambda b: __import__("base64").b64encode(b).decode())


@st.composite
def _gcp(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    rid = f"projects/{draw(_WORD)}/locations/global/keyRings/{draw(_WORD)}/cryptoKeys/{draw(_WORD)}"
    return "gcp_kms", {"resource_id": rid, "created_at": STAMP, "enc": draw(_ENC)}


@st.composite
def _azure(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    return "azure_kv", {"vault_url": f"https://{draw(_WORD)}.vault.azure.net", "name": draw(_WORD),
                        "version": draw(_WORD), "created_at": STAMP, "enc": draw(_ENC)}


@st.composite
def _hckms(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    return "hckms", {"key_id": f"{draw(_WORD)}:{draw(_WORD)}", "created_at": STAMP, "enc": draw(_ENC)}


@st.composite
def _future(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    # A key type of a later sops: unknown list name, unknown fields in any order.
    name = draw(st.sampled_from(["oci_kms", "quantum_hsm", "future_kv"]))
    fields = draw(st.dictionaries(_WORD, _WORD, min_size=1, max_size=3))
    entry: dict[str, Any] = dict(fields)
    entry[draw(st.sampled_from(["enc", "wrapped"]))] = draw(_ENC)
    return name, entry


_OPAQUE = st.one_of(_gcp(), _azure(), _hckms(), _future())
# Keys of one group differ in identity (two wraps for one key cannot both be kept).
_GROUP = st.lists(_OPAQUE, min_size=0, max_size=3, unique_by=lambda key: OpaqueKey(*key).identity())
_LAYOUT = st.lists(_GROUP, min_size=1, max_size=2).filter(lambda groups: any(groups))


class _Fixed(OpaqueKey):
    """An opaque key whose entry already holds its (fake) wrap."""

    def encrypt(self, data_key: bytes) -> None:
        return None


def _build(fmt: str, layout: list[list[tuple[str, dict[str, Any]]]]) -> bytes:
    store = store_for_path(f"f.{fmt}")
    groups: list[list[Any]] = [[AgeKey(AGE_RECIPIENT)] + [_Fixed(t, e) for t, e in group] for group in layout]
    return encrypt_new(store, store.load_plain(PLAIN[fmt]), groups)


def _opaque_entries(fmt: str, data: bytes) -> set[tuple[int, str, str]]:
    """Every non-age entry of every group, as (group, type, entry) with the
    entry's fields in file order: what must survive. A set: a group holding
    the very same entry twice is one key (sops deduplicates groups too)."""
    _branches, raw = store_for_path(f"f.{fmt}").load_encrypted(data)
    assert raw is not None
    groups = raw.get("key_groups") or [raw]
    out = set()
    for index, group in enumerate(groups):
        for name, entries in group.items():
            if name in ("age", "pgp", "kms", "hc_vault") or not isinstance(entries, list):
                continue
            out.update((index, name, repr(list(entry.items()))) for entry in entries)
    return out


def _rule(layout: list[list[tuple[str, dict[str, Any]]]], extra_age: str) -> str:
    """A rule naming the file's nameable keys, group by group, plus ``extra_age``."""
    lines = ["creation_rules:", "  - key_groups:"]
    for group in layout:
        lines.append(f"      - age: [{AGE_RECIPIENT}, {extra_age}]")
        named: dict[str, list[str]] = {}
        for type_name, entry in group:
            if type_name == "gcp_kms":
                named.setdefault("gcp_kms", []).append(f"{{resource_id: '{entry['resource_id']}'}}")
            elif type_name == "azure_kv":
                named.setdefault("azure_keyvault", []).append(
                    f"{{vaultUrl: '{entry['vault_url']}', key: '{entry['name']}', version: '{entry['version']}'}}")
            elif type_name == "hckms":
                named.setdefault("hckms", []).append(f"{{key_id: '{entry['key_id']}'}}")
        lines.extend(f"        {field}: [{', '.join(items)}]" for field, items in named.items())
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _session(cwd: Path, env: dict[str, str]) -> Iterator[None]:
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    clear_identity_cache()
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        clear_identity_cache()


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(argv)
        err.flush()
        out.flush()
    # updatekeys reports per-file failures on stdout
    said = out.buffer.getvalue() + err.buffer.getvalue()  # type: ignore[attr-defined]
    return code, said.decode("utf-8", "replace")


EDITOR = (
    "#!{python}\nimport sys\np = sys.argv[1]\n"
    "t = open(p).read()\nopen(p, 'w').write(t.replace('secret', 'edited'))\n"
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(["yaml", "json"]), layout=_LAYOUT)
# a later sops' key that keeps its wrap under another name than "enc"
@example(fmt="yaml", layout=[[("oci_kms", {"k0": "k0", "wrapped": "AA=="})]])
def test_no_command_drops_a_key_sopsflow_cannot_use(fmt: str, layout: list[list[tuple[str, dict[str, Any]]]]) -> None:
    import pyrage

    newcomer = str(pyrage.x25519.Identity.generate().to_public())
    original = _build(fmt, layout)
    kept = _opaque_entries(fmt, original)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        editor = root / "editor"
        editor.write_text(EDITOR.format(python=sys.executable))
        editor.chmod(0o755)
        (root / ".sops.yaml").write_text(_rule(layout, newcomer))
        env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE), EDITOR=str(editor))
        name = f"f.{fmt}"
        commands: dict[str, list[str]] = {
            "updatekeys": ["updatekeys", "-y", name],
            "rotate": ["rotate", "-i", name],
            "edit": ["edit", name],
            "set": ["set", name, '["a"]', '"changed"'],
            "groups add": ["groups", "add", "-i", "-f", name, "--age", newcomer],
        }
        results: dict[str, bytes] = {}
        with _session(root, env):
            for label, argv in commands.items():
                path = root / name
                path.write_bytes(original)
                code, err = _run(argv)
                after = path.read_bytes()
                assert "internal error" not in err, (label, err)
                if code != 0:
                    assert after == original, (label, err)
                    assert err.strip(), label
                elif after != original:
                    results[label] = after
                    assert _opaque_entries(fmt, after) == kept, label
            # the merge driver: two people set different values in the same file
            base, ours, theirs = root / "base", root / "ours", root / "theirs"
            for copy, value in ((ours, '"from-ours"'), (theirs, '"from-theirs"')):
                (root / name).write_bytes(original)
                assert _run(["set", name, '["a"]' if copy is ours else '["b"]["c"]', value])[0] == 0
                shutil.copy(root / name, copy)
            base.write_bytes(original)
            code, err = _run(["merge-driver", str(base), str(ours), str(theirs), name])
            assert code == 0, err
            results["merge-driver"] = ours.read_bytes()
            assert _opaque_entries(fmt, ours.read_bytes()) == kept
        assert {"edit", "set", "merge-driver"} <= set(results)
        # one group: the kept keys' wraps are reused, so adding a recipient works;
        # rotation always needs a new wrap from every key, which these cannot give
        assert ("updatekeys" in results) == (len(layout) == 1)
        assert "rotate" not in results
        for label, data in results.items():
            (root / name).write_bytes(data)
            done = run_sops(["decrypt", name], env=env, cwd=root)
            assert done.returncode == 0, (label, done.stderr)
