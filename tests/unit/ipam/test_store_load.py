"""``Store.load``: the start-up load hands the objects over a chunk at a time, every object
once, with one copy of the values a reservation and its client's lease share."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from ddi.ipam import store as store_module
from ddi.ipam.models import Host, Lease, Record, Subnet
from ddi.ipam.models6 import Lease6, Subnet6
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex
from tests.unit.ipam.test_store import MAC1, add_web1, lease
from tests.unit.ipam.test_store_v6 import na, pd, v6_store


class Sink:
    def __init__(self) -> None:
        self.chunks: list[tuple[str, int]] = []
        self.subnet_list: list[Subnet] = []
        self.host_list: list[Host] = []
        self.lease_list: list[Lease] = []
        self.record_list: list[Record] = []
        self.subnet6_list: list[Subnet6] = []
        self.lease6_list: list[Lease6] = []

    def subnets(self, subnets: list[Subnet]) -> None:
        self.subnet_list += subnets

    def subnets6(self, subnets: list[Subnet6]) -> None:
        self.subnet6_list += subnets

    def leases6(self, leases: list[Lease6]) -> None:
        self.chunks.append(("leases6", len(leases)))
        self.lease6_list += leases

    def hosts(self, hosts: list[Host]) -> None:
        self.chunks.append(("hosts", len(hosts)))
        self.host_list += hosts

    def leases(self, leases: list[Lease]) -> None:
        self.chunks.append(("leases", len(leases)))
        self.lease_list += leases

    def records(self, records: list[Record]) -> None:
        self.chunks.append(("records", len(records)))
        self.record_list += records


@pytest.mark.asyncio
async def test_load_hands_every_object_over_in_chunks(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_web1(store)
    await v6_store(store)
    await store.commit_leases6([na("2001:db8:10::1001"), pd("2001:db8:100::/56")])
    dynamic = [lease(f"198.18.0.{100 + i}", f"02:00:00:00:00:{i:02x}", 0.0, 3600.0)
               for i in range(5)]  # fmt: skip
    await store.commit_leases([lease("198.18.0.10", MAC1, 0.0, 3600.0, hostname="web1")])
    await store.commit_leases(dynamic)
    for i in range(3):
        record = Record(id="", name=f"r{i}.site.example", rtype="A", value=f"198.18.0.{30 + i}")
        await store.add_record(record, actor="op", reason="r")
    monkeypatch.setattr(store_module, "LOAD_CHUNK", 2)
    sink = Sink()
    seq = await store.load(sink)
    assert seq == await store.last_seq()
    assert sink.chunks == [
        ("hosts", 1), ("leases", 2), ("leases", 2), ("leases", 2), ("records", 2), ("records", 1),
        ("leases6", 2),
    ]  # fmt: skip
    snap = await store.snapshot()
    assert sink.subnet_list == snap.subnets
    assert sorted(sink.host_list, key=repr) == sorted(snap.hosts, key=repr)
    assert sorted(sink.lease_list, key=repr) == sorted(snap.leases, key=repr)
    assert sorted(sink.record_list, key=repr) == sorted(snap.records, key=repr)
    assert sink.subnet6_list == snap.subnets6
    assert sorted(sink.lease6_list, key=repr) == sorted(snap.leases6, key=repr)
    # The reservation's lease shares its address, MAC and hostname objects.
    (web1,) = sink.host_list
    (reserved,) = [x for x in sink.lease_list if x.ip == IPv4Address("198.18.0.10")]
    assert reserved.ip is web1.ip
    assert reserved.mac is web1.mac
    assert reserved.hostname is web1.hostname
    # The index loaded this way is the one built from the snapshot's values.
    loaded = await IpamIndex.load(store)
    built = IpamIndex(
        subnets=snap.subnets, hosts=snap.hosts, leases=snap.leases, records=snap.records,
        domain=store.domain, seq=snap.last_seq, subnets6=snap.subnets6, leases6=snap.leases6,
    )  # fmt: skip
    assert loaded.state() == built.state()
    assert loaded.counts() == {"subnets": 2, "hosts": 1, "leases": 6, "records": 3}
