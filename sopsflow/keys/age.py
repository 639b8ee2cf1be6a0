"""age master keys, and discovery of the user's age identities as in sops 3.11.

``enc`` is an age v1 file whose payload is the raw data key (or Shamir
share), ASCII-armoured with 64-character lines and a trailing newline
(sops' `age/keysource.go`). Identities come from every source sops 3.11 reads (sops' `age/keysource.go`),
loaded once per process and environment, so decrypting many files neither
re-reads key files nor re-runs ``SOPS_AGE_KEY_CMD``.
"""

from __future__ import annotations

import base64
import os
import sys

from .. import errors
from ..errors import SopsError
from .base import KeyFailure

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from dataclasses import dataclass, field
    from typing import Any
else:  # the same classes without importing dataclasses (start-up time)
    from ..records import dataclass, field

ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = "-----END AGE ENCRYPTED FILE-----"
_ARMOR_COLUMNS = 64

SOPS_AGE_KEY = "SOPS_AGE_KEY"
SOPS_AGE_KEY_FILE = "SOPS_AGE_KEY_FILE"
SOPS_AGE_KEY_CMD = "SOPS_AGE_KEY_CMD"
SOPS_AGE_SSH_PRIVATE_KEY_FILE = "SOPS_AGE_SSH_PRIVATE_KEY_FILE"
SOPS_AGE_SSH_PRIVATE_KEY_CMD = "SOPS_AGE_SSH_PRIVATE_KEY_CMD"
#: Set for the key commands: the recipient whose wrap is being opened.
SOPS_AGE_RECIPIENT = "SOPS_AGE_RECIPIENT"
SOPS_AGE_RECIPIENTS = "SOPS_AGE_RECIPIENTS"

# Everything that changes which identities sops would find; the cache is keyed on it.
_ENV_INPUTS = (
    SOPS_AGE_KEY,
    SOPS_AGE_KEY_FILE,
    SOPS_AGE_KEY_CMD,
    SOPS_AGE_SSH_PRIVATE_KEY_FILE,
    SOPS_AGE_SSH_PRIVATE_KEY_CMD,
    "HOME",
    "XDG_CONFIG_HOME",
    "AppData",
)

# age v1's error text for "no identity fits", as sops 3.11 prints it.
_NO_MATCH = "identity did not match any of the recipients: incorrect identity for recipient block"


class AgeKey:
    """One age recipient (X25519 ``age1...`` or an SSH public key) of a file."""

    type_name = "age"

    def __init__(self, recipient: str, enc: str = "") -> None:
        self.recipient = recipient
        self.enc = enc

    def __repr__(self) -> str:
        return f"AgeKey({self.recipient!r})"

    def encrypt(self, data_key: bytes) -> None:
        import pyrage

        try:
            parsed = _parse_recipient(self.recipient)
        except ValueError as exc:
            raise KeyFailure(str(exc)) from None
        try:
            if _is_extension(parsed):
                ciphertext = _encrypt_extension(parsed, data_key)
            else:
                ciphertext = pyrage.encrypt(data_key, [parsed])
        except KeyFailure:
            raise
        except Exception as exc:  # pyrage.EncryptError
            raise KeyFailure(f"failed to encrypt sops data key with age: {exc}") from None
        self.enc = armor(ciphertext)

    def decrypt(self) -> bytes:
        # dotenv and INI files carry undecodable bytes as surrogate escapes:
        # hand age the bytes the file held, as sops does (it then fails cleanly)
        return load_identities(self.recipient).unwrap(self.enc.encode("utf-8", "surrogateescape"), self.recipient)

    def to_dict(self) -> dict[str, Any]:
        return {"recipient": self.recipient, "enc": self.enc}

    def identity(self) -> str:
        return self.recipient


def _is_extension(parsed: object) -> bool:
    """Whether a parsed recipient is a post-quantum or plugin one. Their
    modules are loaded by _parse_recipient when it meets such a recipient, so
    a run with plain X25519 or SSH recipients never imports them (nor hmac and
    subprocess with them) just to rule them out."""
    pq = sys.modules.get(f"{__package__}.agepq")
    plugin = sys.modules.get(f"{__package__}.ageplugin")
    return bool((pq is not None and isinstance(parsed, pq.HybridRecipient))
                or (plugin is not None and isinstance(parsed, plugin.PluginRecipient)))


