"""soma-workflow jobs, headless: each job runs under `ana-headless exec`, so that it gets a
display of its own, and the engine sees the job's own exit status.

Two ways, one for each person who can apply it:

- whoever runs the computing resource sets soma-workflow's engine configuration (the
  resource's section of ~/.soma-workflow.cfg, or the server's): its CONTAINER_COMMAND item is
  a prefix the engine puts before every job's command, meant for a container; this module's
  `job_prefix()` is a value for it, and inside a container it goes after the container's own
  command (`['singularity', 'exec', IMAGE, 'ana-headless', 'exec', '--']`);
- whoever builds the workflow (a script, Capsul, Axon) wraps its jobs: `make_headless()`.

`write_light_mode_configuration()` writes a configuration that runs workflows on this machine,
for a private HOME (a batch script, a test).
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from soma_workflow.client_types import EngineExecutionJob  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

LAUNCHER = "ana-headless"


def job_prefix(*options: str, launcher: str = LAUNCHER) -> list[str]:
    """`ana-headless exec [OPTIONS] --`: what goes before a job's command line, and a value
    for the CONTAINER_COMMAND item of soma-workflow's configuration."""
    return [launcher, "exec", *options, "--"]


def _wrapped(command: list[Any], launcher: str) -> bool:
    first = command[0] if command else None
    return (
        isinstance(first, str)
        and os.path.basename(first) == os.path.basename(launcher)
        and command[1:2] == ["exec"]
    )


def make_headless(workflow: Any, *options: str, launcher: str = LAUNCHER) -> Any:
    """Put `job_prefix(*options)` before the command of every job of a
    soma_workflow.client.Workflow, in place, and return the workflow.

    Jobs the engine runs itself (barriers, map and reduce jobs) run no command and stay as
    they are; so do jobs already run by the launcher.
    """
    prefix = job_prefix(*options, launcher=launcher)
    for job in workflow.jobs:
        if not isinstance(job, EngineExecutionJob) and not _wrapped(job.command, launcher):
            job.command = [*prefix, *job.command]
    return workflow


def write_light_mode_configuration(
    home: Path, jobs_at_once: int, container_command: Sequence[str] | None = None
) -> None:
    """soma-workflow's configuration in `home` (its HOME) for running workflows on this
    machine in light mode (the engine in the submitting process, no server): every file of
    soma-workflow's under `home`, `jobs_at_once` jobs at a time, and CONTAINER_COMMAND when
    given (`job_prefix()`)."""
    home.mkdir(parents=True, exist_ok=True)
    lines = [
        "[localhost]",
        "LIGHT_MODE = 1",
        f"SOMA_WORKFLOW_DIR = {home / 'soma-workflow'}",
        f"SHARED_TEMPORARY_DIR = {home / 'soma-workflow' / 'shared-tmp'}",
    ]
    if container_command:
        lines.append(f"CONTAINER_COMMAND = {list(container_command)!r}")
    (home / ".soma-workflow.cfg").write_text("\n".join(lines) + "\n")
    # The local scheduler reads its own file, section named after the host. Without
    # SCHEDULER_INTERVAL (soma-workflow 6.0) it waits forever after its first round and never
    # starts a job.
    (home / ".soma-workflow-scheduler.cfg").write_text(
        f"[{socket.gethostname()}]\nCPU_NB = {jobs_at_once}\nMAX_CPU_NB = {jobs_at_once}\n"
        "SCHEDULER_INTERVAL = 0.1\n"
    )
