"""Run a command inside a Debian root that `make debian13` built (scripts/debian-root.sh), with
this checkout's ana_headless importable there, as a container would run it:

    python3 tests/distros/inroot.py ROOT [--out DIR] [--env VAR=VALUE]... COMMAND [ARGS]...
    e.g. python3 tests/distros/inroot.py ~/.cache/ana-headless-vendor/debian13-weston \\
           python3 -m ana_headless exec glxinfo -B

The root is entered through new mount, PID and IPC namespaces and chroot (root only): the root
itself read-only, so that no run changes it; a private tmpfs for its /tmp, /run, /root (HOME),
/dev/shm and /var/lib/xkb (where X servers cache keymaps), so that nothing touches the host's
and all of it goes when the command ends; its own /proc; its /dev the few nodes the build made
(null, zero, full, random, urandom, tty, console, ptmx: no GPU). The checkout is bound read-only
at /opt/ana-headless and put on PYTHONPATH; DIR, if given, is bound writable at /mnt. The
environment is a fresh one, with ROOT_MARKER naming the root: every process started in it
carries that. When the command ends, the PID namespace ends, with whatever it left running.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent.parent
MOUNT_POINT = "/opt/ana-headless"
OUT = "/mnt"
ROOT_MARKER = "ANA_HEADLESS_TEST_ROOT"
# The root's own sh (as PID 1 of the namespace) waits for the command, so that the command is
# not the namespace's init. $1 the root, $2 the checkout, $3 the output directory or empty.
_ENTER = """\
set -eu
root=$1 checkout=$2 out=$3
shift 3
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
for dir in tmp:1777 run:0755 root:0700 dev/shm:1777 var/lib/xkb:0755; do
  mount -t tmpfs -o "mode=${dir#*:},nosuid" tmpfs "$root/${dir%:*}"
done
mount --bind "$checkout" "$root/opt/ana-headless"
mount -o remount,bind,ro "$root/opt/ana-headless"
if [ -n "$out" ]; then mount --bind "$out" "$root/mnt"; fi
chroot "$root" "$@"
"""


def command(
    root: Path, argv: Sequence[str], *, out: Path | None = None, env: Mapping[str, str] = {}
) -> list[str]:
    environment = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PYTHONPATH": MOUNT_POINT,
        # The checkout is read-only there, and its bytecode is the host's Python's.
        "PYTHONDONTWRITEBYTECODE": "1",
        ROOT_MARKER: root.name,
        **env,
    }
    return [
        "unshare",
        "--mount",
        "--pid",
        "--ipc",
        "--fork",
        "--kill-child",
        "sh",
        "-c",
        _ENTER,
        "inroot",
        str(root),
        str(CHECKOUT),
        str(out or ""),
        "/usr/bin/env",
        "-i",
        *(f"{name}={value}" for name, value in environment.items()),
        *argv,
    ]


def run(
    root: Path,
    argv: Sequence[str],
    *,
    out: Path | None = None,
    env: Mapping[str, str] = {},
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(root, argv, out=out, env=env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, help="a directory bound writable at /mnt")
    parser.add_argument("--env", action="append", default=[], metavar="VAR=VALUE")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND [ARGS]...")
    args = parser.parse_args()
    if not args.argv:
        parser.error("no command")
    env = dict(assignment.split("=", 1) for assignment in args.env)
    argv = command(args.root.resolve(), args.argv, out=args.out and args.out.resolve(), env=env)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
