"""TSIG (RFC 8945) with HMAC-SHA256: sign/verify round trips, errors, multi-message chains."""

from __future__ import annotations

import contextlib

import pytest
from dnslib import EDNS0, DNSRecord
from hypothesis import given
from hypothesis import strategies as st

from ddi.dns import tsig
from ddi.dns.wire import Rcode, TsigError, error_response, write_name
from ddi.dns.zone import label
from ddi.errors import DnsFormatError

KEY = tsig.TsigKey(name="xfr.site.example", secret=b"0123456789abcdef0123456789abcdef")
KEYS = {KEY.name: KEY}
NOW = 1_800_000_000.0


def _query() -> bytes:
    q = DNSRecord.question(label("site.example"), "AXFR")
    q.header.id = 4242
    data: bytes = q.pack()
    return data


def test_signed_request_verifies() -> None:
    signed, mac = tsig.sign(_query(), KEY, now=NOW)
    result = tsig.verify(signed, KEYS, now=NOW + 10)
    assert isinstance(result, tsig.Verified)
    assert result.key == KEY
    assert result.record.mac == mac


def test_unsigned_message_is_none() -> None:
    assert tsig.verify(_query(), KEYS, now=NOW) is None


def test_unknown_key_is_badkey() -> None:
    other = tsig.TsigKey(name="other.example", secret=KEY.secret)
    signed, _ = tsig.sign(_query(), other, now=NOW)
    result = tsig.verify(signed, KEYS, now=NOW)
    assert isinstance(result, tsig.Failed)
    assert result.error is TsigError.BADKEY


def test_wrong_secret_is_badsig() -> None:
    forged = tsig.TsigKey(name=KEY.name, secret=b"x" * 32)
    signed, _ = tsig.sign(_query(), forged, now=NOW)
    result = tsig.verify(signed, KEYS, now=NOW)
    assert isinstance(result, tsig.Failed)
    assert result.error is TsigError.BADSIG


def test_tampered_message_is_badsig() -> None:
    signed, _ = tsig.sign(_query(), KEY, now=NOW)
    tampered = signed[:13] + b"X" + signed[14:]
    result = tsig.verify(tampered, KEYS, now=NOW)
    assert isinstance(result, tsig.Failed)
    assert result.error is TsigError.BADSIG


def test_old_signature_is_badtime() -> None:
    signed, _ = tsig.sign(_query(), KEY, now=NOW)
    result = tsig.verify(signed, KEYS, now=NOW + 301)
    assert isinstance(result, tsig.Failed)
    assert result.error is TsigError.BADTIME


def test_reply_chain_verifies_with_request_mac() -> None:
    _, request_mac = tsig.sign(_query(), KEY, now=NOW)
    reply, _ = tsig.sign(_query(), KEY, now=NOW, request_mac=request_mac)
    assert isinstance(tsig.verify(reply, KEYS, now=NOW, request_mac=request_mac), tsig.Verified)
    assert isinstance(tsig.verify(reply, KEYS, now=NOW, request_mac=b"z" * 32), tsig.Failed)


def test_tsig_not_last_is_a_format_error() -> None:
    signed, _ = tsig.sign(_query(), KEY, now=NOW)
    extra = b"\x00" + bytes.fromhex("0010000100000000") + b"\x00\x01" + b"x"  # a TXT after it
    data = bytearray(signed + extra)
    data[11] += 1
    with pytest.raises(DnsFormatError):
        tsig.find_tsig(bytes(data))


def test_error_tsig_reports_the_error() -> None:
    forged = tsig.TsigKey(name=KEY.name, secret=b"x" * 32)
    signed, _ = tsig.sign(_query(), forged, now=NOW)
    failure = tsig.verify(signed, KEYS, now=NOW)
    assert isinstance(failure, tsig.Failed)
    header_only = signed[:2] + b"\x80\x09" + b"\x00" * 8
    out = tsig.error_tsig(header_only, failure, now=NOW)
    record = tsig.find_tsig(out)
    assert record is not None
    assert record.error == TsigError.BADSIG
    assert record.mac == b""


@given(st.binary(max_size=300))
def test_find_tsig_raises_only_format_error(data: bytes) -> None:
    with contextlib.suppress(DnsFormatError):
        tsig.find_tsig(data)


def test_names_are_canonical() -> None:
    assert tsig.encode_name("Xfr.Site.Example.") == b"\x03xfr\x04site\x07example\x00"


