"""Authoritative DNS query engine for the local zones (sans-I/O).

``DnsEngine.resolve(query, client=…, transport=…)`` takes a decoded query (dnslib) and returns
a decision value: an ``Answer`` to send, a ``Forward`` to hand to the upstream forwarder, a
``Transfer`` (AXFR/IXFR) to stream over TCP, or a ``Drop``. Every decision names its
``Reason``: the transport counts it.

Rules, first match wins:
1. A message with QR set is not a query: drop (RFC 1035 §4.1.1).
2. Opcode other than QUERY: NOTIMP (RFC 1035 §4.1.1; NOTIFY and UPDATE are not served here).
3. Not exactly one question, an OPT in the question, or more than one OPT record: FORMERR
   (RFC 6891 §6.1.1).
4. EDNS version above 0: BADVERS (RFC 6891 §6.1.3).
5. Class other than IN (or ANY): REFUSED.
6. AXFR/IXFR: only for a zone apex, only over TCP (IXFR over UDP gets the current SOA, RFC 1995
   §2), only when signed with a known TSIG key or from an allowed peer; otherwise REFUSED.
7. Name outside every local zone: forwarded when forwarders are set, RD is set and the client
   may recurse; REFUSED otherwise.
8. Inside a zone (AA set): a zone cut → referral (no AA); CNAME chains followed inside the zone
   (RFC 1034 §4.3.2); the RRset → answer; a name without the type → NODATA; an unknown name →
   NXDOMAIN; both negative answers carry the SOA in the authority section (RFC 2308 §2, §3).
   ANY gets one RRset (RFC 8482 §4.1). No wildcards.
9. UDP replies fit 512 bytes, or the client's EDNS payload size capped at our own; otherwise TC
   (RFC 1035 §4.2.1, RFC 6891 §6.2.5). TCP replies fit 65535.

Pure: no sockets, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dnslib import EDNS0, RR, DNSHeader, DNSRecord

from ddi.dns.acl import NOBODY, Acl, Address, peer_address
from ddi.dns.wire import (
    OPCODE_MASK,
    RCODE_MASK,
    Flag,
    Opcode,
    QClass,
    QType,
    Rcode,
)
from ddi.dns.zone import Zone, absolute
from ddi.dns.zones import Zones

MAX_CNAME_CHAIN = 8
# The flags as plain ints: the fast path does its arithmetic on them (IntFlag's is slow).
QR = int(Flag.QR)
AA = int(Flag.AA)
RD = int(Flag.RD)
RA = int(Flag.RA)
CD = int(Flag.CD)


class Transport(enum.IntEnum):
    UDP = 0
    TCP = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Client:
    """Who sent a query: its address (matched against the address lists), and whether it is
    trusted to recurse without its address being checked. Trust is this explicit flag, set
    only for in-process callers (``LOCAL``); a peer on a socket is never trusted, whatever its
    address family, and one whose address cannot be read matches no list. Transfers always
    need the address in ``allow_transfer``, or TSIG."""

    peer: str = ""
    """The peer's host as the socket gave it (for logs)."""
    address: Address | None = None
    """The peer's address, an IPv4-mapped IPv6 one unmapped (ddi.dns.acl)."""
    trusted: bool = False

    @classmethod
    def of_peer(cls, addr: Any) -> Client:
        """The client behind a socket peer address (``(host, port, ...)``): never trusted."""
        try:
            host = addr[0]
        except (IndexError, TypeError, KeyError):
            return cls()
        return cls(peer=str(host), address=peer_address(host))

    def within(self, acl: Acl) -> bool:
        """True when the client's address is in ``acl``."""
        return self.address is not None and self.address in acl


LOCAL = Client(peer="local", trusted=True)
"""An in-process caller: may recurse."""


