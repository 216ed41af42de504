"""The forwarder against a fake upstream on loopback: TCP retry on truncation, TTL cache, the
client's ID on every reply, and RFC 5452's matching (a reply answers the query only from the
upstream asked, with its ID and its question; each query from its own random port)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from dnslib import QTYPE, RR, A, DNSRecord

from ddi.dns.forward import Forwarder
from ddi.dns.zone import label

pytestmark = pytest.mark.asyncio

Respond = Callable[["Upstream", DNSRecord, bytes], list[tuple[bytes, bool]]]


def _answer(query: DNSRecord, address: str = "198.18.7.7", *, tc: bool = False) -> bytes:
    reply = query.reply()
    if tc:
        reply.header.tc = 1
    else:
        reply.add_answer(RR(query.q.qname, QTYPE.A, ttl=60, rdata=A(address)))
    return bytes(reply.pack())


def honest(up: Upstream, query: DNSRecord, data: bytes) -> list[tuple[bytes, bool]]:
    """Answers every A query with one address; TC over UDP when the name starts with ``big``."""
    return [(_answer(query, tc=str(query.q.qname).startswith("big")), False)]


def poison(query: DNSRecord) -> bytes:
    """A reply with the query's ID to another question, whose answer claims the asked name."""
    forged = DNSRecord.question(label("evil.example"))
    forged.header.id = query.header.id
    reply = forged.reply()
    reply.add_answer(RR(query.q.qname, QTYPE.A, ttl=3600, rdata=A("203.0.113.66")))
    return bytes(reply.pack())


@dataclass
class Upstream:
    """A UDP and TCP resolver on loopback whose answers ``respond`` chooses: each is sent from
    the listening socket, or (True) from another socket on another port."""

    h: Any
    respond: Respond = honest
    port: int = 0
    udp_queries: int = 0
    tcp_queries: int = 0
    sources: list[int] = field(default_factory=list)
    """The source port of each UDP query."""

    async def serve(self) -> AsyncIterator[Upstream]:
        self.port = self.h.free_port()
        udp = await self.h.datagrams(local_addr=("127.0.0.1", self.port))
        other = await self.h.datagrams(local_addr=("127.0.0.1", 0))

        async def serve_udp() -> None:
            while True:
                data, addr = await udp.received.get()
                self.udp_queries += 1
                self.sources.append(addr[1])
                for reply, elsewhere in self.respond(self, DNSRecord.parse(data), data):
                    (other if elsewhere else udp).sendto(reply, addr)

        async def serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            self.tcp_queries += 1
            reply = _answer(DNSRecord.parse(await reader.readexactly(length)))
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve_tcp, "127.0.0.1", self.port)
        task = asyncio.create_task(serve_udp())
        try:
            yield self
        finally:
            task.cancel()
            server.close()
            await server.wait_closed()
            udp.close()
            other.close()


@pytest_asyncio.fixture
async def upstream(h: Any) -> AsyncIterator[Upstream]:
    async for up in Upstream(h).serve():
        yield up


def _query(name: str, msg_id: int = 4321) -> DNSRecord:
    query = DNSRecord.question(label(name))
    query.header.id = msg_id
    return query


async def test_truncated_upstream_reply_is_fetched_over_tcp(upstream: Upstream) -> None:
    fwd = Forwarder([("127.0.0.1", upstream.port)], timeout=2.0)
    fwd.start()
    try:
        reply = await fwd.resolve(_query("big.elsewhere.example"))
        assert reply is not None
        assert reply.header.id == 4321
        assert reply.header.tc == 0
        assert [str(rr.rdata) for rr in reply.rr] == ["198.18.7.7"]
        assert upstream.tcp_queries == 1
    finally:
        fwd.close()


