"""Faults in the run's lifetime: values that broke it, moments when a signal or a deadline
left a server, its helpers or its files behind, a watcher that could remove what was no longer
ours, and a restart that imported what it should not."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ana_headless.glchoice import Setup
from ana_headless.lifetime import FORWARDED_SIGNALS, Watcher
from tests.conftest import ANA_HEADLESS, ana_env, leftovers, run_ana
from tests.security.conftest import in_private_tmp, left_behind


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e10", "3601"])
@pytest.mark.parametrize("given", ["option", "environment"])
def test_a_timeout_that_is_not_a_finite_number_in_range_is_a_usage_error(
    value: str, given: str
) -> None:
    args, env = ["exec", "--timeout", value, "true"], ana_env()
    if given == "environment":
        args, env = ["exec", "true"], ana_env(ANA_HEADLESS_TIMEOUT=value)
    result = run_ana(args, env=env, timeout=30)
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "Traceback" not in err and "internal error" not in err
    assert err.strip().splitlines()[-1].startswith("Error: Invalid value for '--timeout'")
    assert "at most 3600" in err


def test_a_fault_while_the_child_runs_kills_and_reaps_the_child(tmp_path: Path) -> None:
    """Not only a failing server: any exception in the supervisor (a fault of ours) must take
    the child down with it, never leave it running on a display that is going away."""
    from ana_headless.launcher import supervise

    pid_file = tmp_path / "child.pid"

    class FaultyServer:
        ready = False
        # A deadline long past: the supervisor checks the server at once, and again.
        deadline = time.monotonic()

        def check(self) -> bool:
            if pid_file.exists() and pid_file.read_text().strip():
                raise RuntimeError("a fault of ours")
            return False

    class Display:
        server = FaultyServer()
        watcher = Watcher(str(tmp_path / "removed-if-we-die"))

    setup = Setup(
        env=dict(os.environ),
        prefix=(),
        chosen=None,  # type: ignore[arg-type]
        attempts=(),
    )
    try:
        with pytest.raises(RuntimeError, match="a fault of ours"):
            supervise(["sh", "-c", f'echo $$ > "{pid_file}"; exec sleep 60'], setup, Display())  # type: ignore[arg-type]
    finally:
        Display.watcher.close()
    assert not os.path.exists(f"/proc/{pid_file.read_text().strip()}"), "killed and reaped"


# Interrupts the launcher the moment its X server is spawned, before anything else runs. Its
# SIGINT is as a terminal's ^C finds it: a suite run as a shell's background job inherits
# SIGINT ignored, which the launcher keeps ignoring (nohup). The signals in `blocked` are
# blocked first, as a parent may leave them (a signal mask survives exec).
INTERRUPT_AT_SPAWN = """\
import os, signal, sys
from ana_headless import entry, xserver

signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_BLOCK, {blocked})
real_spawn = xserver.spawn

def spawn_then_interrupt(argv, **options):
    pid = real_spawn(argv, **options)
    if any(os.path.basename(part) == "Xvfb" for part in argv):
        os.kill(os.getpid(), signal.SIGINT)
    return pid

xserver.spawn = spawn_then_interrupt
sys.argv = ["ana-headless", "exec", "true"]
entry.main()
"""


@pytest.mark.parametrize(
    "blocked", [(), FORWARDED_SIGNALS], ids=["mask-as-given", "forwarded-signals-blocked"]
)
def test_an_interrupt_right_after_the_server_is_spawned_leaves_nothing(
    blocked: tuple[int, ...],
) -> None:
    before = leftovers()
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPT_AT_SPAWN.format(blocked=list(blocked))],
        env=ana_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 130, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    deadline = time.monotonic() + 5
    while leftovers() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leftovers() - before, "the server and its files were stopped and removed"


# A ^C that came while the launcher's parent had SIGINT blocked: pending as the launcher starts.
INTERRUPTED_WHILE_BLOCKED = """\
import os, signal, sys
from ana_headless import entry

signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
os.kill(os.getpid(), signal.SIGINT)
sys.argv = ["ana-headless", "exec", "true"]
entry.main()
"""


def test_an_interrupt_that_waited_in_a_blocked_mask_ends_the_run_with_130() -> None:
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_WHILE_BLOCKED],
        env=ana_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (130, b"")


# Runs its command with these signals blocked, as a parent may leave them.
BLOCKING_PARENT = """\
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {blocked})
os.execv(sys.argv[1], sys.argv[1:])
"""
# Says which signals it has blocked, then waits for one.
SAYS_ITS_MASK = """\
import signal, time
print(*sorted(map(int, signal.pthread_sigmask(signal.SIG_BLOCK, []))), flush=True)
time.sleep(60)
"""


def test_the_signals_a_parent_left_blocked_still_reach_the_child() -> None:
    """A ^C that the launcher forwards, or Jupyter's interrupt of a kernel (a SIGINT it sends
    itself), does nothing to a child that has SIGINT blocked; a child gets the mask of the
    launcher, which gets its parent's. The other blocked signals are the child's to keep."""
    usr1 = int(signal.SIGUSR1)
    parent = [sys.executable, "-c", BLOCKING_PARENT.format(blocked=[*FORWARDED_SIGNALS, usr1])]
    child = [sys.executable, "-c", SAYS_ITS_MASK]
    launcher = subprocess.Popen(
        [*parent, ANA_HEADLESS, "exec", *child],
        env=ana_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert launcher.stdout is not None
        assert launcher.stdout.readline().split() == [str(usr1).encode()]
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=30) == 128 + signal.SIGINT
    finally:
        # Its watcher stops the child and the server.
        launcher.kill()
        launcher.communicate()


def test_a_start_up_deadline_leaves_no_keymap_and_no_helper() -> None:
    """A server stopped at its deadline while its keymap compiler (xkbcomp) runs: the whole
    process group goes, and the keymap file that the server would have removed is removed."""
    script = "".join(
        f'"$ANA" exec -v --timeout {seconds} true; echo "status $?"\n'
        for seconds in (
            "0.02",
            "0.04",
            "0.06",
            "0.07",
            "0.08",
            "0.09",
            "0.1",
            "0.12",
            "0.15",
            "0.2",
        )
        for _ in range(2)
    )
    result = in_private_tmp(script + "ls /var/lib/xkb /tmp | grep xkm\n", timeout=180)
    statuses = re.findall(r"^status (\d+)$", result.stdout, re.MULTILINE)
    assert len(statuses) == 20 and set(statuses) <= {"0", "125"}, result.stderr
    assert "125" in statuses, "some runs did reach their deadline"
    assert "xkm" not in result.stdout.replace("LEFT:", ""), "a keymap file was left"
    assert not left_behind(result)
    # Display numbers are machine-wide (abstract sockets): a helper of one of ours is named.
    numbers = set(re.findall(r"display :(\d+)", result.stderr))
    helpers = [
        entry
        for entry in Path("/proc").glob("[0-9]*/cmdline")
        if any(f"server-{n}.xkm".encode() in _read(entry) for n in numbers)
    ]
    assert not helpers, "a helper of a stopped server is still running"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


# Registers two files with the watcher, then lets "a newer owner" replace one of them (a new
# inode under the same name) before this process dies.
WATCHED_THEN_KILLED = """\
import os, signal, sys
from ana_headless.lifetime import PrivateDirectory, Watcher

mine, theirs = sys.argv[1:3]
directory = PrivateDirectory(os.environ.get("TMPDIR"))
watcher = Watcher(directory.path)
watcher.remove_on_death([(path, os.stat(path).st_ino) for path in (mine, theirs)])
replacement = theirs + ".new"
open(replacement, "w").close()
os.replace(replacement, theirs)
print(directory.path, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_watcher_removes_only_what_is_still_ours(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.touch()
    theirs.touch()
    result = subprocess.run(
        [sys.executable, "-c", WATCHED_THEN_KILLED, str(mine), str(theirs)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    private_dir = result.stdout.strip()
    deadline = time.monotonic() + 5
    while os.path.exists(private_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert private_dir and not os.path.exists(private_dir), result.stderr
    assert not mine.exists(), "our file, unchanged, was removed"
    assert theirs.exists(), "the newer owner's file was left alone"


PLANTED = "open('/tmp/planted-ran', 'a').write(__name__ + '\\n')\n"
SCRIPT = """\
from PyQt5 import QtGui  # too late for an in-place set-up: ensure_headless() restarts
import ana_headless
print("reexec:", ana_headless.ensure_headless().reexec)
"""


def test_the_restarted_launcher_imports_nothing_from_the_working_directory() -> None:
    """`python /app/script.py` run from a directory holding mmap.py or json.py does not import
    them; the launcher that ensure_headless() restarts into must not either."""
    planted = " ".join(
        f"/tmp/planted/{name}.py"
        for name in ("mmap", "json", "select", "shlex", "struct", "signal", "socket")
    )
    result = in_private_tmp(f"""
mkdir /tmp/planted /tmp/app
for module in {planted}; do printf '%s' {PLANTED!r} > $module; done
cat > /tmp/app/script.py <<'EOF'
{textwrap.dedent(SCRIPT)}EOF
cd /tmp/planted && {sys.executable} /tmp/app/script.py; echo "status $?"
echo "planted modules run: $(cat /tmp/planted-ran 2>/dev/null | tr '\\n' ' ')"
rm -rf /tmp/planted /tmp/app /tmp/planted-ran
""")
    assert "status 0" in result.stdout, result.stderr
    assert "reexec: True" in result.stdout
    assert re.search(r"^planted modules run: *$", result.stdout, re.MULTILINE), result.stdout
    assert not left_behind(result)
