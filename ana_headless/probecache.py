"""The GL probe cache: a probe's result is reused while nothing it depends on has changed.

A probe costs a Python start, a GL context and a read-back (100 ms and more); its answer only
changes when the host does. The key is everything the answer depends on: the candidate (mode,
prefix, environment patch), the server kind and depth, the loader variables, and the identity
(path, mtime, size) of the files involved — the server, vglrun, the software libGL, the
interpreter, the probe itself, and /etc/ld.so.cache, which changes whenever a library is
installed or upgraded. Any change gives another key, hence a new probe.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from ._version import __version__
from .plan import Candidate

CACHE_VAR = "ANA_HEADLESS_PROBE_CACHE"
_MAX_ENTRIES = 64
_LOADER_PREFIXES = ("LD_", "VGL_", "__GLX_", "__EGL_", "LIBGL_", "GALLIUM_", "MESA_", "EGL_")
_HOST_FILES = ("/etc/ld.so.cache", "/usr/share/glvnd/egl_vendor.d/10_nvidia.json")


def cache_path(env: Mapping[str, str]) -> str | None:
    """Where the cache lives; ANA_HEADLESS_PROBE_CACHE=0 turns it off, a path moves it."""
    setting = env.get(CACHE_VAR, "")
    if setting in ("0", "no", "off"):
        return None
    if setting:
        return setting
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME", "/"), ".cache")
    return os.path.join(base, "ana-headless", "probes.json")


def _identity(path: str | None) -> list[Any]:
    """What changes when a file is replaced or upgraded."""
    if not path:
        return []
    try:
        status = os.stat(path)
    except OSError:
        return [path, None]
    return [path, status.st_mtime_ns, status.st_size]


def probe_key(candidate: Candidate, env: Mapping[str, str], server_binary: str | None,
              depth: int, probe_script: str) -> str:
    files = [*_HOST_FILES, sys.executable, probe_script, server_binary]
    files += [part for part in candidate.prefix if part.startswith("/")]
    files += [os.path.join(value.split(":")[0], "libGL.so.1")
              for name, value in candidate.env_patch.items()
              if name == "LD_LIBRARY_PATH" and value]
    key = {
        "version": __version__,
        "mode": candidate.mode, "prefix": list(candidate.prefix),
        "env_patch": dict(candidate.env_patch), "depth": depth,
        "loader": {name: value for name, value in sorted(env.items())
                   if name.startswith(_LOADER_PREFIXES)},
        "files": [_identity(path) for path in files],
        "devices": sorted(os.listdir("/dev/dri")) if os.path.isdir("/dev/dri") else [],
    }
    return json.dumps(key, sort_keys=True)


class ProbeCache:
    """A small JSON file of probe results, read once and written back atomically."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._entries: dict[str, Any] = {}
        self._dirty = False
        if path:
            with contextlib.suppress(OSError, ValueError), open(path, encoding="utf-8") as data:
                loaded = json.load(data)
                if isinstance(loaded, dict):
                    self._entries = loaded

    def get(self, key: str) -> Mapping[str, Any] | None:
        entry = self._entries.get(key)
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        self._entries.pop(key, None)
        self._entries[key] = dict(value)
        self._dirty = True

    def save(self) -> None:
        """Keep the newest entries; a failure to write only costs a probe next time."""
        if not (self.path and self._dirty):
            return
        entries = dict(list(self._entries.items())[-_MAX_ENTRIES:])
        temporary = f"{self.path}.{os.getpid()}"
        with contextlib.suppress(OSError):
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            with open(temporary, "w", encoding="utf-8") as data:
                json.dump(entries, data)
            os.replace(temporary, self.path)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        self._dirty = False
