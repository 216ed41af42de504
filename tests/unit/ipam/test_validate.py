"""Validation and normalisation: the forms accepted, and each refusal naming its value."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from ddi.errors import Invalid
from ddi.ipam import validate as v
from ddi.ipam.models import Subnet


@pytest.mark.parametrize(
    "raw",
    [
        "52:54:00:00:00:01",
        "52-54-00-00-00-01",
        "5254.0000.0001",
        "525400000001",
        "52:54:00:00:00:01".upper(),
        " 52:54:00:00:00:01 ",
    ],
)
def test_parse_mac_accepts_common_forms(raw: str) -> None:
    assert v.parse_mac(raw) == "52:54:00:00:00:01"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "52:54:00:00:00",
        "52:54:00:00:00:01:02",
        "52:54-00:00:00:01",
        "52:54:00:00:00:0g",
        "5254.0000.001",
        "00:00:00:00:00:00",
        "ff:ff:ff:ff:ff:ff",
        "01:00:5e:00:00:01",
    ],
)
def test_parse_mac_refuses_bad_values_naming_them(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        v.parse_mac(raw)
    assert caught.value.field == "mac"
    assert caught.value.value == raw
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("01:52:54:00:00:00:01", "01:52:54:00:00:00:01"),
        ("01-52-54-00-00-00-01", "01:52:54:00:00:00:01"),
        ("1:52:54:0:0:0:1", "01:52:54:00:00:00:01"),
        ("0x0152540000", "01:52:54:00:00"),
        ("AB:CD", "ab:cd"),
        ("web1", "77:65:62:31"),
        ('"web1"', "77:65:62:31"),
        ("'cafe'", "63:61:66:65"),
    ],
)
def test_parse_client_id_hex_or_text(raw: str, expected: str) -> None:
    assert v.parse_client_id(raw) == expected
    assert v.parse_circuit_id(raw) == expected


def test_bare_hex_is_bytes_for_a_client_id_and_text_for_a_circuit_id() -> None:
    # Kea's and dnsmasq's exports write a client-id as bare hex.
    assert v.parse_client_id("0152540aabbcc1") == "01:52:54:0a:ab:bc:c1"
    assert v.parse_client_id("cafe") == "ca:fe"
    assert v.parse_client_id('"cafe"') == "63:61:66:65"
    assert v.parse_circuit_id("cafe") == "63:61:66:65"


@pytest.mark.parametrize("raw", ["", "   ", "a\tb", "x" * 256])
def test_parse_client_id_refusals(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        v.parse_client_id(raw)
    assert caught.value.field == "client_id"


def test_format_hex() -> None:
    assert v.format_hex(b"\x01RT\x00") == "01:52:54:00"


@pytest.mark.parametrize(
    ("raw", "expected"), [("web1", "web1"), ("WEB-1", "web-1"), ("a", "a"), ("web1.", "web1")]
)
def test_parse_hostname_accepts_labels(raw: str, expected: str) -> None:
    assert v.parse_hostname(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "-web", "web-", "web_1", "web 1", "web1.site.example", "a" * 64, "wéb"]
)
def test_parse_hostname_refusals(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        v.parse_hostname(raw)
    assert caught.value.field == "hostname"
    assert caught.value.value == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Johns-Laptop", "johns-laptop"),
        ("John's Laptop", "john-s-laptop"),
        (b"android_1234\x00", "android-1234"),
        ("host.corp.example", "host"),
        ("--x--", "x"),
        ("", None),
        ("___", None),
        (b"\xff\xfe", None),
        ("a" * 80, "a" * 63),
        ("a" * 62 + "-b", "a" * 62),
    ],
)
def test_sanitize_hostname(raw: str | bytes, expected: str | None) -> None:
    got = v.sanitize_hostname(raw)
    assert got == expected
    if got is not None:
        assert v.parse_hostname(got) == got


def test_parse_dns_name() -> None:
    assert v.parse_dns_name("WWW.Site.Example.") == "www.site.example"
    assert v.parse_dns_name("_sip._tcp.site.example") == "_sip._tcp.site.example"
    assert v.parse_dns_name("*.site.example") == "*.site.example"
    for bad in ("", ".", "a..b", "a.*.b", "-a.b", "a" * 64 + ".b", ("a" * 60 + ".") * 5):
        with pytest.raises(Invalid):
            v.parse_dns_name(bad)


LAN = Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"))
LAB = Subnet(name="lab", cidr=IPv4Network("198.18.0.128/25"))
P2P = Subnet(name="p2p", cidr=IPv4Network("198.18.1.0/31"))


def test_subnet_for_picks_most_specific() -> None:
    assert v.subnet_for(IPv4Address("198.18.0.10"), [LAN, LAB]) is LAN
    assert v.subnet_for(IPv4Address("198.18.0.200"), [LAN, LAB]) is LAB
    assert v.subnet_for(IPv4Address("198.18.0.200"), [LAB, LAN]) is LAB
    assert v.subnet_for(IPv4Address("198.19.0.1"), [LAN, LAB]) is None


def test_host_address_problem() -> None:
    assert v.host_address_problem(IPv4Address("198.18.0.10"), LAN) is None
    assert "network address" in str(v.host_address_problem(IPv4Address("198.18.0.0"), LAN))
    assert "broadcast" in str(v.host_address_problem(IPv4Address("198.18.0.255"), LAN))
    assert "outside" in str(v.host_address_problem(IPv4Address("198.18.2.1"), LAN))
    # RFC 3021: both addresses of a /31 are usable
    assert v.host_address_problem(IPv4Address("198.18.1.0"), P2P) is None
    assert v.host_address_problem(IPv4Address("198.18.1.1"), P2P) is None


def test_parse_ipv4() -> None:
    assert v.parse_ipv4(" 198.18.0.1 ") == IPv4Address("198.18.0.1")
    with pytest.raises(Invalid, match="not an IPv4"):
        v.parse_ipv4("198.18.0.256")


@pytest.mark.parametrize(
    ("rtype", "raw", "expected"),
    [
        ("A", "198.18.0.5", "198.18.0.5"),
        ("AAAA", "2001:DB8:0:0::1", "2001:db8::1"),
        ("CNAME", "Web1.Site.Example.", "web1.site.example"),
        ("NS", "ns1.site.example", "ns1.site.example"),
        ("PTR", "web1.site.example", "web1.site.example"),
        ("MX", "10  Mail.Site.Example.", "10 mail.site.example"),
        ("SRV", "0 5 5060 sip.site.example", "0 5 5060 sip.site.example"),
        ("SRV", "0 0 0 .", "0 0 0 ."),
        ("TXT", "v=spf1 -all", "v=spf1 -all"),
    ],
)
def test_parse_record_value(rtype: str, raw: str, expected: str) -> None:
    assert v.parse_record_value(rtype, raw) == expected


@pytest.mark.parametrize(
    ("rtype", "raw"),
    [
        ("A", "2001:db8::1"),
        ("A", "web1"),
        ("AAAA", "198.18.0.1"),
        ("CNAME", "bad..name"),
        ("MX", "mail.site.example"),
        ("MX", "70000 mail.site.example"),
        ("MX", "-1 mail.site.example"),
        ("SRV", "0 5 sip.site.example"),
        ("SRV", "0 5 x sip.site.example"),
        ("TXT", ""),
        ("TXT", "a\nb"),
    ],
)
def test_parse_record_value_refusals(rtype: str, raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        v.parse_record_value(rtype, raw)
    assert caught.value.value == raw


def test_parse_rtype_and_ttl() -> None:
    assert v.parse_rtype("mx") == "MX"
    with pytest.raises(Invalid):
        v.parse_rtype("HINFO")
    assert v.parse_ttl(None) is None
    assert v.parse_ttl(300) == 300
    for bad in (-1, 2**31, True):
        with pytest.raises(Invalid):
            v.parse_ttl(bad)


def test_reverse_name() -> None:
    assert v.reverse_name(IPv4Address("198.18.0.10")) == "10.0.18.198.in-addr.arpa"


def test_check_host_address() -> None:
    assert v.check_host_address(IPv4Address("198.18.0.200"), [LAN, LAB]) is LAB
    with pytest.raises(Invalid, match=r"outside every subnet the site serves \(lan"):
        v.check_host_address(IPv4Address("198.19.0.1"), [LAN])
    with pytest.raises(Invalid, match="outside every subnet the site serves \\(none\\)"):
        v.check_host_address(IPv4Address("198.19.0.1"), [])
    with pytest.raises(Invalid, match="broadcast address of subnet lab"):
        v.check_host_address(IPv4Address("198.18.0.255"), [LAN, LAB])


def test_host_names() -> None:
    lab = Subnet(name="lab", cidr=IPv4Network("198.18.1.0/24"), domain="Lab.Site.Example.")
    assert v.host_names("web1", IPv4Address("198.18.1.9"), [lab], "site.example") == {
        "web1.site.example",
        "web1.lab.site.example",
    }
    assert v.host_names("web1", IPv4Address("198.18.9.9"), [lab], None) == set()
