"""Master keys sopsflow keeps but cannot use (gcp_kms, azure_kv, newer types).

Their metadata entries are kept verbatim, field order included, so a file
round-trips unchanged; wrapping or unwrapping with them fails with a
KeyFailure that says so, and another key of the file (or group) can step in.
"""

from __future__ import annotations

from ..lazyre import compile_lazy
from .base import KeyFailure

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

_KNOWN = frozenset({"gcp_kms", "azure_kv", "hckms"})

# sops' azkv.NewMasterKeyFromURL: an https vault, one key name, an optional
# version (empty or absent: sops asks Azure for the latest one).
_AZURE_URL = compile_lazy(r"(https://[^/]+)/keys/([^/]+)(/[^/]*)?\Z")


def parse_azure_url(url: str) -> dict[str, str]:
    """The ``azure_kv`` metadata fields of a key URL from ``--azure-kv``,
    ``SOPS_AZURE_KEYVAULT_URLS`` or a rule's ``azure_keyvault``; ValueError in
    sops' wording. sopsflow cannot ask Azure for the latest version, so a URL
    without one keeps an empty version."""
    url = url.strip()
    m = _AZURE_URL.match(url)
    if not m:
        quoted = '"' + url.replace("\\", "\\\\").replace('"', '\\"') + '"'
        raise ValueError(f"could not parse {quoted} into a valid Azure Key Vault MasterKey")
    return {"vault_url": m.group(1), "name": m.group(2), "version": (m.group(3) or "/")[1:]}


class OpaqueKey:
    """A metadata entry of a key type sopsflow does not implement."""

    def __init__(self, type_name: str, entry: dict[str, Any]) -> None:
        self.type_name = type_name
        self.entry: dict[str, Any] = dict(entry)
        # What the stored ``enc`` is known to wrap (set by whoever unwrapped the
        # file's data key through another key). Lets a re-wrap of that same key
        # (updatekeys without rotation) keep this entry instead of failing.
        self.wraps: bytes | None = None

    def __repr__(self) -> str:
        return f"OpaqueKey({self.type_name!r}, {self.identity()!r})"

    @property
    def enc(self) -> str:
        value = self.entry.get("enc")
        return value if isinstance(value, str) else ""

    @enc.setter
    def enc(self, value: str) -> None:
        self.entry["enc"] = value

    def encrypt(self, data_key: bytes) -> None:
        import hmac

        # Known types keep their wrap in "enc"; a type of a later sops may name it
        # otherwise, so its entry is trusted as a whole.
        holds_wrap = bool(self.enc) or self.type_name not in _KNOWN
        if self.wraps is not None and holds_wrap and hmac.compare_digest(self.wraps, data_key):
            return  # the entry already wraps exactly this key: keep it verbatim
        raise KeyFailure(f"sopsflow cannot use {self.type_name} keys; wrap the data key for this key with sops itself")

    def decrypt(self) -> bytes:
        raise KeyFailure(
            f"sopsflow cannot use {self.type_name} keys; decrypt with another key of this file or with sops itself"
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.entry)

    def identity(self) -> str:
        """sops' ToString for the known types; the non-secret fields otherwise."""
        field = self.entry.get
        if self.type_name == "gcp_kms":
            return _text(field("resource_id"))
        if self.type_name == "azure_kv":
            return f"{_text(field('vault_url'))}/keys/{_text(field('name'))}/{_text(field('version'))}"
        if self.type_name == "hckms":
            return _text(field("key_id"))
        parts = [_text(v) for k, v in self.entry.items() if k not in ("enc", "created_at")]
        return "|".join(parts)


def _text(value: Any) -> str:
    return "" if value is None else str(value)
