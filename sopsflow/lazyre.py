"""Regular expressions compiled on first use instead of at import.

Compiling a pattern costs tens to hundreds of microseconds; a module that
compiles a dozen at import makes every command start later, although most
runs use few of them. ``compile_lazy`` returns a stand-in that compiles on its
first attribute access and then keeps the compiled pattern's bound methods in
its own ``__dict__``, so later calls cost what calls on a compiled pattern do.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import AnyStr


class _LazyPattern:
    def __init__(self, pattern: str | bytes, flags: int) -> None:
        self.__dict__["_args"] = (pattern, flags)

    def __getattr__(self, name: str) -> object:
        pattern, flags = self.__dict__["_args"]
        value = getattr(re.compile(pattern, flags), name)
        self.__dict__[name] = value
        return value


def compile_lazy(pattern: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:
    """``re.compile(pattern, flags)``, done when the pattern is first used."""
    return _LazyPattern(pattern, flags)  # type: ignore[return-value]


def import_yaml() -> None:
    """Import PyYAML with the patterns its modules compile at import (the
    reader's non-printable class alone takes ~4 ms; the resolver's and the
    constructor's ~1 ms more) compiled on first use instead. sopsflow drives
    libyaml's parser and resolves scalars itself, so most of them never run.
    Only ``re.compile`` calls made while PyYAML's modules execute are
    deferred, and a deferred pattern acts as the compiled one."""
    import sys

    if "yaml" in sys.modules:
        return
    compile_now = re.compile
    re.compile = compile_lazy  # type: ignore[assignment]
    try:
        import yaml  # noqa: F401
    finally:
        re.compile = compile_now
