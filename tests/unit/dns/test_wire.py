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


def _question(name: bytes) -> bytes:
    return bytes.fromhex("000101000001000000000000") + name + b"\x00\x01\x00\x01"


LONG_LABEL = b"\x41" + b"a" * 65 + b"\x00"
"""A length byte of 65: its top bits 01 are no label type RFC 1035 §4.1.4 defines."""
LONG_NAME = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00"
"""257 octets: four labels of 63."""
LONGEST_NAME = b"".join(b"\x3f" + b"a" * 63 for _ in range(3)) + b"\x3d" + b"a" * 61 + b"\x00"
"""255 octets, the most RFC 1035 §2.3.4 allows."""


def test_read_name_refuses_a_label_over_63_and_a_name_over_255_octets() -> None:
    assert len(LONGEST_NAME) == 255
    assert read_name(LONGEST_NAME, 0)[1] == 255
    for name in (LONG_LABEL, LONG_NAME, LONGEST_NAME[:-1] + b"\x01a\x00"):
        with contextlib.suppress(DnsFormatError):
            read_name(name, 0)
            raise AssertionError(f"read {name!r}")


def test_read_name_counts_the_octets_behind_pointers() -> None:
    """A name over 255 octets made of a short name and a pointer to a long one."""
    data = b"\x00" * 12 + LONGEST_NAME + b"\x01a\xc0\x0c"
    assert read_name(data, 12)[1] == 12 + 255
    with contextlib.suppress(DnsFormatError):
        read_name(data, 12 + 255)
        raise AssertionError("read a name of 257 octets")


def test_read_name_refuses_a_pointer_forward() -> None:
    with contextlib.suppress(DnsFormatError):
        read_name(b"\xc0\x02\x00", 0)
        raise AssertionError("no error")


def test_decode_refuses_what_dnslib_could_not_pack_again() -> None:
    """dnslib's own name reader took both for names, and its packer then raised DNSLabelError
    (the SERVFAIL to a forwarded query, the forwarded query itself)."""
    assert decode_message(_question(LONGEST_NAME)).pack() == _question(LONGEST_NAME)
    for name in (LONG_LABEL, LONG_NAME):
        with contextlib.suppress(DnsFormatError):
            decode_message(_question(name))
            raise AssertionError(f"decoded {name!r}")


def test_decode_reads_names_in_rdata_with_the_same_limits() -> None:
    """An upstream's CNAME to a name of 257 octets: refused as the question is."""

    def answer(target: bytes) -> bytes:
        head = bytes.fromhex("000181800001000100000000") + write_name([b"www", b"example"])
        record = b"\xc0\x0c" + bytes.fromhex("0005000100000e10") + len(target).to_bytes(2, "big")
        return head + b"\x00\x01\x00\x01" + record + target

    assert decode_message(answer(LONGEST_NAME)).rr[0].rdata.label.label[0] == b"a" * 63
    with contextlib.suppress(DnsFormatError):
        decode_message(answer(LONG_NAME))
        raise AssertionError("decoded a CNAME target of 257 octets")
