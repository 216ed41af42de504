"""AAAA and ip6.arpa from the IPAM: reservations' IPv6 addresses, DHCPv6 leases with names,
nibble-boundary reverse zones per IPv6 subnet, and the zones following the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest
import pytest_asyncio
from dnslib import QTYPE

from ddi.dns.zone6 import ip_of_reverse6, reverse_name6, reverse_network6, reverse_origin6
from ddi.dns.zones import Zones, ZoneSettings
from ddi.ipam.models import Host, Subnet
from ddi.ipam.models6 import Lease6, Lease6Kind, Subnet6
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex

T0 = 1_800_000_000.0
DOMAIN = "site.example"
LAN = Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"))
LAN6 = Subnet6(name="lan6", cidr=IPv6Network("2001:db8:10::/64"))
WIDE6 = Subnet6(name="wide6", cidr=IPv6Network("2001:db8:2000::/62"))
SETTINGS = ZoneSettings(domain=DOMAIN, ns_name=f"ns.{DOMAIN}", ns_address=IPv4Address("198.18.0.1"))
ORIGIN64 = "0.0.0.0.0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
DUID = "00:03:00:01:52:54:00:00:00:77"


def test_reverse_names_and_nibble_zones() -> None:
    ip = IPv6Address("2001:db8:10::21")
    name = reverse_name6(ip)
    assert name.endswith(ORIGIN64)
    assert ip_of_reverse6(name) == ip
    for bad in (
        ORIGIN64,
        "x" + name[1:],
        name.replace(".ip6.arpa", ".in-addr.arpa"),
        "10." + name[2:],
    ):
        assert ip_of_reverse6(bad) is None
    assert reverse_origin6(reverse_network6(LAN6.cidr)) == ORIGIN64
    # A /62 is served from the /60 zone holding it; a /48 is its own zone.
    assert reverse_network6(WIDE6.cidr) == IPv6Network("2001:db8:2000::/60")
    assert reverse_origin6(IPv6Network("2001:db8::/48")) == "0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"


@pytest_asyncio.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[Store, Zones]]:
    async with await Store.open(tmp_path / "ipam.db", clock=lambda: T0, domain=DOMAIN) as store:
        await store.sync_subnets([LAN], actor="t", reason="")
        await store.sync_subnets6([LAN6], actor="t", reason="")
        index = await IpamIndex.load(store)
        store.subscribe(index.apply)
        zones = Zones(SETTINGS, index, serial=index.seq)
        index.subscribe(zones.apply)
        yield store, zones


def rdata(zones: Zones, name: str, rtype: int) -> list[str]:
    zone = zones.find(name)
    assert zone is not None
    node = zone.node(name) or {}
    return sorted(str(rr.rdata) for rr in node.get(rtype, []))


def na(ip: str, hostname: str | None, duid: str = DUID) -> Lease6:
    return Lease6(kind=Lease6Kind.NA, prefix=IPv6Network(f"{ip}/128"), duid=duid, iaid=1,
                  hostname=hostname, start=T0, end=T0 + 7200, preferred_end=T0 + 3600,
                  subnet="lan6")  # fmt: skip


@pytest.mark.asyncio
async def test_a_dual_stack_host_gets_a_aaaa_and_both_ptrs(site: tuple[Store, Zones]) -> None:
    store, zones = site
    assert ORIGIN64 in zones.zones
    serial = zones.zones[ORIGIN64].serial
    host = Host(id="", ip=IPv4Address("198.18.0.10"), ip6=IPv6Address("2001:db8:10::21"),
                hostname="web1", mac="52:54:00:00:00:01")  # fmt: skip
    await store.add_host(host, actor="t", reason="")
    fqdn = f"web1.{DOMAIN}"
    assert rdata(zones, fqdn, QTYPE.A) == ["198.18.0.10"]
    assert rdata(zones, fqdn, QTYPE.AAAA) == ["2001:db8:10::21"]
    assert rdata(zones, "10.0.18.198.in-addr.arpa", QTYPE.PTR) == [f"{fqdn}."]
    ptr6 = reverse_name6(IPv6Address("2001:db8:10::21"))
    assert rdata(zones, ptr6, QTYPE.PTR) == [f"{fqdn}."]
    zone6 = zones.zones[ORIGIN64]
    assert zone6.serial > serial
    [delta] = zone6.deltas_since(serial) or []
    assert [str(rr.rdata) for rr in delta.added] == [f"{fqdn}."]
    # The address moves: the old PTR goes in one IXFR step, the new one comes.
    serial = zone6.serial
    await store.update_host("web1", {"ip6": "2001:db8:10::22"}, actor="t", reason="")
    assert rdata(zones, ptr6, QTYPE.PTR) == []
    [delta] = zone6.deltas_since(serial) or []
    assert [str(rr.rname).rstrip(".") for rr in delta.removed] == [ptr6]
    assert len(delta.added) == 1
    assert rdata(zones, fqdn, QTYPE.AAAA) == ["2001:db8:10::22"]


@pytest.mark.asyncio
async def test_named_na_leases_publish_and_follow_the_ownership_rules(
    site: tuple[Store, Zones],
) -> None:
    store, zones = site
    await store.add_host(
        Host(id="", ip6=IPv6Address("2001:db8:10::30"), hostname="owned", duid=DUID),
        actor="t", reason="",
    )  # fmt: skip
    before = zones.collisions
    await store.commit_leases6(
        [
            na("2001:db8:10::1001", "laptop", duid="00:03:00:01:52:54:00:00:00:01"),
            na("2001:db8:10::1002", "owned", duid="00:03:00:01:52:54:00:00:00:02"),
            na("2001:db8:10::30", "owned"),  # the reservation's own address: no collision
            Lease6(kind=Lease6Kind.PD, prefix=IPv6Network("2001:db8:100::/56"), duid=DUID,
                   iaid=9, hostname="router", start=T0, end=T0 + 60, preferred_end=T0 + 30,
                   subnet="lan6"),
        ]
    )  # fmt: skip
    assert rdata(zones, f"laptop.{DOMAIN}", QTYPE.AAAA) == ["2001:db8:10::1001"]
    laptop_ptr = reverse_name6(IPv6Address("2001:db8:10::1001"))
    assert rdata(zones, laptop_ptr, QTYPE.PTR) == [f"laptop.{DOMAIN}."]
    # The name is a reservation's: the other client's lease gets neither record.
    assert rdata(zones, f"owned.{DOMAIN}", QTYPE.AAAA) == ["2001:db8:10::30"]
    assert rdata(zones, reverse_name6(IPv6Address("2001:db8:10::1002")), QTYPE.PTR) == []
    assert zones.collisions == before + 1
    assert rdata(zones, f"router.{DOMAIN}", QTYPE.AAAA) == []  # a delegated prefix has no name
    await store.release_lease6(
        Lease6Kind.NA, IPv6Network("2001:db8:10::1001/128"), actor="t", reason=""
    )
    assert rdata(zones, f"laptop.{DOMAIN}", QTYPE.AAAA) == []
    assert rdata(zones, laptop_ptr, QTYPE.PTR) == []
    fresh = Zones(SETTINGS, await IpamIndex.load(store), serial=0)
    assert {o: sorted((n, z.keys(n)) for n in z.names()) for o, z in fresh.zones.items()} == {
        o: sorted((n, z.keys(n)) for n in z.names()) for o, z in zones.zones.items()
    }


@pytest.mark.asyncio
async def test_reverse_zones_follow_the_ipv6_subnets(site: tuple[Store, Zones]) -> None:
    store, zones = site
    await store.sync_subnets6([LAN6, WIDE6], actor="t", reason="")
    origin60 = reverse_origin6(IPv6Network("2001:db8:2000::/60"))
    assert origin60 in zones.zones
    await store.add_host(
        Host(id="", ip6=IPv6Address("2001:db8:2000::5"), hostname="far", duid=DUID),
        actor="t", reason="",
    )  # fmt: skip
    assert rdata(zones, reverse_name6(IPv6Address("2001:db8:2000::5")), QTYPE.PTR) == [
        f"far.{DOMAIN}."
    ]
    await store.sync_subnets6([WIDE6], actor="t", reason="")
    assert ORIGIN64 not in zones.zones
    assert origin60 in zones.zones
