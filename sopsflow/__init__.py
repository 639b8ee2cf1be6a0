"""sopsflow: SOPS 3.x-compatible secrets for GitOps repositories.

The public Python API (heavy modules are imported on first use)::

    import sopsflow
    data = sopsflow.decrypt_file("secrets/prod.yaml")       # -> dict
    data = sopsflow.decrypt(raw_bytes, "json")              # -> dict
    sopsflow.encrypt_file("secrets/new.yaml")               # rules from .sops.yaml, in place
"""

from __future__ import annotations

from .errors import SopsError

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.3.0"
__all__ = ["SopsError", "decrypt", "decrypt_file", "encrypt", "encrypt_file", "__version__"]

if TYPE_CHECKING:
    from .api import decrypt, decrypt_file, encrypt, encrypt_file


def __getattr__(name: str) -> Any:
    # The CLI imports this package on every start; the API module (and what it
    # pulls in) is loaded only when a program actually uses it.
    if name in ("decrypt", "decrypt_file", "encrypt", "encrypt_file"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'sopsflow' has no attribute {name!r}")
