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


def is_civil_time(year: int, month: int, day: int, hour: int, minute: int, second: int) -> bool:
    """Whether ``datetime.datetime(...)`` would accept these fields (without
    importing datetime, ~1.5 ms at every start)."""
    if not (1 <= year <= 9999 and 1 <= month <= 12 and 0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59):
        return False
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 1 <= day <= (29 if leap else 28)
    return 1 <= day <= (30 if month in (4, 6, 9, 11) else 31)


def now_rfc3339() -> str:
    """UTC now with whole seconds, as sops writes created_at and lastmodified."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
