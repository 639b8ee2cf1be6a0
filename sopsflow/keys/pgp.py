"""PGP master keys, through the ``gpg`` binary as sops 3.11's fallback path.

Wrapping runs exactly sops' gpg command line (sops' `pgp/keysource.go`) with the raw key
bytes on stdin; the armoured stdout, whitespace-trimmed, becomes ``enc``.
Unwrapping runs ``gpg -d`` *without* ``--batch`` so that gpg-agent and
pinentry can still ask for a passphrase, as they do for sops. Encryption
does use ``--batch``: it needs no secret key, hence no agent, and batch
mode turns an untrusted-key question into a clear error instead of a hang.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from .base import KeyFailure, now_rfc3339

SOPS_GPG_EXEC = "SOPS_GPG_EXEC"


class PgpKey:
    """One PGP key of a file, named by its fingerprint."""

    type_name = "pgp"

    def __init__(self, fp: str, enc: str = "", created_at: str = "") -> None:
        # sops removes the spaces of "ABCD EF01 ..." style fingerprints.
        self.fp = fp.replace(" ", "")
        self.enc = enc
        self.created_at = created_at

    def __repr__(self) -> str:
        return f"PgpKey({self.fp!r})"

    def encrypt(self, data_key: bytes) -> None:
        args = [
            "--batch",
            "--no-default-recipient",
            "--yes",
            "--encrypt",
            "-a",
            "-r",
            self.fp,
            "--trusted-key",
            _short_fingerprint(self.fp),
            "--no-encrypt-to",
        ]
        done = _run_gpg(args, data_key, "could not encrypt data key with PGP key")
        if done.returncode != 0:
            raise KeyFailure(
                "could not encrypt data key with PGP key: GnuPG binary error: "
                f"failed to encrypt sops data key with pgp: {_stderr(done)}{_hint(done)}"
            )
        self.enc = done.stdout.decode("utf-8").strip()
        self.created_at = now_rfc3339()

    def decrypt(self) -> bytes:
        prefix = "could not decrypt data key with PGP key: GnuPG binary error: failed to decrypt sops data key with pgp"
        # the bytes the file held (dotenv and INI keep undecodable ones as surrogate escapes)
        enc = self.enc.encode("utf-8", "surrogateescape")
        done = _run_gpg(["-d"], enc, "could not decrypt data key with PGP key")
        if done.returncode != 0:
            raise KeyFailure(f"{prefix}: {_stderr(done)}{_hint(done)}")
        if not done.stdout:
            # Old gpg versions drop AEAD packets they cannot read and succeed with nothing.
            raise KeyFailure(f"{prefix}: zero bytes returned")
        return done.stdout

    def to_dict(self) -> dict[str, Any]:
        return {"created_at": self.created_at, "enc": self.enc, "fp": self.fp}

    def identity(self) -> str:
        return self.fp


def parse_pgp_fingerprints(text: str) -> list[PgpKey]:
    """``--pgp`` / ``SOPS_PGP_FP``: comma separated fingerprints (spaces removed)."""
    return [PgpKey(item) for item in text.split(",") if item.replace(" ", "")]


def gpg_binary() -> str:
    return os.environ.get(SOPS_GPG_EXEC) or "gpg"


def gnupg_home() -> str:
    """Where gpg keeps its keyrings (for messages only; gpg reads GNUPGHOME itself)."""
    return os.environ.get("GNUPGHOME") or os.path.join(os.path.expanduser("~"), ".gnupg")


def held_secret_fingerprints(include_subkeys: bool = False) -> list[str]:
    """Fingerprints of the secret keys gpg can use (primary keys; with
    ``include_subkeys`` their subkeys too, which is what a file may name). No secrets."""
    try:
        done = subprocess.run(
            [gpg_binary(), "--batch", "--with-colons", "--list-secret-keys"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    fingerprints = []
    record = ""
    for line in done.stdout.decode("utf-8", errors="replace").splitlines():
        fields = line.split(":")
        if fields[0] in ("sec", "ssb"):
            record = fields[0]
        elif fields[0] == "fpr" and len(fields) > 9 and fields[9]:
            if record == "sec" or include_subkeys:
                fingerprints.append(fields[9].upper())
    return fingerprints


def fingerprint_matches(file_fp: str, held_fp: str) -> bool:
    """True when the file's fingerprint (or long key ID) names the held key."""
    wanted = file_fp.upper().rstrip("!")
    return bool(wanted) and held_fp.upper().endswith(wanted)


def _run_gpg(args: list[str], stdin: bytes, prefix: str) -> subprocess.CompletedProcess[bytes]:
    binary = gpg_binary()
    try:
        return subprocess.run([binary, *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise KeyFailure(
            f"{prefix}: GnuPG binary error: cannot run {binary!r}: executable file not found "
            f"(install GnuPG or set {SOPS_GPG_EXEC})"
        ) from None
    except OSError as exc:
        raise KeyFailure(f"{prefix}: GnuPG binary error: cannot run {binary!r}: {exc.strerror or exc}") from None


def _short_fingerprint(fp: str) -> str:
    # Last 16 hex digits; a trailing "!" (exact-key marker) stays attached.
    offset = len(fp) - 16
    if fp.endswith("!"):
        offset -= 1
    return fp[offset:] if offset > 0 else fp


def _stderr(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stderr.decode("utf-8", errors="replace").strip()


_HINTS = (
    ("No public key", "the public key is not in the GnuPG keyring at {home}; import it with gpg --import"),
    ("No secret key", "none of the recipients' secret keys is in the GnuPG keyring at {home}"),
    ("Unusable public key", "the key is expired, revoked or cannot encrypt"),
    ("expired", "the key has expired"),
)


def _hint(done: subprocess.CompletedProcess[bytes]) -> str:
    text = _stderr(done)
    for marker, hint in _HINTS:
        if marker in text:
            return " (" + hint.format(home=gnupg_home()) + ")"
    return ""
