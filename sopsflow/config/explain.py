"""`sopsflow rules FILE [--json]`: which creation rule applies to a file, and why.

:func:`explain` returns a plain dict (stable, JSON-ready); :func:`format_text`
renders it for people. The dict has these keys, always present:

``file``
    the path as given. ``absolute_path``: made absolute from ``cwd`` as sops
    does (lexically, symlinks kept).
``cwd``
    the directory relative paths and the config search start from.
``config``
    absolute path of the `.sops.yaml` used, or null. ``config_source``:
    ``"argument"``, ``"SOPS_CONFIG"``, ``"search"`` or null (nothing found).
``config_dir``
    the config's directory or null.
``status``
    ``"matched"``; ``"no_config"`` (no file found); ``"no_creation_rules"``
    (the file has no ``creation_rules``: sops treats that as no config);
    ``"no_matching_rule"``.
``matched_path``
    the string the ``path_regex`` values are searched in: the absolute path
    without the ``<config_dir>/`` prefix, or the whole absolute path for files
    outside that directory (``inside_config_dir`` false). Null without config.
``skipped_rules``
    the rules tried before the winner (or all of them), in order, each
    ``{"index", "path_regex"}``: none of their regexes is found in ``matched_path``.
``rule``
    null, or::

        {"index": 0-based position in creation_rules,
         "path_regex": "" when the rule matches every file,
         "match": {"start": int, "end": int, "text": str} | null (no path_regex),
         "key_source": "flat" | "key_groups",
         "key_groups": [[{"type": "age", "identity": "age1..."}, ...], ...],
         "shamir_threshold": int,
         "selection": {option: value} (only the options the rule sets),
         "effective_selection": what sops records: selection, or
             {"unencrypted_suffix": "_unencrypted"} when none is set, or {} for the binary store,
         "mac_only_encrypted": bool (the rule's setting),
         "effective_mac_only_encrypted": bool (false for the binary store, which ignores it)}

    Identities are sops' key strings (``arn+role|ctx|profile`` for KMS, ...).
``key_override_env``
    names of the set environment variables (``SOPS_AGE_RECIPIENTS``, ...) that
    replace the rule's keys when encrypting (sops' `cmd/sops/main.go`); values are not shown.
``store``
    ``{"name": "yaml"|"json"|"dotenv"|"ini"|"binary", "indent": int|null,
    "indent_source": "config"|"default"|null}``: the store picked from the
    file suffix (case-sensitive) and the indentation sops would use (yaml 4,
    json and binary -1 = tab, unless `.sops.yaml` sets it; null for dotenv/ini).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..metadata import SELECTION_OPTIONS
from .decoder import load_config
from .discovery import find_config, go_abs, go_getwd
from .keyspecs import KEY_ENV_VARS
from .rules import Config, CreationRule

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    # explain()'s result is a JSON document (what `rules --json` prints)
    from ..tree import TreeValue

_DEFAULT_INDENT = {"yaml": 4, "json": -1, "binary": -1}


def store_name_for(path: str) -> str:
    """sops' store choice by suffix (case-sensitive), as in sops' `cmd/sops/formats/formats.go`."""
    from ..stores import format_for_path

    return format_for_path(path)


def explain(
    file_path: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, TreeValue]:
    """Explain the creation rule sops would pick for ``file_path``.

    ``config_path`` (``--config``) wins, then ``SOPS_CONFIG`` from ``env``
    (default ``os.environ``), then the search upward from ``cwd`` (default the
    process cwd). Raises SopsError (exit 5) for an unreadable or invalid config.
    """
    env = os.environ if env is None else env
    base = go_abs(cwd) if cwd is not None else go_getwd()
    given = os.fspath(file_path)
    found, source = _locate_config(config_path, env, base)
    config = load_config(found) if found is not None else None
    result: dict[str, TreeValue] = {
        "file": given,
        "absolute_path": go_abs(given, base),
        "cwd": base,
        "config": str(config.path) if config else None,
        "config_source": source if config else None,
        "config_dir": str(config.dir) if config else None,
        "status": "no_config",
        "matched_path": None,
        "inside_config_dir": None,
        "skipped_rules": [],
        "rule": None,
        "key_override_env": [name for name in KEY_ENV_VARS if env.get(name)],
        "store": _store_info(given, config),
    }
    if config is not None:
        _add_match(result, config, given, base)
    return result


def _locate_config(config_path: str | os.PathLike[str] | None, env: Mapping[str, str],
                   base: str) -> tuple[str | None, str | None]:
    if config_path is not None and os.fspath(config_path) != "":
        return go_abs(config_path, base), "argument"
    if env.get("SOPS_CONFIG"):
        return go_abs(env["SOPS_CONFIG"], base), "SOPS_CONFIG"
    found = find_config(base)
    return (str(found), "search") if found is not None else (None, None)


def _add_match(result: dict[str, TreeValue], config: Config, given: str, base: str) -> None:
    trace = config.match_trace(given, base)
    result["matched_path"] = trace.relative_path
    result["inside_config_dir"] = trace.inside_config_dir
    result["skipped_rules"] = [{"index": r.index, "path_regex": r.path_regex} for r in trace.tried]
    if not config.has_creation_rules:
        result["status"] = "no_creation_rules"
    elif trace.rule is None:
        result["status"] = "no_matching_rule"
    else:
        result["status"] = "matched"
        result["rule"] = _rule_info(trace.rule, trace.relative_path, result["store"]["name"])


def _rule_info(rule: CreationRule, relative: str, store_name: str) -> dict[str, TreeValue]:
    match = None
    found = rule.search(relative)
    if found is not None:
        match = {"start": found[0], "end": found[1], "text": found[2]}
    if store_name == "binary":
        effective: dict[str, str] = {}
    else:
        effective = dict(rule.selection) or {"unencrypted_suffix": "_unencrypted"}
    return {
        "index": rule.index,
        "path_regex": rule.path_regex,
        "match": match,
        "key_source": "key_groups" if rule.uses_key_groups else "flat",
        "key_groups": [[{"type": s.type_name, "identity": s.identity()} for s in group] for group in rule.key_specs()],
        "shamir_threshold": rule.shamir_threshold,
        "selection": {k: rule.selection[k] for k in SELECTION_OPTIONS if k in rule.selection},
        "effective_selection": effective,
        "mac_only_encrypted": rule.mac_only_encrypted,
        "effective_mac_only_encrypted": rule.mac_only_encrypted and store_name != "binary",
    }


def _store_info(path: str, config: Config | None) -> dict[str, TreeValue]:
    name = store_name_for(path)
    if name not in _DEFAULT_INDENT:
        return {"name": name, "indent": None, "indent_source": None}
    configured = config.store_indent(name) if config is not None else None
    # sops' YAML store treats an indent of 0 as unset.
    if configured is None or (name == "yaml" and configured == 0):
        return {"name": name, "indent": _DEFAULT_INDENT[name], "indent_source": "default"}
    return {"name": name, "indent": configured, "indent_source": "config"}


_STATUS_TEXT = {
    "no_config": "no .sops.yaml found (searched upward from the cwd); keys must come from flags or SOPS_* variables",
    "no_creation_rules": "the config has no creation_rules, which sops treats as no config",
    "no_matching_rule": "no creation rule matches (sops: \"no matching creation rules found\")",
}


def format_text(info: dict[str, TreeValue]) -> str:
    """Human-readable rendering of :func:`explain`'s result."""
    lines = [f"file:    {info['file']}"]
    if info["config"] is None:
        lines.append(f"config:  none: {_STATUS_TEXT['no_config']}")
    else:
        lines.append(f"config:  {info['config']} (from {info['config_source']})")
        where = "relative to the config directory" if info["inside_config_dir"] else \
            "absolute: the file is outside the config directory"
        lines.append(f"matched path: {info['matched_path']} ({where})")
        for skipped in info["skipped_rules"]:
            lines.append(f"rule {skipped['index']}: no match for path_regex {skipped['path_regex']!r}")
    rule = info["rule"]
    if rule is not None:
        lines.extend(_rule_lines(rule))
    elif info["status"] != "no_config":
        lines.append(f"result:  {_STATUS_TEXT[info['status']]}")
    if info["key_override_env"]:
        lines.append("note:    set in the environment, replacing the rule's keys: " + ", ".join(info["key_override_env"]))
    store = info["store"]
    indent = "" if store["indent"] is None else f", indent {store['indent']} ({store['indent_source']})"
    lines.append(f"store:   {store['name']}{indent}")
    return "\n".join(lines) + "\n"


