"""The probe cache is a shortcut, trusted no further than it must be (SPEC §7): never written
through a link or over anything but a regular file of ours, never read from a place others can
write, and never fatal, whatever the file holds."""

from __future__ import annotations

import os
import re
import sys

import pytest

from ana_headless.probecache import cache_path
from tests.security.conftest import in_private_tmp, left_behind

# Rewrites every entry of the cache file $1 with the Python expression $2 (of `entry`), into $3.
REWRITE = f"""\
rewrite() {{
  {sys.executable} -c '
import marshal, sys
entries = marshal.load(open(sys.argv[1], "rb"))
for key, entry in entries.items():
    entries[key] = eval(sys.argv[2], {{"entry": entry}})
marshal.dump(entries, open(sys.argv[3], "wb"))
' "$@"
}}
"""


@pytest.mark.parametrize("setting", ["0", "off", "/dev/null"])
def test_the_cache_can_be_turned_off_without_naming_a_file_to_write(setting: str) -> None:
    assert cache_path({"ANA_HEADLESS_PROBE_CACHE": setting, "HOME": "/home/user"}) is None


def test_without_home_the_cache_is_in_the_users_home_never_at_the_root() -> None:
    """cron and services may start us without HOME: root once wrote /.cache/ana-headless."""
    import pwd

    home = pwd.getpwuid(os.getuid()).pw_dir
    expected = (
        os.path.join(home, ".cache", "ana-headless", "probes.marshal")
        if home not in ("", "/")
        else None
    )
    assert cache_path({}) == expected
    assert cache_path({"HOME": "/"}) is None
    assert cache_path({"HOME": "relative"}) == expected


def test_a_device_node_named_as_the_cache_is_never_replaced() -> None:
    result = in_private_tmp("""
mkdir -m 700 /tmp/cache && mknod -m 666 /tmp/cache/node c 1 3
ANA_HEADLESS_PROBE_CACHE=/tmp/cache/node "$ANA" exec -v true; echo "status $?"
stat -c 'kind: %F' /tmp/cache/node
""")
    assert "status 0" in result.stdout, result.stderr
    assert "kind: character special file" in result.stdout
    assert "/tmp/cache/node is not a regular file" in result.stderr
    assert not left_behind(result)


@pytest.mark.parametrize(
    "directory",
    [
        "mkdir -m 777 /tmp/shared",
        "mkdir -m 755 /tmp/shared && chown nobody /tmp/shared",
    ],
    ids=["writable-by-all", "another-users"],
)
def test_a_link_planted_by_another_user_is_not_followed(directory: str) -> None:
    """The temporary file's name once was the cache's name and our pid: an attacker who
    planted a link there made root overwrite any file."""
    result = in_private_tmp(
        directory
        + """
mkdir -m 700 /tmp/root-only && echo precious > /tmp/root-only/target
bash -c '
  as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
  for name in probes.marshal probes.marshal.$$; do
    as_nobody ln -s /tmp/root-only/target /tmp/shared/$name
  done
  ANA_HEADLESS_PROBE_CACHE=/tmp/shared/probes.marshal exec "$ANA" exec -v true'
echo "status $?"
echo "target: $(cat /tmp/root-only/target)"
"""
    )
    assert "status 0" in result.stdout, result.stderr
    assert "target: precious" in result.stdout
    assert "probe cache not used: its directory /tmp/shared is" in result.stderr
    assert not left_behind(result)


