#!/usr/bin/env python3
"""Print the package's internal import graph: for each module, the modules of ana_headless it
imports at run time (at module level or inside functions), leaving out type-only imports under
`if TYPE_CHECKING:`. Used to keep the design's picture (docs/design.md) true.

    python3 scripts/import-graph.py
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ana_headless"


def _type_checking_block(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and (node.test.id == "TYPE_CHECKING")
    )


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            return
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def main() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem == "_version":
            continue
        used = sorted(imports_of(path) - {"_version"})
        print(f"{path.stem:14} -> {', '.join(used) if used else '(nothing of ours)'}")


if __name__ == "__main__":
    main()
