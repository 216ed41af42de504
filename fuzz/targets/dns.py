"""DNS: a message as a UDP datagram or a TCP frame's payload, handed to
``Responder.respond`` as every transport does, over a zone with hosts, leases and records, a
TSIG key, forwarding and an ``allow_transfer`` peer.

Which client and transport an input comes over follows its length (so a mutation can move it):
UDP from the site, TCP from the transfer peer, UDP from outside, TCP from an in-process caller,
UDP from the site through a dual-stack socket (``::ffff:a.b.c.d``), UDP from an IPv6 network of
the recursion list, and UDP from IPv6 outside it.

Outcomes: a ``Reply`` (bytes), a ``Forward`` (finished both with no upstream answer and with
an answer to its own question), a ``Transfer`` whose messages are all packed and signed, or a
``Drop`` with its reason. The responder documents no exception: FORMERR and NOTAUTH are
replies. A reply from the compiled answers must be, byte for byte, the full path's reply
(``Responder.resolve``, which decodes and asks the engine).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network

from dnslib import EDNS0, QTYPE, RR, SOA, A, DNSRecord

from ddi.dns import tsig
from ddi.dns.acl import Acl
from ddi.dns.cache import AnswerCache
from ddi.dns.engine import LOCAL, Client, DnsEngine, EngineSettings, Transport
from ddi.dns.responder import Drop, Forward, Reply, Responder, Transfer
from ddi.dns.zone import label
from ddi.dns.zones import Zones, ZoneSettings
from ddi.ipam.models import Host, Lease, LeaseState, Record, Subnet
from ddi.ipam.views import IpamIndex
from fuzz.core import Target, Unexpected

NOW = 1_800_000_000.0
DOMAIN = "site.example"
KEY = tsig.TsigKey(name="xfr.site.example", secret=b"0123456789abcdef0123456789abcdef")
SITE = Client(peer="198.18.0.77", address=IPv4Address("198.18.0.77"))
OUTSIDE = Client(peer="203.0.113.9", address=IPv4Address("203.0.113.9"))
SECONDARY = Client(peer="198.18.0.2", address=IPv4Address("198.18.0.2"))
MAPPED = Client.of_peer(("::ffff:198.18.0.77", 53, 0, 0))
SITE6 = Client.of_peer(("2001:db8:1::77", 53, 0, 0))
OUTSIDE6 = Client.of_peer(("2001:db8:9::9", 53, 0, 0))
WAYS = (
    (Transport.UDP, SITE),
    (Transport.TCP, SECONDARY),
    (Transport.UDP, OUTSIDE),
    (Transport.TCP, LOCAL),
    (Transport.UDP, MAPPED),
    (Transport.UDP, SITE6),
    (Transport.UDP, OUTSIDE6),
)
MAX_TRANSFER_MESSAGES = 10_000


def _responder() -> Responder:
    index = IpamIndex(
        subnets=[Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"))],
        hosts=[
            Host(id="h-web", ip=IPv4Address("198.18.0.10"), hostname="web", mac="52:54:00:0:0:1"),
            Host(id="h-db", ip=IPv4Address("198.18.0.11"), hostname="db", mac="52:54:00:0:0:2"),
        ],
        leases=[
            Lease(
                ip=IPv4Address("198.18.0.100"),
                mac="52:54:00:00:01:01",
                hostname="laptop",
                state=LeaseState.BOUND,
                start=NOW - 600,
                end=NOW + 600,
                subnet="lan",
            )
        ],
        records=[
            Record(id="r-www", name="www.site.example", rtype="CNAME", value="web.site.example"),
            Record(id="r-mx", name="site.example", rtype="MX", value="10 web.site.example"),
            Record(id="r-txt", name="site.example", rtype="TXT", value="v=spf1 -all"),
            Record(id="r-srv", name="_ldap._tcp.site.example", rtype="SRV", value="0 5 389 db"),
        ],
        domain=DOMAIN,
    )
    settings = ZoneSettings(
        domain=DOMAIN,
        ns_name=f"ns.{DOMAIN}",
        ns_address=IPv4Address("198.18.0.1"),
        ttl=300,
        journal_size=4,
    )
    engine = DnsEngine(
        EngineSettings(
            forwarding=True,
            recursion_from=Acl.of([IPv4Network("198.18.0.0/24"), IPv6Network("2001:db8:1::/48")]),
            allow_transfer=Acl.of([IPv4Network("198.18.0.2/32")]),
        ),
        Zones(settings, index, serial=10),
    )
    return Responder(engine, {KEY.name: KEY}, AnswerCache(256))


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.responder = _responder()


_state = _State()


def check(data: bytes) -> str:
    transport, client = WAYS[len(data) % len(WAYS)]
    responder = _state.responder
    compiled = responder.compiled.answer(data, transport)
    if compiled is not None:
        full = responder.resolve(data, client, transport, NOW)
        if not isinstance(full, Reply) or full.data != compiled[0]:
            raise Unexpected(f"compiled answer {compiled[0]!r} differs from the full path's")
    result = responder.respond(data, client, transport, NOW)
    match result:
        case Reply():
            if not isinstance(result.data, bytes):
                raise Unexpected(f"reply data {type(result.data).__name__}")
            return f"reply:{result.rcode}"
        case Forward():
            result.finish(None)
            # An upstream answer to the question asked: what a forwarder hands ``finish``.
            upstream = result.query.reply()
            if result.query.questions:
                upstream.add_answer(RR(result.query.q.qname, QTYPE.A, rdata=A("192.0.2.1")))
            result.finish(upstream)
            return "forward"
        case Transfer():
            for n, message in enumerate(result.messages()):
                if not isinstance(message, bytes) or n > MAX_TRANSFER_MESSAGES:
                    raise Unexpected("transfer message not bytes, or no end to the transfer")
            return f"transfer:{result.kind}"
        case Drop():
            return f"drop:{result.reason.value}"
    raise Unexpected(f"respond returned {result!r}")


def _query(name: str, qtype: str, msg_id: int = 7, *, edns: bool = False, rd: bool = True) -> bytes:
    q = DNSRecord.question(label(name), qtype)
    q.header.id = msg_id
    q.header.rd = int(rd)
    if edns:
        q.add_ar(EDNS0(udp_len=1232))
    return bytes(q.pack())


def _ixfr(serial: int) -> bytes:
    q = DNSRecord.question(label(DOMAIN), "IXFR")
    q.header.id = 9
    q.add_auth(
        RR(
            label(DOMAIN),
            QTYPE.SOA,
            rdata=SOA(label(f"ns.{DOMAIN}"), label(f"hostmaster.{DOMAIN}"), (serial, 1, 1, 1, 1)),
        )
    )
    return bytes(q.pack())


def _signed(data: bytes, key: tsig.TsigKey = KEY) -> bytes:
    return tsig.sign(data, key, now=NOW)[0]


def seeds() -> list[bytes]:
    """Queries of each kind the responder tells apart, plain and TSIG-signed."""
    plain = [
        _query("web.site.example", "A"),
        _query("www.site.example", "A", edns=True),
        _query("site.example", "SOA"),
        _query("site.example", "NS"),
        _query("site.example", "MX"),
        _query("site.example", "ANY"),
        _query("_ldap._tcp.site.example", "SRV"),
        _query("laptop.site.example", "AAAA"),
        _query("nothing.site.example", "A"),
        _query("10.0.18.198.in-addr.arpa", "PTR"),
        _query("www.elsewhere.example", "A"),
        _query("www.elsewhere.example", "A", rd=False),
        _query("site.example", "AXFR"),
        _ixfr(9),
        _ixfr(10),
    ]
    signed = [
        _signed(_query("site.example", "AXFR")),
        _signed(_ixfr(8)),
        _signed(_query("web.site.example", "A")),
        _signed(_query("site.example", "AXFR"), tsig.TsigKey(name="other.example", secret=b"k")),
        _signed(_query("site.example", "AXFR"), tsig.TsigKey(name=KEY.name, secret=b"x" * 32)),
    ]
    out: list[bytes] = []
    for data in plain + signed:
        # Every seed once per way in: the length modulo len(WAYS) picks the client and
        # transport, and trailing bytes after the last record are ignored or a FORMERR.
        out += [data + b"\0" * k for k in range(len(WAYS))]
    return out


DICTIONARY = (
    b"\x00\xfa\x00\xff",  # TYPE TSIG, CLASS ANY
    b"\x0bhmac-sha256\x00",
    b"\x03xfr\x04site\x07example\x00",
    b"\x04site\x07example\x00",
    b"\x00\xfc\x00\x01",  # AXFR IN
    b"\x00\xfb\x00\x01",  # IXFR IN
    b"\x00\x06\x00\x01",  # SOA IN
    b"\x00\x29\x04\xd0",  # OPT, 1232
    b"\xc0\x0c",
    b"\xc0\xff",
    b"\x00\x20",
    b"\x28\x00",  # opcode NOTIFY
)


def target() -> Target:
    return Target(
        name="dns",
        doc="a DNS message (UDP or TCP by length): Responder.respond with zone, TSIG, transfers",
        check=check,
        seeds=seeds,
        max_len=4096,
        dictionary=DICTIONARY,
        reset=_state.reset,
    )
