"""Codec tests: captured client packets, round trips, overload, long options, fuzzing."""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddi.dhcp.options import ClientArch, MessageType, OptionCode, decode_client_arch
from ddi.dhcp.packet import (
    BOOTREPLY,
    BOOTREQUEST,
    DhcpPacket,
    decode_packet,
    encode_packet,
)
from ddi.errors import DhcpFormatError
from tests.vectors import VECTORS


def payloads(name: str) -> list[bytes]:
    path = VECTORS / name
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    return [
        bytes(p[UDP].payload) for p in rdpcap(str(path)) if UDP in p and p[UDP].dport in (67, 68)
    ]


def test_dhclient_dora_release_decodes() -> None:
    discover, offer, request, ack, release = (
        decode_packet(b) for b in payloads("dhcp-dhclient-dora-release.pcap")
    )
    assert discover.op == BOOTREQUEST
    assert discover.message_type is MessageType.DISCOVER
    assert discover.mac == "52:54:00:00:00:01"
    assert discover.xid == 3504396388
    assert discover.get(OptionCode.HOST_NAME) == b"myhost"
    assert discover.parameter_request_list() == (1, 28, 3, 15, 6, 12, 42, 26)
    assert discover.get(OptionCode.CLIENT_IDENTIFIER) == b"client-1"
    assert discover.client_id == b"client-1".hex(":")
    assert offer.op == BOOTREPLY
    assert offer.message_type is MessageType.OFFER
    assert offer.yiaddr == IPv4Address("198.19.0.160")
    assert offer.siaddr == IPv4Address("198.19.0.1")
    assert offer.file == b"boot.ipxe"
    assert offer.server_identifier() == IPv4Address("198.19.0.1")
    assert request.message_type is MessageType.REQUEST
    assert request.requested_address() == IPv4Address("198.19.0.160")
    assert request.server_identifier() == IPv4Address("198.19.0.1")
    assert ack.message_type is MessageType.ACK
    assert release.message_type is MessageType.RELEASE
    assert release.ciaddr == IPv4Address("198.19.0.160")


def test_udhcpc_dora_decodes() -> None:
    packets = [decode_packet(b) for b in payloads("dhcp-udhcpc-dora.pcap")]
    kinds = [p.message_type for p in packets]
    assert kinds == [MessageType.DISCOVER, MessageType.OFFER] * 2 + [
        MessageType.REQUEST,
        MessageType.ACK,
    ]
    discover = packets[0]
    assert discover.max_message_size() == 576
    assert discover.get(OptionCode.VENDOR_CLASS_IDENTIFIER) == b"myvendor"
    assert discover.get(OptionCode.HOST_NAME) == b"uhost"
    assert discover.client_id == "01:52:54:00:00:00:01"
    assert packets[4].requested_address() == IPv4Address("198.19.0.156")


@pytest.mark.parametrize(
    ("name", "arch", "mac"),
    [
        ("pxe-ipxe-bios-dora-tftp.pcap", ClientArch.BIOS, "52:54:00:00:00:02"),
        ("pxe-ipxe-uefi-x64-dora-tftp.pcap", ClientArch.EFI_BC, "52:54:00:00:00:03"),
    ],
)
def test_pxe_discover_decodes(name: str, arch: ClientArch, mac: str) -> None:
    discover = decode_packet(payloads(name)[0])
    assert discover.message_type is MessageType.DISCOVER
    assert discover.mac == mac
    assert discover.max_message_size() == 1472
    assert decode_client_arch(discover.get(OptionCode.CLIENT_ARCH) or b"") == (arch,)
    assert discover.get(OptionCode.USER_CLASS) == b"iPXE"
    assert (discover.get(OptionCode.VENDOR_CLASS_IDENTIFIER) or b"").startswith(b"PXEClient:Arch:")
    prl = discover.parameter_request_list()
    assert prl[:4] == (1, 3, 6, 7)
    assert 175 in prl
    assert 203 in prl
    assert discover.get(OptionCode.IPXE_ENCAPSULATED) is not None


@pytest.mark.parametrize(
    "name",
    [
        "dhcp-dhclient-dora-release.pcap",
        "dhcp-udhcpc-dora.pcap",
        "pxe-ipxe-bios-dora-tftp.pcap",
        "pxe-ipxe-uefi-x64-dora-tftp.pcap",
    ],
)
def test_vectors_reencode_to_the_same_bytes(name: str) -> None:
    for data in payloads(name):
        packet = decode_packet(data)
        assert encode_packet(packet, max_size=1500) == data
        assert decode_packet(encode_packet(packet)) == packet


