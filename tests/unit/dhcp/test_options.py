"""Per-option value codecs: every decoder raises only DhcpFormatError on bad values."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddi.dhcp.options import (
    ClientArch,
    ClientFqdn,
    MessageType,
    OptionCode,
    client_arch_from_int,
    decode_classless_routes,
    decode_client_arch,
    decode_client_fqdn,
    decode_ip,
    decode_ip_list,
    decode_relay_agent_information,
    decode_text,
    decode_u8,
    decode_u16,
    decode_u32,
    decode_user_class,
    encode_classless_routes,
    encode_client_fqdn,
    encode_ip_list,
    encode_relay_agent_information,
    encode_u8,
    encode_u16,
    encode_u32,
    message_type_from_int,
    option_code_from_int,
)
from ddi.errors import DhcpFormatError

A = IPv4Address


def test_unknown_codes_pass_through_as_ints() -> None:
    assert message_type_from_int(3) is MessageType.REQUEST
    assert message_type_from_int(99) == 99
    assert option_code_from_int(82) is OptionCode.RELAY_AGENT_INFORMATION
    assert option_code_from_int(250) == 250
    assert client_arch_from_int(11) is ClientArch.EFI_ARM64
    assert client_arch_from_int(25) == 25


def test_integers_round_trip_and_check_their_length() -> None:
    assert decode_u8(encode_u8(7)) == 7
    assert decode_u16(encode_u16(1500)) == 1500
    assert decode_u32(encode_u32(86400)) == 86400
    for decode, size in ((decode_u8, 1), (decode_u16, 2), (decode_u32, 4)):
        with pytest.raises(DhcpFormatError):
            decode(b"\0" * (size + 1))


def test_addresses() -> None:
    assert decode_ip(A("198.18.0.1").packed) == A("198.18.0.1")
    addresses = (A("198.18.0.1"), A("198.18.0.2"))
    assert decode_ip_list(encode_ip_list(addresses)) == addresses
    with pytest.raises(DhcpFormatError):
        decode_ip(b"\1\2\3")
    with pytest.raises(DhcpFormatError):
        decode_ip_list(b"\1\2\3\4\5")
    with pytest.raises(DhcpFormatError):
        decode_ip_list(b"")


def test_text_tolerates_a_trailing_nul_and_refuses_non_ascii() -> None:
    assert decode_text(b"host\0") == "host"
    with pytest.raises(DhcpFormatError):
        decode_text(b"h\xffst")


def test_relay_agent_information_keeps_order_and_raw_values() -> None:
    raw = bytes([2, 2]) + b"r1" + bytes([1, 3]) + b"c01" + bytes([9, 0])
    subs = decode_relay_agent_information(raw)
    assert subs == ((2, b"r1"), (1, b"c01"), (9, b""))
    assert encode_relay_agent_information(subs) == raw
    for bad in (bytes([1]), bytes([1, 5, 0])):
        with pytest.raises(DhcpFormatError):
            decode_relay_agent_information(bad)


def test_client_fqdn_in_both_encodings() -> None:
    wire = ClientFqdn(flags=ClientFqdn.FLAG_E | ClientFqdn.FLAG_S, name="a.site.example")
    encoded = encode_client_fqdn(wire)
    assert encoded[1:3] == b"\xff\xff"
    assert decode_client_fqdn(encoded) == wire
    ascii_form = ClientFqdn(flags=0, name="box")
    assert decode_client_fqdn(encode_client_fqdn(ascii_form)) == ascii_form
    assert decode_client_fqdn(b"\0\0\0box.").name == "box"
    for bad in (b"\0\0", bytes([4, 0, 0, 70]) + b"x", bytes([4, 0, 0, 5]) + b"ab"):
        with pytest.raises(DhcpFormatError):
            decode_client_fqdn(bad)


def test_client_arch_list() -> None:
    assert decode_client_arch(b"\0\x07\0\x19") == (ClientArch.EFI_BC, 25)
    with pytest.raises(DhcpFormatError):
        decode_client_arch(b"\0")


def test_user_class_rfc3004_and_bare() -> None:
    assert decode_user_class(b"\x04iPXE\x02ab") == (b"iPXE", b"ab")
    assert decode_user_class(b"iPXE") == (b"iPXE",)


def test_classless_routes_round_trip_and_refuse_bad_descriptors() -> None:
    routes = (
        (IPv4Network("0.0.0.0/0"), A("198.18.0.1")),
        (IPv4Network("10.0.0.0/8"), A("198.18.0.2")),
        (IPv4Network("198.18.128.0/17"), A("198.18.0.3")),
        (IPv4Network("198.18.0.5/32"), A("198.18.0.4")),
    )
    encoded = encode_classless_routes(routes)
    assert encoded[:5] == bytes([0, 198, 18, 0, 1])
    assert decode_classless_routes(encoded) == routes
    # Width over 32; a truncated descriptor; host bits set under a /7 prefix.
    for bad in (bytes([33, 0, 0, 0, 0]), bytes([8, 10, 1, 2]), bytes([7, 11, 1, 2, 3, 4])):
        with pytest.raises(DhcpFormatError):
            decode_classless_routes(bad)


DECODERS: list[Callable[[bytes], Any]] = [
    decode_relay_agent_information,
    decode_client_fqdn,
    decode_client_arch,
    decode_classless_routes,
    decode_user_class,
    decode_text,
    decode_ip_list,
]


@given(st.lists(st.integers(0, 255), max_size=300).map(bytes), st.sampled_from(DECODERS))
def test_decoders_raise_only_format_error(value: bytes, decode: Callable[[bytes], Any]) -> None:
    with contextlib.suppress(DhcpFormatError):
        decode(value)
