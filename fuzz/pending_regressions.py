"""Crashes the fuzzers found in modules other work owns at the moment: each with its regression
test below, its input, exception and location, so the owner can fix it and move the test in.

pytest does not collect this file (its name does not start with ``test_``, and ``fuzz/`` is not
among the test paths); every test here fails on the code as it is. Once the fix lands, move the
test into ``tests/unit/fuzz_regressions/`` and drop its line from ``KNOWN``. ``KNOWN`` lets the
runner and the CI smoke tell these from new crashes: (target, exception type, file, function),
without the line, which moves with edits.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

KNOWN: frozenset[tuple[str, str, str, str]] = frozenset(
    {
        # One TSIG key name byte outside ASCII: no reply, a traceback per packet (issue 12 #4).
        ("dns", "UnicodeEncodeError", "ddi/dns/wire.py", "<genexpr>"),
        # A question with a label over 63 octets or a name over 255 decodes, is forwarded, and
        # cannot be packed again: the SERVFAIL (and the upstream query) raise DNSLabelError.
        ("dns", "DNSLabelError", "ddi/dns/responder.py", "_servfail"),
        # "²".isdigit() is true and int("²") fails (issue 12 #13).
        ("sync", "ValueError", "sync/protocol.py", "verify_request"),
        # NaN or a lone surrogate in signed entries: digest raises (issue 12 #13).
        ("sync", "ValueError", "sync/signing.py", "canonical"),
        ("sync", "UnicodeEncodeError", "sync/signing.py", "canonical"),
        # A non-UTF-8 Authorization header: 500 (issue 12 #13).
        ("api", "UnicodeEncodeError", "ddi/api/__init__.py", "require_token"),
        # Deeply nested JSON: RecursionError, 500 (issue 12 #13).
        ("api", "RecursionError", "ddi/api/common.py", "read_body"),
        # An SRV/MX number of 5,000 digits, or "²": int() raises in the record check, 500.
        ("api", "ValueError", "ddi/ipam/validate.py", "_u16"),
        # An option value of 5,000 digits: int() raises inside the transfer (issue 12 #1).
        ("tftp", "ValueError", "ddi/boot/tftp_session.py", "_int"),
    }
)


def is_known(target: str, crash: Mapping[str, Any]) -> bool:
    kind = str(crash["signature"]).split(" ", 1)[0]
    path = str(crash["where"]).rsplit(":", 1)[0]
    return (target, kind, path, str(crash["function"])) in KNOWN


# --- the regression tests (each fails today) ---------------------------------------------------


def test_tsig_key_name_outside_ascii_is_answered_notauth() -> None:
    """ddi/dns/wire.py (BADKEY reply to a key name it cannot encode)."""
    from dnslib import DNSRecord

    from ddi.dns import tsig
    from ddi.dns.engine import Transport
    from ddi.dns.responder import Reply
    from ddi.dns.wire import Rcode, decode_message
    from ddi.dns.zone import label
    from fuzz.targets import dns

    query = DNSRecord.question(label("site.example"), "AXFR")
    signed, _ = tsig.sign(bytes(query.pack()), dns.KEY, now=dns.NOW)
    forged = signed.replace(b"\x03xfr", b"\x03x\xffr")
    result = dns._responder().respond(forged, dns.SECONDARY, Transport.TCP, dns.NOW)
    assert isinstance(result, Reply)
    assert decode_message(result.data).header.rcode == Rcode.NOTAUTH


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


def test_batch_entry_holding_nan_is_refused() -> None:
    """sync/signing.py ``canonical`` through central/admission.py ``check``."""
    from central.admission import check
    from fuzz.targets import sync
    from sync import protocol

    batch = protocol.make_batch(
        site="edge1", epoch=1, from_seq=1, to_seq=1, entries=[sync._entry(1)], key=sync.SITE_KEY
    )
    image = json.loads(protocol.encode_batch(batch))
    image["entries"][0]["image"]["hostname"] = float("nan")
    decision = check(
        protocol.decode_batch(json.dumps(image).encode()), sync.STATES[1], site="edge1"
    )
    assert isinstance(decision, protocol.Refuse)


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
    from ddi.boot.tftp_session import MAX_BLKSIZE, Opcode, Request, TransferLimits, negotiate

    request = Request(
        opcode=Opcode.RRQ, filename="boot.ipxe", mode="octet", options=(("blksize", "9" * 5000),)
    )
    negotiated = negotiate(request, size=100, limits=TransferLimits())
    assert negotiated.blksize <= MAX_BLKSIZE
