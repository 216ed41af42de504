"""The netboot selection and the TFTP session stay pure (STYLE.md R18)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

PURE = ["ddi.dhcp.netboot", "ddi.boot.tftp_session"]
FORBIDDEN = {"asyncio", "socket", "aiosqlite", "aiohttp", "asyncpg", "prometheus_client",
             "time", "random", "os", "pathlib", "ddi.metrics", "ddi.boot.tftp", "ddi.boot.http",
             "ddi.boot.files"}  # fmt: skip


def _imports(module: str) -> set[str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None
    assert spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io(module: str) -> None:
    bad = {
        name
        for name in _imports(module)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not bad, f"{module} imports {sorted(bad)}"
