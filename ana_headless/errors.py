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


class Interrupted(HeadlessError):
    """A signal arrived while the display was being set up, before there was a child."""

    def __init__(self, signum: int) -> None:
        import signal  # only once interrupted: it imports enum

        super().__init__(f"interrupted by {signal.Signals(signum).name} during set-up")
        self.exit_status = 128 + signum


def error_lines(error: HeadlessError) -> str:
    """What a user reads: one line, then the details (a server's or a probe's output),
    indented; each prefixed as everything of ours on stderr is."""
    lines = [f"ana-headless: {error}"]
    lines += [f"ana-headless:   {line}" for line in error.details.splitlines()]
    return "\n".join(lines)


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
