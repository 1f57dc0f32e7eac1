"""The hostile and careless users' tests: each runs in a private mount namespace with its own
/tmp and /var/lib/xkb, so that nothing they plant, fill or break touches the machine. The
victim runs as root (these faults are about root's power, or about what another user can do
to root); the attacker's steps run as `nobody` through setpriv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ANA_HEADLESS, ROOT, ana_env

# Run first inside the namespace: the private mounts, and the attacker's identity. A checkout
# (and its virtualenv) that lives under /tmp, as a fresh clone may, stays visible there: the
# real /tmp is kept at /mnt for the moment it takes to bind those back.
_PREAMBLE = """\
set -u
mkdir -p /mnt && mount --rbind /tmp /mnt
mount -t tmpfs -o mode=1777 tmpfs /tmp
for kept in $KEEP; do
  case $kept in /tmp/*) mkdir -p "$kept" && mount --rbind "/mnt${kept#/tmp}" "$kept" ;; esac
done
umount -l /mnt
mkdir -p /var/lib/xkb && mount -t tmpfs tmpfs /var/lib/xkb
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
"""
# Run last: what of ours is left in the private directories (the processes are visible from
# outside, to the suite's leak check). A killed run's watcher cleans up within moments.
_LEFTOVERS = """
for attempt in $(seq 60); do
  left=$(ls -d /tmp/ana-headless-* /tmp/.X*-lock /tmp/.X11-unix/X* /tmp/.tX* \\
         /var/lib/xkb/server-* /tmp/server-*.xkm 2>/dev/null)
  [ -z "$left" ] && break
  sleep 0.05
done
echo "LEFT:" $left
"""


def in_private_tmp(
    script: str, *, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a bash `script` as root in a private mount namespace; `$ANA` is ana-headless.
    Its stdout ends with a line "LEFT: ..." naming whatever of ours it left in /tmp."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.skip("needs root, unshare and setpriv (util-linux) for a private /tmp")
    return subprocess.run(
        ["unshare", "--mount", "bash", "-c", _PREAMBLE + script + _LEFTOVERS],
        env={**(env or ana_env()), "ANA": ANA_HEADLESS, "KEEP": f"{ROOT} {sys.prefix}"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def left_behind(result: subprocess.CompletedProcess[str]) -> str:
    """What the run left in its private /tmp (empty when nothing)."""
    lines = [line for line in result.stdout.splitlines() if line.startswith("LEFT:")]
    assert lines, f"the script did not finish: {result.stdout}\n{result.stderr}"
    return lines[-1].removeprefix("LEFT:").strip()
