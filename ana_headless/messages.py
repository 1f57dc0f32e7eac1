"""The `ana_headless` logger, with the logging module imported only when a message is emitted.

Importing logging costs a run some milliseconds (benchmarks/README.md); a launcher run without -v
emits nothing. In a
script (the in-process API) every message goes to logging.getLogger("ana_headless") as usual,
once the script uses logging at all; the CLI sets `threshold`, under which messages are
dropped without importing anything.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
LOGGER_NAME = "ana_headless"


class LazyLogger:
    def __init__(self) -> None:
        self.threshold: int | None = None

    def _emit(self, level: int, message: str, *args: Any, **kwargs: Any) -> None:
        if self.threshold is not None and level < self.threshold:
            return
        if self.threshold is None and level < WARNING and "logging" not in sys.modules:
            # In a script that never imported logging, nothing could show this message (the
            # last-resort handler prints warnings and up): no need to import it.
            return
        import logging

        logging.getLogger(LOGGER_NAME).log(level, message, *args, **kwargs)

    def debug(self, message: str, *args: Any) -> None:
        self._emit(DEBUG, message, *args)

    def info(self, message: str, *args: Any) -> None:
        self._emit(INFO, message, *args)

    def warning(self, message: str) -> None:
        """A warning for the user, on stderr, whoever configured logging: it says what to fix
        (-q silences it)."""
        if self.threshold is not None and self.threshold > WARNING:
            return
        sys.stderr.write(f"ana-headless: warning: {message}\n")
        sys.stderr.flush()

    def exception(self, message: str) -> None:
        self._emit(ERROR, message, exc_info=True)


log = LazyLogger()


def configure_logging(verbose: int, quiet: bool) -> None:
    """The launcher's messages: on stderr, prefixed, at the level -v / -q ask for."""
    level = ERROR if quiet else (WARNING, INFO, DEBUG)[min(verbose, 2)]
    log.threshold = level
    if level >= WARNING:
        # Nothing under WARNING is emitted: leave the logging module unloaded.
        return
    import logging

    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ana-headless: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


# How much of a server's output a report quotes.
_LOG_TAIL = 2000


def log_tail(path: str) -> str:
    """The end of a log file (a server's output), for a report; empty when there is none."""
    try:
        with open(path, "rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, log_file.tell() - _LOG_TAIL))
            return log_file.read().decode(errors="replace").strip()
    except OSError:
        return ""
