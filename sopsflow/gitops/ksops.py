"""A KSOPS-compatible kustomize generator: ``apiVersion: viaduct.ai/v1``, ``kind: ksops``.

The generator manifest names SOPS files to decrypt at build time::

    apiVersion: viaduct.ai/v1
    kind: ksops
    metadata:
      name: secrets
    files:                      # whole encrypted manifests, emitted decrypted
      - db-credentials.yaml
    secretFrom:                 # Secrets built from encrypted files
      - metadata: {name: app-config, namespace: billing}
        type: Opaque
        files: [app.ini, config.json=settings.json]   # stringData, key = file name or the part before '='
        binaryFiles: [tls.key]                          # data (base64)
        envs: [app.env]                                 # one stringData key per dotenv line

Two ways in, as KSOPS has:

* legacy exec plugin: kustomize writes the generator to a temporary file and
  runs the plugin with that path as its only argument, in the kustomization
  directory (also given as ``KUSTOMIZE_PLUGIN_CONFIG_ROOT``);
* KRM function: a ``ResourceList`` on stdin, one on stdout. Every generator
  item is replaced by what it generates, every other item passes through.

Paths resolve against the generator's directory; kustomize does not say where
a generator file lives (the plugin sees a temporary copy), so under kustomize
that is the kustomization directory, as with KSOPS. No path may leave the
kustomization root, even through a symlink. The format of each file follows its
extension, as sops (and KSOPS) choose it: ``.yaml``/``.yml``, ``.json``,
``.env``, ``.ini``, anything else binary. Every file must carry SOPS metadata:
a plaintext file is an error, never passed through.

kustomize's generator options travel as annotations on the generated objects,
which kustomize reads and removes: ``kustomize.config.k8s.io/needs-hash``
(a name suffix from the content hash) and ``kustomize.config.k8s.io/behavior``
(``create``, ``replace`` or ``merge`` with a base object). They are checked
here, so a typo fails with a clear message instead of being ignored.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import errors
from ..errors import SopsError

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from ruamel.yaml import YAML

    from ..config.rules import Config
    from ..stores import Store
    from ..tree import Branches, TreeValue

GENERATOR_GROUP = "viaduct.ai"
GENERATOR_KIND = "ksops"
HASH_ANNOTATION = "kustomize.config.k8s.io/needs-hash"
BEHAVIOR_ANNOTATION = "kustomize.config.k8s.io/behavior"
BEHAVIORS = ("create", "replace", "merge")
#: Go's strconv.ParseBool, which kustomize applies to the needs-hash annotation
_GO_BOOLS = frozenset(("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"))
#: where kustomize's legacy exec plugin loader looks, under $XDG_CONFIG_HOME
PLUGIN_SUBDIR = Path("kustomize", "plugin", "viaduct.ai", "v1", "ksops")
PLUGIN_NAME = "ksops"
#: kpt and kustomize annotate items with the file they came from, relative to the package
_PATH_ANNOTATIONS = ("internal.config.kubernetes.io/path", "config.kubernetes.io/path")
#: a Secret data key, as the Kubernetes API validates it
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_TOP_FIELDS = frozenset(("apiVersion", "kind", "metadata", "files", "secretFrom"))
_SECRET_FROM_FIELDS = frozenset(("metadata", "type", "files", "binaryFiles", "envs"))


def _fail(message: str) -> SopsError:
    return SopsError(errors.GENERIC, f"ksops: {message}")


@dataclass
class SecretFrom:
    """One ``secretFrom`` entry: a Secret assembled from encrypted files."""

    metadata: dict[str, TreeValue]
    type: str | None = None
    files: list[str] = field(default_factory=list)
    binary_files: list[str] = field(default_factory=list)
    envs: list[str] = field(default_factory=list)


@dataclass
class Generator:
    """A parsed ``kind: ksops`` manifest."""

    name: str
    files: list[str] = field(default_factory=list)
    secret_from: list[SecretFrom] = field(default_factory=list)


def is_generator(doc: TreeValue) -> bool:
    """Whether ``doc`` is a ``viaduct.ai/*`` ``ksops`` manifest."""
    if not isinstance(doc, Mapping):
        return False
    api = doc.get("apiVersion")
    return doc.get("kind") == GENERATOR_KIND and isinstance(api, str) and api.split("/")[0] == GENERATOR_GROUP


def _string_list(value: TreeValue, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(f"{where} must be a list of file names")
    return [str(v) for v in value]


def parse_generator(doc: TreeValue) -> Generator:
    """Check a generator manifest and return its parts (SopsError on anything unexpected)."""
    if not isinstance(doc, Mapping):
        raise _fail("the generator manifest is not a YAML mapping")
    if not is_generator(doc):
        raise _fail(
            f"not a ksops generator (apiVersion {doc.get('apiVersion')!r}, kind {doc.get('kind')!r}; "
            f"expected apiVersion {GENERATOR_GROUP}/v1, kind {GENERATOR_KIND})"
        )
    meta = doc.get("metadata")
    name = str(meta.get("name", "")) if isinstance(meta, Mapping) else ""
    label = f"generator {name!r}" if name else "generator"
    unknown = sorted(str(k) for k in doc if k not in _TOP_FIELDS)
    if unknown:
        raise _fail(f"{label}: unknown field {unknown[0]!r} (known: files, secretFrom)")
    if doc.get("files") is None and doc.get("secretFrom") is None:
        raise _fail(f"{label}: needs 'files' or 'secretFrom'")
    gen = Generator(name=name, files=_string_list(doc.get("files"), f"{label}: files"))
    entries = doc.get("secretFrom")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise _fail(f"{label}: secretFrom must be a list")
    for i, entry in enumerate(entries):
        where = f"{label}: secretFrom[{i}]"
        if not isinstance(entry, Mapping):
            raise _fail(f"{where} must be a mapping")
        unknown = sorted(str(k) for k in entry if k not in _SECRET_FROM_FIELDS)
        if unknown:
            raise _fail(f"{where}: unknown field {unknown[0]!r} (known: metadata, type, files, binaryFiles, envs)")
        metadata = entry.get("metadata")
        if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
            raise _fail(f"{where}: metadata.name is required")
        kind = entry.get("type")
        if kind is not None and not isinstance(kind, str):
            raise _fail(f"{where}: type must be a string")
        gen.secret_from.append(SecretFrom(
            metadata=_plain(metadata),
            type=kind or None,
            files=_string_list(entry.get("files"), f"{where}: files"),
            binary_files=_string_list(entry.get("binaryFiles"), f"{where}: binaryFiles"),
            envs=_string_list(entry.get("envs"), f"{where}: envs"),
        ))
    return gen


def _plain(node: TreeValue) -> TreeValue:
    """ruamel/PyYAML containers -> plain dicts and lists (for our own output)."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def check_generator_options(obj: TreeValue, where: str) -> None:
    """The two annotations kustomize reads from generated objects, validated as kustomize would."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not isinstance(annotations, Mapping):
        return
    if HASH_ANNOTATION in annotations:
        value = annotations[HASH_ANNOTATION]
        if not isinstance(value, str) or value not in _GO_BOOLS:
            raise _fail(f"{where}: annotation {HASH_ANNOTATION} must be the string \"true\" or \"false\"")
    if BEHAVIOR_ANNOTATION in annotations:
        value = annotations[BEHAVIOR_ANNOTATION]
        if value not in BEHAVIORS:
            raise _fail(f"{where}: annotation {BEHAVIOR_ANNOTATION} must be one of {', '.join(BEHAVIORS)}")


# --- decryption -----------------------------------------------------------------------------


@dataclass
class Decrypted:
    path: str  # as written in the generator
    store_name: str
    plaintext: bytes  # what `sops decrypt` prints
    branches: Branches


class Context:
    """Where a generator's paths resolve (``base``) and where they must stay (``root``)."""

    def __init__(self, root: Path, base: Path | None = None, prefix: str = "ksops",
                 warn: Callable[[str], None] | None = None) -> None:
        self.prefix = prefix
        #: where warnings go (stderr by default): a file and a key name, never a value
        self.warn = warn or (lambda text: sys.stderr.write(text + "\n"))
        self.root = Path(os.path.abspath(root))
        self.base = Path(os.path.abspath(base)) if base is not None else self.root
        self._real_root = os.path.realpath(self.root)
        self._config: Config | None = None
        self._config_loaded = False
        #: every file read, by real path (KRM mode drops items that were these files)
        self.consumed: set[str] = set()

    def resolve(self, rel: str, where: str) -> Path:
        candidate = Path(os.path.normpath(self.base / rel))
        real = os.path.realpath(candidate)
        if os.path.commonpath([real, self._real_root]) != self._real_root:
            raise SopsError(errors.GENERIC, f"{self.prefix}: {where}: {rel} is outside the root {self.root}")
        return candidate

    def _store(self, rel: str) -> Store:
        """The store sops would pick for ``rel``, with the indent of the .sops.yaml in effect."""
        from ..stores import format_for_path, store_by_name

        name = format_for_path(rel)
        config = self.config()
        return store_by_name(name, config.store_indent(name) if config is not None else None)

    def config(self) -> Config | None:
        """The .sops.yaml `sops decrypt` would read here (only its `stores` matter)."""
        if not self._config_loaded:
            self._config_loaded = True
            from ..config.decoder import load_config
            from ..config.discovery import find_config

            explicit = os.environ.get("SOPS_CONFIG")
            path = Path(explicit) if explicit else find_config(Path.cwd())
            if path is not None and path.exists():
                self._config = load_config(path, strict=False)
        return self._config

    def decrypt(self, rel: str, where: str) -> Decrypted:
        from ..fileio import read_input
        from ..operations import decrypt_document

        path = self.resolve(rel, where)
        store = self._store(rel)
        try:
            data = read_input(str(path))
            doc = decrypt_document(store, data, check_version=True)
        except SopsError as exc:
            raise SopsError(exc.code, f"{self.prefix}: {where}: {rel}: {exc.message}", exc.detail) from None
        self.consumed.add(os.path.realpath(path))
        return Decrypted(rel, store.name, store.dump_plain(doc.branches), doc.branches)


# --- generation -----------------------------------------------------------------------------


@dataclass
class Output:
    """What one generator produced: the decrypted text of each ``files`` entry
    (kept byte for byte as sops prints it) and the Secrets of ``secretFrom``."""

    manifests: list[Decrypted] = field(default_factory=list)
    secrets: list[dict[str, TreeValue]] = field(default_factory=list)


def _key_and_path(entry: str, where: str) -> tuple[str, str]:
    parts = entry.split("=")
    if len(parts) == 1:
        return os.path.basename(entry), entry
    if len(parts) > 2 or not parts[0] or not parts[1]:
        raise _fail(f"{where}: {entry!r} is neither a path nor key=path")
    return parts[0], parts[1]


def _check_key(key: str, where: str) -> None:
    if not _SECRET_KEY.fullmatch(key) or len(key) > 253:
        raise _fail(f"{where}: {key!r} is not a valid Secret key (letters, digits, '-', '_', '.')")


def generate(gen: Generator, ctx: Context) -> Output:
    out = Output()
    label = f"generator {gen.name!r}" if gen.name else "generator"
    for rel in gen.files:
        where = f"{label}: files"
        ctx.resolve(rel, where)  # a path out of the root is refused before anything else is said about it
        if _format_of(rel) not in ("yaml", "json"):
            raise _fail(f"{where}: {rel} is not a YAML or JSON manifest (use secretFrom for other files)")
        done = ctx.decrypt(rel, where)
        for obj in _documents(done):
            check_generator_options(obj, f"{where}: {rel}")
        out.manifests.append(done)
    for i, spec in enumerate(gen.secret_from):
        out.secrets.append(_secret(spec, ctx, f"{label}: secretFrom[{i}]"))
    return out


def _format_of(rel: str) -> str:
    from ..stores import format_for_path

    return str(format_for_path(rel))


def _documents(done: Decrypted) -> list[TreeValue]:
    from ..operations import to_plain_python

    return [to_plain_python(b) for b in done.branches]


def _secret(spec: SecretFrom, ctx: Context, where: str) -> dict[str, TreeValue]:
    string_data: dict[str, str] = {}
    data: dict[str, str] = {}
    seen: dict[str, str] = {}

    def claim(key: str, source: str) -> None:
        _check_key(key, where)
        if key in seen:
            if seen[key] == source:
                raise _fail(f"{where}: key {key!r} appears twice in {source}")
            raise _fail(f"{where}: key {key!r} comes from both {seen[key]} and {source}")
        seen[key] = source

    for entry in spec.files:
        key, rel = _key_and_path(entry, f"{where}: files")
        claim(key, rel)
        done = ctx.decrypt(rel, f"{where}: files")
        try:
            string_data[key] = done.plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(f"{where}: files: {rel} is not UTF-8 text; list it under binaryFiles") from None
    for entry in spec.binary_files:
        key, rel = _key_and_path(entry, f"{where}: binaryFiles")
        claim(key, rel)
        done = ctx.decrypt(rel, f"{where}: binaryFiles")
        data[key] = base64.b64encode(done.plaintext).decode("ascii")
    for rel in spec.envs:
        for key, value in _env_pairs(ctx, rel, f"{where}: envs"):
            claim(key, rel)
            string_data[key] = value
    secret: dict[str, TreeValue] = {"apiVersion": "v1", "kind": "Secret", "metadata": spec.metadata}
    if spec.type:
        secret["type"] = spec.type
    if data:
        secret["data"] = dict(sorted(data.items()))
    if string_data:
        secret["stringData"] = dict(sorted(string_data.items()))
    check_generator_options(secret, where)
    return secret


def _env_pairs(ctx: Context, rel: str, where: str) -> list[tuple[str, str]]:
    """``KEY=value`` lines as sops reads a dotenv file: the value is everything
    after the first ``=``, ``\\n`` stands for a newline, no quotes are removed
    and no ``$NAME`` is expanded (KSOPS' dotenv parser does both, and turns an
    unknown ``$NAME`` into nothing: a ``$`` in a password would change it)."""
    from ..tree import val_to_string

    name = _format_of(rel)
    if name not in ("dotenv", "binary"):
        raise _fail(f"{where}: {rel} is not a dotenv file (.env)")
    done = ctx.decrypt(rel, where)
    if name == "dotenv":
        branch = done.branches[0]
    else:
        from ..stores import store_by_name

        try:
            branch = store_by_name("dotenv").load_plain(done.plaintext)[0]
        except SopsError:
            raise _fail(f"{where}: {rel} does not decrypt to KEY=value lines") from None
    pairs = []
    for key, value in branch.items_():
        text = val_to_string(value)
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            ctx.warn(f"{ctx.prefix}: warning: {where}: {rel}: the value of {key} is kept with its quotes")
        pairs.append((str(key), text))
    return pairs


# --- output ------------------------------------------------------------------------------------


def _yaml() -> YAML:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    y.preserve_quotes = True
    return y


def _literal_strings(node: TreeValue) -> TreeValue:
    """Strings styled for every YAML reader: multi-line ones as ``|`` blocks (a
    generated Secret stays readable), those with control or line-breaking
    characters double-quoted with escapes, and any that a YAML 1.1 reader would
    take for something else (``on``, ``y``, ``0755``, ``12:30``...) double-quoted.
    Kubernetes tools read YAML 1.1 (sigs.k8s.io/yaml); the emitter here is 1.2."""
    if isinstance(node, dict):
        return {_quoted_if_ambiguous(k): _literal_strings(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_literal_strings(v) for v in node]
    if isinstance(node, str):
        from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

        if "\n" in node and _literal_ok(node):
            return LiteralScalarString(node)
        if not all(c == "\t" or _printable(c) for c in node):
            return DoubleQuotedScalarString(node)  # escapes: no reader can mistake them
        return _quoted_if_ambiguous(node)
    return node


#: go-yaml v2's booleans beyond those of PyYAML's YAML 1.1 resolver
_GO_YAML_V2_BOOLS = frozenset(("y", "Y", "n", "N"))


def _quoted_if_ambiguous(value: TreeValue) -> TreeValue:
    if not isinstance(value, str) or type(value) is not str:
        return value  # not a string, or a string whose style the input chose
    import yaml
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False))
    if tag != "tag:yaml.org,2002:str" or value in _GO_YAML_V2_BOOLS:
        return DoubleQuotedScalarString(value)
    return value


def _literal_ok(text: str) -> bool:
    """Whether a ``|`` block holds ``text`` unchanged: YAML-printable characters
    only, no line break other than ``\\n``, no line ending in blanks, no leading
    blank or empty first line (those need an indentation indicator)."""
    if not all(c == "\n" or c == "\t" or _printable(c) for c in text):
        return False
    return not any(line != line.rstrip(" \t") for line in text.split("\n")) and not text.startswith((" ", "\t", "\n"))


def _printable(c: str) -> bool:
    o = ord(c)
    if o in (0x2028, 0x2029, 0xFEFF):  # line and paragraph separators break lines in YAML 1.1
        return False
    return 0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


def dump_yaml(obj: TreeValue) -> str:
    import io

    buffer = io.StringIO()
    _yaml().dump(_literal_strings(obj), buffer)
    return buffer.getvalue()


def manifest_text(done: Decrypted) -> str:
    """A decrypted manifest as text for a YAML stream: as `sops decrypt` prints
    it, except that JSON is indented with spaces (sops indents it with tabs,
    which YAML parsers other than go-yaml refuse)."""
    text = done.plaintext.decode("utf-8", "surrogateescape")
    if done.store_name != "json":
        return text
    import json

    return json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


def exec_output(out: Output) -> str:
    """The exec plugin's stdout: one multi-document YAML stream."""
    docs = [manifest_text(d) for d in out.manifests]
    docs += [dump_yaml(s) for s in out.secrets]
    return "---\n".join(d if d.endswith("\n") else d + "\n" for d in docs)


def run_exec(config_path: str) -> str:
    """Legacy exec plugin: the generator file at ``config_path``; paths resolve in
    ``KUSTOMIZE_PLUGIN_CONFIG_ROOT`` (kustomize sets it) or else next to the file."""
    from ..fileio import read_input

    data = read_input(config_path)
    doc = _load_one(data, config_path)
    root_env = os.environ.get("KUSTOMIZE_PLUGIN_CONFIG_ROOT")
    root = Path(root_env) if root_env else Path(os.path.abspath(config_path)).parent
    gen = parse_generator(doc)
    return exec_output(generate(gen, Context(root)))


def _load_one(data: bytes, where: str) -> TreeValue:
    from ruamel.yaml.error import YAMLError

    try:
        docs = [d for d in _yaml().load_all(data.decode("utf-8")) if d is not None]
    except (YAMLError, UnicodeDecodeError) as exc:
        raise _fail(f"{where}: not valid YAML ({type(exc).__name__})") from None
    if len(docs) != 1:
        raise _fail(f"{where}: expected one generator manifest, found {len(docs)} documents")
    return docs[0]


# --- KRM function ----------------------------------------------------------------------------


def run_krm(data: bytes, cwd: Path | None = None) -> str:
    """A ``ResourceList`` in, one out. Each generator item becomes what it
    generates; other items pass through, except the encrypted files the
    generators read (kpt hands the package's files over as items: without this
    a Secret would come out twice, once still encrypted). With no generator
    among the items, a generator ``functionConfig`` (``kpt fn eval
    --fn-config``) generates instead. The root is the working directory (where
    kustomize runs exec functions); an item's path annotation places it below."""
    from ruamel.yaml.error import YAMLError

    root = Path(cwd or os.getcwd())
    try:
        rl = _yaml().load(data.decode("utf-8"))
    except (YAMLError, UnicodeDecodeError) as exc:
        raise _fail(f"stdin: not a valid ResourceList ({type(exc).__name__})") from None
    if not isinstance(rl, Mapping) or rl.get("kind") != "ResourceList":
        raise _fail("stdin: expected a ResourceList (kind: ResourceList)")
    items = rl.get("items") or []
    if not isinstance(items, list):
        raise _fail("stdin: ResourceList items must be a list")
    ctx = Context(root)
    outputs: list[tuple[int, list[TreeValue]]] = []
    for index, item in enumerate(items):
        if is_generator(item):
            outputs.append((index, _krm_generate(item, ctx, root)))
    if not outputs:
        config = rl.get("functionConfig")
        if not isinstance(config, Mapping) or not is_generator(config):
            raise _fail("nothing to generate: no ksops generator among the items or as functionConfig")
        outputs.append((len(items), _krm_generate(config, ctx, root)))
    produced = dict(outputs)
    result: list[TreeValue] = []
    for index, item in enumerate(items):
        if index in produced:
            result.extend(produced[index])
        elif not _consumed(item, ctx, root):
            result.append(item)
    result.extend(produced.get(len(items), []))
    out = {"apiVersion": rl.get("apiVersion", "config.kubernetes.io/v1"), "kind": "ResourceList", "items": result}
    import io

    buffer = io.StringIO()
    _yaml().dump(out, buffer)
    return buffer.getvalue()


def _item_dir(item: Mapping[str, TreeValue], root: Path) -> Path:
    meta = item.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if isinstance(annotations, Mapping):
        for key in _PATH_ANNOTATIONS:
            value = annotations.get(key)
            if isinstance(value, str) and value:
                return (root / value).parent
    return root


def _krm_generate(item: Mapping[str, TreeValue], ctx: Context, root: Path) -> list[TreeValue]:
    ctx.base = Path(os.path.abspath(_item_dir(item, root)))
    out = generate(parse_generator(item), ctx)
    produced: list[TreeValue] = []
    for done in out.manifests:
        produced.extend(d for d in _yaml().load_all(done.plaintext.decode("utf-8", "surrogateescape")) if d is not None)
    produced.extend(_literal_strings(s) for s in out.secrets)
    return produced


def _consumed(item: TreeValue, ctx: Context, root: Path) -> bool:
    if not isinstance(item, Mapping):
        return False
    meta = item.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not isinstance(annotations, Mapping):
        return False
    for key in _PATH_ANNOTATIONS:
        value = annotations.get(key)
        if isinstance(value, str) and value:
            return os.path.realpath(root / value) in ctx.consumed
    return False


# --- installation --------------------------------------------------------------------------


def default_plugin_dir() -> Path:
    """``$XDG_CONFIG_HOME/kustomize/plugin/viaduct.ai/v1/ksops`` (``~/.config`` without it)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / PLUGIN_SUBDIR


def launcher_text(python: str | None = None) -> str:
    """A ``ksops`` executable that runs this sopsflow: the interpreter running
    now, with this package first on its path (the launcher keeps working
    whatever the caller's PYTHONPATH and working directory)."""
    import shlex

    import sopsflow

    python = python or sys.executable
    package_parent = str(Path(sopsflow.__file__).resolve().parent.parent)
    return (
        "#!/bin/sh\n"
        "# ksops-compatible kustomize plugin: runs `sopsflow ksops` (written by `sopsflow ksops install`)\n"
        f"PYTHONPATH={shlex.quote(package_parent)}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        "export PYTHONPATH\n"
        f'exec {shlex.quote(python)} -m sopsflow ksops "$@"\n'
    )


def install_launcher(directory: Path) -> Path:
    """Write ``directory/ksops`` (mode 0755), creating ``directory``."""
    from ..fileio import atomic_write

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / PLUGIN_NAME
    atomic_write(target, launcher_text().encode("utf-8"), mode=0o755)
    return target
