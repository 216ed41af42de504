"""The bytes-to-bytes fast path gives exactly the reply the full engine gives, or declines."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest
from dnslib import EDNS0, DNSLabel, DNSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddi.dns.engine import LOCAL, Answer, Client, Reason, Transport, qtype_label
from ddi.dns.wire import decode_message, encode_message
from ddi.dns.zone import label

CLIENT = Client(address=IPv4Address("198.18.0.77"))
NAMES = [
    "web.site.example",
    "WEB.Site.example",
    "www.site.example",
    "site.example",
    "ns.site.example",
    "nope.site.example",
    "a.b.nope.site.example",
    "deep.site.example",
    "x.sub.site.example",
    "10.0.18.198.in-addr.arpa",
    "99.0.18.198.in-addr.arpa",
    "0.18.198.in-addr.arpa",
    "elsewhere.example",
]
TYPES = ["A", "AAAA", "PTR", "TXT", "SOA", "NS", "MX", "CNAME", "SRV", "ANY", "CAA"]


@pytest.fixture
def eng(h: Any) -> Any:
    view = h.FakeView(
        subnet_list=[h.subnet()],
        host_list=[h.host("web", "198.18.0.10")],
        record_list=[
            h.record("www.site.example", "CNAME", "web.site.example"),
            h.record("web.site.example", "TXT", "hello"),
            h.record("a.b.deep.site.example", "TXT", "deep"),
            h.record("sub.site.example", "NS", "ns.sub.site.example"),
        ],
    )
    return h.engine(h.zones(view))


def _same(eng: Any, data: bytes, transport: Transport) -> None:
    fast = eng.resolve_wire(data, transport)
    full = eng.resolve(decode_message(data), client=CLIENT, transport=transport)
    if fast is None:
        return
    assert isinstance(full, Answer)
    assert fast.reason is full.reason
    expected = encode_message(full.message, max_size=full.max_size)
    got = decode_message(fast.data)
    want = decode_message(expected)
    assert str(got).lower() == str(want).lower()
    assert got.header.bitmap == want.header.bitmap
    assert got.questions[0].qname.label == want.questions[0].qname.label  # case kept


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(
    st.sampled_from(NAMES),
    st.sampled_from(TYPES),
    st.sampled_from([None, 0, 512, 1232, 4096]),
    st.booleans(),
    st.sampled_from([Transport.UDP, Transport.TCP]),
)
def test_fast_path_matches_the_engine(
    eng: Any, name: str, qtype: str, edns: int | None, rd: bool, transport: Transport
) -> None:
    q = DNSRecord.question(label(name), qtype)
    q.header.rd = int(rd)
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns))
    _same(eng, q.pack(), transport)


def test_fast_path_answers_the_common_cases(eng: Any) -> None:
    for name, qtype, reason in [
        ("web.site.example", "A", Reason.ANSWER),
        ("nope.site.example", "A", Reason.NXDOMAIN),
        ("web.site.example", "AAAA", Reason.NODATA),
        ("b.deep.site.example", "A", Reason.NODATA),
        ("10.0.18.198.in-addr.arpa", "PTR", Reason.ANSWER),
    ]:
        got = eng.resolve_wire(DNSRecord.question(label(name), qtype).pack(), Transport.UDP)
        assert got is not None
        assert got.reason is reason


def test_fast_path_declines_what_it_does_not_do(eng: Any) -> None:
    for name, qtype in [
        ("www.site.example", "A"),  # CNAME chase
        ("x.sub.site.example", "A"),  # below a zone cut
        ("site.example", "MX"),  # additional section
        ("elsewhere.example", "A"),  # not local
        ("site.example", "ANY"),
    ]:
        assert (
            eng.resolve_wire(DNSRecord.question(label(name), qtype).pack(), Transport.UDP) is None
        )
    q = DNSRecord.question(label("web.site.example"))
    q.add_ar(EDNS0(udp_len=1232, version=1))
    assert eng.resolve_wire(q.pack(), Transport.UDP) is None
    q = DNSRecord.question(label("web.site.example"))
    q.header.opcode = 4
    assert eng.resolve_wire(q.pack(), Transport.UDP) is None


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=80))
def test_fast_path_never_raises(eng: Any, data: bytes) -> None:
    header = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    eng.resolve_wire(header + data, Transport.UDP)
    eng.resolve_wire(data, Transport.TCP)


HEADER = bytes.fromhex("abcd01000001000000000000")


@pytest.mark.parametrize(
    "body",
    [
        b"\xc0\x0c\x00\x01\x00\x01",  # a compression pointer in the question
        b"\x03web\x04site",  # the name runs off the end
        b"\x03web\x04site\x07example\x00\x00",  # no room for type and class
        b"\x03web\x04site\x07example\x00\x00\x01\x00\x01" + b"\x00\x00\x29",  # stray bytes
    ],
)
def test_fast_path_declines_odd_wire(eng: Any, body: bytes) -> None:
    assert eng.resolve_wire(HEADER + body, Transport.UDP) is None


def test_fast_path_declines_a_short_opt(eng: Any) -> None:
    data = bytes.fromhex("abcd01000001000000000001") + b"\x03web\x04site\x07example\x00"
    assert eng.resolve_wire(data + b"\x00\x01\x00\x01" + b"\x00\x00\x29", Transport.UDP) is None


def test_fast_path_sets_ra_when_forwarding(h: Any) -> None:
    eng = h.engine(h.zones(), forwarding=True)
    got = eng.resolve_wire(DNSRecord.question(label("ns.site.example")).pack(), Transport.UDP)
    assert got is not None
    assert decode_message(got.data).header.ra == 1


def test_fast_path_leaves_truncation_to_the_engine(h: Any) -> None:
    records = [
        h.record("big.site.example", "TXT", f'"{chr(97 + i) * 200}"', rid=f"t{i}") for i in range(5)
    ]
    eng = h.engine(h.zones(h.FakeView(subnet_list=[h.subnet()], record_list=records)))
    query = DNSRecord.question(label("big.site.example"), "TXT").pack()
    assert eng.resolve_wire(query, Transport.UDP) is None
    assert eng.resolve_wire(query, Transport.TCP) is not None


def test_names_with_dots_or_non_ascii_in_a_label_match_nothing(eng: Any) -> None:
    for labels in [(b"web.site", b"example"), (b"w\xe9b", b"site", b"example")]:
        q = DNSRecord.question(label("x.example"))
        q.questions[0].qname = DNSLabel(labels)
        d = eng.resolve(q, client=CLIENT, transport=Transport.UDP)
        assert d.reason is Reason.REFUSED_NOT_LOCAL


def test_opt_as_question_type_is_formerr(eng: Any) -> None:
    q = DNSRecord.question(label("web.site.example"))
    q.questions[0].qtype = 41
    assert eng.resolve(q, client=CLIENT, transport=Transport.UDP).reason is Reason.FORMERR


def test_local_caller_may_recurse(h: Any) -> None:
    eng = h.engine(h.zones(), forwarding=True)
    q = DNSRecord.question(label("www.elsewhere.example"))
    assert eng.resolve(q, client=LOCAL, transport=Transport.UDP).reason is Reason.FORWARD


def test_cname_into_a_delegation_answers_then_refers(h: Any) -> None:
    view = h.FakeView(
        subnet_list=[h.subnet()],
        record_list=[
            h.record("alias.site.example", "CNAME", "host.sub.site.example"),
            h.record("sub.site.example", "NS", "ns1.elsewhere.example"),
        ],
    )
    eng = h.engine(h.zones(view))
    d = eng.resolve(
        DNSRecord.question(label("alias.site.example")), client=CLIENT, transport=Transport.UDP
    )
    assert d.reason is Reason.ANSWER
    assert d.message.header.aa == 1
    assert [str(rr.rdata) for rr in d.message.auth] == ["ns1.elsewhere.example."]


def test_qtype_labels_are_bounded() -> None:
    assert qtype_label(1) == "A"
    assert qtype_label(65280) == "other"
