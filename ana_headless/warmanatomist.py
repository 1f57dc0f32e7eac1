"""A warm Anatomist per worker process: the `anatomist` program started once, on the worker's
display, and driven by every task of that worker through pyanatomist's socket client.

    from ana_headless.warmanatomist import worker_anatomist

    def snapshot(a, subject):                 # a: pyanatomist's socket Anatomist
        mesh = a.loadObject(f"{subject}.mesh")
        window = a.createWindow("3D")
        a.addObjects([mesh], [window])
        window.snapshot(f"{subject}.png", 256, 256)
        a.sync()

    outcome = worker_anatomist("-b").run(snapshot, "sub-01")   # an Outcome, never an exception

- the program starts on first use (`ensure_headless()` first: in a worker of the launcher it
  only reads what was set up), on a port the kernel has just found free, and the client
  connects as soon as it listens;
- the next tasks reuse it. Anatomist deletes an object or window when its last reference
  goes, and a task's references go when it ends: a task finds the program as the previous one
  found it. A task that keeps references beyond its end (in a global, a cache) would leave
  its objects to the next one: the program is restarted instead;
- a program that has died (killed, or crashed on a subject's file) is started again for the
  next task: a task that failed is run once more on a fresh program, and reported (its
  Outcome's `error`) if it fails again;
- the program is stopped when the worker process ends (atexit), or by `close()`.

One per process (`worker_anatomist()`), as Dask's workers (ana_headless.daskworker), a loop
in one script (`run_batch()`) and the pytest plugin's `headless_anatomist` fixture use it.
Its tasks run one at a time: pyanatomist's client is not meant for several threads at once,
and a worker of one thread (Dask's `threads_per_worker=1`) runs one task at a time anyway.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import importlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .anatomistsocket import PortTaken, ProgramGone, free_loopback_port, wait_until_listening

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

Item = TypeVar("Item")
Value = TypeVar("Value")

# The longest wait for a program to listen on its port (pyanatomist's client waits 60 s).
START_TIMEOUT = 60.0
# How long a program asked to exit gets before it is killed.
STOP_TIMEOUT = 5.0
# How many times a start is tried again when another process took the program's port first.
PORT_ATTEMPTS = 3
# What the error of a program that died tells of its output.
OUTPUT_TAIL = 2000


class AnatomistDied(RuntimeError):
    """The `anatomist` program could not be started, or did not start listening."""


@dataclass(frozen=True)
class Outcome(Generic[Item, Value]):
    """What became of one task: its value, or the error of its last attempt."""

    item: Item
    value: Value | None
    # None when the task succeeded; else the last attempt's exception, with its traceback.
    error: str | None
    attempts: int
    # The pid of the program that ran the successful attempt (or the last one).
    program_pid: int | None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Program:
    """One `anatomist -s PORT` process and the socket client connected to it."""

    def __init__(self, executable: str, args: tuple[str, ...]) -> None:
        # Unlinked at once: whatever happens, nothing is left behind. It lives as long as the
        # program, beyond any `with`.
        self.output = tempfile.TemporaryFile()  # noqa: SIM115
        self.stopping = False
        self.client: Any = None
        self.process: subprocess.Popen[bytes] | None = None
        try:
            for _attempt in range(PORT_ATTEMPTS):
                self.process = self._start(executable, args)
                if self.process is not None:
                    break
            else:
                raise AnatomistDied(
                    f"other processes took the program's port {PORT_ATTEMPTS} times"
                )
            self.client = _connect(self.port)
            # Its exit handler would close the connection before ours asks the program to
            # exit: this client's end is this object's.
            atexit.unregister(self.client.close)
            # Anatomist is a Qt application that quits when its last window closes; with -b it
            # has no control window, so the end of a task's only window would end it. A
            # window of the program's own (a browser: no GL) keeps it up between tasks.
            self.windows = {"Browser": self.client.createWindow("Browser")}
            self.baseline = self.elements()
        except BaseException:
            self.stop()
            raise
        threading.Thread(target=self._watch, daemon=True, name="anatomist-watch").start()

    def _start(self, executable: str, args: tuple[str, ...]) -> subprocess.Popen[bytes] | None:
        """The program, listening on a port of its own; None when another process took that
        port before it could listen there."""
        self.port = free_loopback_port()
        process = subprocess.Popen(
            [executable, "-s", str(self.port), *args],
            stdin=subprocess.DEVNULL,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_listening(self.port, process.pid, START_TIMEOUT)
        except PortTaken:
            _end(process)
            return None
        except (ProgramGone, TimeoutError) as error:
            _end(process)
            raise AnatomistDied(f"{error}; its output:\n{self.tail()}") from error
        return process

    def tail(self) -> str:
        """The end of the program's output."""
        self.output.seek(0, os.SEEK_END)
        self.output.seek(max(0, self.output.tell() - OUTPUT_TAIL))
        return self.output.read().decode(errors="replace")

    def alive(self) -> bool:
        return (
            self.process is not None
            and self.process.poll() is None
            and bool(self.client.launched)
            and bool(self.client.comm.initialized)
        )

    def _watch(self) -> None:
        """When the program dies, do what pyanatomist does when a program that it started
        itself exits (anaServerProcessExited): mark the client not running, so that its next
        command fails at once, and close its socket, which fails the commands waiting for an
        answer."""
        assert self.process is not None
        self.process.wait()
        if self.stopping:
            return
        self.client.launched = False
        # A command that was checking `launched` at that moment registers its wait just after
        # the first close: a second close releases it rather than leaving it to its timeout.
        for delay in (0.0, 0.1):
            threading.Event().wait(delay)
            # The client's reading thread, which met the end of the connection, may be closing
            # it too: each takes the waits it finds, and one may find a wait already taken.
            with contextlib.suppress(KeyError):
                self.client.comm.close()

    def elements(self) -> tuple[set[int], set[int]]:
        """The ids of the objects and windows that the client knows in the program."""
        info = self.client.executeAndWaitAnswer("GetInfo", objects=1, windows=1)
        return set(info.get("objects") or ()), set(info.get("windows") or ())

    def as_found(self) -> bool:
        """Whether the program holds what it held after its start, and no more. Anatomist
        deletes an object or window when the last reference to it goes: those of a task's
        client-side wrappers go when the task ends. What a task keeps beyond its end (in a
        global, a cache) Anatomist keeps too, and will not delete while it is referenced."""
        if self.elements() == self.baseline:
            return True
        # Wrappers caught in reference cycles release theirs when collected: now (only now, a
        # collection costs tens of ms in a process that has loaded Qt).
        gc.collect()
        return self.elements() == self.baseline

    def window(self, kind: str) -> Any:
        """The program's own window of `kind`, made on first use, kept as long as it runs."""
        window = self.windows.get(kind)
        if window is None:
            window = self.windows[kind] = self.client.createWindow(kind)
            self.baseline[1].add(window.getInternalRep())
        return window

    def stop(self) -> None:
        self.stopping = True
        try:
            if self.process is not None and self.process.poll() is None:
                self._ask_to_exit()
                _end(self.process)
        finally:
            self.output.close()

    def _ask_to_exit(self) -> None:
        """Anatomist's Exit command when its client can still send it (the program then
        closes its windows itself), else SIGTERM."""
        assert self.process is not None
        client = self.client
        if client is not None and client.launched and client.comm.initialized:
            try:
                client.execute("Exit")
                return
            except Exception:
                # The connection broke meanwhile: the signal below will do.
                pass
        self.process.terminate()


