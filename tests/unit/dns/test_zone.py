"""Zones from IPAM: reverse zone shapes, incremental changes, serials, ownership, journal."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from ddi.dns.zone import record_rdata, reverse_networks, reverse_origin
from ddi.dns.zones import Zones, ZoneSettings
from ddi.errors import StoreError
from ddi.ipam.models import Host, Lease, LeaseState, Op, Record, Subnet
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex


def names(z: Any, origin: str = "site.example") -> dict[str, list[str]]:
    zone = z.zones[origin]
    return {
        n: sorted(str(rr.rdata) for rrs in node.values() for rr in rrs if rr.rtype != QTYPE.SOA)
        for n, node in zone.rrsets.items()
    }


@pytest.mark.parametrize(
    ("cidr", "zones"),
    [
        ("198.18.0.0/24", ["0.18.198.in-addr.arpa"]),
        ("198.18.0.128/25", ["0.18.198.in-addr.arpa"]),
        ("198.18.0.0/16", ["18.198.in-addr.arpa"]),
        ("198.18.2.0/23", ["2.18.198.in-addr.arpa", "3.18.198.in-addr.arpa"]),
        ("10.0.0.0/8", ["10.in-addr.arpa"]),
        ("198.18.0.0/22", [f"{i}.18.198.in-addr.arpa" for i in range(4)]),
    ],
)
def test_reverse_zones_sit_on_octet_boundaries(cidr: str, zones: list[str]) -> None:
    assert [reverse_origin(n) for n in reverse_networks(IPv4Network(cidr))] == zones


def test_build_has_apex_ns_and_glue(h: Any) -> None:
    z = h.zones()
    assert set(z.zones) == {"site.example", "0.18.198.in-addr.arpa"}
    got = names(z)
    assert got["site.example"] == ["ns.site.example."]
    assert got["ns.site.example"] == ["198.18.0.1"]
    assert z.zones["site.example"].serial == 10
    assert names(z, "0.18.198.in-addr.arpa")["0.18.198.in-addr.arpa"] == ["ns.site.example."]


def test_adding_a_reservation_adds_a_and_ptr_and_bumps_both_serials(h: Any) -> None:
    z = h.zones()
    res = h.apply(z, [h.change(h.host("web", "198.18.0.10"), seq=50)])
    assert res.changed == {"site.example", "0.18.198.in-addr.arpa"}
    assert names(z)["web.site.example"] == ["198.18.0.10"]
    assert names(z, "0.18.198.in-addr.arpa")["10.0.18.198.in-addr.arpa"] == ["web.site.example."]
    assert z.zones["site.example"].serial == 50
    assert z.zones["site.example"].soa.rdata.times[0] == 50


def test_serial_increases_on_every_change_even_with_small_seq(h: Any) -> None:
    z = h.zones(serial=100)
    h.apply(z, [h.change(h.host("a", "198.18.0.10"), seq=3)])
    first = z.zones["site.example"].serial
    h.apply(z, [h.change(h.host("b", "198.18.0.11"), seq=4)])
    assert first > 100
    assert z.zones["site.example"].serial > first


def test_a_change_outside_a_zone_leaves_its_serial(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.record("x.site.example", "TXT", "hello"), seq=20)])
    assert z.zones["site.example"].serial == 20
    assert z.zones["0.18.198.in-addr.arpa"].serial == 10


def test_a_no_op_change_leaves_the_serial(h: Any) -> None:
    z = h.zones()
    web = h.host("web", "198.18.0.10")
    h.apply(z, [h.change(web, seq=20)])
    res = h.apply(z, [h.change(web, seq=21)])
    assert res.changed == frozenset()
    assert z.zones["site.example"].serial == 20


def test_moving_and_removing_a_reservation(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.host("web", "198.18.0.10", hid="x"))])
    h.apply(z, [h.change(h.host("www", "198.18.0.12", hid="x"))])
    got = names(z)
    assert "web.site.example" not in got
    assert got["www.site.example"] == ["198.18.0.12"]
    rev = names(z, "0.18.198.in-addr.arpa")
    assert "10.0.18.198.in-addr.arpa" not in rev
    h.apply(z, [h.change(h.host("www", "198.18.0.12", hid="x"), op=Op.DELETE)])
    assert "www.site.example" not in names(z)
    assert "12.0.18.198.in-addr.arpa" not in names(z, "0.18.198.in-addr.arpa")


def test_bound_lease_with_hostname_appears_and_goes_when_it_ends(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.lease("198.18.0.50", "laptop"))])
    assert names(z)["laptop.site.example"] == ["198.18.0.50"]
    assert names(z, "0.18.198.in-addr.arpa")["50.0.18.198.in-addr.arpa"] == ["laptop.site.example."]
    h.apply(z, [h.change(h.lease("198.18.0.50", "laptop", LeaseState.EXPIRED))])
    assert "laptop.site.example" not in names(z)
    assert "50.0.18.198.in-addr.arpa" not in names(z, "0.18.198.in-addr.arpa")


def test_lease_without_hostname_gets_no_record(h: Any) -> None:
    z = h.zones()
    res = h.apply(z, [h.change(h.lease("198.18.0.50", None))])
    assert res.changed == frozenset()


def test_lease_name_owned_by_a_reservation_is_a_collision(h: Any) -> None:
    z = h.zones(h.FakeView(subnet_list=[h.subnet()], host_list=[h.host("web", "198.18.0.10")]))
    res = h.apply(z, [h.change(h.lease("198.18.0.50", "web"))])
    assert res.collisions == ("web.site.example",)
    assert z.collisions == 1
    assert names(z)["web.site.example"] == ["198.18.0.10"]
    assert "50.0.18.198.in-addr.arpa" not in names(z, "0.18.198.in-addr.arpa")


def test_lease_name_owned_by_a_static_record_is_a_collision(h: Any) -> None:
    z = h.zones(
        h.FakeView(
            subnet_list=[h.subnet()],
            record_list=[h.record("printer.site.example", "A", "198.18.0.9")],
        )
    )
    res = h.apply(z, [h.change(h.lease("198.18.0.51", "printer"))])
    assert res.collisions == ("printer.site.example",)
    assert names(z)["printer.site.example"] == ["198.18.0.9"]


def test_reservation_added_later_takes_the_name_from_a_lease(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.lease("198.18.0.50", "web"))])
    h.apply(z, [h.change(h.host("web", "198.18.0.10"))])
    assert names(z)["web.site.example"] == ["198.18.0.10"]
    assert "50.0.18.198.in-addr.arpa" not in names(z, "0.18.198.in-addr.arpa")


def test_the_reserved_clients_own_lease_is_not_a_collision(h: Any) -> None:
    z = h.zones(h.FakeView(subnet_list=[h.subnet()], host_list=[h.host("web", "198.18.0.10")]))
    res = h.apply(z, [h.change(h.lease("198.18.0.10", "web"))])
    assert res.collisions == ()
    assert names(z)["web.site.example"] == ["198.18.0.10"]


def test_reservation_added_at_a_leased_address_takes_the_address_from_the_lease(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.lease("198.18.0.10", "laptop"))])
    assert names(z)["laptop.site.example"] == ["198.18.0.10"]
    h.apply(z, [h.change(h.host("web", "198.18.0.10"))])
    assert "laptop.site.example" not in names(z)
    assert names(z, "0.18.198.in-addr.arpa")["10.0.18.198.in-addr.arpa"] == ["web.site.example."]
    h.apply(z, [h.change(h.host("web", "198.18.0.10"), op=Op.DELETE)])
    assert names(z)["laptop.site.example"] == ["198.18.0.10"]


def test_existing_collision_is_counted_at_build(h: Any) -> None:
    z = h.zones(
        h.FakeView(
            subnet_list=[h.subnet()],
            host_list=[h.host("web", "198.18.0.10")],
            lease_list=[h.lease("198.18.0.50", "web")],
        )
    )
    assert z.collisions == 1


def test_static_records_of_each_type(h: Any) -> None:
    z = h.zones()
    for rec in [
        h.record("v6.site.example", "AAAA", "2001:db8::1"),
        h.record("mail.site.example", "MX", "10 mx.site.example"),
        h.record("_sip._udp.site.example", "SRV", "1 2 5060 sip.site.example"),
        h.record("t.site.example", "TXT", "hello world"),
        h.record("c.site.example", "CNAME", "v6.site.example"),
        h.record("9.0.18.198.in-addr.arpa", "PTR", "printer.site.example"),
        h.record("d.site.example", "NS", "ns1.other.example"),
    ]:
        h.apply(z, [h.change(rec)])
    got = names(z)
    assert got["v6.site.example"] == ["2001:db8::1"]
    assert got["mail.site.example"] == ["10 mx.site.example."]
    assert got["_sip._udp.site.example"] == ["1 2 5060 sip.site.example."]
    assert got["t.site.example"] == ['"hello world"']
    assert got["c.site.example"] == ["v6.site.example."]
    assert got["d.site.example"] == ["ns1.other.example."]
    assert names(z, "0.18.198.in-addr.arpa")["9.0.18.198.in-addr.arpa"] == ["printer.site.example."]
    assert z.zones["site.example"].delegations == {"d.site.example"}


def test_bad_static_record_is_skipped_and_counted(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.record("bad.site.example", "MX", "not-a-number mx"))])
    assert "bad.site.example" not in names(z)
    assert z.bad_records == 1


def test_record_ttl_overrides_default(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.record("x.site.example", "A", "198.18.0.3", ttl=60))])
    assert z.zones["site.example"].rrsets["x.site.example"][QTYPE.A][0].ttl == 60


def test_record_outside_every_zone_is_ignored(h: Any) -> None:
    z = h.zones()
    res = h.apply(z, [h.change(h.record("x.elsewhere.example", "A", "198.18.0.3"))])
    assert res.changed == frozenset()


def test_journal_keeps_deltas_and_is_bounded(h: Any) -> None:
    z = h.zones(journal_size=2)
    for i in range(3):
        h.apply(z, [h.change(h.host(f"h{i}", f"198.18.0.{20 + i}"), seq=30 + i)])
    zone = z.zones["site.example"]
    assert [(d.old_serial, d.new_serial) for d in zone.journal] == [(30, 31), (31, 32)]
    assert zone.deltas_since(10) is None
    steps = zone.deltas_since(31)
    assert steps is not None
    assert [str(rr.rdata) for rr in steps[0].added] == ["198.18.0.22"]


def test_one_batch_gives_one_serial_step(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.lease(f"198.18.0.{60 + i}", f"c{i}"), seq=40 + i) for i in range(5)])
    zone = z.zones["site.example"]
    assert len(zone.journal) == 1
    assert len(zone.journal[0].added) == 5


def test_subnet_change_adds_and_removes_reverse_zones(h: Any) -> None:
    z = h.zones(h.FakeView(subnet_list=[h.subnet()], host_list=[h.host("b", "198.19.0.5")]))
    res = h.apply(z, [h.change(h.subnet("198.19.0.0/23", name="lab"), seq=70)])
    assert {"0.19.198.in-addr.arpa", "1.19.198.in-addr.arpa"} <= res.changed
    assert names(z, "0.19.198.in-addr.arpa")["5.0.19.198.in-addr.arpa"] == ["b.site.example."]
    h.apply(z, [h.change(h.subnet("198.19.0.0/23", name="lab"), op=Op.DELETE, seq=71)])
    assert "0.19.198.in-addr.arpa" not in z.zones


def test_find_picks_the_closest_zone(h: Any) -> None:
    z = h.zones()
    zone = z.find("a.b.site.example")
    assert zone is not None
    assert zone.origin == "site.example"
    assert z.find("example") is None
    assert z.find("") is None


def test_removing_a_static_record(h: Any) -> None:
    z = h.zones()
    rec = h.record("x.site.example", "A", "198.18.0.3")
    h.apply(z, [h.change(rec)])
    res = h.apply(z, [h.change(rec, op=Op.DELETE)])
    assert res.changed == {"site.example"}
    assert "x.site.example" not in names(z)


def test_a_deleted_lease_loses_its_records(h: Any) -> None:
    z = h.zones()
    lease = h.lease("198.18.0.50", "laptop")
    h.apply(z, [h.change(lease)])
    h.apply(z, [h.change(lease, op=Op.DELETE)])
    assert "laptop.site.example" not in names(z)


def test_cname_excludes_other_data_at_its_name(h: Any) -> None:
    z = h.zones(h.FakeView(subnet_list=[h.subnet()], host_list=[h.host("web", "198.18.0.10")]))
    h.apply(z, [h.change(h.record("web.site.example", "CNAME", "other.site.example"))])
    node = z.zones["site.example"].rrsets["web.site.example"]
    assert list(node) == [QTYPE.CNAME]


def test_record_names_are_normalised(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.record("Mixed.Site.Example.", "a", "198.18.0.4"))])
    assert names(z)["mixed.site.example"] == ["198.18.0.4"]
    assert z.statistics()["zones"]["site.example"] > 10


@pytest.mark.parametrize(
    ("value", "strings"),
    [
        ('"a \\" b" "c"', [b'a " b', b"c"]),
        ("plain text", [b"plain text"]),
        ("x" * 300, [b"x" * 255, b"x" * 45]),
    ],
)
def test_txt_values(value: str, strings: list[bytes]) -> None:
    assert record_rdata("TXT", value).data == strings


@pytest.mark.parametrize(
    ("rtype", "value"),
    [
        ("TXT", '"a" b'),
        ("TXT", '"unclosed'),
        ("TXT", '"' + "x" * 256 + '"'),
        ("A", "not-an-address"),
        ("MX", "10"),
        ("SRV", "1 2 x target.example"),
        ("HINFO", "x"),
    ],
)
def test_bad_record_values_raise_value_error(rtype: str, value: str) -> None:
    with pytest.raises(ValueError, match=rtype):
        record_rdata(rtype, value)


def test_compact_forms_read_back_as_the_records_they_stand_for(h: Any) -> None:
    z = h.zones()
    h.apply(
        z,
        [
            h.change(h.host("web", "198.18.0.10"), seq=20),
            h.change(h.record("x.site.example", "A", "198.18.0.3", ttl=60), seq=21),
            h.change(h.record("two.site.example", "A", "198.18.0.4"), seq=22),
            h.change(h.record("two.site.example", "TXT", "hello"), seq=23),
        ],
    )
    forward, reverse = z.zones["site.example"], z.zones["0.18.198.in-addr.arpa"]
    # One A (or PTR) with the default TTL: in the shared plain dict by wire name, the address
    # as an int, the target as its wire name.
    assert "web.site.example" not in forward.data
    assert forward.plain[b"\x03web\x04site\x07example\x00"] == int(IPv4Address("198.18.0.10"))
    assert reverse.plain[b"\x0210\x010\x0218\x03198\x07in-addr\x04arpa\x00"] == (
        b"\x03web\x04site\x07example\x00"
    )
    assert forward.plain is reverse.plain is z.plain
    assert forward.keys("web.site.example") == ((QTYPE.A, 300, "198.18.0.10"),)
    assert reverse.keys("10.0.18.198.in-addr.arpa") == ((QTYPE.PTR, 300, "web.site.example"),)
    # One record of another TTL: its key; several: a tuple of keys.
    assert forward.data["x.site.example"] == (QTYPE.A, 60, "198.18.0.3")
    assert forward.keys("x.site.example") == ((QTYPE.A, 60, "198.18.0.3"),)
    assert len(forward.keys("two.site.example")) == 2
    assert set(forward.node("two.site.example") or {}) == {QTYPE.A, QTYPE.TXT}
    assert forward.keys("nothing.site.example") == ()
    assert forward.node("nothing.site.example") is None


# --- zones follow the store through the index: a random sequence of writes ---

T0 = 1_800_000_000.0
LAN = Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"))
LAB = Subnet(name="lab", cidr=IPv4Network("198.18.2.0/23"), domain="lab.site.example")
IPS = ["198.18.0.10", "198.18.0.11", "198.18.0.12", "198.18.2.5", "198.18.3.7"]
MACS = [f"52:54:00:00:00:{i:02x}" for i in range(1, 5)]
NAMES = ["a", "b", "c", "d"]
VALUES = {"A": "198.18.9.9", "TXT": "x", "CNAME": "b.site.example", "MX": "10 a.site.example"}

zone_ops = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(NAMES), st.sampled_from(IPS),
              st.sampled_from(MACS)),
    st.tuples(st.just("update"), st.sampled_from(NAMES), st.sampled_from(["ip", "hostname"]),
              st.sampled_from([*IPS, *NAMES])),
    st.tuples(st.just("remove"), st.sampled_from(NAMES)),
    st.tuples(st.just("lease"), st.sampled_from(IPS), st.sampled_from(MACS),
              st.sampled_from([None, *NAMES]), st.sampled_from(list(LeaseState)),
              st.integers(-50, 50)),
    st.tuples(st.just("record"), st.sampled_from(NAMES), st.sampled_from(sorted(VALUES))),
    st.tuples(st.just("ptr"), st.sampled_from(IPS), st.sampled_from(NAMES)),
    st.tuples(st.just("unrecord"), st.integers(0, 5)),
    st.tuples(st.just("subnets"), st.booleans()),
)  # fmt: skip


async def _write(store: Store, op: tuple[Any, ...]) -> None:
    match op:
        case ("add", name, ip, mac):
            host = Host(id="", ip=IPv4Address(ip), hostname=name, mac=mac)
            await store.add_host(host, actor="t", reason="")
        case ("update", name, field, value):
            await store.update_host(name, {field: value}, actor="t", reason="")
        case ("remove", name):
            await store.remove_host(name, actor="t", reason="")
        case ("lease", ip, mac, hostname, state, ends_in):
            lease = Lease(ip=IPv4Address(ip), mac=mac, hostname=hostname, state=state, start=T0,
                          end=T0 + max(ends_in, 0), subnet="lan")  # fmt: skip
            await store.commit_leases([lease])
        case ("record", name, rtype):
            record = Record(id="", name=f"{name}.site.example", rtype=rtype, value=VALUES[rtype])
            await store.add_record(record, actor="t", reason="")
        case ("ptr", ip, name):
            rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
            record = Record(id="", name=rev, rtype="PTR", value=f"{name}.site.example")
            await store.add_record(record, actor="t", reason="")
        case ("unrecord", position):
            records = await store.records()
            if records:
                await store.remove_record(records[position % len(records)].id, actor="t", reason="")
        case ("subnets", with_lab):
            await store.sync_subnets([LAN, LAB] if with_lab else [LAN], actor="t", reason="")
        case _:
            raise AssertionError(op)


SETTINGS = ZoneSettings(
    domain="site.example", ns_name="ns.site.example", ns_address=IPv4Address("198.18.0.1")
)


def _content(z: Zones) -> dict[str, tuple[object, ...]]:
    return {
        origin: (
            sorted((name, zone.keys(name)) for name in zone.names()),
            sorted(zone.children.items()),
            zone.delegations,
        )
        for origin, zone in z.zones.items()
    }


async def _zones_follow(folder: Path, script: Sequence[tuple[Any, ...]]) -> None:
    async with await Store.open(folder / "ipam.db", clock=lambda: T0, domain="site.example") as s:
        await s.sync_subnets([LAN, LAB], actor="t", reason="")
        index = await IpamIndex.load(s)
        s.subscribe(index.apply)
        z = Zones(SETTINGS, index, serial=index.seq)
        index.subscribe(z.apply)
        for op in script:
            with contextlib.suppress(StoreError):
                await _write(s, op)
        fresh = Zones(SETTINGS, await IpamIndex.load(s), serial=index.seq)
        assert _content(z) == _content(fresh)


@hyp_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(zone_ops, max_size=30))
def test_zones_follow_the_store_through_random_changes(script: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_zones_follow(Path(folder), script))


def test_plain_names_belong_to_the_closest_zone_and_leave_with_theirs(h: Any) -> None:
    # A /16 and a /24 inside it: two reverse zones, the /24's nested in the /16's.
    view = h.FakeView(
        subnet_list=[h.subnet("198.18.0.0/16", "wide"), h.subnet("198.18.5.0/24", "narrow")],
        host_list=[h.host("inner", "198.18.5.7"), h.host("outer", "198.18.9.7")],
    )
    z = h.zones(view)
    wide, narrow = z.zones["18.198.in-addr.arpa"], z.zones["5.18.198.in-addr.arpa"]
    assert sorted(narrow.names()) == ["5.18.198.in-addr.arpa", "7.5.18.198.in-addr.arpa"]
    assert sorted(wide.names()) == ["18.198.in-addr.arpa", "7.9.18.198.in-addr.arpa"]
    assert [str(rr.rname) for rr in wide.all_records() if rr.rtype == QTYPE.PTR] == [
        "7.9.18.198.in-addr.arpa."
    ]
    assert wide.rrsets.keys() == {"18.198.in-addr.arpa", "7.9.18.198.in-addr.arpa"}
    # The narrow subnet goes: its zone and its names with it (none is left in the shared dict).
    result = h.apply(z, [h.change(h.subnet("198.18.5.0/24", "narrow"), h.Op.DELETE)])
    assert result.rebuilt
    assert "5.18.198.in-addr.arpa" not in z.zones
    assert b"\x017\x015\x0218\x03198\x07in-addr\x04arpa\x00" not in z.plain
    assert z.find("7.9.18.198.in-addr.arpa") is wide
    assert wide.keys("7.9.18.198.in-addr.arpa") == ((QTYPE.PTR, 300, "outer.site.example"),)