async def test_answers_are_cached_for_their_ttl(upstream: Upstream) -> None:
    now = [1000.0]
    fwd = Forwarder([("127.0.0.1", upstream.port)], timeout=2.0, clock=lambda: now[0])
    fwd.start()
    try:
        for msg_id in (1, 2):
            reply = await fwd.resolve(_query("www.elsewhere.example", msg_id))
            assert reply is not None
            assert reply.header.id == msg_id
            now[0] += 10
        assert upstream.udp_queries == 1
        assert reply.rr[0].ttl == 50  # aged by its 10 s in the cache
        now[0] += 60
        assert await fwd.resolve(_query("www.elsewhere.example")) is not None
        assert upstream.udp_queries == 2
    finally:
        fwd.close()


async def test_a_reply_to_another_question_is_ignored(upstream: Upstream) -> None:
    """The forged reply comes first, with the right ID, from the right address and port: only
    its question gives it away. The real answer that follows is the one taken and cached."""
    upstream.respond = lambda up, q, data: [(poison(q), False), (_answer(q), False)]
    fwd = Forwarder([("127.0.0.1", upstream.port)], timeout=2.0)
    fwd.start()
    try:
        for _ in range(2):  # the second comes from the cache
            reply = await fwd.resolve(_query("www.elsewhere.example"))
            assert reply is not None
            assert [str(rr.rdata) for rr in reply.rr] == ["198.18.7.7"]
        assert fwd.statistics()["mismatched"] == 1
    finally:
        fwd.close()


async def test_only_replies_to_other_questions_is_a_timeout(upstream: Upstream) -> None:
    upstream.respond = lambda up, q, data: [(poison(q), False)]
    fwd = Forwarder([("127.0.0.1", upstream.port)], timeout=0.5)
    fwd.start()
    try:
        assert await fwd.resolve(_query("www.elsewhere.example")) is None
        assert fwd.statistics()["timeouts"] == 1
    finally:
        fwd.close()


async def test_the_question_is_matched_without_regard_to_case(upstream: Upstream) -> None:
    def upper(up: Upstream, q: DNSRecord, data: bytes) -> list[tuple[bytes, bool]]:
        wire = bytearray(_answer(q))
        wire[12:40] = wire[12:40].upper()  # the question's name, 0x20-style
        return [(bytes(wire), False)]

    upstream.respond = upper
    fwd = Forwarder([("127.0.0.1", upstream.port)], timeout=2.0)
    fwd.start()
    try:
        assert await fwd.resolve(_query("www.elsewhere.example")) is not None
    finally:
        fwd.close()


async def test_a_reply_from_another_port_is_not_taken(upstream: Upstream) -> None:
    upstream.respond = lambda up, q, data: [(_answer(q, "203.0.113.66"), True)]
    fwd = Forwarder([("127.0.0.1", upstream.port)], timeout=0.5)
    fwd.start()
    try:
        assert await fwd.resolve(_query("www.elsewhere.example")) is None
    finally:
        fwd.close()


async def test_each_query_leaves_from_its_own_port_with_its_own_id(upstream: Upstream) -> None:
    ids: list[int] = []

    def record(up: Upstream, q: DNSRecord, data: bytes) -> list[tuple[bytes, bool]]:
        ids.append(q.header.id)
        return honest(up, q, data)

    upstream.respond = record
    fwd = Forwarder([("127.0.0.1", upstream.port)], timeout=2.0, cache_size=0)
    fwd.start()
    try:
        for i in range(6):
            assert await fwd.resolve(_query(f"n{i}.elsewhere.example", msg_id=7)) is not None
        # A fixed port would let an off-path forger aim at one port (RFC 5452 §4.5, §9.2).
        assert len(set(upstream.sources)) > 1
        assert len(set(ids)) > 1
    finally:
        fwd.close()


async def test_forwarded_names_through_the_server(
    tmp_path: Path, h: Any, upstream: Upstream
) -> None:
    h.need("dig")
    port = h.free_port()
    cfg = h.config(tmp_path, port, forwarders=[f"127.0.0.1:{upstream.port}"])
    async with h.running(cfg, port) as r:
        assert (await h.dig(r, "+short", "www.elsewhere.example")).strip() == "198.18.7.7"
        out = await h.dig(r, "+short", "+tcp", "big.elsewhere.example")
        assert out.strip() == "198.18.7.7"
        out = await h.dig(r, "ns.site.example", "+norec")
        assert "flags: qr aa ra" in out