def _end(process: subprocess.Popen[bytes]) -> None:
    """Wait for the program to exit, killing it if it does not: never a zombie."""
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _CallHere:
    """Stands for pyanatomist's QtThreadCall, through which the socket client's constructor
    connects: QtThreadCall runs the call in the thread of a Qt event loop, and there is none
    in a worker (Dask runs tasks in threads of an executor; no Qt application at all). A
    client that starts no program (newanatomist=False) needs no Qt to connect: it connects
    in the calling thread."""

    @staticmethod
    def call(function: Callable[..., Any], *args: Any) -> Any:
        return function(*args)


@functools.cache
def _client_class() -> Any:
    """pyanatomist's socket client class, connecting in the calling thread."""
    upstream: Any = importlib.import_module("anatomist.socket.api").Anatomist

    class WarmClient(upstream):  # type: ignore[misc]
        mainThread = _CallHere()

        def close(self) -> None:
            # Its reading thread may be blocked in a read (see _connect), which upstream's
            # close() joins: ending the connection wakes it.
            with contextlib.suppress(OSError):
                self.comm.socket.shutdown(socket.SHUT_RDWR)
            super().close()

    return WarmClient


def _connect(port: int) -> Any:
    """pyanatomist's socket client, connected to the program that listens on `port`."""
    client = _client_class()(host="localhost", port=port, newanatomist=False, forceNewInstance=True)
    # Upstream's reading thread polls a non-blocking socket, sleeping 20 ms whenever nothing
    # is there; blocking, it reads an answer as soon as it comes: some 18 ms less for each
    # command that waits for one (sync(), loadObject(), the check after each task).
    client.comm.socket.setblocking(True)
    return client