def _header(options: bytes, **fields: bytes) -> bytes:
    head = bytearray(240)
    head[0] = 1
    head[1] = 1
    head[2] = 6
    head[28:34] = bytes.fromhex("525400000001")
    for name, value in fields.items():
        offset = {"sname": 44, "file": 108}[name]
        head[offset : offset + len(value)] = value
    head[236:240] = b"\x63\x82\x53\x63"
    return bytes(head) + options


def test_long_option_instances_are_concatenated() -> None:
    data = _header(
        bytes([53, 1, 1, 43, 3]) + b"abc" + bytes([12, 1]) + b"h" + bytes([43, 2]) + b"de" + b"\xff"
    )
    packet = decode_packet(data)
    assert packet.options == ((53, b"\x01"), (43, b"abcde"), (12, b"h"))


def test_overload_reads_file_then_sname() -> None:
    file = bytes([43, 2]) + b"fi" + b"\xff"
    sname = bytes([43, 2]) + b"sn" + bytes([66, 1]) + b"x" + b"\xff"
    data = _header(bytes([53, 1, 1, 52, 1, 3, 43, 1]) + b"o" + b"\xff", file=file, sname=sname)
    packet = decode_packet(data)
    assert packet.options == ((53, b"\x01"), (43, b"ofisn"), (66, b"x"))
    assert packet.file == b""
    assert packet.sname == b""


def test_overload_option_in_file_field_is_ignored() -> None:
    file = bytes([52, 1, 2, 12, 1]) + b"h" + b"\xff"
    packet = decode_packet(_header(bytes([52, 1, 1, 53, 1, 1, 255]), file=file))
    assert packet.options == ((53, b"\x01"), (12, b"h"))


def test_missing_end_is_tolerated() -> None:
    assert decode_packet(_header(bytes([53, 1, 3]))).message_type is MessageType.REQUEST


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01" * 239,
        _header(b"")[:236] + b"\0\0\0\0",
        _header(bytes([53, 1])),
        _header(bytes([53, 5, 1])),
        _header(bytes([53])),
        _header(bytes([52, 1, 4, 255])),
        _header(bytes([52, 2, 1, 1, 255])),
        _header(bytes([52, 1, 1, 52, 1, 1, 255])),
        _header(b"\xff", file=bytes([12, 200]))[:240] + bytes([52, 1, 1, 255]),
    ],
)
def test_malformed_packets_raise_format_error(data: bytes) -> None:
    with pytest.raises(DhcpFormatError):
        decode_packet(data)


def test_hlen_over_16_is_refused() -> None:
    data = bytearray(_header(b"\xff"))
    data[2] = 17
    with pytest.raises(DhcpFormatError):
        decode_packet(bytes(data))


def _reply(options: tuple[tuple[int, bytes], ...], **kw: object) -> DhcpPacket:
    return DhcpPacket(
        op=BOOTREPLY,
        xid=7,
        chaddr=bytes.fromhex("525400000001") + b"\0" * 10,
        options=options,
        **kw,
    )  # type: ignore[arg-type]


def test_long_value_is_split_into_255_byte_instances() -> None:
    value = bytes(range(256)) * 2  # 512 bytes
    packet = _reply(((53, b"\x02"), (43, value)))
    data = encode_packet(packet, max_size=1500)
    assert data[240:243] == bytes([53, 1, 2])
    assert data[243:245] == bytes([43, 255])
    assert data[245 + 255 : 247 + 255] == bytes([43, 255])
    assert data[247 + 510 : 249 + 510] == bytes([43, 2])
    assert decode_packet(data) == packet


def test_encode_pads_to_300_bytes() -> None:
    data = encode_packet(_reply(((53, b"\x05"),)))
    assert len(data) == 300
    assert data[243] == 255


def test_encode_respects_576_and_overloads_file_and_sname() -> None:
    options = (
        (53, b"\x02"),
        (54, b"\xc6\x12\x00\x01"),
        (43, b"a" * 250),
        (60, b"b" * 100),
        (66, b"c" * 40),
    )
    packet = _reply(options)
    data = encode_packet(packet, max_size=500)  # raised to the 576 minimum
    assert len(data) <= 576 - 28
    assert decode_packet(data) == packet
    assert data[240:243] == bytes([52, 1, 3])


def test_encode_overloads_only_free_fields() -> None:
    options = ((53, b"\x02"), (43, b"a" * 250), (60, b"b" * 60))
    packet = _reply(options, file=b"boot.ipxe")
    data = encode_packet(packet)
    assert data[240:243] == bytes([52, 1, 2])
    assert decode_packet(data) == packet


