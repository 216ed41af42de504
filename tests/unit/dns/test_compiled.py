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


def test_a_question_name_past_255_octets_is_left_to_the_full_path(eng: Any) -> None:
    name = b"".join(b"\x07aaaaaaa" for _ in range(40)) + b"\x04site\x07example\x00"
    data = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01"
    assert Compiled(eng).answer(data, Transport.UDP) is None


# --- random zones ------------------------------------------------------------------------

LABELS = ["a", "b", "web", "mail", "x-1", "_tcp"]
RECORD_TYPES = {
    "A": st.sampled_from(["198.18.0.5", "198.18.0.6", "198.18.0.7"]),
    "AAAA": st.sampled_from(["2001:db8::1", "2001:db8::2"]),
    "TXT": st.sampled_from(["hello", '"a b" "c"']),
    "MX": st.sampled_from(["10 web.site.example", "20 mail.site.example", "5 other.example"]),
    "SRV": st.sampled_from(["0 5 389 web.site.example", "1 1 53 b.a.site.example"]),
    "CNAME": st.sampled_from(["web.site.example", "elsewhere.example", "a.site.example"]),
    "NS": st.sampled_from(["ns.a.site.example"]),
    "PTR": st.sampled_from(["web.site.example"]),
}
zone_names = st.lists(st.sampled_from(LABELS), min_size=0, max_size=3).map(
    lambda parts: ".".join([*parts, "site.example"])
)
records = st.lists(
    st.tuples(zone_names, st.sampled_from(sorted(RECORD_TYPES)), st.data()), max_size=8
)
hosts = st.lists(
    st.tuples(st.sampled_from(["web", "mail", "a", "db"]), st.integers(2, 40)), max_size=5
)


def _mixed_case(name: str, flips: int) -> str:
    return "".join(c.upper() if (flips >> (i % 16)) & 1 else c for i, c in enumerate(name))


def _questions(draw: Any) -> list[tuple[str, str, int | None, bool]]:
    names = st.one_of(
        zone_names,
        st.sampled_from(["10.0.18.198.in-addr.arpa", "99.0.18.198.in-addr.arpa", "x.example"]),
    )
    return [
        (
            _mixed_case(draw(names), draw(st.integers(0, 0xFFFF))),
            draw(st.sampled_from([*RECORD_TYPES, "SOA", "ANY", "CAA"])),
            draw(st.sampled_from([None, 512, 1232, 4096])),
            draw(st.booleans()),
        )
        for _ in range(12)
    ]


def _records(h: Any, draw: Any, picked: list[tuple[str, str, Any]]) -> list[Any]:
    out = []
    for i, (name, rtype, data) in enumerate(picked):
        value = data.draw(RECORD_TYPES[rtype])
        out.append(h.record(name, rtype, value, rid=f"r{i}", ttl=draw(st.sampled_from([None, 60]))))
    return out


def _canonical(compiled: Compiled) -> dict[bytes, Any]:
    """The table with each value's meta byte replaced by what it stands for (the numbering
    depends on the order the shapes were first met)."""

    def value(v: bytes) -> Any:
        if not v:
            return v
        return v[:-1], compiled.heads[v[-1]], compiled.labels[v[-1]]

    return {
        k: {t: value(x) for t, x in v.items()} if isinstance(v, dict) else value(v)
        for k, v in compiled.table.items()
    }


def _check_all(compiled: Compiled, eng: Any, questions: Any) -> None:
    for name, qtype, edns, rd in questions:
        for transport in (Transport.UDP, Transport.TCP):
            same(compiled, eng, question(name, qtype, edns=edns, rd=rd), transport)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    max_examples=80,
    deadline=None,
)
@given(st.data(), hosts, records, hosts, records)
def test_random_zones_and_changes_compile_to_the_full_paths_answers(
    h: Any, data: Any, first_hosts: Any, first_records: Any, more_hosts: Any, more_records: Any
) -> None:
    draw = data.draw
    view = h.FakeView(
        subnet_list=[h.subnet()],
        host_list=[h.host(name, f"198.18.0.{ip}") for name, ip in dict(first_hosts).items()],
        record_list=_records(h, draw, first_records),
    )
    try:
        z = h.zones(view)
    except Exception:  # noqa: BLE001 - an index the store would refuse (a duplicate address)
        return
    eng = h.engine(z, forwarding=draw(st.booleans()))
    compiled = Compiled(eng)
    _check_all(compiled, eng, _questions(draw))
    # Changes: hosts added or moved, records added and deleted, one batch at a time.
    batches: list[list[Any]] = []
    for name, ip in more_hosts:
        if any(host.ip == IPv4Address(f"198.18.0.{ip}") for host in view.host_list):
            continue
        batches.append([h.change(h.host(name, f"198.18.0.{ip}"))])
    for record in _records(h, draw, more_records):
        batches.append(
            [h.change(h.record(record.name, record.rtype, record.value, rid="n" + record.id))]
        )
    for record in view.record_list[: draw(st.integers(0, len(view.record_list)))]:
        batches.append([h.change(record, h.Op.DELETE)])
    for batch in batches:
        try:
            result = h.apply(z, batch)
        except Exception:  # noqa: BLE001 - a change the index refuses
            continue
        compiled.update(result)
    _check_all(compiled, eng, _questions(draw))
    # The table after the changes is the table a fresh build makes.
    fresh = Compiled(eng)
    assert _canonical(compiled) == _canonical(fresh)
    assert compiled.negatives == fresh.negatives
