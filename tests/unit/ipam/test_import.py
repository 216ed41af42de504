"""The store's import: one transaction, everything or nothing, checked as one write each, and
imported leases seen by the index exactly as granted ones."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from ddi.ipam.change_query import ChangeQuery, subject_filter
from ddi.ipam.models import Host, Kind, Lease, LeaseState, Op, Record
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex
from ddi.migrate.items import HostItem, LeaseItem, RecordItem
from tests.unit.ipam.conftest import T0, Clock


def host(n: int, **fields: object) -> HostItem:
    values: dict[str, object] = {
        "source": f"f:{n}",
        "ip": f"198.18.0.{n}",
        "hostname": f"h{n}",
        "mac": f"52:54:00:00:00:{n:02x}",
    }
    values.update(fields)
    return HostItem(**values)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_import_adds_hosts_records_and_leases_in_one_transaction(store: Store) -> None:
    index = await IpamIndex.load(store)
    store.subscribe(index.apply)
    before = await store.last_seq()
    plan = await store.import_items(
        hosts=[host(10), host(11, lease_time=600)],
        leases=[LeaseItem(source="l:1", ip="198.18.0.150", mac="52:54:00:00:01:50",
                          start=0.0, end=T0 + 7200, hostname="Laptop One")],
        records=[RecordItem(source="z:1", name="www", rtype="CNAME", value="h10.site.example."),
                 RecordItem(source="z:2", name="h10.site.example.", rtype="A",
                            value="198.18.0.10")],
        actor="alice", reason="move",
    )  # fmt: skip
    assert not plan.refused
    assert [o.key for o in plan.added] == [
        "198.18.0.10",
        "198.18.0.11",
        "www.site.example CNAME h10.site.example",
        "198.18.0.150",
    ]
    # the A record at the reservation's own name and address is that reservation's name
    assert [o.source for o in plan.skipped] == ["z:2"]
    hosts = {h.hostname: h for h in await store.hosts()}
    assert hosts["h11"].dhcp is not None
    assert hosts["h11"].dhcp.lease_time == 600
    lease = await store.lease(IPv4Address("198.18.0.150"))
    assert lease is not None
    # the lease keeps its end; its unknown start is the time of the import
    assert (lease.end, lease.start, lease.state, lease.subnet) == (T0 + 7200, T0, LeaseState.BOUND,
                                                                  "lan")  # fmt: skip
    assert lease.hostname == "laptop-one"
    # one change each, all in one commit, and the index follows it
    entries = await store.changes(after=before)
    assert sorted(c.kind.value for c in entries) == ["host", "host", "lease", "record"]
    assert {c.actor for c in entries} == {"alice"}
    assert index.lease_by_ip(IPv4Address("198.18.0.150")) == lease
    assert index.host_by_name("h10") == hosts["h10"]


@pytest.mark.asyncio
async def test_one_refusal_writes_nothing_and_names_every_problem(store: Store) -> None:
    await store.add_host(
        Host(id="", ip=IPv4Address("198.18.0.20"), hostname="taken", mac="52:54:00:00:09:99"),
        actor="t", reason="",
    )  # fmt: skip
    before = await store.last_seq()
    plan = await store.import_items(
        hosts=[
            host(10),
            host(20),  # the address is another host's
            host(21, hostname="taken"),  # so is the name
            host(22, mac="52:54:00:00:00:0a"),  # the same client as f:10
            host(1),  # the gateway
            host(30, ip="203.0.113.5"),  # outside every subnet
        ],
        leases=[LeaseItem(source="l:1", ip="198.18.0.10", mac="52:54:00:00:07:77", start=0.0,
                          end=T0 + 60)],
        records=[RecordItem(source="z:1", name="taken", rtype="A", value="198.18.0.99")],
        actor="alice", reason="",
    )  # fmt: skip
    refused = {o.source: o.what for o in plan.refused}
    assert set(refused) == {"f:20", "f:21", "f:22", "f:1", "f:30", "l:1", "z:1"}
    assert "held by host taken" in refused["f:20"]
    assert "hostname taken" in refused["f:21"]
    assert "f:10" in refused["f:22"]
    assert "gateway" in refused["f:1"]
    assert "outside every subnet" in refused["f:30"]
    assert "reserved for host h10" in refused["l:1"]
    assert "name of host taken" in refused["z:1"]
    assert await store.last_seq() == before
    assert [h.hostname for h in await store.hosts()] == ["taken"]


@pytest.mark.asyncio
async def test_a_known_client_is_changed_and_an_unchanged_one_writes_nothing(
    store: Store,
) -> None:
    await store.import_items(hosts=[host(10), host(11)], leases=[], records=[], actor="a",
                             reason="")  # fmt: skip
    first = {h.hostname: h for h in await store.hosts()}
    before = await store.last_seq()
    plan = await store.import_items(
        hosts=[host(10), host(11, ip="198.18.0.12", hostname="moved")],
        leases=[], records=[], actor="a", reason="",
    )  # fmt: skip
    assert [o.source for o in plan.unchanged] == ["f:10"]
    assert [o.what for o in plan.changed] == [
        "h11 198.18.0.11 52:54:00:00:00:0b -> moved 198.18.0.12 52:54:00:00:00:0b"
    ]
    moved = {h.hostname: h for h in await store.hosts()}["moved"]
    assert (moved.id, moved.version) == (first["h11"].id, 2)
    assert [(c.kind, c.op) for c in await store.changes(after=before)] == [(Kind.HOST, Op.UPSERT)]


@pytest.mark.asyncio
async def test_dry_run_plans_the_same_and_writes_nothing(store: Store) -> None:
    before = await store.last_seq()
    plan = await store.import_items(hosts=[host(10)], leases=[], records=[], actor="a",
                                    reason="", dry_run=True)  # fmt: skip
    assert [o.key for o in plan.added] == ["198.18.0.10"]
    assert await store.hosts() == []
    assert await store.last_seq() == before


@pytest.mark.asyncio
async def test_ended_leases_are_skipped_and_active_ones_of_others_refused(
    store: Store, clock: Clock
) -> None:
    await store.import_items(
        hosts=[], records=[], actor="a", reason="",
        leases=[LeaseItem(source="a:1", ip="198.18.0.150", mac="52:54:00:00:01:50", start=0.0,
                          end=T0 + 600)],
    )  # fmt: skip
    plan = await store.import_items(
        hosts=[], records=[], actor="a", reason="",
        leases=[
            LeaseItem(source="b:1", ip="198.18.0.150", mac="52:54:00:00:01:51", start=0.0,
                      end=T0 + 600),
            LeaseItem(source="b:2", ip="198.18.0.151", mac="52:54:00:00:01:51", start=0.0,
                      end=T0 - 1),
            LeaseItem(source="b:3", ip="198.18.0.152", mac="52:54:00:00:01:52", start=0.0,
                      end=T0 + 60),
            LeaseItem(source="b:4", ip="198.18.0.152", mac="52:54:00:00:01:52", start=0.0,
                      end=T0 + 90),
            LeaseItem(source="b:5", ip="198.18.0.50", mac="52:54:00:00:01:53", start=0.0,
                      end=T0 + 90),
        ],
    )  # fmt: skip
    assert {o.source for o in plan.refused} == {"b:1", "b:4", "b:5"}
    assert "outside the pools of subnet lan" in plan.refused[-1].what
    assert [o.source for o in plan.skipped] == ["b:2"]


@pytest.mark.asyncio
async def test_cname_rules_and_relative_names(store: Store) -> None:
    await store.add_record(
        Record(id="", name="mail.site.example", rtype="A", value="198.18.0.25"),
        actor="t", reason="",
    )  # fmt: skip
    plan = await store.import_items(
        hosts=[], leases=[], actor="a", reason="",
        records=[
            RecordItem(source="z:1", name="mail", rtype="CNAME", value="x.site.example."),
            RecordItem(source="z:2", name="mail", rtype="A", value="198.18.0.25"),
            RecordItem(source="z:3", name="@", rtype="MX", value="10 mail.site.example."),
        ],
    )  # fmt: skip
    assert [o.source for o in plan.refused] == ["z:1"]
    assert [o.source for o in plan.unchanged] == ["z:2"]
    assert [o.source for o in plan.added] == ["z:3"]  # would be added, but one was refused:
    assert [r.rtype for r in await store.records()] == ["A"]  # nothing written


@pytest.mark.asyncio
async def test_change_queries(store: Store, clock: Clock) -> None:
    await store.import_items(hosts=[host(10)], leases=[], records=[], actor="alice", reason="")
    clock.now = T0 + 100
    await store.commit_leases(
        [
            _lease("198.18.0.150", "52:54:00:00:01:50"),
            _lease("198.18.0.151", "52:54:00:00:00:0a"),
        ]
    )
    by_mac = await store.find_changes(
        ChangeQuery(subject=subject_filter("52-54-00-00-00-0A"), limit=10)
    )
    assert [(c.kind, c.object_id) for c in by_mac][1:] == [(Kind.LEASE, "198.18.0.151")]
    assert by_mac[0].kind is Kind.HOST
    by_ip = await store.find_changes(ChangeQuery(subject=subject_filter("198.18.0.150")))
    assert [c.object_id for c in by_ip] == ["198.18.0.150"]
    by_name = await store.find_changes(ChangeQuery(subject=subject_filter("H10")))
    assert [c.kind for c in by_name] == [Kind.HOST]
    assert [c.actor for c in await store.find_changes(ChangeQuery(actor="alice"))] == ["alice"]
    recent = await store.find_changes(ChangeQuery(since=T0 + 50, kinds=(Kind.LEASE,)))
    assert [c.object_id for c in recent] == ["198.18.0.150", "198.18.0.151"]
    assert await store.find_changes(ChangeQuery(until=T0, kinds=(Kind.LEASE,))) == []
    latest = await store.find_changes(ChangeQuery(limit=1))
    assert [c.seq for c in latest] == [await store.last_seq()]
    assert await store.find_changes(ChangeQuery(op=Op.DELETE)) == []


def _lease(ip: str, mac: str) -> Lease:
    now = T0 + 100
    return Lease(ip=IPv4Address(ip), mac=mac, start=now, end=now + 600, subnet="lan")
