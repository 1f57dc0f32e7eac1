"""The fast start: the display is claimed by us before Xvfb runs, the child starts while the
server initialises, and a server that then fails still ends the run with 125 and no child.
Real Xvfb throughout; a fake server (a wrapper script around the real one) only where a
server must fail on demand after a successful probe."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ana_headless.claim import claim_display, lock_path, socket_path
from ana_headless.ownership import listener_pid
from tests import leaks
from tests.conftest import ANA_HEADLESS, ana_env, run_ana
from tests.security.conftest import in_private_tmp, left_behind

# What the launcher process may import on the way to a cached-choice run: our modules and a
# few C extensions. Each of these would cost the child's start several milliseconds.
HEAVY = {
    "click",
    "dataclasses",
    "typing",
    "enum",
    "json",
    "re",
    "subprocess",
    "shutil",
    "contextlib",
    "inspect",
    "logging",
    "signal",
    "socket",
    "tempfile",
    "pathlib",
    "ctypes",
}


def test_a_run_with_a_cached_choice_imports_nothing_heavy(tmp_path: Path) -> None:
    env = ana_env(ANA_HEADLESS_PROBE_CACHE=str(tmp_path / "probes.marshal"))
    assert run_ana(["exec", "true"], env=env).returncode == 0
    result = run_ana(["exec", "true"], env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stderr.decode().splitlines()
    # What the interpreter's start imports (site, an editable install's hook) comes first.
    after_site = lines[next(i for i, line in enumerate(lines) if line.endswith("| site")) + 1 :]
    imported = {
        line.rsplit("|", 1)[1].strip() for line in after_site if line.startswith("import time:")
    }
    assert "ana_headless.launcher" in imported
    assert not imported & HEAVY


def test_claimed_display_is_ours_until_released() -> None:
    claim = claim_display()
    assert claim is not None
    try:
        path = socket_path(claim.number)
        assert listener_pid(b"\0" + path.encode()) == os.getpid()
        assert listener_pid(path) == os.getpid()
        assert int(Path(lock_path(claim.number)).read_text()) == os.getpid()
        other = claim_display()
        assert other is not None and other.number != claim.number
        other.release()
    finally:
        claim.release()
    assert not os.path.exists(path) and not os.path.exists(lock_path(claim.number))
    assert listener_pid(b"\0" + path.encode()) is None


# In a private /tmp (planted in the real one, they would race with other runs): a stale lock of
# a dead pid on :0, a stale socket file on :1. (Display numbers are machine-wide, through
# abstract sockets: the claim is any number but those two.)
STALE_FILES_OF_OTHERS = """
from pathlib import Path
from ana_headless.claim import claim_display, lock_path, socket_path

