"""Batches of snapshots on the REAL Anatomist through ana_headless.warmanatomist, for the tests
marked `anatomist`:

    python warm_script.py OUTDIR loop N [--kill K] [--close C] [--bad B] [--keep] [--window]
    python warm_script.py OUTDIR connect [--how ana_headless|api]

`loop`: N subjects, each its own mesh file and a pixel-checked snapshot, on this process's
warm Anatomist (run_batch); the task of subject K SIGKILLs the program half-way (after loading
its mesh, before its snapshot); the task of subject C closes the client once its snapshot is
taken (a.close(), as scripts end); subject B's mesh file is not a mesh; with --keep, each task
keeps a reference to an object and a window it made, beyond its end (the next task must not
find them); with --window, each task draws in the warm Anatomist's own 3D window. Prints one
JSON line per subject (its Outcome, the program's pid, the objects and windows the program
holds after the task) and exits 0.

`connect`: makes pyanatomist's socket client start its program (three times), watching the
sockets of this process and of its new children meanwhile (every 2 ms, in /proc/net/tcp6 and
tcp): prints when the program's port began to listen and when this process's connection to it
was established, both as seen in the socket tables, then the program's pid.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import anatomist_snapshot as example

from ana_headless.anatomistsocket import socket_inodes

SIZE = (160, 120)


def snapshot(a: Any, subject: tuple[int, Path, Path]) -> str:
    _number, mesh, png = subject
    example.snapshot(a, mesh, png, SIZE)
    return example.check_snapshot(png, SIZE)


def make_subject(outdir: Path, number: int) -> tuple[int, Path, Path]:
    """Subject `number`: a mesh file of its own (a sphere of its own resolution), and where
    its snapshot goes."""
    mesh = outdir / f"subject-{number}.mesh"
    example.write_sphere_mesh(mesh, rings=8 + number % 5)
    return number, mesh, outdir / f"subject-{number}.png"


def display_of(pid: int) -> str | None:
    """The DISPLAY in process `pid`'s environment: where it opened its windows."""
    with open(f"/proc/{pid}/environ", "rb") as environ:
        variables = dict(item.partition(b"=")[::2] for item in environ.read().split(b"\0"))
    value = variables.get(b"DISPLAY")
    return value.decode() if value is not None else None


def dask_task(subject: tuple[int, Path, Path]) -> dict[str, Any]:
    """A Dask task: one subject on its worker's warm Anatomist; where it was rendered."""
    from ana_headless.warmanatomist import worker_anatomist

    outcome = worker_anatomist("-b").run(snapshot, subject)
    pid = outcome.program_pid
    return {
        "ok": outcome.ok,
        "error": outcome.error,
        "pid": pid,
        "worker": os.getpid(),
        "display": os.environ.get("DISPLAY"),
        "program_display": display_of(pid) if pid else None,
    }


def loop(
    outdir: Path,
    count: int,
    bad: int | None,
    *,
    kill: int | None,
    close: int | None,
    keep: bool,
    window: bool,
) -> None:
    from ana_headless.warmanatomist import worker_anatomist

    anatomist = worker_anatomist("-b")
    kept = []

    def task(a: Any, subject: tuple[int, Path, Path]) -> str:
        if subject[0] == kill and not os.path.exists(outdir / "killed"):
            (outdir / "killed").touch()
            a.loadObject(str(subject[1]))
            a.sync()
            assert anatomist.pid is not None
            os.kill(anatomist.pid, signal.SIGKILL)
        if keep:
            kept.extend([a.loadObject(str(subject[1])), a.createWindow("3D")])
        if window:
            example.snapshot_in(a, anatomist.window("3D"), subject[1], subject[2], SIZE)
            return example.check_snapshot(subject[2], SIZE)
        checked = snapshot(a, subject)
        if subject[0] == close:
            a.close()
        return checked

    for number in range(count):
        subject = make_subject(outdir, number)
        if number == bad:
            subject[1].write_text("not a mesh\n")
        outcome = anatomist.run(task, subject)
        held = None
        if anatomist.pid is not None:
            # What the program holds once the task is over: the same as before it.
            info = anatomist.client().executeAndWaitAnswer("GetInfo", objects=1, windows=1)
            held = [sorted(info.get("objects") or ()), sorted(info.get("windows") or ())]
        print(
            json.dumps(
                {
                    "subject": number,
                    "ok": outcome.ok,
                    "error": outcome.error,
                    "attempts": outcome.attempts,
                    "pid": outcome.program_pid,
                    "held": held,
                }
            ),
            flush=True,
        )
    anatomist.close()


def sockets_of(pid: int) -> set[str]:
    return socket_inodes(pid) or set()


def children() -> list[int]:
    pids = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as listing:
            pids += [int(pid) for pid in listing.read().split()]
    return pids


def table() -> list[list[str]]:
    rows = []
    for name in ("/proc/net/tcp6", "/proc/net/tcp"):
        with open(name) as lines:
            rows += [line.split() for line in list(lines)[1:]]
    return rows


def watch(seen: dict[str, float], stop: threading.Event, old: set[int]) -> None:
    """Record the first moment a child (not one of `old`: the last round's program may not be
    gone yet) listens (its port), then the first moment this process holds an established
    connection to that port."""
    port = None
    while not stop.is_set():
        now = time.monotonic()
        rows = table()
        if port is None:
            theirs = set().union(*map(sockets_of, set(children()) - old))
            for row in rows:
                if row[3] == "0A" and row[9] in theirs:
                    port = row[1].rsplit(":", 1)[1]
                    seen["listening"] = now
        else:
            mine = sockets_of(os.getpid())
            ours = (row for row in rows if row[3] == "01" and row[9] in mine)
            if any(row[2].endswith(":" + port) for row in ours):
                seen["connected"] = now
                return
        time.sleep(0.002)


def connect(how: str) -> None:
    """Three starts: where a client retries once a second, its lag after the program listens
    depends on when in its second the program began to, anywhere from 0 to 1 s."""
    for _round in range(3):
        seen: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(seen, stop, set(children())))
        watcher.start()
        started = time.monotonic()
        if how == "ana_headless":
            import ana_headless

            a = ana_headless.HeadlessAnatomist("-b", implementation="socket")
        else:
            import anatomist

            anatomist.setDefaultImplementation(anatomist.SOCKET)
            import anatomist.api as ana

            a = ana.Anatomist("-b")
        returned = time.monotonic()
        watcher.join(10)
        stop.set()
        a.sync()
        report = {name: moment - started for name, moment in seen.items()}
        report["returned"] = returned - started
        report["pid"] = a.anaServerProcess.processId()
        report["port"] = a.comm.port
        print(json.dumps(report), flush=True)
        a.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir", type=Path)
    commands = parser.add_subparsers(dest="command", required=True)
    looping = commands.add_parser("loop")
    looping.add_argument("count", type=int)
    looping.add_argument("--kill", type=int)
    looping.add_argument("--close", type=int)
    looping.add_argument("--bad", type=int)
    looping.add_argument("--keep", action="store_true")
    looping.add_argument("--window", action="store_true")
    connecting = commands.add_parser("connect")
    connecting.add_argument("--how", choices=["ana_headless", "api"], default="ana_headless")
    arguments = parser.parse_args()
    if arguments.command == "loop":
        loop(
            arguments.outdir,
            arguments.count,
            arguments.bad,
            kill=arguments.kill,
            close=arguments.close,
            keep=arguments.keep,
            window=arguments.window,
        )
    else:
        connect(arguments.how)


if __name__ == "__main__":
    main()