def _rule_lines(rule: dict[str, TreeValue]) -> list[str]:
    if rule["path_regex"]:
        m = rule["match"]
        why = f"path_regex {rule['path_regex']!r} found {m['text']!r} at {m['start']}..{m['end']}"
    else:
        why = "no path_regex, so it matches every file"
    lines = [f"rule {rule['index']}: MATCH: {why}"]
    groups = rule["key_groups"]
    label = "key groups" if rule["key_source"] == "key_groups" else "keys (flat rule, one group)"
    lines.append(f"{label}: {len(groups)}, shamir_threshold {rule['shamir_threshold']}")
    for n, group in enumerate(groups, 1):
        lines.append(f"  group {n}:" + ("" if group else " (empty)"))
        lines.extend(f"    {key['type']:<8} {key['identity']}" for key in group)
    if rule["selection"]:
        sel = ", ".join(f"{k}: {v!r}" for k, v in rule["selection"].items())
    elif rule["effective_selection"]:
        sel = "none set (sops records unencrypted_suffix: '_unencrypted')"
    else:
        sel = "none"
    if not rule["effective_selection"]:
        sel += " (ignored: the binary store encrypts the whole file)" if rule["selection"] else ""
    lines.append(f"selection: {sel}")
    mac_only = "true" if rule["mac_only_encrypted"] else "false"
    if rule["mac_only_encrypted"] and not rule["effective_mac_only_encrypted"]:
        mac_only += " (ignored by the binary store)"
    lines.append(f"mac_only_encrypted: {mac_only}")
    return lines
