"""Engine rules: each rcode and section (RFC 1034, 2308, 6891, 8482), sizes and truncation."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any

import pytest
from dnslib import EDNS0, QTYPE, RR, SOA, TXT, DNSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddi.dns.acl import Acl
from ddi.dns.engine import Answer, Client, Drop, Forward, Reason, Transfer, Transport
from ddi.dns.wire import Rcode, decode_message, encode_message
from ddi.dns.zone import label
from ddi.errors import DnsFormatError

UDP, TCP = Transport.UDP, Transport.TCP
SITE_CLIENT = Client(address=IPv4Address("198.18.0.77"))
OUTSIDE_CLIENT = Client(address=IPv4Address("203.0.113.9"))


@pytest.fixture
def eng(h: Any) -> Any:
    view = h.FakeView(
        subnet_list=[h.subnet()],
        host_list=[h.host("web", "198.18.0.10")],
        lease_list=[h.lease("198.18.0.50", "laptop")],
        record_list=[
            h.record("www.site.example", "CNAME", "web.site.example"),
            h.record("loop1.site.example", "CNAME", "loop2.site.example"),
            h.record("loop2.site.example", "CNAME", "loop1.site.example"),
            h.record("away.site.example", "CNAME", "www.elsewhere.example"),
            h.record("site.example", "MX", "10 web.site.example"),
            h.record("_ldap._tcp.site.example", "SRV", "0 5 389 web.site.example"),
            h.record("a.b.deep.site.example", "TXT", "deep"),
            h.record("sub.site.example", "NS", "ns.sub.site.example"),
            h.record("ns.sub.site.example", "A", "198.18.0.53"),
        ],
    )
    return h.engine(
        h.zones(view),
        forwarding=True,
        recursion_from=Acl.of([IPv4Network("198.18.0.0/24"), IPv6Network("2001:db8:5::/48")]),
        allow_transfer=Acl.of([IPv4Network("198.18.0.2/32")]),
    )


def ask(eng: Any, name: str, qtype: str = "A", *, client: Any = SITE_CLIENT, **kw: Any) -> Any:
    q = DNSRecord.question(label(name), qtype)
    return eng.resolve(q, client=client, transport=kw.pop("transport", UDP), **kw)


def answers(decision: Any) -> list[str]:
    return [str(rr.rdata) for rr in decision.message.rr]


def test_reservation_a_is_authoritative(eng: Any) -> None:
    d = ask(eng, "web.site.example")
    assert isinstance(d, Answer)
    assert d.reason is Reason.ANSWER
    assert d.message.header.aa == 1
    assert d.message.header.rcode == Rcode.NOERROR
    assert answers(d) == ["198.18.0.10"]
    assert d.cacheable


def test_question_case_is_kept_and_lookup_is_case_insensitive(eng: Any) -> None:
    d = ask(eng, "WeB.Site.Example")
    assert answers(d) == ["198.18.0.10"]
    assert str(d.message.questions[0].qname) == "WeB.Site.Example."


def test_reservation_and_lease_ptr(eng: Any) -> None:
    assert answers(ask(eng, "10.0.18.198.in-addr.arpa", "PTR")) == ["web.site.example."]
    assert answers(ask(eng, "50.0.18.198.in-addr.arpa", "PTR")) == ["laptop.site.example."]


def test_unknown_name_is_nxdomain_with_soa_in_authority(eng: Any) -> None:
    d = ask(eng, "nope.site.example")
    assert d.reason is Reason.NXDOMAIN
    assert d.message.header.rcode == Rcode.NXDOMAIN
    assert d.message.rr == []
    assert [rr.rtype for rr in d.message.auth] == [QTYPE.SOA]
    assert d.message.header.aa == 1


def test_existing_name_without_type_is_nodata_with_soa(eng: Any) -> None:
    d = ask(eng, "web.site.example", "AAAA")
    assert d.reason is Reason.NODATA
    assert d.message.header.rcode == Rcode.NOERROR
    assert d.message.rr == []
    assert [rr.rtype for rr in d.message.auth] == [QTYPE.SOA]


def test_empty_non_terminal_is_nodata_not_nxdomain(eng: Any) -> None:
    d = ask(eng, "b.deep.site.example", "A")
    assert d.reason is Reason.NODATA
    assert d.message.header.rcode == Rcode.NOERROR


def test_negative_soa_ttl_is_the_minimum(eng: Any) -> None:
    soa = ask(eng, "nope.site.example").message.auth[0]
    assert soa.ttl <= soa.rdata.times[4]


def test_cname_chain_is_followed_inside_the_zone(eng: Any) -> None:
    d = ask(eng, "www.site.example")
    assert [rr.rtype for rr in d.message.rr] == [QTYPE.CNAME, QTYPE.A]
    assert answers(d)[-1] == "198.18.0.10"


def test_cname_query_returns_the_cname_only(eng: Any) -> None:
    d = ask(eng, "www.site.example", "CNAME")
    assert [rr.rtype for rr in d.message.rr] == [QTYPE.CNAME]


def test_cname_loop_stops(eng: Any) -> None:
    d = ask(eng, "loop1.site.example")
    assert [rr.rtype for rr in d.message.rr] == [QTYPE.CNAME, QTYPE.CNAME]
    assert d.message.header.rcode == Rcode.NOERROR


def test_cname_out_of_zone_is_left_to_the_client(eng: Any) -> None:
    d = ask(eng, "away.site.example")
    assert answers(d) == ["www.elsewhere.example."]


def test_mx_and_srv_targets_come_with_addresses(eng: Any) -> None:
    d = ask(eng, "site.example", "MX")
    assert [str(rr.rdata) for rr in d.message.ar] == ["198.18.0.10"]
    d = ask(eng, "_ldap._tcp.site.example", "SRV")
    assert [str(rr.rdata) for rr in d.message.ar] == ["198.18.0.10"]


def test_ns_at_apex_comes_with_glue(eng: Any) -> None:
    d = ask(eng, "site.example", "NS")
    assert answers(d) == ["ns.site.example."]
    assert [str(rr.rdata) for rr in d.message.ar] == ["198.18.0.1"]


def test_below_a_zone_cut_is_a_referral(eng: Any) -> None:
    d = ask(eng, "host.sub.site.example")
    assert d.reason is Reason.REFERRAL
    assert d.message.header.aa == 0
    assert [rr.rtype for rr in d.message.auth] == [QTYPE.NS]
    assert [str(rr.rdata) for rr in d.message.ar] == ["198.18.0.53"]


def test_any_gets_one_rrset(eng: Any) -> None:
    d = ask(eng, "site.example", "ANY")
    assert len({rr.rtype for rr in d.message.rr}) == 1


def test_any_for_unknown_name_is_nxdomain(eng: Any) -> None:
    assert ask(eng, "nope.site.example", "ANY").reason is Reason.NXDOMAIN


def test_outside_name_from_site_client_is_forwarded(eng: Any) -> None:
    assert isinstance(ask(eng, "www.elsewhere.example"), Forward)


def test_outside_name_from_other_client_is_refused(eng: Any) -> None:
    d = ask(eng, "www.elsewhere.example", client=OUTSIDE_CLIENT)
    assert d.reason is Reason.REFUSED_CLIENT
    assert d.message.header.rcode == Rcode.REFUSED
    assert not d.cacheable


def test_outside_name_without_forwarders_is_refused(h: Any) -> None:
    eng = h.engine(h.zones())
    d = ask(eng, "www.elsewhere.example")
    assert d.reason is Reason.REFUSED_NOT_LOCAL
    assert d.message.header.rcode == Rcode.REFUSED
    assert d.message.header.ra == 0


def test_outside_name_without_rd_is_refused(eng: Any) -> None:
    q = DNSRecord.question(label("www.elsewhere.example"))
    q.header.rd = 0
    d = eng.resolve(q, client=SITE_CLIENT, transport=UDP)
    assert d.reason is Reason.REFUSED_NO_RD


def test_local_names_answer_any_client(eng: Any) -> None:
    assert ask(eng, "web.site.example", client=OUTSIDE_CLIENT).reason is Reason.ANSWER


@pytest.mark.parametrize("opcode", [1, 2, 4, 5, 6, 15])
def test_unknown_or_unserved_opcode_is_notimp(eng: Any, opcode: int) -> None:
    q = DNSRecord.question(label("web.site.example"))
    q.header.opcode = opcode
    d = eng.resolve(q, client=SITE_CLIENT, transport=UDP)
    assert d.reason is Reason.NOTIMP
    assert d.message.header.rcode == Rcode.NOTIMP
    assert d.message.header.opcode == opcode


def test_two_questions_is_formerr(eng: Any) -> None:
    q = DNSRecord.question(label("web.site.example"))
    q.add_question(*DNSRecord.question(label("site.example")).questions)
    d = eng.resolve(q, client=SITE_CLIENT, transport=UDP)
    assert d.message.header.rcode == Rcode.FORMERR


def test_no_question_is_formerr(eng: Any) -> None:
    q = DNSRecord()
    d = eng.resolve(q, client=SITE_CLIENT, transport=UDP)
    assert d.message.header.rcode == Rcode.FORMERR


def test_two_opt_records_is_formerr(eng: Any) -> None:
    q = DNSRecord.question(label("web.site.example"))
    q.add_ar(EDNS0(udp_len=1232))
    q.add_ar(EDNS0(udp_len=1232))
    assert eng.resolve(q, client=SITE_CLIENT, transport=UDP).reason is Reason.FORMERR


def test_a_response_is_dropped(eng: Any) -> None:
    q = DNSRecord.question(label("web.site.example"))
    q.header.qr = 1
    assert eng.resolve(q, client=SITE_CLIENT, transport=UDP) == Drop(Reason.NOT_QUERY)


def test_edns_version_1_is_badvers(eng: Any) -> None:
    q = DNSRecord.question(label("web.site.example"))
    q.add_ar(EDNS0(udp_len=1232, version=1))
    d = eng.resolve(q, client=SITE_CLIENT, transport=UDP)
    assert d.reason is Reason.BADVERS
    opt = next(rr for rr in d.message.ar if rr.rtype == QTYPE.OPT)
    assert (opt.edns_rcode << 4) | d.message.header.rcode == Rcode.BADVERS


def test_chaos_class_is_refused(eng: Any) -> None:
    q = DNSRecord.question(label("version.bind"), "TXT", "CH")
    assert eng.resolve(q, client=SITE_CLIENT, transport=UDP).reason is Reason.REFUSED_CLASS


def test_edns_reply_carries_opt_and_without_edns_none(eng: Any) -> None:
    q = DNSRecord.question(label("web.site.example"))
    q.add_ar(EDNS0(udp_len=4096))
    d = eng.resolve(q, client=SITE_CLIENT, transport=UDP)
    assert [rr.rtype for rr in d.message.ar] == [QTYPE.OPT]
    assert d.max_size == 1232  # the client's 4096 capped at ours
    d = ask(eng, "web.site.example")
    assert d.message.ar == []
    assert d.max_size == 512


def test_small_edns_size_is_treated_as_512(eng: Any) -> None:
    q = DNSRecord.question(label("web.site.example"))
    q.add_ar(EDNS0(udp_len=100))
    assert eng.resolve(q, client=SITE_CLIENT, transport=UDP).max_size == 512


def test_tcp_limit_is_65535(eng: Any) -> None:
    assert ask(eng, "web.site.example", transport=TCP).max_size == 65535


def _big_txt_engine(h: Any) -> Any:
    records = [
        h.record("big.site.example", "TXT", f'"{chr(97 + i) * 200}"', rid=f"t{i}") for i in range(5)
    ]
    return h.engine(h.zones(h.FakeView(subnet_list=[h.subnet()], record_list=records)))


def test_answer_over_512_without_edns_is_truncated(h: Any) -> None:
    eng = _big_txt_engine(h)
    d = ask(eng, "big.site.example", "TXT")
    wire = encode_message(d.message, max_size=d.max_size)
    assert len(wire) <= 512
    reply = decode_message(wire)
    assert reply.header.tc == 1
    assert reply.rr == []
    assert len(reply.questions) == 1


def test_answer_fits_the_client_edns_size(h: Any) -> None:
    eng = _big_txt_engine(h)
    q = DNSRecord.question(label("big.site.example"), "TXT")
    q.add_ar(EDNS0(udp_len=1232))
    d = eng.resolve(q, client=SITE_CLIENT, transport=UDP)
    reply = decode_message(encode_message(d.message, max_size=d.max_size))
    assert reply.header.tc == 0
    assert len(reply.rr) == 5
    q = DNSRecord.question(label("big.site.example"), "TXT")
    q.add_ar(EDNS0(udp_len=800))
    d = eng.resolve(q, client=SITE_CLIENT, transport=UDP)
    wire = encode_message(d.message, max_size=d.max_size)
    assert len(wire) <= 800
    reply = decode_message(wire)
    assert reply.header.tc == 1
    assert [rr.rtype for rr in reply.ar] == [QTYPE.OPT]


def test_axfr_over_tcp_from_allowed_peer_is_a_transfer(eng: Any) -> None:
    d = ask(
        eng, "site.example", "AXFR", client=Client(address=IPv4Address("198.18.0.2")), transport=TCP
    )
    assert isinstance(d, Transfer)
    assert d.client_serial is None


def test_axfr_signed_is_a_transfer(eng: Any) -> None:
    d = ask(eng, "site.example", "AXFR", client=OUTSIDE_CLIENT, transport=TCP, tsig_key="k")
    assert isinstance(d, Transfer)


def test_axfr_unsigned_from_other_peer_is_refused(eng: Any) -> None:
    d = ask(eng, "site.example", "AXFR", client=SITE_CLIENT, transport=TCP)
    assert d.reason is Reason.REFUSED_TRANSFER
    assert d.message.header.rcode == Rcode.REFUSED


def test_axfr_over_udp_is_formerr(eng: Any) -> None:
    d = ask(eng, "site.example", "AXFR", client=Client(address=IPv4Address("198.18.0.2")))
    assert d.reason is Reason.TRANSFER_UDP


def test_axfr_of_a_non_apex_is_notauth(eng: Any) -> None:
    d = ask(
        eng,
        "web.site.example",
        "AXFR",
        client=Client(address=IPv4Address("198.18.0.2")),
        transport=TCP,
    )
    assert d.message.header.rcode == Rcode.NOTAUTH


def test_ixfr_carries_the_client_serial(eng: Any) -> None:
    q = DNSRecord.question(label("site.example"), "IXFR")
    q.add_auth(
        RR(label("site.example"), QTYPE.SOA, rdata=SOA(label("a"), label("b"), (7, 0, 0, 0, 0)))
    )
    d = eng.resolve(q, client=Client(address=IPv4Address("198.18.0.2")), transport=TCP)
    assert isinstance(d, Transfer)
    assert d.client_serial == 7
    d = eng.resolve(q, client=Client(address=IPv4Address("198.18.0.2")), transport=UDP)
    assert d.reason is Reason.IXFR_UDP
    assert [rr.rtype for rr in d.message.rr] == [QTYPE.SOA]


def test_ixfr_without_soa_is_formerr(eng: Any) -> None:
    d = ask(
        eng, "site.example", "IXFR", client=Client(address=IPv4Address("198.18.0.2")), transport=TCP
    )
    assert d.reason is Reason.FORMERR


def test_mailb_is_notimp(eng: Any) -> None:
    q = DNSRecord.question(label("web.site.example"))
    q.questions[0].qtype = 253
    assert eng.resolve(q, client=SITE_CLIENT, transport=UDP).reason is Reason.NOTIMP


def test_signed_answers_are_not_cacheable(eng: Any) -> None:
    assert not ask(eng, "web.site.example", tsig_key="k").cacheable


def test_txt_static_record(h: Any) -> None:
    eng = h.engine(
        h.zones(
            h.FakeView(
                subnet_list=[h.subnet()],
                record_list=[h.record("t.site.example", "TXT", '"v=spf1 -all" "x"')],
            )
        )
    )
    d = ask(eng, "t.site.example", "TXT")
    assert d.message.rr[0].rdata == TXT([b"v=spf1 -all", b"x"])


_SAMPLES = [
    DNSRecord.question(label("web.site.example")).pack(),
    DNSRecord.question(label("site.example"), "AXFR").pack(),
    DNSRecord.question(label("x.elsewhere.example"), "ANY").pack(),
]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(_SAMPLES),
    st.integers(min_value=2, max_value=40),
    st.binary(min_size=1, max_size=8),
    st.sampled_from([UDP, TCP]),
)
def test_mutated_queries_decode_resolve_and_encode_without_crashing(
    eng: Any, sample: bytes, at: int, noise: bytes, transport: Transport
) -> None:
    data = sample[:at] + noise + sample[at + len(noise) :]
    try:
        query = decode_message(data)
    except DnsFormatError:
        return
    decision = eng.resolve(query, client=SITE_CLIENT, transport=transport)
    if isinstance(decision, Answer):
        wire = encode_message(decision.message, max_size=decision.max_size)
        assert len(wire) <= decision.max_size
