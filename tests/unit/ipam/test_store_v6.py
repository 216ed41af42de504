"""The IPv6 model in the store and the index: hosts with ip6 and DUID, IPv6 subnets, DHCPv6
leases (group commit, release, expiry), the schema migration, and the index's v6 lookups."""

from __future__ import annotations

import sqlite3
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from ddi.errors import Conflict, Invalid, NotFound
from ddi.ipam import schema
from ddi.ipam.models import Host, Kind, LeaseState, Op
from ddi.ipam.models6 import Lease6, Lease6Kind, PdPool, Pool6, Subnet6, parse_lease6_id
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex

from .conftest import DOMAIN, LAB, LAN, T0, Clock

MAC1 = "52:54:00:00:00:01"
DUID1 = "00:03:00:01:52:54:00:00:00:01"
DUID2 = "00:01:00:01:2b:3c:4d:5e:52:54:00:00:00:02"
LAN6 = Subnet6(
    name="lan6",
    cidr=IPv6Network("2001:db8:10::/64"),
    pools=(Pool6(start=IPv6Address("2001:db8:10::1000"), end=IPv6Address("2001:db8:10::1fff")),),
    pd_pools=(PdPool(prefix=IPv6Network("2001:db8:100::/40"), delegated_length=56),),
    domain="site.example",
)


def h6(ip: str, name: str, **keys: str) -> Host:
    return Host(id="", ip6=IPv6Address(ip), hostname=name, **keys)  # type: ignore[arg-type]


def na(ip: str, duid: str = DUID2, **fields: Any) -> Lease6:
    values: dict[str, Any] = {"start": T0, "end": T0 + 7200, "preferred_end": T0 + 3600}
    values |= fields
    return Lease6(
        kind=Lease6Kind.NA, prefix=IPv6Network(f"{ip}/128"), duid=duid, iaid=1, subnet="lan6",
        **values,
    )  # fmt: skip


def pd(prefix: str, duid: str = DUID2, **fields: Any) -> Lease6:
    values: dict[str, Any] = {"start": T0, "end": T0 + 7200, "preferred_end": T0 + 3600}
    values |= fields
    return Lease6(
        kind=Lease6Kind.PD, prefix=IPv6Network(prefix), duid=duid, iaid=7, subnet="lan6", **values
    )


async def v6_store(store: Store) -> Store:
    await store.sync_subnets6([LAN6], actor="config", reason="start")
    return store


@pytest.mark.asyncio
async def test_subnets6_are_synced_and_logged_like_subnets(store: Store) -> None:
    [change] = await store.sync_subnets6([LAN6], actor="config", reason="start")
    assert (change.kind, change.object_id, change.op) == (Kind.SUBNET6, "lan6", Op.UPSERT)
    assert Subnet6.from_image(change.image) == LAN6
    assert await store.sync_subnets6([LAN6], actor="config", reason="again") == []
    assert await store.subnets6() == [LAN6]
    [gone] = await store.sync_subnets6([], actor="config", reason="removed")
    assert (gone.kind, gone.op) == (Kind.SUBNET6, Op.DELETE)
    assert await store.subnets6() == []


@pytest.mark.asyncio
async def test_a_dual_stack_host_is_one_object_and_one_change(store: Store) -> None:
    await v6_store(store)
    change = await store.add_host(
        Host(
            id="", ip=IPv4Address("198.18.0.10"), ip6=IPv6Address("2001:db8:10::21"),
            hostname="web1", mac=MAC1, duid="0003000152540000 0001".replace(" ", ""),
        ),
        actor="op", reason="r",
    )  # fmt: skip
    assert change.kind is Kind.HOST
    assert change.image["ip6"] == "2001:db8:10::21"
    assert change.image["duid"] == DUID1  # normalised from bare hex
    [host] = await store.hosts()
    assert host.dual_stack
    assert host.duid == DUID1
    for key in ("2001:db8:10::21", "2001:DB8:10:0::21", DUID1, "000300015254000000 01"[:-3] + "01"):
        assert (await store.find_host(key)).id == host.id
    updated = await store.update_host("web1", {"ip6": "2001:db8:10::22"}, actor="op", reason="")
    assert updated is not None
    assert updated.image["ip6"] == "2001:db8:10::22"
    assert (await store.find_host("web1")).version == 2


