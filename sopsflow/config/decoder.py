"""`.sops.yaml` decoding: the YAML read the way go-yaml v3 fills sops' typed structs.

Discovery (sops' `config/config.go`, FindConfigFile): from a directory upward, at most 100 levels, for a file
named exactly ``.sops.yaml``; a ``.sops.yml`` seen on the way is ignored with a
warning. Matching (sops' `config/config.go`): the file path is made absolute (Go ``filepath.Abs``:
lexical, no symlink resolution), the ``<config dir>/`` prefix is removed, and
each rule's ``path_regex`` (Go RE2 syntax) is *searched* in the rest; a rule
without a ``path_regex`` matches every file; the first match wins.

The YAML is decoded the way go-yaml v3 fills sops' typed structs, because
that decides what is an error: a non-null scalar given for a string field is
taken as its source text (``path_regex: 1.10`` is the regex ``1.10``), integer
fields take ints and truncated floats, bool fields also take yes/no/on/off,
duplicate mapping keys are errors, unknown keys are ignored (we log a
warning) and null list items are dropped.

Errors are ``SopsError(5, ...)`` (ErrorReadingConfig) with one line that names
the file. sops 3.11 itself exits 1 for every config problem (it wraps them as
generic errors) and 2 when it panics; what it does per case is recorded next
to each check below. sops only notices some problems when it reaches them
while matching (bad regex of a rule it tries, two selection options or bad
keys in the rule it picks). ``load_config(strict=True)`` reports every problem
at once; ``strict=False`` keeps sops' lazy behaviour, for commands that only
need the ``stores`` section (sops' decrypt/rotate/set ignore broken rules).
"""

from __future__ import annotations

import math
import os

from .. import errors
from ..errors import SopsError
from ..lazyre import compile_lazy
from ..logs import logger
from ..metadata import SELECTION_OPTIONS
from .discovery import go_abs, locate_config
from .keyspecs import GroupSpec
from .rules import Config, CreationRule, DestinationRule

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any, NoReturn, Protocol, TypeAlias

    from ..stores import Store
    from ..tree import TreeValue

    class _Mark(Protocol):
        @property
        def line(self) -> int: ...
        @property
        def index(self) -> int: ...

    #: What a node holds depends on its kind (see :meth:`_Decoder.kind`): the
    #: source text of a scalar, the item nodes of a sequence, the (key, value)
    #: node pairs of a mapping. The decoder branches on the kind, not the type,
    #: so a union here would only add casts.
    _NodeValue: TypeAlias = Any

    class _Node(Protocol):
        """A composed YAML node, from PyYAML (libyaml) or from ruamel: both
        libraries' node classes have these attributes."""

        @property
        def value(self) -> _NodeValue: ...
        @property
        def tag(self) -> object: ...
        @property
        def start_mark(self) -> _Mark: ...

    class _NodeSource(Protocol):
        """PyYAML's composer interface."""

        def check_node(self) -> bool: ...
        def get_node(self) -> _Node | None: ...


#: Store names whose indentation `.sops.yaml` can set; sops' binary store
#: writes JSON and uses the ``json_binary`` entry.
_INDENT_STORES = ("yaml", "json", "json_binary")

_MAX_INT64 = 2**63 - 1

_MIN_INT64 = -(2**63)


_CACHE: dict[tuple[str, bool], tuple[tuple[int, int, int], Config]] = {}


