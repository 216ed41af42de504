"""The IPv4/UDP framing used for link-layer unicast replies, checked against scapy."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP

from ddi.dhcp.server import _checksum, udp_datagram


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


def _reference_checksum(data: bytes) -> int:
    """RFC 1071 §4.1 as written: add 16-bit words, fold the carries, complement."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(st.binary(max_size=600))
def test_checksum_matches_the_word_by_word_sum(data: bytes) -> None:
    assert _checksum(data) == _reference_checksum(data)


@pytest.mark.parametrize(
    "data", [b"", b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\xff", b"\xff\xfe\x00\x01", b"\x01"]
)
def test_checksum_edge_values(data: bytes) -> None:
    assert _checksum(data) == _reference_checksum(data)
