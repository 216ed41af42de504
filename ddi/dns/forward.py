"""Forwarding of names outside the local zones to configured upstream resolvers.

One non-blocking UDP socket carries every forwarded query under a fresh random ID (the client's
ID is restored on the reply); a reply with TC set is fetched again over TCP from the same
upstream (RFC 7766 §5). Upstreams are tried in order within one overall deadline
(``timeout``); when it passes with no answer the caller sends SERVFAIL, so with the WAN down
forwarding fails fast while local names keep answering from the zones.

A small cache keeps upstream answers for their TTL (the smallest TTL in the reply, or for a
negative answer the SOA minimum, RFC 2308 §5); served copies have their TTLs decreased by the
time they spent in the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ddi.dns.wire import QType, Rcode, decode_message
from ddi.errors import DnsFormatError

log = logging.getLogger(__name__)

MAX_CACHE_TTL = 3600


@dataclass(slots=True)
class _Cached:
    expires: float
    stored: float
    reply: Any


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
        self._pending: dict[tuple[int, tuple[str, int]], asyncio.Future[bytes]] = {}
        self._sock: socket.socket | None = None
        self.forwarded = 0
        self.timeouts = 0
        self.cache_hits = 0
        self.tcp_retries = 0

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(("0.0.0.0", 0))
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for fut in self._pending.values():
            fut.cancel()
        self._pending.clear()

    def statistics(self) -> dict[str, int]:
        return {
            "forwarded": self.forwarded,
            "timeouts": self.timeouts,
            "cache_hits": self.cache_hits,
            "cache_entries": len(self._cache),
            "tcp_retries": self.tcp_retries,
        }

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data, addr = self._sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error surfaced on the socket: the query times out
            if len(data) < 2:
                continue
            fut = self._pending.get((struct.unpack_from("!H", data)[0], addr[:2]))
            if fut is not None and not fut.done():
                fut.set_result(data)

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
        loop = asyncio.get_running_loop()
        msg_id = secrets.randbits(16)
        while (msg_id, upstream) in self._pending:
            msg_id = secrets.randbits(16)
        fut: asyncio.Future[bytes] = loop.create_future()
        key = (msg_id, upstream)
        self._pending[key] = fut
        out = struct.pack("!H", msg_id) + wire[2:]
        try:
            if self._sock is None:
                return None
            try:
                self._sock.sendto(out, upstream)
            except OSError as exc:
                log.debug("forward to %s:%d failed: %s", upstream[0], upstream[1], exc)
                return None
            try:
                data = await asyncio.wait_for(fut, wait)
            except TimeoutError:
                return None
        finally:
            self._pending.pop(key, None)
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
                return await asyncio.wait_for(self._ask_tcp(out, upstream), remaining)
            except (TimeoutError, OSError, DnsFormatError, asyncio.IncompleteReadError):
                return reply
        return reply

    async def _ask_tcp(self, out: bytes, upstream: tuple[str, int]) -> Any:
        reader, writer = await asyncio.open_connection(*upstream)
        try:
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            return decode_message(await reader.readexactly(length))
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
