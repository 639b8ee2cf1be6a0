"""Errors carrying the exit code the `sops` binary uses for the same failure."""

from __future__ import annotations

# Exit codes from sops' cmd/sops/codes (3.11), named as there.
GENERIC = 1
COULD_NOT_READ_INPUT_FILE = 2
COULD_NOT_WRITE_OUTPUT_FILE = 3
ERROR_DUMPING_TREE = 4
ERROR_READING_CONFIG = 5
INVALID_KMS_ENCRYPTION_CONTEXT_FORMAT = 6
INVALID_SET_FORMAT = 7
CONFLICTING_PARAMETERS = 8
ERROR_ENCRYPTING_MAC = 21
ERROR_ENCRYPTING_TREE = 23
ERROR_DECRYPTING_MAC = 24
ERROR_DECRYPTING_TREE = 25
CANNOT_CHANGE_KEYS_FROM_NON_EXISTENT_FILE = 49
MAC_MISMATCH = 51
MAC_NOT_FOUND = 52
CONFIG_FILE_NOT_FOUND = 61
KEYBOARD_INTERRUPT = 85
INVALID_TREE_PATH_FORMAT = 91
NEED_AT_LEAST_ONE_DOCUMENT = 92
NO_FILE_SPECIFIED = 100
NO_ENCRYPTION_KEY_FOUND = 111
DUPLICATE_DECRYPTION_KEY_TYPE = 112
COULD_NOT_RETRIEVE_KEY = 128
FILE_HAS_NOT_BEEN_MODIFIED = 200
NO_EDITOR_FOUND = 201
FAILED_TO_COMPARE_VERSIONS = 202
FILE_ALREADY_ENCRYPTED = 203


class SopsError(Exception):
    """A user-facing failure: the CLI prints `message` on one line and exits with `code`.

    Messages must never contain key material or plaintext values.
    """

    def __init__(self, code: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # Multi-line explanation printed after the message (e.g. the per-group
        # key failure report); may be None.
        self.detail = detail

    def __str__(self) -> str:
        return self.message


def working_directory_gone() -> bool:
    """Whether the process's working directory was deleted (relative paths
    then name nothing; sops fails with "getwd: no such file or directory")."""
    import os

    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    return False


def getwd_error() -> SopsError:
    """sops' error (exit 1) for a relative path in a deleted working directory."""
    return SopsError(GENERIC, "getwd: no such file or directory (the working directory was deleted)")
