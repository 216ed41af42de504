"""Forwarding of names outside the local zones to configured upstream resolvers.

Every forwarded query gets its own UDP socket, connected to the upstream asked, with a source
port the kernel picks at random (Linux randomises ephemeral ports) and a fresh random ID
(``secrets``); the client's ID is restored on the reply. A datagram is the answer only when it
comes from that upstream's address and port, carries that ID with QR set, and repeats the
question (name compared case-insensitively, type and class): RFC 5452 §9.1. Anything else is
ignored (counted) and the wait goes on. A reply with TC set is fetched again over TCP from the
same upstream (RFC 7766 §5), matched the same way. Upstreams are tried in order within one
overall deadline (``timeout``); when it passes with no answer the caller sends SERVFAIL, so
with the WAN down forwarding fails fast while local names keep answering from the zones.

A small cache keeps upstream answers for their TTL (the smallest TTL in the reply, or for a
negative answer the SOA minimum, RFC 2308 §5); served copies have their TTLs decreased by the
time they spent in the cache.

Sockets go through the loop's datagram transport, which every loop (uvloop included)
implements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any, cast

from ddi.dns.wire import HEADER, Flag, QType, Rcode, decode_message, name_key, read_name
from ddi.errors import DnsFormatError

log = logging.getLogger(__name__)

MAX_CACHE_TTL = 3600
MAX_WAITING = 64
"""Datagrams queued on one query's socket before more are dropped (a flood is not buffered)."""
_QR = int(Flag.QR)

Question = tuple[tuple[bytes, ...], int, int]
"""A question as it is compared: name labels (ASCII folded), type, class."""


@dataclass(slots=True)
class _Cached:
    expires: float
    stored: float
    reply: Any


def question_of(data: bytes) -> Question | None:
    """The one question of the message ``data``, or None when it has not exactly one that
    parses."""
    try:
        if len(data) < HEADER.size:
            return None
        qdcount = struct.unpack_from("!H", data, 4)[0]
        if qdcount != 1:
            return None
        labels, pos = read_name(data, HEADER.size)
        qtype, qclass = struct.unpack_from("!HH", data, pos)
    except (DnsFormatError, struct.error):
        return None
    return name_key(labels), qtype, qclass


def answers(data: bytes, msg_id: int, question: Question) -> bool:
    """Whether ``data`` is a response to the query ``msg_id`` asking ``question``."""
    if len(data) < HEADER.size:
        return False
    reply_id, flags = struct.unpack_from("!HH", data)
    return reply_id == msg_id and bool(flags & _QR) and question_of(data) == question


def _same_peer(addr: Any, upstream: tuple[str, int]) -> bool:
    try:
        return bool(ip_address(addr[0]) == ip_address(upstream[0]) and addr[1] == upstream[1])
    except (ValueError, IndexError, TypeError):
        return False


