"""ana-headless: run Anatomist and any Qt / OpenGL Python program without a screen."""

from __future__ import annotations

from ._version import __version__
from .errors import HeadlessError

__all__ = ["HeadlessError", "__version__"]
