"""Rules that used to have two copies in sopsflow, now one: each case runs the
real sops and sopsflow on the same input and compares exit code and result."""

from __future__ import annotations

import re
from pathlib import Path

from ..vectors import AGE_RECIPIENT
from . import Run, age_env, flow_argv, run_each, sops_argv

A = AGE_RECIPIENT


def _both(tmp_path: Path, name: str, args: list[str], *, config: str | None = None, files: dict[str, str] | None = None,
          **env: str) -> tuple[Run, Run]:
    """sops and sopsflow run with ``args`` in a fresh directory holding
    ``files`` (default: ``p.yaml``) and, when given, a ``.sops.yaml``."""
    d = tmp_path / name
    d.mkdir()
    for file, text in (files or {"p.yaml": "x: 1\n"}).items():
        (d / file).write_text(text)
    if config is not None:
        (d / ".sops.yaml").write_text(config)
    sops, flow = run_each([(sops_argv(args), d), (flow_argv(args), d)], env=age_env(**env))
    return sops, flow


def _recipients(out: bytes) -> list[str]:
    return [line.split("recipient:")[1].strip() for line in out.decode().splitlines() if "- recipient:" in line]


def test_age_empty_item_is_refused_on_the_command_line(tmp_path: Path) -> None:
    """``--age A,,A`` and ``SOPS_AGE_RECIPIENTS=A,,A``: an empty recipient (exit 1)."""
    for i, value in enumerate((f"{A},,{A}", f"{A}, ,{A}", f"{A},")):
        for how, args, env in (("flag", ["encrypt", "--age", value, "p.yaml"], {}),
                               ("env", ["encrypt", "p.yaml"], {"SOPS_AGE_RECIPIENTS": value})):
            sops, flow = _both(tmp_path, f"{how}{i}", args, **env)
            assert sops.rc == flow.rc == 1, (sops.why(), flow.why())
            assert b'unknown recipient type: ""' in sops.err
            assert b'unknown recipient type: ""' in flow.err, flow.why()
            assert flow.out == b""


def test_age_empty_item_in_config(tmp_path: Path) -> None:
    """A rule's ``age`` string drops empty items before the age parser sees
    them (sops' parseKeyField); a key group's entry goes to the parser whole."""
    sops, flow = _both(tmp_path, "flat", ["encrypt", "p.yaml"], config=f'creation_rules:\n  - age: "{A},,{A}"\n')
    assert sops.rc == flow.rc == 0, (sops.why(), flow.why())
    assert _recipients(sops.out) == _recipients(flow.out) == [A, A]
    sops, flow = _both(tmp_path, "group", ["encrypt", "p.yaml"],
                       config=f'creation_rules:\n  - key_groups:\n    - age: ["{A},,{A}"]\n')
    # sopsflow reports every invalid rule with its config-error code (5) where
    # sops exits 1; the rule is refused in both, for the same reason.
    assert sops.rc == 1 and flow.rc != 0, (sops.why(), flow.why())
    assert b'unknown recipient type: ""' in sops.err
    assert b'unknown recipient type: ""' in flow.err, flow.why()


# Key URLs sops parses (then fails: no Azure here) and URLs it refuses to parse.
AZURE_PARSED = ["https://v.invalid/keys/k", "https://v.invalid/keys/k/", "https://v.invalid/keys/k/1",
                " https://v.invalid/keys/k/1 "]
AZURE_REFUSED = ["http://v/keys/k/1", "https://v/keys/k/1/2", "https://v/x/keys/k/1", "https://v/keys/k/1/"]


def test_azure_key_url_is_parsed_alike_in_config_and_flag(tmp_path: Path) -> None:
    """sops has no Azure credentials here: a URL it parses fails later, when the
    data key is wrapped (sopsflow cannot wrap for Azure at all), and a URL it
    does not parse fails with the parse error; the same in a rule and a flag."""
    urls = AZURE_PARSED + AZURE_REFUSED
    commands: list[tuple[list[str], Path]] = []
    for i, url in enumerate(urls):
        for how, args, config in (("flag", ["encrypt", "--azure-kv", url, "p.yaml"], None),
                                  ("rule", ["encrypt", "p.yaml"], f'creation_rules:\n  - azure_keyvault: "{url}"\n')):
            d = tmp_path / f"{how}{i}"
            d.mkdir()
            (d / "p.yaml").write_text("x: 1\n")
            if config:
                (d / ".sops.yaml").write_text(config)
            commands += [(sops_argv(args), d), (flow_argv(args), d)]
    runs = run_each(commands, env=age_env())
    for n, url in enumerate(urls):
        refused = url in AZURE_REFUSED
        shown = f'could not parse "{url.strip()}" into a valid Azure Key Vault MasterKey'.encode()
        for sops, flow in (runs[4 * n : 4 * n + 2], runs[4 * n + 2 : 4 * n + 4]):
            assert sops.rc == 1 and flow.rc != 0 and flow.out == b"", (sops.why(), flow.why())
            assert (shown in sops.err) == refused, sops.why()
            assert (shown in flow.err) == refused, flow.why()
            if not refused:  # both got past parsing; sops fails to reach Azure
                assert b"Azure Key" in sops.err, sops.why()
                assert b"Could not generate data key" in flow.err, flow.why()
        # sopsflow's config errors exit 5 (ERROR_READING_CONFIG) where sops exits 1
        assert runs[4 * n + 1].rc == 1