class Reason(enum.StrEnum):
    """Why the engine decided what it did, or why the responder dropped a message before it
    (a bounded metric label)."""

    ANSWER = "answer"
    NODATA = "nodata"
    NXDOMAIN = "nxdomain"
    REFERRAL = "referral"
    FORWARD = "forward"
    TRANSFER = "transfer"
    IXFR_UDP = "ixfr_udp"
    NOT_QUERY = "not_query"
    FORMERR = "formerr"
    NOTIMP = "notimp"
    BADVERS = "badvers"
    REFUSED_CLASS = "refused_class"
    REFUSED_NOT_LOCAL = "refused_not_local"
    REFUSED_CLIENT = "refused_client"
    REFUSED_NO_RD = "refused_no_rd"
    REFUSED_TRANSFER = "refused_transfer"
    TSIG_REPLAY = "tsig_replay"
    """A signed transfer request already accepted once (refused by the responder)."""
    TRANSFER_UDP = "transfer_udp"
    NOTAUTH = "notauth"
    SHORT_HEADER = "short_header"
    """Shorter than a header: dropped before the engine (a drop reason only)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    forwarding: bool = False
    """True when upstream forwarders are configured."""
    recursion_from: Acl = NOBODY
    """Clients that may have names outside the local zones forwarded."""
    allow_transfer: Acl = NOBODY
    """Peers allowed AXFR/IXFR without TSIG."""
    edns_udp_size: int = 1232
    """Our EDNS UDP payload size (RFC 6891 §6.2.5; 1232 avoids IP fragmentation)."""


@dataclass(frozen=True, slots=True)
class Answer:
    message: Any
    """The reply (dnslib ``DNSRecord``)."""
    reason: Reason
    max_size: int
    cacheable: bool = False
    """True when the reply depends only on the query bytes and the zones (not on the client)."""


@dataclass(frozen=True, slots=True)
class Forward:
    query: Any
    max_size: int
    reason: Reason = Reason.FORWARD


@dataclass(frozen=True, slots=True)
class Transfer:
    query: Any
    zone: Zone
    client_serial: int | None
    """The serial in an IXFR query's authority SOA; None for AXFR."""
    reason: Reason = Reason.TRANSFER


@dataclass(frozen=True, slots=True)
class Drop:
    reason: Reason


Decision = Answer | Forward | Transfer | Drop


