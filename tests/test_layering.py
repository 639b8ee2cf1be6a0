"""The package's layers, read from the source with ``ast`` (nothing is imported).

* The library (everything outside ``sopsflow/commands/`` and ``sopsflow/main.py``)
  never imports the command line, not even lazily inside a function.
* The format core stays a leaf: ``stores/`` and ``keys/`` import, of sopsflow,
  only their own package and the small helpers listed here; ``tree``, ``errors``,
  ``lazyre`` and ``shamir`` import almost nothing. A new dependency there is a
  decision, so it has to be made here, on purpose.
* Types at the boundaries: a module that defines or takes a domain object
  (Store, Config, Metadata, CreationRule, Repo...) has no ``Any`` in its
  function signatures, but for the few allowances listed with their reason;
  every ``type: ignore`` names its error code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "sopsflow"

#: What each leaf part may import of sopsflow besides itself (a package: its own modules).
ALLOWED = {
    "sopsflow.stores": {"sopsflow.errors", "sopsflow.lazyre", "sopsflow.records", "sopsflow.tree"},
    "sopsflow.keys": {"sopsflow.errors", "sopsflow.lazyre", "sopsflow.records", "sopsflow.shamir"},
    "sopsflow.tree": {"sopsflow.errors", "sopsflow.lazyre"},
    "sopsflow.errors": set(),
    "sopsflow.lazyre": set(),
    "sopsflow.records": set(),
    "sopsflow.shamir": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path, module: str) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imported_modules(path: Path, text: str | None = None) -> set[str]:
    """Every sopsflow module ``path`` imports anywhere in its body (top level,
    in functions, under TYPE_CHECKING), relative imports resolved, plus
    ``importlib.import_module`` calls with a literal name."""
    module = _module_name(path)
    package = _package_of(path, module)
    found: set[str] = set()
    source = path.read_text(encoding="utf-8") if text is None else text
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import x`` / ``from .pkg import mod`` may name modules.
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
            elif node.args and isinstance(node.args[0], ast.JoinedStr):
                found.add("".join(v.value for v in node.args[0].values
                                  if isinstance(v, ast.Constant) and isinstance(v.value, str)))
    return {name for name in found if name == "sopsflow" or name.startswith("sopsflow.")}


def _library_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if "commands" not in p.relative_to(PACKAGE).parts[:1] and p != PACKAGE / "main.py")


def _is_commands(name: str) -> bool:
    return name == "sopsflow.commands" or name.startswith("sopsflow.commands.")


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_the_library_never_imports_the_command_line(path: Path) -> None:
    assert not {n for n in imported_modules(path) if _is_commands(n)}
    # Nor does it take or fake parsed flags: its functions take typed arguments.
    assert not _imports_argparse(path)


def _imports_argparse(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        (isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.module == "argparse" and not node.level)
        for node in ast.walk(tree)
    )


def _leaf_part(module: str) -> str | None:
    for part in ALLOWED:
        if module == part or module.startswith(part + "."):
            return part
    return None


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(PACKAGE.rglob("*.py")) if _leaf_part(_module_name(p))],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_the_format_core_imports_only_its_helpers(path: Path) -> None:
    part = _leaf_part(_module_name(path))
    assert part is not None
    allowed = ALLOWED[part] | {part}
    outside = {
        name for name in imported_modules(path)
        if name != "sopsflow" and not any(name == a or name.startswith(a + ".") for a in allowed)
    }
    # ``from .. import errors`` names the package itself, then the module.
    assert outside == set()


def test_the_checker_sees_every_kind_of_import() -> None:
    """The walk above must not miss a lazy, relative or dynamic import
    (the sources are checked as if they stood at the paths given)."""
    source = (
        "import importlib\n"
        "def f():\n"
        "    from .commands import common\n"
        "    from .commands.decrypt import run\n"
        "    import sopsflow.commands.set_unset\n"
        "    importlib.import_module('sopsflow.commands.edit')\n"
        "    return common, run\n"
    )
    found = imported_modules(PACKAGE / "probe.py", source)
    assert {"sopsflow.commands", "sopsflow.commands.common", "sopsflow.commands.decrypt",
            "sopsflow.commands.set_unset", "sopsflow.commands.edit"} <= found
    assert "sopsflow.commands.x" in imported_modules(PACKAGE / "stores" / "probe.py", "from ..commands import x\n")
    assert "sopsflow.config" in imported_modules(PACKAGE / "keys" / "__init__.py", "from ..config import y\n")


# --- types at the boundaries -------------------------------------------------------

#: The domain objects: a module that defines one of these, or takes or returns one in a
#: function signature, states its types (no ``Any`` in its signatures).
DOMAIN_TYPES = {"Store", "Config", "Metadata", "CreationRule", "Repo", "IndexRepo", "GitFile", "Snapshot",
                "ConfigRef"}

#: Modules held to the same rule although no domain name appears in their signatures:
#: the stores (each one is a Store), the `.sops.yaml` decoder and its editor, git access.
TYPED_MODULES = {
    "sopsflow.stores.binary_store", "sopsflow.stores.dotenv_store", "sopsflow.stores.ini_store",
    "sopsflow.stores.json_store", "sopsflow.stores.flatten", "sopsflow.stores.yaml.store",
    "sopsflow.config.decoder", "sopsflow.config.explain", "sopsflow.gitops.recipients",
    "sopsflow.git.repo", "sopsflow.gitops.exposure", "sopsflow.cipher", "sopsflow.api",
    "sopsflow.operations",
}

#: (module, function) -> why ``Any`` is the right type there. Keep it short.
ANY_ALLOWED = {
    # Clients of third-party SDKs that ship no type information (boto3, hvac): their
    # objects are Any to mypy whatever we write.
    ("sopsflow.gitops.publish", "client"): "the hvac client (hvac is untyped)",
    ("sopsflow.gitops.publish_aws", "client"): "a boto3 client (boto3 is untyped)",
}


def _annotation_names(node: ast.expr | None) -> set[str]:
    """Names used in an annotation, string annotations (forward references) included."""
    found: set[str] = set()
    if node is None:
        return found
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            try:
                found |= _annotation_names(ast.parse(sub.value, mode="eval").body)
            except SyntaxError:
                pass  # a docstring-like constant, not an annotation
    return found


def _signatures(tree: ast.AST) -> list[tuple[str, set[str]]]:
    """(function name, names in its parameter and return annotations) for every function."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs,
                      *(a for a in (args.vararg, args.kwarg) if a is not None)]
            names = _annotation_names(node.returns)
            for param in params:
                names |= _annotation_names(param.annotation)
            out.append((node.name, names))
    return out


