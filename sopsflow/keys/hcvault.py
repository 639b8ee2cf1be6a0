"""HashiCorp Vault / OpenBao transit master keys (hvac, imported lazily).

Wrap: POST ``<engine>/encrypt/<key>`` with ``plaintext = base64(raw key)``;
``enc`` is the returned ``vault:v1:...`` string. Unwrap posts it to
``<engine>/decrypt/<key>`` and base64-decodes the answer (sops' `hcvault/keysource.go`).
The server address is the key's own ``vault_address`` (as in sops, where
the URI always wins over ``VAULT_ADDR``); the token is ``VAULT_TOKEN``, else
``~/.vault-token``.
"""

from __future__ import annotations

import base64
import binascii
import os
import posixpath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import errors
from ..errors import SopsError
from ..lazyre import compile_lazy
from .base import KeyFailure, now_rfc3339

_PREFIXED_PATH = compile_lazy(r"/[^/]+/v\d+/[^/]+/[^/]+/[^/]+")
_TRANSIT_PATH = compile_lazy(r"/v\d+/[^/]+/[^/]+/[^/]+")
_EXAMPLE = "https://vault.example.com:8200/v1/transit/keys/keyName"


class VaultKey:
    """One transit key of a Vault (or OpenBao) server."""

    type_name = "hc_vault"

    def __init__(
        self,
        vault_address: str,
        engine_path: str,
        key_name: str,
        enc: str = "",
        created_at: str = "",
    ) -> None:
        self.vault_address = vault_address
        self.engine_path = engine_path
        self.key_name = key_name
        self.enc = enc
        self.created_at = created_at

    def __repr__(self) -> str:
        return f"VaultKey({self.identity()!r})"

    @classmethod
    def from_uri(cls, uri: str) -> VaultKey:
        """``https://host:8200/v1/<engine path>/keys/<name>``; SopsError (exit 1) otherwise."""
        parts = urlsplit(uri)
        if not parts.scheme:
            raise SopsError(
                errors.GENERIC,
                f"missing scheme in Vault URL (should be like this: {_EXAMPLE}), got: {uri}",
            )
        request_uri = parts.path or "/"
        if parts.query:
            request_uri += "?" + parts.query
        engine_path, key_name = _engine_and_key(request_uri)
        address = urlunsplit((parts.scheme, parts.netloc, "", parts.query, parts.fragment))
        return cls(address, engine_path, key_name)

    def encrypt(self, data_key: bytes) -> None:
        path = self._path("encrypt")
        payload = {"plaintext": base64.b64encode(data_key).decode("ascii")}
        data = self._post(path, payload, "failed to encrypt sops data key to Vault transit backend")
        ciphertext = data.get("ciphertext")
        if not isinstance(ciphertext, str):
            raise KeyFailure(f"failed to encrypt sops data key to Vault transit backend '{path}': no encrypted data")
        self.enc = ciphertext
        self.created_at = now_rfc3339()

    def decrypt(self) -> bytes:
        path = self._path("decrypt")
        prefix = "failed to decrypt sops data key from Vault transit backend"
        data = self._post(path, {"ciphertext": self.enc}, prefix)
        plaintext = data.get("plaintext")
        if not isinstance(plaintext, str):
            raise KeyFailure(f"{prefix} '{path}': no decrypted data")
        try:
            return base64.b64decode(plaintext, validate=True)
        except (binascii.Error, ValueError):
            raise KeyFailure(f"{prefix} '{path}': cannot decode base64 plaintext into data key bytes") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "vault_address": self.vault_address,
            "engine_path": self.engine_path,
            "key_name": self.key_name,
            "created_at": self.created_at,
            "enc": self.enc,
        }

    def identity(self) -> str:
        return f"{self.vault_address}/v1/{self.engine_path}/keys/{self.key_name}"

    def _path(self, action: str) -> str:
        # Go's path.Join: empty parts dropped, result cleaned.
        parts = [p for p in (self.engine_path, action, self.key_name) if p]
        return posixpath.normpath("/".join(parts))

    def _post(self, path: str, payload: dict[str, str], prefix: str) -> dict[str, Any]:
        check_allowlist(self.vault_address)
        client = _client(self.vault_address)
        try:
            response = client.adapter.post(f"/v1/{path}", json=payload)
        except Exception as exc:
            raise KeyFailure(f"{prefix} '{path}': {_reason(exc)}") from None
        data = response.get("data") if isinstance(response, dict) else None
        if not isinstance(data, dict):
            raise KeyFailure(f"{prefix} '{path}': transit backend is empty")
        return data


