"""The forwarder against a fake upstream on loopback: TCP retry on truncation, TTL cache,
and the client's ID on every reply."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from dnslib import QTYPE, RR, A, DNSRecord

from ddi.dns.forward import Forwarder
from ddi.dns.zone import label

pytestmark = pytest.mark.asyncio


@dataclass
class Upstream:
    """Answers every A query with one address over TCP, and with TC set over UDP when the
    name starts with ``big``; counts what it gets."""

    port: int = 0
    udp_queries: int = 0
    tcp_queries: int = 0
    _tasks: list[Any] = field(default_factory=list)

    def answer(self, data: bytes, *, tcp: bool) -> bytes:
        query = DNSRecord.parse(data)
        reply = query.reply()
        if str(query.q.qname).startswith("big") and not tcp:
            reply.header.tc = 1
        else:
            reply.add_answer(RR(query.q.qname, QTYPE.A, ttl=60, rdata=A("198.18.7.7")))
        return bytes(reply.pack())


@pytest_asyncio.fixture
async def upstream(h: Any) -> AsyncIterator[Upstream]:
    up = Upstream(port=h.free_port())
    loop = asyncio.get_running_loop()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", up.port))
    udp.setblocking(False)

    async def serve_udp() -> None:
        while True:
            data, addr = await loop.sock_recvfrom(udp, 65535)
            up.udp_queries += 1
            await loop.sock_sendto(udp, up.answer(data, tcp=False), addr)

    async def serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        up.tcp_queries += 1
        reply = up.answer(await reader.readexactly(length), tcp=True)
        writer.write(struct.pack("!H", len(reply)) + reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve_tcp, "127.0.0.1", up.port)
    task = asyncio.create_task(serve_udp())
    try:
        yield up
    finally:
        task.cancel()
        server.close()
        await server.wait_closed()
        udp.close()


async def test_truncated_upstream_reply_is_fetched_over_tcp(upstream: Upstream) -> None:
    fwd = Forwarder([("127.0.0.1", upstream.port)], timeout=2.0)
    fwd.start()
    try:
        query = DNSRecord.question(label("big.elsewhere.example"))
        query.header.id = 4321
        reply = await fwd.resolve(query)
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
            query = DNSRecord.question(label("www.elsewhere.example"))
            query.header.id = msg_id
            reply = await fwd.resolve(query)
            assert reply is not None
            assert reply.header.id == msg_id
            now[0] += 10
        assert upstream.udp_queries == 1
        assert reply.rr[0].ttl == 50  # aged by its 10 s in the cache
        now[0] += 60
        assert await fwd.resolve(DNSRecord.question(label("www.elsewhere.example"))) is not None
        assert upstream.udp_queries == 2
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