def _encrypt_extension(parsed: Any, data_key: bytes) -> bytes:
    """An age file of ``data_key`` for a post-quantum or plugin recipient."""
    from .ageplugin import PluginError, PluginRecipient
    from .agepq import HybridRecipient

    try:
        if isinstance(parsed, HybridRecipient):
            from . import agefmt

            return agefmt.encrypt(data_key, [parsed.wrap])
        if isinstance(parsed, PluginRecipient):
            return parsed.encrypt(data_key)
        raise TypeError(f"no wrap for {type(parsed).__name__}")
    except PluginError as exc:
        raise KeyFailure("failed to create writer for encrypting sops data key with age: "
                         f"failed to wrap key for recipient #0: {exc}") from None
    except Exception as exc:  # plugin failures
        raise KeyFailure(f"failed to encrypt sops data key with age: {exc}") from None


def dearmor(text: bytes) -> bytes:
    """The age file inside ``armor``'s output (ValueError when it is not one)."""
    lines = text.strip().split(b"\n")
    if len(lines) < 2 or lines[0].strip() != ARMOR_BEGIN.encode() or lines[-1].strip() != ARMOR_END.encode():
        raise ValueError("not an armored age file")
    try:
        return base64.b64decode(b"".join(line.strip() for line in lines[1:-1]), validate=True)
    except ValueError:
        raise ValueError("invalid armor") from None


def armor(ciphertext: bytes) -> str:
    """ASCII armour exactly as filippo.io/age/armor writes it."""
    body = base64.b64encode(ciphertext).decode("ascii")
    lines = [body[i : i + _ARMOR_COLUMNS] for i in range(0, len(body), _ARMOR_COLUMNS)]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n"


def is_age_x25519_recipient(text: str) -> bool:
    """Whether ``text`` is a well-formed age X25519 recipient (bech32, HRP
    ``age``, 32 bytes), the check sops does when it reads a rule."""
    from .bech32 import Bech32Error, bech32_decode

    if text != text.lower():
        return False
    try:
        hrp, data = bech32_decode(text)
    except Bech32Error:
        return False
    return hrp == "age" and len(data) == 32


def split_recipients(text: str) -> list[str]:
    """The recipients of one comma-joined string, the way sops'
    ``MasterKeysFromRecipients`` reads ``--age``, ``SOPS_AGE_RECIPIENTS`` and a
    rule's joined ``age`` field: items trimmed, and an empty item is an unknown
    recipient type (empty text is no recipient). ValueError in sops' wording.

    This is the cheap syntax check (no pyrage): plugin recipients (a second
    "1") and ssh keys are left to the key class."""
    if text == "":
        return []
    recipients = []
    for item in text.split(","):
        recipient = item.strip()
        if recipient.startswith("age1pq1"):
            from .agepq import PqKeyError, check_recipient

            try:
                check_recipient(recipient)
            except PqKeyError as exc:
                raise ValueError(f"failed to parse input as Bech32-encoded age public key: {exc}") from None
        elif recipient.startswith("age1") and recipient.count("1") == 1:
            if not is_age_x25519_recipient(recipient):
                raise ValueError("failed to parse input as Bech32-encoded age public key: "
                                 f"malformed recipient {_quote(recipient)}")
        elif not recipient.startswith(("age1", "ssh-")):
            raise ValueError(f"failed to parse input, unknown recipient type: {_quote(recipient)}")
        recipients.append(recipient)
    return recipients


def parse_age_recipients(text: str) -> list[AgeKey]:
    """``--age`` / ``SOPS_AGE_RECIPIENTS``: :func:`split_recipients`, then each
    recipient fully parsed. A malformed recipient is a SopsError (exit 1)."""
    keys = []
    try:
        for recipient in split_recipients(text):
            _parse_recipient(recipient)
            keys.append(AgeKey(recipient))
    except ValueError as exc:
        raise SopsError(errors.GENERIC, str(exc)) from None
    return keys


