"""Loggers on demand.

Importing :mod:`logging` costs about 10 ms (it pulls in traceback, string,
threading...), which every ``sopsflow`` start - a commit hook included -
would pay although almost no run logs anything. Modules ask for their logger
through :func:`logger` when they have something to say.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)


if TYPE_CHECKING:
    import logging

_cli_level: int | None = None  # set by the command line; a library user configures logging itself
_configured = False

DEBUG, WARNING = 10, 30  # logging.DEBUG / logging.WARNING without the import


def configure_cli(verbose: bool) -> None:
    """The command line's choice: messages as ``[sopsflow] LEVEL: text`` on stderr."""
    global _cli_level
    _cli_level = DEBUG if verbose else WARNING


def logger(name: str = "sopsflow") -> logging.Logger:
    import logging

    global _configured
    if _cli_level is not None and not _configured:
        logging.basicConfig(level=_cli_level, format="[sopsflow] %(levelname)s: %(message)s")
        _configured = True
    return logging.getLogger(name)
