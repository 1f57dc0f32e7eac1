"""The error hierarchy: each error carries the exit status of SPEC §4."""

from __future__ import annotations


class HeadlessError(Exception):
    """Base of every error ana-headless reports; `exit_status` is what the CLI exits with."""

    exit_status = 125

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message)
        # Longer output (a server's stderr tail, a probe's output) shown under the one-line message.
        self.details = details


class UsageError(HeadlessError):
    exit_status = 2


class SetupError(HeadlessError):
    """No working headless display or OpenGL could be given (125)."""


class ProgramNotFound(HeadlessError):
    exit_status = 127


class ProgramNotRunnable(HeadlessError):
    exit_status = 126


# SPEC §4, for --help and the man page.
EXIT_STATUSES = (
    ("the child's own", "the child exited normally"),
    ("128+N", "the child was killed by signal N"),
    ("2", "usage error"),
    (
        "125",
        "ana-headless could not give a working headless display or OpenGL; the message "
        "says what was tried and what each attempt printed",
    ),
    ("126", "the script or program exists but cannot be run"),
    ("127", "the script or program was not found"),
)
