"""The GL probe cache: a probe's result is reused while nothing it depends on has changed.

A probe costs a Python start, a GL context and a read-back (100 ms and more); its answer only
changes when the host does. The key is everything the answer depends on: the candidate (mode,
prefix, environment patch), the server kind and depth, the loader variables, and the identity
(path, mtime, size) of the files involved — the server, vglrun, the software libGL, the
interpreter, the probe itself, and /etc/ld.so.cache, which changes whenever a library is
installed or upgraded. Any change gives another key, hence a new probe.

The file is in Python's marshal format, which needs no import: json would cost the launcher
some 8 ms (it imports re), before the child can start. `--dry-run` and `doctor` show what it
holds.
"""

from __future__ import annotations

import marshal
import os
import sys

from ._version import __version__
from .plan import Candidate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

CACHE_VAR = "ANA_HEADLESS_PROBE_CACHE"
CACHE_FILE = "probes.marshal"
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
    return os.path.join(base, "ana-headless", CACHE_FILE)


def _identity(path: str | None) -> tuple[Any, ...]:
    """What changes when a file is replaced or upgraded."""
    if not path:
        return ()
    try:
        status = os.stat(path)
    except OSError:
        return (path, None)
    return (path, status.st_mtime_ns, status.st_size)


def probe_key(candidate: Candidate, env: Mapping[str, str], server_binary: str | None,
              depth: int, probe_script: str) -> str:
    files = [*_HOST_FILES, sys.executable, probe_script, server_binary]
    files += [part for part in candidate.prefix if part.startswith("/")]
    files += [os.path.join(value.split(":")[0], "libGL.so.1")
              for name, value in candidate.env_patch.items()
              if name == "LD_LIBRARY_PATH" and value]
    key = (
        ("version", __version__),
        ("mode", candidate.mode), ("prefix", tuple(candidate.prefix)),
        ("env_patch", tuple(sorted(candidate.env_patch.items()))), ("depth", depth),
        ("loader", tuple(sorted((name, value) for name, value in env.items()
                                if name.startswith(_LOADER_PREFIXES)))),
        ("files", tuple(_identity(path) for path in files)),
        ("devices", tuple(sorted(os.listdir("/dev/dri"))) if os.path.isdir("/dev/dri") else ()),
    )
    # The repr of nested tuples of str, int and None is exact and stable: a fine key.
    return repr(key)


class ProbeCache:
    """A small file of probe results, read once and written back atomically."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._entries: dict[str, Any] = {}
        self._dirty = False
        if path:
            try:
                with open(path, "rb") as data:
                    loaded = marshal.load(data)
            except (OSError, EOFError, ValueError, TypeError):
                # Missing, unreadable, or written by a Python that marshals differently.
                return
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
        import contextlib  # after a probe: no hurry here

        temporary = f"{self.path}.{os.getpid()}"
        with contextlib.suppress(OSError, ValueError):
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            with open(temporary, "wb") as data:
                marshal.dump(entries, data)
            os.replace(temporary, self.path)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        self._dirty = False
