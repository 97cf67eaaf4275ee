"""What import-linter (pyproject's contracts, run by .ci/run) cannot see: the top-level module service.py and
private names. service.py, scripts/, experiments/ and tools/ are entry points nothing outside them imports; no
package reaches into another's private names (a leading underscore), so each layer's public functions are its whole
interface."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO

PACKAGES = (
    "sentiment",
    "fallback",
    "runners",
    "api",
    "batch",
    "training",
    "drift",
    "dashboard",
    "scripts",
    "experiments",
    "tools",
)
ENTRY_POINTS = ("service", "scripts", "experiments", "tools")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


def _sources() -> list[Path]:
    return [REPO / "service.py", *(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))]


def test_nothing_imports_the_entry_points() -> None:
    offenders = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in _sources()
        for module, _ in _imports(path)
        if module.split(".")[0] in ENTRY_POINTS and module.split(".")[0] != path.parts[len(REPO.parts)]
    ]
    assert offenders == []


def test_no_private_names_cross_a_package_boundary() -> None:
    offenders = []
    for path in _sources():
        own = path.parts[len(REPO.parts)]
        for module, names in _imports(path):
            top = module.split(".")[0]
            if top in PACKAGES and top != own.removesuffix(".py"):
                offenders += [f"{path.relative_to(REPO)}: {module}.{n}" for n in names if n.startswith("_")]
    assert offenders == []
