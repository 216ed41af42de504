"""Edge and central as real processes over HTTP on loopback, through a fault-injecting proxy.

Every test ends by comparing both sides object by object (nothing lost, nothing doubled) and
checking that central's feed holds each change once, in order. Each runs against central on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

_spec = importlib.util.spec_from_file_location(
    "sync_harness", Path(__file__).with_name("harness.py")
)
assert _spec is not None and _spec.loader is not None
h = importlib.util.module_from_spec(_spec)
sys.modules["sync_harness"] = h
_spec.loader.exec_module(h)


@dataclass
class Pair:
    edge: h.Edge
    central: h.Central
    proxy: h.FaultProxy


@pytest_asyncio.fixture
async def pair(
    central_db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Pair]:
    """An edge whose [sync] goes through a proxy to a (not yet started) central."""
    marker = request.node.get_closest_marker("sync_settings")
    settings = marker.kwargs if marker else {}
    central_port = h.free_port()
    proxy = h.FaultProxy(central_port)
    await proxy.start()
    edge_folder = tmp_path / "edge"
    edge_folder.mkdir()
    central_folder = tmp_path / "central"
    central_folder.mkdir()
    central_key = h.write_key(central_folder / "central.key")
    edge = h.Edge(
        edge_folder, f"http://127.0.0.1:{proxy.port}", Path(f"{central_key}.pub"), **settings
    )
    central = h.Central(central_folder, central_db, Path(f"{edge.key}.pub"), port=central_port)
    try:
        yield Pair(edge=edge, central=central, proxy=proxy)
    finally:
        await edge.stop()
        await central.stop()
        await proxy.close()


@pytest.mark.asyncio
async def test_smoke(pair: Pair) -> None:
    await pair.edge.start()
    await pair.edge.add_hosts(range(20))
    status = await pair.edge.status()
    assert status["link"] in ("down", "unknown")
    assert status["backlog_entries"] >= 20
    await pair.central.start()
    await h.wait_synced(pair.edge, pair.central, timeout=60)
    await h.assert_same(pair.edge, pair.central)
