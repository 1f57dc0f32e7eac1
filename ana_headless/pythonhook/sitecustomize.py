"""Run by the Python children of `ana-headless run` and `exec` (the launcher puts this
directory first on their PYTHONPATH), at their start, before their own code: scripts that use
pyanatomist's socket implementation unchanged then get a port of their own for their
`anatomist` program, and a connection as soon as it listens (../anatomistsocket.py says why).
ensure_headless() installs the same in its own process (install()).

At a start it costs one module finder on sys.meta_path, and this file: what patches
pyanatomist (../anatomistsocket.py) is loaded when pyanatomist's socket module is imported, and
never in a script that does not import it. This file hides the interpreter's own
`sitecustomize` (Debian's, a distribution's, the user's), which it runs in its turn. It is
loaded as a plain file, in interpreters where the ana_headless package may not be importable:
what it needs, it loads by path.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
# The module that defines pyanatomist's socket client class, `Anatomist`.
CLIENT_MODULE = "anatomist.socket.api"


def _run(spec: ModuleSpec) -> ModuleType:
    """Make and run the module of `spec`, as an import does (without importlib.util, which
    would cost every Python child its imports)."""
    module = type(sys)(spec.name)
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__file__ = spec.origin
    sys.modules[spec.name] = module
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _patch(client_module: Any) -> None:
    """Patch pyanatomist's socket client class (anatomistsocket.patch_client_class)."""
    name = "_ana_headless_anatomistsocket"
    patcher = sys.modules.get(name)
    if patcher is None:
        path = os.path.join(os.path.dirname(HERE), "anatomistsocket.py")
        patcher = _run(ModuleSpec(name, SourceFileLoader(name, path), origin=path))
    patcher.patch_client_class(client_module.Anatomist)


class _PatchOnImport:
    """A meta path finder that finds nothing itself: it hands out the spec that the other
    finders give pyanatomist's socket module, with a loader that patches the module's client
    class as soon as the module has run."""

    # This file may run twice in one process, as the launcher's hook and as
    # ana_headless.pythonhook.sitecustomize: its finders know one another by this mark.
    patches_anatomist = True

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != CLIENT_MODULE:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if getattr(finder, "patches_anatomist", False) or find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            _patch(module)

        # On this loader only: a source loader is made for each module it loads.
        loader.exec_module = exec_module
        return spec


def install() -> None:
    """Patch pyanatomist's socket client class in this process, now if it is imported
    already, else as soon as it is. Idempotent."""
    module = sys.modules.get(CLIENT_MODULE)
    if module is not None:
        _patch(module)
    elif not any(getattr(finder, "patches_anatomist", False) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def _run_hidden_sitecustomize() -> None:
    """The `sitecustomize` that this one hides on sys.path, if any."""
    path = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != HERE]
    spec = PathFinder.find_spec("sitecustomize", path)
    if spec is not None and spec.loader is not None:
        _run(spec)


if __name__ == "sitecustomize":
    install()
    _run_hidden_sitecustomize()
