"""The DIRECT Anatomist, BrainVISA's default implementation: pyaims' and pyanatomist's sip
bindings, which load libanatomist, Qt's OpenGL and the GL library into the script's own process,
as `make anatomist-direct` builds them on top of `make anatomist`'s build. Tests that need them
skip, naming `make anatomist-direct`, where they are not built."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT, ana_env
from tests.real_anatomist.conftest import (
    ANATOMIST_ROOT,
    DEBIAN_PYTHON,
    PREFIX,
    SITE,
    skip_unless_built,
)

DIRECT = ANATOMIST_ROOT / "build-direct"
# soma, soma.aims and anatomist (with anatomist.headless), and their two sip modules.
DIRECT_PYTHON = DIRECT / "python"
DIRECT_NEEDED = (
    DIRECT_PYTHON / "anatomist" / "cpp" / "anatomistsip.so",
    DIRECT_PYTHON / "soma" / "aims" / "aimssip.so",
    PREFIX / "lib",
    SITE / "click",
)


@pytest.fixture
def direct_env(tmp_path: Path) -> dict[str, str]:
    """What a BrainVISA user's environment gives the direct Anatomist: the bindings and the
    pure-Python packages beside them, the bindings' helper libraries before the socket build's,
    its shared files, ana_headless importable by Debian's Python; and a fresh HOME (Anatomist
    writes ~/.anatomist, and another version's settings open a modal dialog)."""
    skip_unless_built(
        *DIRECT_NEEDED,
        what="the DIRECT Anatomist's bindings are not built",
        how="`make anatomist-direct` builds them on top of `make anatomist` (about 6 min)",
    )
    home = tmp_path / "home"
    home.mkdir()
    return ana_env(
        LD_LIBRARY_PATH=os.pathsep.join(
            filter(
                None,
                [str(DIRECT / "lib"), str(PREFIX / "lib"), os.environ.get("LD_LIBRARY_PATH")],
            )
        ),
        BRAINVISA_SHARE=str(PREFIX / "share"),
        PYTHONPATH=os.pathsep.join(map(str, (ROOT, SITE, DIRECT_PYTHON))),
        ANA_HEADLESS_PYTHON=DEBIAN_PYTHON,
        HOME=str(home),
    )