def recipients_from_env() -> list[AgeKey]:
    """The keys named by ``SOPS_AGE_RECIPIENTS`` (empty when it is unset)."""
    return parse_age_recipients(os.environ.get(SOPS_AGE_RECIPIENTS, ""))


def _is_plugin_recipient(recipient: str) -> bool:
    # Bech32 data never contains "1", so a second "1" means age1<plugin>1...
    return recipient.startswith("age1") and recipient.count("1") > 1


def _parse_recipient(recipient: str) -> Any:
    """A pyrage recipient (or a HybridRecipient), or ValueError with sops' wording."""
    import pyrage

    if recipient.startswith("age1pq1"):
        from .agepq import HybridRecipient, PqKeyError

        try:
            return HybridRecipient.from_str(recipient)
        except PqKeyError as exc:
            raise ValueError(f"failed to parse input as Bech32-encoded age public key: {exc}") from None
    if recipient.startswith(("age1tag1", "age1tagpq1")):
        # Tag recipients (hardware keys: P-256, or ML-KEM + P-256) wrap
        # without any plugin; opening them needs the key's plugin identity.
        kind = pyrage.tagpq if recipient.startswith("age1tagpq1") else pyrage.tag
        try:
            return kind.Recipient.from_str(recipient)
        except Exception as exc:
            raise ValueError(f"failed to parse input as age tag recipient: malformed recipient {_quote(recipient)}: "
                             f"{exc}") from None
    if _is_plugin_recipient(recipient):
        from .ageplugin import PluginRecipient
        from .bech32 import bech32_decode

        try:
            bech32_decode(recipient)
            return PluginRecipient(recipient)
        except ValueError as exc:
            raise ValueError(f"failed to parse input as age key from age plugin: {exc}") from None
    if recipient.startswith("age1"):
        try:
            return pyrage.x25519.Recipient.from_str(recipient)
        except Exception as exc:
            raise ValueError(
                f"failed to parse input as Bech32-encoded age public key: malformed recipient {_quote(recipient)}: {exc}"
            ) from None
    if recipient.startswith("ssh-"):
        try:
            return pyrage.ssh.Recipient.from_str(recipient)
        except Exception as exc:
            raise ValueError(f"failed to parse input as age-ssh public key: {exc}") from None
    raise ValueError(f"failed to parse input, unknown recipient type: {_quote(recipient)}")


# --------------------------------------------------------------------------
# Identity discovery


class _ParseError(Exception):
    pass


class _UnlockError(Exception):
    pass


@dataclass
class _LockedSource:
    """A passphrase-protected identity source, unlocked only when needed."""

    location: str
    kind: str  # "age" (scrypt-encrypted identities file) or "ssh" (encrypted private key)
    contents: bytes
    public_key: str = ""  # ssh only: "<type> <base64>"
    unlocked: list[Any] | None = None

    def unlock(self) -> list[Any]:
        if self.unlocked is None:
            self.unlocked = self._unlock_ssh() if self.kind == "ssh" else self._unlock_age()
        return self.unlocked

    def _unlock_age(self) -> list[Any]:
        import pyrage

        try:
            passphrase = _read_secret(f"Enter passphrase for identity '{self.location}':")
        except _UnlockError as exc:
            raise _UnlockError(f"could not read passphrase: {exc}") from None
        try:
            plain = pyrage.passphrase.decrypt(self.contents, passphrase)
        except Exception as exc:
            if "ecryption failed" in str(exc):
                raise _UnlockError("incorrect passphrase") from None
            raise _UnlockError(f"failed to decrypt identity file: {exc}") from None
        try:
            identities, _recipients = _parse_identity_text(plain)
        except _ParseError as exc:
            raise _UnlockError(str(exc)) from None
        return identities

    def _unlock_ssh(self) -> list[Any]:
        import pyrage

        try:
            passphrase = _read_secret(f"Enter passphrase for {_quote(self.location)}:")
        except _UnlockError as exc:
            raise _UnlockError(f"could not read passphrase for {_quote(self.location)}: {exc}") from None
        unencrypted = _decrypt_ssh_private_key(self.contents, passphrase.encode("utf-8"), self.location)
        try:
            return [pyrage.ssh.Identity.from_buffer(unencrypted)]
        except Exception as exc:
            raise _UnlockError(f"malformed SSH identity in {_quote(self.location)}: {exc}") from None


