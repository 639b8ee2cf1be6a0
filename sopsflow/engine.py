"""Encrypt and decrypt a whole tree: the selection policy, the walk, the MAC.

Walk order, comment-stack handling and the MAC follow sops 3.11 exactly, with
one deliberate difference: an encrypted comment that sits inside a list (an
``ENC[...,type:comment]`` item) is treated as a comment when decrypting, so
files written under ``encrypted_comment_regex`` with comments in lists decrypt
(sops 3.11 fails on them with a MAC mismatch, upstream #2281).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Callable

from . import errors
from .cipher import PREFIX, Cipher, to_bytes
from .errors import SopsError
from .metadata import Metadata, lastmodified_aad
from .tree import Branches, Comment, TreeMap

#: Fed into the MAC first when mac_only_encrypted is set: sha256("sops").
MAC_ONLY_ENCRYPTED_PREFIX = hashlib.sha256(b"sops").digest()


def _regex_search(pattern: str) -> Callable[[str], bool]:
    """Go RE2 semantics (unanchored search), as sops evaluates these options."""
    import re2

    try:
        compiled = re2.compile(pattern)
    except Exception:  # re2 raises its own error type
        raise SopsError(errors.GENERIC, f"invalid regular expression {pattern!r}") from None
    return lambda text: compiled.search(text) is not None


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
        self._path_cache: dict[tuple[str, ...], bool] = {}

    def path_encrypted(self, path: tuple[str, ...]) -> bool:
        cached = self._path_cache.get(path)
        if cached is not None:
            return cached
        result = True
        if self.unenc_suffix and any(p.endswith(self.unenc_suffix) for p in path):
            result = False
        if self.enc_suffix:
            result = any(p.endswith(self.enc_suffix) for p in path)
        if self.unenc_re is not None and any(self.unenc_re(p) for p in path):
            result = False
        if self.enc_re is not None:
            result = any(self.enc_re(p) for p in path)
        self._path_cache[path] = result
        return result

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

    def __init__(self, policy: Policy, cipher: Cipher, mac_only_encrypted: bool, decrypting: bool) -> None:
        self.policy = policy
        self.cipher = cipher
        self.mac_only = mac_only_encrypted
        self.decrypting = decrypting
        self.hash = hashlib.sha512()
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

    def sequence(self, node: list[Any], path: tuple[str, ...], stack: list[list[str]]) -> list[Any]:
        stack = stack + [[]]
        level = stack[-1]
        out: list[Any] = []
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

    def value(self, node: Any, path: tuple[str, ...], stack: list[list[str]]) -> Any:
        kind = type(node)
        if kind is TreeMap:
            return self.branch(node, path, stack)
        if kind is list:
            return self.sequence(node, path, stack)
        if node is None:
            return None
        return self.leaf(node, path, stack, False)

    def leaf(self, node: Any, path: tuple[str, ...], stack: list[list[str]], is_comment: bool) -> Any:
        policy = self.policy
        if policy.uses_comments:
            encrypted = policy.encrypted(path, stack, is_comment)
        else:
            encrypted = policy.path_encrypted(path)
        if self.decrypting:
            return self._decrypt_leaf(node, path, encrypted, is_comment)
        return self._encrypt_leaf(node, path, encrypted, is_comment)

    def _encrypt_leaf(self, node: Any, path: tuple[str, ...], encrypted: bool, is_comment: bool) -> Any:
        plain, type_tag = to_bytes(node)
        if not is_comment and (encrypted or not self.mac_only):
            self.hash.update(plain)
        if not encrypted:
            return node
        if type_tag == "str" and not plain:
            return node  # sops leaves empty strings as they are
        enc = self.cipher.encrypt_bytes(plain, type_tag, _aad(path))
        if is_comment and self.policy.unenc_comment_re is not None and self.policy.unenc_comment_re(enc):
            raise SopsError(
                errors.ERROR_ENCRYPTING_TREE,
                "Error encrypting tree: an encrypted comment matches unencrypted_comment_regex; "
                "make sure the regex cannot match encrypted comments",
            )
        return enc

    def _decrypt_leaf(self, node: Any, path: tuple[str, ...], encrypted: bool, is_comment: bool) -> Any:
        if encrypted:
            aad = _aad(path)
            if is_comment:
                try:
                    value: Any = self.cipher.decrypt(node.text, aad)
                except SopsError:
                    # A plain comment where an encrypted one is expected: files
                    # from old sops versions did not encrypt comments.
                    value = node
            elif type(node) is str:
                value = "" if node == "" else self.cipher.decrypt(node, aad)
            else:
                # sops 3.11 crashes here (exit 2); we say what is wrong instead.
                raise SopsError(
                    errors.COULD_NOT_READ_INPUT_FILE,
                    f"Error decrypting tree: the value at {_aad(path)[:-1]!r} is a plain "
                    f"{type(node).__name__} where an encrypted value is expected",
                )
        else:
            value = node
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


def encrypt_branches(branches: Branches, cipher: Cipher, meta: Metadata) -> tuple[Branches, str]:
    """Encrypt every selected value; returns the new branches and the MAC (hex)."""
    walker = _Walker(Policy(meta), cipher, meta.mac_only_encrypted, decrypting=False)
    out = [walker.branch(b, (), []) for b in branches]
    return out, walker.digest()


def decrypt_branches(branches: Branches, cipher: Cipher, meta: Metadata) -> tuple[Branches, str]:
    """Decrypt every selected value; returns the plaintext branches and the MAC (hex)
    computed over them."""
    walker = _Walker(Policy(meta), cipher, meta.mac_only_encrypted, decrypting=True)
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
    if not isinstance(stored, str) or not hmac.compare_digest(stored.encode(), computed.encode()):
        raise SopsError(
            errors.MAC_MISMATCH,
            "MAC mismatch: the file was modified outside sops (values, lastmodified or mac changed)",
        )
