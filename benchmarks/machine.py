"""Facts about the machine, for the report's head: what was measured where."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Sequence
from importlib import metadata

from contenders import ANA_KEYS, Contender
from runs import attempt, run_once


def _xvfb_version() -> str:
    try:
        answer = subprocess.run(["Xvfb", "-version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"
    found = re.search(r"X\.Org X Server \S+", answer.stdout + answer.stderr)
    if found:
        return found.group(0)
    # Debian's Xvfb rejects -version; its package manager still knows.
    if shutil.which("dpkg-query"):
        package = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "xvfb"], capture_output=True, text=True
        )
        if package.returncode == 0:
            return f"xvfb package {package.stdout.strip()} (Xvfb -version is not supported)"
    return "unknown (Xvfb -version is not supported)"


def _under_display(argv: Sequence[str]) -> str:
    outcome, _, _ = attempt(lambda tag: run_once(argv, tag, 60.0), private_dirs=True)
    return outcome.stdout if not outcome.problem else f"failed: {outcome.problem}"


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _os_name() -> str:
    with contextlib.suppress(OSError), open("/etc/os-release") as release:
        for line in release:
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip().strip(chr(34))}, Linux {platform.release()}"
    return platform.platform()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts(runners: Sequence[Contender]) -> dict[str, str]:
    facts = {"Xvfb": _xvfb_version()}
    if shutil.which("xvfb-run") and shutil.which("glxinfo"):
        glxinfo = _under_display(["xvfb-run", "-a", "glxinfo", "-B"])
        found = re.search(r"OpenGL renderer string: (.*)", glxinfo)
        facts["renderer (glxinfo -B under xvfb-run)"] = found.group(1) if found else glxinfo[-200:]
    ana = next(c for c in runners if c.key == ANA_KEYS[0])
    if not ana.missing:
        chosen = _under_display(
            [
                ana.prefix[0],
                "exec",
                "sh",
                "-c",
                'printf "%s: %s" "$ANA_HEADLESS_MODE" "$ANA_HEADLESS_RENDERER"',
            ]
        )
        facts["ana-headless GL mode: renderer"] = chosen.strip()
    usable = len(os.sched_getaffinity(0))
    facts["CPU"] = f"{os.cpu_count()} logical CPUs ({usable} usable), {_cpu_model()}"
    facts["memory"] = f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB"
    facts["OS"] = _os_name()
    facts["Python"] = f"{platform.python_implementation()} {platform.python_version()}"
    facts["packages"] = ", ".join(
        f"{name} {_version(name)}"
        for name in ("ana-headless", "PyVirtualDisplay", "xvfbwrapper", "PyQt5")
    )
    facts["load average at start"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    return facts