class WarmAnatomist:
    """The `anatomist` program of one worker process, started on first use and restarted when
    it has died. `args` are the program's own arguments (`"-b"`: batch mode, no control
    window); `executable` defaults to the `anatomist` on PATH."""

    def __init__(self, *args: str, executable: str | None = None) -> None:
        self.args = args
        self.executable = executable
        self._program: _Program | None = None
        self._lock = threading.RLock()

    @property
    def pid(self) -> int | None:
        """The running program's pid (None before the first task, or after close())."""
        program = self._program
        return program.process.pid if program is not None and program.process else None

    def client(self) -> Any:
        """The socket client of a running program: the same as the last task's, unless that
        program has died."""
        with self._lock:
            if self._program is not None and not self._program.alive():
                self.close()
            if self._program is None:
                self._program = _Program(self._find_executable(), self.args)
            return self._program.client

    def _find_executable(self) -> str:
        from .api import ensure_headless

        # On the worker's display: under the launcher it reads it, elsewhere it makes one.
        ensure_headless()
        executable = self.executable or shutil.which("anatomist")
        if executable is None:
            raise AnatomistDied("the `anatomist` program is not on PATH")
        return executable

    def window(self, kind: str = "3D") -> Any:
        """A window of `kind` that lasts as long as the program, for every task to show its
        objects in: a task saves the making of its own (a 3D window and its GL context, 0.07 s
        of a 0.4 s snapshot on a software renderer). It keeps no object of a task: what a task
        showed in it goes with the task's objects. Its view (camera, settings) stays as the
        last task left it."""
        with self._lock:
            self.client()
            assert self._program is not None
            return self._program.window(kind)

    @contextlib.contextmanager
    def task(self) -> Iterator[Any]:
        """The client, for one task. When the task ends, what it made must be gone (it is,
        once the task's references to it are); when something is left, or the task failed,
        the program is stopped: the next task gets a fresh one, never another's leftovers."""
        with self._lock:
            client = self.client()
            program = self._program
            assert program is not None
            try:
                yield client
                if program.alive() and not program.as_found():
                    # The next task gets a fresh program rather than this task's leftovers.
                    self.close()
            except BaseException:
                self.close()
                raise

    def run(
        self, function: Callable[[Any, Item], Value], item: Item, retries: int = 1
    ) -> Outcome[Item, Value]:
        """`function(client, item)` in a task; if it fails (or the program dies under it),
        once more (`retries` times more), each time on a fresh program."""
        error, pid = "", None
        for attempt in range(1, retries + 2):
            try:
                with self.task() as client:
                    pid = self.pid
                    value = function(client, item)
                return Outcome(item, value, None, attempt, pid)
            except Exception:
                error = traceback.format_exc()
        return Outcome(item, None, error, retries + 1, pid)

    def close(self) -> None:
        """Stop the program; the next task starts another."""
        with self._lock:
            program, self._program = self._program, None
            if program is not None:
                program.stop()


_worker: WarmAnatomist | None = None
_worker_lock = threading.Lock()


def worker_anatomist(*args: str, executable: str | None = None) -> WarmAnatomist:
    """This process's WarmAnatomist, made on the first call (its arguments are the first
    call's), stopped when the process exits."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = WarmAnatomist(*args, executable=executable)
            atexit.register(_worker.close)
        return _worker


def run_batch(
    function: Callable[[Any, Item], Value],
    items: Iterable[Item],
    *args: str,
    retries: int = 1,
) -> list[Outcome[Item, Value]]:
    """`function(client, item)` for each item, in this process, on its warm Anatomist (`args`:
    the program's arguments): the loop of one script over many subjects."""
    anatomist = worker_anatomist(*args)
    return [anatomist.run(function, item, retries) for item in items]
