"""Paths to the test vectors and their manifest.

* ``GENERATED``: the project's own sops vectors, committed under
  ``tests/data/vectors`` and made by ``scripts/generate_vectors.py`` (see the
  README there). Every test can rely on them.
* ``UPSTREAM`` and ``FLUX_AGE_PQ``: external oracle files that are not ours to
  commit (sops' upstream fixtures, the Flux post-quantum age vector). They live
  in an optional directory next to the clone, ``SOPSFLOW_SHARED`` if set. A test
  that reads them is marked with ``needs_external`` (or takes its parameters
  from ``external``/``external_params``), so that it is skipped, with the reason,
  only when that directory is absent.
* ``ESO_SCHEMAS``: the External Secrets Operator CRDs in the same directory,
  against which ``publish --emit-external-secrets`` output is validated
  (``needs_eso_schemas``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

GENERATED = Path(__file__).resolve().parent / "data" / "vectors"
SHARED = Path(os.environ.get("SOPSFLOW_SHARED", Path(__file__).resolve().parents[2] / "shared"))
UPSTREAM = SHARED / "vectors" / "sops-upstream"
FLUX_AGE_PQ = SHARED / "vectors" / "external" / "flux-age-pq"
#: The External Secrets Operator CRDs (Apache-2.0), to validate generated manifests.
ESO_SCHEMAS = SHARED / "schemas" / "external-secrets"

AGE_KEY_FILE = GENERATED / "age-key.txt"
#: 1-based line of the AGE-SECRET-KEY-1... identity in AGE_KEY_FILE (after its comment lines)
AGE_IDENTITY_LINE = next(
    i for i, line in enumerate(AGE_KEY_FILE.read_text().splitlines(), 1) if line.startswith("AGE-SECRET-KEY-")
)
PGP_SECRET_KEY_FILE = GENERATED / "pgp-secret-key.asc"


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    return json.loads((GENERATED / "manifest.json").read_text())


def vectors(fmt: str | None = None) -> list[dict[str, Any]]:
    return [v for v in manifest()["vectors"] if fmt is None or v["format"] == fmt]


AGE_RECIPIENT: str = manifest()["test_only_keys"]["age_recipient"]
PGP_FP: str = manifest()["test_only_keys"]["pgp_fingerprint"]

# --------------------------------------------------------------------------
# external oracle files

HAVE_EXTERNAL = UPSTREAM.is_dir()
EXTERNAL_REASON = (
    f"external oracle files (sops upstream fixtures, Flux post-quantum vector) not found at {SHARED}; "
    "set SOPSFLOW_SHARED to run these tests"
)
#: Mark a test (or a parameter) that reads UPSTREAM or FLUX_AGE_PQ.
needs_external = pytest.mark.skipif(not HAVE_EXTERNAL, reason=EXTERNAL_REASON)
#: Mark a test that validates manifests against ESO_SCHEMAS.
needs_eso_schemas = pytest.mark.skipif(
    not ESO_SCHEMAS.is_dir(),
    reason=f"External Secrets CRD schemas not found at {ESO_SCHEMAS}; set SOPSFLOW_SHARED to run this test",
)


def external(*values: object, id: str | None = None) -> Any:  # noqa: A002 - pytest.param's name
    """One parametrize entry that reads external files: skipped (with the reason) when they are absent."""
    return pytest.param(*values, marks=needs_external, id=id)


def external_params(build: Callable[[], Iterable[Any]], width: int = 1) -> list[Any]:
    """Parametrize entries computed from the external files (e.g. a glob), built only when they exist.

    Without them there is a single skipped placeholder entry, so the test is reported as skipped with
    the stated reason instead of pytest's "empty parameter set"; ``width`` is the number of arguments.
    """
    if HAVE_EXTERNAL:
        return [external(*(v if width > 1 else (v,))) for v in build()]
    return [external(*([None] * width), id="external-files-absent")]