class _Exchange(asyncio.DatagramProtocol):
    """One forwarded query's socket: connected to the upstream, fed what arrives on it."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue(maxsize=MAX_WAITING)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.received.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        """An ICMP error (port unreachable): the query times out, the next upstream is tried."""


class Forwarder:
    def __init__(
        self,
        upstreams: Sequence[tuple[str, int]],
        *,
        timeout: float,
        cache_size: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstreams = [(host, port) for host, port in upstreams]
        self.timeout = timeout
        self.cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[tuple[str, int, int, int], _Cached] = OrderedDict()
        self._open: set[asyncio.DatagramTransport] = set()
        self.forwarded = 0
        self.timeouts = 0
        self.cache_hits = 0
        self.tcp_retries = 0
        self.mismatched = 0
        """Datagrams on a query's socket that did not answer it (ID, question or sender)."""

    def start(self) -> None:
        """Nothing to open: each query has its own socket."""

    def close(self) -> None:
        for transport in list(self._open):
            transport.close()
        self._open.clear()

    def statistics(self) -> dict[str, int]:
        return {
            "forwarded": self.forwarded,
            "timeouts": self.timeouts,
            "cache_hits": self.cache_hits,
            "cache_entries": len(self._cache),
            "tcp_retries": self.tcp_retries,
            "mismatched": self.mismatched,
        }

    async def resolve(self, query: Any) -> Any | None:
        """The upstream's reply to ``query`` (a ``DNSRecord``), with the client's ID, or None
        when no upstream answered within the timeout."""
        q = query.questions[0]
        key = (str(q.qname).lower(), int(q.qtype), int(q.qclass), int(query.header.rd))
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit.expires > now:
            self.cache_hits += 1
            return _aged(hit.reply, query.header.id, int(now - hit.stored))
        self.forwarded += 1
        deadline = now + self.timeout
        wire = query.pack()
        for i, upstream in enumerate(self.upstreams):
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            share = remaining / (len(self.upstreams) - i)
            reply = await self._ask(wire, upstream, share, deadline)
            if reply is not None:
                self._store(key, reply)
                reply.header.id = query.header.id
                return reply
        self.timeouts += 1
        return None

    async def _ask(
        self, wire: bytes, upstream: tuple[str, int], wait: float, deadline: float
    ) -> Any | None:
        msg_id = secrets.randbits(16)
        out = struct.pack("!H", msg_id) + wire[2:]
        question = question_of(out)
        if question is None:
            return None
        data = await self._ask_udp(out, msg_id, question, upstream, wait)
        if data is None:
            return None
        try:
            reply = decode_message(data)
        except DnsFormatError:
            return None
        if reply.header.tc:
            self.tcp_retries += 1
            remaining = deadline - self._clock()
            if remaining <= 0:
                return reply
            try:
                async with asyncio.timeout(remaining):
                    return await self._ask_tcp(out, msg_id, question, upstream)
            except (TimeoutError, OSError, DnsFormatError, asyncio.IncompleteReadError):
                return reply
        return reply

    async def _ask_udp(
        self, out: bytes, msg_id: int, question: Question, upstream: tuple[str, int], wait: float
    ) -> bytes | None:
        loop = asyncio.get_running_loop()
        try:
            transport, exchange = await loop.create_datagram_endpoint(
                _Exchange, remote_addr=upstream
            )
        except OSError as exc:
            log.debug("forward to %s:%d failed: %s", upstream[0], upstream[1], exc)
            return None
        self._open.add(transport)
        try:
            transport.sendto(out)
            async with asyncio.timeout(wait):
                while True:
                    data, addr = await exchange.received.get()
                    if _same_peer(addr, upstream) and answers(data, msg_id, question):
                        return data
                    self.mismatched += 1
        except TimeoutError:
            return None
        finally:
            self._open.discard(transport)
            transport.close()

    async def _ask_tcp(
        self, out: bytes, msg_id: int, question: Question, upstream: tuple[str, int]
    ) -> Any:
        reader, writer = await asyncio.open_connection(*upstream)
        try:
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            data = await reader.readexactly(length)
            if not answers(data, msg_id, question):
                self.mismatched += 1
                raise DnsFormatError("the TCP reply does not answer the query")
            return decode_message(data)
        finally:
            writer.close()

    def _store(self, key: tuple[str, int, int, int], reply: Any) -> None:
        if (
            self.cache_size <= 0
            or reply.header.rcode not in (Rcode.NOERROR, Rcode.NXDOMAIN)
            or reply.header.tc
        ):
            return
        ttls = [rr.ttl for rr in (*reply.rr, *reply.auth) if rr.rtype != QType.OPT]
        if not reply.rr:
            # RFC 2308 §5: a negative answer lives for min(SOA TTL, SOA MINIMUM).
            soas = [rr for rr in reply.auth if rr.rtype == QType.SOA]
            ttls = [min(rr.ttl, rr.rdata.times[4]) for rr in soas]
        if not ttls:
            return
        ttl = min(min(ttls), MAX_CACHE_TTL)
        if ttl <= 0:
            return
        now = self._clock()
        self._cache[key] = _Cached(expires=now + ttl, stored=now, reply=reply)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _aged(reply: Any, msg_id: int, age: int) -> Any:
    copy = decode_message(reply.pack())
    copy.header.id = msg_id
    for rr in (*copy.rr, *copy.auth, *copy.ar):
        if rr.rtype != QType.OPT:
            rr.ttl = max(0, rr.ttl - age)
    return copy
