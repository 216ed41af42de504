"""Edge and central as real processes over HTTP on loopback, through a fault-injecting proxy.

Every test ends by comparing both sides object by object (nothing lost, nothing doubled) and
checking that central's feed holds each change once, in order. Each runs against central on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from ddi.ipam.models import Lease
from ddi.ipam.store import Store
from sync import protocol

_spec = importlib.util.spec_from_file_location(
    "sync_harness", Path(__file__).with_name("harness.py")
)
assert _spec is not None
assert _spec.loader is not None
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


def lease(n: int, mac: str, *, now: float) -> Lease:
    return Lease(ip=IPv4Address(h.ip_of(n)), mac=mac, start=now, end=now + 3600, subnet="lab")


async def with_offline_store(edge: h.Edge, work: Callable[[Store], Awaitable[None]]) -> None:
    """Write to the edge's store while its daemon is stopped (as a restored backup would)."""
    store = await Store.open(edge.db)
    try:
        await work(store)
    finally:
        await store.close()


async def started(pair: Pair) -> None:
    await pair.central.start()
    await pair.edge.start()
    await h.wait_synced(pair.edge, pair.central, within=60)


@pytest.mark.asyncio
async def test_ten_thousand_changes_made_while_central_is_down_arrive_in_order(
    pair: Pair,
) -> None:
    edge, central = pair.edge, pair.central
    await edge.start()
    await edge.add_hosts(range(2000))
    await edge.stop()
    now = time.time()

    async def leases(store: Store) -> None:
        for start in range(0, 8000, 500):
            await store.commit_leases(
                [lease(10_000 + n, f"02:00:00:00:{n >> 8:02x}:{n & 255:02x}", now=now)
                 for n in range(start, start + 500)]
            )  # fmt: skip

    await with_offline_store(edge, leases)
    await edge.start()
    status = await edge.status()
    assert status["link"] != "up"
    assert status["backlog_entries"] >= 10_000
    await central.start()
    t0 = time.monotonic()
    await h.wait_synced(edge, central, within=180)
    print(f"caught up in {time.monotonic() - t0:.1f} s")
    await h.assert_same(edge, central)
    feed = await central.feed(site=h.SITE)
    assert [c["seq"] for c in feed] == h.edge_log_seqs(edge.db)


@pytest.mark.asyncio
@pytest.mark.sync_settings(batch_max_entries=40)
async def test_cut_mid_batch_and_lost_response_apply_once(pair: Pair) -> None:
    await started(pair)
    pair.proxy.arm("cut", b"/batches")
    pair.proxy.arm("lose", b"/batches")
    await pair.edge.add_hosts(range(200))
    await h.wait_synced(pair.edge, pair.central, within=60)
    assert pair.proxy.fired == ["cut", "lose"]
    await h.assert_same(pair.edge, pair.central)


@pytest.mark.asyncio
@pytest.mark.sync_settings(batch_max_entries=30)
async def test_duplicated_and_delayed_requests_apply_once(pair: Pair) -> None:
    await started(pair)
    pair.proxy.mode = "duplicate"
    pair.proxy.delay = 0.005
    await pair.edge.add_hosts(range(150))
    await h.wait_synced(pair.edge, pair.central, within=90)
    await h.assert_same(pair.edge, pair.central)


@pytest.mark.asyncio
@pytest.mark.sync_settings(batch_max_entries=25)
async def test_central_restart_between_commit_and_ack(pair: Pair) -> None:
    await started(pair)
    pair.proxy.on_lose = pair.central.kill
    pair.proxy.arm("lose", b"/batches")
    await pair.edge.add_hosts(range(100))
    await h.wait_for(lambda: pair.proxy.fired, within=30, what="the lost acknowledgement")
    assert pair.central.proc is None
    status = await pair.edge.status()
    assert status["backlog_entries"] > 0
    await pair.central.start()
    await h.wait_synced(pair.edge, pair.central, within=60)
    await h.assert_same(pair.edge, pair.central)


@pytest.mark.asyncio
async def test_edge_restart_with_backlog(pair: Pair) -> None:
    await pair.edge.start()
    await pair.edge.add_hosts(range(300))
    before = await pair.edge.status()
    await pair.edge.stop()
    await pair.edge.start()
    after = await pair.edge.status()
    assert after["backlog_entries"] == before["backlog_entries"] >= 300
    await pair.central.start()
    await h.wait_synced(pair.edge, pair.central, within=60)
    await h.assert_same(pair.edge, pair.central)


