"""The RA encoder against scapy's ICMPv6ND_RA (an independent encoder), option by option, and
the Router Solicitation checks of RFC 4861 §6.1.1."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDNSSL,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)

from ddi.ra.message import (
    ALL_NODES,
    NdFormatError,
    PrefixInfo,
    RouterAdvert,
    decode_solicit,
    encode_advert,
    encode_domain,
)

SOURCE = IPv6Address("fe80::5054:ff:fe00:1")
MAC = bytes.fromhex("525400000001")
PREFIX = IPv6Network("2001:db8:10::/64")


def scapy_bytes(*layers: object) -> bytes:
    """The ICMPv6 part of scapy's packet, checksum computed by scapy over the pseudo-header."""
    packet = IPv6(src=str(SOURCE), dst=str(ALL_NODES), hlim=255)
    for layer in layers:
        packet = packet / layer
    built = IPv6(bytes(packet))
    return bytes(built.payload)


# scapy's RA defaults to router preference 01 ("high", RFC 4191 §2.2); ours is 00 (medium):
# every scapy RA below sets prf=0.


def ours(advert: RouterAdvert) -> bytes:
    return encode_advert(advert, source=SOURCE, dest=ALL_NODES)


def test_header_with_flags_and_timers() -> None:
    advert = RouterAdvert(
        cur_hop_limit=64,
        managed=True,
        other=True,
        router_lifetime=1800,
        reachable_time=30000,
        retrans_timer=1000,
    )
    expected = scapy_bytes(
        ICMPv6ND_RA(
            prf=0, chlim=64, M=1, O=1, routerlifetime=1800, reachabletime=30000, retranstimer=1000
        )
    )
    assert ours(advert) == expected


@pytest.mark.parametrize(("managed", "other"), [(False, False), (True, False), (False, True)])
def test_flag_combinations(managed: bool, other: bool) -> None:
    advert = RouterAdvert(managed=managed, other=other)
    expected = scapy_bytes(
        ICMPv6ND_RA(prf=0, chlim=64, M=int(managed), O=int(other), routerlifetime=0)
    )
    assert ours(advert) == expected


def test_source_link_layer_address() -> None:
    advert = RouterAdvert(source_mac=MAC)
    expected = scapy_bytes(
        ICMPv6ND_RA(prf=0, chlim=64, routerlifetime=0),
        ICMPv6NDOptSrcLLAddr(lladdr="52:54:00:00:00:01"),
    )
    assert ours(advert) == expected


def test_mtu() -> None:
    advert = RouterAdvert(mtu=1500)
    expected = scapy_bytes(ICMPv6ND_RA(prf=0, chlim=64, routerlifetime=0), ICMPv6NDOptMTU(mtu=1500))
    assert ours(advert) == expected


@pytest.mark.parametrize(("on_link", "autonomous"), [(True, True), (True, False), (False, False)])
def test_prefix_information(on_link: bool, autonomous: bool) -> None:
    info = PrefixInfo(
        prefix=PREFIX,
        on_link=on_link,
        autonomous=autonomous,
        valid_lifetime=86400,
        preferred_lifetime=14400,
    )
    expected = scapy_bytes(
        ICMPv6ND_RA(prf=0, chlim=64, routerlifetime=0),
        ICMPv6NDOptPrefixInfo(
            prefixlen=64,
            L=int(on_link),
            A=int(autonomous),
            validlifetime=86400,
            preferredlifetime=14400,
            prefix=str(PREFIX.network_address),
        ),
    )
    assert ours(RouterAdvert(prefixes=(info,))) == expected


def test_rdnss() -> None:
    servers = (IPv6Address("2001:db8:10::1"), IPv6Address("2001:db8:10::2"))
    advert = RouterAdvert(rdnss=servers, rdnss_lifetime=1800)
    expected = scapy_bytes(
        ICMPv6ND_RA(prf=0, chlim=64, routerlifetime=0),
        ICMPv6NDOptRDNSS(lifetime=1800, dns=[str(s) for s in servers]),
    )
    assert ours(advert) == expected


