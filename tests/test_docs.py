"""The user documents: the README's size budget, links that resolve, and nothing that
points outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: The README is a user's page; depth goes to docs/.
README_BUDGET = 10 * 1024
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_stays_within_its_budget() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_BUDGET, f"README.md is {size} bytes; move depth into docs/"


@pytest.mark.parametrize("doc", DOCS, ids=[d.relative_to(ROOT).as_posix() for d in DOCS])
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in _LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{doc.name}: links to missing files {broken}"


def _repository_texts() -> list[Path]:
    return [*DOCS, *sorted((ROOT / "sopsflow").rglob("*.py"))]


@pytest.mark.parametrize("pattern", [r"\.\./shared\b", "§", r"\(issue \d+"])
def test_nothing_points_outside_the_repository(pattern: str) -> None:
    hits = [p.relative_to(ROOT).as_posix() for p in _repository_texts()
            if re.search(pattern, p.read_text(encoding="utf-8"))]
    assert not hits, f"{pattern!r} in {hits}"
