"""sopsflow: SOPS 3.x-compatible secrets for GitOps repositories.

The public Python API (heavy modules are imported on first use)::

    import sopsflow
    data = sopsflow.decrypt_file("secrets/prod.yaml")       # -> dict
    data = sopsflow.decrypt(raw_bytes, "json")              # -> dict
    sopsflow.encrypt_file("secrets/new.yaml")               # rules from .sops.yaml, in place
"""

from __future__ import annotations

from .api import decrypt, decrypt_file, encrypt, encrypt_file
from .errors import SopsError

__version__ = "0.1.0"
__all__ = ["SopsError", "decrypt", "decrypt_file", "encrypt", "encrypt_file", "__version__"]
