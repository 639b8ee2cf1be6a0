"""Encrypt and decrypt a whole tree: the selection policy, the walk, the MAC.

Walk order, comment-stack handling and the MAC follow sops 3.11 exactly, with
one deliberate difference: an encrypted comment that sits inside a list (an
``ENC[...,type:comment]`` item) is treated as a comment when decrypting, so
files written under ``encrypted_comment_regex`` with comments in lists decrypt
(sops 3.11 fails on them with a MAC mismatch, upstream #2281).
"""

from __future__ import annotations

from collections.abc import Callable

from . import errors
from .cipher import PREFIX, Cipher, from_bytes, to_bytes
from .errors import SopsError
from .metadata import Metadata, lastmodified_aad
from .tree import Branches, Comment, SealedValue, TreeMap, TreeValue

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    pass

#: Fed into the MAC first when mac_only_encrypted is set: sha256("sops").
MAC_ONLY_ENCRYPTED_PREFIX = bytes.fromhex("8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69")

# hashlib and hmac load Python's own OpenSSL (~3 ms); the data key's AES-GCM
# has loaded cryptography's before any MAC is computed, so the MAC uses that
# one. The comparison is hmac.compare_digest's constant-time fallback, which
# needs no OpenSSL.
try:
    from _operator import _compare_digest as compare_digest
except ImportError:  # not CPython
    from hmac import compare_digest  # type: ignore[no-redef]


class _Sha512:
    """hashlib.sha512's update/hexdigest over cryptography's SHA-512."""

    __slots__ = ("update", "_finalize", "_hex")

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.hashes import SHA512, Hash

        ctx = Hash(SHA512())
        self.update = ctx.update
        self._finalize = ctx.finalize
        self._hex = ""

    def hexdigest(self) -> str:
        if not self._hex:  # hashlib's may be asked again; cryptography's context finalizes once
            self._hex = self._finalize().hex()
        return self._hex


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
    """One pass over the branches, producing new branches and the MAC digest."""

    def __init__(self, policy: Policy, cipher: Cipher, mac_only_encrypted: bool, decrypting: bool,
                 raw_strings: bool = False) -> None:
        self.policy = policy
        self.raw_strings = raw_strings
        self.cipher = cipher
        self.mac_only = mac_only_encrypted
        self.decrypting = decrypting
        self.hash = _Sha512()
        if mac_only_encrypted:
            self.hash.update(MAC_ONLY_ENCRYPTED_PREFIX)

    def branch(self, node: TreeMap, path: tuple[str, ...], stack: list[list[str]]) -> TreeMap:
        stack = stack + [[]]
        level = stack[-1]
        out = TreeMap()
        for entry in node:
            if type(entry) is Comment:
                level.append(entry.text)
                new = self.leaf(entry, path, stack, True)
                out.append(new if type(new) is Comment else Comment(new))
                continue
            key, value = entry
            if type(key) is not str:
                raise SopsError(
                    errors.ERROR_ENCRYPTING_TREE,
                    f"Error walking tree: Tree contains a non-string key (type {type(key).__name__}). "
                    "Only string keys are supported",
                )
            out.append((key, self.value(value, path + (key,), stack)))
            level.clear()
        return out

    def sequence(self, node: list[TreeValue], path: tuple[str, ...], stack: list[list[str]]) -> list[TreeValue]:
        stack = stack + [[]]
        level = stack[-1]
        out: list[TreeValue] = []
        for item in node:
            if type(item) is Comment:
                level.append(item.text)
                out.append(self.leaf(item, path, stack, True))
                continue
            if self.decrypting and type(item) is str and _is_encrypted_comment(item):
                comment = self._decrypt_list_comment(item, path)
                level.append(comment.text)
                out.append(comment)
                continue
            out.append(self.value(item, path, stack))
            level.clear()
        return out

    def value(self, node: TreeValue, path: tuple[str, ...], stack: list[list[str]]) -> TreeValue:
        kind = type(node)
        if kind is TreeMap:
            return self.branch(node, path, stack)
        if kind is list:
            return self.sequence(node, path, stack)
        if node is None:
            return None
        return self.leaf(node, path, stack, False)

    def leaf(self, node: TreeValue, path: tuple[str, ...], stack: list[list[str]], is_comment: bool) -> TreeValue:
        policy = self.policy
        if policy.uses_comments:
            encrypted = policy.encrypted(path, stack, is_comment)
        else:
            encrypted = policy.path_encrypted(path)
        if self.decrypting:
            return self._decrypt_leaf(node, path, encrypted, is_comment)
        return self._encrypt_leaf(node, path, encrypted, is_comment)

    def _encrypt_leaf(self, node: TreeValue, path: tuple[str, ...], encrypted: bool, is_comment: bool) -> TreeValue:
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
            return self.cipher.encrypt_pieces(plain, _aad(path))
        enc = self.cipher.encrypt_bytes(plain, type_tag, _aad(path))
        if is_comment and self.policy.unenc_comment_re is not None and self.policy.unenc_comment_re(enc):
            raise SopsError(
                errors.ERROR_ENCRYPTING_TREE,
                "Error encrypting tree: an encrypted comment matches unencrypted_comment_regex; "
                "make sure the regex cannot match encrypted comments",
            )
        return enc

    def _decrypt_leaf(self, node: TreeValue, path: tuple[str, ...], encrypted: bool, is_comment: bool) -> TreeValue:
        value: TreeValue
        if encrypted:
            aad = _aad(path)
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
                    f"Error decrypting tree: the value at {_aad(path)[:-1]!r} is a plain "
                    f"{type(node).__name__} where an encrypted value is expected",
                )
        else:
            # a SealedValue the metadata says is not encrypted is its ENC[] text, as read
            value = node if type(node) is not SealedValue else node.text()
        if (encrypted or not self.mac_only) and type(value) is not Comment:
            self.hash.update(to_bytes(value)[0])
        return value

    def _decrypt_list_comment(self, item: str, path: tuple[str, ...]) -> Comment:
        value = self.cipher.decrypt(item, _aad(path))
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
    out = [walker.branch(b, (), []) for b in branches]
    return out, walker.digest()


def decrypt_branches(branches: Branches, cipher: Cipher, meta: Metadata,
                     raw_strings: bool = False) -> tuple[Branches, str]:
    """Decrypt every selected value; returns the plaintext branches and the MAC (hex)
    computed over them. ``raw_strings``: string values stay the decrypted bytes
    (for the binary store's output, which writes them as they are)."""
    walker = _Walker(Policy(meta), cipher, meta.mac_only_encrypted, decrypting=True, raw_strings=raw_strings)
    out = [walker.branch(b, (), []) for b in branches]
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
