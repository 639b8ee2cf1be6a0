"""Argo CD Config Management Plugin: a directory of manifests, SOPS files decrypted.

Argo CD runs the plugin's ``generate`` command in the Application's source
directory and applies whatever Kubernetes objects it prints. :func:`generate`
walks that directory (recursively, in path order) and prints one YAML stream:

* a plain manifest passes through byte for byte, one document at a time;
* a SOPS-encrypted manifest (``.yaml``, ``.yml``, ``.json``) is decrypted, and
  its documents come out exactly as ``sops decrypt`` prints them;
* a document that is not a Kubernetes object (no ``apiVersion`` and ``kind``:
  Helm values, a docker config, ...) is left out, encrypted or not; a SOPS file
  is only decrypted when its (plaintext) ``apiVersion`` and ``kind`` say it is one;
* kustomization files, ksops generators, objects marked
  ``config.kubernetes.io/local-config: "true"``, hidden files and directories,
  and subdirectories holding their own kustomization (a separate kustomize
  application; build those with kustomize and the ksops generator) are left out.

What was left out is named through ``note`` (stderr under Argo CD, where only
paths appear, never values). A file that cannot be read, parsed or decrypted
fails the whole run: Argo CD must never apply a partial set or a ciphertext.
No path may leave the application directory, symlinks included.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from .. import errors
from ..errors import SopsError

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from ..tree import TreeValue

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
LOCAL_CONFIG = "config.kubernetes.io/local-config"
#: a line that starts a new YAML document (``---`` alone or followed by a space or comment)
_DOC_START = re.compile(r"^---(?:[ \t].*)?$")
_DOC_END = re.compile(r"^\.\.\.[ \t]*$")


def _fail(message: str, code: int = errors.GENERIC) -> SopsError:
    return SopsError(code, f"argocd: {message}")


def _has_kustomization(directory: Path) -> bool:
    return any((directory / name).is_file() for name in KUSTOMIZATION_FILES)


def manifest_files(app_dir: Path, note: Callable[[str], None] | None = None) -> Iterator[Path]:
    """The manifest files below ``app_dir``, sorted by path, with the exclusions above."""
    root = Path(os.path.abspath(app_dir))
    if not root.is_dir():
        raise _fail(f"{app_dir} is not a directory", errors.COULD_NOT_READ_INPUT_FILE)
    real_root = os.path.realpath(root)
    say = note or (lambda _text: None)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            sub = here / name
            rel = sub.relative_to(root).as_posix()
            if name.startswith("."):
                continue
            if sub.is_symlink():
                say(f"skipped {rel}/: a symlinked directory")
                continue
            if _has_kustomization(sub):
                say(f"skipped {rel}/: a separate kustomization")
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if name.startswith(".") or not name.endswith(MANIFEST_SUFFIXES):
                continue
            if name in KUSTOMIZATION_FILES:
                say(f"skipped {rel}: a kustomization file")
                continue
            real = os.path.realpath(path)
            if os.path.commonpath([real, real_root]) != real_root:
                raise _fail(f"{rel} links outside the application directory")
            yield path


def _split_documents(text: str) -> list[str]:
    """YAML ``text`` cut into its documents, each kept byte for byte (markers dropped)."""
    docs: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        if _DOC_START.match(bare):
            docs.append([])
            continue
        if _DOC_END.match(bare):
            docs.append([])
            continue
        docs[-1].append(line)
    return ["".join(d) for d in docs if "".join(d).strip()]


def _parse(doc: str, where: str) -> TreeValue:
    import yaml

    try:
        # BaseLoader: every scalar a string, nothing interpreted (only the shape is looked at)
        return yaml.load(doc, Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader constructs no objects
    except yaml.YAMLError:
        raise _fail(f"{where}: not valid YAML", errors.COULD_NOT_READ_INPUT_FILE) from None


def _is_object(doc: TreeValue) -> bool:
    return isinstance(doc, Mapping) and bool(doc.get("apiVersion")) and bool(doc.get("kind"))


def _left_out(doc: Mapping[str, TreeValue]) -> str | None:
    """Why an object is not for the cluster, or None."""
    from .ksops import is_generator

    if is_generator(doc):
        return "a ksops generator"
    if doc.get("kind") == "Kustomization" and str(doc.get("apiVersion", "")).startswith("kustomize.config.k8s.io/"):
        return "a kustomization"
    meta = doc.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if isinstance(annotations, Mapping) and str(annotations.get(LOCAL_CONFIG, "")).lower() == "true":
        return "local configuration"
    return None


class _Found:
    """One manifest file: its text, and SOPS metadata when it has some."""

    def __init__(self, path: Path, rel: str) -> None:
        from ..fileio import read_input
        from ..stores import format_for_path, store_by_name

        self.path = path
        self.rel = rel
        self.data = read_input(str(path))
        self.store = store_by_name(format_for_path(path.name))
        self.branches: list[TreeValue] = []
        self.encrypted = False
        try:
            self.text = self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(f"{rel}: not UTF-8 text", errors.COULD_NOT_READ_INPUT_FILE) from None
        if b"sops" in self.data:
            try:
                branches, meta = self.store.load_encrypted(self.data)
            except SopsError as exc:
                raise _fail(f"{rel}: {exc.message}", exc.code) from None
            if meta is not None:
                self.encrypted = True
                self.branches = branches

    def encrypted_object(self) -> bool:
        """A SOPS file whose first document reads as a Kubernetes object before decryption."""
        if not self.branches:
            return False
        first = self.branches[0]
        return bool(first.has("apiVersion") and first.has("kind"))


def discover(app_dir: Path) -> list[str]:
    """The SOPS-encrypted Kubernetes manifests below ``app_dir`` (relative paths)."""
    root = Path(os.path.abspath(app_dir))
    found = []
    for path in manifest_files(root):
        item = _Found(path, path.relative_to(root).as_posix())
        if item.encrypted and item.encrypted_object():
            found.append(item.rel)
    return found


def generate(app_dir: Path, note: Callable[[str], None] | None = None) -> str:
    """The YAML stream the plugin prints for ``app_dir``."""
    root = Path(os.path.abspath(app_dir))
    say = note or (lambda _text: None)
    context = None
    out: list[str] = []
    for path in manifest_files(root, say):
        item = _Found(path, path.relative_to(root).as_posix())
        if item.encrypted:
            if not item.encrypted_object():
                say(f"skipped {item.rel}: encrypted, but not a Kubernetes object")
                continue
            if context is None:
                from .ksops import Context

                context = Context(root, prefix="argocd")
            from .ksops import manifest_text

            text = manifest_text(context.decrypt(item.rel, "decrypting"))
        elif item.store.name == "json" and "\t" in item.text:
            import json

            try:
                text = json.dumps(json.loads(item.text), indent=2, ensure_ascii=False) + "\n"
            except ValueError:
                raise _fail(f"{item.rel}: not valid JSON", errors.COULD_NOT_READ_INPUT_FILE) from None
        else:
            text = item.text
        if item.store.name == "json":
            docs = [text] if text.strip() else []
        else:
            docs = _split_documents(text)
        for doc in docs:
            parsed = _parse(doc, item.rel)
            if not _is_object(parsed):
                say(f"skipped a document of {item.rel}: not a Kubernetes object")
                continue
            reason = _left_out(parsed)
            if reason:
                say(f"skipped a document of {item.rel}: {reason}")
                continue
            out.append(doc if doc.endswith("\n") else doc + "\n")
    return "---\n".join(out)