@dataclass
class AgeIdentities:
    """Everything found in the identity sources of the current environment."""

    identities: list[Any] = field(default_factory=list)
    #: public forms of the unlocked identities (age1... / "ssh-<type> <base64>")
    recipients: list[str] = field(default_factory=list)
    locked: list[_LockedSource] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def locked_locations(self) -> list[str]:
        return [source.location for source in self.locked]

    def unwrap(self, enc: bytes, recipient: str) -> bytes:
        """Decrypt one ``enc`` blob with the identities; KeyFailure says why not."""

        if not self.identities and not self.locked:
            raise KeyFailure(self._format("failed to load age identities", None))
        reason = _NO_MATCH
        if self.identities:
            try:
                return _decrypt(enc, self.identities)
            except Exception as exc:
                if "No matching keys" not in str(exc):
                    raise KeyFailure(self._format(_READER_FAILED, str(exc))) from None
        for source in self.locked:
            # An encrypted SSH key is only worth a prompt for its own recipient.
            if source.kind == "ssh" and not _same_ssh_key(source.public_key, recipient):
                continue
            try:
                unlocked = source.unlock()
            except _UnlockError as exc:
                reason = str(exc)
                break
            try:
                return _decrypt(enc, unlocked)
            except Exception as exc:
                if "No matching keys" not in str(exc):
                    raise KeyFailure(self._format(_READER_FAILED, str(exc))) from None
        raise KeyFailure(self._format(_READER_FAILED, reason))

    def _format(self, message: str, cause: str | None) -> str:
        # Same shape as sops' formatError: message[: cause][. Errors...][. Did not find...]
        text = message if cause is None else f"{message}: {cause}"
        if self.errors:
            text += ". Errors while loading age identities: " + "; ".join(self.errors)
        if self.unused:
            text += ". Did not find keys in " + _locations_phrase(self.unused) + "."
        return text


_READER_FAILED = "failed to create reader for decrypting sops data key with age"


def _decrypt(enc: bytes, identities: list[Any]) -> bytes:
    """Decrypt an armored age file with whichever identities fit its stanzas:
    post-quantum stanzas here, every other type through pyrage. Failing to
    match raises with pyrage's "No matching keys" wording."""
    import pyrage

    # A plugin or post-quantum identity exists only once its module was
    # imported (by the identity parser), so a run with plain X25519/SSH keys
    # never loads those modules (nor subprocess) just to rule them out.
    plugin_module = sys.modules.get(f"{__package__}.ageplugin")
    pq_module = sys.modules.get(f"{__package__}.agepq")
    if plugin_module is None and pq_module is None:
        if not identities:
            raise KeyFailure("No matching keys found")
        return bytes(pyrage.decrypt(enc, identities))
    from .ageplugin import PluginError, PluginIdentity
    from .agepq import STANZA_TYPE, HybridIdentity

    hybrid = [i for i in identities if isinstance(i, HybridIdentity)]
    plugins = [i for i in identities if isinstance(i, PluginIdentity)]
    others = [i for i in identities if not isinstance(i, (HybridIdentity, PluginIdentity))]
    if not hybrid and not plugins:
        if not others:
            raise KeyFailure("No matching keys found")
        return bytes(pyrage.decrypt(enc, others))
    from . import agefmt

    try:
        data = dearmor(enc)
    except ValueError:
        data = enc
    types = agefmt.stanza_types(data)
    if hybrid and STANZA_TYPE in types:
        try:
            return agefmt.decrypt(data, [i.unwrap for i in hybrid])
        except agefmt.IncorrectIdentity:
            pass
    if others and any(t in _NATIVE_STANZAS for t in types):
        try:
            return bytes(pyrage.decrypt(enc, others))
        except Exception as exc:
            if "No matching keys" not in str(exc):
                raise
    # Plugins last, and only for stanzas no built-in type claims (rage adds
    # grease stanzas of random types to every file, so "unknown" is not enough).
    if plugins and any(t not in _NATIVE_STANZAS and t != STANZA_TYPE for t in types):
        try:
            return agefmt.decrypt(data, [], [p.unwrap_file for p in plugins])
        except agefmt.IncorrectIdentity:
            pass
        except PluginError as exc:
            raise KeyFailure(str(exc)) from None
    raise KeyFailure("No matching keys found")