def _is_typed_module(module: str, tree: ast.AST) -> bool:
    if module in TYPED_MODULES:
        return True
    if any(isinstance(n, ast.ClassDef) and n.name in DOMAIN_TYPES for n in ast.walk(tree)):
        return True
    return any(names & DOMAIN_TYPES for _name, names in _signatures(tree))


def _any_in_signatures(path: Path, source: str | None = None) -> list[str]:
    module = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source)
    if not _is_typed_module(module, tree):
        return []
    return [f"{module}.{name}" for name, names in _signatures(tree)
            if "Any" in names and (module, name) not in ANY_ALLOWED]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_domain_modules_have_no_any_in_signatures(path: Path) -> None:
    assert _any_in_signatures(path) == []


def test_the_any_check_sees_what_it_should() -> None:
    probe = PACKAGE / "gitops" / "probe.py"
    source = (
        "from typing import Any\n"
        "def takes(config: Config, x: 'dict[str, Any]') -> None: ...\n"
        "def gives() -> typing.Any: ...\n"
        "def fine(x: int) -> str: ...\n"
    )
    assert _any_in_signatures(probe, source) == ["sopsflow.gitops.probe.takes", "sopsflow.gitops.probe.gives"]
    # a module that neither defines nor takes a domain object is not checked
    assert _any_in_signatures(probe, "def f(x: Any) -> Any: ...\n") == []
    assert all((PACKAGE / f"{m.replace('.', '/').removeprefix('sopsflow/')}.py").exists() for m in TYPED_MODULES)
    # every allowance names a function that still uses Any
    for module, name in ANY_ALLOWED:
        path = PACKAGE / f"{module.replace('.', '/').removeprefix('sopsflow/')}.py"
        sigs = _signatures(ast.parse(path.read_text(encoding="utf-8")))
        assert any(n == name and "Any" in names for n, names in sigs), (module, name)


def test_every_type_ignore_names_its_error_code() -> None:
    bare = re.compile(r"#\s*type:\s*ignore(?!\[)")
    found = [f"{p.relative_to(REPO)}:{i}" for p in sorted(PACKAGE.rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if bare.search(line)]
    assert found == []
