"""soma-workflow jobs, headless: each job runs under `ana-headless exec`, so that it gets a
display of its own, and the engine sees the job's own exit status.

Two ways, one for each person who can apply it:

- whoever runs the computing resource sets soma-workflow's engine configuration (the
  resource's section of ~/.soma-workflow.cfg, or the server's): its CONTAINER_COMMAND item is
  a prefix the engine puts before every job's command, meant for a container; this module's
  `job_prefix()` is a value for it, and inside a container it goes after the container's own
  command (`['singularity', 'exec', IMAGE, 'ana-headless', 'exec', '--']`);
- whoever builds the workflow (a script, Capsul, Axon) wraps its jobs: `make_headless()`.
"""

from __future__ import annotations

import os
from typing import Any

from soma_workflow.client_types import EngineExecutionJob  # type: ignore[import-untyped]

LAUNCHER = "ana-headless"


def job_prefix(*options: str, launcher: str = LAUNCHER) -> list[str]:
    """`ana-headless exec [OPTIONS] --`: what goes before a job's command line, and a value
    for the CONTAINER_COMMAND item of soma-workflow's configuration."""
    return [launcher, "exec", *options, "--"]


def _wrapped(command: list[Any], launcher: str) -> bool:
    first = command[0] if command else None
    return (isinstance(first, str) and os.path.basename(first) == os.path.basename(launcher)
            and command[1:2] == ["exec"])


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
