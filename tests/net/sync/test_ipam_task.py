"""The IPAM sync task (central.nautobot.task) over a real central store (SQLite and
PostgreSQL) and an in-memory IPAM: the cursor waits while the IPAM fails, nothing is written
twice, a replay writes nothing, and a second collector takes over a dead one's lease.
The same task against a real Nautobot: tests/nautobot."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio

from central.nautobot import state, task
from central.nautobot.adapter import IpamError
from central.nautobot.mapping import AddressState, PrefixState
from central.nautobot.task import LEASE_TTL, IpamSync
from central.store import CentralStore, open_store
from ddi.ipam.models import Change, Host, Kind, Op
from sync import protocol

KEY = protocol.generate_key()


class MemoryIpam:
    """``adapter.Ipam`` in memory; ``down`` makes every call fail as an unreachable IPAM."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Any] = {}
        self.writes = 0
        self.down = False
        self.deletions_fail = False
        """A round's upserts land, then its deletions fail: a round cut short mid-way."""

    def _check(self) -> None:
        if self.down:
            raise IpamError("connection refused")

    async def ensure_site(self, site: str) -> None:
        self._check()

    async def upsert_prefixes(self, site: str, prefixes: Sequence[PrefixState]) -> int:
        return self._upsert(site, [(f"prefix:{p.prefix}", p) for p in prefixes])

    async def upsert_addresses(self, site: str, addresses: Sequence[AddressState]) -> int:
        return self._upsert(site, [(f"ip:{a.address.split('/')[0]}", a) for a in addresses])

    def _upsert(self, site: str, items: list[tuple[str, Any]]) -> int:
        self._check()
        changed = [(k, v) for k, v in items if self.objects.get((site, k)) != v]
        for key, value in changed:
            self.objects[(site, key)] = value
        self.writes += len(changed)
        return len(changed)

    async def delete(self, site: str, keys: Sequence[str]) -> int:
        self._check()
        if self.deletions_fail:
            raise IpamError("timed out")
        gone = [k for k in keys if (site, k) in self.objects]
        for key in gone:
            del self.objects[(site, key)]
        self.writes += len(gone)
        return len(gone)

    async def keys(self, site: str) -> set[str]:
        self._check()
        return {key for s, key in self.objects if s == site}

    async def forget(self) -> None:
        pass

    async def close(self) -> None:
        pass


def host(n: int, **over: Any) -> Host:
    return Host(id=f"{n:032x}", ip=f"198.18.1.{n}", hostname=f"h{n}",  # type: ignore[arg-type]
                mac=f"52:54:00:00:01:{n:02x}", **over)  # fmt: skip


def entry(seq: int, kind: Kind, oid: str, image: dict[str, Any], op: Op = Op.UPSERT) -> Any:
    return Change(epoch=1, seq=seq, kind=kind, object_id=oid, op=op, image=image, actor="t",
                  time=1.0).to_image()  # fmt: skip


@pytest_asyncio.fixture
async def store(central_db: str) -> AsyncIterator[CentralStore]:
    s = await open_store(central_db)
    await s.add_site("s1", protocol.public_key_raw(KEY.public_key()))
    try:
        yield s
    finally:
        await s.close()


async def feed(store: CentralStore, first: int, entries: list[Any]) -> None:
    batch = protocol.make_batch(site="s1", epoch=1, from_seq=first, to_seq=first + len(entries)
                                - 1, entries=entries, key=KEY)  # fmt: skip
    out = await store.apply_batch("s1", batch)
    assert out.applied_seq == first + len(entries) - 1


SUBNET = {"name": "lab", "cidr": "198.18.0.0/15"}


def subnet_and_hosts(numbers: Sequence[int]) -> list[Any]:
    """The subnet (seq 1), then a reservation for each of ``numbers`` (seq 2 on)."""
    return [entry(1, Kind.SUBNET, "lab", SUBNET),
            *(entry(i + 2, Kind.HOST, host(n).id, host(n).to_image())
              for i, n in enumerate(numbers))]  # fmt: skip


async def leading(store: CentralStore, batch_size: int) -> tuple[MemoryIpam, IpamSync]:
    """A task over a ``MemoryIpam`` that holds the lease."""
    ipam = MemoryIpam()
    sync = IpamSync(store, lambda: ipam, batch_size=batch_size, interval=0.1, holder="a")
    assert await state.acquire(store, "nautobot", "a", now=0.0, ttl=1e9)
    return ipam, sync


async def drain(sync: IpamSync) -> int:
    writes = 0
    while (result := await sync.round()).entries:
        writes += result.writes
    return writes