def test_later_messages_of_a_transfer_chain_on_the_prior_mac() -> None:
    import hashlib
    import hmac
    import struct

    _, mac1 = tsig.sign(_query(), KEY, now=NOW, request_mac=b"r" * 32)
    second, mac2 = tsig.sign(_query(), KEY, now=NOW, prior_mac=mac1)
    # RFC 8945 §5.3.1: prior MAC (length-prefixed), the unsigned message, then only the timers.
    timers = struct.pack("!HIH", int(NOW) >> 32, int(NOW) & 0xFFFFFFFF, 300)
    prefix = struct.pack("!H", 32) + mac1
    expected = hmac.new(KEY.secret, prefix + _query() + timers, hashlib.sha256).digest()
    assert mac2 == expected
    record = tsig.find_tsig(second)
    assert record is not None
    assert record.mac == mac2


def test_edns_query_without_tsig_is_unsigned() -> None:
    q = DNSRecord.question(label("site.example"))
    q.add_ar(EDNS0(udp_len=1232))
    assert tsig.find_tsig(q.pack()) is None


@pytest.mark.parametrize(
    "tail",
    [
        b"\xc0",  # a pointer cut in half
        b"\xc0\x0c",  # points at itself's question: fine; then the RR header is missing
        b"\x00\x00\xfa\x00\xff\x00\x00\x00\x00\x00\x10",  # rdata shorter than RDLENGTH
        b"\x40abc",  # an unknown label type
    ],
)
def test_truncated_or_odd_additional_records_are_format_errors(tail: bytes) -> None:
    data = bytearray(DNSRecord.question(label("a.example")).pack() + tail)
    data[11] = 1
    with pytest.raises(DnsFormatError):
        tsig.find_tsig(bytes(data))


def test_compression_pointer_loop_is_a_format_error() -> None:
    data = bytearray(DNSRecord.question(label("a.example")).pack())
    data[11] = 1
    start = len(data)
    data += struct_pointer(start)
    with pytest.raises(DnsFormatError):
        tsig.find_tsig(bytes(data))


def struct_pointer(offset: int) -> bytes:
    return (0xC000 | offset).to_bytes(2, "big")


def test_badtime_error_carries_the_server_time() -> None:
    signed, _ = tsig.sign(_query(), KEY, now=NOW)
    failure = tsig.verify(signed, KEYS, now=NOW + 1000)
    assert isinstance(failure, tsig.Failed)
    out = tsig.error_tsig(signed[:2] + b"\x80\x09" + b"\x00" * 8, failure, now=NOW + 1000)
    record = tsig.find_tsig(out)
    assert record is not None
    assert record.error == TsigError.BADTIME
    assert int.from_bytes(record.other, "big") == int(NOW + 1000)


def _with_key_name_byte(signed: bytes, old: bytes, new: bytes) -> bytes:
    """``signed`` with one byte of the TSIG owner name replaced (the last occurrence)."""
    at = signed.rindex(b"\x03xfr\x04site\x07example\x00") + 1 + b"xfr".index(old)
    return signed[:at] + new + signed[at + 1 :]


@pytest.mark.parametrize("byte", [b"\xe9", b"\xff", b"\x00", b"."])
def test_a_key_name_with_any_byte_is_badkey_and_echoed_as_it_came(byte: bytes) -> None:
    signed, _ = tsig.sign(_query(), KEY, now=NOW)
    odd = _with_key_name_byte(signed, b"f", byte)
    result = tsig.verify(odd, KEYS, now=NOW)
    assert isinstance(result, tsig.Failed)
    assert result.error is TsigError.BADKEY
    assert isinstance(result.record.key_name, str)  # printable, for the log
    reply = tsig.error_tsig(error_response(odd, Rcode.NOTAUTH), result, now=NOW)
    echoed = tsig.find_tsig(reply)
    assert echoed is not None
    assert echoed.key_wire == result.record.key_wire
    assert b"x" + byte + b"r" in reply


def test_a_key_name_in_another_case_is_the_same_key() -> None:
    signed, _ = tsig.sign(_query(), KEY, now=NOW)
    # RFC 4343: names compare case-insensitively; the MAC covers the canonical (lower-case) name.
    result = tsig.verify(_with_key_name_byte(signed, b"f", b"F"), KEYS, now=NOW)
    assert isinstance(result, tsig.Verified)


@given(st.lists(st.binary(min_size=1, max_size=63), min_size=1, max_size=4))
def test_any_key_name_off_the_wire_is_verified_or_refused_never_raises(
    labels: list[bytes],
) -> None:
    signed, _ = tsig.sign(_query(), KEY, now=NOW)
    record = tsig.find_tsig(signed)
    assert record is not None
    start = record.offset
    odd = signed[:start] + write_name(labels) + signed[start + len(record.key_wire) :]
    result = tsig.verify(odd, KEYS, now=NOW)
    assert result is not None
    if isinstance(result, tsig.Failed):
        assert tsig.find_tsig(tsig.error_tsig(error_response(odd, Rcode.NOTAUTH), result, now=NOW))
    assert result.record.key_name.isprintable()