def test_options_that_cannot_fit_are_left_out_last_first() -> None:
    options = ((53, b"\x02"), (43, b"a" * 250), (60, b"b" * 250), (77, b"c" * 250), (12, b"h"))
    packet = _reply(options, file=b"f", sname=b"s")
    decoded = decode_packet(encode_packet(packet))
    assert [c for c, _ in decoded.options] == [53, 43, 12]


def test_bigger_max_size_avoids_overload() -> None:
    options = ((53, b"\x02"), (43, b"a" * 250), (60, b"b" * 250), (77, b"c" * 250))
    packet = _reply(options)
    data = encode_packet(packet, max_size=1500)
    assert decode_packet(data) == packet
    assert data[240] == 53
    assert data[108] == 0


def test_overload_unused_when_options_do_not_fit_anywhere() -> None:
    packet = _reply(((53, b"\x02"), (43, b"a" * 600)))
    decoded = decode_packet(encode_packet(packet))
    assert decoded.options == ((53, b"\x02"),)


def test_packet_accessors() -> None:
    packet = _reply(((53, b"\x63"), (57, b"\x05\xdc")), flags=0x8000, htype=6)
    assert packet.message_type == 0x63
    assert packet.mac is None
    assert packet.broadcast
    assert packet.max_message_size() == 1500
    assert packet.client_id is None
    assert packet.requested_address() is None
    assert packet.server_identifier() is None
    assert packet.parameter_request_list() == ()
    assert _reply(((53, b""),)).message_type is None
    with pytest.raises(DhcpFormatError):
        _reply(((50, b"\x01"),)).requested_address()


# --- properties ------------------------------------------------------------------------------


def _bytes(*, min_size: int = 0, max_size: int) -> st.SearchStrategy[bytes]:
    # Lists of ints, not st.binary: hypothesis compares its choice keys, which mixes bytes and
    # ints and trips the BytesWarning that ``python -bb`` turns into an error.
    return st.lists(st.integers(0, 255), min_size=min_size, max_size=max_size).map(bytes)


_addresses = st.integers(min_value=0, max_value=2**32 - 1).map(IPv4Address)
_codes = st.integers(min_value=1, max_value=254).filter(lambda c: c != 52)
_no_trailing_nul = _bytes(max_size=64).map(lambda b: b.rstrip(b"\0"))


@st.composite
def packets(draw: st.DrawFn) -> DhcpPacket:
    codes = draw(st.lists(_codes, unique=True, max_size=12))
    options = tuple((c, draw(_bytes(max_size=300))) for c in codes)
    return DhcpPacket(
        op=draw(st.integers(0, 255)),
        htype=draw(st.integers(0, 255)),
        hlen=draw(st.integers(0, 16)),
        hops=draw(st.integers(0, 255)),
        xid=draw(st.integers(0, 2**32 - 1)),
        secs=draw(st.integers(0, 2**16 - 1)),
        flags=draw(st.integers(0, 2**16 - 1)),
        ciaddr=draw(_addresses),
        yiaddr=draw(_addresses),
        siaddr=draw(_addresses),
        giaddr=draw(_addresses),
        chaddr=draw(_bytes(min_size=16, max_size=16)),
        sname=draw(_no_trailing_nul),
        file=draw(_bytes(max_size=128).map(lambda b: b.rstrip(b"\0"))),
        options=options,
    )


@settings(max_examples=300)
@given(packets())
def test_decode_encode_round_trip(packet: DhcpPacket) -> None:
    assert decode_packet(encode_packet(packet, max_size=65535)) == packet


@settings(max_examples=300)
@given(packets(), st.integers(min_value=0, max_value=1500))
def test_encode_never_exceeds_max_size_and_decodes(packet: DhcpPacket, max_size: int) -> None:
    data = encode_packet(packet, max_size=max_size)
    assert len(data) <= max(max_size, 576) - 28
    decoded = decode_packet(data)
    kept = dict(decoded.options)
    assert all(dict(packet.options)[c] == v for c, v in kept.items())
    assert [c for c, _ in packet.options if c in kept] == list(kept)


@settings(max_examples=500)
@given(_bytes(max_size=1500))
def test_decode_raises_only_format_error(data: bytes) -> None:
    with contextlib.suppress(DhcpFormatError):
        decode_packet(data)


@settings(max_examples=500)
@given(_bytes(max_size=600))
def test_decode_raises_only_format_error_after_a_valid_header(tail: bytes) -> None:
    with contextlib.suppress(DhcpFormatError):
        decode_packet(_header(b"")[:240] + tail)