PATH_DOC = 'a[b: 1\n"a\\"]": 2\na: [x, y]\n"a]": 3\n'
# Paths whose parse is in question: ["a[b"] is split at its inner "[", ["a"]]
# keeps a quote in its key (first and last character dropped), a bad index.
PATHS = ['["a[b"]', '["a"]]', '["a]"]', '["a"][1]', '["a"][1x]', '["a"]["b"', "a", '["a"][+1]']


def test_tree_path_is_parsed_alike_by_extract_and_set(tmp_path: Path) -> None:
    """sops reads the ``--extract`` and the ``set`` path with one parser."""
    d = tmp_path / "src"
    d.mkdir()
    (d / "q.yaml").write_text(PATH_DOC)
    sops_enc = run_each([(sops_argv(["encrypt", "--age", A, "q.yaml"]), d)], env=age_env())[0]
    assert sops_enc.rc == 0, sops_enc.why()
    commands: list[tuple[list[str], Path]] = []
    for i, path in enumerate(PATHS):
        for tool in (sops_argv, flow_argv):
            w = tmp_path / f"{tool.__name__}{i}"
            w.mkdir()
            (w / "e.yaml").write_bytes(sops_enc.out)
            (w / "s.yaml").write_bytes(sops_enc.out)
            commands += [(tool(["decrypt", "--extract", path, "e.yaml"]), w), (tool(["set", "s.yaml", path, '"v"']), w)]
    runs = run_each(commands, env=age_env())
    for i, path in enumerate(PATHS):
        sops_extract, sops_set, flow_extract, flow_set = runs[4 * i : 4 * i + 4]
        assert flow_extract.rc == sops_extract.rc, (path, sops_extract.why(), flow_extract.why())
        assert flow_extract.out == sops_extract.out, path
        assert flow_set.rc == sops_set.rc, (path, sops_set.why(), flow_set.why())
        if sops_extract.rc == 91:  # the parser's own message, sops' wording
            assert flow_extract.err.strip().endswith(sops_extract.err.strip().split(b": ", 1)[1]), path
    by_path = dict(zip(PATHS, range(len(PATHS)), strict=True))
    assert runs[4 * by_path['["a[b"]']].rc == 91  # refused by both commands
    assert runs[4 * by_path['["a[b"]'] + 1].rc == 7
    assert runs[4 * by_path['["a"]]']].rc == 1  # parsed (as key 'a"'), then not found
    assert runs[4 * by_path['["a"]]'] + 1].rc == 0


def test_overflowing_float_is_a_string_in_config_and_document(tmp_path: Path) -> None:
    """go-yaml keeps a float literal beyond float64 (``1e999``, ``.5e999``) as a
    string, in sops' config as in a YAML document."""
    for i, text in enumerate(("1e999", ".5e999", "-1e999")):
        # a string where a rule takes one: the age parser sees it (and refuses it)
        sops, flow = _both(tmp_path, f"rule{i}", ["encrypt", "p.yaml"], config=f"creation_rules:\n  - age: {text}\n")
        assert sops.rc == 1 and flow.rc != 0, (sops.why(), flow.why())
        shown = f'unknown recipient type: "{text}"'.encode()
        assert shown in sops.err, sops.why()
        assert shown in flow.err, flow.why()
    doc = "x: 1e999\ny: .5e999\nz: 1e3\n"
    sops, flow = _both(tmp_path, "doc", ["encrypt", "--age", A, "n.yaml"], files={"n.yaml": doc})
    assert sops.rc == flow.rc == 0, (sops.why(), flow.why())
    types = [re.findall(rb"type:([a-z]+)\]", run.out)[:3] for run in (sops, flow)]
    assert types[0] == types[1] == [b"str", b"str", b"float"]


def test_a_repeated_decryption_key_type_is_refused_alike(tmp_path: Path) -> None:
    """``--decryption-order`` and ``SOPS_DECRYPTION_ORDER``: a type named twice
    is exit 112 with sops' message; blank items are skipped."""
    d = tmp_path / "enc"
    d.mkdir()
    (d / "p.yaml").write_text("x: 1\n")
    (made,) = run_each([(sops_argv(["encrypt", "--age", A, "p.yaml"]), d)], env=age_env())
    assert made.rc == 0, made.why()
    files = {"s.yaml": made.out.decode()}
    for i, (args, env) in enumerate((
        (["decrypt", "--decryption-order", "age,pgp,age", "s.yaml"], {}),
        (["decrypt", "s.yaml"], {"SOPS_DECRYPTION_ORDER": "age,age"}),
    )):
        sops, flow = _both(tmp_path, f"twice{i}", args, files=files, **env)
        assert sops.rc == flow.rc == 112, (sops.why(), flow.why())
        assert sops.err.strip().splitlines()[-1] == flow.err.strip().splitlines()[-1] == (
            b"Duplicate decryption key type: age"), (sops.why(), flow.why())
    sops, flow = _both(tmp_path, "blank", ["decrypt", "--decryption-order", " age, ,pgp", "s.yaml"], files=files)
    assert sops.rc == flow.rc == 0, (sops.why(), flow.why())
    assert sops.out == flow.out == b"x: 1\n"
