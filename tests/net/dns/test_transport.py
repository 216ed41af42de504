"""UDP and TCP transport behaviour on loopback: FORMERR, drops, truncation and TCP retry,
pipelining, idle timeout, connection cap, the compiled answers and their recompilation."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest
from dnslib import DNSRecord

from ddi.dns.zone import label
from ddi.ipam.models import Record
from tests.waiting import until

pytestmark = pytest.mark.asyncio


async def _udp(h: Any, port: int, data: bytes, wait: float = 1.0) -> bytes | None:
    reply: bytes | None = await h.udp(("127.0.0.1", port), data, wait)
    return reply


async def test_garbage_gets_formerr_and_short_header_is_dropped(tmp_path: Path, h: Any) -> None:
    port = h.free_port()
    async with h.running(h.config(tmp_path, port), port) as r:
        reply = await _udp(h, port, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff")
        assert reply is not None
        msg = DNSRecord.parse(reply)
        assert msg.header.id == 0x1234
        assert msg.header.rcode == 1
        assert await _udp(h, port, b"\x12\x34\x01", wait=0.3) is None
        stats = r.server.statistics()
        assert stats["listen"] == [f"127.0.0.1:{port}"]


async def test_compiled_answers_serve_and_follow_a_change(tmp_path: Path, h: Any) -> None:
    port = h.free_port()
    async with h.running(h.config(tmp_path, port), port) as r:
        await r.store.add_record(
            Record(id="", name="a.site.example", rtype="A", value="198.18.0.5"),
            actor="t",
            reason="t",
        )
        q = DNSRecord.question(label("a.site.example"))
        q.header.id = 1
        first = await _udp(h, port, q.pack())
        q.header.id = 2
        second = await _udp(h, port, q.pack())
        assert first is not None
        assert second is not None
        assert second[:2] == b"\x00\x02"
        assert first[2:] == second[2:]
        stats = r.server.statistics()
        assert stats["compiled"]["answers"] == 2
        assert stats["queries_decoded"] == 0
        assert stats["cache"]["hits"] == 0
        await r.store.add_record(
            Record(id="", name="a.site.example", rtype="A", value="198.18.0.6"),
            actor="t",
            reason="t",
        )
        third = await _udp(h, port, q.pack())
        assert third is not None
        assert sorted(str(rr.rdata) for rr in DNSRecord.parse(third).rr) == [
            "198.18.0.5",
            "198.18.0.6",
        ]
        assert r.server.statistics()["compiled"]["answers"] == 3


async def test_big_answer_truncates_over_udp_and_dig_retries_over_tcp(
    tmp_path: Path, h: Any
) -> None:
    h.need("dig")
    port = h.free_port()
    async with h.running(h.config(tmp_path, port), port) as r:
        for i in range(40):
            await r.store.add_record(
                Record(id="", name="many.site.example", rtype="A", value=f"198.18.0.{i + 1}"),
                actor="t",
                reason="t",
            )
        q = DNSRecord.question(label("many.site.example"))
        reply = await _udp(h, port, q.pack())
        assert reply is not None
        assert len(reply) <= 512
        assert DNSRecord.parse(reply).header.tc == 1
        out = await h.dig(r, "many.site.example", "+noedns")
        assert "Truncated, retrying in TCP mode" in out
        assert out.count("\tA\t") == 40
        out = await h.dig(r, "many.site.example", "+bufsize=1232", "+ignore")
        assert "flags: qr aa tc" not in out
        assert out.count("\tA\t") == 40


async def _tcp_query(writer: asyncio.StreamWriter, name: str, msg_id: int) -> None:
    q = DNSRecord.question(label(name))
    q.header.id = msg_id
    wire = q.pack()
    writer.write(struct.pack("!H", len(wire)) + wire)
    await writer.drain()


async def _tcp_reply(reader: asyncio.StreamReader) -> Any:
    (length,) = struct.unpack("!H", await reader.readexactly(2))
    return DNSRecord.parse(await reader.readexactly(length))


async def test_tcp_pipelined_queries_are_all_answered(tmp_path: Path, h: Any) -> None:
    port = h.free_port()
    async with h.running(h.config(tmp_path, port), port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(5):
            await _tcp_query(writer, "ns.site.example" if i % 2 else "nope.site.example", i + 1)
        replies = [await asyncio.wait_for(_tcp_reply(reader), 2) for _ in range(5)]
        assert [m.header.id for m in replies] == [1, 2, 3, 4, 5]
        assert [m.header.rcode for m in replies] == [3, 0, 3, 0, 3]
        writer.close()


async def test_tcp_idle_connection_is_closed(tmp_path: Path, h: Any) -> None:
    port = h.free_port()
    async with h.running(h.config(tmp_path, port, tcp_idle_timeout=0.3), port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()


async def test_tcp_connection_cap(tmp_path: Path, h: Any) -> None:
    port = h.free_port()
    async with h.running(h.config(tmp_path, port, tcp_max_connections=2), port) as r:
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await until(lambda: r.server.tcp_connections == 2, "both connections accepted")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()
        for _, w in conns:
            w.close()
