"""Jupyter kernels that run under the launcher: `ana-headless kernel install | list | remove`.

A kernel cannot be re-executed, so ensure_headless() cannot give a running one the loader
variables of VirtualGL (LD_PRELOAD) or a software Mesa (LD_LIBRARY_PATH). The kernelspec written
here starts ipykernel's own command behind `ana-headless exec`, run by this Python: the kernel
process starts with its display and its GL already set up, in every mode, and ensure_headless() /
HeadlessAnatomist() inside it only report (they find ANA_HEADLESS_DISPLAY). Jupyter stops the
kernel through the launcher, which then stops the server; a kernel killed with SIGKILL leaves
nothing either (the launcher's watcher).

Interrupts are sent as messages: jupyter_client interrupts a kernel in "signal" mode by sending
SIGINT to its process group, which is the launcher's, and the launcher forwards what it gets
(it cannot tell a signal sent to the group from one sent to it alone), so the kernel would get
SIGINT twice; the second can land in ipykernel's own code after the cell's KeyboardInterrupt,
and did (a reply on a broken socket, the kernel deaf). In "message" mode ipykernel sends SIGINT
to itself, once.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from .errors import HeadlessError, UsageError
from .relaunch import launcher_command

DEFAULT_NAME = "ana-headless"
# The kernelspec's metadata key that marks a kernel as ours, with the GL mode it was given.
METADATA_KEY = "ana_headless"
INSTALL_HINT = "pip install 'ana-headless[jupyter]'"
# The kernel names that Jupyter accepts (upper case too: it stores them in lower case), but for
# a first character other than a letter or a digit: its own check lets `.` and `..` through,
# and then replaces or removes kernels/<name>, which is every kernel, or the whole data
# directory.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_RULE = "letters, digits, '.', '_' and '-', beginning with a letter or a digit"


class KernelError(HeadlessError):
    """A kernelspec could not be written, found or removed."""

    exit_status = 1


@dataclass(frozen=True)
class InstalledKernel:
    name: str
    # A GL mode, or "auto": whatever ANA_HEADLESS_GL says when the kernel starts.
    gl: str
    display_name: str
    path: str


def _spec_manager() -> Any:
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError as error:
        raise KernelError(
            f"jupyter_client is not installed in {sys.executable} ({INSTALL_HINT})"
        ) from error
    return KernelSpecManager()


def check_name(name: str, label: str) -> None:
    """Refuse what is not a kernel name, before anything is touched; `label` is how the
    command line calls it."""
    if not _NAME.fullmatch(name):
        raise UsageError(f"{label} {name!r}: not a kernel name ({NAME_RULE})")


def kernel_argv(kernel_command: list[str], gl: str | None) -> list[str]:
    """ipykernel's command line, run by the launcher of this Python."""
    launcher = [*launcher_command(), "exec"]
    if gl is not None:
        launcher += ["--gl", gl]
    return [*launcher, *kernel_command]


def install(
    name: str,
    *,
    gl: str | None = None,
    display_name: str | None = None,
    user: bool = False,
    prefix: str | None = None,
) -> str:
    """Write the kernelspec: for this user, under `prefix`, or system-wide (as `jupyter
    kernelspec install` does); the directory it went to."""
    check_name(name, "--name")
    manager = _spec_manager()
    try:
        from ipykernel import kernelspec
    except ImportError as error:
        raise KernelError(
            f"ipykernel is not installed in {sys.executable} ({INSTALL_HINT})"
        ) from error
    spec = kernelspec.get_kernel_dict()
    mode = f", {gl}" if gl else ""
    overrides = {
        "argv": kernel_argv(spec["argv"], gl),
        "display_name": display_name or f"Python {sys.version_info[0]} (ana-headless{mode})",
        "metadata": {**spec.get("metadata", {}), METADATA_KEY: {"gl": gl or "auto"}},
        "interrupt_mode": "message",
    }
    with tempfile.TemporaryDirectory() as staging:
        # Staged under a fixed name: only Jupyter makes a path of the kernel's name.
        source = kernelspec.write_kernel_spec(os.path.join(staging, "spec"), overrides=overrides)
        try:
            return str(manager.install_kernel_spec(source, name, user=user, prefix=prefix))
        except OSError as error:
            where = (
                ""
                if user or prefix
                else " (system-wide; --user or --sys-prefix install where you can write)"
            )
            raise KernelError(
                f"cannot install the kernel {name!r}: {error.strerror}: {error.filename}{where}"
            ) from error


def installed(manager: Any = None) -> list[InstalledKernel]:
    """The kernels of ours that Jupyter finds, by name."""
    kernels = []
    for name, entry in sorted((manager or _spec_manager()).get_all_specs().items()):
        spec = entry.get("spec", {})
        ours = spec.get("metadata", {}).get(METADATA_KEY)
        if isinstance(ours, dict):
            kernels.append(
                InstalledKernel(
                    name,
                    str(ours.get("gl", "auto")),
                    str(spec.get("display_name", name)),
                    str(entry["resource_dir"]),
                )
            )
    return kernels


def remove(name: str) -> str:
    """Remove one of our kernels (never anybody else's); the directory it was in."""
    check_name(name, "NAME")
    manager = _spec_manager()
    # Jupyter's kernel names are case-insensitive, and stored in lower case.
    key = name.lower()
    if key not in {kernel.name for kernel in installed(manager)}:
        if key in manager.find_kernel_specs():
            raise KernelError(
                f"the kernel {name!r} was not installed by ana-headless "
                "(`jupyter kernelspec remove` removes it)"
            )
        raise KernelError(
            f"no ana-headless kernel named {name!r} (`ana-headless kernel list` shows them)"
        )
    try:
        return str(manager.remove_kernel_spec(key))
    except OSError as error:
        raise KernelError(
            f"cannot remove the kernel {name!r}: {error.strerror}: {error.filename}"
        ) from error
