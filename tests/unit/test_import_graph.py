"""The import graph of the project's modules has no cycle, and only the composition root's
callers import it (issue 11: no module below ``ddi.app`` imports ``ddi.app``).

Every import counts: at module level, under ``if TYPE_CHECKING:`` and inside functions, since
a lazy import hides a cycle without removing it. ``from package import name`` is an edge to
``package.name`` when that is a module, else to ``package``. Importing ``a.b`` also runs
``a/__init__``, but that is how packages load, not a dependency of the importer: no edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ddi", "sync", "central")
"""Top-level packages of the project: the edge daemon, the sync wire and agent, the collector."""

ROOT_IMPORTERS = {"ddi.app", "ddi.cli.serve"}
"""The composition root itself, and ``ddi serve``, which runs it."""


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        assert (ROOT / package / "__init__.py").is_file(), f"{package} is not a package"
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """``name`` or its longest prefix that is a project module."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported(module: str, path: Path) -> Iterator[str]:
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                if target is not None:
                    yield target
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                name = f"{base}.{alias.name}"
                target = name if name in MODULES else _resolve(base)
                if target is not None:
                    yield target


def _graph() -> dict[str, set[str]]:
    return {
        module: {m for m in _imported(module, path) if m != module}
        for module, path in MODULES.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def test_the_graph_is_built_from_every_package() -> None:
    graph = _graph()
    assert "ddi.app" in graph
    assert "sync.agent" in graph
    assert "ddi.site" in graph["ddi.app"]
    assert "ddi.api.boot" in graph["ddi.api"]  # `from ddi.api import boot as boot_api`


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_import_graph_has_no_cycle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_only_the_root_and_serve_import_the_composition_root() -> None:
    graph = _graph()
    importers = sorted(m for m, targets in graph.items() if "ddi.app" in targets)
    assert set(importers) <= ROOT_IMPORTERS, f"{importers} import ddi.app"
