"""The dnslib boundary: only DnsFormatError escapes decode; truncation; header-only errors."""

from __future__ import annotations

import contextlib

from dnslib import QTYPE, RR, A, DNSRecord
from hypothesis import given
from hypothesis import strategies as st

from ddi.dns.wire import (
    Flag,
    Opcode,
    QClass,
    QType,
    Rcode,
    decode_message,
    encode_message,
    error_response,
    patch_id,
    read_name,
    write_name,
)
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


def test_read_name_follows_pointers_and_returns_the_offset_after_the_first() -> None:
    data = b"\x00" * 12 + b"\x03web\x04site\x00" + b"\x02ns\xc0\x10"
    assert read_name(data, 12) == ((b"web", b"site"), 22)
    assert read_name(data, 22) == ((b"ns", b"site"), 27)


@given(st.binary(max_size=80), st.integers(min_value=0, max_value=80))
def test_read_name_raises_only_format_error(data: bytes, pos: int) -> None:
    with contextlib.suppress(DnsFormatError):
        _, end = read_name(data, pos)
        assert end <= len(data)


def test_read_name_refuses_a_pointer_loop() -> None:
    with contextlib.suppress(DnsFormatError):
        read_name(b"\xc0\x00", 0)
        raise AssertionError("no error")


@given(st.lists(st.binary(min_size=1, max_size=63).filter(lambda b: b[0] < 0x40), max_size=6))
def test_write_name_and_read_name_round_trip(labels: list[bytes]) -> None:
    wire = write_name(labels)
    assert read_name(wire, 0) == (tuple(labels), len(wire))


def test_write_name_ends_in_a_pointer_when_given_one() -> None:
    assert write_name([b"ns"], 12) == b"\x02ns\xc0\x0c"
    assert write_name((), 0x10) == b"\xc0\x10"


def test_codes_are_the_wire_values() -> None:
    assert (Rcode.NXDOMAIN, Rcode.NOTAUTH, Rcode.BADVERS) == (3, 9, 16)
    assert (QType.A, QType.SOA, QType.OPT, QType.TSIG, QType.AXFR) == (1, 6, 41, 250, 252)
    assert (QClass.IN, QClass.ANY, Opcode.NOTIFY) == (1, 255, 4)
    assert Flag.QR | Flag.AA | Flag.RD == 0x8500


def test_packing_leaves_records_as_dnslib_made_them() -> None:
    """No attribute is kept on a dnslib object (the wire form is computed, not stored)."""
    q = DNSRecord.question(label("web.site.example"))
    reply = q.reply()
    reply.add_answer(RR(label("web.site.example"), QTYPE.A, rdata=A("198.18.0.10"), ttl=300))
    before = [dict(vars(rr)) for rr in reply.rr]
    assert decode_message(encode_message(reply)).rr == reply.rr
    assert [vars(rr) for rr in reply.rr] == before
