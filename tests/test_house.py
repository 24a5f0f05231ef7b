"""The shape of the code: no import cycles between modules, dependencies point one way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports() -> dict[str, set[str]]:
    """``module -> modules of this project it imports`` (at any level: lazy imports count too)."""
    files = {}
    for package in ("search_engine", "indexer"):
        for p in (ROOT / package).rglob("*.py"):
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = p
    edges = {m: set() for m in files}
    for m, p in files.items():
        package = m if p.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            edges[m] |= {n for n in names if n in files and n != m}
    return edges


def test_no_module_imports_one_that_imports_it_back():
    edges = _imports()
    packages = {m for m in edges if (ROOT / m.replace(".", "/") / "__init__.py").exists()}
    graph = {m: edges[m] - packages for m in edges if m not in packages}  # a package re-exports its modules

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo += graph.get(m, ())
        return False

    cycles = sorted((a, b) for a in graph for b in graph[a] if reaches(b, a))
    assert cycles == [], f"import cycles: {cycles}"


def test_search_engine_never_imports_indexer():
    """``indexer`` uses ``search_engine``, never the reverse; the one exception is the command line
    (``search_engine.cli``), the application shell over both APIs (its ``index`` command)."""
    edges = _imports()
    reverse = {(m, t) for m, ts in edges.items() if m.startswith("search_engine") for t in ts if t.startswith("indexer")}
    assert reverse == {("search_engine.cli", "indexer")}
