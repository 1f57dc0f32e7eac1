"""docs/design.md's import graph is the package's: regenerate it with scripts/import-graph.py
when an import between modules changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_design_docs_import_graph_is_current() -> None:
    graph = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import-graph.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    documented = (ROOT / "docs" / "design.md").read_text()
    assert graph.strip() in documented, "update docs/design.md from scripts/import-graph.py"
