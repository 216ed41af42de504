"""The down direction's looks (``central.nautobot.down``) against central's store on SQLite and
PostgreSQL, with a recording stand-in for Nautobot (the real one: ``tests/nautobot``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping

import pytest
import pytest_asyncio

from central.nautobot import down, state
from central.nautobot.adapter import IpamError
from central.nautobot.reserve import Marked, host_id
from central.store import CentralStore, open_store
from ddi.ipam.models import Change, Host, Kind, Op
from sync import protocol

KEY = protocol.generate_key()
A = "5bcdd7c6-7b5a-4e8e-8fcb-c93d71d8870a"
B = "9a39b2b5-4ac2-4fb6-aa56-f7f8d2e12ed3"


class Source:
    """Nautobot as a dict: what is marked, and what was noted."""

    def __init__(self) -> None:
        self.addresses: dict[str, Marked] = {}
        self.notes: dict[str, list[str]] = {}
        self.down = False
        self.lists = 0

    async def marked(self, namespaces: Mapping[str, str]) -> list[Marked]:
        self.lists += 1
        if self.down:
            raise IpamError("Nautobot unreachable")
        return [m for m in self.addresses.values() if m.site in namespaces]

    async def note(self, ipam_id: str, text: str) -> None:
        self.notes.setdefault(ipam_id, []).append(text)

    async def forget(self) -> None:
        pass

    async def close(self) -> None:
        pass


@pytest_asyncio.fixture
async def store(central_db: str) -> AsyncIterator[CentralStore]:
    s = await open_store(central_db)
    await s.add_site("s1", protocol.public_key_raw(KEY.public_key()))
    try:
        yield s
    finally:
        await s.close()


def mark(ipam_id: str, address: str, mac: str, name: str = "") -> Marked:
    return Marked(ipam_id=ipam_id, site="s1", address=address, dns_name=name, mac=mac)


async def site_host(store: CentralStore, seq: int, n: int, ip: str, mac: str) -> None:
    """The site reports its own reservation (a batch applied at central)."""
    image = Host(id=f"{n:032x}", ip=ip, hostname=f"h{n}", mac=mac).to_image()  # type: ignore[arg-type]
    entry = Change(epoch=1, seq=seq, kind=Kind.HOST, object_id=f"{n:032x}", op=Op.UPSERT,
                   image=image, actor="t", time=1.5).to_image()  # fmt: skip
    batch = protocol.make_batch(site="s1", epoch=1, from_seq=seq, to_seq=seq, entries=[entry],
                                key=KEY)  # fmt: skip
    assert (await store.apply_batch("s1", batch)).decision == protocol.Apply()


def sync(store: CentralStore, source: Source) -> down.ReserveSync:
    return down.ReserveSync(store, lambda: source, namespace_of=lambda s: s, interval=0.05)


async def down_log(store: CentralStore) -> list[tuple[str, str]]:
    return [(e.op.value, str(e.image["id"])) for e in await store.down("s1", after=0, limit=100)]


@pytest.mark.asyncio
async def test_looks_queue_follow_withdraw_and_note_once(store: CentralStore) -> None:
    source = Source()
    task = sync(store, source)
    await site_host(store, 1, 1, "198.18.0.5", "52:54:00:00:00:05")
    source.addresses[A] = mark(A, "198.18.0.20/24", "52:54:00:00:00:20", "pxe.example.net")
    source.addresses[B] = mark(B, "198.18.0.21/24", "52:54:00:00:00:05")  # the site's MAC
    first = await task.look()
    assert (first.queued, first.refused, first.noted) == (1, 1, 1)
    assert await down_log(store) == [("upsert", host_id(A))]
    host = await store.central_host("s1", host_id(A))
    assert (host.hostname, host.mac, str(host.ip)) == ("pxe", "52:54:00:00:00:20", "198.18.0.20")
    [conflict] = await store.conflicts("s1")
    assert (conflict["id"], conflict["field"]) == (f"nautobot-{host_id(B)}-mac", "mac")
    assert conflict["edge_image"]["hostname"] == "h1"
    assert len(source.notes[B]) == 1
    # Nothing changed: nothing is sent, refused or noted again.
    again = await task.look()
    assert (again.queued, again.refused, again.noted, again.withdrawn) == (0, 0, 0, 0)
    # The site changed: the refused request is tried again, still not noted twice.
    await site_host(store, 2, 2, "198.18.0.6", "52:54:00:00:00:06")
    retried = await task.look()
    assert (retried.refused, retried.noted) == (1, 0)
    # Fixed: it goes down and central's conflict is resolved.
    source.addresses[B] = mark(B, "198.18.0.21/24", "52:54:00:00:00:21")
    fixed = await task.look()
    assert fixed.queued == 1
    [conflict] = await store.conflicts("s1")
    assert conflict["resolved_at"] is not None
    # An edit, then the tag removed: an upsert, then a withdrawal.
    source.addresses[A] = mark(A, "198.18.0.22/24", "52:54:00:00:00:20", "pxe")
    await task.look()
    del source.addresses[A]
    gone = await task.look()
    assert gone.withdrawn == 1
    log = await down_log(store)
    assert log[-2:] == [("upsert", host_id(A)), ("delete", host_id(A))]
    assert [op for op, i in log if i == host_id(A)] == ["upsert", "upsert", "delete"]
    assert (await task.look()).withdrawn == 0
    assert len(source.notes[B]) == 1


@pytest.mark.asyncio
async def test_a_site_reported_conflict_is_noted_once_and_a_served_request_withdrawn(
    store: CentralStore,
) -> None:
    source = Source()
    task = sync(store, source)
    source.addresses[A] = mark(A, "198.18.0.30/24", "52:54:00:00:00:99", "scanner")
    await task.look()
    # The site had reserved that address itself meanwhile, and says so.
    await store.add_conflicts("s1", [{"id": 7, "kind": "host", "object_id": host_id(A),
                                      "field": "ip", "value": "198.18.0.30",
                                      "edge_image": {"hostname": "camera",
                                                     "mac": "52:54:00:00:00:30"},
                                      "central_image": {}, "detected_at": 1.0}])  # fmt: skip
    await site_host(store, 1, 3, "198.18.0.30", "52:54:00:00:00:30")
    assert (await task.look()).noted == 1
    assert "held there by mac 52:54:00:00:00:30, hostname camera" in source.notes[A][0]
    assert (await task.look()).noted == 0
    # The operator asks for what the site reserves itself (same IP and MAC): nothing is sent,
    # and central's copy is withdrawn.
    source.addresses[A] = mark(A, "198.18.0.30/24", "52:54:00:00:00:30", "h3")
    served = await task.look()
    assert (served.withdrawn, served.queued, served.noted) == (1, 0, 1)
    assert (await down_log(store))[-1] == ("delete", host_id(A))
    assert (await task.look()) == down.LookResult(marked=1, queued=0, withdrawn=0, refused=0,
                                                  noted=0)  # fmt: skip
    assert len(source.notes[A]) == 2


@pytest.mark.asyncio
async def test_unusable_addresses_are_noted_once_and_errors_do_not_stop_the_task(
    store: CentralStore,
) -> None:
    source = Source()
    source.addresses[A] = mark(A, "198.18.0.40/24", "")
    source.addresses[B] = mark(B, "2001:db8::1/64", "52:54:00:00:00:41")
    task = sync(store, source)
    first = await task.look()
    assert (first.noted, first.queued) == (2, 0)
    assert "ddi_mac" in source.notes[A][0]
    assert "IPv4" in source.notes[B][0]
    assert (await task.look()).noted == 0
    assert await down_log(store) == []
    # Run as the collector runs it: Nautobot down, then back; the task keeps going.
    source.down = True
    stop = asyncio.Event()
    running = asyncio.create_task(task.run(stop))
    deadline = asyncio.get_running_loop().time() + 30
    while source.lists < 3:  # a first look and two retries, all failed
        assert asyncio.get_running_loop().time() < deadline, "the task never looked"
        await asyncio.sleep(0.01)
    source.down = False
    source.addresses[A] = mark(A, "198.18.0.40/24", "52:54:00:00:00:40")

    async def sent() -> bool:
        return bool(await down_log(store))

    while not await sent():
        assert asyncio.get_running_loop().time() < deadline, "the task never recovered"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(running, timeout=30)
    assert await down_log(store) == [("upsert", host_id(A))]
    async with store.transaction() as tx:
        row = await tx.fetchone("SELECT holder FROM ipam_sync WHERE name = ?", down.TARGET)
    assert row == ("",)  # the lease was given up at stop


@pytest.mark.asyncio
async def test_a_look_that_lost_the_lease_writes_nothing(store: CentralStore) -> None:
    source = Source()
    source.addresses[A] = mark(A, "198.18.0.50/24", "52:54:00:00:00:50")
    task = sync(store, source)
    other = "another-collector"
    assert await state.acquire(store, down.TARGET, other, now=time.time(), ttl=60)
    with pytest.raises(state.LostLease):
        await task.look()
    assert await down_log(store) == []
    await state.release(store, down.TARGET, other)
    assert (await task.look()).queued == 1