class DnsEngine:
    def __init__(self, settings: EngineSettings, zones: Zones) -> None:
        self.settings = settings
        self.zones = zones

    def resolve(
        self,
        query: Any,
        *,
        client: Client,
        transport: Transport,
        tsig_key: str | None = None,
    ) -> Decision:
        """Decide the reply to ``query`` from ``client``.

        Args:
            query: the decoded ``DNSRecord``.
            client: who sent it (its address, or trusted).
            transport: UDP or TCP; sets the size limit and whether transfers are possible.
            tsig_key: the name of the TSIG key that verified the query, if it was signed.
        """
        header = query.header
        if header.qr:
            return Drop(Reason.NOT_QUERY)
        opts = [rr for rr in query.ar if rr.rtype == QType.OPT]
        edns = opts[0] if opts else None
        max_size = self._max_size(edns, transport)
        signed = tsig_key is not None
        if header.opcode != Opcode.QUERY:
            return self._error(query, Rcode.NOTIMP, Reason.NOTIMP, edns, max_size, question=False)
        if len(query.questions) != 1 or len(opts) > 1:
            return self._error(query, Rcode.FORMERR, Reason.FORMERR, edns, max_size, question=False)
        q = query.questions[0]
        if q.qtype == QType.OPT:
            return self._error(query, Rcode.FORMERR, Reason.FORMERR, edns, max_size)
        if edns is not None and edns.edns_ver != 0:
            # RFC 6891 §6.1.3: BADVERS is 16; its upper 8 bits travel in the OPT TTL.
            return self._error(query, Rcode.BADVERS, Reason.BADVERS, edns, max_size)
        if q.qclass not in (QClass.IN, QClass.ANY):
            return self._error(query, Rcode.REFUSED, Reason.REFUSED_CLASS, edns, max_size)
        if q.qtype in (QType.MAILA, QType.MAILB):
            return self._error(query, Rcode.NOTIMP, Reason.NOTIMP, edns, max_size)
        qname = _qname_key(q.qname.label)
        zone = self.zones.find(qname)
        if q.qtype in (QType.AXFR, QType.IXFR):
            return self._transfer(query, q.qtype, qname, zone, client, transport, signed, edns)
        if zone is None:
            return self._outside(query, client, edns, max_size)
        return self._authoritative(query, qname, q.qtype, zone, edns, max_size, signed)

    # --- rules ---------------------------------------------------------------------------------

    def _max_size(self, edns: Any, transport: Transport) -> int:
        if transport is Transport.TCP:
            return 65535
        if edns is None:
            return 512  # RFC 1035 §4.2.1
        # RFC 6891 §6.2.5: values below 512 are treated as 512.
        return max(512, min(int(edns.edns_len), self.settings.edns_udp_size))

    def _outside(self, query: Any, client: Client, edns: Any, max_size: int) -> Decision:
        if not self.settings.forwarding:
            return self._error(query, Rcode.REFUSED, Reason.REFUSED_NOT_LOCAL, edns, max_size)
        if not (client.trusted or client.within(self.settings.recursion_from)):
            return self._error(query, Rcode.REFUSED, Reason.REFUSED_CLIENT, edns, max_size)
        if not query.header.rd:
            return self._error(query, Rcode.REFUSED, Reason.REFUSED_NO_RD, edns, max_size)
        return Forward(query, max_size)

    def _transfer(
        self,
        query: Any,
        qtype: int,
        qname: str,
        zone: Zone | None,
        client: Client,
        transport: Transport,
        signed: bool,
        edns: Any,
    ) -> Decision:
        max_size = self._max_size(edns, transport)
        if zone is None or zone.origin != qname:
            # RFC 5936 §2.2.1: not authoritative for the zone asked for.
            return self._error(query, Rcode.NOTAUTH, Reason.NOTAUTH, edns, max_size)
        allowed = signed or client.within(self.settings.allow_transfer)
        if not allowed:
            return self._error(query, Rcode.REFUSED, Reason.REFUSED_TRANSFER, edns, max_size)
        if transport is Transport.UDP:
            if qtype == QType.IXFR:
                # RFC 1995 §2: over UDP, a reply that does not fit is the current SOA alone.
                reply = self._reply(query, Rcode.NOERROR, aa=True, edns=edns)
                reply.rr.append(zone.soa)
                return Answer(reply, Reason.IXFR_UDP, max_size)
            # RFC 5936 §4.2: AXFR is TCP only.
            return self._error(query, Rcode.FORMERR, Reason.TRANSFER_UDP, edns, max_size)
        client_serial = None
        if qtype == QType.IXFR:
            soas = [rr for rr in query.auth if rr.rtype == QType.SOA]
            if not soas:
                return self._error(query, Rcode.FORMERR, Reason.FORMERR, edns, max_size)
            client_serial = int(soas[0].rdata.times[0])
        return Transfer(query, zone, client_serial)

    def _authoritative(
        self,
        query: Any,
        qname: str,
        qtype: int,
        zone: Zone,
        edns: Any,
        max_size: int,
        signed: bool,
    ) -> Decision:
        reply = self._reply(query, Rcode.NOERROR, aa=True, edns=edns)
        name = qname
        seen: set[str] = set()
        reason = Reason.ANSWER
        for _ in range(MAX_CNAME_CHAIN):
            cut = zone.cut_above(name)
            if cut is not None:
                # RFC 1034 §4.3.2 step 3b: below a zone cut we only refer.
                if not reply.rr:
                    reply.header.aa = 0
                ns_rrs = zone.node(cut)[QType.NS]  # type: ignore[index]
                reply.auth.extend(ns_rrs)
                self._glue(reply, zone, ns_rrs)
                reason = Reason.REFERRAL if not reply.rr else Reason.ANSWER
                break
            node = zone.node(name)
            if node is None:
                if zone.exists(name):
                    reason = Reason.NODATA  # an empty non-terminal (RFC 8020 §2)
                else:
                    # RFC 2308 §2.1 / RFC 6604: NXDOMAIN applies to the last name in a chain.
                    reply.header.rcode = Rcode.NXDOMAIN
                    reason = Reason.NXDOMAIN
                reply.auth.append(zone.soa)
                break
            if qtype == QType.ANY:
                # RFC 8482 §4.1: one RRset of the node's choosing.
                rtype = min(node)
                reply.rr.extend(node[rtype])
                break
            rrs = node.get(qtype)
            if rrs is not None:
                reply.rr.extend(rrs)
                self._additional(reply, zone, qtype, rrs)
                break
            cname = node.get(QType.CNAME)
            if cname is None:
                reason = Reason.NODATA  # RFC 2308 §2.2: NOERROR, no answer, SOA in authority
                reply.auth.append(zone.soa)
                break
            reply.rr.extend(cname)
            seen.add(name)
            target = absolute(str(cname[0].rdata.label))
            if target in seen or not zone.contains(target):
                break  # a loop, or a target outside this zone: the client follows it
            name = target
        return Answer(reply, reason, max_size, cacheable=not signed)

    # --- helpers -------------------------------------------------------------------------------

    def _reply(self, query: Any, rcode: int, *, aa: bool, edns: Any, question: bool = True) -> Any:
        # RFC 1035 §4.1.1: QR set; opcode, RD and (RFC 4035 §3.2.2) CD copied from the query.
        flags = QR | (query.header.bitmap & (OPCODE_MASK | RD | CD)) | (rcode & RCODE_MASK)
        if aa:
            flags |= AA
        if self.settings.forwarding:
            flags |= RA
        reply = DNSRecord(
            DNSHeader(id=query.header.id, bitmap=flags),
            questions=list(query.questions[:1]) if question else [],
        )
        if edns is not None:
            reply.ar.append(EDNS0(udp_len=self.settings.edns_udp_size, ext_rcode=rcode >> 4))
        return reply

    def _error(
        self,
        query: Any,
        rcode: Rcode,
        reason: Reason,
        edns: Any,
        max_size: int,
        *,
        question: bool = True,
    ) -> Answer:
        reply = self._reply(query, rcode, aa=False, edns=edns, question=question)
        cacheable = reason in (Reason.NOTIMP, Reason.FORMERR, Reason.BADVERS)
        return Answer(reply, reason, max_size, cacheable=cacheable)

    def _additional(self, reply: Any, zone: Zone, qtype: int, rrs: Sequence[Any]) -> None:
        """RFC 1035 §3.3.11/§3.3.9, RFC 2782: addresses of NS, MX and SRV targets in the zone."""
        if qtype == QType.NS:
            self._glue(reply, zone, rrs)
        elif qtype == QType.MX:
            self._addresses(reply, zone, [absolute(str(rr.rdata.label)) for rr in rrs])
        elif qtype == QType.SRV:
            self._addresses(reply, zone, [absolute(str(rr.rdata.target)) for rr in rrs])

    def _glue(self, reply: Any, zone: Zone, ns_rrs: Sequence[Any]) -> None:
        self._addresses(reply, zone, [absolute(str(rr.rdata.label)) for rr in ns_rrs])

    def _addresses(self, reply: Any, zone: Zone, names: Sequence[str]) -> None:
        for name in names:
            node = zone.node(name) if zone.contains(name) else None
            if node is None:
                continue
            for rtype in (QType.A, QType.AAAA):
                extra: list[RR] = node.get(rtype, [])
                if extra:
                    # The OPT record stays last (RFC 6891 allows any position; dig expects it).
                    opt = [rr for rr in reply.ar if rr.rtype == QType.OPT]
                    reply.ar = [rr for rr in reply.ar if rr.rtype != QType.OPT] + extra + opt
                    reply.set_header_qa()


