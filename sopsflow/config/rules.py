"""Creation rules and the loaded config: which rule a path matches, as sops does it.

Matching (sops' `config/config.go`, parseCreationRuleForFile): the file path is made
absolute, the ``<config dir>/`` prefix is removed, and each rule's ``path_regex``
(Go RE2 syntax) is *searched* in the rest; a rule without a ``path_regex`` matches
every file; the first match wins.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from pathlib import Path

from .. import errors
from ..errors import SopsError
from ..lazyre import compile_lazy
from .discovery import go_abs
from .keyspecs import (
    GroupSpec,
    KeySpec,
    KeySpecError,
    age_specs,
    azure_specs,
    build_key,
    dedup_specs,
    gcp_specs,
    hckms_specs,
    kms_specs,
    pgp_specs,
    vault_specs,
)

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Protocol

    class GoRegexMatch(Protocol):
        def span(self) -> tuple[int, int]: ...

    class GoRegex(Protocol):
        """A compiled RE2 pattern (the ``re2`` module ships no type information)."""

        def search(self, text: str) -> GoRegexMatch | None: ...

if TYPE_CHECKING:
    from dataclasses import dataclass, field

    from ..keys.base import MasterKey
else:  # the same classes without importing dataclasses (start-up time)
    from ..records import dataclass, field


@dataclass
class CreationRule:
    """One entry of ``creation_rules``.

    ``index`` is the entry's position in the file's list (0-based; null
    entries, which sops drops, keep their slot). ``path_regex`` is ``""`` for
    a rule that matches every file. ``selection`` holds only the selection
    options that are set (non-empty).
    """

    index: int
    path_regex: str
    shamir_threshold: int
    selection: dict[str, str]
    mac_only_encrypted: bool
    #: True when the rule uses ``key_groups`` (its flat key fields are ignored).
    uses_key_groups: bool
    config_path: str
    _flat: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _aws_profile: str = field(default="", repr=False)
    _hckms: list[str] = field(default_factory=list, repr=False)
    _groups: list[GroupSpec] = field(default_factory=list, repr=False)
    _regex: GoRegex | None = field(default=None, repr=False)
    _regex_error: str = field(default="", repr=False)
    _problem: str = field(default="", repr=False)
    _key_error: SopsError | None = field(default=None, repr=False)
    # A loaded rule never changes, yet matching validates its keys (bech32
    # checksums and all) once per file: remember the context-free result.
    _specs_cache: list[list[KeySpec]] | SopsError | None = field(default=None, repr=False)

    def matches(self, relative_path: str) -> bool:
        """Whether this rule alone matches ``relative_path`` (the path as
        returned by :meth:`Config.relative_path`)."""
        if self.path_regex == "":
            return True
        return self.search(relative_path) is not None

    def search(self, relative_path: str) -> tuple[int, int, str] | None:
        """(start, end, text) of the first ``path_regex`` match in
        ``relative_path``, None without a match or without a ``path_regex``.
        Raises SopsError for a regex that does not compile."""
        if self.path_regex == "":
            return None
        self._check_regex()
        assert self._regex is not None  # _check_regex compiled it or raised
        found = self._regex.search(go_regex_subject(relative_path))
        if found is None:
            return None
        start, end = found.span()
        # one character replaced by one: the span holds in the real path
        return start, end, relative_path[start:end]

    def _check_regex(self) -> None:
        if self._regex is None and not self._regex_error and self.path_regex:
            # Compiled on first use: decrypt and the other commands that read
            # only ``stores`` never match a rule, and loading RE2 is not free.
            self._regex, self._regex_error = compile_go_regex(self.path_regex)
        if self._regex_error:
            raise self._error(f"can not compile regexp: {self._regex_error}")

    def _check(self) -> None:
        if self._problem:
            raise self._error(self._problem)

    def _error(self, problem: str) -> SopsError:
        return SopsError(
            errors.ERROR_READING_CONFIG,
            f"invalid config file {self.config_path}: creation_rules[{self.index}]: {problem}",
        )

    def key_specs(self, kms_context: Mapping[str, str] | None = None) -> list[list[KeySpec]]:
        """The rule's key groups as plain specs, in sops' order.

        ``kms_context`` is the ``--encryption-context`` of the command line:
        sops applies it to the kms keys of a *flat* rule only (groups carry
        their own ``context``).
        """
        if kms_context:
            return self._compute_specs(kms_context)
        if self._specs_cache is None:
            try:
                self._specs_cache = self._compute_specs(None)
            except SopsError as exc:
                self._specs_cache = exc
        if isinstance(self._specs_cache, SopsError):
            raise SopsError(self._specs_cache.code, self._specs_cache.message)
        return [list(group) for group in self._specs_cache]

    def _compute_specs(self, kms_context: Mapping[str, str] | None) -> list[list[KeySpec]]:
        if self._key_error is not None:
            raise SopsError(self._key_error.code, self._key_error.message)
        try:
            if self.uses_key_groups:
                return [dedup_specs(g.specs()) for g in self._groups]
            return [self._flat_specs(dict(kms_context) if kms_context else None)]
        except KeySpecError as exc:
            raise self._error(str(exc)) from None

    def _flat_specs(self, kms_context: dict[str, str] | None) -> list[KeySpec]:
        # sops joins each field's items with "," and parses the result, in the
        # order age, pgp, kms, gcp_kms, hckms, azure_keyvault, hc_vault (confirmed
        # with the binary through updatekeys' diff). Flat rules keep duplicates.
        f = self._flat
        group = age_specs(",".join(f["age"])) if f["age"] else []
        group += pgp_specs(",".join(f["pgp"]))
        group += kms_specs(",".join(f["kms"]), kms_context, self._aws_profile)
        group += gcp_specs(",".join(f["gcp_kms"]))
        group += hckms_specs(",".join(self._hckms))
        group += azure_specs(",".join(f["azure_keyvault"]))
        group += vault_specs(",".join(f["hc_vault_transit_uri"]))
        return group

    def key_groups(self, kms_context: Mapping[str, str] | None = None) -> list[list[MasterKey]]:
        """Fresh master-key objects for every group (new objects on every call)."""
        specs = self.key_specs(kms_context)
        groups: list[list[MasterKey]] = []
        for group in specs:
            keys: list[MasterKey] = []
            for spec in group:
                try:
                    keys.append(build_key(spec))
                except ImportError:
                    raise
                except Exception as exc:  # a key class refusing the entry
                    message = getattr(exc, "message", None) or str(exc)
                    raise self._error(f"{spec.type_name} key {spec.identity()!r}: {message}") from None
            groups.append(keys)
        return groups


#: The surrogate escapes of undecodable bytes (``surrogateescape``), and any
#: other lone surrogate, which UTF-8 cannot carry.
_SURROGATES = compile_lazy("[\ud800-\udfff]")


def go_regex_subject(text: str) -> str:
    """``text`` as Go's regexp sees it: each undecodable byte (a surrogate
    escape) is one U+FFFD, so ``.`` and ``[^a]`` match it, as in sops. RE2
    itself cannot take such text (it wants UTF-8) and, given the raw bytes,
    would match nothing at them."""
    if text.isascii():
        return text
    return _SURROGATES.sub("\ufffd", text)


def _go_regex_problem(pattern: str) -> str:
    """Go-only refusals RE2 lets through: ``\\C`` (any byte) is not Go syntax."""
    i = 0
    while i < len(pattern):
        if pattern[i] != "\\":
            i += 1
            continue
        nxt = pattern[i + 1:i + 2]
        if nxt == "Q":  # \Q...\E is literal text
            end = pattern.find("\\E", i + 2)
            if end == -1:
                return ""
            i = end + 2
            continue
        if nxt == "C":
            return "error parsing regexp: invalid escape sequence: `\\C`"
        i += 2
    return ""


def compile_go_regex(pattern: str) -> tuple[GoRegex | None, str]:
    """(compiled RE2 regex, "") or (None, error text) for a Go regexp pattern."""
    import re2

    problem = _go_regex_problem(pattern)
    if problem:
        return None, problem
    options = re2.Options()
    options.log_errors = False  # RE2 would print to stderr
    try:
        return re2.compile(pattern, options), ""
    except re2.error as exc:
        text = exc.args[0] if exc.args else "invalid regexp"
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return None, f"error parsing regexp: {text}"


@dataclass
class MatchTrace:
    """How :meth:`Config.match_trace` decided: the path the regexes were
    searched in, the rules tried before the winner, and the winner (or None)."""

    absolute_path: str
    relative_path: str
    inside_config_dir: bool
    tried: list[CreationRule]
    rule: CreationRule | None


class Config:
    """A loaded `.sops.yaml`. Build it with :func:`load_config`."""

    def __init__(self, path: str, rules: list[CreationRule], has_creation_rules: bool,
                 store_indents: dict[str, int], destination_rules: list[DestinationRule] | None = None) -> None:
        self.path = Path(path)
        self.dir = Path(posixpath.dirname(path))
        self.rules = rules
        #: False when ``creation_rules`` is missing or null: sops then treats
        #: the file as "no config" for key selection (``stores`` still apply).
        #: ``creation_rules: []`` is True here and matches nothing.
        self.has_creation_rules = has_creation_rules
        self._store_indents = store_indents
        #: ``destination_rules``, read only by ``publish``.
        self.destination_rules = destination_rules or []

    def __repr__(self) -> str:
        return f"Config({str(self.path)!r}, rules={len(self.rules)})"

    def store_indent(self, name: str) -> int | None:
        """The ``stores.<name>.indent`` set in the file, or None when not set.
        ``name``: yaml, json, json_binary (``binary`` is an alias of json_binary)."""
        if name == "binary":
            name = "json_binary"
        return self._store_indents.get(name)

    def relative_path(self, file_path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
        """The string sops searches the regexes in: the absolute path without
        the ``<config dir>/`` prefix (unchanged for files outside that dir)."""
        return self._split(file_path, cwd)[1]

    def _split(self, file_path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None) -> tuple[str, str, bool]:
        absolute = go_abs(file_path, cwd)
        prefix = str(self.dir) + "/"
        if absolute.startswith(prefix):
            return absolute, absolute[len(prefix):], True
        return absolute, absolute, False

    def match_trace(self, file_path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> MatchTrace:
        absolute, relative, inside = self._split(file_path, cwd)
        tried: list[CreationRule] = []
        chosen = None
        for rule in self.rules:
            if rule.matches(relative):  # raises on a bad regex, as sops does
                chosen = rule
                break
            tried.append(rule)
        if chosen is not None:
            # sops builds the picked rule's settings right away and fails on
            # two selection options or unusable keys in it.
            chosen._check()
            chosen.key_specs()
        return MatchTrace(absolute, relative, inside, tried, chosen)

    def match(self, file_path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> CreationRule | None:
        """The first creation rule matching ``file_path`` (relative paths are
        taken from ``cwd``, default the process cwd), or None."""
        return self.match_trace(file_path, cwd).rule


@dataclass
class DestinationRule:
    """One ``destination_rules`` entry, fields as sops names them (unset = empty/0)."""

    path_regex: str = ""
    s3_bucket: str = ""
    s3_prefix: str = ""
    gcs_bucket: str = ""
    gcs_prefix: str = ""
    vault_path: str = ""
    vault_address: str = ""
    vault_kv_mount_name: str = ""
    vault_kv_version: int = 0
    omit_extensions: bool = False
    recreation_rule: CreationRule | None = None

    def matches(self, file_path: str) -> bool:
        """sops searches the regex in the path exactly as given on the command
        line (not made relative to the config), and skips a rule whose regex
        does not compile."""
        if not self.path_regex:
            return True
        regex, problem = compile_go_regex(self.path_regex)
        if regex is None or problem:
            return False
        return regex.search(go_regex_subject(file_path)) is not None
