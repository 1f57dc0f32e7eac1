"""Dask workers with a display of their own: each worker process runs under `ana-headless
exec`, so that its tasks render in a long-lived process (Qt, the GL context and whatever the
tasks load stay loaded between tasks) on a private virtual display.

    from dask.distributed import Client, LocalCluster
    from ana_headless.daskworker import HeadlessWorker

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                           dashboard_address=None, worker_class=HeadlessWorker)

On a cluster's nodes the same is `ana-headless exec -- dask worker SCHEDULER` (dask-jobqueue:
`python="ana-headless exec -- python"`); there is nothing to install in the workers.

Why the launcher and not a worker plugin that calls ensure_headless() inside the worker: the
GL modes that need loader variables from the process's start (VirtualGL's LD_PRELOAD, a
software Mesa's LD_LIBRARY_PATH) cannot be given to a process that already runs, and a
worker process cannot be re-executed (it is started as `python -c ...`); the Nanny's
pre-spawn environment would set them in the client's own process and share one display
between workers. Under the launcher every mode works as it does for any program, and the
display lives exactly as long as the worker: set up before it starts, stopped when it ends,
and stopped by the launcher's watcher if the launcher itself is killed.

Tasks get what was set up from `ana_headless.ensure_headless()`, which in a worker only reads
it (the launcher's variables are in the worker's environment). Tasks that render with
BrainVISA's Anatomist share their worker's program: `ana_headless.warmanatomist.
worker_anatomist("-b").run(function, subject)`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import TYPE_CHECKING, Any

from distributed.deploy.spec import ProcessInterface

from .relaunch import launcher_command, module_command

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# How long a worker gets to close after SIGTERM before its launcher is killed (the watcher then
# stops the display and the worker).
STOP_TIMEOUT = 10.0


class HeadlessWorker(ProcessInterface):
    """A Dask worker process (distributed.Worker by default) started under the launcher, for
    LocalCluster's or SpecCluster's `worker_class`.

    `launcher_options` are `ana-headless exec` options (`["--gl", "virtualgl"]`); `env`
    holds environment variables for the worker process, as Nanny's `env` does (here they are
    there from the process's start); every other keyword argument goes to the worker, as
    LocalCluster gives it (host, nthreads, memory_limit, ...). With
    `worker_class="distributed.Nanny"` a worker that dies is restarted on the same display.
    """

    def __init__(
        self,
        scheduler: str,
        name: str | int | None = None,
        *,
        launcher_options: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        worker_class: str = "distributed.Worker",
        **worker_kwargs: Any,
    ) -> None:
        security = worker_kwargs.pop("security", None)
        if security is not None and security.require_encryption:
            # The worker process reads the same dask configuration, where TLS settings live;
            # a Security object made in this process cannot be handed to it.
            raise ValueError(
                "HeadlessWorker: set TLS in the dask configuration, not with a Security object"
            )
        self.scheduler = scheduler
        self.name = name
        self.launcher_options = list(launcher_options)
        self.env = {**os.environ, **(env or {})}
        self.spec = {"cls": worker_class, "opts": {**worker_kwargs, "name": name}}
        self.process: asyncio.subprocess.Process | None = None
        # distributed's ProcessInterface is not annotated.
        super().__init__(scheduler, name)  # type: ignore[no-untyped-call]

    def command(self) -> list[str]:
        """The launcher, running `dask spec` for this one worker with this interpreter."""
        return [
            *launcher_command(),
            "exec",
            *self.launcher_options,
            "--",
            *module_command("distributed.cli.dask_spec"),
            self.scheduler,
            "--spec",
            json.dumps(self.spec),
        ]

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command(), env=self.env, stdin=subprocess.DEVNULL
        )
        await super().start()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            # The launcher forwards SIGTERM to the worker, which closes; then the launcher
            # stops the display.
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        await super().close()  # type: ignore[no-untyped-call]