stale_lock, stale_socket = Path(lock_path(0)), Path(socket_path(1))
stale_lock.write_text(f"{2**22 + 7:>10}\\n")
stale_socket.parent.mkdir(mode=0o1777, exist_ok=True)
stale_socket.write_text("")
claim = claim_display()
claim.release()
print("claimed", claim.number not in (0, 1), stale_lock.exists(), stale_socket.exists())
stale_lock.unlink()
stale_socket.unlink()
"""


def test_stale_files_of_others_are_skipped_and_left_alone() -> None:
    result = in_private_tmp(f"{sys.executable} -c '{STALE_FILES_OF_OTHERS}'")
    assert "claimed True True True" in result.stdout, result.stderr
    assert not left_behind(result)


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_xvfb_runs_lock_scan_steps_over_our_display(tmp_path: Path) -> None:
    ready = tmp_path / "display"
    holder = subprocess.Popen(
        [ANA_HEADLESS, "exec", "sh", "-c", f'echo "$DISPLAY" > {ready}; exec sleep 30'],
        env=ana_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() or not ready.read_text().strip():
            assert time.monotonic() < deadline and holder.poll() is None
            time.sleep(0.05)
        ours = ready.read_text().strip().lstrip(":")
        other = subprocess.run(
            ["xvfb-run", "-a", "-n", ours, "sh", "-c", 'echo "$DISPLAY"'],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert other.returncode == 0, other.stderr.decode()
        assert other.stdout.decode().strip() not in ("", f":{ours}")
    finally:
        holder.terminate()
        holder.wait(30)


def fake_xvfb(tmp_path: Path) -> dict[str, str]:
    """An Xvfb that is the real one, unless FAKE_XVFB says to die or hang before it is
    ready: the only way to make a server fail after its GL probe was cached. It passes the
    socket-activation check (it names sd_listen_fds here) and hands the sockets on."""
    directory = tmp_path / "bin"
    directory.mkdir()
    fake = directory / "Xvfb"
    real = shutil.which("Xvfb")
    fake.write_text(
        "#!/bin/sh\n# takes the display's sockets as the real one does (sd_listen_fds)\n"
        'case "$FAKE_XVFB" in\n'
        "  die) echo 'Fatal server error: fake failure' >&2; sleep 0.5; exit 1 ;;\n"
        "  hang) echo 'stuck' >&2; exec sleep 60 ;;\n"
        # Still starting, alone: its keymap compiled (the file Xvfb reads, then removes).
        "  compiled) for a; do case $a in :*) number=${a#:} ;; esac; done\n"
        "            dir=/var/lib/xkb; [ -w $dir ] || dir=/tmp\n"
        '            echo "$dir/server-$number.xkm" > "$FAKE_XVFB_REPORT"\n'
        '            : > "$dir/server-$number.xkm"; while :; do :; done ;;\n'
        # Still starting, with a helper (as Xvfb runs xkbcomp); on SIGTERM it ends after it.
        "  helper) trap 'exit 0' TERM\n"
        """           sh -c 'echo $$ > "$FAKE_XVFB_REPORT"; exec sleep 2' ;;\n"""
        "esac\n"
        f'exec {real} "$@"\n'
    )
    fake.chmod(0o755)
    return ana_env(
        PATH=f"{directory}:{os.environ['PATH']}",
        ANA_HEADLESS_PROBE_CACHE=str(tmp_path / "probes.marshal"),
    )


CHILD = """\
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(60)
"""


@pytest.mark.parametrize(
    "failure, options, message",
    [
        ("die", [], "Xvfb exited with status 1 before it was ready"),
        ("hang", ["--timeout", "1"], "Xvfb was not ready within 1 s"),
    ],
)
def test_server_failing_after_the_child_started_is_125_and_kills_the_child(
    tmp_path: Path, failure: str, options: list[str], message: str
) -> None:
    env = fake_xvfb(tmp_path)
    assert run_ana(["exec", "true"], env=env).returncode == 0, "probe and cache the fake"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    pid_file = tmp_path / "child.pid"
    result = run_ana(
        ["run", *options, str(script), str(pid_file)], env={**env, "FAKE_XVFB": failure}, timeout=30
    )
    assert result.returncode == 125
    err = result.stderr.decode()
    assert message in err and ("fake failure" in err or "stuck" in err)
    assert pid_file.exists(), "the child had started while the server was starting"
    assert not os.path.exists(f"/proc/{pid_file.read_text()}"), "the child was killed"


def test_a_child_that_ends_first_does_not_wait_for_the_servers_start(tmp_path: Path) -> None:
    """No client can have had an answer from a server that is not ready: the run ends with
    the child's status, the server is killed unfinished, and nothing of it is left."""
    env = fake_xvfb(tmp_path)
    assert run_ana(["exec", "true"], env=env).returncode == 0, "probe and cache the fake"
    report = tmp_path / "keymap"
    result = run_ana(
        ["exec", "-v", "--timeout", "60", "sh", "-c", "exit 3"],
        env={**env, "FAKE_XVFB": "compiled", "FAKE_XVFB_REPORT": str(report)},
        timeout=30,
    )
    err = result.stderr.decode()
    assert result.returncode == 3, err
    assert "Xvfb killed while it was still starting" in err
    server = int(err.split("(xvfb pid ")[1].split(")")[0])
    number = err.split("display :")[1].split(" ")[0]
    assert not os.path.exists(f"/proc/{server}")
    assert not os.path.exists(report.read_text().strip()), "its keymap file was removed"
    assert not os.path.exists(lock_path(int(number)))
    assert not os.path.exists(socket_path(number))


def test_a_starting_server_and_its_helper_are_killed_together(tmp_path: Path) -> None:
    """A starting server runs a helper (the keymap compiler): it is killed with the server,
    as a member of the server's process group, never left orphaned."""
    env = fake_xvfb(tmp_path)
    assert run_ana(["exec", "true"], env=env).returncode == 0, "probe and cache the fake"
    report = tmp_path / "helper.pid"
    result = run_ana(
        ["exec", "-v", "sh", "-c", f'while [ ! -s "{report}" ]; do :; done'],
        env={**env, "FAKE_XVFB": "helper", "FAKE_XVFB_REPORT": str(report)},
        timeout=30,
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "Xvfb killed while it was still starting" in err
    # Killed with its parent, the helper is reaped by init: a moment later, not at once.
    helper = int(report.read_text())
    deadline = time.monotonic() + 3
    while leaks.alive(helper) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not leaks.alive(helper), "no orphaned helper"


def test_file_descriptors_given_to_the_launcher_reach_the_child(tmp_path: Path) -> None:
    """Like xvfb-run, env or nice, the launcher passes on the descriptors it was given."""
    out = tmp_path / "fd3.txt"
    result = subprocess.run(
        [
            "sh",
            "-c",
            f'exec 3>"{out}"; exec "$0" "$@"',
            ANA_HEADLESS,
            "exec",
            "sh",
            "-c",
            "echo to-fd-3 >&3",
        ],
        env=ana_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_text() == "to-fd-3\n"