@pytest.mark.asyncio
async def test_cursor_waits_while_the_ipam_is_down_and_nothing_doubles(
    store: CentralStore,
) -> None:
    ipam, sync = await leading(store, batch_size=3)
    await feed(store, 1, subnet_and_hosts(range(1, 8)))
    ipam.down = True
    with pytest.raises(IpamError):
        await sync.round()
    assert await state.cursor(store, "nautobot") == 0
    ipam.down = False
    assert await drain(sync) == 8
    assert await state.cursor(store, "nautobot") == 8
    # Moved, deleted: the old addresses go, nothing is left behind or doubled.
    moved = host(2).to_image() | {"ip": "198.18.1.200"}
    gone = host(3).to_image()
    await feed(store, 9, [entry(9, Kind.HOST, host(2).id, moved),
                          entry(10, Kind.HOST, host(3).id, gone, Op.DELETE)])  # fmt: skip
    assert await drain(sync) == 3  # one upsert, two deletes
    addresses = sorted(k for (_, k) in ipam.objects if k.startswith("ip:"))
    assert addresses == sorted(["ip:198.18.1.200", *(f"ip:198.18.1.{n}" for n in (1, 4, 5, 6, 7))])
    # A replay from cursor 0 plans every object again and writes nothing.
    await state.rewind(store, "nautobot", 0)
    before = dict(ipam.objects)
    assert await drain(sync) == 0
    assert ipam.objects == before


@pytest.mark.asyncio
async def test_an_address_a_cut_short_round_wrote_goes_once_its_object_is_deleted(
    store: CentralStore,
) -> None:
    """A round writes an address, fails before its commit (or its collector dies), and the
    object is deleted before the redo: neither the claim table (never committed) nor the
    object's current image (deleted) names the address, so only the feed's entries can. It
    must not stay in the IPAM for ever."""
    ipam, sync = await leading(store, batch_size=100)
    await feed(store, 1, subnet_and_hosts([11, 12]))
    ipam.deletions_fail = True
    with pytest.raises(IpamError):
        await sync.round()
    assert ("s1", "ip:198.18.1.11") in ipam.objects  # written, not committed
    assert await state.cursor(store, "nautobot") == 0
    moved = host(12).to_image() | {"ip": "198.18.1.112"}
    await feed(store, 4, [entry(4, Kind.HOST, host(11).id, host(11).to_image(), Op.DELETE),
                          entry(5, Kind.HOST, host(12).id, moved)])  # fmt: skip
    ipam.deletions_fail = False
    await drain(sync)
    assert await state.cursor(store, "nautobot") == 5
    assert sorted(k for (_, k) in ipam.objects) == ["ip:198.18.1.112", "prefix:198.18.0.0/15"]


@pytest.mark.asyncio
async def test_second_collector_takes_over_a_dead_ones_lease(central_db: str) -> None:
    one, two = await open_store(central_db), await open_store(central_db)
    try:
        await one.add_site("s1", protocol.public_key_raw(KEY.public_key()))
        await feed(one, 1, [entry(1, Kind.SUBNET, "lab", SUBNET),
                            entry(2, Kind.HOST, host(1).id, host(1).to_image())])  # fmt: skip
        # Collector a took the lease, then died without giving it back.
        assert await state.acquire(one, "nautobot", "a", now=1000.0, ttl=LEASE_TTL)
        ipam = MemoryIpam()
        now, looks = [1000.0], [0]

        def clock() -> float:
            looks[0] += 1
            return now[0]

        second = IpamSync(two, lambda: ipam, batch_size=100, interval=0.01, holder="b",
                          clock=clock)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop))
        await _until(lambda: _value(looks[0] >= 3), True)
        assert await state.cursor(two, "nautobot") == 0  # b waits while a's lease lasts
        assert ipam.writes == 0
        now[0] += LEASE_TTL + 1
        await _until(lambda: state.cursor(two, "nautobot"), 2)
        assert ipam.writes == 2
        stop.set()
        await task
        # A clean stop gives the lease back: the next collector needs no wait.
        assert await state.acquire(one, "nautobot", "c", now=now[0], ttl=LEASE_TTL)
    finally:
        await one.close()
        await two.close()


async def _value(value: object) -> object:
    return value


