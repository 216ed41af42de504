"""The dnslib boundary: only DnsFormatError escapes decode; truncation; header-only errors."""

from __future__ import annotations

import contextlib

from dnslib import DNSRecord
from hypothesis import given
from hypothesis import strategies as st

from ddi.dns.wire import decode_message, error_response, patch_id
from ddi.dns.zone import label
from ddi.errors import DnsFormatError

QUERY = DNSRecord.question(label("web.site.example")).pack()


@given(st.binary(max_size=600))
def test_decode_raises_only_format_error(data: bytes) -> None:
    with contextlib.suppress(DnsFormatError):
        decode_message(data)


@given(st.binary(max_size=40), st.integers(min_value=12, max_value=len(QUERY)))
def test_decode_of_mangled_queries_raises_only_format_error(noise: bytes, cut: int) -> None:
    with contextlib.suppress(DnsFormatError):
        decode_message(QUERY[:cut] + noise)


def test_short_header_is_a_format_error() -> None:
    with contextlib.suppress(DnsFormatError):
        decode_message(b"\x00" * 11)
        raise AssertionError("no error")


def test_error_response_keeps_id_opcode_and_rd() -> None:
    data = bytes.fromhex("abcd2900") + b"\x00" * 8  # opcode 5, RD set
    reply = decode_message(error_response(data, 1))
    assert reply.header.id == 0xABCD
    assert reply.header.qr == 1
    assert reply.header.opcode == 5
    assert reply.header.rd == 1
    assert reply.header.rcode == 1


def test_patch_id() -> None:
    assert patch_id(b"\x00\x01rest", b"\xff\xee") == b"\xff\xeerest"
