"""How ana_headless.anatomistsocket knows that a program listens on its port: real processes,
real sockets (the real Anatomist's own case is in tests/real_anatomist)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from ana_headless.anatomistsocket import (
    PortTaken,
    ProgramGone,
    free_loopback_port,
    wait_until_listening,
)

# A program that listens on a port (on every address, as Anatomist does) after a delay, the
# way Anatomist does some 0.5 s after its start, then waits to be killed.
LISTENER = """\
import socket, sys, time
time.sleep(float(sys.argv[2]))
server = socket.create_server(("", int(sys.argv[1])), family=socket.AF_INET6, dualstack_ipv6=True)
print("listening", time.monotonic(), flush=True)
time.sleep(60)
"""


def start(port: int, delay: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", LISTENER, str(port), str(delay)], stdout=subprocess.PIPE
    )


def test_returns_as_soon_as_the_program_listens() -> None:
    port = free_loopback_port()
    program = start(port, 0.4)
    try:
        wait_until_listening(port, program.pid, timeout=10)
        seen = time.monotonic()
        assert program.stdout is not None
        listened = float(program.stdout.readline().split()[1])
        assert 0 <= seen - listened < 0.1
    finally:
        program.kill()
        program.wait()


def test_a_program_that_exits_first_is_reported_at_once() -> None:
    program = subprocess.Popen([sys.executable, "-c", "pass"])
    started = time.monotonic()
    with pytest.raises(ProgramGone):
        wait_until_listening(free_loopback_port(), program.pid, timeout=10)
    assert time.monotonic() - started < 5
    program.wait()


def test_a_port_that_another_process_listens_on_is_reported() -> None:
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]
        program = start(port, 60)
        try:
            with pytest.raises(PortTaken):
                wait_until_listening(port, program.pid, timeout=10)
        finally:
            program.kill()
            program.wait()
