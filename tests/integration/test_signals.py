"""Signals reach the child; the server stops after it; a SIGKILLed launcher leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ANA_HEADLESS, ana_env, leftovers, still_ours

HANDLER = """\
import json, os, signal, sys, time
def handler(signum, frame):
    # The display must still be up when the child handles the signal.
    import subprocess
    alive = subprocess.run(["xdpyinfo"], capture_output=True).returncode == 0
    print(json.dumps({"signal": signum, "display_alive": alive}), flush=True)
    sys.exit(100 + signum)
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(sig, handler)
print(json.dumps({"pid": os.getpid(), "display": os.environ["DISPLAY"],
                  "xauthority": os.environ["XAUTHORITY"]}), flush=True)
while True:
    time.sleep(1)
"""


def start(tmp_path: Path, body: str = HANDLER) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    script = tmp_path / "child.py"
    script.write_text(body)
    launcher = subprocess.Popen(
        [ANA_HEADLESS, "run", str(script)], stdout=subprocess.PIPE, env=ana_env()
    )
    assert launcher.stdout is not None
    ready = json.loads(launcher.stdout.readline())
    return launcher, ready


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_signal_is_forwarded_and_server_outlives_the_child(
    tmp_path: Path, sig: signal.Signals
) -> None:
    launcher, _ready = start(tmp_path)
    launcher.send_signal(sig)
    assert launcher.stdout is not None
    report = json.loads(launcher.stdout.readline())
    assert report == {"signal": int(sig), "display_alive": True}
    assert launcher.wait(30) == 100 + sig


def process_of(private_dir: str, name: bytes) -> int:
    """The pid of the process called `name` (its program, or its $0: the server, the watcher)
    whose command line names `private_dir`."""
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        called = os.path.basename(argv[0]) == name or name in argv
        if called and any(private_dir.encode() in arg for arg in argv):
            return int(entry.name)
    raise AssertionError(f"no {name.decode()} for {private_dir}")


def test_sigkill_of_the_launcher_leaves_nothing_within_3_seconds(tmp_path: Path) -> None:
    before = leftovers()
    launcher, ready = start(tmp_path)
    number = ready["display"].lstrip(":")
    private_dir = os.path.dirname(ready["xauthority"])
    assert os.path.exists(private_dir)
    server = process_of(private_dir, b"Xvfb")
    launcher.kill()
    launcher.wait()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        alive = any(os.path.exists(f"/proc/{pid}") for pid in (ready["pid"], server))
        if not alive and leftovers() <= before:
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{ready['pid']}"), "the child outlived the launcher"
    assert not os.path.exists(f"/proc/{server}"), "the server outlived the launcher"
    assert not still_ours(f"/tmp/.X11-unix/X{number}"), "the server's socket remains"
    assert not os.path.exists(private_dir), "the private directory remains"
    assert leftovers() <= before


def test_a_run_whose_watcher_was_killed_still_ends_well(tmp_path: Path) -> None:
    launcher, ready = start(tmp_path)
    os.kill(
        process_of(os.path.dirname(ready["xauthority"]), b"ana-headless-cleanup"), signal.SIGKILL
    )
    launcher.send_signal(signal.SIGTERM)
    assert launcher.stdout is not None
    assert json.loads(launcher.stdout.readline())["display_alive"]
    assert launcher.wait(30) == 100 + signal.SIGTERM
