"""R18 for the DNS package: the pure modules import no I/O, clock or randomness, and the
engine layers depend downward only (transport → engine → zone/wire)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ddi.dns

PURE = ["zone", "engine", "wire", "cache", "tsig", "xfr"]
FORBIDDEN = {"asyncio", "socket", "aiosqlite", "aiohttp", "prometheus_client", "time", "random"}
PACKAGE = Path(ddi.dns.__file__).parent


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", PURE)
def test_pure_dns_modules_do_no_io(module: str) -> None:
    roots = {name.split(".")[0] for name in _imports(module)}
    assert not roots & FORBIDDEN
    assert "ddi.metrics" not in _imports(module)


@pytest.mark.parametrize("module", PURE)
def test_cores_never_import_transports(module: str) -> None:
    assert not _imports(module) & {"ddi.dns.server", "ddi.dns.forward"}
