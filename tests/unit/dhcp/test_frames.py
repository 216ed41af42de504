"""The IPv4/UDP framing used for link-layer unicast replies, checked against scapy."""

from __future__ import annotations

from ipaddress import IPv4Address

from scapy.layers.inet import IP, UDP

from ddi.dhcp.server import udp_datagram


def test_udp_datagram_has_valid_headers_and_checksums() -> None:
    payload = bytes(range(256)) + b"\x01"  # odd length
    data = udp_datagram(IPv4Address("198.18.0.1"), IPv4Address("198.18.0.100"), 67, 68, payload)
    parsed = IP(data)
    assert parsed.src == "198.18.0.1"
    assert parsed.dst == "198.18.0.100"
    assert parsed.ttl == 64
    assert parsed[UDP].sport == 67
    assert parsed[UDP].dport == 68
    assert bytes(parsed[UDP].payload) == payload
    ip_sum, udp_sum = parsed.chksum, parsed[UDP].chksum
    del parsed.chksum
    del parsed[UDP].chksum
    rebuilt = IP(bytes(parsed))
    assert rebuilt.chksum == ip_sum
    assert rebuilt[UDP].chksum == udp_sum
