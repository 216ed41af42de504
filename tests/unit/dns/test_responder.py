"""The responder: one path from bytes to a reply, a forward, a transfer or a drop."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

import pytest
from dnslib import QTYPE, RR, A, DNSRecord

from ddi.dns import tsig
from ddi.dns.acl import Acl
from ddi.dns.cache import AnswerCache
from ddi.dns.engine import LOCAL, Client, Reason, Transport
from ddi.dns.responder import Drop, Forward, Reply, Responder, Transfer
from ddi.dns.wire import QType, Rcode, TsigError, decode_message
from ddi.dns.zone import label

UDP, TCP = Transport.UDP, Transport.TCP
NOW = 1_800_000_000.0
KEY = tsig.TsigKey(name="xfr.site.example", secret=b"0123456789abcdef0123456789abcdef")
SITE = Client(peer="198.18.0.77", address=IPv4Address("198.18.0.77"))
OUTSIDE = Client(peer="203.0.113.9", address=IPv4Address("203.0.113.9"))
SECONDARY = Client(peer="198.18.0.2", address=IPv4Address("198.18.0.2"))


@pytest.fixture
def responder(h: Any) -> Responder:
    view = h.FakeView(
        subnet_list=[h.subnet()],
        host_list=[h.host("web", "198.18.0.10")],
        record_list=[h.record("www.site.example", "CNAME", "web.site.example")],
    )
    engine = h.engine(
        h.zones(view),
        forwarding=True,
        recursion_from=Acl.of([IPv4Network("198.18.0.0/24"), IPv6Network("2001:db8:5::/48")]),
        allow_transfer=Acl.of([IPv4Network("198.18.0.2/32")]),
    )
    return Responder(engine, {KEY.name: KEY}, AnswerCache(100))


def query(name: str, qtype: str = "A", msg_id: int = 7) -> bytes:
    q = DNSRecord.question(label(name), qtype)
    q.header.id = msg_id
    return bytes(q.pack())


def test_a_zone_answer_comes_compiled_without_decoding(responder: Responder) -> None:
    first = responder.respond(query("web.site.example", msg_id=1), SITE, UDP, NOW)
    assert isinstance(first, Reply)
    assert (first.qtype, first.rcode, first.decision, first.cached) == ("A", "NOERROR", None, True)
    assert decode_message(first.data).header.id == 1
    second = responder.respond(query("nope.site.example", "AAAA", msg_id=2), SITE, TCP, NOW)
    assert isinstance(second, Reply)
    assert (second.qtype, second.rcode, second.cached) == ("AAAA", "NXDOMAIN", True)
    assert responder.decoded == 0
    assert len(responder.cache) == 0  # the answer cache holds only what the engine answers


def test_the_full_path_answers_what_the_compiled_answers_leave(responder: Responder) -> None:
    result = responder.respond(query("www.site.example"), SITE, UDP, NOW)
    assert isinstance(result, Reply)
    assert not result.cached
    assert responder.decoded == 1
    reply = decode_message(result.data)
    assert [str(rr.rdata) for rr in reply.rr] == ["web.site.example.", "198.18.0.10"]
    assert responder.respond(query("www.site.example", msg_id=8), SITE, UDP, NOW) == Reply(
        data=b"\x00\x08" + result.data[2:], qtype="A", rcode="NOERROR", cached=True
    )


def test_short_message_is_dropped(responder: Responder) -> None:
    assert responder.respond(b"\x00\x01\x00", SITE, UDP, NOW) == Drop(Reason.SHORT_HEADER)


def test_unreadable_query_is_formerr_and_unreadable_response_is_dropped(
    responder: Responder,
) -> None:
    garbage = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff"
    result = responder.respond(garbage, SITE, UDP, NOW)
    assert isinstance(result, Reply)
    assert result.decision is Reason.FORMERR
    assert decode_message(result.data).header.rcode == Rcode.FORMERR
    response = garbage[:2] + b"\x81" + garbage[3:]
    assert responder.respond(response, SITE, UDP, NOW) == Drop(Reason.NOT_QUERY)


def test_a_response_that_parses_is_dropped_by_the_engine(responder: Responder) -> None:
    data = bytearray(query("web.site.example"))
    data[2] |= 0x80
    result = responder.respond(bytes(data), SITE, UDP, NOW)
    assert result == Drop(Reason.NOT_QUERY, decision=Reason.NOT_QUERY)


def test_outside_name_is_forwarded_and_finished(responder: Responder) -> None:
    result = responder.respond(query("www.elsewhere.example"), SITE, UDP, NOW)
    assert isinstance(result, Forward)
    assert result.qtype == "A"
    assert result.max_size == 512
    failed = result.finish(None)
    servfail = decode_message(failed.data)
    assert servfail.header.rcode == Rcode.SERVFAIL
    assert servfail.header.id == 7
    assert str(servfail.q.qname) == "www.elsewhere.example."
    assert (failed.qtype, failed.rcode) == ("A", "SERVFAIL")
    upstream = decode_message(query("www.elsewhere.example")).reply()
    upstream.add_answer(RR(label("www.elsewhere.example"), QTYPE.A, rdata=A("192.0.2.1")))
    answered = result.finish(upstream)
    assert [str(rr.rdata) for rr in decode_message(answered.data).rr] == ["192.0.2.1"]
    assert (answered.qtype, answered.rcode) == ("A", "NOERROR")


def test_recursion_needs_a_client_in_recursion_from_or_a_trusted_one(
    responder: Responder,
) -> None:
    refused = responder.respond(query("www.elsewhere.example"), OUTSIDE, UDP, NOW)
    assert isinstance(refused, Reply)
    assert refused.decision is Reason.REFUSED_CLIENT
    assert isinstance(responder.respond(query("a.elsewhere.example"), LOCAL, UDP, NOW), Forward)


def test_client_of_a_peer_address() -> None:
    assert Client.of_peer(("198.18.0.77", 5353)) == SITE
    six = Client.of_peer(("::1", 5353, 0, 0))
    assert (six.peer, six.address, six.trusted) == ("::1", IPv6Address("::1"), False)
    mapped = Client.of_peer(("::ffff:198.18.0.77", 5353, 0, 0))
    assert (mapped.address, mapped.trusted) == (IPv4Address("198.18.0.77"), False)
    scoped = Client.of_peer(("fe80::1%eth0", 5353, 0, 2))
    assert (scoped.address, scoped.trusted) == (IPv6Address("fe80::1"), False)
    for unreadable in (None, (), ("not-an-address", 1)):
        client = Client.of_peer(unreadable)
        assert (client.address, client.trusted) == (None, False)
    assert LOCAL.trusted


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        (("203.0.113.9", 5353), False),
        (("::ffff:203.0.113.9", 5353, 0, 0), False),  # an IPv4 peer on a dual-stack socket
        (("2001:db8:99::1", 5353, 0, 0), False),
        (("::1", 5353, 0, 0), False),  # loopback only when recursion_from lists it
        (("::ffff:198.18.0.77", 5353, 0, 0), True),
        (("2001:db8:5::77", 5353, 0, 0), True),
        (("198.18.0.77", 5353), True),
    ],
)
def test_recursion_acl_is_applied_to_ipv6_and_v4_mapped_peers(
    responder: Responder, peer: Any, allowed: bool
) -> None:
    result = responder.respond(query("www.elsewhere.example"), Client.of_peer(peer), UDP, NOW)
    if allowed:
        assert isinstance(result, Forward)
    else:
        assert isinstance(result, Reply)
        assert result.decision is Reason.REFUSED_CLIENT


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        (("::ffff:198.18.0.2", 5353, 0, 0), True),
        (("::ffff:203.0.113.9", 5353, 0, 0), False),
        (("2001:db8:5::2", 5353, 0, 0), False),
    ],
)
def test_transfer_acl_is_applied_to_ipv6_and_v4_mapped_peers(
    responder: Responder, peer: Any, allowed: bool
) -> None:
    result = responder.respond(query("site.example", "AXFR"), Client.of_peer(peer), TCP, NOW)
    if allowed:
        assert isinstance(result, Transfer)
    else:
        assert isinstance(result, Reply)
        assert result.decision is Reason.REFUSED_TRANSFER


def test_transfer_over_tcp_to_an_allowed_peer_streams_the_zone(responder: Responder) -> None:
    result = responder.respond(query("site.example", "AXFR"), SECONDARY, TCP, NOW)
    assert isinstance(result, Transfer)
    assert (result.kind, result.key_name) == ("axfr", None)
    records = [rr for wire in result.messages() for rr in decode_message(wire).rr]
    assert records[0].rtype == records[-1].rtype == QType.SOA
    assert len(records) > 2


def test_transfer_is_refused_to_others_and_over_udp(responder: Responder) -> None:
    refused = responder.respond(query("site.example", "AXFR"), SITE, TCP, NOW)
    assert isinstance(refused, Reply)
    assert refused.decision is Reason.REFUSED_TRANSFER
    # A trusted client may recurse, but transfers still need its address or TSIG.
    assert isinstance(responder.respond(query("site.example", "AXFR"), LOCAL, TCP, NOW), Reply)
    udp = responder.respond(query("site.example", "AXFR", msg_id=9), SECONDARY, UDP, NOW)
    assert isinstance(udp, Reply)
    assert udp.decision is Reason.TRANSFER_UDP


def test_signed_query_gets_a_signed_reply_never_cached(responder: Responder) -> None:
    signed, mac = tsig.sign(query("web.site.example"), KEY, now=NOW)
    result = responder.respond(signed, OUTSIDE, UDP, NOW + 1)
    assert isinstance(result, Reply)
    check = tsig.verify(result.data, {KEY.name: KEY}, now=NOW + 1, request_mac=mac)
    assert isinstance(check, tsig.Verified)
    assert len(responder.cache) == 0
    transfer = responder.respond(
        tsig.sign(query("site.example", "AXFR"), KEY, now=NOW)[0], OUTSIDE, TCP, NOW
    )
    assert isinstance(transfer, Transfer)
    assert transfer.key_name == KEY.name


def test_bad_signature_is_notauth_with_the_failure(responder: Responder) -> None:
    other = tsig.TsigKey(name=KEY.name, secret=b"x" * 32)
    signed, _ = tsig.sign(query("web.site.example"), other, now=NOW)
    result = responder.respond(signed, SITE, UDP, NOW)
    assert isinstance(result, Reply)
    assert result.tsig_failure is not None
    assert result.tsig_failure.error is TsigError.BADSIG
    assert decode_message(result.data).header.rcode == Rcode.NOTAUTH
    assert (result.qtype, result.decision) == (None, None)


@pytest.mark.parametrize("byte", [b"\xe9", b"\xff", b"\x00", b"."])
def test_a_tsig_key_name_with_a_non_ascii_byte_gets_badkey(
    responder: Responder, byte: bytes
) -> None:
    signed, _ = tsig.sign(query("site.example", "SOA"), KEY, now=NOW)
    at = signed.rindex(KEY.name.split(".")[0].encode()) + 1
    odd = signed[:at] + byte + signed[at + 1 :]
    result = responder.respond(odd, SECONDARY, UDP, NOW)
    assert isinstance(result, Reply)
    assert result.tsig_failure is not None
    assert result.tsig_failure.error is TsigError.BADKEY
    assert result.data[3] & 0x0F == Rcode.NOTAUTH
    record = tsig.find_tsig(result.data)
    assert record is not None
    assert (record.error, record.mac) == (TsigError.BADKEY, b"")


def test_a_signed_transfer_request_is_accepted_once(responder: Responder) -> None:
    signed, _ = tsig.sign(query("site.example", "AXFR"), KEY, now=NOW)
    first = responder.respond(signed, OUTSIDE, TCP, NOW + 1)
    assert isinstance(first, Transfer)
    assert first.key_name == KEY.name
    again = responder.respond(signed, OUTSIDE, TCP, NOW + 2)  # inside the 300 s fudge window
    assert isinstance(again, Reply)
    assert again.decision is Reason.TSIG_REPLAY
    assert again.data[3] & 0x0F == Rcode.REFUSED
    # A fresh signature for the same transfer is another request.
    fresh, _ = tsig.sign(query("site.example", "AXFR"), KEY, now=NOW + 3)
    assert isinstance(responder.respond(fresh, OUTSIDE, TCP, NOW + 3), Transfer)


def test_the_replay_cache_is_bounded_and_forgets_closed_windows() -> None:
    replays = tsig.ReplayCache(capacity=3)
    signed = [tsig.sign(query("site.example", "AXFR", i), KEY, now=NOW)[0] for i in range(5)]
    checks = [tsig.verify(s, {KEY.name: KEY}, now=NOW) for s in signed]
    verified = [c for c in checks if isinstance(c, tsig.Verified)]
    assert len(verified) == 5
    assert not any(replays.replayed(v, NOW) for v in verified)
    assert len(replays) == 3
    assert replays.replayed(verified[4], NOW + 1)
    assert not replays.replayed(verified[4], NOW + 301)  # outside the window: BADTIME's job
    assert len(replays) == 1


@pytest.mark.parametrize(
    "name",
    [
        b"\x41" + b"a" * 65 + b"\x00",
        b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00",
        # Many short labels past 255 octets, the shape the fuzzer found.
        b"\x05_ldap\x04_tcp\x04site" + b"\x03exe" * 62 + b"\x00",
    ],
    ids=["label-65", "name-257", "labels-263"],
)
@pytest.mark.parametrize("client", [SITE, OUTSIDE, SECONDARY])
def test_a_question_name_over_the_rfc_1035_limits_is_formerr(
    responder: Responder, name: bytes, client: Client
) -> None:
    """RFC 1035 §2.3.4: labels of 63 octets or less, names of 255 or less. Such a question
    used to decode, be forwarded, and raise DNSLabelError building the SERVFAIL or the
    forwarded query."""
    data = bytes.fromhex("abcd01000001000000000000") + name + b"\x00\x01\x00\x01"
    result = responder.respond(data, client, UDP, NOW)
    assert isinstance(result, Reply)
    assert result.decision is Reason.FORMERR
    reply = decode_message(result.data)
    assert (reply.header.id, reply.header.rcode, reply.header.qr) == (0xABCD, Rcode.FORMERR, 1)
