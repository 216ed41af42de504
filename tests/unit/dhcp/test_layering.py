"""R18 for the DHCP cores: the codec, engine and allocator import no I/O, clock or randomness,
and never the transport."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

PURE = ["ddi.dhcp.options", "ddi.dhcp.packet", "ddi.dhcp.engine", "ddi.ipam.allocator"]
FORBIDDEN = {"asyncio", "socket", "aiosqlite", "aiohttp", "prometheus_client", "time", "random",
             "ddi.dhcp.server", "ddi.dhcp.commit", "ddi.metrics", "ddi.ipam.store"}  # fmt: skip


def _imports(module: str) -> set[str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None
    assert spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_nothing_forbidden(module: str) -> None:
    bad = {
        name
        for name in _imports(module)
        for f in FORBIDDEN
        if name == f or name.startswith(f + ".")
    }
    assert not bad, f"{module} imports {sorted(bad)}"
