"""Encrypt and decrypt a whole tree: the selection policy, the walk, the MAC.

Walk order, comment-stack handling and the MAC follow sops 3.11 exactly, with
one deliberate difference: an encrypted comment that sits inside a list (an
``ENC[...,type:comment]`` item) is treated as a comment when decrypting, so
files written under ``encrypted_comment_regex`` with comments in lists decrypt
(sops 3.11 fails on them with a MAC mismatch, upstream #2281).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from . import errors
from .cipher import PREFIX, Cipher, from_bytes, to_bytes
from .errors import SopsError
from .metadata import Metadata, lastmodified_aad
from .tree import Branches, Comment, SealedValue, TreeMap, TreeValue

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from hashlib import _Hash

#: Fed into the MAC first when mac_only_encrypted is set: sha256("sops").
MAC_ONLY_ENCRYPTED_PREFIX = bytes.fromhex("8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69")

# The comparison is hmac.compare_digest's constant-time fallback, which needs
# no OpenSSL.
try:
    from _operator import _compare_digest as compare_digest
except ImportError:  # not CPython
    from hmac import compare_digest  # type: ignore[no-redef]

#: A first MAC input at least this long (the one value of a large binary file)
#: is hashed by OpenSSL, which is faster per byte; anything else by CPython's
#: built-in SHA-512, which costs nothing to load.
_OPENSSL_FROM = 1 << 20


def _builtin_sha512() -> _Hash:
    """CPython's own SHA-512 module: no OpenSSL to load. ``hashlib`` itself
    costs ~4 ms on import (it probes every OpenSSL digest), cryptography's
    hash module ~4 ms more than the AES-GCM binding (``cryptography.utils``
    imports ``typing``)."""
    try:
        if sys.version_info >= (3, 12):
            from _sha2 import sha512
        else:
            from _sha512 import sha512
    except ImportError:  # pragma: no cover - another interpreter
        from hashlib import sha512
    return sha512()  # type: ignore[no-any-return]


def _openssl_sha512() -> _Hash:
    try:
        from _hashlib import openssl_sha512 as sha512  # hashlib's backend
    except ImportError:  # pragma: no cover - CPython without OpenSSL
        from hashlib import sha512
    return sha512()


class _Sha512:
    """SHA-512 (hashlib's update/hexdigest) of the MAC, the implementation
    picked by the size of the first input; ``prefix`` is hashed before it."""

    __slots__ = ("update", "_ctx", "_prefix")

    def __init__(self, prefix: bytes = b"") -> None:
        self._prefix = prefix
        self._ctx: _Hash | None = None
        self.update: Callable[[bytes], None] = self._first_update

    def _start(self, first_size: int) -> _Hash:
        ctx = _openssl_sha512() if first_size >= _OPENSSL_FROM else _builtin_sha512()
        if self._prefix:
            ctx.update(self._prefix)
        self._ctx = ctx
        self.update = ctx.update
        return ctx

    def _first_update(self, data: bytes) -> None:
        self._start(len(data)).update(data)

    def hexdigest(self) -> str:
        ctx = self._ctx if self._ctx is not None else self._start(0)
        return ctx.hexdigest()


_UNENC_SUFFIX, _ENC_SUFFIX, _UNENC_RE, _ENC_RE = 1, 2, 4, 8


def _regex_search(pattern: str) -> Callable[[str], bool]:
    """Go RE2 semantics (unanchored search), as sops evaluates these options.

    An invalid pattern is an error: sops would match nothing with it and so
    silently leave every value (or none) encrypted."""
    from .config.rules import compile_go_regex, go_regex_subject

    compiled, _problem = compile_go_regex(pattern)
    if compiled is None:
        raise SopsError(errors.GENERIC, f"invalid regular expression {pattern!r}")
    # Keys and comments of dotenv, INI and binary files may hold undecodable bytes.
    return lambda text: compiled.search(go_regex_subject(text)) is not None


class Policy:
    """Decides, per value, whether it is (to be) encrypted."""

    def __init__(self, meta: Metadata) -> None:
        self.unenc_suffix = meta.unencrypted_suffix
        self.enc_suffix = meta.encrypted_suffix
        self.unenc_re = _regex_search(meta.unencrypted_regex) if meta.unencrypted_regex else None
        self.enc_re = _regex_search(meta.encrypted_regex) if meta.encrypted_regex else None
        self.unenc_comment_re = (
            _regex_search(meta.unencrypted_comment_regex) if meta.unencrypted_comment_regex else None
        )
        self.enc_comment_re = (
            _regex_search(meta.encrypted_comment_regex) if meta.encrypted_comment_regex else None
        )
        self.uses_comments = bool(self.unenc_comment_re or self.enc_comment_re)
        # Every path option asks "does ANY key on the path match?", so a path's
        # answer is decided by the OR of per-key match bits, cached per key
        # (keys repeat across a file; paths rarely do).
        self._key_bits: dict[str, int] = {}
        self._decision = [self._decide(bits) for bits in range(16)]

    def _bits(self, key: str) -> int:
        bits = 0
        if self.unenc_suffix and key.endswith(self.unenc_suffix):
            bits |= _UNENC_SUFFIX
        if self.enc_suffix and key.endswith(self.enc_suffix):
            bits |= _ENC_SUFFIX
        if self.unenc_re is not None and self.unenc_re(key):
            bits |= _UNENC_RE
        if self.enc_re is not None and self.enc_re(key):
            bits |= _ENC_RE
        self._key_bits[key] = bits
        return bits

    def _decide(self, bits: int) -> bool:
        result = True
        if self.unenc_suffix and bits & _UNENC_SUFFIX:
            result = False
        if self.enc_suffix:
            result = bool(bits & _ENC_SUFFIX)
        if self.unenc_re is not None and bits & _UNENC_RE:
            result = False
        if self.enc_re is not None:
            result = bool(bits & _ENC_RE)
        return result

    def path_encrypted(self, path: tuple[str, ...]) -> bool:
        bits = 0
        known = self._key_bits
        for key in path:
            found = known.get(key)
            bits |= self._bits(key) if found is None else found
        return self._decision[bits]

    def encrypted(self, path: tuple[str, ...], stack: list[list[str]], is_comment: bool) -> bool:
        result = self.path_encrypted(path)
        if self.unenc_comment_re is not None:
            if any(self.unenc_comment_re(c) for level in stack for c in level):
                result = False
        if self.enc_comment_re is not None:
            result = False
            last = len(stack) - 1
            for i, level in enumerate(stack):
                for j, c in enumerate(level):
                    # The marker line itself stays plain: skip the comment being judged.
                    if is_comment and i == last and j == len(level) - 1:
                        continue
                    if self.enc_comment_re(c):
                        return True
        return result


def _aad(path: tuple[str, ...]) -> str:
    return ":".join(path) + ":"


class _Walker:
    """One pass over the branches, producing new branches and the MAC digest.

    Every node is visited with its key path, the OR of the policy bits of the
    keys on that path and the path's AAD (``_aad(path)``); both are extended by
    one key per level instead of being rebuilt from the path for every value."""

    def __init__(self, policy: Policy, cipher: Cipher, mac_only_encrypted: bool, decrypting: bool,
                 raw_strings: bool = False) -> None:
        self.policy = policy
        self.raw_strings = raw_strings
        self.cipher = cipher
        self.mac_only = mac_only_encrypted
        self.decrypting = decrypting
        self.hash = _Sha512(MAC_ONLY_ENCRYPTED_PREFIX if mac_only_encrypted else b"")
        # a string value's decision needs neither the comment stack nor a call through value()/leaf()
        self._plain_strings = not policy.uses_comments

    def root(self, node: TreeMap) -> TreeMap:
        return self.branch(node, (), [], 0, _aad(()))

    def branch(self, node: TreeMap, path: tuple[str, ...], stack: list[list[str]], bits: int, aad: str) -> TreeMap:
        stack = stack + [[]]
        level = stack[-1]
        out = TreeMap()
        policy = self.policy
        known = policy._key_bits
        decision = policy._decision
        plain_strings = self._plain_strings
        leaf_of = self._decrypt_leaf if self.decrypting else self._encrypt_leaf
        prefix = aad if path else ""
        for entry in node:
            if type(entry) is Comment:
                level.append(entry.text)
                new = self.leaf(entry, path, stack, True, bits, aad)
                out.append(new if type(new) is Comment else Comment(new))
                continue
            key, value = entry
            if type(key) is not str:
                raise SopsError(
                    errors.ERROR_ENCRYPTING_TREE,
                    f"Error walking tree: Tree contains a non-string key (type {type(key).__name__}). "
                    "Only string keys are supported",
                )
            key_bits = known.get(key)
            if key_bits is None:
                key_bits = policy._bits(key)
            if plain_strings and type(value) is str:
                out.append((key, leaf_of(value, decision[bits | key_bits], False, f"{prefix}{key}:")))
            else:
                out.append((key, self.value(value, path + (key,), stack, bits | key_bits, f"{prefix}{key}:")))
            level.clear()
        return out

    def sequence(self, node: list[TreeValue], path: tuple[str, ...], stack: list[list[str]], bits: int,
                 aad: str) -> list[TreeValue]:
        stack = stack + [[]]
        level = stack[-1]
        out: list[TreeValue] = []
        for item in node:
            if type(item) is Comment:
                level.append(item.text)
                out.append(self.leaf(item, path, stack, True, bits, aad))
                continue
            if self.decrypting and type(item) is str and _is_encrypted_comment(item):
                comment = self._decrypt_list_comment(item, aad)
                level.append(comment.text)
                out.append(comment)
                continue
            out.append(self.value(item, path, stack, bits, aad))
            level.clear()
        return out

    def value(self, node: TreeValue, path: tuple[str, ...], stack: list[list[str]], bits: int,
              aad: str) -> TreeValue:
        kind = type(node)
        if kind is TreeMap:
            return self.branch(node, path, stack, bits, aad)
        if kind is list:
            return self.sequence(node, path, stack, bits, aad)
        if node is None:
            return None
        return self.leaf(node, path, stack, False, bits, aad)

    def leaf(self, node: TreeValue, path: tuple[str, ...], stack: list[list[str]], is_comment: bool, bits: int,
             aad: str) -> TreeValue:
        policy = self.policy
        if policy.uses_comments:
            encrypted = policy.encrypted(path, stack, is_comment)
        else:
            encrypted = policy._decision[bits]  # policy.path_encrypted(path), from the path's bits
        if self.decrypting:
            return self._decrypt_leaf(node, encrypted, is_comment, aad)
        return self._encrypt_leaf(node, encrypted, is_comment, aad)

    def _encrypt_leaf(self, node: TreeValue, encrypted: bool, is_comment: bool, aad: str) -> TreeValue:
        plain, type_tag = to_bytes(node)
        if not is_comment and (encrypted or not self.mac_only):
            self.hash.update(plain)
        if not encrypted:
            return node
        if not plain and type_tag in ("str", "comment"):
            # sops does not encrypt empty values; an empty comment comes back as
            # an empty *string*: "#" in a mapping, but `- ""` inside a list.
            return ""
        if self.raw_strings and type(node) is bytes and not self.cipher.iv_cache:
            # a store that writes ENC[] pieces as they are (binary): no str of a large value
            return self.cipher.encrypt_pieces(plain, aad)
        enc = self.cipher.encrypt_bytes(plain, type_tag, aad)
        if is_comment and self.policy.unenc_comment_re is not None and self.policy.unenc_comment_re(enc):
            raise SopsError(
                errors.ERROR_ENCRYPTING_TREE,
                "Error encrypting tree: an encrypted comment matches unencrypted_comment_regex; "
                "make sure the regex cannot match encrypted comments",
            )
        return enc

    def _decrypt_leaf(self, node: TreeValue, encrypted: bool, is_comment: bool, aad: str) -> TreeValue:
        value: TreeValue
        if encrypted:
            if is_comment and not node.text:
                # sops "decrypts" an empty comment to an empty string, which
                # stays "#" in a mapping but becomes `- ""` inside a list.
                value = ""
            elif is_comment:
                try:
                    value = self.cipher.decrypt(node.text, aad)
                except SopsError:
                    # A plain comment where an encrypted one is expected: files
                    # from old sops versions did not encrypt comments.
                    value = node
            elif type(node) is str:
                if node == "":
                    value = ""
                else:
                    plain, type_tag = self.cipher.decrypt_bytes(node, aad)
                    if type_tag == "str":
                        # to_bytes(value) would give back exactly ``plain``
                        # (surrogateescape round-trips); skip re-encoding it.
                        self.hash.update(plain)
                        return plain if self.raw_strings else plain.decode("utf-8", "surrogateescape")
                    value = from_bytes(plain, type_tag)
            elif type(node) is SealedValue:
                # the binary store's whole-file value, decoded from the file's bytes
                plain = self.cipher.decrypt_sealed(node, aad)
                self.hash.update(plain)
                return plain if self.raw_strings else plain.decode("utf-8", "surrogateescape")
            else:
                # sops 3.11 crashes here (exit 2); we say what is wrong instead.
                raise SopsError(
                    errors.COULD_NOT_READ_INPUT_FILE,
                    f"Error decrypting tree: the value at {aad[:-1]!r} is a plain "
                    f"{type(node).__name__} where an encrypted value is expected",
                )
        else:
            # a SealedValue the metadata says is not encrypted is its ENC[] text, as read
            value = node if type(node) is not SealedValue else node.text()
        if (encrypted or not self.mac_only) and type(value) is not Comment:
            self.hash.update(to_bytes(value)[0])
        return value

    def _decrypt_list_comment(self, item: str, aad: str) -> Comment:
        value = self.cipher.decrypt(item, aad)
        if type(value) is not Comment:  # pragma: no cover - guarded by _is_encrypted_comment
            raise SopsError(errors.ERROR_DECRYPTING_TREE, "Error decrypting tree: bad comment item")
        return value

    def digest(self) -> str:
        return self.hash.hexdigest().upper()


def _is_encrypted_comment(text: str) -> bool:
    return text.startswith(PREFIX) and text.rstrip().endswith(",type:comment]")


def encrypt_branches(branches: Branches, cipher: Cipher, meta: Metadata,
                     raw_strings: bool = False) -> tuple[Branches, str]:
    """Encrypt every selected value; returns the new branches and the MAC (hex).
    ``raw_strings``: a ``bytes`` value (binary store, ``load_plain_raw``) becomes
    :class:`~sopsflow.tree.EncryptedPieces` rather than a ``str``, for a store
    that can write them (``dump_encrypted_pieces``)."""
    walker = _Walker(Policy(meta), cipher, meta.mac_only_encrypted, decrypting=False, raw_strings=raw_strings)
    out = [walker.root(b) for b in branches]
    return out, walker.digest()


def decrypt_branches(branches: Branches, cipher: Cipher, meta: Metadata,
                     raw_strings: bool = False) -> tuple[Branches, str]:
    """Decrypt every selected value; returns the plaintext branches and the MAC (hex)
    computed over them. ``raw_strings``: string values stay the decrypted bytes
    (for the binary store's output, which writes them as they are)."""
    walker = _Walker(Policy(meta), cipher, meta.mac_only_encrypted, decrypting=True, raw_strings=raw_strings)
    out = [walker.root(b) for b in branches]
    return out, walker.digest()


def encrypt_mac(cipher: Cipher, mac_hex: str, lastmodified: str) -> str:
    return cipher.encrypt_bytes(mac_hex.encode(), "str", lastmodified_aad(lastmodified))


def verify_mac(cipher: Cipher, meta: Metadata, computed: str) -> None:
    """Compare the stored MAC with the computed one in constant time."""
    if not meta.mac:
        raise SopsError(errors.MAC_MISMATCH, "MAC mismatch. File has no MAC")
    try:
        stored = cipher.decrypt(meta.mac, lastmodified_aad(meta.lastmodified))
    except SopsError:
        raise SopsError(errors.MAC_MISMATCH, "Cannot decrypt MAC: the MAC or lastmodified was altered") from None
    # the stored MAC decrypts to any bytes a key holder chose: compare them as bytes
    if not isinstance(stored, str) or not compare_digest(stored.encode("utf-8", "surrogateescape"),
                                                               computed.encode()):
        raise SopsError(
            errors.MAC_MISMATCH,
            "MAC mismatch: the file was modified outside sops (values, lastmodified or mac changed)",
        )
