"""Run by the Python children of `ana-headless run` and `exec` (the launcher puts this
directory first on their PYTHONPATH), at their start, before their own code: scripts that use
pyanatomist's socket implementation unchanged then get a port of their own for their
`anatomist` program, and a connection as soon as it listens (../anatomistsocket.py says why).

It costs one module-finder on sys.meta_path; a script that never imports pyanatomist loads
nothing more. This file hides the interpreter's own `sitecustomize` (Debian's, a
distribution's, the user's), which it runs in its turn. It is loaded as a plain file, in
interpreters where the ana_headless package may not be importable: what it needs is loaded
by path.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(spec: ModuleSpec) -> object:
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


def _install() -> None:
    path = os.path.join(os.path.dirname(HERE), "anatomistsocket.py")
    name = "_ana_headless_anatomistsocket"
    anatomistsocket = _run(ModuleSpec(name, SourceFileLoader(name, path), origin=path))
    anatomistsocket.install_import_hook()  # type: ignore[attr-defined]


def _run_hidden_sitecustomize() -> None:
    """The `sitecustomize` that this one hides on sys.path, if any."""
    path = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != HERE]
    spec = PathFinder.find_spec("sitecustomize", path)
    if spec is not None and spec.loader is not None:
        _run(spec)


if __name__ == "sitecustomize":
    _install()
    _run_hidden_sitecustomize()