def _refused_metric(text: str, reason: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'ddi_sync_central_refused_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.asyncio
async def test_forged_other_site_replayed_and_unknown_batches_are_refused(
    pair: Pair, tmp_path: Path
) -> None:
    edge, central = pair.edge, pair.central
    await started(pair)
    await edge.add_hosts(range(5))
    await h.wait_synced(edge, central)
    before_feed = await central.feed()
    state = await central.get(f"/v1/sites/{h.SITE}")
    site_key = protocol.load_private_key(edge.key.read_bytes())
    other_key = protocol.generate_key()
    other_pub = tmp_path / "other.pub"
    other_pub.write_bytes(protocol.public_key_pem(other_key.public_key()))
    central.cli("site", "add", "--id", "s2", "--public-key", str(other_pub))
    con = sqlite3.connect(f"file:{edge.db}?mode=ro", uri=True)
    rows = con.execute("SELECT seq FROM change ORDER BY seq LIMIT 2").fetchall()
    con.close()
    old = [e for e in (await central.feed(site=h.SITE)) if e["seq"] in {r[0] for r in rows}]
    old_entries = [
        {k: e[k] for k in ("epoch", "seq", "kind", "object_id", "op", "image", "actor",
                            "reason", "time")}
        for e in old
    ]  # fmt: skip
    nxt = state["applied_seq"] + 1
    entry = dict(old_entries[0]) | {"seq": nxt}

    def batch(site: str, key: Any, entries: list[dict[str, Any]], from_seq: int) -> Any:
        b = protocol.make_batch(site=site, epoch=state["epoch"], from_seq=from_seq,
                                to_seq=entries[-1]["seq"], entries=entries, key=key)  # fmt: skip
        return protocol.batch_upload(b)

    cases = [
        (f"/v1/sites/{h.SITE}/batches", batch(h.SITE, other_key, [entry], nxt), "bad_signature"),
        (f"/v1/sites/{h.SITE}/batches", batch("s2", other_key, [entry], nxt), "wrong_site"),
        (f"/v1/sites/{h.SITE}/batches", batch(h.SITE, site_key, old_entries, 1), "replay"),
        ("/v1/sites/nosuch/batches", batch("nosuch", site_key, [entry], 1), "unknown_site"),
    ]
    for path, body, reason in cases:
        status, answer = await central.post(path, body)
        assert status in (403, 404), (reason, status, answer)
        assert answer["reason"] == reason
    sites = await central.get("/v1/sites")
    s1 = next(s for s in sites["sites"] if s["site"] == h.SITE)
    assert s1["refused"] == {"bad_signature": 1, "wrong_site": 1, "replay": 1}
    # An unknown site is counted in the metric only: made-up names add no rows.
    assert sites["refused_unknown"] == {}
    metrics_text = await central_metrics(central)
    for reason in ("bad_signature", "wrong_site", "replay", "unknown_site"):
        assert _refused_metric(metrics_text, reason) == 1.0, reason
    # ddi-central's own registry: no edge metric on the collector.
    assert "ddi_sync_link_up" not in metrics_text
    assert "ddi_sync_backlog_entries" not in metrics_text
    assert await central.feed() == before_feed
    assert (await central.get(f"/v1/sites/{h.SITE}"))["applied_seq"] == state["applied_seq"]
    await h.assert_same(edge, central)


async def central_metrics(central: h.Central) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"{central.url}/metrics") as r:
        return await r.text()


@pytest.mark.asyncio
@pytest.mark.sync_settings(outbox_soft_limit=40, outbox_hard_limit=50, batch_max_entries=20)
async def test_log_compacted_past_centrals_cursor_is_healed_by_a_snapshot(pair: Pair) -> None:
    edge, central = pair.edge, pair.central
    await started(pair)
    await edge.add_hosts(range(10))
    await h.wait_synced(edge, central)
    await central.stop()
    client = edge.api()
    for n in range(3):
        await asyncio.to_thread(client.delete, f"/v1/hosts/h{n}", {"actor": "t", "reason": "r"})
    await edge.add_hosts(range(100, 180))
    assert (await edge.status())["backlog_entries"] == 83
    await central.start()
    status = await h.wait_synced(edge, central, within=90)
    assert status["epoch"] == 2
    assert status["snapshots_sent"] >= 1
    await h.assert_same(edge, central)
    deleted = {c["object_id"] for c in await central.feed(site=h.SITE) if c["op"] == "delete"}
    assert len(deleted) == 3