def _qname_key(labels: tuple[bytes, ...]) -> str:
    """The lookup key of a query name: lower case, dot-joined, no trailing dot. A label with a
    dot or non-ASCII byte in it cannot match a zone name, and is mapped so that it does not."""
    if any(b"." in part for part in labels):
        return "\x00"
    try:
        return b".".join(labels).decode("ascii").lower()
    except UnicodeDecodeError:
        return "\x00"


def rcode_label(rcode: int) -> str:
    """A bounded metric label for a response code: its mnemonic, else ``other``."""
    return _RCODE_LABELS.get(rcode, "other")


_RCODE_LABELS = {int(r): r.name for r in Rcode}


def qtype_label(qtype: int) -> str:
    """A bounded metric label for a query type: its mnemonic for common types, else ``other``."""
    return _QTYPE_LABELS.get(qtype, "other")


_QTYPE_LABELS = {
    int(t): t.name
    for t in (
        QType.A,
        QType.AAAA,
        QType.ANY,
        QType.AXFR,
        QType.CAA,
        QType.CNAME,
        QType.DS,
        QType.DNSKEY,
        QType.HTTPS,
        QType.IXFR,
        QType.MX,
        QType.NS,
        QType.PTR,
        QType.SOA,
        QType.SRV,
        QType.SVCB,
        QType.TXT,
    )
}