_NATIVE_STANZAS = frozenset({"X25519", "ssh-ed25519", "ssh-rsa", "scrypt"})

_cache: dict[tuple[str | None, ...], AgeIdentities] = {}


def clear_identity_cache() -> None:
    """Forget loaded identities (tests; a long-running process after key changes)."""
    _cache.clear()


def load_identities(recipient: str | None = None) -> AgeIdentities:
    """The identities of the current environment, loaded once per process.

    ``recipient``: the key about to be opened. sops hands it to the key
    commands as ``SOPS_AGE_RECIPIENT``, so their output (and the cache entry)
    depends on it when one is set; without commands it changes nothing.
    """
    commands = os.environ.get(SOPS_AGE_KEY_CMD) is not None or os.environ.get(SOPS_AGE_SSH_PRIVATE_KEY_CMD) is not None
    for_whom = recipient if commands else None
    key = (sys.platform, for_whom, *(os.environ.get(name) for name in _ENV_INPUTS))
    found = _cache.get(key)
    if found is None:
        found = _load_all(for_whom)
        _cache[key] = found
    return found


def held_recipients() -> list[str]:
    """Public forms of the identities the user holds (no secrets)."""
    return list(load_identities().recipients)


def _load_all(recipient: str | None = None) -> AgeIdentities:
    ids = AgeIdentities()
    _load_ssh_sources(ids, recipient)
    readers: dict[str, bytes] = {}
    _read_env_sources(ids, readers, recipient)
    _read_default_file(ids, readers)
    for location, data in readers.items():
        # Only SOPS_AGE_KEY may hold several keys on a line (sops 3.13).
        _add_source(ids, location, data, words=location == SOPS_AGE_KEY)
    return ids


def _load_ssh_sources(ids: AgeIdentities, recipient: str | None) -> None:
    path = os.environ.get(SOPS_AGE_SSH_PRIVATE_KEY_FILE)
    if path is not None:
        _add_ssh_identity(ids, path)
    else:
        ids.unused.append(SOPS_AGE_SSH_PRIVATE_KEY_FILE)
    command = os.environ.get(SOPS_AGE_SSH_PRIVATE_KEY_CMD)
    if command is not None:
        # sops 3.13: after the file, before ~/.ssh. The pinned sops has no such
        # variable, so its absence is not listed among the unused locations.
        output = _run_key_command(ids, command, recipient, SOPS_AGE_SSH_PRIVATE_KEY_CMD)
        if output is not None:
            _add_ssh_command_identity(ids, output)
    home, error = _home_dir()
    if home is None:
        ids.errors.append(error)
        return
    for name in ("id_ed25519", "id_rsa"):
        candidate = os.path.join(home, ".ssh", name)
        if os.path.exists(candidate):
            _add_ssh_identity(ids, candidate)
        else:
            ids.unused.append(candidate)


def _read_env_sources(ids: AgeIdentities, readers: dict[str, bytes], recipient: str | None) -> None:
    if SOPS_AGE_KEY in os.environ:
        readers[SOPS_AGE_KEY] = os.environ[SOPS_AGE_KEY].encode("utf-8")
    else:
        ids.unused.append(SOPS_AGE_KEY)
    key_file = os.environ.get(SOPS_AGE_KEY_FILE)
    if key_file is not None:
        try:
            with open(key_file, "rb") as handle:
                readers[SOPS_AGE_KEY_FILE] = handle.read()
        except OSError as exc:
            ids.errors.append(f"failed to open {SOPS_AGE_KEY_FILE} file: {_go_os_error(key_file, exc)}")
    else:
        ids.unused.append(SOPS_AGE_KEY_FILE)
    command = os.environ.get(SOPS_AGE_KEY_CMD)
    if command is not None:
        output = _run_key_command(ids, command, recipient, SOPS_AGE_KEY_CMD)
        if output is not None:
            readers[SOPS_AGE_KEY_CMD] = output
    else:
        ids.unused.append(SOPS_AGE_KEY_CMD)