@pytest.mark.asyncio
async def test_an_ipv6_only_host_and_its_refusals(store: Store) -> None:
    await v6_store(store)
    only6 = h6("2001:db8:10::30", "v6only", duid=DUID2)
    change = await store.add_host(only6, actor="op", reason="")
    assert "ip" in change.image
    assert change.image["ip"] is None
    assert (await store.find_host("v6only")).ip is None

    cases: list[tuple[Host, type[Exception], str]] = [
        (Host(id="", hostname="none", mac=MAC1), Invalid, "ip"),
        (h6("2001:db8:99::1", "out", mac=MAC1), Invalid, "ip6"),
        (h6("2001:db8:10::", "any", mac=MAC1), Invalid, "ip6"),
        (h6("fe80::1", "ll", mac=MAC1), Invalid, "ip6"),
        (h6("2001:db8:10::30", "dup", mac=MAC1), Conflict, "ip6"),
        (h6("2001:db8:10::31", "dupd", duid=DUID2), Conflict, "duid"),
        (h6("2001:db8:10::31", "bad", duid="zz"), Invalid, "duid"),
        (Host(id="", ip6=IPv6Address("2001:db8:10::31"), hostname="nokey"), Invalid, "mac"),
    ]  # fmt: skip
    for bad, error, field in cases:
        with pytest.raises(error) as caught:
            await store.add_host(bad, actor="op", reason="")
        assert caught.value.field == field, bad  # type: ignore[attr-defined]
    with pytest.raises(Invalid) as caught6:
        await store.update_host("v6only", {"ip6": None}, actor="op", reason="")
    assert caught6.value.field == "ip"


@pytest.mark.asyncio
async def test_leases6_commit_release_and_expire(store: Store, clock: Clock) -> None:
    await v6_store(store)
    batch = [na("2001:db8:10::1001", hostname="laptop"), pd("2001:db8:100::/56")]
    changes = await store.commit_leases6(batch)
    assert [(c.kind, c.object_id) for c in changes] == [
        (Kind.LEASE6, "na:2001:db8:10::1001/128"),
        (Kind.LEASE6, "pd:2001:db8:100::/56"),
    ]
    assert [Lease6.from_image(c.image) for c in changes] == batch
    assert parse_lease6_id(changes[1].object_id) == (
        Lease6Kind.PD,
        IPv6Network("2001:db8:100::/56"),
    )
    assert await store.leases6() == batch
    clock.now = T0 + 100
    released = await store.release_lease6(
        Lease6Kind.NA, IPv6Network("2001:db8:10::1001/128"), actor="dhcp6", reason="RELEASE"
    )
    lease = Lease6.from_image(released.image)
    assert (lease.state, lease.end, lease.preferred_end) == (
        LeaseState.RELEASED,
        T0 + 100,
        T0 + 100,
    )
    with pytest.raises(Invalid):
        await store.release_lease6(Lease6Kind.NA, lease.prefix, actor="dhcp6", reason="again")
    with pytest.raises(NotFound):
        await store.release_lease6(Lease6Kind.PD, lease.prefix, actor="dhcp6", reason="none")
    [expired] = await store.expire_leases6(T0 + 7200)
    assert expired.object_id == "pd:2001:db8:100::/56"
    assert Lease6.from_image(expired.image).state is LeaseState.EXPIRED
    assert await store.expire_leases6(T0 + 9999) == []


@pytest.mark.asyncio
async def test_a_bad_lease6_batch_is_refused_whole(store: Store) -> None:
    await v6_store(store)
    bad = na("2001:db8:10::1002", start=T0, end=T0 - 1, preferred_end=T0 - 1)
    with pytest.raises(Invalid):
        await store.commit_leases6([na("2001:db8:10::1001"), bad])
    assert await store.leases6() == []
    assert await store.changes(after=await store.last_seq()) == []


@pytest.mark.asyncio
async def test_an_active_lease6_keeps_its_address_from_another_clients_host(store: Store) -> None:
    await v6_store(store)
    await store.commit_leases6([na("2001:db8:10::1001", duid=DUID2)])
    taker = h6("2001:db8:10::1001", "taker", duid=DUID1)
    with pytest.raises(Conflict) as caught:
        await store.add_host(taker, actor="op", reason="")
    assert caught.value.field == "ip6"
    assert DUID2 in str(caught.value)
    owner = h6("2001:db8:10::1001", "owner", duid=DUID2)
    await store.add_host(owner, actor="op", reason="")


