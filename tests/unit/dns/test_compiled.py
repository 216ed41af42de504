"""The compiled answers are, byte for byte, the replies of the full path (engine + dnslib
encoding), or they decline and the full path answers."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest
from dnslib import EDNS0, DNSRecord, EDNSOption
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddi.dns.compiled import Compiled
from ddi.dns.engine import Answer, Client, Transport
from ddi.dns.wire import decode_message, encode_message
from ddi.dns.zone import label

CLIENT = Client(address=IPv4Address("198.18.0.77"))
NAMES = [
    "web.site.example",
    "WEB.Site.example",
    "www.site.example",
    "site.example",
    "SITE.EXAMPLE",
    "ns.site.example",
    "mail.site.example",
    "_ldap._tcp.site.example",
    "nope.site.example",
    "a.b.nope.site.example",
    "deep.site.example",
    "b.deep.site.example",
    "x.sub.site.example",
    "sub.site.example",
    "10.0.18.198.in-addr.arpa",
    "10.0.18.198.IN-ADDR.ARPA",
    "99.0.18.198.in-addr.arpa",
    "0.18.198.in-addr.arpa",
    "elsewhere.example",
]
TYPES = ["A", "AAAA", "PTR", "TXT", "SOA", "NS", "MX", "CNAME", "SRV", "ANY", "CAA", "AXFR"]


def make_view(h: Any) -> Any:
    return h.FakeView(
        subnet_list=[h.subnet()],
        host_list=[h.host("web", "198.18.0.10"), h.host("mail", "198.18.0.11")],
        record_list=[
            h.record("www.site.example", "CNAME", "web.site.example"),
            h.record("web.site.example", "TXT", "hello"),
            h.record("web.site.example", "AAAA", "2001:db8::10"),
            h.record("site.example", "MX", "10 mail.site.example"),
            h.record("_ldap._tcp.site.example", "SRV", "0 5 389 web.site.example"),
            h.record("a.b.deep.site.example", "TXT", "deep"),
            h.record("sub.site.example", "NS", "ns.sub.site.example"),
        ],
    )


@pytest.fixture
def eng(h: Any) -> Any:
    return h.engine(h.zones(make_view(h)))


def full(eng: Any, data: bytes, transport: Transport) -> bytes | None:
    """The full path's reply bytes (None when it would not answer from the zones)."""
    decision = eng.resolve(decode_message(data), client=CLIENT, transport=transport)
    if not isinstance(decision, Answer):
        return None
    return encode_message(decision.message, max_size=decision.max_size)


def same(compiled: Compiled, eng: Any, data: bytes, transport: Transport) -> bytes | None:
    """Check the compiled reply equals the full path's; the compiled bytes (or None)."""
    got = compiled.answer(data, transport)
    if got is None:
        return None
    assert got[0] == full(eng, data, transport)
    return got[0]


def question(name: str, qtype: str = "A", *, edns: int | None = None, rd: bool = True) -> bytes:
    q = DNSRecord.question(label(name), qtype)
    q.header.id = 0x1234
    q.header.rd = int(rd)
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns))
    return bytes(q.pack())
    # label() lower-cases nothing: keep the case the test asked for.


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=400)
@given(
    st.sampled_from(NAMES),
    st.sampled_from(TYPES),
    st.sampled_from([None, 0, 512, 1232, 4096]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([Transport.UDP, Transport.TCP]),
)
def test_compiled_matches_the_full_path(
    eng: Any, name: str, qtype: str, edns: int | None, rd: bool, cd: bool, transport: Transport
) -> None:
    compiled = Compiled(eng)
    q = DNSRecord.question(label(name), qtype)
    q.header.rd = int(rd)
    q.header.cd = int(cd)
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns))
    same(compiled, eng, bytes(q.pack()), transport)