def load_config(path: str | os.PathLike[str], *, strict: bool = True) -> Config:
    """Load and check a `.sops.yaml`; cached per file while its mtime/size/inode
    stay the same.

    ``strict=True`` raises for any problem in any rule; ``strict=False`` only
    for problems sops reports whatever the command (YAML syntax, wrong types,
    duplicate keys) and leaves rule problems to :meth:`Config.match`.
    """
    abs_path = go_abs(path)
    try:
        st = os.stat(abs_path)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = _CACHE.get((abs_path, strict))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with open(abs_path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        # sops: "could not read config file: ..." (exit 1)
        raise SopsError(errors.ERROR_READING_CONFIG,
                        f"could not read config file {abs_path}: {exc.strerror or exc}") from None
    config = parse_config(data, abs_path, strict=strict)
    _CACHE[(abs_path, strict)] = (stamp, config)
    return config


def config_in_effect(explicit: str | os.PathLike[str] | None = None, *, strict: bool = True) -> Config | None:
    """The loaded :func:`locate_config` file, or None. ``strict=False`` is for
    commands that only need its ``stores`` section (decrypt, rotate, set,
    unset, edit of an existing file): like sops, they are not stopped by a
    broken creation rule."""
    path = locate_config(explicit)
    return None if path is None else load_config(path, strict=strict)


def store_for_file(name_path: str, type_override: str | None, *, indent: int | None,
                   config: Config | None) -> Store:
    """The store for ``name_path`` (``type_override`` wins when it names one);
    its indentation is ``indent`` when set (0 means the default, as in sops),
    else the config's ``stores`` setting."""
    from ..stores import store_by_name, store_for_path

    probe = store_for_path(name_path, type_override)
    chosen = int(indent) if indent else None
    if chosen is None and config is not None:
        chosen = config.store_indent(probe.name)  # binary reads json_binary
    if chosen is None:
        return probe
    return store_by_name(probe.name, indent=int(chosen))


def parse_config(data: bytes, path: str, *, strict: bool = True) -> Config:
    """Decode `.sops.yaml` content; ``path`` (absolute) names the file in errors
    and anchors the rules' paths."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SopsError(errors.ERROR_READING_CONFIG, f"invalid config file {path}: not valid UTF-8") from None
    try:
        root = _compose_libyaml(text)
        if not isinstance(root, _Unparsed):
            return _Decoder(path, text).config(root, strict)
        return _Decoder(path).config(_compose(text, path), strict)
    except RecursionError:
        # libyaml stops at 1,000 levels, ruamel (the fallback) at Python's
        # recursion limit; go-yaml at 10,000 (sops then exits 1).
        raise SopsError(errors.ERROR_READING_CONFIG, f"invalid config file {path}: nesting is too deep") from None


class _Unparsed:
    """libyaml is missing or rejects the text: the ruamel path runs instead."""


_UNPARSED = _Unparsed()


def _compose_libyaml(text: str) -> _Node | _Unparsed | None:
    """The first document's node tree through libyaml (PyYAML's C parser): a
    fraction of ruamel's time, which every command reading the config pays.
    Resolution is left to :class:`_Decoder`, so no implicit tags are applied.
    ``_UNPARSED`` when libyaml is missing or rejects the text: the ruamel path
    then runs and gives its error messages."""
    from ..lazyre import import_yaml

    try:
        import_yaml()
        from yaml import YAMLError
        from yaml._yaml import CParser as parser
        from yaml.resolver import BaseResolver
    except ImportError:
        return _UNPARSED

    class _Composer(parser, BaseResolver):
        yaml_implicit_resolvers: dict[str, Any] = {}
        yaml_path_resolvers: dict[Any, Any] = {}

        def __init__(self, stream: str) -> None:
            parser.__init__(self, stream)
            BaseResolver.__init__(self)

    composer = _Composer(text)
    try:
        return _first_node(composer)
    except YAMLError:
        return _UNPARSED
    finally:
        composer.dispose()


def _first_node(composer: _NodeSource) -> _Node | None:
    """go-yaml reads the first document only; later ones are not even parsed."""
    if composer.check_node():
        return composer.get_node()
    return None


def _compose(text: str, path: str) -> _Node | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        for doc in yaml.compose_all(text):
            first: _Node = doc  # ruamel's compose_all is untyped
            return first  # go-yaml reads the first document only
    except YAMLError as exc:
        # sops: "error loading config: Could not unmarshal config file: yaml: line N: ..." (exit 1,
        # also for decrypt)
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SopsError(errors.ERROR_READING_CONFIG,
                        f"invalid config file {path}: YAML syntax error: {where}{problem}") from None
    return None


# go-yaml v3 scalar resolution (resolve.go), enough to type-check the fields.

# Only into a typed bool (yaml 1.1 compatibility in go-yaml v3's decoder).
_BOOL_11 = {**{w: True for w in ("y", "Y", "yes", "Yes", "YES", "on", "On", "ON")},
            **{w: False for w in ("n", "N", "no", "No", "NO", "off", "Off", "OFF")}}
_TAG_PREFIX = "tag:yaml.org,2002:"


def _resolve_plain(text: str) -> tuple[str, TreeValue]:
    """go-yaml's resolution of an untagged plain scalar: the YAML store's rule,
    so a value means the same in a config and in a document (``1e999`` and
    ``.5e999`` overflow float64 and stay strings in both). A timestamp keeps
    its text: every config field that takes one is a string."""
    from ..stores.yaml.resolve import TIMESTAMP_TAG, resolve_plain

    if text == "<<":
        return "!!merge", text  # the store resolves merge keys in its loader
    tag, value = resolve_plain(text)
    if tag == TIMESTAMP_TAG:
        return tag, text
    return tag, int(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG_PREFIX):] if tag.startswith(_TAG_PREFIX) else tag


# A node's properties come first in its source: an optional anchor, then the tag.
_EXPLICIT_TAG = compile_lazy(r"(?:&[^ \t\r\n]+[ \t\r\n]+)?!")


class _Decoder:
    """go-yaml v3's decoding of sops' configFile struct, over PyYAML or ruamel
    nodes. ``source``: the text libyaml composed (its nodes carry no resolved
    tags, so an explicit tag is read from the source); None for ruamel nodes."""

    def __init__(self, path: str, source: str | None = None) -> None:
        self.path = path
        self.source = source
        self._implicit: Any = None

    # errors

    def fail(self, node: _Node | None, where: str, problem: str) -> NoReturn:
        line = f"line {node.start_mark.line + 1}: " if node is not None else ""
        raise SopsError(errors.ERROR_READING_CONFIG, f"invalid config file {self.path}: {line}{where}: {problem}")

    def type_fail(self, node: _Node, where: str, expected: str) -> NoReturn:
        # sops: "... yaml: unmarshal errors: line N: cannot unmarshal !!str `x` into int" (exit 1,
        # and every command fails, decrypt included)
        self.fail(node, where, f"expected {expected}, got {self.describe(node)}")

    def describe(self, node: _Node) -> str:
        kind = type(node).__name__
        if kind == "MappingNode":
            return "a mapping"
        if kind == "SequenceNode":
            return "a list"
        tag, _ = self.resolve(node)
        text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
        return f"{tag} `{text}`"

    # scalars

    def resolve(self, node: _Node) -> tuple[str, TreeValue]:
        """(short tag, value) of a scalar node as go-yaml v3 resolves it."""
        text = node.value
        if getattr(node, "style", None) in ("'", '"', "|", ">"):  # scalars have a style, in both libraries
            return "!!str", text
        tag = str(getattr(node.tag, "value", node.tag))
        if not self._explicit(node, tag):
            return _resolve_plain(text)
        short = _short_tag(tag)
        if short == "!!binary":
            return short, text
        if short not in ("!!null", "!!bool", "!!int", "!!float", "!!timestamp"):
            return "!!str", text  # !!str and unknown tags keep the text
        rtag, value = _resolve_plain(text)
        if rtag == short:
            return rtag, value
        if short == "!!float" and rtag == "!!int":
            return "!!float", float(value)
        self.fail(node, "value", f"cannot decode {rtag} `{text}` as a {short}")

    def _explicit(self, node: _Node, tag: str) -> bool:
        """Whether the scalar carries a tag of its own (``!!int 5``)."""
        if self.source is not None:
            return _EXPLICIT_TAG.match(self.source, node.start_mark.index) is not None
        return tag != self._implicit_tag(node.value)

    def _implicit_tag(self, text: str) -> str:
        if self._implicit is None:
            from ruamel.yaml import YAML
            from ruamel.yaml.nodes import ScalarNode

            resolver = YAML(typ="safe", pure=True).resolver
            self._implicit = lambda t: str(resolver.resolve(ScalarNode, t, (True, False)))
        return str(self._implicit(text))

    @staticmethod
    def kind(node: _Node) -> str:
        return type(node).__name__.replace("Node", "").lower()  # scalar / sequence / mapping

    def is_null(self, node: _Node | None) -> bool:
        return node is None or (self.kind(node) == "scalar" and self.resolve(node)[0] == "!!null")

    def string(self, node: _Node | None, where: str) -> str | None:
        """A string field: the scalar's source text; None when null."""
        if node is None or self.is_null(node):  # the first test narrows the type
            return None
        if self.kind(node) != "scalar":
            self.type_fail(node, where, "a string")
        tag, value = self.resolve(node)
        if tag == "!!binary":
            import base64
            import binascii

            try:
                return base64.b64decode(value).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                self.fail(node, where, "!!binary value contains invalid base64 data")
        return str(node.value)

    def integer(self, node: _Node | None, where: str) -> int | None:
        if node is None or self.is_null(node):  # the first test narrows the type
            return None
        if self.kind(node) == "scalar":
            tag, value = self.resolve(node)
            if tag == "!!int" and _MIN_INT64 <= value <= _MAX_INT64:
                return int(value)
            # go-yaml truncates a float into an int field (2.7 -> 2).
            if tag == "!!float" and math.isfinite(value) and _MIN_INT64 <= value <= _MAX_INT64:
                return int(value)
        self.type_fail(node, where, "an integer")

    def boolean(self, node: _Node | None, where: str) -> bool | None:
        if node is None or self.is_null(node):  # the first test narrows the type
            return None
        if self.kind(node) == "scalar":
            tag, value = self.resolve(node)
            if tag == "!!bool":
                return bool(value)
            if tag == "!!str" and value in _BOOL_11:
                return _BOOL_11[value]
        self.type_fail(node, where, "a boolean")

    def string_list(self, node: _Node | None, where: str) -> list[str]:
        """A ``[]string`` field: null items are dropped, scalars are refused."""
        if node is None or self.is_null(node):  # the first test narrows the type
            return []
        if self.kind(node) != "sequence":
            # sops: "cannot unmarshal !!str `age1...` into []string" (exit 1)
            self.type_fail(node, where, "a list of strings")
        out = []
        for i, item in enumerate(node.value):
            text = self.string(item, f"{where}[{i}]")
            if text is not None:
                out.append(text)
        return out

    def key_field(self, node: _Node | None, where: str) -> list[str]:
        """sops' parseKeyField over an ``interface{}`` field: a comma-separated
        string (items trimmed, empties dropped) or a list of strings (as is)."""
        if node is None or self.is_null(node):  # the first test narrows the type
            return []
        kind = self.kind(node)
        if kind == "scalar":
            tag, value = self.resolve(node)
            if tag in ("!!str", "!!binary") or not tag.startswith("!!"):
                return [s.strip() for s in str(value).split(",") if s.strip()]
            # sops: "invalid age key configuration: ... expected string, []string, or nil, got int" (exit 1)
            self.type_fail(node, where, "a string or a list of strings")
        if kind == "sequence":
            out = []
            for i, item in enumerate(node.value):
                if self.kind(item) == "scalar":
                    tag, value = self.resolve(item)
                    if tag in ("!!str", "!!binary") or not tag.startswith("!!"):
                        out.append(str(value))
                        continue
                # sops: "... expected string in list, got int" (exit 1)
                self.type_fail(item, f"{where}[{i}]", "a string")
            return out
        self.type_fail(node, where, "a string or a list of strings")

    # mappings

    def mapping(self, node: _Node | None, where: str, known: tuple[str, ...] | None) -> dict[str, _Node]:
        """Fields of a struct-like mapping (merge keys applied, duplicates refused).
        ``known=None`` accepts any key (a Go map)."""
        if node is None or self.is_null(node):  # the first test narrows the type
            return {}
        if self.kind(node) != "mapping":
            # sops: "cannot unmarshal !!str `foo` into config.creationRule" (exit 1)
            self.type_fail(node, where, "a mapping")
        fields: dict[str, Any] = {}
        lines: dict[tuple[str, str], int] = {}
        merges: list[Any] = []
        for key_node, value_node in node.value:
            if self.kind(key_node) == "scalar" and self.resolve(key_node)[0] == "!!merge":
                merges.append(value_node)
                continue
            ident = (self.kind(key_node), str(key_node.value) if self.kind(key_node) == "scalar" else repr(key_node))
            if ident in lines:
                # sops: 'mapping key "age" already defined at line 2' (exit 1)
                self.fail(key_node, where, f'mapping key "{key_node.value}" already defined at line {lines[ident]}')
            lines[ident] = key_node.start_mark.line + 1
            name = self.string(key_node, where) if self.kind(key_node) == "scalar" else None
            if name is None:
                continue
            if known is not None and name not in known:
                logger(__name__).warning("%s: %s: unknown key %r ignored (sops ignores it too)", self.path, where, name)
                continue
            fields[name] = value_node
        for merge in merges:
            sources = merge.value if self.kind(merge) == "sequence" else [merge]
            for source in sources:
                for name, value in self.mapping(source, where, known).items():
                    fields.setdefault(name, value)
        return fields

    def struct_list(self, node: _Node | None, where: str) -> list[tuple[int, _Node]]:
        """Items of a list of structs, with their index; null items dropped."""
        if node is None or self.is_null(node):  # the first test narrows the type
            return []
        if self.kind(node) != "sequence":
            self.type_fail(node, where, "a list")
        return [(i, item) for i, item in enumerate(node.value) if not self.is_null(item)]

    # the schema

    def config(self, root: _Node | None, strict: bool) -> Config:
        top = self.mapping(root, "top level", ("creation_rules", "destination_rules", "stores"))
        indents = self.stores(top.get("stores"))
        rules_node = top.get("creation_rules")
        has_rules = not self.is_null(rules_node)
        rules = [self.rule(item, i, f"creation_rules[{i}]") for i, item in
                 self.struct_list(rules_node, "creation_rules")]
        destinations = [self.destination_rule(item, f"destination_rules[{i}]") for i, item in
                        self.struct_list(top.get("destination_rules"), "destination_rules")]
        if strict:
            for rule in rules:
                rule._check_regex()
                rule._check()
                rule.key_specs()
        return Config(self.path, rules, has_rules, indents, destinations)

    def stores(self, node: _Node | None) -> dict[str, int]:
        stores = self.mapping(node, "stores", ("dotenv", "ini", "json_binary", "json", "yaml"))
        indents: dict[str, int] = {}
        for name, value in stores.items():
            known: tuple[str, ...] = ("indent",) if name in _INDENT_STORES else ()
            settings = self.mapping(value, f"stores.{name}", known)
            if "indent" in settings:
                indent = self.integer(settings["indent"], f"stores.{name}.indent")
                if indent is not None:  # null leaves sops' default in place
                    indents[name] = indent
        return indents

    _RULE_KEYS = (
        "path_regex", "kms", "aws_profile", "age", "pgp", "gcp_kms", "hckms", "azure_keyvault",
        "hc_vault_transit_uri", "key_groups", "shamir_threshold", *SELECTION_OPTIONS, "mac_only_encrypted",
    )
    _FLAT_KEYS = ("age", "pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault_transit_uri")

    def rule(self, node: _Node | None, index: int, where: str) -> CreationRule:
        f = self.mapping(node, where, self._RULE_KEYS)
        path_regex = self.string(f.get("path_regex"), f"{where}.path_regex") or ""
        flat: dict[str, list[str]] = {}
        key_error = None
        for name in self._FLAT_KEYS:
            # These fields are interface{} in sops, so go-yaml accepts anything
            # and sops complains only when it builds the picked rule's keys.
            try:
                flat[name] = self.key_field(f.get(name), f"{where}.{name}")
            except SopsError as exc:
                flat[name] = []
                key_error = key_error or exc
        groups = [self.group(g, f"{where}.key_groups[{i}]") for i, g in
                  self.struct_list(f.get("key_groups"), f"{where}.key_groups")]
        selection = {}
        for name in SELECTION_OPTIONS:
            value = self.string(f.get(name), f"{where}.{name}")
            if value:
                selection[name] = value
        problem = ""
        if len(selection) > 1:
            # sops: "error loading config: cannot use more than one of ... for the same rule" (exit 1,
            # only when this rule is the one that matched)
            problem = ("cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, "
                       "unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex for the same rule "
                       f"(found {', '.join(selection)})")
        # sops: "can not compile regexp: error parsing regexp: ..." (exit 1, only when the
        # matcher reaches this rule): path_regex is compiled by _check_regex.
        return CreationRule(
            index=index,
            path_regex=path_regex,
            shamir_threshold=self.integer(f.get("shamir_threshold"), f"{where}.shamir_threshold") or 0,
            selection=selection,
            mac_only_encrypted=bool(self.boolean(f.get("mac_only_encrypted"), f"{where}.mac_only_encrypted")),
            uses_key_groups=bool(groups),
            config_path=self.path,
            _flat=flat,
            _aws_profile=self.string(f.get("aws_profile"), f"{where}.aws_profile") or "",
            # sops types this field []string (not the string-or-list of the
            # older key fields), so a plain string is refused at load time.
            _hckms=self.string_list(f.get("hckms"), f"{where}.hckms"),
            _groups=groups,
            _problem=problem,
            _key_error=key_error,
        )

    def group(self, node: _Node | None, where: str) -> GroupSpec:
        f = self.mapping(node, where, ("merge", "kms", "gcp_kms", "hckms", "azure_keyvault", "hc_vault", "age", "pgp"))
        group = GroupSpec(
            merge=[self.group(m, f"{where}.merge[{i}]") for i, m in self.struct_list(f.get("merge"), f"{where}.merge")],
            hc_vault=self.string_list(f.get("hc_vault"), f"{where}.hc_vault"),
            age=self.string_list(f.get("age"), f"{where}.age"),
            pgp=self.string_list(f.get("pgp"), f"{where}.pgp"),
        )
        for i, item in self.struct_list(f.get("kms"), f"{where}.kms"):
            group.kms.append(self.kms_entry(item, f"{where}.kms[{i}]"))
        for i, item in self.struct_list(f.get("gcp_kms"), f"{where}.gcp_kms"):
            g = self.mapping(item, f"{where}.gcp_kms[{i}]", ("resource_id",))
            group.gcp_kms.append(self.string(g.get("resource_id"), f"{where}.gcp_kms[{i}].resource_id") or "")
        for i, item in self.struct_list(f.get("hckms"), f"{where}.hckms"):
            h = self.mapping(item, f"{where}.hckms[{i}]", ("key_id",))
            group.hckms.append(self.string(h.get("key_id"), f"{where}.hckms[{i}].key_id") or "")
        for i, item in self.struct_list(f.get("azure_keyvault"), f"{where}.azure_keyvault"):
            here = f"{where}.azure_keyvault[{i}]"
            a = self.mapping(item, here, ("vaultUrl", "key", "version"))
            group.azure.append({k: self.string(a.get(k), f"{here}.{k}") or "" for k in ("vaultUrl", "key", "version")})
        return group

    def kms_entry(self, node: _Node, where: str) -> dict[str, str | dict[str, str] | None]:
        f = self.mapping(node, where, ("arn", "role", "context", "aws_profile"))
        context: dict[str, str] = {}
        for key, value in self.mapping(f.get("context"), f"{where}.context", None).items():
            text = self.string(value, f"{where}.context.{key}")
            if text is None:
                # sops 3.11 panics on a null context value (exit 2)
                self.fail(value, f"{where}.context.{key}", "context values must be strings, got null")
            context[key] = text
        return {
            "arn": self.string(f.get("arn"), f"{where}.arn") or "",
            "role": self.string(f.get("role"), f"{where}.role") or "",
            "context": context or None,
            "aws_profile": self.string(f.get("aws_profile"), f"{where}.aws_profile") or "",
        }

    def destination_rule(self, node: _Node | None, where: str) -> DestinationRule:
        # Type-checked even when not publishing, because sops refuses the
        # whole file when these do not decode.
        strings = ("path_regex", "s3_bucket", "s3_prefix", "gcs_bucket", "gcs_prefix", "vault_path",
                   "vault_address", "vault_kv_mount_name")
        f = self.mapping(node, where, (*strings, "vault_kv_version", "recreation_rule", "omit_extensions"))
        text = {name: self.string(f.get(name), f"{where}.{name}") or "" for name in strings}
        recreation = None
        if "recreation_rule" in f:
            recreation = self.rule(f["recreation_rule"], -1, f"{where}.recreation_rule")
        return DestinationRule(
            **text,
            vault_kv_version=self.integer(f.get("vault_kv_version"), f"{where}.vault_kv_version") or 0,
            omit_extensions=bool(self.boolean(f.get("omit_extensions"), f"{where}.omit_extensions")),
            recreation_rule=recreation,
        )