def _run_key_command(ids: AgeIdentities, command: str, recipient: str | None, variable: str) -> bytes | None:
    import shlex
    import subprocess  # only for the key commands: most runs never start a process

    try:
        argv = shlex.split(command)
    except ValueError as exc:
        ids.errors.append(f"failed to parse command {command} from {variable}: {exc}")
        return None
    if not argv:
        ids.errors.append(f"failed to parse command {command} from {variable}: empty command")
        return None
    prefix = f"failed to execute command {command} from {variable}"
    env = None
    if recipient is not None:
        env = dict(os.environ, **{SOPS_AGE_RECIPIENT: recipient})
    try:
        # Like Go's exec.Command(...).Output(): no stdin, stderr not shown.
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False, env=env)
    except FileNotFoundError:
        ids.errors.append(f'{prefix}: exec: "{argv[0]}": executable file not found in $PATH')
        return None
    except OSError as exc:
        ids.errors.append(f"{prefix}: {_go_os_error(argv[0], exc)}")
        return None
    if done.returncode != 0:
        status = f"signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        ids.errors.append(f"{prefix}: {status}")
        return None
    return done.stdout


def _read_default_file(ids: AgeIdentities, readers: dict[str, bytes]) -> None:
    config_dir, error = _user_config_dir()
    nothing_yet = not readers and not ids.identities and not ids.locked
    if config_dir is None:
        if nothing_yet:
            ids.errors.append(f"user config directory could not be determined: {error}")
        return
    path = os.path.join(config_dir, "sops", "age", "keys.txt")
    try:
        with open(path, "rb") as handle:
            readers[path] = handle.read()
    except FileNotFoundError:
        # sops only mentions the default file when nothing else was found.
        if nothing_yet:
            ids.unused.append(path)
    except OSError as exc:
        ids.errors.append(f"failed to open file: {_go_os_error(path, exc)}")


def _add_ssh_command_identity(ids: AgeIdentities, output: bytes) -> None:
    if _ssh_key_is_encrypted(output):
        ids.errors.append(f"the SSH key returned by running {SOPS_AGE_SSH_PRIVATE_KEY_CMD} is password protected, "
                          "which is unsupported")
        return
    _add_unencrypted_ssh_identity(ids, output, f"returned by running {SOPS_AGE_SSH_PRIVATE_KEY_CMD}")


def _add_source(ids: AgeIdentities, location: str, data: bytes, *, words: bool = False) -> None:
    if data.startswith(b"age-encryption") or data.startswith(b"-----BEGIN AGE"):
        ids.locked.append(_LockedSource(location, "age", data))
        return
    try:
        identities, recipients = _parse_identity_text(data, words=words)
    except _ParseError as exc:
        ids.errors.append(f"failed to parse '{location}' age identities: {exc}")
        return
    ids.identities.extend(identities)
    ids.recipients.extend(recipients)
    if not identities:
        ids.unused.append(location)


def _parse_identity_text(data: bytes, *, words: bool = False) -> tuple[list[Any], list[str]]:
    """Identities and the public forms of those that have one (plugin
    identities do not). ``words``: each whitespace-separated word of a line
    is a key."""
    import pyrage

    identities: list[Any] = []
    recipients: list[str] = []
    lines = []
    for raw in data.decode("utf-8", errors="replace").split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line or line.startswith("#"):
            continue
        lines.extend(line.split() if words else [line])
    for line in lines:
        if line.startswith("AGE-PLUGIN-"):
            from .ageplugin import PluginIdentity

            try:
                identities.append(PluginIdentity(line))
            except ValueError:
                raise _ParseError("malformed plugin identity") from None
        elif line.startswith("AGE-SECRET-KEY-PQ-1"):
            from .agepq import HybridIdentity, PqKeyError

            try:
                hybrid = HybridIdentity.from_str(line)
            except PqKeyError as exc:
                raise _ParseError(str(exc)) from None
            identities.append(hybrid)
            recipients.append(str(hybrid.to_public()))
        elif line.startswith("AGE-SECRET-KEY-1"):
            try:
                identity = pyrage.x25519.Identity.from_str(line)
            except Exception as exc:
                # Never echo the line: it is a private key.
                raise _ParseError(f"malformed secret key: {exc}") from None
            identities.append(identity)
            recipients.append(str(identity.to_public()))
        else:
            raise _ParseError("unknown identity type")
    return identities, recipients