@pytest.mark.parametrize(
    "planted",
    [
        "mkdir -m 755 /tmp/theirs && chown nobody /tmp/theirs && cp /tmp/mine/planted /tmp/theirs/",
        "mkdir -m 700 /tmp/theirs && cp /tmp/mine/planted /tmp/theirs/ "
        "&& chown nobody /tmp/theirs/planted",
    ],
    ids=["in-their-directory", "their-file-in-ours"],
)
def test_another_users_cache_is_not_trusted(planted: str) -> None:
    result = in_private_tmp(
        REWRITE
        + """
mkdir -m 700 /tmp/mine
ANA_HEADLESS_PROBE_CACHE=/tmp/mine/probes.marshal "$ANA" exec true || echo "first run failed"
rewrite /tmp/mine/probes.marshal \
  '{**entry, "report": {**entry["report"], "renderer": "planted renderer"}}' /tmp/mine/planted
"""
        + planted
        + """
ANA_HEADLESS_PROBE_CACHE=/tmp/theirs/planted \
  "$ANA" exec -v sh -c 'echo "renderer: $ANA_HEADLESS_RENDERER"'
"""
    )
    assert "first run failed" not in result.stdout, result.stderr
    assert "renderer: " in result.stdout and "planted" not in result.stdout
    assert "probe cache not used:" in result.stderr
    assert not left_behind(result)


@pytest.mark.parametrize(
    "odd",
    [
        '{**entry, "report": ["odd"]}',
        '{**entry, "report": "odd"}',
        '{**entry, "ok": "yes"}',
        '{**entry, "report": {"renderer": {"nested": 1}}}',
    ],
)
def test_an_entry_of_odd_types_costs_a_probe_not_the_run(odd: str) -> None:
    result = in_private_tmp(
        REWRITE
        + f"""
mkdir -m 700 /tmp/mine
export ANA_HEADLESS_PROBE_CACHE=/tmp/mine/probes.marshal
"$ANA" exec true || echo "first run failed"
rewrite /tmp/mine/probes.marshal '{odd}' /tmp/mine/probes.marshal
"$ANA" exec -v sh -c 'echo "renderer: $ANA_HEADLESS_RENDERER"'; echo "status $?"
"""
    )
    assert "first run failed" not in result.stdout, result.stderr
    assert "status 0" in result.stdout, result.stderr
    assert re.search(r"^renderer: \S", result.stdout, re.MULTILINE), "a probe ran again"
    assert "[cached probe]" not in result.stderr, "the odd entry was used"
    assert not left_behind(result)


def test_a_fifo_as_the_cache_neither_hangs_nor_is_written() -> None:
    result = in_private_tmp(
        """
mkdir -m 700 /tmp/mine && mkfifo /tmp/mine/probes.marshal
ANA_HEADLESS_PROBE_CACHE=/tmp/mine/probes.marshal timeout 20 "$ANA" exec -v true
echo "status $?"
stat -c 'kind: %F' /tmp/mine/probes.marshal
""",
        timeout=60,
    )
    assert "status 0" in result.stdout, result.stderr
    assert "kind: fifo" in result.stdout
    assert not left_behind(result)


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        # A private directory of ours in one that others may rename entries of.
        (
            "mkdir -m 777 /tmp/shared && mkdir -m 700 /tmp/shared/cache",
            "the way to its directory /tmp/shared/cache: /tmp/shared is writable by others "
            "and not sticky",
        ),
        # A predictable name in /tmp, taken first by another user's link to a directory of ours.
        (
            "as_nobody ln -s /tmp/root-only /tmp/shared",
            "the way to its directory /tmp/shared/cache: /tmp/shared is another user's link",
        ),
    ],
    ids=["unsafe-parent", "their-link-as-the-directory"],
)
def test_the_caches_directory_is_reached_only_through_safe_directories(
    setup: str, said: str
) -> None:
    result = in_private_tmp(f"""
mkdir -m 700 /tmp/root-only && mkdir -m 700 /tmp/root-only/cache
{setup}
ANA_HEADLESS_PROBE_CACHE=/tmp/shared/cache/probes.marshal "$ANA" exec -v true; echo "status $?"
ls -A /tmp/root-only/cache /tmp/shared/cache 2>/dev/null | grep probes || echo "no cache written"
""")
    assert "status 0" in result.stdout, result.stderr
    assert f"probe cache not used: {said}" in result.stderr
    assert "no cache written" in result.stdout
    assert not left_behind(result)
