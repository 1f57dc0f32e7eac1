"""ana-headless: run Anatomist and any Qt / OpenGL Python program without a screen.

import ana_headless
a = ana_headless.HeadlessAnatomist('-b')     # Anatomist, headless; a.headless_info
info = ana_headless.ensure_headless()         # any Qt / OpenGL script
"""

from __future__ import annotations

from ._version import __version__
from .errors import HeadlessError

__all__ = [
    "Anatomist",
    "HeadlessAnatomist",
    "HeadlessError",
    "HeadlessInfo",
    "__version__",
    "ensure_headless",
]


def __getattr__(name: str) -> object:
    # The API pulls in the launcher's machinery: imported on first use only, so that
    # `import ana_headless` and the CLI stay cheap.
    if name in ("Anatomist", "HeadlessAnatomist", "HeadlessInfo", "ensure_headless"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'ana_headless' has no attribute {name!r}")
