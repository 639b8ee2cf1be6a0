"""AWS KMS master keys (boto3, imported only when a KMS key is used).

The region always comes from the ARN. Credentials come from the standard
AWS chain, optionally from ``aws_profile``; with ``role`` the key first
assumes that role through STS, as sops does (sops' `kms/keysource.go`). Endpoint overrides
such as ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_KMS`` are honoured by
botocore itself. Clients are cached per process so that decrypting many
files does not rebuild sessions or re-assume roles.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import socket
from typing import Any

from .. import errors
from ..errors import SopsError
from ..lazyre import compile_lazy
from .base import KeyFailure, now_rfc3339

# Go's regexp: \w is ASCII-only and "$" means end of text.
ARN_RE = compile_lazy(r"^arn:aws[\w-]*:kms:(.+):[0-9]+:(key|alias)/.+\Z", re.ASCII)
# As in sops: "@-_" is a character *range* (0x40-0x5F), so "-" itself is removed.
_STS_SESSION_STRIP = compile_lazy(r"[^a-zA-Z0-9=,.@-_]+")
_ROLE_SESSION_NAME_LIMIT = 64
# sops 3.12+ splits at any "+arn:", so roles in every partition (aws-us-gov,
# aws-cn, ...) are found; 3.11 looked for "+arn:aws:iam::" only.
_ROLE_SEPARATOR = "+arn:"


class KmsKey:
    """One AWS KMS key of a file."""

    type_name = "kms"

    def __init__(
        self,
        arn: str,
        role: str = "",
        context: dict[str, str] | None = None,
        aws_profile: str = "",
        enc: str = "",
        created_at: str = "",
    ) -> None:
        self.arn = arn
        self.role = role
        self.context: dict[str, str] = dict(context or {})
        self.aws_profile = aws_profile
        self.enc = enc
        self.created_at = created_at

    def __repr__(self) -> str:
        return f"KmsKey({self.identity()!r})"

    def encrypt(self, data_key: bytes) -> None:
        client = self._client()
        try:
            out = client.encrypt(KeyId=self.arn, Plaintext=data_key, EncryptionContext=self.context)
        except Exception as exc:
            raise KeyFailure(f"failed to encrypt sops data key with AWS KMS: {_aws_reason(exc)}") from None
        self.enc = base64.b64encode(out["CiphertextBlob"]).decode("ascii")
        self.created_at = now_rfc3339()

    def decrypt(self) -> bytes:
        try:
            blob = base64.b64decode(self.enc, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyFailure(f"error base64-decoding encrypted data key: {exc}") from None
        client = self._client()
        try:
            out = client.decrypt(KeyId=self.arn, CiphertextBlob=blob, EncryptionContext=self.context)
        except Exception as exc:
            raise KeyFailure(f"failed to decrypt sops data key with AWS KMS: {_aws_reason(exc)}") from None
        return bytes(out["Plaintext"])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"arn": self.arn}
        if self.role:
            out["role"] = self.role
        if self.context:
            out["context"] = {k: self.context[k] for k in sorted(self.context)}
        out["created_at"] = self.created_at
        out["enc"] = self.enc
        out["aws_profile"] = self.aws_profile
        return out

    def identity(self) -> str:
        """sops' ToString: ``arn[+role][|ctx][|profile]`` (ctx kept, even empty, before a profile)."""
        arn_role = f"{self.arn}+{self.role}" if self.role else self.arn
        context = context_to_string(self.context)
        if self.aws_profile:
            return f"{arn_role}|{context}|{self.aws_profile}"
        if context:
            return f"{arn_role}|{context}"
        return arn_role

    def region(self) -> str:
        match = ARN_RE.match(self.arn)
        if match is None:
            raise KeyFailure(f"no valid ARN found in '{self.arn}'")
        return match.group(1)

    def _client(self) -> Any:
        region = self.region()
        key = (self.aws_profile, region, self.role, _aws_env_snapshot())
        client = _clients.get(key)
        if client is None:
            client = _make_client(self.aws_profile, region, self.role)
            _clients[key] = client
        return client


def split_role(text: str) -> tuple[str, str]:
    """(key ARN, role ARN) of ``ARN[+ROLE_ARN]``, spaces removed. KMS ARNs hold
    no "+", so a "+arn:" separates the two, whatever the partition."""
    arn = text.replace(" ", "")
    index = arn.find(_ROLE_SEPARATOR)
    if index > 0:
        return arn[:index], arn[index + 1 :]
    return arn, ""


def parse_kms_arns(text: str, context: dict[str, str] | None = None, aws_profile: str = "") -> list[KmsKey]:
    """``--kms "ARN[+ROLE_ARN],..."``, empty items skipped."""
    keys = []
    for item in text.split(","):
        arn, role = split_role(item)
        if not arn:
            continue
        keys.append(KmsKey(arn, role=role, context=context, aws_profile=aws_profile))
    return keys


def parse_encryption_context(text: str) -> dict[str, str]:
    """``--encryption-context "k1:v1,k2:v2"``; exit 6 when an item is not exactly ``k:v``."""
    if text == "":
        return {}
    out: dict[str, str] = {}
    for item in text.split(","):
        parts = item.split(":")
        if len(parts) != 2:
            raise SopsError(errors.INVALID_KMS_ENCRYPTION_CONTEXT_FORMAT, "Invalid KMS encryption context format")
        out[parts[0]] = parts[1]
    return out


def context_to_string(context: dict[str, str]) -> str:
    return ",".join(f"{k}:{context[k]}" for k in sorted(context))


def sts_session_name(hostname: str | None = None) -> str:
    """``sops@<hostname>``, sanitised and cut to 64 characters as sops does."""
    host = socket.gethostname() if hostname is None else hostname
    name = "sops@" + _STS_SESSION_STRIP.sub("", host)
    return name[:_ROLE_SESSION_NAME_LIMIT]


_clients: dict[tuple[Any, ...], Any] = {}


def clear_client_cache() -> None:
    _clients.clear()


def _aws_env_snapshot() -> tuple[tuple[str, str], ...]:
    # A changed endpoint, profile or credential variable must not reuse a stale client.
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


def _client_config() -> Any:
    from botocore.config import Config

    if "AWS_MAX_ATTEMPTS" in os.environ or "AWS_RETRY_MODE" in os.environ:
        return Config()
    # The Go SDK sops uses stops after 3 attempts; botocore's legacy default waits longer.
    return Config(retries={"mode": "standard", "total_max_attempts": 3})


def _make_client(profile: str, region: str, role: str) -> Any:
    import boto3

    try:
        session = boto3.session.Session(profile_name=profile or None, region_name=region)
    except Exception as exc:
        raise KeyFailure(f"could not load AWS config: {_aws_reason(exc)}") from None
    if role:
        session = _assume_role(session, region, role)
    return session.client("kms", config=_client_config())


def _assume_role(session: Any, region: str, role: str) -> Any:
    import boto3

    try:
        sts = session.client("sts", config=_client_config())
        out = sts.assume_role(RoleArn=role, RoleSessionName=sts_session_name())
    except Exception as exc:
        raise KeyFailure(f"failed to assume role '{role}': {_aws_reason(exc)}") from None
    credentials = out["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def _aws_reason(exc: Exception) -> str:
    # botocore messages name the operation and error code, never credentials.
    return str(exc) or type(exc).__name__
