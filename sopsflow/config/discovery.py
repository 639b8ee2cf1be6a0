"""Finding `.sops.yaml`, with Go's path semantics, as sops 3.11 does it.

sops' `config/config.go` (FindConfigFile) walks from a directory upward, at most 100
levels, for a file named exactly ``.sops.yaml``; a ``.sops.yml`` seen on the way is
ignored with a warning. Paths are made absolute the way Go's ``filepath.Abs`` does it:
lexically, without resolving symbolic links.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from .. import errors
from ..errors import SopsError
from ..logs import logger

CONFIG_FILE_NAME = ".sops.yaml"

ALTERNATE_CONFIG_NAME = ".sops.yml"

MAX_DEPTH = 100


def go_clean(path: str) -> str:
    """Go ``filepath.Clean`` on POSIX: lexical, and ``//x`` becomes ``/x``
    (posixpath keeps exactly two leading slashes, Go does not)."""
    if path == "":
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def go_getwd() -> str:
    """Go ``os.Getwd``: ``$PWD`` when it names the current directory (so a
    symlinked cwd keeps its logical name, as in sops), else the real cwd."""
    pwd = os.environ.get("PWD", "")
    if pwd.startswith("/"):
        try:
            if os.path.samestat(os.stat(pwd), os.stat(".")):
                return pwd
        except OSError:
            pass
    try:
        return os.getcwd()
    except FileNotFoundError:
        raise errors.getwd_error() from None


def go_abs(path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """Go ``filepath.Abs`` relative to ``cwd`` (default: the process cwd)."""
    text = os.fspath(path)
    if text.startswith("/"):
        return go_clean(text)
    base = go_abs(cwd) if cwd is not None else go_getwd()
    return go_clean(posixpath.join(base, text))


def _exists(path: str) -> bool:
    # Go's os.Stat: follows symlinks, and a directory counts too (reading it
    # fails later, which load_config reports).
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def find_config(start: str | os.PathLike[str] = ".") -> Path | None:
    """The `.sops.yaml` sops would use when run in ``start``, as an absolute path.

    Like sops' LookupConfigFile: ``start``, ``start/..``, ... (100 directories),
    with Go's ``path.Join`` cleaning, so a relative ``start`` walks the real
    parents and an absolute one the lexical parents. A ``.sops.yml`` found on
    the way is reported through ``logging`` and otherwise ignored.
    """
    directory = go_clean(os.fspath(start))
    alternate = ""
    previous: tuple[int, int] | None = None
    for _ in range(MAX_DEPTH):
        # Past the root every further "/.." is the root again (sops stats
        # each of its 100 candidates; the answers cannot change): stop at the
        # first directory that is the one just searched.
        try:
            st = os.stat(directory)
            here: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            here = None
        if here is not None and here == previous:
            break
        previous = here
        candidate = go_clean(posixpath.join(directory, CONFIG_FILE_NAME))
        if _exists(candidate):
            if alternate:
                logger(__name__).warning(
                    'ignoring "%s" when searching for config file; the config file must be called "%s"; using "%s" instead',
                    alternate, CONFIG_FILE_NAME, candidate,
                )
            return Path(go_abs(candidate))
        if not alternate:
            other = go_clean(posixpath.join(directory, ALTERNATE_CONFIG_NAME))
            if _exists(other):
                alternate = other
        directory = go_clean(posixpath.join(directory, ".."))
    if alternate:
        logger(__name__).warning(
            'ignoring "%s" when searching for config file; the config file must be called "%s"',
            alternate, CONFIG_FILE_NAME,
        )
    return None


def locate_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The `.sops.yaml` in effect: ``explicit`` (``--config``), else
    ``$SOPS_CONFIG``, else the nearest one from the working directory upward.
    A named file that does not exist is sops' error; None when none is found."""
    named = explicit or os.environ.get("SOPS_CONFIG")
    if named:
        path = Path(named)
        if not path.exists():
            # sops' wording and exit code, whichever command (or none) follows the flag.
            raise SopsError(errors.GENERIC, f"could not read config file: open {os.fspath(named)}: no such file or directory")
        return path
    try:
        start = Path.cwd()
    except FileNotFoundError:
        return None  # a deleted working directory holds no config file; sops goes on without one
    return find_config(start)
