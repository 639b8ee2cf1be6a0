"""The package's layers, read from the source with ``ast`` (nothing is imported).

* The library (everything outside ``sopsflow/commands/`` and ``sopsflow/main.py``)
  never imports the command line, not even lazily inside a function.
* The format core stays a leaf: ``stores/`` and ``keys/`` import, of sopsflow,
  only their own package and the small helpers listed here; ``tree``, ``errors``,
  ``lazyre`` and ``shamir`` import almost nothing. A new dependency there is a
  decision, so it has to be made here, on purpose.
"""

from __future__ import annotations

import ast
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