@pytest.mark.parametrize(
    ("name", "qtype", "rcode", "answers"),
    [
        ("web.site.example", "A", "NOERROR", 1),
        ("WeB.SiTe.ExAmPlE", "A", "NOERROR", 1),
        ("web.site.example", "AAAA", "NOERROR", 1),
        ("web.site.example", "TXT", "NOERROR", 1),
        ("www.site.example", "CNAME", "NOERROR", 1),
        ("site.example", "MX", "NOERROR", 1),
        ("site.example", "NS", "NOERROR", 1),
        ("site.example", "SOA", "NOERROR", 1),
        ("_ldap._tcp.site.example", "SRV", "NOERROR", 1),
        ("10.0.18.198.in-addr.arpa", "PTR", "NOERROR", 1),
        ("mail.site.example", "AAAA", "NOERROR", 0),  # NODATA
        ("b.deep.site.example", "A", "NOERROR", 0),  # empty non-terminal
        ("nope.site.example", "A", "NXDOMAIN", 0),
        ("99.0.18.198.In-Addr.Arpa", "PTR", "NXDOMAIN", 0),
    ],
)
def test_compiled_answers_every_kind_of_zone_question(
    eng: Any, name: str, qtype: str, rcode: str, answers: int
) -> None:
    compiled = Compiled(eng)
    for edns in (None, 1232):
        data = question(name, qtype, edns=edns)
        got = same(compiled, eng, data, Transport.UDP)
        assert got is not None, (name, qtype)
        reply = decode_message(got)
        assert reply.header.id == 0x1234
        assert reply.header.aa == 1
        assert reply.header.rd == 1
        assert reply.questions[0].qname.label == label(name).label  # the client's case
        assert len(reply.rr) == answers
        assert compiled.answer(data, Transport.UDP)[1] == (qtype, rcode)  # type: ignore[index]
        if rcode == "NXDOMAIN" or not answers:
            assert [rr.rtype for rr in reply.auth] == [6]  # the SOA (RFC 2308)
        assert (edns is not None) == any(rr.rtype == 41 for rr in reply.ar)


def test_additional_section_is_compiled(eng: Any) -> None:
    compiled = Compiled(eng)
    got = same(compiled, eng, question("site.example", "MX"), Transport.UDP)
    assert got is not None
    reply = decode_message(got)
    assert [str(rr.rname) for rr in reply.ar] == ["mail.site.example."]


@pytest.mark.parametrize(
    ("name", "qtype"),
    [
        ("www.site.example", "A"),  # CNAME chase
        ("x.sub.site.example", "A"),  # below a zone cut
        ("sub.site.example", "NS"),  # at a zone cut: a referral
        ("elsewhere.example", "A"),  # not local
        ("site.example", "ANY"),
        ("site.example", "AXFR"),
    ],
)
def test_compiled_declines_what_the_full_path_decides(eng: Any, name: str, qtype: str) -> None:
    assert Compiled(eng).answer(question(name, qtype), Transport.UDP) is None


def test_compiled_declines_other_messages(eng: Any) -> None:
    compiled = Compiled(eng)
    q = DNSRecord.question(label("web.site.example"))
    q.add_ar(EDNS0(udp_len=1232, version=1))  # BADVERS
    assert compiled.answer(bytes(q.pack()), Transport.UDP) is None
    q = DNSRecord.question(label("web.site.example"))
    q.header.opcode = 4  # NOTIFY
    assert compiled.answer(bytes(q.pack()), Transport.UDP) is None
    data = question("web.site.example")
    assert compiled.answer(data[:-2] + b"\x00\xff", Transport.UDP) is None  # class ANY
    assert compiled.answer(data + b"\x00", Transport.UDP) is None  # trailing bytes
    assert compiled.answer(data[:-1], Transport.UDP) is None  # cut short
    # A compressed question name (pointing into itself is invalid, but it must not match).
    assert compiled.answer(data[:12] + b"\xc0\x0c\x00\x01\x00\x01", Transport.UDP) is None


def test_edns_options_are_read_like_the_full_path(eng: Any) -> None:
    compiled = Compiled(eng)
    q = DNSRecord.question(label("web.site.example"))
    q.add_ar(EDNS0(udp_len=4096, opts=[EDNSOption(10, b"\x01" * 8)]))  # a client cookie
    got = same(compiled, eng, bytes(q.pack()), Transport.UDP)
    assert got is not None
    reply = decode_message(got)
    opt = [rr for rr in reply.ar if rr.rtype == 41]
    assert opt[0].rclass == 1232  # our payload size, no options echoed
    assert opt[0].rdata == []
    data = bytearray(q.pack())
    data[-9] = 0x20  # the option's length runs past the RDATA: FORMERR on the full path
    assert compiled.answer(bytes(data), Transport.UDP) is None