@pytest.mark.asyncio
async def test_index_v6_lookups_follow_changes_and_equal_a_reload(store: Store) -> None:
    await v6_store(store)
    index = await IpamIndex.load(store)
    store.subscribe(index.apply)
    assert index.subnets6() == [LAN6]
    host = Host(id="", ip=IPv4Address("198.18.0.10"), ip6=IPv6Address("2001:db8:10::21"),
                hostname="web1", mac=MAC1, duid=DUID1)  # fmt: skip
    await store.add_host(host, actor="op", reason="")
    found = index.host_by_duid(DUID1)
    assert found is not None
    assert found is index.host_by_ip6(IPv6Address("2001:db8:10::21"))
    assert index.host_by_mac(MAC1) is found
    assert index.host_by_ip(IPv4Address("198.18.0.10")) is found
    a, b = na("2001:db8:10::1001", hostname="laptop"), na("2001:db8:10::1002")
    p = pd("2001:db8:100::/56")
    await store.commit_leases6([a, b, p])
    assert index.lease6(Lease6Kind.NA, a.prefix) == a
    assert sorted(index.leases6_of(Lease6Kind.NA, DUID2, 1), key=lambda x: x.prefix) == [a, b]
    assert index.leases6_of(Lease6Kind.PD, DUID2, 7) == [p]
    assert index.leases6_of(Lease6Kind.NA, DUID2, 7) == []
    assert index.leases6_named("LAPTOP") == [a]
    await store.release_lease6(Lease6Kind.NA, a.prefix, actor="t", reason="")
    assert index.leases6_named("laptop") == []
    assert index.leases6_of(Lease6Kind.NA, DUID2, 1)[-1].state is LeaseState.RELEASED  # bound first
    await store.update_host("web1", {"duid": None, "mac": MAC1}, actor="op", reason="")
    assert index.host_by_duid(DUID1) is None
    assert index.host_by_ip6(IPv6Address("2001:db8:10::21")) is not None
    await store.sync_subnets6([], actor="config", reason="")
    assert index.subnets6() == []
    assert index.subnet6("lan6") is None
    reloaded = await IpamIndex.load(store)
    assert reloaded.state() == index.state()


def _v2_database(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for script in schema.MIGRATIONS[:2]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 2")
        db.execute(
            "INSERT INTO host (id, ip, hostname, mac, owner, version, dhcp)"
            " VALUES ('a1', '198.18.0.10', 'web1', ?, 'edge', 3, '{\"mtu\": 1400}')",
            (MAC1,),
        )
        # Five changes written, then the first four compacted away: seq 5 is never reused.
        for _ in range(5):
            db.execute(
                "INSERT INTO change (epoch, kind, object_id, op, image, actor, reason, time)"
                " VALUES (1, 'host', 'a1', 'upsert', '{}', 'op', '', 0)"
            )
        db.execute("DELETE FROM change WHERE seq < 5")
    finally:
        db.close()


@pytest.mark.asyncio
async def test_a_version_2_database_is_upgraded_keeping_hosts_and_seq(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _v2_database(path)
    async with await Store.open(path, domain=DOMAIN) as store:
        [host] = await store.hosts()
        assert (host.id, host.ip, host.ip6, host.duid, host.version) == (
            "a1", IPv4Address("198.18.0.10"), None, None, 3,
        )  # fmt: skip
        assert host.dhcp is not None
        assert host.dhcp.mtu == 1400
        assert await store.last_seq() == 5
        assert [c.seq for c in await store.changes()] == [5]
        await store.sync_subnets([LAN, LAB], actor="config", reason="start")
        [change, *_] = await store.sync_subnets6([LAN6], actor="config", reason="start")
        assert change.seq == 8  # after the two subnets: 6, 7
        await store.update_host(
            "a1", {"ip6": "2001:db8:10::21", "duid": DUID1}, actor="op", reason=""
        )
        # The unique indexes came back with the table.
        with pytest.raises(Conflict):
            await store.add_host(
                h6("2001:db8:10::21", "b", mac="52:54:00:00:00:0b"),
                actor="op", reason="",
            )  # fmt: skip
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == 3
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"host_ip", "host_ip6", "host_duid", "host_mac", "change_object"} <= indexes
    finally:
        db.close()


@pytest.mark.asyncio
async def test_two_lease6_writes_in_one_transaction_number_their_changes_in_turn(
    store: Store,
) -> None:
    await v6_store(store)
    last = await store.last_seq()
    async with store.transaction() as tx:
        first = await tx.write_leases6([na("2001:db8:10::1001")], actor="dhcp6")
        second = await tx.write_leases6(
            [na("2001:db8:10::1002"), pd("2001:db8:100::/56")], actor="dhcp6"
        )
    assert [c.seq for c in (*first, *second)] == [last + 1, last + 2, last + 3]
    stored = await store.changes(after=last)
    assert [(c.seq, c.object_id) for c in stored] == [
        (last + 1, "na:2001:db8:10::1001/128"),
        (last + 2, "na:2001:db8:10::1002/128"),
        (last + 3, "pd:2001:db8:100::/56"),
    ]
    assert [Lease6.from_image(c.image) for c in stored] == [
        na("2001:db8:10::1001"), na("2001:db8:10::1002"), pd("2001:db8:100::/56"),
    ]  # fmt: skip
