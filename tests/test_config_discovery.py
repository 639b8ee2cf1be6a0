"""The search for `.sops.yaml` stops at the root: past it every candidate is
the same file, so asking again cannot change the answer (sops asks all 100)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sopsflow.config import discovery
from sopsflow.config.discovery import find_config


def _counting_stat(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []
    real = os.stat

    def stat(path: str | os.PathLike[str], *args: object, **kwargs: object) -> os.stat_result:
        asked.append(os.fspath(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(discovery.os, "stat", stat)
    return asked


@pytest.mark.parametrize("relative", [True, False])
def test_no_config_is_searched_up_to_the_root_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   relative: bool) -> None:
    start = tmp_path / "a" / "b"
    start.mkdir(parents=True)
    if any((p / ".sops.yaml").exists() for p in start.parents):
        pytest.skip("a .sops.yaml above the temporary directory decides this search")
    monkeypatch.chdir(start)
    asked = _counting_stat(monkeypatch)

    assert find_config("." if relative else str(start)) is None

    levels = len(start.resolve().parts)  # the directories from start up to and including "/"
    assert len(asked) <= 3 * (levels + 1), asked
    assert any(os.path.normpath(os.path.join(start, a)) == "/.sops.yaml" for a in asked), asked


def test_a_config_at_the_root_of_the_search_is_still_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".sops.yaml").write_text("creation_rules: []\n")
    start = tmp_path / "x" / "y" / "z"
    start.mkdir(parents=True)
    monkeypatch.chdir(start)
    assert find_config(".") == tmp_path / ".sops.yaml"
    assert find_config(str(start)) == tmp_path / ".sops.yaml"
