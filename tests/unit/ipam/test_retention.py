"""The change log's local retention (age, count, never what sync still needs) and quiet
renewals (a renewal that only moves the end is logged once per ``renewal_log_interval``)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from ddi.ipam.models import Host, Lease, LeaseState
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex
from tests.unit.ipam.conftest import Clock

IP = IPv4Address("198.18.0.150")


def lease(clock: Clock, *, end_in: float = 3600, hostname: str | None = "laptop") -> Lease:
    return Lease(ip=IP, mac="52:54:00:00:00:50", hostname=hostname, start=clock.now,
                 end=clock.now + end_in, subnet="lan")  # fmt: skip


async def lease_entries(store: Store) -> list[float]:
    return [c.image["end"] for c in await store.changes() if c.kind.value == "lease"]


@pytest.mark.asyncio
async def test_renewals_that_only_move_the_end_are_logged_once_per_interval(
    store: Store, clock: Clock
) -> None:
    index = await IpamIndex.load(store)
    store.subscribe(index.apply)
    store.renewal_log_interval = 7200
    await store.commit_leases([lease(clock)])
    first_end = clock.now + 3600
    # Renewals at T1 (every 1800 s) move the end 1800 s at a time: quiet until it has moved
    # 7200 s past the end last logged.
    seqs = []
    for _ in range(3):
        clock.now += 1800
        changes = await store.commit_leases([lease(clock)])
        seqs.append(changes[0].seq)
    assert await lease_entries(store) == [first_end]
    # Every quiet renewal still reached the row, the index and a fresh seq of its own.
    assert (await store.lease(IP)).end == clock.now + 3600  # type: ignore[union-attr]
    assert index.lease_by_ip(IP).end == clock.now + 3600  # type: ignore[union-attr]
    assert seqs == sorted(set(seqs))
    assert await store.last_seq() == seqs[-1]
    clock.now += 1800  # the end is now 7200 s past the one logged
    await store.commit_leases([lease(clock)])
    assert await lease_entries(store) == [first_end, clock.now + 3600]


@pytest.mark.asyncio
async def test_a_renewal_that_changes_anything_else_is_logged_at_once(
    store: Store, clock: Clock
) -> None:
    store.renewal_log_interval = 86400
    await store.commit_leases([lease(clock)])
    clock.now += 60
    await store.commit_leases([lease(clock, hostname="laptop2")])
    clock.now += 60
    await store.commit_leases([lease(clock, hostname="laptop2")])
    released = Lease(ip=IP, mac="52:54:00:00:00:50", hostname="laptop2",
                     state=LeaseState.RELEASED, start=clock.now, end=clock.now,
                     subnet="lan")  # fmt: skip
    await store.commit_leases([released])
    names = [(c.image["hostname"], c.image["state"]) for c in await store.changes()
             if c.kind.value == "lease"]  # fmt: skip
    assert names == [("laptop", "bound"), ("laptop2", "bound"), ("laptop2", "released")]


@pytest.mark.asyncio
async def test_a_renewal_that_shortens_the_lease_is_logged(store: Store, clock: Clock) -> None:
    # A lease imported with a long end, renewed for the subnet's shorter lease time: the log
    # (and central) must not keep the longer end.
    store.renewal_log_interval = 86400
    await store.commit_leases([lease(clock, end_in=7200)])
    clock.now += 60
    await store.commit_leases([lease(clock, end_in=600)])
    assert await lease_entries(store) == [clock.now - 60 + 7200, clock.now + 600]


@pytest.mark.asyncio
async def test_a_seq_given_to_a_quiet_renewal_is_never_reused(store: Store, clock: Clock) -> None:
    store.renewal_log_interval = 86400
    await store.commit_leases([lease(clock)])
    clock.now += 60
    quiet = (await store.commit_leases([lease(clock)]))[0].seq
    host = Host(id="", ip=IPv4Address("198.18.0.20"), hostname="web1", mac="52:54:00:00:02:01")
    change = await store.add_host(host, actor="op", reason="")
    assert change.seq == quiet + 1


@pytest.mark.asyncio
async def test_with_interval_zero_every_renewal_is_logged(store: Store, clock: Clock) -> None:
    for _ in range(3):
        await store.commit_leases([lease(clock)])
        clock.now += 1800
    assert len(await lease_entries(store)) == 3


async def _fill(store: Store, clock: Clock, n: int) -> None:
    for i in range(n):
        host = Host(id="", ip=IPv4Address(f"198.18.0.{10 + i}"), hostname=f"h{i}",
                    mac=f"52:54:00:00:03:{i:02x}")  # fmt: skip
        await store.add_host(host, actor="op", reason="")
        clock.now += 86400


@pytest.mark.asyncio
async def test_retention_by_count_and_age_raises_the_sync_floor(store: Store, clock: Clock) -> None:
    await _fill(store, clock, 10)
    before = await store.log.size()
    assert before.entries == 12  # two subnets, ten hosts
    assert before.bytes > 0
    deleted = await store.log.trim(older_than=None, keep=8, protect_after=None)
    assert deleted == 4
    kept = await store.changes()
    assert len(kept) == 8
    assert (await store.sync.cursors()).floor == kept[0].seq - 1
    # By age: the entries logged more than 3.5 days before "now" go.
    deleted = await store.log.trim(older_than=clock.now - 3.5 * 86400, keep=None,
                                   protect_after=None)  # fmt: skip
    assert deleted == 5
    assert [c.image["hostname"] for c in await store.changes()] == ["h7", "h8", "h9"]
    assert (await store.log.size()).entries == 3


@pytest.mark.asyncio
async def test_retention_never_deletes_what_sync_has_not_acknowledged(
    store: Store, clock: Clock
) -> None:
    await _fill(store, clock, 6)
    changes = await store.changes()
    cursor = changes[3].seq  # central has the first four
    deleted = await store.log.trim(older_than=clock.now, keep=1, protect_after=cursor)
    assert deleted == 4
    assert [c.seq for c in await store.changes()] == [c.seq for c in changes[4:]]
    assert await store.log.trim(older_than=clock.now, keep=0, protect_after=cursor) == 0
