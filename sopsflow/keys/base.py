"""The one small interface every key source implements.

A master key wraps (encrypts) the file's data key - or, with several key
groups, one Shamir share of it - and unwraps it again. It also knows the
metadata entry it is stored as. Key modules know nothing about file formats.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # structural types matter to the type checker only


class MasterKey(Protocol):
    #: metadata list name: "age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"
    type_name: str
    #: the wrapped data key as stored in metadata ("" until encrypt() ran)
    enc: str

    def encrypt(self, data_key: bytes) -> None:
        """Wrap ``data_key`` and store the result in ``self.enc``."""

    def decrypt(self) -> bytes:
        """Unwrap ``self.enc``. Raises :class:`KeyFailure` with a reason on failure."""

    def to_dict(self) -> dict[str, Any]:
        """The metadata entry, keys in the order sops 3.11 writes them."""

    def identity(self) -> str:
        """The string form used to compare keys between a file and its rule
        (sops' ToString: age recipient, PGP fingerprint, ``arn[+role][|ctx][|profile]``...)."""


class KeyFailure(Exception):
    """One master key could not unwrap; the message says why, without secrets."""


def now_rfc3339() -> str:
    """UTC now with whole seconds, as sops writes created_at and lastmodified."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