def _add_ssh_identity(ids: AgeIdentities, path: str) -> None:
    try:
        with open(path, "rb") as handle:
            contents = handle.read()
    except OSError as exc:
        ids.errors.append(f"failed to open file: {_go_os_error(path, exc)}")
        return
    if _ssh_key_is_encrypted(contents):
        public = _openssh_public_key(contents)
        if public is None:
            public, error = _read_ssh_public_file(path)
            if public is None:
                ids.errors.append(error)
                return
        ids.locked.append(_LockedSource(path, "ssh", contents, public_key=public))
        ids.recipients.append(public)
        return
    _add_unencrypted_ssh_identity(ids, contents, f"in {_quote(path)}")


def _add_unencrypted_ssh_identity(ids: AgeIdentities, contents: bytes, where: str) -> None:
    """A passphrase-less SSH private key and its public half; ``where`` says
    where it came from in the error (never the key itself)."""
    import pyrage

    try:
        identity = pyrage.ssh.Identity.from_buffer(contents)
    except Exception as exc:
        ids.errors.append(f"malformed SSH identity {where}: {exc}")
        return
    ids.identities.append(identity)
    public = _openssh_public_key(contents) or _pem_public_key(contents)
    if public:
        ids.recipients.append(public)


def _read_ssh_public_file(private_path: str) -> tuple[str | None, str]:
    public_path = private_path + ".pub"
    try:
        with open(public_path, encoding="utf-8") as handle:
            fields = handle.read().split()
    except OSError as exc:
        return None, (
            f"failed to obtain public {_quote(public_path)} key for {_quote(private_path)} SSH key: "
            f"{_go_os_error(public_path, exc)}"
        )
    if len(fields) < 2 or not fields[0].startswith("ssh-"):
        return None, f"failed to parse {_quote(public_path)}: not an SSH public key"
    return f"{fields[0]} {fields[1]}", ""


def _same_ssh_key(public_key: str, recipient: str) -> bool:
    # Recipients keep their comment ("ssh-ed25519 AAAA... user@host").
    return public_key.split()[:2] == recipient.split()[:2]


# --------------------------------------------------------------------------
# SSH private key helpers (no secret material ever leaves these functions)

_OPENSSH_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_END = b"-----END OPENSSH PRIVATE KEY-----"
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


def _openssh_fields(contents: bytes) -> tuple[bytes, bytes] | None:
    """(ciphername, public key blob) of an openssh-key-v1 file, else None."""
    start = contents.find(_OPENSSH_BEGIN)
    end = contents.find(_OPENSSH_END)
    if start < 0 or end < 0:
        return None
    try:
        blob = base64.b64decode(b"".join(contents[start + len(_OPENSSH_BEGIN) : end].split()))
    except ValueError:
        return None
    if not blob.startswith(_OPENSSH_MAGIC):
        return None
    offset = len(_OPENSSH_MAGIC)
    fields: list[bytes] = []
    # ciphername, kdfname, kdfoptions, then a uint32 key count, then the public key.
    for _ in range(3):
        item, offset = _ssh_string(blob, offset)
        if item is None:
            return None
        fields.append(item)
    offset += 4
    public, offset = _ssh_string(blob, offset)
    if public is None:
        return None
    return fields[0], public


