"""A full disk is an operating condition: the store on a small tmpfs that the test fills.

Writes the disk refuses raise ``StoreWriteFailed`` ("store write failed: disk full"), write
nothing, are logged once per interval without a traceback, answer 503 on the API without
counting an internal error, and no lease is acknowledged that is not stored; once space
returns, writes succeed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from ddi.api import build_app
from ddi.app import App, watch_store
from ddi.config import load_config
from ddi.dhcp.commit import GroupCommitter
from ddi.errors import StoreWriteFailed
from ddi.ipam.models import Host, Lease
from ddi.ipam.store_health import DiskSpace, WriteHealth
from ddi.ipam.transaction import write_failure
from ddi.site import open_site
from tests.diskfull import fill, small_filesystem
from tests.waiting import until

SITE = """\
[site]
id = "full"
domain = "site.example"
data_dir = "{data}"

[api]
socket = "{sock}"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"

[dhcp]
enabled = false
"""


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with small_filesystem(tmp_path / "small") as mounted:
        yield mounted


@pytest_asyncio.fixture
async def full_app(small_fs: Path, tmp_path: Path) -> AsyncIterator[tuple[App, Path]]:
    """A site whose data dir is a small tmpfs; the test fills it with ``fill``."""
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(data=small_fs, sock=tmp_path / "ddi.sock"))
    async with open_site(load_config(path)) as site:
        yield App(site), small_fs


def host(n: int) -> Host:
    return Host(
        id="", ip=IPv4Address(f"198.18.0.{n}"), hostname=f"h{n}", mac=f"52:54:00:00:00:{n:02x}"
    )


def lease(n: int) -> Lease:
    now = time.time()
    return Lease(ip=IPv4Address(f"198.18.0.{n}"), mac=f"52:54:00:00:01:{n:02x}", start=now,
                 end=now + 600, subnet="lan")  # fmt: skip


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.asyncio
async def test_a_full_disk_refuses_writes_by_name_then_recovers(
    full_app: tuple[App, Path], caplog: pytest.LogCaptureFixture
) -> None:
    app, data = full_app
    store = app.site.store
    filler = fill(data)
    caplog.clear()
    caplog.set_level(logging.INFO)
    before = (await store.hosts(), await store.last_seq())
    for n in range(10, 60):
        with pytest.raises(StoreWriteFailed) as caught:
            await store.add_host(host(n), actor="op", reason="")
        assert str(caught.value) == "store write failed: disk full"
        assert caught.value.cause == "disk full"
    with pytest.raises(StoreWriteFailed):
        await store.commit_leases([lease(100)])
    assert (await store.hosts(), await store.last_seq()) == before  # nothing was written
    assert store.health.failures == 51
    assert store.health.last_error == "store write failed: disk full"
    # Rate-limited: one line for the whole burst, and no traceback.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "store write failed: disk full" in errors[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert store.disk_space().low

    filler.unlink()
    change = await store.add_host(host(60), actor="op", reason="")
    assert change.seq == before[1] + 1
    assert [h.hostname for h in await store.hosts()] == ["h60"]
    assert "store writes succeed again (51 refused since start" in caplog.text


@pytest.mark.asyncio
async def test_the_api_answers_503_and_counts_no_internal_error(
    full_app: tuple[App, Path],
) -> None:
    app, data = full_app
    internal = metric("ddi_internal_errors_total", area="api")
    async with TestClient(TestServer(build_app(app))) as client:
        filler = fill(data)
        body = {"mac": "52:54:00:00:00:0a", "ip": "198.18.0.10", "hostname": "h10"}
        async with client.post("/v1/hosts", json=body) as response:
            assert response.status == 503
            answer = await response.json()
        assert answer == {
            "error": "store_unavailable",
            "message": "store write failed: disk full",
            "cause": "disk full",
        }
        async with client.get("/v1/status") as response:
            health = (await response.json())["store"]["health"]
        assert health["write_failures"] == 1
        assert health["last_write_error"] == "store write failed: disk full"
        assert health["last_write_error_at"] == pytest.approx(time.time(), abs=60)
        assert health["low_space"] is True
        assert 0 <= health["free_bytes"] < health["total_bytes"] <= 4 * 2**20
        filler.unlink()
        async with client.post("/v1/hosts", json=body) as response:
            assert response.status == 201
    assert metric("ddi_internal_errors_total", area="api") == internal


@pytest.mark.asyncio
async def test_no_lease_is_acknowledged_that_the_full_disk_did_not_store(
    full_app: tuple[App, Path], caplog: pytest.LogCaptureFixture
) -> None:
    app, data = full_app
    store = app.site.store
    committer = GroupCommitter(store, max_batch=64, max_pending=1024)
    acked: list[int] = []
    task = asyncio.create_task(committer.run())
    try:
        filler = fill(data)
        caplog.clear()
        for n in range(10, 50):
            assert committer.submit_nowait(lease(n), lambda n=n: acked.append(n))
        await until(lambda: committer.failed == 40)
        assert acked == []
        assert await store.leases() == []
        assert "Traceback" not in caplog.text
        assert sum(r.levelno >= logging.ERROR for r in caplog.records) <= 1

        filler.unlink()
        assert committer.submit_nowait(lease(60), lambda: acked.append(60))
        await until(lambda: acked == [60])
        assert [str(x.ip) for x in await store.leases()] == ["198.18.0.60"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.asyncio
async def test_low_space_warns_and_checkpoints_the_wal_to_nothing(
    full_app: tuple[App, Path], caplog: pytest.LogCaptureFixture
) -> None:
    app, data = full_app
    store = app.site.store
    for n in range(10, 40):
        await store.add_host(host(n), actor="op", reason="")
    assert store.wal_bytes() > 0
    filler = data / "filler"
    # Leave some room: low, but not full, so the checkpoint can still run.
    filler.write_bytes(b"\0" * (store.disk_space().free - 512 * 1024))
    assert store.disk_space().low
    caplog.set_level(logging.INFO)
    task = asyncio.create_task(watch_store(app.site, interval=0.01))
    try:
        await until(lambda: store.wal_bytes() == 0)
        assert f"the data directory {data} is low on space" in caplog.text
        filler.unlink()
        await until(lambda: "has room again" in caplog.text)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await store.add_host(host(50), actor="op", reason="")


def test_write_failure_maps_full_and_io_errors_only() -> None:
    import sqlite3

    def error(code: int) -> sqlite3.OperationalError:
        exc = sqlite3.OperationalError("x")
        exc.sqlite_errorcode = code  # type: ignore[attr-defined]
        return exc

    full = write_failure(error(sqlite3.SQLITE_FULL))
    assert full is not None
    assert str(full) == "store write failed: disk full"
    io = write_failure(error(sqlite3.SQLITE_IOERR_FSYNC))
    assert io is not None
    assert io.cause == "I/O error"
    assert write_failure(error(sqlite3.SQLITE_BUSY)) is None
    assert write_failure(sqlite3.IntegrityError("x")) is None
    assert write_failure(RuntimeError("x")) is None


def test_failures_are_logged_once_per_interval_with_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    health = WriteHealth(interval=10.0, clock=lambda: now[0], wall=lambda: 1.0)
    for _ in range(5):
        health.failed(StoreWriteFailed("disk full"))
    now[0] = 10.0
    health.failed(StoreWriteFailed("disk full"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "1 write(s) refused" in lines[0]
    assert "(1 since start)" in lines[0]
    assert "5 write(s) refused" in lines[1]
    assert "(6 since start)" in lines[1]


def test_low_is_journald_keep_free() -> None:
    gib = 1024**3
    assert DiskSpace(free=14 * gib // 100, total=gib).low  # under 15 %
    assert not DiskSpace(free=16 * gib // 100, total=gib).low
    assert not DiskSpace(free=5 * gib, total=1000 * gib).low  # over the 4 GiB cap
    assert DiskSpace(free=3 * gib, total=1000 * gib).low
