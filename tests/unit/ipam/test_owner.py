"""Who owns a DNS name: one rule for DHCP hostnames, the zones and the store's writes."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from ddi.dns.zones import Zones, ZoneSettings
from ddi.ipam.models import Host, Lease, LeaseState, Record, Subnet
from ddi.ipam.owner import (
    ADDRESS_TYPES,
    lease_collides,
    lease_publishes,
    name_owner,
    write_conflict,
)
from ddi.ipam.views import IpamIndex

WEB = Host(id="h1", ip=IPv4Address("198.18.0.10"), hostname="web", mac="52:54:00:00:00:01")
OTHER = Host(id="h2", ip=IPv4Address("198.18.0.11"), hostname="db", mac="52:54:00:00:00:02")
TXT = Record(id="r1", name="web.site.example", rtype="TXT", value="hello")
A = Record(id="r2", name="web.site.example", rtype="A", value="198.18.0.9")
LEASE_IP = IPv4Address("198.18.0.50")


def test_a_reservation_comes_before_a_record_and_both_before_nothing() -> None:
    assert name_owner(hosts=[WEB], records=[TXT]) is WEB
    assert name_owner(records=[TXT, A]) is TXT
    assert name_owner() is None


def test_a_lease_publishes_only_a_free_name_at_a_free_address() -> None:
    assert lease_publishes(None, None)
    assert not lease_publishes(WEB, None)
    assert not lease_publishes(TXT, None)
    assert not lease_publishes(None, OTHER)


@pytest.mark.parametrize(
    ("ip", "owner", "reserved", "collides"),
    [
        (LEASE_IP, None, None, False),  # publishes
        (LEASE_IP, WEB, None, True),  # a reservation of another address owns the name
        (LEASE_IP, A, None, True),  # a static record owns the name
        (LEASE_IP, TXT, None, True),  # any type of record does
        (LEASE_IP, None, OTHER, True),  # its address is another name's reservation
        (WEB.ip, WEB, WEB, False),  # the reserved client's own lease: no record, no collision
    ],
)
def test_lease_collisions(
    ip: IPv4Address, owner: Host | Record | None, reserved: Host | None, collides: bool
) -> None:
    assert lease_collides(ip, owner, reserved) is collides


def test_a_reservation_and_an_address_record_never_share_a_name() -> None:
    assert write_conflict(WEB, records=[TXT, A]) is A
    assert write_conflict(WEB, records=[TXT]) is None
    assert write_conflict(A, hosts=[WEB]) is WEB
    assert write_conflict(TXT, hosts=[WEB]) is None
    lower = Record(id="r3", name="web.site.example", rtype="cname", value="x.site.example")
    assert write_conflict(lower, hosts=[WEB]) is WEB
    assert {"A", "AAAA", "CNAME"} == ADDRESS_TYPES


def test_dhcp_and_zones_weigh_a_record_under_a_subnet_domain_differently() -> None:
    """The one case where the callers ask about different names.

    The DHCP server refuses a client's label when a record sits at that label under the site
    domain or under any subnet's domain (the client is told the subnet's domain). The zones
    publish a bound lease at ``<label>.<site domain>`` only, and a record under a subnet's
    domain is not at that name: such a lease (named before the record came) keeps its A and
    PTR. Both follow the README ("never takes a name that a reservation or a static record
    owns"), each for the name it hands out; the rule is one, the names asked about differ.
    """
    lab = Subnet(name="lab", cidr=IPv4Network("198.18.0.0/24"), domain="lab.site.example")
    printer = Record(id="r9", name="printer.lab.site.example", rtype="A", value="198.18.0.9")
    lease = Lease(
        ip=LEASE_IP,
        mac="52:54:00:00:01:01",
        hostname="printer",
        state=LeaseState.BOUND,
        start=1.0,
        end=2.0,
        subnet="lab",
    )
    index = IpamIndex(subnets=[lab], leases=[lease], records=[printer], domain="site.example")
    assert index.name_owned("printer")  # DHCP: the label is taken
    zones = Zones(ZoneSettings(domain="site.example", ns_name="ns.site.example"), index, serial=1)
    site = zones.zones["site.example"]
    assert site.keys("printer.site.example") == ((1, 300, str(LEASE_IP)),)
    assert site.keys("printer.lab.site.example") == ((1, 300, "198.18.0.9"),)
    assert zones.collisions == 0