@pytest.mark.asyncio
async def test_central_reservation_reaches_edge_and_conflicting_ones_are_reported(
    pair: Pair,
) -> None:
    edge, central = pair.edge, pair.central
    await started(pair)
    await edge.add_hosts([1])
    await h.wait_synced(edge, central)
    await edge.stop()
    now = time.time()
    await with_offline_store(
        edge, lambda store: store.commit_leases([lease(50, "02:00:00:00:00:50", now=now)])
    )
    await edge.start()
    await central.stop()
    await edge.add_hosts([2])
    mac2 = h.host_body(2)["mac"]
    central.cli("reserve", "add", "--site", h.SITE, "--mac", "52:54:00:ff:00:01",
                "--ip", h.ip_of(900), "--hostname", "pxe1", "--boot", "uefi")  # fmt: skip
    central.cli("reserve", "add", "--site", h.SITE, "--mac", mac2, "--ip", h.ip_of(901),
                "--hostname", "pxe2")  # fmt: skip
    central.cli("reserve", "add", "--site", h.SITE, "--mac", "52:54:00:ff:00:03",
                "--ip", h.ip_of(50), "--hostname", "pxe3")  # fmt: skip
    refused = central.cli("reserve", "add", "--site", h.SITE, "--mac", h.host_body(1)["mac"],
                          "--ip", h.ip_of(902), "--hostname", "pxe4", check=False)  # fmt: skip
    assert refused.returncode == 1
    assert "mac" in refused.stderr
    await central.start()

    async def reported() -> list[dict[str, Any]]:
        answer = await asyncio.to_thread(central.cli, "conflicts", "--json")
        rows = json.loads(answer.stdout)
        return rows if len(rows) == 2 else []

    rows = await h.wait_for(reported, within=60, what="two conflicts at central")
    assert sorted(r["field"] for r in rows) == ["ip", "mac"]
    await h.wait_synced(edge, central)
    served = await asyncio.to_thread(edge.api().get, "/v1/hosts/52:54:00:ff:00:01")
    assert served["host"]["owner"] == "central"
    assert served["host"]["boot"] == "uefi"
    assert served["host"]["ip"] == h.ip_of(900)
    mine = await asyncio.to_thread(edge.api().get, f"/v1/hosts/{mac2}")
    assert mine["host"]["owner"] == "edge"
    assert mine["host"]["ip"] == h.ip_of(2)
    edge_conflicts = (await asyncio.to_thread(edge.api().get, "/v1/sync/conflicts"))["conflicts"]
    assert sorted(c["field"] for c in edge_conflicts) == ["ip", "mac"]
    assert (await edge.status())["conflicts"] == 2
    cli = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ddi", "--socket", str(edge.socket), "sync", "conflicts"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert mac2 in cli.stdout
    assert h.ip_of(50) in cli.stdout
    by_mac = next(c for c in edge_conflicts if c["field"] == "mac")
    resolved = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ddi", "--socket", str(edge.socket), "sync", "resolve",
         str(by_mac["id"]), "--keep", "central", "--reason", "rack moved"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    taken = await asyncio.to_thread(edge.api().get, f"/v1/hosts/{mac2}")
    assert taken["host"]["owner"] == "central"
    assert taken["host"]["ip"] == h.ip_of(901)

    async def resolved_at_central() -> bool:
        answer = await asyncio.to_thread(central.cli, "conflicts", "--json")
        return any(r["field"] == "mac" and r["resolved_at"] for r in json.loads(answer.stdout))

    await h.wait_for(resolved_at_central, within=30, what="the resolution at central")
    await h.wait_synced(edge, central)
    await h.assert_same(edge, central)


@pytest.mark.asyncio
async def test_sync_status_and_now_from_the_cli(pair: Pair) -> None:
    await pair.edge.start()
    await pair.edge.add_hosts(range(3))

    async def ddi(*args: str) -> subprocess.CompletedProcess[str]:
        # In a thread: the proxy runs on this test's event loop.
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "ddi", "--socket", str(pair.edge.socket), "sync", *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    down = await ddi("now", "--timeout", "5")
    assert down.returncode == 1
    assert "down" in down.stdout
    await pair.central.start()
    up = await ddi("now", "--timeout", "30")
    assert up.returncode == 0, up.stdout + up.stderr
    status = json.loads((await ddi("status", "--json")).stdout)
    assert status["link"] == "up"
    assert status["backlog_entries"] == 0
    assert status["oldest_unsynced_age"] is None
    text = (await ddi("status")).stdout
    assert "backlog" in text
    assert "epoch" in text
    await h.assert_same(pair.edge, pair.central)


@pytest.mark.asyncio
async def test_smoke(pair: Pair) -> None:
    await pair.edge.start()
    await pair.edge.add_hosts(range(20))
    status = await pair.edge.status()
    assert status["link"] in ("down", "unknown")
    assert status["backlog_entries"] >= 20
    await pair.central.start()
    await h.wait_synced(pair.edge, pair.central, within=60)
    await h.assert_same(pair.edge, pair.central)
