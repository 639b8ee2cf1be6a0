"""Paths to the shared sops 3.11.0 test vectors and their manifest."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("SOPSFLOW_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GENERATED = SHARED / "vectors" / "generated"
UPSTREAM = SHARED / "vectors" / "sops-upstream"
AGE_KEY_FILE = GENERATED / "age-key.txt"
AGE_RECIPIENT = "age1ezgkep3rekshvsu6v989f4mzp8k35lu4jx9chm70pspych205dyseu3uy0"
PGP_FP = "757EB92CD6F83EBC896C258FF5A604E1587DA9BB"


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    return json.loads((GENERATED / "manifest.json").read_text())


def vectors(fmt: str | None = None) -> list[dict[str, Any]]:
    return [v for v in manifest()["vectors"] if fmt is None or v["format"] == fmt]

#: Files written by other sops users (each directory has its NOTICE).
EXTERNAL = SHARED / "vectors" / "external"