def test_oversize_udp_answer_is_left_to_truncation(h: Any) -> None:
    view = h.FakeView(
        subnet_list=[h.subnet()],
        record_list=[h.record("big.site.example", "TXT", "x" * 200, rid=f"r{i}") for i in range(3)]
        + [h.record("big.site.example", "TXT", f"{i}" * 200, rid=f"s{i}") for i in range(3)],
    )
    eng = h.engine(h.zones(view))
    compiled = Compiled(eng)
    data = question("big.site.example", "TXT")
    assert compiled.answer(data, Transport.UDP) is None
    assert decode_message(full(eng, data, Transport.UDP)).header.tc == 1  # type: ignore[arg-type]
    assert same(compiled, eng, data, Transport.TCP) is not None
    assert same(compiled, eng, question("big.site.example", "TXT", edns=4096), Transport.UDP)


def test_forwarding_sets_ra(h: Any) -> None:
    eng = h.engine(h.zones(make_view(h)), forwarding=True)
    got = same(Compiled(eng), eng, question("web.site.example"), Transport.UDP)
    assert got is not None
    assert decode_message(got).header.ra == 1


def test_changes_recompile_only_what_they_touch(h: Any) -> None:
    z = h.zones(make_view(h))
    eng = h.engine(z)
    compiled = Compiled(eng)
    before = compiled.answer(question("nope.site.example"), Transport.UDP)
    apex_soa = compiled.answer(question("site.example", "SOA"), Transport.UDP)
    web = compiled.table[b"\x03web\x04site\x07example\x00"]

    result = h.apply(z, [h.change(h.host("nope", "198.18.0.20"))])
    compiled.update(result)
    assert compiled.table[b"\x03web\x04site\x07example\x00"] is web  # untouched
    got = same(compiled, eng, question("nope.site.example"), Transport.UDP)
    assert got is not None
    assert str(decode_message(got).rr[0].rdata) == "198.18.0.20"
    assert same(compiled, eng, question("20.0.18.198.in-addr.arpa", "PTR"), Transport.UDP)
    # The serial moved: the apex SOA and every negative answer carry the new one.
    assert compiled.answer(question("site.example", "SOA"), Transport.UDP) != apex_soa
    assert same(compiled, eng, question("site.example", "SOA"), Transport.UDP)
    nx = same(compiled, eng, question("other.site.example"), Transport.UDP)
    assert nx is not None
    assert before is not None
    assert nx != before[0]
    assert same(compiled, eng, question("99.0.18.198.in-addr.arpa", "PTR"), Transport.UDP)

    # A deep name makes empty non-terminals; removing it takes them away again.
    deep = h.record("q.r.s.site.example", "TXT", "deep", rid="deep")
    compiled.update(h.apply(z, [h.change(deep)]))
    got = same(compiled, eng, question("r.s.site.example", "TXT"), Transport.UDP)
    assert got is not None
    assert decode_message(got).header.rcode == 0
    compiled.update(h.apply(z, [h.change(deep, h.Op.DELETE)]))
    got = same(compiled, eng, question("r.s.site.example", "TXT"), Transport.UDP)
    assert got is not None
    assert decode_message(got).header.rcode == 3

    # The mail host moves: the apex MX answer's additional address follows it.
    moved = h.host("mail", "198.18.0.12")
    compiled.update(h.apply(z, [h.change(moved)]))
    got = same(compiled, eng, question("site.example", "MX"), Transport.UDP)
    assert got is not None
    assert str(decode_message(got).ar[0].rdata) == "198.18.0.12"

    # A new zone cut: the names below it become referrals.
    cut = h.record("web.site.example", "NS", "ns.web.site.example", rid="cut")
    compiled.update(h.apply(z, [h.change(cut)]))
    assert compiled.answer(question("web.site.example"), Transport.UDP) is None
    assert compiled.answer(question("x.web.site.example"), Transport.UDP) is None
