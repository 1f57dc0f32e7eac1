"""Modules named as the standard library's, planted in a working directory as a notebook's or a
project's own files could be: one that is imported leaves a marker and ends its process."""

from __future__ import annotations

from pathlib import Path

# The launcher imports mmap (facts.py); asyncio, subprocess and selectors import select.
NAMES = ("select", "mmap")
# Odd, to tell it from any status of ours.
STATUS = 27


def plant(directory: Path, names: tuple[str, ...] = NAMES) -> Path:
    """Plant the modules in `directory`; the directory that gets a marker for each one that
    is imported (empty while none is)."""
    markers = directory / "imported"
    markers.mkdir()
    for name in names:
        (directory / f"{name}.py").write_text(
            f"import os\nopen({str(markers / name)!r}, 'w').close()\nos._exit({STATUS})\n"
        )
    return markers


def imported(markers: Path) -> list[str]:
    """The planted modules that were imported."""
    return sorted(marker.name for marker in markers.iterdir())
