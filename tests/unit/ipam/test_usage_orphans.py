"""Pool usage (``ddi.ipam.usage``), reload orphans (``ddi.ipam.orphans``) and MAC vendors."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from ddi.ipam.models import Host, Lease, LeaseState, Pool, Subnet
from ddi.ipam.models6 import Lease6, Lease6Kind, PdPool, Subnet6
from ddi.ipam.orphans import MAX_NAMED, orphaned, summary
from ddi.ipam.usage import subnet_usage
from ddi.ipam.vendor import LOCAL, mac_vendor, vendor_label

NOW = 1_800_000_000.0
A = IPv4Address

LAN = Subnet(
    name="lan",
    cidr=IPv4Network("198.18.0.0/24"),
    pools=(
        Pool(start=A("198.18.0.100"), end=A("198.18.0.109")),
        Pool(start=A("198.18.0.200"), end=A("198.18.0.203")),
    ),
)


def host(ip: str, name: str) -> Host:
    return Host(id=name, ip=A(ip), hostname=name, mac="52:54:00:00:00:01")


def lease(ip: str, state: LeaseState = LeaseState.BOUND, end: float = NOW + 60) -> Lease:
    return Lease(ip=A(ip), mac="52:54:00:00:00:02", state=state, start=NOW - 60, end=end,
                 subnet="lan")  # fmt: skip


def test_each_address_counts_once_reserved_then_declined_then_used() -> None:
    hosts = [host("198.18.0.100", "a"), host("198.18.0.10", "outside-pools")]
    leases = [
        lease("198.18.0.100"),  # the reservation's own lease: reserved, not used
        lease("198.18.0.101"),
        lease("198.18.0.102"),
        lease("198.18.0.103", end=NOW - 1),  # ended: free
        lease("198.18.0.104", LeaseState.RELEASED),
        lease("198.18.0.105", LeaseState.DECLINED),
        lease("198.18.0.201"),
        lease("198.18.1.5"),  # another subnet
    ]
    usage = subnet_usage(LAN, hosts, leases, NOW)
    first, second = usage.pools
    assert (first.size, first.reserved, first.declined, first.used, first.free) == (10, 1, 1, 2, 6)
    assert first.utilisation == 0.4
    assert (second.size, second.used, second.free) == (4, 1, 3)
    total = usage.total()
    assert (total.size, total.used, total.free) == (14, 3, 9)
    assert usage.to_image()["pools"][0]["utilisation"] == 0.4


def test_orphans_are_hosts_outside_every_subnet_and_active_leases_outside_theirs() -> None:
    shrunk = Subnet(name="lan", cidr=IPv4Network("198.18.0.0/25"))
    hosts = [host("198.18.0.10", "kept"), host("198.18.0.200", "web1")]
    leases = [
        lease("198.18.0.20"),
        lease("198.18.0.150"),
        lease("198.18.0.151", end=NOW - 1),  # ended: nothing to orphan
        lease("198.18.0.152", LeaseState.RELEASED),
    ]
    found = orphaned([shrunk], hosts, leases, NOW)
    assert found == ["lease 198.18.0.150 of 52:54:00:00:00:02", "host web1 198.18.0.200"]
    assert orphaned([LAN], hosts, leases, NOW) == []
    # The subnet removed: every reservation and active lease in it.
    assert len(orphaned([], hosts, leases, NOW)) == 4


LAN6 = Subnet6(
    name="lan6",
    cidr=IPv6Network("2001:db8:10::/64"),
    pd_pools=(PdPool(prefix=IPv6Network("2001:db8:100::/40"), delegated_length=56),),
)


def lease6(kind: Lease6Kind, prefix: str, end: float = NOW + 60) -> Lease6:
    return Lease6(kind=kind, prefix=IPv6Network(prefix), duid="00:03:00:01:52:54:00:00:00:03",
                  iaid=1, start=NOW - 60, end=end, preferred_end=end, subnet="lan6")  # fmt: skip


def test_ipv6_orphans_hosts_addresses_and_delegated_prefixes() -> None:
    dual = Host(id="d", ip=A("198.18.0.10"), ip6=IPv6Address("2001:db8:10::10"), hostname="dual")
    v6only = Host(id="v", ip6=IPv6Address("2001:db8:10::11"), hostname="v6only")
    leases6 = [
        lease6(Lease6Kind.NA, "2001:db8:10::1000/128"),
        lease6(Lease6Kind.PD, "2001:db8:100:100::/56"),
        lease6(Lease6Kind.NA, "2001:db8:10::1001/128", end=NOW - 1),  # ended
    ]
    hosts = [dual, v6only]
    assert orphaned([LAN], hosts, [], NOW, subnets6=[LAN6], leases6=leases6) == []
    # lan6 removed: both IPv6 addresses of the hosts and both active leases are named, after
    # the IPv4 ones (none: the dual-stack host keeps its IPv4 subnet).
    assert orphaned([LAN], hosts, [], NOW, subnets6=[], leases6=leases6) == [
        "host dual 2001:db8:10::10",
        "host v6only 2001:db8:10::11",
        "lease6 na 2001:db8:10::1000/128 of 00:03:00:01:52:54:00:00:00:03",
        "lease6 pd 2001:db8:100:100::/56 of 00:03:00:01:52:54:00:00:00:03",
    ]
    # Its PD pool shrunk: the delegated prefix outside it is orphaned, the address is not.
    shrunk = Subnet6(
        name="lan6",
        cidr=IPv6Network("2001:db8:10::/64"),
        pd_pools=(PdPool(prefix=IPv6Network("2001:db8:200::/48"), delegated_length=56),),
    )
    assert orphaned([LAN], hosts, [], NOW, subnets6=[shrunk], leases6=leases6) == [
        "lease6 pd 2001:db8:100:100::/56 of 00:03:00:01:52:54:00:00:00:03"
    ]


def test_a_long_orphan_list_is_named_then_counted() -> None:
    many = [f"host h{i} 198.18.0.{i}" for i in range(MAX_NAMED + 5)]
    text = summary(many)
    assert text.endswith(" and 5 more")
    assert "h0 " in text
    assert f"h{MAX_NAMED} " not in text


def test_mac_vendor_from_the_ieee_registry_and_none_for_local_or_unknown() -> None:
    assert mac_vendor("00:1b:21:00:00:01") == "Intel Corporate"
    assert mac_vendor("00-1B-21-00-00-01") == "Intel Corporate"
    assert mac_vendor("52:54:00:12:34:56") is None  # locally administered (QEMU)
    assert vendor_label("52:54:00:12:34:56") == LOCAL
    assert mac_vendor("01:00:5e:00:00:01") is None  # a group address
    assert mac_vendor("not a mac") is None
    assert vendor_label(None) is None
