"""Another user who can write where we work (a shared TMPDIR, /tmp/.X11-unix), a signal to the
whole process group at any moment of start-up, a TMPDIR that runs out of room half-way, a
fault of ours right after the server's spawn: nothing of anybody's is deleted or handed over,
and nothing of ours is left."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ana_env, ours_running
from tests.security.conftest import in_private_tmp, left_behind

# The attacker's swap, as the review did it: our private directory renamed away, and a link to
# the victim's files put in its place, while the run is going on.
SWAP = """
as_nobody sh -c '
  for attempt in $(seq 100); do
    for dir in /tmp/shared/ana-headless-*; do
      [ -d "$dir" ] && mv "$dir" /tmp/shared/moved && ln -s /tmp/victim "$dir" && exit 0
    done
    sleep 0.02
  done'
"""


@pytest.mark.parametrize(
    "command",
    [
        '"$ANA" exec -v sleep 2',
        # ensure_headless() sets the process up in place, and cleans up at exit.
        f"{sys.executable} -c 'import ana_headless, time; ana_headless.ensure_headless(); "
        "time.sleep(2)'",
    ],
    ids=["launcher", "ensure_headless"],
)
def test_a_tmpdir_others_can_write_is_not_used_so_its_swap_deletes_nothing(command: str) -> None:
    result = in_private_tmp(f"""
mkdir -p /tmp/victim && echo precious > /tmp/victim/file
mkdir -m 0777 /tmp/shared
TMPDIR=/tmp/shared {command} &
{SWAP}
wait $!; echo "status $?"
cat /tmp/victim/file
ls -A /tmp/shared | sed 's/^/in shared: /'
""")
    assert "status 0" in result.stdout, result.stderr
    assert "precious" in result.stdout, "the victim's files were deleted through the link"
    assert "in shared:" not in result.stdout, "nothing of ours goes where others can swap it"
    if "exec" in command:
        assert "TMPDIR not used for the private directory" in result.stderr
        assert "/tmp/shared is writable by others and not sticky" in result.stderr
    assert not left_behind(result)


def test_a_signal_to_the_process_group_at_any_moment_of_start_up_leaves_nothing() -> None:
    """GNU timeout signals its whole process group; a watcher killed before its `trap ''`
    (4 of 150 runs did) left the lock, the socket and the private directory for good."""
    result = in_private_tmp(
        """
for run in $(seq 150); do
  timeout -s TERM "$(printf '0.%03d' $(( run % 60 + 1 )))" "$ANA" exec sleep 1
done
""",
        timeout=300,
    )
    assert not left_behind(result), result.stderr[-2000:]


def test_another_users_socket_directory_gets_no_socket_file_of_ours() -> None:
    """An /tmp/.X11-unix made and owned by another user could have our socket file swapped
    for theirs: the display then listens on its abstract socket alone."""
    result = in_private_tmp("""
mkdir -m 0755 /tmp/.X11-unix && chown 65534:65534 /tmp/.X11-unix
"$ANA" exec sh -c 'xdpyinfo > /dev/null && echo usable; ls -A /tmp/.X11-unix | sed "s/^/file: /"'
echo "status $?"
""")
    assert "status 0" in result.stdout and "usable" in result.stdout, result.stderr
    assert "file:" not in result.stdout


def test_a_tmpdir_that_runs_out_of_room_half_way_is_one_clear_line(mesa_dir: str) -> None:
    """Whichever private file the TMPDIR runs out of room for (the mesa mode's GLVND links
    are the last ones made), the run works or fails with one clear line, and leaves nothing."""
    result = in_private_tmp(f"""
mkdir /tmp/small
for inodes in $(seq 2 14); do
  mount -t tmpfs -o nr_inodes=$inodes,size=1m tmpfs /tmp/small
  TMPDIR=/tmp/small "$ANA" exec --gl mesa --mesa-dir {mesa_dir} true 2> /tmp/err
  echo "inodes $inodes status $? lines $(wc -l < /tmp/err) $(head -c 300 /tmp/err)"
  umount /tmp/small
done
""")
    outcomes = [line for line in result.stdout.splitlines() if line.startswith("inodes ")]
    assert len(outcomes) == 13, result.stdout + result.stderr
    for outcome in outcomes:
        assert " status 0 lines 0" in outcome or (
            " status 125 lines 1 ana-headless: cannot make the display's private files in "
            "/tmp/small: No space left on device" in outcome
        ), outcome
    assert " status 125 " in outcomes[0] and " status 0 " in outcomes[-1]
    assert not left_behind(result)


# A fault of ours right after the server's spawn, before its owner had a handle on it.
FAULT_AFTER_SPAWN = """
import os
from ana_headless import lifetime
from ana_headless.facts import gather
from ana_headless.options import options_from_environment
from ana_headless.plan import make_plan
from ana_headless.session import Session

def fail(*_args):
    raise RuntimeError("a fault right after the spawn")

lifetime.Watcher.kill_on_death = fail
options = options_from_environment(os.environ)
try:
    Session(make_plan(gather(os.environ, None), options))
except RuntimeError:
    print("failed as planned")
"""


def test_a_fault_right_after_the_servers_spawn_leaves_no_server() -> None:
    before = ours_running()
    result = subprocess.run(
        [sys.executable, "-c", FAULT_AFTER_SPAWN],
        env=ana_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "failed as planned", result.stderr
    assert not ours_running() - before


# BrainVISA 6's X server, as its conda package (neuro-forge `xvfb`) lays it out, emulated: its
# bin/Xvfb is this shell wrapper around Xvfb.bin (here Debian's Xvfb), with the environment's
# own keymaps in share/X11/xkb.
PIXI_PREFIX = """
prefix=/tmp/pixi-env/.pixi/envs/default
mkdir -p "$prefix/bin" "$prefix/share/X11"
cp /usr/bin/Xvfb "$prefix/bin/Xvfb.bin"
cp -r /usr/share/X11/xkb "$prefix/share/X11/xkb"
printf '#!/bin/sh\\nexec Xvfb.bin -xkbdir ${CONDA_PREFIX}/share/X11/xkb "$@"\\n' \\
  > "$prefix/bin/Xvfb"
chmod 755 "$prefix/bin/Xvfb"
"""


@pytest.mark.parametrize("conda_prefix", ["set", "unset"])
def test_brainvisas_xvfb_wrapper_is_seen_through(conda_prefix: str) -> None:
    """The wrapper execs a server that takes socket activation: the fast path is taken, from
    the environment's bin/ with CONDA_PREFIX set (activated) or not (a path called directly),
    and no keymap is left anywhere."""
    activate = 'export CONDA_PREFIX="$prefix"' if conda_prefix == "set" else "unset CONDA_PREFIX"
    result = in_private_tmp(
        PIXI_PREFIX
        + activate
        + """
export PATH="$prefix/bin:$PATH"
"$ANA" exec --dry-run true
"$ANA" exec sh -c 'xdpyinfo | grep -c "keycode range"'; echo "status $?"
ls /var/lib/xkb /tmp "$prefix/share/X11/xkb/compiled" 2>/dev/null | grep '\\.xkm$' \\
  | sed 's/^/keymap: /'
"""
    )
    assert "status 0" in result.stdout, result.stderr
    assert "server command: /tmp/pixi-env/.pixi/envs/default/bin/Xvfb" in result.stderr
    assert "on a display claimed for it, whose sockets it is given" in result.stderr
    assert "keymap:" not in result.stdout
    assert not left_behind(result)
