"""The agent against a dead central while the site is busy: committed changes do not cut the
backoff short (only ``sync now`` does), counted in connection attempts on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ddi.config import SyncConfig
from ddi.ipam.models import Host
from ddi.ipam.store import Store
from sync import protocol
from sync.agent import SyncAgent
from tests.unit.dhcp.sim import LAN


class DeadCentral:
    """A listener that closes every connection at once, and counts them."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class Busy:
    store: Store
    central: DeadCentral
    config: SyncConfig


@pytest_asyncio.fixture
async def busy(tmp_path: Path) -> AsyncIterator[Busy]:
    (tmp_path / "site.key").write_bytes(protocol.private_key_pem(protocol.generate_key()))
    central_key = protocol.generate_key().public_key()
    (tmp_path / "central.pub").write_bytes(protocol.public_key_pem(central_key))
    dead = DeadCentral()
    port = await dead.start()
    store = await Store.open(tmp_path / "edge.sqlite", domain="site.example")
    await store.sync_subnets([LAN], actor="t", reason="r")
    config = SyncConfig(
        central_url=f"http://127.0.0.1:{port}",
        insecure_http=True,
        site_key=tmp_path / "site.key",
        central_public_key=tmp_path / "central.pub",
        backoff_base=0.5,
        backoff_cap=1.0,
        poll_interval=0.1,
        timeout=5.0,
    )
    try:
        yield Busy(store, dead, config)
    finally:
        await store.close()
        await dead.close()


@contextlib.asynccontextmanager
async def running(agent: SyncAgent) -> AsyncIterator[SyncAgent]:
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Callable[[], Any], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def commit_for(store: Store, seconds: float) -> int:
    """Commit changes back to back (a busy site) for ``seconds``; how many."""
    commits = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        host = Host(id="", ip=IPv4Address("198.18.0.77"), hostname="busy", mac="52:54:00:00:00:77")
        added = await store.add_host(host, actor="t", reason="busy")
        await store.remove_host(added.object_id, actor="t", reason="busy")
        commits += 2
        await asyncio.sleep(0.005)  # a pace, not a synchronisation
    return commits


@pytest.mark.asyncio
async def test_changes_do_not_cut_the_backoff_short_while_central_is_down(busy: Busy) -> None:
    # jitter 0.99: waits of 0.5 s, then 1 s (the cap): in 3 s about five rounds, whatever
    # the site commits. Each change used to end the wait: dozens of rounds a second.
    agent = SyncAgent(store=busy.store, site="s1", config=busy.config, rng=lambda: 0.99)
    async with running(agent):
        await until(lambda: agent.link == "down", "the first failed round")
        commits = await commit_for(busy.store, 3.0)
        rounds = busy.central.connections
    assert commits > 20  # each would have ended a wait: well over 8 rounds (fsyncs set the pace)
    assert rounds <= 8, f"{rounds} connection attempts in 3 s of backoff"


@pytest.mark.asyncio
async def test_sync_now_still_cuts_the_backoff_short(busy: Busy) -> None:
    config = SyncConfig(**{**_fields(busy.config), "backoff_base": 60.0, "backoff_cap": 120.0})
    agent = SyncAgent(store=busy.store, site="s1", config=config, rng=lambda: 0.99)
    async with running(agent):
        await until(lambda: agent.link == "down", "the first failed round")
        await commit_for(busy.store, 0.5)
        before = busy.central.connections
        async with asyncio.timeout(10):
            assert not await agent.sync_now()
        assert busy.central.connections > before


def _fields(config: SyncConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in SyncConfig.__dataclass_fields__}