def _ssh_string(blob: bytes, offset: int) -> tuple[bytes | None, int]:
    if offset + 4 > len(blob):
        return None, offset
    length = int.from_bytes(blob[offset : offset + 4], "big")
    end = offset + 4 + length
    if end > len(blob):
        return None, offset
    return blob[offset + 4 : end], end


def _openssh_public_key(contents: bytes) -> str | None:
    fields = _openssh_fields(contents)
    if fields is None:
        return None
    key_type, _ = _ssh_string(fields[1], 0)
    if not key_type:
        return None
    return f"{key_type.decode('ascii', errors='replace')} {base64.b64encode(fields[1]).decode('ascii')}"


def _pem_public_key(contents: bytes) -> str | None:
    try:
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(contents, password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    except Exception:
        return None
    return public.decode("ascii")


def _ssh_key_is_encrypted(contents: bytes) -> bool:
    fields = _openssh_fields(contents)
    if fields is not None:
        return fields[0] != b"none"
    return b"Proc-Type: 4,ENCRYPTED" in contents or b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in contents


def _decrypt_ssh_private_key(contents: bytes, passphrase: bytes, location: str) -> bytes:
    """The key re-serialised without encryption, for pyrage (kept in memory only)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        if _openssh_fields(contents) is not None:
            key: Any = serialization.load_ssh_private_key(contents, password=passphrase)
        else:
            key = serialization.load_pem_private_key(contents, password=passphrase)
    except UnsupportedAlgorithm as exc:
        raise _UnlockError(f"cannot unlock {_quote(location)}: {exc} (install the Python package 'bcrypt')") from None
    except (ValueError, TypeError):
        raise _UnlockError(f"could not decrypt {_quote(location)}: incorrect passphrase") from None
    return bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )


# --------------------------------------------------------------------------
# Small helpers


def _read_secret(prompt: str) -> str:
    """Read a passphrase from the terminal without echo, as age's readSecret."""
    import getpass

    try:
        fd = os.open("/dev/tty", os.O_RDWR | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        if sys.stdin is not None and sys.stdin.isatty():
            return getpass.getpass(prompt + " ")
        raise _UnlockError(
            f"standard input is not a terminal, and /dev/tty is not available: {_go_os_error('/dev/tty', exc)}"
        ) from None
    os.close(fd)
    # getpass opens /dev/tty itself for the prompt and the input.
    return getpass.getpass(prompt + " ")


def _home_dir() -> tuple[str | None, str]:
    name = "USERPROFILE" if sys.platform == "win32" else "HOME"
    home = os.environ.get(name, "")
    if not home:
        return None, f"${name} is not defined" if name == "HOME" else "%userprofile% is not defined"
    return home, ""


def _user_config_dir() -> tuple[str | None, str]:
    """Go's os.UserConfigDir, with sops' XDG_CONFIG_HOME override on macOS."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    if sys.platform == "win32":
        app_data = os.environ.get("AppData", "")
        return (app_data, "") if app_data else (None, "%AppData% is not defined")
    if sys.platform == "darwin":
        if xdg:
            return xdg, ""
        home = os.environ.get("HOME", "")
        if not home:
            return None, "$HOME is not defined"
        return os.path.join(home, "Library", "Application Support"), ""
    if not xdg:
        home = os.environ.get("HOME", "")
        if not home:
            return None, "neither $XDG_CONFIG_HOME nor $HOME are defined"
        return os.path.join(home, ".config"), ""
    if not os.path.isabs(xdg):
        return None, "path in $XDG_CONFIG_HOME is relative"
    return xdg, ""


def _locations_phrase(locations: list[str]) -> str:
    quoted = [f"'{location}'" for location in locations]
    if len(quoted) == 1:
        return f"location {quoted[0]}"
    if len(quoted) == 2:
        return f"locations {quoted[0]} and {quoted[1]}"
    return "locations " + ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _go_os_error(path: str, exc: OSError) -> str:
    # Go prints "open <path>: no such file or directory"; Python capitalises strerror.
    reason = exc.strerror or str(exc)
    return f"open {path}: {reason[:1].lower()}{reason[1:]}"


def _quote(text: str) -> str:
    # Go's %q for the printable strings used here.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
