"""The IPv6 values, their validation and the IPv6 allocator (pure)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest

from ddi.errors import Invalid
from ddi.ipam.allocator6 import (
    FULL_SCAN,
    MAX_PROBES,
    address_taken,
    choose_address,
    choose_address_int,
    choose_prefix,
    prefix_taken,
)
from ddi.ipam.models import Host, LeaseState
from ddi.ipam.models6 import Lease6, Lease6Kind, PdPool, Pool6, Subnet6
from ddi.ipam.validate6 import check_host_address6, duid_mac, parse_duid, parse_ipv6
from ddi.ipam.views import IpamIndex
from ddi.ipam.views6 import Index6

DUID = "00:03:00:01:52:54:00:00:00:01"
SUBNET = Subnet6(name="lan6", cidr=IPv6Network("2001:db8:10::/64"))


@pytest.mark.parametrize(
    "raw",
    [
        DUID,
        "00030001525400000001",
        "0:3:0:1:52:54:0:0:0:1",
        " 00:03:00:01:52:54:00:00:00:01 ",
        DUID.upper(),
    ],
)
def test_duid_forms_normalise_to_colon_hex(raw: str) -> None:
    assert parse_duid(raw) == DUID


@pytest.mark.parametrize(
    ("raw", "why"),
    [("", "not a DUID"), ("00:01", "too short"), ("0003000", "not a DUID"),
     ("xx:yy:zz", "not a DUID"), ("00" * 131, "longer than 130"), ("0" * 5000, "not a DUID")],
)  # fmt: skip
def test_bad_duids_are_refused(raw: str, why: str) -> None:
    with pytest.raises(Invalid, match=why) as caught:
        parse_duid(raw)
    assert caught.value.field == "duid"


@pytest.mark.parametrize(
    "raw", ["ff02::1", "::", "::1", "fe80::1", "::ffff:198.18.0.1", "198.18.0.1", "x" * 99]
)
def test_addresses_no_host_can_hold_are_refused(raw: str) -> None:
    with pytest.raises(Invalid):
        parse_ipv6(raw)


def test_host_address6_must_be_in_a_subnet6_and_not_its_anycast_address() -> None:
    assert check_host_address6(IPv6Address("2001:db8:10::21"), [SUBNET]) is SUBNET
    for ip, why in (("2001:db8:11::1", "outside every"), ("2001:db8:10::", "anycast")):
        with pytest.raises(Invalid, match=why):
            check_host_address6(IPv6Address(ip), [SUBNET])


def test_images_round_trip_and_an_ipv4_host_keeps_its_old_image() -> None:
    subnet = Subnet6(
        name="s", cidr=IPv6Network("2001:db8::/64"),
        pools=(Pool6(start=IPv6Address("2001:db8::10"), end=IPv6Address("2001:db8::20")),),
        pd_pools=(PdPool(prefix=IPv6Network("2001:db8:100::/48"), delegated_length=60),),
        search=("a.example",), rapid_commit=True,
    )  # fmt: skip
    assert Subnet6.from_image(subnet.to_image()) == subnet
    lease = Lease6(kind=Lease6Kind.PD, prefix=IPv6Network("2001:db8:100::/60"), duid=DUID, iaid=3,
                   start=1.0, end=3.0, preferred_end=2.0, subnet="s")  # fmt: skip
    assert Lease6.from_image(lease.to_image()) == lease
    assert lease.object_id == "pd:2001:db8:100::/60"
    v4 = Host(id="a", ip=IPv4Address("198.18.0.10"), hostname="web1", mac="52:54:00:00:00:01")
    assert "ip6" not in v4.to_image()
    assert "duid" not in v4.to_image()
    dual = Host(id="a", ip=IPv4Address("198.18.0.10"), ip6=IPv6Address("2001:db8::5"),
                hostname="web1", duid=DUID)  # fmt: skip
    assert Host.from_image(dual.to_image()) == dual
    assert dual.dual_stack


def test_an_ia_gets_the_same_address_again_and_a_small_pool_is_used_to_the_end() -> None:
    pool = Pool6(start=IPv6Address("2001:db8::100"), end=IPv6Address("2001:db8::10f"))
    first = choose_address([pool], DUID, 1, lambda ip: False)
    assert first is not None
    assert first in pool
    assert choose_address([pool], DUID, 1, lambda ip: False) == first
    taken: set[IPv6Address] = set()
    for _ in range(pool.size):
        got = choose_address([pool], DUID, 1, taken.__contains__)
        assert got is not None
        assert got in pool
        assert got not in taken
        taken.add(got)
    assert choose_address([pool], DUID, 1, taken.__contains__) is None


def test_a_huge_pool_is_probed_a_bounded_number_of_times() -> None:
    pool = Pool6(start=IPv6Address("2001:db8::"), end=IPv6Address("2001:db8::ffff:ffff:ffff:ffff"))
    asked: list[IPv6Address] = []

    def full(ip: IPv6Address) -> bool:
        asked.append(ip)
        return True

    assert choose_address([pool], DUID, 1, full) is None
    assert len(asked) == MAX_PROBES < FULL_SCAN
    other = choose_address([pool], "00:03:00:01:52:54:00:00:00:02", 1, lambda ip: False)
    assert other is not None
    assert other != choose_address([pool], DUID, 1, lambda ip: False)


def test_prefixes_are_aligned_to_the_delegated_length_and_move_on_when_taken() -> None:
    pool = PdPool(prefix=IPv6Network("2001:db8:100::/52"), delegated_length=56)
    got = choose_prefix([pool], DUID, 1, lambda p: False)
    assert got is not None
    assert got in pool
    assert got.prefixlen == 56
    seen = set()
    for _ in range(pool.size):
        p = choose_prefix([pool], DUID, 1, seen.__contains__)
        assert p is not None
        assert p not in seen
        seen.add(p)
    assert len(seen) == 16
    assert choose_prefix([pool], DUID, 1, seen.__contains__) is None


def test_taken_rules_reservations_other_clients_and_quarantine() -> None:
    ip = IPv6Address("2001:db8:10::1001")
    mine = Lease6(kind=Lease6Kind.NA, prefix=IPv6Network(ip), duid=DUID, iaid=1, start=0.0,
                  end=100.0, preferred_end=50.0, subnet="lan6")  # fmt: skip
    index = IpamIndex(subnets6=[SUBNET], leases6=[mine])
    other = "00:03:00:01:52:54:00:00:00:02"
    assert not address_taken(index, ip, DUID, 10.0)
    assert address_taken(index, ip, other, 10.0)
    assert not address_taken(index, ip, other, 100.0)  # ended
    declined = IpamIndex(leases6=[Lease6(**{**mine.to_image(), "kind": Lease6Kind.NA,
        "prefix": IPv6Network(ip), "state": LeaseState.DECLINED})])  # fmt: skip
    assert address_taken(declined, ip, DUID, 10.0)
    reserved = IpamIndex(hosts=[Host(id="h", ip6=ip, hostname="h", duid=other)])
    assert address_taken(reserved, ip, DUID, 10.0)
    assert not prefix_taken(index, IPv6Network("2001:db8:100::/56"), other, 10.0)


@pytest.mark.parametrize(
    ("duid", "mac"),
    [
        ("00:03:00:01:52:54:00:00:00:01", "52:54:00:00:00:01"),  # DUID-LL, Ethernet
        ("00:01:00:01:2b:3c:4d:5e:52:54:00:00:00:02", "52:54:00:00:00:02"),  # DUID-LLT
        ("00:03:00:06:52:54:00:00:00:01", None),  # not Ethernet
        ("00:02:00:00:00:09:01:02", None),  # DUID-EN
        ("00:03:00:01:52:54:00:00:00", None),  # too short for a MAC
    ],
)
def test_the_mac_a_duid_carries(duid: str, mac: str | None) -> None:
    assert duid_mac(duid) == mac


def test_a_dhcpv6_client_is_matched_by_duid_then_mac() -> None:
    ip6 = IPv6Address("2001:db8:10::21")
    by_duid = Host(id="a", ip6=ip6, hostname="a", duid="00:02:00:00:00:09:01:02")
    by_mac = Host(id="b", ip6=IPv6Address("2001:db8:10::22"), hostname="b", mac="52:54:00:00:00:02")
    v4_only = Host(id="c", ip=IPv4Address("198.18.0.3"), hostname="c", mac="52:54:00:00:00:03")
    index = IpamIndex(hosts=[by_duid, by_mac, v4_only])
    assert index.host6_for("00:02:00:00:00:09:01:02") is by_duid
    assert index.host6_for("00:03:00:01:52:54:00:00:00:02") is by_mac  # the DUID-LL's MAC
    assert index.host6_for("00:02:00:00:00:09:09:09", "52:54:00:00:00:02") is by_mac  # RFC 6939
    assert index.host6_for("00:03:00:01:52:54:00:00:00:03") is None  # no IPv6 address
    assert index.host6_for("00:02:00:00:00:09:09:09") is None


def test_the_integer_search_picks_what_the_address_search_picks() -> None:
    small = Pool6(start=IPv6Address("2001:db8::100"), end=IPv6Address("2001:db8::10f"))
    huge = Pool6(start=IPv6Address("2001:db8:1::"), end=IPv6Address("2001:db8:1::ffff:ffff"))
    for pools in ([small], [huge], [small, huge]):
        taken: set[IPv6Address] = set()
        taken_ints: set[int] = set()
        for n in range(40):
            duid = f"00:03:00:01:52:54:00:00:00:{n % 7:02x}"
            want = choose_address(pools, duid, n, taken.__contains__)
            got = choose_address_int(pools, duid, n, taken_ints.__contains__)
            assert got == (None if want is None else int(want))
            if want is not None:
                taken.add(want)
                taken_ints.add(int(want))
    assert len(taken) > small.size  # the small pool ran out and the huge one took over


def test_the_integer_maps_follow_hosts_and_na_leases() -> None:
    index = Index6()
    ip = IPv6Address("2001:db8:10::1001")
    a = Host(id="a", ip6=ip, hostname="a")
    b = Host(id="b", ip6=ip, hostname="b")
    index.put_host(a)
    assert index.by_ip6 == {int(ip): a}
    index.put_host(b)  # the same address: the last one is indexed
    index.drop_host(a)  # not the indexed one: nothing goes
    assert index.by_ip6 == {int(ip): b}
    index.drop_host(b)
    assert index.by_ip6 == {}

    def lease(kind: Lease6Kind, prefix: str, **fields: object) -> Lease6:
        values: dict[str, object] = {"start": 0.0, "end": 100.0, "preferred_end": 50.0}
        values |= fields
        return Lease6(kind=kind, prefix=IPv6Network(prefix), duid=DUID, iaid=1, subnet="lan6",
                      **values)  # type: ignore[arg-type]  # fmt: skip

    na = lease(Lease6Kind.NA, "2001:db8:10::1001/128")
    pd = lease(Lease6Kind.PD, "2001:db8:100::/56")
    index.put_lease(na)
    index.put_lease(pd)
    assert index.na_at == {int(ip): na}
    released = lease(Lease6Kind.NA, "2001:db8:10::1001/128", state=LeaseState.RELEASED)
    assert index.put_lease(released) == na
    assert index.na_at == {int(ip): released}
    index.drop_lease((Lease6Kind.NA, released.prefix))
    assert index.na_at == {}
    view = IpamIndex(subnets6=[SUBNET], leases6=[na, pd], hosts=[a])
    assert view.na_lease_at(int(ip)) is na
    assert view.host_at6(int(ip)) is a
    assert view.na_lease_at(int(ip) + 1) is None
    assert view.host_at6(int(ip) + 1) is None
