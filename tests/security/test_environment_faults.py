"""A careless environment (SPEC §7): XAUTHORITY naming a FIFO or a huge file, TMPDIR relative,
missing or full, a lock draft name taken in advance. One clear line and 125 where nothing can
be done, a working run otherwise, and nothing left either way."""

from __future__ import annotations

import pytest

from tests.security.conftest import in_private_tmp, left_behind

SHOW_AUTH = """sh -c 'stat -c "auth size: %s" "$XAUTHORITY"'"""


@pytest.mark.parametrize(
    "make", ["mkfifo /tmp/auth", "truncate -s 256M /tmp/auth"], ids=["fifo", "huge"]
)
def test_an_xauthority_that_is_no_regular_small_file_is_ignored(make: str) -> None:
    result = in_private_tmp(
        f"""
{make}
XAUTHORITY=/tmp/auth timeout 30 "$ANA" exec {SHOW_AUTH}; echo "status $?"
rm -f /tmp/auth
""",
        timeout=90,
    )
    assert "status 0" in result.stdout, result.stderr
    size = int(result.stdout.split("auth size: ")[1].split()[0])
    assert size < 1024, "only our own cookie went into the child's Xauthority"
    assert not left_behind(result)


def test_a_relative_tmpdir_gives_the_child_absolute_paths() -> None:
    result = in_private_tmp("""
mkdir -p /tmp/work/relative && cd /tmp/work
TMPDIR=relative "$ANA" exec sh -c \
  'cd / && echo "xauthority: $XAUTHORITY" && test -r "$XAUTHORITY" && echo readable'
echo "status $?"
""")
    assert "status 0" in result.stdout, result.stderr
    assert "xauthority: /tmp/work/relative/ana-headless-" in result.stdout
    assert "readable" in result.stdout
    assert not left_behind(result)


@pytest.mark.parametrize(
    "setup, directory",
    [
        ("export TMPDIR=/tmp/missing", "/tmp/missing"),
        # A full /tmp: the private one made small, then filled up. (Remounted, not mounted
        # over: a checkout kept visible under /tmp must stay so.)
        ("mount -o remount,size=64k /tmp && (yes > /tmp/fill 2>/dev/null || :)", "/tmp"),
    ],
    ids=["missing", "full"],
)
def test_a_tmpdir_that_cannot_take_our_files_is_one_clear_line(setup: str, directory: str) -> None:
    result = in_private_tmp(f"""
{setup}
"$ANA" exec true; echo "status $?"
rm -f /tmp/fill
""")
    assert "status 125" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"ana-headless: cannot make the display's private files in {directory}: "
    )
    assert "internal error" not in result.stderr
    assert not left_behind(result)


def test_a_lock_draft_name_taken_in_advance_changes_nothing() -> None:
    """The lock is written under a draft name, then linked: another user who made every name
    we might draft in advance once turned our lock files off."""
    result = in_private_tmp("""
bash -c '
  setpriv --reuid=65534 --regid=65534 --clear-groups -- \\
    sh -c "for n in \\$(seq 0 99); do : > /tmp/.tX\\$n-lock-\\$1; done" sh $$
  exec "$ANA" exec sh -c "ls /tmp/.X\\${DISPLAY#:}-lock && echo locked"'
echo "status $?"
find /tmp -maxdepth 1 -name '.tX*' -user root
rm -f /tmp/.tX*
""")
    assert "status 0" in result.stdout, result.stderr
    assert "locked" in result.stdout
    assert not left_behind(result)


def test_a_lock_that_cannot_be_written_leaks_no_descriptor() -> None:
    """A full /tmp, with room for our private directory elsewhere: the run goes on without a
    lock file, and the draft's descriptor is not left open in the launcher."""
    result = in_private_tmp("""
mkdir /tmp/room /tmp/.X11-unix && chmod 1777 /tmp/.X11-unix && mount -t tmpfs tmpfs /tmp/room
mount -o remount,size=64k /tmp && (yes > /tmp/fill 2>/dev/null || true)
TMPDIR=/tmp/room "$ANA" exec sh -c 'ls -l /proc/$PPID/fd'; echo "status $?"
rm -f /tmp/fill
""")
    assert "status 0" in result.stdout, result.stderr
    assert ".tX" not in result.stdout, "the lock draft's descriptor is still open"
    assert not left_behind(result)