async def _until(read: Any, value: object, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while await read() != value:
        assert asyncio.get_running_loop().time() < deadline, f"cursor never reached {value}"
        await asyncio.sleep(0.02)


class SlowIpam(MemoryIpam):
    """Address writes wait for ``release``: a page that outlives the lease."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.release = asyncio.Event()

    async def upsert_addresses(self, site: str, addresses: Sequence[AddressState]) -> int:
        self.writing.set()
        await self.release.wait()
        return await super().upsert_addresses(site, addresses)


async def _slow_page(store: CentralStore, monkeypatch: pytest.MonkeyPatch) -> tuple[
    SlowIpam, IpamSync, list[float]
]:  # fmt: skip
    monkeypatch.setattr(task, "RENEW_EVERY", 0.02)
    await feed(store, 1, [entry(1, Kind.SUBNET, "lab", SUBNET),
                          entry(2, Kind.HOST, host(1).id, host(1).to_image())])  # fmt: skip
    ipam, now = SlowIpam(), [1000.0]
    sync = IpamSync(store, lambda: ipam, batch_size=100, interval=0.01, holder="a",
                    clock=lambda: now[0])  # fmt: skip
    assert await state.acquire(store, "nautobot", "a", now=now[0], ttl=LEASE_TTL)
    return ipam, sync, now


async def _renewed(store: CentralStore, *, until: float, within: float = 10.0) -> None:
    """Wait until the lease row says it lasts to ``until`` (the holder renewed it)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with store.transaction() as tx:
            row = await tx.fetchone("SELECT lease_until FROM ipam_sync WHERE name = 'nautobot'")
        if row is not None and float(row[0]) >= until:
            return
        assert asyncio.get_running_loop().time() < deadline, "the holder never renewed"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_a_page_longer_than_the_lease_keeps_it(
    store: CentralStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ipam, sync, now = await _slow_page(store, monkeypatch)
    page = asyncio.create_task(sync.round())
    await asyncio.wait_for(ipam.writing.wait(), 10)
    for _ in range(3):  # three lease lives pass while the IPAM works on the page
        now[0] += LEASE_TTL - 1
        await _renewed(store, until=now[0] + LEASE_TTL)
        assert not await state.acquire(store, "nautobot", "b", now=now[0] + 0.5, ttl=LEASE_TTL)
    ipam.release.set()
    assert (await asyncio.wait_for(page, 10)).cursor == 2
    assert await state.cursor(store, "nautobot") == 2


@pytest.mark.asyncio
async def test_a_lease_taken_mid_page_stops_the_writes(
    store: CentralStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ipam, sync, now = await _slow_page(store, monkeypatch)
    page = asyncio.create_task(sync.round())
    await asyncio.wait_for(ipam.writing.wait(), 10)
    # a's clock stalls (it renews at the same instant over and over) while b's has passed the
    # lease: b takes it, and a's next renewal finds it gone and cancels the page's writes.
    assert await state.acquire(store, "nautobot", "b", now=now[0] + LEASE_TTL + 1, ttl=LEASE_TTL)
    with pytest.raises(state.LostLease):
        await asyncio.wait_for(page, 10)
    assert not ipam.release.is_set()
    assert [key for _, key in ipam.objects] == ["prefix:198.18.0.0/15"]  # no address written
    assert await state.cursor(store, "nautobot") == 0


@pytest.mark.asyncio
async def test_reconcile_removes_strays_and_restores_what_was_changed_by_hand(
    store: CentralStore,
) -> None:
    ipam, sync = await leading(store, batch_size=100)
    await feed(store, 1, subnet_and_hosts(range(1, 4)))
    await drain(sync)
    want = dict(ipam.objects)
    assert await sync.reconcile() == 0  # in step: nothing written
    # A dead holder's write that landed late, an address deleted and one edited by hand.
    stray = ("s1", "ip:198.18.1.250")
    ipam.objects[stray] = ipam.objects[("s1", "ip:198.18.1.1")]
    del ipam.objects[("s1", "ip:198.18.1.2")]
    edited = ("s1", "ip:198.18.1.3")
    ipam.objects[edited] = dataclasses.replace(ipam.objects[edited], dns_name="renamed")
    ipam.writes = 0
    assert await sync.reconcile() == 3
    assert ipam.objects == want
    assert await sync.reconcile() == 0


@pytest.mark.asyncio
async def test_a_new_holder_reconciles_once_the_dead_ones_writes_could_have_landed(
    central_db: str,
) -> None:
    one, two = await open_store(central_db), await open_store(central_db)
    try:
        await one.add_site("s1", protocol.public_key_raw(KEY.public_key()))
        await feed(one, 1, [entry(1, Kind.SUBNET, "lab", SUBNET),
                            entry(2, Kind.HOST, host(1).id, host(1).to_image())])  # fmt: skip
        ipam = MemoryIpam()
        now = [1000.0]
        second = IpamSync(two, lambda: ipam, batch_size=100, interval=0.01, holder="b",
                          clock=lambda: now[0], reconcile_interval=3600)  # fmt: skip
        stop = asyncio.Event()
        running = asyncio.create_task(second.run(stop))
        await _until(lambda: state.cursor(two, "nautobot"), 2)
        # What a dead holder sent lands now, after b's rounds had looked.
        ipam.objects[("s1", "ip:198.18.1.99")] = ipam.objects[("s1", "ip:198.18.1.1")]
        await asyncio.sleep(0.2)
        assert ("s1", "ip:198.18.1.99") in ipam.objects  # not yet: before RECONCILE_AFTER
        now[0] += task.RECONCILE_AFTER + 1
        await _until(lambda: _value(("s1", "ip:198.18.1.99") in ipam.objects), False)
        assert sorted(k for _, k in ipam.objects) == ["ip:198.18.1.1", "prefix:198.18.0.0/15"]
        stop.set()
        await running
    finally:
        await one.close()
        await two.close()
