"""Crashes the fuzzers found (``make fuzz``), each as the smallest input that showed it; every
one used to raise out of its entry point. The NaN/surrogate digest crash in signed sync entries
is tested in tests/unit/central/test_admission.py."""

from __future__ import annotations

import struct


def test_tsig_key_name_outside_ascii_is_answered_notauth() -> None:
    """ddi/dns/wire.py (BADKEY reply to a key name it cannot encode)."""
    from dnslib import DNSRecord

    from ddi.dns import tsig
    from ddi.dns.engine import Transport
    from ddi.dns.responder import Reply
    from ddi.dns.wire import Rcode
    from ddi.dns.zone import label
    from fuzz.targets import dns

    query = DNSRecord.question(label("site.example"), "AXFR")
    signed, _ = tsig.sign(bytes(query.pack()), dns.KEY, now=dns.NOW)
    forged = signed.replace(b"\x03xfr", b"\x03x\xffr")
    result = dns._responder().respond(forged, dns.SECONDARY, Transport.TCP, dns.NOW)
    assert isinstance(result, Reply)
    # dnslib will not decode the echoed key name; the rcode is the header's low four bits.
    assert result.data[3] & 0x0F == Rcode.NOTAUTH


def test_question_names_dnslib_cannot_pack_again_are_not_forwarded() -> None:
    """ddi/dns/responder.py ``_servfail`` (and the forwarder's packing of the same query): a
    label of 65 octets (length byte 0x41, whose top bits RFC 1035 §4.1.4 leaves undefined) and a
    name of 257 octets both decode, are forwarded, and raise DNSLabelError when packed again.
    RFC 1035 §2.3.4: labels of 63 octets or less, names of 255 or less; FORMERR otherwise."""
    from ddi.dns.engine import Transport
    from ddi.dns.responder import Drop, Forward, Reply
    from fuzz.targets import dns

    long_label = b"\x41" + b"a" * 65 + b"\x00"
    long_name = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00"
    for name in (long_label, long_name):
        query = struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"
        result = dns._responder().respond(query, dns.SITE, Transport.UDP, dns.NOW)
        if isinstance(result, Forward):
            result = result.finish(None)
        assert isinstance(result, Reply | Drop)


def test_auth_header_time_with_a_superscript_digit_is_refused() -> None:
    """sync/protocol.py ``verify_request``."""
    from fuzz.targets import sync
    from sync import protocol

    refused = protocol.verify_request(
        "edge1 \u00b21800000000 sig",
        site="edge1",
        method="GET",
        path=sync.PATH,
        now=sync.NOW,
        public_key=sync.SITE_PUBLIC,
    )
    assert refused is not None
    assert refused.reason is protocol.RefuseReason.BAD_SIGNATURE


def test_non_utf8_authorization_header_is_401() -> None:
    """ddi/api/__init__.py ``require_token``."""
    from fuzz.targets import api

    assert api.check(b"Bearer \xff").endswith(":401")


def test_deeply_nested_json_body_is_400() -> None:
    """ddi/api/common.py ``read_body``."""
    from ddi.api.common import BadRequest, read_body
    from fuzz.targets import api

    request = api._Request(api._APP, b"[" * 100_000, {}, "")
    try:
        api._drive(read_body(request))  # type: ignore[arg-type]
    except BadRequest:
        return
    raise AssertionError("no BadRequest")


def test_record_number_of_5000_digits_or_a_superscript_digit_is_invalid() -> None:
    """ddi/ipam/validate.py ``_u16`` (POST /v1/dns/records answers 500)."""
    from ddi.errors import Invalid
    from ddi.ipam.validate import parse_record_value

    for value in ("0 5 " + "9" * 5000 + " db.site.example", "0 5 \u00b2 db.site.example"):
        try:
            parse_record_value("SRV", value)
        except Invalid:
            continue
        raise AssertionError(f"{value[:20]}... was accepted")


def test_tftp_option_of_5000_digits_is_negotiated_without_an_exception() -> None:
    """ddi/boot/tftp_session.py ``_int`` (through ``negotiate``)."""
    from ddi.boot.tftp_session import (
        MAX_BLKSIZE,
        Opcode,
        Request,
        TransferLimits,
        negotiate,
        read_options,
    )

    request = Request(
        opcode=Opcode.RRQ, filename="boot.ipxe", mode="octet", options=(("blksize", "9" * 5000),)
    )
    negotiated = negotiate(read_options(request), size=100, limits=TransferLimits())
    assert negotiated.blksize <= MAX_BLKSIZE
