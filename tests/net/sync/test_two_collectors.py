"""Two ``ddi-central serve`` processes behind one PostgreSQL, edges uploading to both, one
collector SIGKILLed mid-run: the pull feed still holds every change once, in ``gseq`` order,
and each site's objects at central equal the edge's store.

An edge's ``[sync]`` names one central URL, so each collector is reached through an address
of its own (a TCP proxy standing for its DNS name or virtual IP): half the edges use each.
When a collector is killed, its address is repointed at the survivor, as an operator or a
load balancer would; the edges keep running and are not told.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

_spec = importlib.util.spec_from_file_location(
    "sync_harness", Path(__file__).with_name("harness.py")
)
assert _spec is not None
assert _spec.loader is not None
h = importlib.util.module_from_spec(_spec)
sys.modules["sync_harness"] = h
_spec.loader.exec_module(h)

SITES = ("s1", "s2", "s3", "s4")
HOSTS = 250
"""Reservations each edge adds while the run lasts (then it deletes every tenth)."""


@dataclass
class Cluster:
    centrals: tuple[h.Central, h.Central]
    addresses: tuple[h.FaultProxy, h.FaultProxy]
    edges: list[h.Edge]


@pytest_asyncio.fixture
async def cluster(fresh_pg_database: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    """Two collectors on one database (one signing key, as one service), each behind its
    own address, and four edges, two per address; nothing started yet."""
    first = tmp_path / "central-a"
    first.mkdir()
    key = h.write_key(first / "central.key")
    second = tmp_path / "central-b"
    second.mkdir()
    shutil.copy(key, second / "central.key")
    shutil.copy(f"{key}.pub", second / "central.key.pub")
    a = h.Central(first, fresh_pg_database, None)
    b = h.Central(second, fresh_pg_database, None)
    addresses = (h.FaultProxy(a.port), h.FaultProxy(b.port))
    for address in addresses:
        await address.start()
    edges = []
    for i, site in enumerate(SITES):
        address = addresses[i % 2]
        edge = h.Edge(
            tmp_path / site,
            f"http://127.0.0.1:{address.port}",
            Path(f"{key}.pub"),
            site=site,
        )
        a.cli("site", "add", "--id", site, "--public-key", f"{edge.key}.pub")
        edges.append(edge)
    try:
        yield Cluster(centrals=(a, b), addresses=addresses, edges=edges)
    finally:
        for edge in edges:
            await edge.stop()
        await a.stop()
        await b.stop()
        for address in addresses:
            await address.close()


def _write(edge: h.Edge) -> None:
    """Reservations one by one over the edge's API, then deletions of every tenth."""
    client = edge.api()
    ids = []
    for n in range(1, HOSTS + 1):
        ids.append(client.post("/v1/hosts", h.host_body(n))["host"]["id"])
    for host_id in ids[::10]:
        client.delete(f"/v1/hosts/{host_id}", {"actor": "test", "reason": "gone"})


class FeedReader:
    """A pull-feed consumer paging with ``after=`` from whichever collector answers, all
    through the run: a row committed late with a smaller ``gseq`` would be skipped."""

    def __init__(self, centrals: tuple[h.Central, h.Central]) -> None:
        self.centrals = centrals
        self.alive = [True, True]
        self.rows: list[dict[str, Any]] = []
        self.pages = 0

    @property
    def after(self) -> int:
        return self.rows[-1]["gseq"] if self.rows else 0

    async def page(self) -> int:
        """One page from the next live collector; returns the rows it added."""
        i = self.pages % 2
        if not self.alive[i]:
            i = 1 - i
        self.pages += 1
        try:
            page = await self.centrals[i].get(f"/v1/changes?after={self.after}&limit=97")
        except (aiohttp.ClientError, OSError):
            return 0  # the collector was killed under this read
        self.rows.extend(page["changes"])
        return len(page["changes"])

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not await self.page():
                await asyncio.sleep(0.05)  # caught up: poll, as a consumer does


async def _feed_count(central: h.Central) -> int:
    return len((await central.get("/v1/changes?after=0&limit=10000"))["changes"])


@pytest.mark.asyncio
async def test_two_collectors_share_one_database_and_one_is_killed_mid_run(
    cluster: Cluster,
) -> None:
    a, b = cluster.centrals
    address_a, address_b = cluster.addresses
    # Every upload to b also reaches a: the same batch applied by two collectors at once.
    address_b.mode = "duplicate"
    address_b.duplicate_to = a.port
    await asyncio.gather(a.start(), b.start())
    for edge in cluster.edges:
        await edge.start()
    reader = FeedReader(cluster.centrals)
    stop = asyncio.Event()
    reading = asyncio.create_task(reader.run(stop))
    writing = [asyncio.create_task(asyncio.to_thread(_write, e)) for e in cluster.edges]

    total = len(SITES) * (1 + HOSTS + HOSTS // 10)
    await h.wait_for(
        lambda: _at_least(b, total // 4), within=120, what="a quarter of the run at central",
        interval=0.05,
    )  # fmt: skip
    # Killed once it has committed a batch and before its answer leaves: the edge must not
    # lose or double it when it sends it again, to the other collector.
    killed = asyncio.Event()

    def kill() -> None:
        a.kill()
        killed.set()

    address_a.on_lose = kill
    address_a.arm("lose", b"/batches")
    await asyncio.wait_for(killed.wait(), timeout=60)
    assert not all(w.done() for w in writing), "the edges finished before the kill"
    reader.alive[0] = False
    address_a.upstream = b.port
    await asyncio.gather(*writing)
    for edge in cluster.edges:
        await h.wait_synced(edge, b, within=120)
    stop.set()
    await reading
    await h.wait_for(lambda: _drained(reader), within=60, what="the reader to catch up")

    feed = await b.feed()
    gseqs = [c["gseq"] for c in feed]
    assert gseqs == list(range(1, len(feed) + 1)), "the feed has a gap or a repeat"
    assert len(feed) == total
    # The consumer paging during the run, across both collectors and the kill, saw the same.
    assert [c["gseq"] for c in reader.rows] == gseqs
    assert reader.rows == feed
    for edge in cluster.edges:
        mine = [(c["epoch"], c["seq"]) for c in feed if c["site"] == edge.site]
        status = await edge.status()
        seqs = h.edge_log_seqs(edge.db)
        assert mine == [(status["epoch"], s) for s in seqs], edge.site
        await h.assert_same(edge, b)
    # The killed collector comes back on the same database and serves the same feed.
    await a.start()
    assert await a.feed() == feed


async def _at_least(central: h.Central, count: int) -> bool:
    return await _feed_count(central) >= count


async def _drained(reader: FeedReader) -> bool:
    return await reader.page() == 0 and await reader.page() == 0
