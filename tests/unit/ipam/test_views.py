"""The in-memory IPAM index: lookups, and staying equal to the store through its changes."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddi.errors import StoreError
from ddi.ipam.models import (
    Change,
    Host,
    Kind,
    Lease,
    LeaseState,
    Op,
    Pool,
    Record,
    Subnet,
)
from ddi.ipam.store import Store
from ddi.ipam.views import Applied, IpamIndex, IpamView

T0 = 1_800_000_000.0
LAN = Subnet(
    name="lan",
    cidr=IPv4Network("198.18.0.0/24"),
    gateway=IPv4Address("198.18.0.1"),
    pools=(Pool(start=IPv4Address("198.18.0.100"), end=IPv4Address("198.18.0.199")),),
)
LAB = Subnet(name="lab", cidr=IPv4Network("198.18.1.0/24"), domain="lab.site.example")
WEB1 = Host(id="h1", ip=IPv4Address("198.18.0.10"), hostname="web1", mac="52:54:00:00:00:01",
            client_id="01:52:54:00:00:00:01")  # fmt: skip
LABHOST = Host(id="h2", ip=IPv4Address("198.18.1.10"), hostname="bench", circuit_id="65:74:68")
MX = Record(id="r1", name="site.example", rtype="MX", value="10 mail.site.example")
MAIL = Record(id="r2", name="mail.site.example", rtype="A", value="198.18.0.25")


def lease(ip: str, mac: str | None, end: float, **fields: Any) -> Lease:
    return Lease(ip=IPv4Address(ip), mac=mac, start=T0, end=end, subnet="lan", **fields)


def change(seq: int, kind: Kind, object_id: str, op: Op, image: Any) -> Change:
    return Change(epoch=1, seq=seq, kind=kind, object_id=object_id, op=op, image=image)


def make_index() -> IpamIndex:
    return IpamIndex(
        subnets=[LAN, LAB], hosts=[WEB1, LABHOST], records=[MX, MAIL], domain="Site.Example."
    )


def test_index_is_an_ipam_view() -> None:
    view: IpamView = make_index()
    assert view.subnets() == [LAN, LAB]
    assert view.subnet("lab") == LAB
    assert view.subnet("nope") is None


def test_host_lookups_by_every_key() -> None:
    index = make_index()
    assert index.host_by_mac("52:54:00:00:00:01") == WEB1
    assert index.host_by_client_id("01:52:54:00:00:00:01") == WEB1
    assert index.host_by_circuit_id("65:74:68") == LABHOST
    assert index.host_by_ip(IPv4Address("198.18.1.10")) == LABHOST
    assert index.host_by_name("WEB1") == WEB1
    assert index.host_by_mac("52:54:00:00:00:02") is None
    assert sorted(h.id for h in index.hosts()) == ["h1", "h2"]


def test_name_owned_by_reservations_and_records() -> None:
    index = make_index()
    assert index.name_owned("web1")
    assert index.name_owned("web1.site.example")
    assert index.name_owned("WEB1.site.example.")
    assert index.name_owned("bench.lab.site.example")  # the subnet's own domain
    assert index.name_owned("bench.site.example")
    assert not index.name_owned("web1.lab.site.example")  # web1 is not in lab
    assert index.name_owned("mail")  # a static record at mail.site.example
    assert index.name_owned("mail.site.example")
    assert index.name_owned("site.example")
    assert not index.name_owned("laptop")
    assert not index.name_owned("laptop.site.example")
    assert [r.id for r in index.records_at("mail.site.example.")] == ["r2"]


def test_name_owned_label_under_a_subnet_domain_without_site_domain() -> None:
    index = IpamIndex(
        subnets=[LAB],
        records=[Record(id="r3", name="printer.lab.site.example", rtype="A", value="198.18.1.5")],
    )
    assert index.name_owned("printer")
    assert not index.name_owned("scanner")


def test_lease_by_client_prefers_client_id_then_mac() -> None:
    index = IpamIndex(
        leases=[
            lease("198.18.0.100", "02:00:00:00:00:01", T0 + 10, client_id="01:aa"),
            lease("198.18.0.101", "02:00:00:00:00:02", T0 + 10),
            lease("198.18.0.102", "02:00:00:00:00:02", T0 + 50, state=LeaseState.EXPIRED),
        ]
    )
    assert index.lease_by_client(None, "01:aa") is not None
    found = index.lease_by_client("02:00:00:00:00:01", "01:aa")
    assert found is not None
    assert found.ip == IPv4Address("198.18.0.100")
    # the same NIC, another client-id: another client
    assert index.lease_by_client("02:00:00:00:00:01", "01:bb") is None
    # a client that sends no client-id matches by MAC
    found = index.lease_by_client("02:00:00:00:00:01", None)
    assert found is not None
    assert found.ip == IPv4Address("198.18.0.100")
    # bound before expired, even if the expired one ends later
    found = index.lease_by_client("02:00:00:00:00:02", "01:cc")
    assert found is not None
    assert found.ip == IPv4Address("198.18.0.101")
    assert index.lease_by_client(None, None) is None
    assert index.lease_by_ip(IPv4Address("198.18.0.102")) is not None


def test_apply_host_whose_mac_changed() -> None:
    index = make_index()
    moved = Host(id="h1", ip=IPv4Address("198.18.0.11"), hostname="www", mac="52:54:00:00:00:09")
    index.apply([change(1, Kind.HOST, "h1", Op.UPSERT, moved.to_image())])
    assert index.host_by_mac("52:54:00:00:00:01") is None
    assert index.host_by_client_id("01:52:54:00:00:00:01") is None
    assert index.host_by_ip(IPv4Address("198.18.0.10")) is None
    assert index.host_by_name("web1") is None
    assert index.host_by_mac("52:54:00:00:00:09") == moved
    assert index.host_by_name("www") == moved
    index.apply([change(2, Kind.HOST, "h1", Op.DELETE, moved.to_image())])
    assert index.host_by_mac("52:54:00:00:00:09") is None
    assert index.seq == 2


def test_apply_skips_changes_already_loaded() -> None:
    index = IpamIndex(hosts=[WEB1], seq=5)
    index.apply([change(5, Kind.HOST, "h1", Op.DELETE, WEB1.to_image())])
    assert index.host_by_name("web1") == WEB1
    index.apply([change(6, Kind.HOST, "h1", Op.DELETE, WEB1.to_image())])
    assert index.host_by_name("web1") is None


def test_apply_subnets_leases_records() -> None:
    index = make_index()
    index.apply(
        [
            change(1, Kind.SUBNET, "lab", Op.DELETE, LAB.to_image()),
            change(2, Kind.LEASE, "198.18.0.100", Op.UPSERT,
                   lease("198.18.0.100", "02:00:00:00:00:01", T0 + 9).to_image()),
            change(3, Kind.LEASE, "198.18.0.100", Op.UPSERT,
                   lease("198.18.0.100", "02:00:00:00:00:02", T0 + 9).to_image()),
            change(4, Kind.RECORD, "r2", Op.DELETE, MAIL.to_image()),
        ]
    )  # fmt: skip
    assert index.subnets() == [LAN]
    assert index.lease_by_client("02:00:00:00:00:01", None) is None
    assert index.lease_by_client("02:00:00:00:00:02", None) is not None
    assert not index.name_owned("mail")
    assert [r.id for r in index.records()] == ["r1"]


def test_subscribers_get_each_applied_change_with_what_it_replaced() -> None:
    index = make_index()
    seen: list[Sequence[Applied]] = []
    index.subscribe(seen.append)
    moved = Host(id="h1", ip=IPv4Address("198.18.0.11"), hostname="www", mac="52:54:00:00:00:09")
    bound = lease("198.18.0.100", "02:00:00:00:00:01", T0 + 9, hostname="laptop")
    batch = [
        change(1, Kind.HOST, "h1", Op.UPSERT, moved.to_image()),
        change(2, Kind.LEASE, "198.18.0.100", Op.UPSERT, bound.to_image()),
        change(3, Kind.RECORD, "r2", Op.DELETE, MAIL.to_image()),
        change(4, Kind.SUBNET, "lab", Op.DELETE, LAB.to_image()),
    ]
    index.apply(batch)
    assert len(seen) == 1
    assert [a.change for a in seen[0]] == batch
    assert [a.before for a in seen[0]] == [WEB1, None, MAIL, LAB]
    # subscribers run once the index shows the batch
    assert index.host_by_name("www") == moved
    index.apply(batch)  # already applied: nothing to tell
    assert len(seen) == 1
    index.unsubscribe(seen.append)
    index.apply([change(5, Kind.HOST, "h1", Op.DELETE, moved.to_image())])
    assert len(seen) == 1


def test_leases_named_holds_bound_leases_only() -> None:
    bound = lease("198.18.0.100", "02:00:00:00:00:01", T0 + 9, hostname="Laptop")
    index = IpamIndex(leases=[bound])
    assert index.leases_named("laptop") == [bound]
    expired = lease(
        "198.18.0.100", "02:00:00:00:00:01", T0 + 9, hostname="Laptop", state=LeaseState.EXPIRED
    )
    index.apply([change(1, Kind.LEASE, "198.18.0.100", Op.UPSERT, expired.to_image())])
    assert index.leases_named("laptop") == []
    assert index.lease_by_ip(IPv4Address("198.18.0.100")) == expired


# --- the index follows the store: a random sequence of writes ---

MACS = [f"52:54:00:00:00:{i:02x}" for i in range(1, 5)]
IPS = ["198.18.0.10", "198.18.0.11", "198.18.0.100", "198.18.0.101", "198.18.1.10", "198.18.0.0"]
NAMES = ["a", "b", "c", "mail"]

adds = st.tuples(
    st.just("add"),
    st.sampled_from(NAMES),
    st.sampled_from(IPS),
    st.sampled_from(MACS),
    st.sampled_from([None, "01:02", "01:03"]),
)
ops = st.one_of(
    adds,
    adds,
    adds,
    st.tuples(st.just("update"), st.sampled_from(NAMES),
              st.sampled_from(["ip", "mac", "hostname", "client_id", "boot"]),
              st.sampled_from([*IPS, *MACS, *NAMES, ""])),
    st.tuples(st.just("remove"), st.sampled_from(NAMES)),
    st.tuples(st.just("lease"), st.sampled_from(IPS[:4]), st.sampled_from(MACS),
              st.sampled_from(list(LeaseState)), st.integers(-50, 50)),
    st.tuples(st.just("release"), st.sampled_from(IPS[:4])),
    st.tuples(st.just("expire"), st.integers(-60, 60)),
    st.tuples(st.just("record"), st.sampled_from(NAMES),
              st.sampled_from(["A", "CNAME", "TXT"])),
    st.tuples(st.just("unrecord"), st.integers(0, 3)),
    st.tuples(st.just("subnets"), st.booleans()),
)  # fmt: skip


async def _run(store: Store, op: tuple[Any, ...]) -> None:
    match op:
        case ("add", name, ip, mac, client_id):
            await store.add_host(
                Host(id="", ip=IPv4Address(ip), hostname=name, mac=mac, client_id=client_id),
                actor="t",
                reason="",
            )
        case ("update", name, field, value):
            await store.update_host(name, {field: value}, actor="t", reason="")
        case ("remove", name):
            await store.remove_host(name, actor="t", reason="")
        case ("lease", ip, mac, lease_state, ends_in):
            await store.commit_leases([lease(ip, mac, T0 + max(ends_in, 0), state=lease_state)])
        case ("release", ip):
            await store.release_lease(IPv4Address(ip), actor="t", reason="")
        case ("expire", delta):
            await store.expire_leases(T0 + delta)
        case ("record", name, rtype):
            value = {"A": "198.18.9.9", "CNAME": "target.example", "TXT": "x"}[rtype]
            await store.add_record(
                Record(id="", name=f"{name}.site.example", rtype=rtype, value=value),
                actor="t",
                reason="",
            )
        case ("unrecord", position):
            records = await store.records()
            if records:
                await store.remove_record(records[position % len(records)].id, actor="t", reason="")
        case ("subnets", with_lab):
            await store.sync_subnets([LAN, LAB] if with_lab else [LAN], actor="t", reason="")
        case _:
            raise AssertionError(op)


async def _follow(folder: Path, script: Sequence[tuple[Any, ...]]) -> None:
    async with await Store.open(folder / "ipam.db", clock=lambda: T0, domain="site.example") as s:
        await s.sync_subnets([LAN, LAB], actor="t", reason="")
        index = await IpamIndex.load(s)
        s.subscribe(index.apply)
        for op in script:
            with contextlib.suppress(StoreError):
                await _run(s, op)
        loaded = await IpamIndex.load(s)
        assert index.state() == loaded.state()
        assert index.seq == loaded.seq == await s.last_seq()
        # replaying the whole change log into an empty index gives the same state too
        replayed = IpamIndex(domain="site.example")
        replayed.apply(await s.changes(limit=100_000))
        assert replayed.state() == loaded.state()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, max_size=40))
def test_index_follows_store_through_random_changes(script: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_follow(Path(folder), script))


@pytest.mark.asyncio
async def test_load_then_subscribe_sees_writes_racing_the_load(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "ipam.db", clock=lambda: T0) as store:
        await store.sync_subnets([LAN], actor="t", reason="")

        async def writer() -> None:
            for i in range(20):
                await store.commit_leases([lease(f"198.18.0.{100 + i}", "02:00:00:00:00:01", T0)])

        task = asyncio.create_task(writer())
        await asyncio.sleep(0)
        index = await IpamIndex.load(store)
        store.subscribe(index.apply)
        await task
        assert index.state() == (await IpamIndex.load(store)).state()
        assert len(list(index.leases())) == 20