@pytest.mark.parametrize(
    "names", [("lab.example",), ("a.lab.example", "lab.example"), ("x",), ("site-1.corp.example",)]
)
def test_dnssl_padding(names: tuple[str, ...]) -> None:
    advert = RouterAdvert(dnssl=names, dnssl_lifetime=1200)
    expected = scapy_bytes(
        ICMPv6ND_RA(prf=0, chlim=64, routerlifetime=0),
        ICMPv6NDOptDNSSL(lifetime=1200, searchlist=list(names)),
    )
    assert ours(advert) == expected
    assert len(ours(advert)) % 8 == 0


def test_every_option_together() -> None:
    servers = (IPv6Address("2001:db8:10::1"),)
    info = PrefixInfo(prefix=PREFIX, autonomous=True)
    advert = RouterAdvert(
        managed=True,
        other=True,
        router_lifetime=0,
        source_mac=MAC,
        mtu=1480,
        prefixes=(info,),
        rdnss=servers,
        rdnss_lifetime=1800,
        dnssl=("lab.example",),
        dnssl_lifetime=1800,
    )
    expected = scapy_bytes(
        ICMPv6ND_RA(prf=0, chlim=64, M=1, O=1, routerlifetime=0),
        ICMPv6NDOptSrcLLAddr(lladdr="52:54:00:00:00:01"),
        ICMPv6NDOptMTU(mtu=1480),
        ICMPv6NDOptPrefixInfo(
            prefixlen=64,
            L=1,
            A=1,
            validlifetime=2_592_000,
            preferredlifetime=604_800,
            prefix=str(PREFIX.network_address),
        ),
        ICMPv6NDOptRDNSS(lifetime=1800, dns=["2001:db8:10::1"]),
        ICMPv6NDOptDNSSL(lifetime=1800, searchlist=["lab.example"]),
    )
    assert ours(advert) == expected


def test_without_addresses_the_checksum_is_left_to_the_kernel() -> None:
    raw = encode_advert(RouterAdvert(managed=True))
    assert raw[2:4] == b"\0\0"
    assert raw[:2] == b"\x86\x00"


def test_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="router lifetime"):
        encode_advert(RouterAdvert(router_lifetime=9001))
    with pytest.raises(ValueError, match="label"):
        encode_domain("a..b")
    many = tuple(IPv6Address(f"2001:db8::{i:x}") for i in range(1, 128))
    with pytest.raises(ValueError, match="exceeds"):
        encode_advert(RouterAdvert(rdnss=many, rdnss_lifetime=1))


def rs_bytes(*options: object, src: str = "fe80::2") -> bytes:
    packet = IPv6(src=src, dst="ff02::2", hlim=255) / ICMPv6ND_RS()
    for option in options:
        packet = packet / option
    return bytes(IPv6(bytes(packet)).payload)


def test_solicitation_with_its_link_layer_address() -> None:
    raw = rs_bytes(ICMPv6NDOptSrcLLAddr(lladdr="52:54:00:00:00:10"))
    solicit = decode_solicit(raw, hop_limit=255, unspecified_source=False)
    assert solicit.source_mac == bytes.fromhex("525400000010")
    assert decode_solicit(rs_bytes(), hop_limit=255, unspecified_source=True).source_mac is None


@pytest.mark.parametrize(
    ("raw", "hop_limit", "unspecified", "reason"),
    [
        (rs_bytes(), 254, False, "hop limit"),
        (rs_bytes(), None, False, "hop limit"),
        (rs_bytes()[:7], 255, False, "shorter than 8"),
        (b"\x86\x00" + rs_bytes()[2:], 255, False, "not a router solicitation"),
        (b"\x85\x01" + rs_bytes()[2:], 255, False, "not a router solicitation"),
        (rs_bytes() + b"\x01\x00" + bytes(6), 255, False, "length 0"),
        (rs_bytes() + b"\x01\x02" + bytes(6), 255, False, "past the message"),
        (rs_bytes() + b"\x01", 255, False, "truncated"),
        (
            rs_bytes(ICMPv6NDOptSrcLLAddr(lladdr="52:54:00:00:00:10")),
            255,
            True,
            "unspecified",
        ),
    ],
)
def test_solicitation_checks(
    raw: bytes, hop_limit: int | None, unspecified: bool, reason: str
) -> None:
    with pytest.raises(NdFormatError, match=reason):
        decode_solicit(raw, hop_limit=hop_limit, unspecified_source=unspecified)