#: sops 3.13: which Vault servers a file's keys may send the token to.
SOPS_HC_VAULT_ALLOWLIST = "SOPS_HC_VAULT_ALLOWLIST"


def allowlist() -> list[str] | None:
    """The URL prefixes of ``SOPS_HC_VAULT_ALLOWLIST`` (each ending in "/");
    None when every server is allowed (unset, empty or ``all``), [] for
    ``none``. KeyFailure for an empty entry, as sops words it."""
    text = os.environ.get(SOPS_HC_VAULT_ALLOWLIST, "") or "all"
    if text == "all":
        return None
    if text == "none":
        return []
    prefixes = []
    for index, item in enumerate(text.split(","), start=1):
        item = item.strip(" ")
        if not item:
            raise KeyFailure(f"{SOPS_HC_VAULT_ALLOWLIST}'s entry {index} is empty")
        prefixes.append(item if item.endswith("/") else item + "/")
    return prefixes


def check_allowlist(address: str) -> None:
    """KeyFailure unless ``address`` is allowed: before any request, so a file
    naming another server never receives the user's token. The comparison is
    sops': plain string prefixes, the address given a trailing "/"."""
    prefixes = allowlist()
    if prefixes is None:
        return
    with_slash = address if address.endswith("/") else address + "/"
    if not any(with_slash.startswith(prefix) for prefix in prefixes):
        raise KeyFailure(f"Allowlist does not allow {address}")


def parse_vault_uris(text: str) -> list[VaultKey]:
    """``--hc-vault-transit`` / ``SOPS_VAULT_URIS``: comma separated URIs."""
    return [VaultKey.from_uri(item) for item in text.split(",") if item]


def user_vault_token() -> str:
    """``VAULT_TOKEN``, else the trimmed content of ``~/.vault-token`` (or "")."""
    token = os.environ.get("VAULT_TOKEN", "")
    if token:
        return token
    path = os.path.join(os.path.expanduser("~"), ".vault-token")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise KeyFailure(f"cannot get Vault token: {exc.strerror or exc}") from None


def _engine_and_key(request_uri: str) -> tuple[str, str]:
    if _PREFIXED_PATH.search(request_uri):
        raise SopsError(
            errors.GENERIC,
            f"running Vault with a prefixed URL is not supported! (Format has to be like {_EXAMPLE})",
        )
    if not _TRANSIT_PATH.search(request_uri):
        raise SopsError(
            errors.GENERIC,
            f"vault path does not seem to be formatted correctly: (eg. {_EXAMPLE})",
        )
    dirs = request_uri.strip("/").split("/")
    key_name = dirs[-1]
    engine_path = posixpath.normpath("/".join(d for d in dirs[1:-2] if d)) if len(dirs) > 3 else ""
    return engine_path, key_name


def _client(address: str) -> Any:
    import hvac

    verify: bool | str = True
    if os.environ.get("VAULT_CACERT"):
        verify = os.environ["VAULT_CACERT"]
    if os.environ.get("VAULT_SKIP_VERIFY", "").lower() in ("1", "true", "yes"):
        verify = False
    return hvac.Client(
        url=address,
        token=user_vault_token() or None,
        verify=verify,
        namespace=os.environ.get("VAULT_NAMESPACE") or None,
    )


def _reason(exc: Exception) -> str:
    # hvac/requests messages hold the URL and server error text, never the token.
    return str(exc).strip() or type(exc).__name__
