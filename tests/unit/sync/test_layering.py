"""R18 for sync: the wire format, outbox policy and backoff import no I/O, clock or randomness;
only the central store imports a database driver; the edge never imports the collector."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

PURE = ["sync.protocol", "sync.outbox", "sync.backoff"]
FORBIDDEN = {"asyncio", "socket", "aiosqlite", "aiohttp", "asyncpg", "prometheus_client",
             "time", "random", "ssl", "ddi.metrics", "ddi.ipam.store", "sync.agent",
             "sync.central", "sync.central_store"}  # fmt: skip
DRIVERS = {"aiosqlite", "asyncpg", "sqlite3"}


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


def _hits(module: str, names: set[str]) -> set[str]:
    return {n for n in _imports(module) for f in names if n == f or n.startswith(f + ".")}


@pytest.mark.parametrize("module", PURE)
def test_pure_sync_module_imports_nothing_forbidden(module: str) -> None:
    assert not _hits(module, FORBIDDEN)


@pytest.mark.parametrize(
    "module", ["sync.agent", "sync.central", "sync.central_cli", "ddi.api.sync", "ddi.cli.sync"]
)
def test_only_the_central_store_imports_a_database_driver(module: str) -> None:
    assert not _hits(module, DRIVERS)


def test_the_edge_agent_never_imports_the_collector() -> None:
    assert not _hits("sync.agent", {"sync.central", "sync.central_store", "sync.central_cli"})


def test_the_cli_talks_to_the_daemon_only() -> None:
    assert not _hits("ddi.cli.sync", {"sync", "ddi.ipam.store", "aiohttp"})
