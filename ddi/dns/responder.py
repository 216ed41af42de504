"""The DNS responder: the one path from a message's bytes to what its transport must do.

``Responder.respond(data, client, transport, now)`` returns a typed result:

* ``Reply``: bytes to send now, with the labels the transport counts them under;
* ``Forward``: the query to ask upstream, and ``finish`` to turn the upstream's answer (or
  none) into the ``Reply``;
* ``Transfer``: an AXFR/IXFR (TCP only), whose ``messages`` are packed and signed one by one
  as the connection takes them;
* ``Drop``: nothing to send, with a counted reason.

The path, in order (UDP, batched UDP and TCP all take it; the UDP loops make the first two
steps inline and call ``resolve`` after them):

1. The compiled answers (ddi.dns.compiled): every name and type of the local zones, and their
   NXDOMAIN and NODATA, encoded when the zone changed; a hit is a lookup and a copy.
2. The answer cache, keyed by the bytes after the ID, for the cacheable answers the compiled
   table leaves to the engine (CNAME chains, referrals, ANY, FORMERR): a hit is the ID and the
   cached body.
3. Shorter than a header: dropped (RFC 1035 §4.1.1: there is no ID to answer to).
4. Signed (RFC 8945): verified first; a failure is NOTAUTH with the TSIG error, never cached;
   a verified query gets a signed reply (never cached). A signed transfer request accepted
   once is REFUSED when it comes again inside its time window (``tsig.ReplayCache``).
5. Decoded (FORMERR when it does not parse, dropped when it is a response), resolved by the
   engine, encoded; cached when the engine marks the answer cacheable.

``build`` makes one from the config and the IPAM view: zones, engine rules, compiled answers,
TSIG keys.

Pure: no sockets, no clock (``now`` is an argument), no randomness. Its own state is the
compiled table, the answer cache and the ``decoded`` count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from typing import Any

from ddi.config import Config
from ddi.dns import tsig, xfr
from ddi.dns.acl import LOOPBACK, Acl, Network
from ddi.dns.cache import AnswerCache
from ddi.dns.compiled import Compiled
from ddi.dns.engine import (
    LOCAL,
    Answer,
    Client,
    DnsEngine,
    EngineSettings,
    Reason,
    Transport,
    qtype_label,
    rcode_label,
)
from ddi.dns.engine import Drop as EngineDrop
from ddi.dns.engine import Forward as EngineForward
from ddi.dns.engine import Transfer as EngineTransfer
from ddi.dns.wire import (
    HEADER_SIZE,
    Flag,
    QType,
    Rcode,
    decode_message,
    encode_message,
    error_response,
    pack,
)
from ddi.dns.zones import Zones, ZoneSettings, ZoneSource
from ddi.errors import DnsFormatError

__all__ = [
    "LOCAL",
    "Client",
    "Drop",
    "Forward",
    "Reply",
    "Responder",
    "Result",
    "Transfer",
    "build",
    "engine_settings",
    "zone_settings",
]

log = logging.getLogger(__name__)

TSIG_SIGNATURE = b"\x00\xfa\x00\xff"
"""TYPE TSIG (250), CLASS ANY (255): a message containing these bytes may be signed."""
TSIG_ROOM = 160
"""Bytes kept free for the TSIG RR when a signed reply must fit a size limit."""
_QR = int(Flag.QR)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """Bytes to send, and how the transport counts them."""

    data: bytes
    qtype: str | None = None
    """Query-type metric label; None when the reply is not counted as an answered query."""
    rcode: str | None = None
    decision: Reason | None = None
    """The decision it came from; None for a cache hit and a TSIG failure."""
    cached: bool = False
    """Served from the compiled answers or the answer cache (not decoded)."""
    tsig_failure: tsig.Failed | None = None
    """Set when the reply reports a TSIG verification failure (NOTAUTH)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Forward:
    """A query for a name outside the local zones, to ask the upstream forwarders."""

    query: Any
    """The decoded query (``dnslib.DNSRecord``), with the client's ID."""
    max_size: int
    qtype: str
    decision: Reason = Reason.FORWARD

    def finish(self, upstream: Any | None) -> Reply:
        """The reply to the client: the upstream's answer (``DNSRecord``, the client's ID)
        cut to the client's size, or SERVFAIL when none came."""
        if upstream is None:
            return Reply(data=_servfail(self.query), qtype=self.qtype, rcode=Rcode.SERVFAIL.name)
        return Reply(
            data=encode_message(upstream, max_size=self.max_size),
            qtype=self.qtype,
            rcode=rcode_label(upstream.header.rcode),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """A zone transfer to stream over TCP."""

    decision: EngineTransfer
    verified: tsig.Verified | None
    now: float

    @property
    def kind(self) -> str:
        return "axfr" if self.decision.client_serial is None else "ixfr"

    @property
    def key_name(self) -> str | None:
        return None if self.verified is None else self.verified.key.name

    def messages(self) -> Iterator[bytes]:
        """The transfer's messages, packed and signed one by one (RFC 8945 §5.3.1: each later
        message's MAC covers the previous one's). The record list is fixed when the first is
        asked for: a consistent snapshot of the zone."""
        decision = self.decision
        verified = self.verified
        mac: bytes | None = None
        for message in xfr.transfer_messages(decision.query, decision.zone, decision.client_serial):
            wire = pack(message)
            if verified is not None:
                if mac is None:
                    wire, mac = tsig.sign(
                        wire, verified.key, now=self.now, request_mac=verified.record.mac
                    )
                else:
                    wire, mac = tsig.sign(wire, verified.key, now=self.now, prior_mac=mac)
            yield wire


@dataclass(frozen=True, slots=True)
class Drop:
    """Nothing to send."""

    reason: Reason
    decision: Reason | None = None
    """The engine's decision, when the engine made it (counted among decisions)."""


Result = Reply | Forward | Transfer | Drop


class Responder:
    """The state answers come from: the zones and their engine, the compiled answers, the TSIG
    keys and the answer cache. Built again (around the same cache) when the config or zone set
    changes."""

    def __init__(
        self,
        engine: DnsEngine,
        keys: Mapping[str, tsig.TsigKey],
        cache: AnswerCache,
        replays: tsig.ReplayCache | None = None,
    ) -> None:
        self.engine = engine
        self.compiled = Compiled(engine)
        self.keys = keys
        self.cache = cache
        self.replays = tsig.ReplayCache() if replays is None else replays
        self.decoded = 0
        """Queries that took the engine (fast path or decoded), for ``statistics``."""

    @property
    def zones(self) -> Zones:
        return self.engine.zones

    def respond(self, data: bytes, client: Client, transport: Transport, now: float) -> Result:
        """What to do with the message ``data`` that ``client`` sent over ``transport``."""
        compiled = self.compiled.answer(data, transport)
        if compiled is not None:
            reply, (qtype, rcode) = compiled
            return Reply(data=reply, qtype=qtype, rcode=rcode, cached=True)
        entry = self.cache.table(transport).get(data[2:])
        if entry is not None:
            self.cache.hits += 1
            qtype, rcode = entry.label
            return Reply(data=data[:2] + entry.body, qtype=qtype, rcode=rcode, cached=True)
        self.cache.misses += 1
        return self.resolve(data, client, transport, now)

    def resolve(self, data: bytes, client: Client, transport: Transport, now: float) -> Result:
        """``respond`` after the compiled answers and the answer cache (the UDP loops look both
        up inline)."""
        if len(data) < HEADER_SIZE:
            return Drop(Reason.SHORT_HEADER)
        signed = TSIG_SIGNATURE in data
        verified: tsig.Verified | None = None
        if signed:
            try:
                check = tsig.verify(data, self.keys, now=now)
            except DnsFormatError:
                return self.malformed(data)
            if isinstance(check, tsig.Failed):
                reply = error_response(data, Rcode.NOTAUTH)
                return Reply(data=tsig.error_tsig(reply, check, now=now), tsig_failure=check)
            verified = check
        try:
            query = decode_message(data)
        except DnsFormatError as exc:
            log.debug("FORMERR to %s: %s", client.peer, exc)
            return self.malformed(data)
        self.decoded += 1
        key_name = None if verified is None else verified.key.name
        decision = self.engine.resolve(query, client=client, transport=transport, tsig_key=key_name)
        match decision:
            case Answer():
                return self._encode(decision, data, transport, verified, now)
            case EngineForward():
                return Forward(
                    query=query,
                    max_size=decision.max_size,
                    qtype=qtype_label(query.questions[0].qtype),
                )
            case EngineTransfer():
                if verified is not None and self.replays.replayed(verified, now):
                    return Reply(
                        data=error_response(data, Rcode.REFUSED),
                        qtype=qtype_label(query.questions[0].qtype),
                        rcode=Rcode.REFUSED.name,
                        decision=Reason.TSIG_REPLAY,
                    )
                return Transfer(decision=decision, verified=verified, now=now)
            case EngineDrop(reason=reason):
                return Drop(reason, decision=reason)

    def malformed(self, data: bytes) -> Reply | Drop:
        """The answer to a message (at least a header long) that cannot be read: FORMERR, or
        nothing for a response (RFC 1035 §4.1.1 QR: a response is never answered)."""
        if (data[2] << 8) & _QR:
            return Drop(Reason.NOT_QUERY)
        return Reply(
            data=error_response(data, Rcode.FORMERR),
            qtype="other",
            rcode=Rcode.FORMERR.name,
            decision=Reason.FORMERR,
        )

    def _encode(
        self,
        answer: Answer,
        data: bytes,
        transport: Transport,
        verified: tsig.Verified | None,
        now: float,
    ) -> Reply:
        message = answer.message
        qtype = qtype_label(message.questions[0].qtype) if message.questions else "other"
        rcode = rcode_label(message.header.rcode)
        if verified is not None:
            wire = encode_message(message, max_size=answer.max_size - TSIG_ROOM)
            wire, _ = tsig.sign(wire, verified.key, now=now, request_mac=verified.record.mac)
        else:
            wire = encode_message(message, max_size=answer.max_size)
            if answer.cacheable:
                self.cache.put(transport, data, wire, qtype=qtype, rcode=rcode)
        return Reply(data=wire, qtype=qtype, rcode=rcode, decision=answer.reason)


def zone_settings(config: Config) -> ZoneSettings:
    dns = config.dns
    domain = config.site.domain
    ns_name = dns.ns_name if "." in dns.ns_name else f"{dns.ns_name}.{domain}"
    ns_address = dns.ns_address
    if ns_address is None:
        for host, _ in dns.listen:
            addr = ip_address(host)
            if isinstance(addr, IPv4Address) and not addr.is_unspecified:
                ns_address = addr
                break
    return ZoneSettings(
        domain=domain,
        ns_name=ns_name,
        ns_address=ns_address,
        ttl=dns.ttl,
        journal_size=dns.journal_size,
    )


def engine_settings(config: Config) -> EngineSettings:
    dns = config.dns
    return EngineSettings(
        forwarding=bool(dns.forwarders),
        recursion_from=Acl.of(dns.recursion_from or site_networks(config)),
        allow_transfer=Acl.of(dns.allow_transfer),
        edns_udp_size=dns.edns_udp_size,
    )


def site_networks(config: Config) -> tuple[Network, ...]:
    """The site's own networks: its subnets and loopback (the default of ``recursion_from``,
    and exempt from response-rate limiting)."""
    return (*(s.cidr for s in config.subnets), *LOOPBACK)


def tsig_keys(config: Config) -> dict[str, tsig.TsigKey]:
    return {
        k.name: tsig.TsigKey(name=k.name, secret=k.secret) for k in config.dns.tsig_keys.values()
    }


def build(
    config: Config,
    source: ZoneSource,
    *,
    serial: int,
    cache: AnswerCache,
    replays: tsig.ReplayCache | None = None,
) -> Responder:
    """The responder of ``config``: zones built from ``source`` (starting at ``serial``), the
    engine's rules, the TSIG keys, around ``cache`` (emptied: its answers came from the zones
    this build replaces) and ``replays`` (kept: a reload does not reopen the window)."""
    zones = Zones(zone_settings(config), source, serial=serial)
    engine = DnsEngine(engine_settings(config), zones)
    responder = Responder(engine, tsig_keys(config), cache, replays)
    cache.invalidate()
    return responder


def _servfail(query: Any) -> bytes:
    """SERVFAIL to a decoded ``query``: its question and OPT, no records (RA set: it was a
    recursive query we forward)."""
    reply = query.reply(ra=1, aa=0)
    reply.header.rcode = Rcode.SERVFAIL
    reply.rr, reply.auth = [], []
    reply.ar = [rr for rr in query.ar if rr.rtype == QType.OPT]
    data: bytes = reply.pack()
    return data
