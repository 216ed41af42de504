"""Seed inputs from the captures in tests/vectors (real clients' packets) and the few helpers
the harnesses build valid messages with.

The capture reader is a minimal one (classic pcap and pcapng, Ethernet, IPv4, UDP): enough for
the captures the repository keeps, and it keeps scapy's import time out of every fuzzing
process.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from fuzz.core import REPO

VECTORS = REPO / "tests" / "vectors"

_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">"}
_ETH_IPV4 = 0x0800
_UDP = 17
_LINK_ETHERNET = 1
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_EPB = 6


def _frames(data: bytes) -> Iterator[bytes]:
    """Ethernet frames of a classic pcap or a pcapng file."""
    order = _PCAP_MAGIC.get(data[:4])
    if order is not None:
        (linktype,) = struct.unpack_from(order + "I", data, 20)
        pos = 24
        while linktype == _LINK_ETHERNET and pos + 16 <= len(data):
            caplen = struct.unpack_from(order + "I", data, pos + 8)[0]
            yield data[pos + 16 : pos + 16 + caplen]
            pos += 16 + caplen
        return
    if data[:4] != _PCAPNG_SHB:
        raise ValueError("neither pcap nor pcapng")
    order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    pos = 0
    while pos + 12 <= len(data):
        kind, size = struct.unpack_from(order + "II", data, pos)
        if kind == _PCAPNG_EPB:
            caplen = struct.unpack_from(order + "I", data, pos + 20)[0]
            yield data[pos + 28 : pos + 28 + caplen]
        pos += max(size, 12)


def udp_payloads(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(source port, destination port, payload) of each UDP/IPv4 datagram in a capture."""
    for frame in _frames(path.read_bytes()):
        if len(frame) < 14 + 20 or struct.unpack_from("!H", frame, 12)[0] != _ETH_IPV4:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != _UDP or len(ip) < ihl + 8:
            continue
        sport, dport, length = struct.unpack_from("!HHH", ip, ihl)
        yield sport, dport, ip[ihl + 8 : ihl + length]


def captured(port: int) -> list[bytes]:
    """Payloads of every captured datagram sent to ``port`` (67: DHCP requests; 69: TFTP
    requests), in capture order, without duplicates."""
    seen: dict[bytes, None] = {}
    for path in sorted(VECTORS.glob("*.pcap")):
        for _, dport, payload in udp_payloads(path):
            if dport == port:
                seen.setdefault(payload, None)
    return list(seen)


def captured_from(port: int) -> list[bytes]:
    """Payloads of every captured datagram sent from a client to a server's transfer port
    other than ``port`` (the TFTP client's ACKs go to the transfer's own port)."""
    seen: dict[bytes, None] = {}
    for path in sorted(VECTORS.glob("*.pcap")):
        for sport, dport, payload in udp_payloads(path):
            if sport != port and dport not in (67, 68, port) and payload[:2] == b"\0\4":
                seen.setdefault(payload, None)
    return list(seen)
