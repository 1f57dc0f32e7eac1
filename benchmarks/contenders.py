"""The contenders: the ways to give a Python script a display that the benchmark compares, each
as the command that comes before SCRIPT ARGS..."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from runs import HERE

# The contender every ratio is taken to.
BASELINE = "xvfb-run"
# ana-headless's ways in: the launcher (on Xvfb, and on weston + Xwayland), and the in-process
# API (in place, and restarting under the launcher for a mode that needs loader variables).
ANA_KEYS = ("ana-headless-run", "ana-headless-weston", "ensure-headless", "ensure-headless-mesa")
# The software Mesa that `make vendor` builds, for the in-process API's restart.
MESA_LIB = (
    Path(os.environ.get("ANA_VENDOR_CACHE") or Path.home() / ".cache" / "ana-headless-vendor")
    / "mesa"
    / "lib"
)


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    # What comes before SCRIPT ARGS...
    prefix: tuple[str, ...]
    # The command as its users type it, for the report.
    shown: str
    # False for the floor (plain python), which has no display and runs W1 only.
    x11: bool = True
    # Why it cannot run here; empty when it can.
    missing: str = ""

    @property
    def makes_private_dirs(self) -> bool:
        """Whether its runs may leave ana-headless-* directories (see Debris in tests/leaks.py)."""
        return self.key in ANA_KEYS


def _ana_headless_command() -> str | None:
    beside = Path(sys.executable).parent / "ana-headless"
    return str(beside) if beside.exists() else shutil.which("ana-headless")


def _importable(statement: str) -> bool:
    # In a fresh interpreter: the package may be changing under us.
    return subprocess.run([sys.executable, "-c", statement], capture_output=True).returncode == 0


def _module_missing(name: str) -> str:
    return "" if importlib.util.find_spec(name) else f"n/a ({name} not installed)"


def _program_missing(name: str) -> str:
    return "" if shutil.which(name) else f"n/a ({name} not found)"


def contenders() -> list[Contender]:
    python = sys.executable
    ana = _ana_headless_command()
    in_process = (
        "" if _importable("from ana_headless import ensure_headless") else "n/a (not available)"
    )
    return [
        Contender("python", "python (no X, floor)", (python,), "python SCRIPT", x11=False),
        Contender(
            BASELINE,
            "xvfb-run -a",
            ("xvfb-run", "-a", python),
            "xvfb-run -a python SCRIPT",
            missing=_program_missing("xvfb-run"),
        ),
        Contender(
            "pyvirtualdisplay",
            "PyVirtualDisplay",
            (python, str(HERE / "with_pyvirtualdisplay.py")),
            "python benchmarks/with_pyvirtualdisplay.py SCRIPT",
            missing=_module_missing("pyvirtualdisplay"),
        ),
        Contender(
            "xvfbwrapper",
            "xvfbwrapper",
            (python, str(HERE / "with_xvfbwrapper.py")),
            "python benchmarks/with_xvfbwrapper.py SCRIPT",
            missing=_module_missing("xvfbwrapper"),
        ),
        Contender(
            ANA_KEYS[0],
            "ana-headless run",
            (ana or "ana-headless", "run"),
            "ana-headless run SCRIPT",
            missing="" if ana else "n/a (not installed)",
        ),
        Contender(
            ANA_KEYS[1],
            "ana-headless run --server weston",
            (ana or "ana-headless", "run", "--server", "weston"),
            "ana-headless run --server weston SCRIPT",
            missing=("" if ana else "n/a (not installed)")
            or _program_missing("weston")
            or _program_missing("Xwayland"),
        ),
        Contender(
            ANA_KEYS[2],
            "ana_headless.ensure_headless()",
            (python, str(HERE / "with_ensure_headless.py")),
            "python benchmarks/with_ensure_headless.py SCRIPT",
            missing=in_process,
        ),
        Contender(
            ANA_KEYS[3],
            "ensure_headless(), mesa mode (restarts)",
            (
                "env",
                "ANA_HEADLESS_GL=mesa",
                f"ANA_HEADLESS_MESA_DIR={MESA_LIB}",
                python,
                str(HERE / "with_ensure_headless.py"),
            ),
            "ANA_HEADLESS_GL=mesa python benchmarks/with_ensure_headless.py SCRIPT",
            missing=in_process
            or ("" if (MESA_LIB / "libGL.so.1").exists() else "n/a (make vendor builds the Mesa)"),
        ),
    ]
