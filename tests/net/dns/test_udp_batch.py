"""Batched UDP (recvmmsg/sendmmsg) on loopback: the batch object on its own, then the DNS
service answering through it and through the recvfrom loop alike."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from dnslib import EDNS0, QTYPE, RR, A, DNSRecord
from prometheus_client import REGISTRY

from ddi.config import Config
from ddi.dns import rrl, udp_batch
from ddi.dns.acl import Acl
from ddi.dns.server import DnsServer
from ddi.dns.zone import label
from ddi.ipam.models import Host, Record
from ddi.site import open_site
from tests.ci import skip_or_fail, unless

needs_batch = unless(udp_batch.AVAILABLE, udp_batch.UNAVAILABLE_REASON)
PATHS = [pytest.param(64, id="recvmmsg", marks=needs_batch), pytest.param(0, id="recvfrom")]


def _pair(family: socket.AddressFamily, host: str) -> tuple[socket.socket, socket.socket]:
    server = socket.socket(family, socket.SOCK_DGRAM)
    server.bind((host, 0))
    server.setblocking(False)
    client = socket.socket(family, socket.SOCK_DGRAM)
    client.bind((host, 0))
    client.settimeout(2.0)
    return server, client


@pytest.fixture
def v4() -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    server, client = _pair(socket.AF_INET, "127.0.0.1")
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.settimeout(2.0)
    with server, client, other:
        yield server, client, other


def _receive_all(batch: udp_batch.BatchSocket, want: int) -> int:
    """Loopback delivers on send; retry briefly all the same."""
    deadline = time.monotonic() + 2.0
    while True:
        n = batch.receive()
        if n >= want or time.monotonic() > deadline:
            return n
        time.sleep(0.01)


# --- the batch object ----------------------------------------------------------------------


@needs_batch
def test_one_receive_takes_every_waiting_datagram_and_replies_reach_their_senders(
    v4: tuple[socket.socket, socket.socket, socket.socket],
) -> None:
    server, client, other = v4
    batch = udp_batch.BatchSocket(server, slots=16, slot_size=256)
    target = server.getsockname()
    senders = [client, other] * 5
    for i, s in enumerate(senders):
        s.sendto(bytes([0, i]) + b"query%d" % i, target)
    assert _receive_all(batch, 10) == 10
    assert batch.receive_calls == 1
    assert batch.datagrams() == [bytes([0, i]) + b"query%d" % i for i in range(10)]
    assert [batch.peer(i) for i in range(10)] == [s.getsockname() for s in senders]
    skipped = {3, 6}  # gaps: the replies after them move down in the send vector
    for i in range(10):
        if i not in skipped:
            assert batch.queue_body(i, b"reply%d" % i)
    assert batch.flush() == (8, 0)
    assert batch.send_calls == 1
    got: dict[int, bytes] = {}
    for s in (client, other):
        for _ in range(4):
            data, addr = s.recvfrom(512)
            assert addr == target
            got[data[1]] = data
            assert senders[data[1]] is s
    assert got == {i: bytes([0, i]) + b"reply%d" % i for i in range(10) if i not in skipped}

    # The next batch, answered in order, uses the prefilled send vector again.
    for i in range(3):
        client.sendto(bytes([1, i]) + b"again", target)
    assert _receive_all(batch, 3) == 3
    for i in range(3):
        assert batch.queue_reply(i, batch.datagram(i)[:2] + b"ok")
    assert batch.flush() == (3, 0)
    assert sorted(client.recvfrom(512)[0] for _ in range(3)) == [
        bytes([1, i]) + b"ok" for i in range(3)
    ]


@needs_batch
def test_a_reply_written_over_its_query_goes_back_whole(
    v4: tuple[socket.socket, socket.socket, socket.socket],
) -> None:
    server, client, other = v4
    batch = udp_batch.BatchSocket(server, slots=4, slot_size=64)
    target = server.getsockname()
    client.sendto(b"\x00\x01question-one", target)
    other.sendto(b"\x00\x02question-two", target)
    assert _receive_all(batch, 2) == 2
    # Slot 0 gets no reply; slot 1's reply is written in place, longer than its query.
    offset = batch.offsets[1]
    batch.view[offset + 2 : offset + 20] = b"a longer answer!!!"
    batch.queue_written(1, 20)
    assert batch.flush() == (1, 0)
    assert other.recvfrom(64) == (b"\x00\x02a longer answer!!!", target)


@needs_batch
def test_ipv6_peer_address_is_given_as_recvfrom_gives_it() -> None:
    try:
        server, client = _pair(socket.AF_INET6, "::1")
    except OSError as exc:
        skip_or_fail(f"no IPv6 loopback: {exc}")
    with server, client:
        batch = udp_batch.BatchSocket(server, slots=4, slot_size=128)
        client.sendto(b"\x00\x07question", server.getsockname())
        assert _receive_all(batch, 1) == 1
        assert batch.peer(0) == client.getsockname()
        assert batch.datagram(0) == b"\x00\x07question"
        assert batch.queue_body(0, b"answer")
        assert batch.flush() == (1, 0)
        assert client.recvfrom(128) == (b"\x00\x07answer", server.getsockname())


@needs_batch
def test_a_datagram_longer_than_its_slot_is_flagged_truncated(
    v4: tuple[socket.socket, socket.socket, socket.socket],
) -> None:
    server, client, _ = v4
    batch = udp_batch.BatchSocket(server, slots=4, slot_size=64)
    target = server.getsockname()
    client.sendto(b"\x00\x01" + bytes(98), target)  # 100 bytes: cut to 64
    client.sendto(b"\x00\x02" + bytes(62), target)  # exactly 64: whole
    client.sendto(b"\x00\x03short", target)
    assert _receive_all(batch, 3) == 3
    assert batch.datagrams() == [None, None, b"\x00\x03short"]
    assert batch.truncated(0)
    assert batch.datagram(0) == b"\x00\x01" + bytes(62)
    assert not batch.truncated(1)
    assert batch.datagram(1) == b"\x00\x02" + bytes(62)
    assert not batch.truncated(2)


# --- the DNS service -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(cfg: Config, **options: Any) -> AsyncIterator[DnsServer]:
    async with open_site(cfg, actor="test") as site:
        await site.store.add_host(
            Host(id="", ip=IPv4Address("198.18.0.10"), hostname="web", mac="52:54:00:00:00:01"),
            actor="t",
            reason="t",
        )
        async with asyncio.TaskGroup() as tg:
            server = DnsServer(site, **options)
            await server.start(tg)
            try:
                yield server
            finally:
                await server.close()


async def _exchange(
    queries: list[bytes], address: tuple[Any, ...], wait: float = 3.0
) -> list[bytes]:
    """Send every query at once from one socket, then collect the replies."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for q in queries:
            sock.sendto(q, address)
        replies = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while len(replies) < len(queries):
                    replies.append(await loop.sock_recv(sock, 65535))  # uvloop has sock_recv
        return replies


def _query(name: str, msg_id: int, qtype: str = "A", bufsize: int | None = None) -> bytes:
    q = DNSRecord.question(label(name), qtype)
    q.header.id = msg_id
    if bufsize is not None:
        q.add_ar(EDNS0(udp_len=bufsize))
    return bytes(q.pack())


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.asyncio
@pytest.mark.parametrize("slots", PATHS)
async def test_queries_in_flight_get_their_own_answers_and_are_counted(
    tmp_path: Path, h: Any, slots: int
) -> None:
    port = h.free_port()
    names = ["web.site.example", "nowhere.site.example"]
    queries = [_query(names[i % 2], 1000 + i) for i in range(100)]
    noerror = _sample("ddi_dns_queries_total", qtype="A", rcode="NOERROR")
    nxdomain = _sample("ddi_dns_queries_total", qtype="A", rcode="NXDOMAIN")
    async with serving(h.config(tmp_path, port), udp_slots=slots) as server:
        replies = await _exchange(queries, ("127.0.0.1", port))
        assert len(replies) == 100
        for wire in replies:
            reply = DNSRecord.parse(wire)
            i = reply.header.id - 1000
            assert str(reply.q.qname) == names[i % 2] + "."
            if i % 2 == 0:
                assert [str(rr.rdata) for rr in reply.rr] == ["198.18.0.10"]
            else:
                assert reply.header.rcode == 3  # NXDOMAIN
        stats = server.statistics()
        assert stats["udp_io"] == ("recvmmsg" if slots else "recvfrom")
        # Every one comes from the compiled answers: none is decoded, the cache is not asked.
        assert stats["compiled"]["answers"] == 100
        assert stats["queries_decoded"] == 0
        assert (stats["cache"]["hits"], stats["cache"]["misses"]) == (0, 0)
        if slots:
            assert stats["udp_batches"]["receive_calls"] < 10
            assert stats["udp_batches"]["send_calls"] < 10
    assert _sample("ddi_dns_queries_total", qtype="A", rcode="NOERROR") - noerror == 50
    assert _sample("ddi_dns_queries_total", qtype="A", rcode="NXDOMAIN") - nxdomain == 50


@pytest.mark.asyncio
@pytest.mark.parametrize("slots", PATHS)
async def test_ipv6_listener_answers_ipv6_clients(tmp_path: Path, h: Any, slots: int) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("::1", 0))
        except OSError as exc:
            skip_or_fail(f"no IPv6 loopback: {exc}")
        port = probe.getsockname()[1]
    cfg = h.config(tmp_path, port, listen=[f"[::1]:{port}"])
    async with serving(cfg, udp_slots=slots):
        queries = [_query("web.site.example", 7 + i) for i in range(3)]
        replies = [DNSRecord.parse(w) for w in await _exchange(queries, ("::1", port))]
        assert sorted(r.header.id for r in replies) == [7, 8, 9]
        assert all([str(rr.rdata) for rr in r.rr] == ["198.18.0.10"] for r in replies)


@pytest.mark.asyncio
@needs_batch
async def test_reply_larger_than_a_slot_is_sent_on_its_own(tmp_path: Path, h: Any) -> None:
    port = h.free_port()
    async with serving(h.config(tmp_path, port), udp_slots=8, udp_slot_size=128) as server:
        for i in range(12):
            await server.site.store.add_record(
                Record(id="", name="many.site.example", rtype="A", value=f"198.18.0.{i + 1}"),
                actor="t",
                reason="t",
            )
        # Twice: the compiled answer does not fit the slot, so the first is answered by the
        # engine (and sent on its own), the second from the answer cache.
        queries = [_query("many.site.example", i, bufsize=1232) for i in (1, 2)]
        queries.insert(1, _query("web.site.example", 3))
        replies = {
            r.header.id: r
            for r in map(DNSRecord.parse, await _exchange(queries, ("127.0.0.1", port)))
        }
        assert sorted(replies) == [1, 2, 3]
        for i in (1, 2):
            assert len(replies[i].rr) == 12
            assert replies[i].header.tc == 0
        assert [str(rr.rdata) for rr in replies[3].rr] == ["198.18.0.10"]
        assert server.statistics()["cache"]["hits"] == 1


@pytest.mark.asyncio
@needs_batch
async def test_query_longer_than_a_slot_gets_formerr(tmp_path: Path, h: Any) -> None:
    port = h.free_port()
    async with serving(h.config(tmp_path, port), udp_slots=8, udp_slot_size=128):
        long_name = ".".join(["a" * 60] * 3) + ".site.example"
        queries = [_query(long_name, 41), _query("web.site.example", 42)]
        replies = {
            r.header.id: r
            for r in map(DNSRecord.parse, await _exchange(queries, ("127.0.0.1", port)))
        }
        assert sorted(replies) == [41, 42]
        assert replies[41].header.rcode == 1  # FORMERR
        assert [str(rr.rdata) for rr in replies[42].rr] == ["198.18.0.10"]


@pytest.mark.asyncio
@pytest.mark.parametrize("slots", PATHS)
async def test_forwarded_miss_is_answered_later_to_its_sender(
    tmp_path: Path, h: Any, slots: int
) -> None:
    upstream = await h.datagrams(local_addr=("127.0.0.1", 0))

    async def answer() -> None:
        while True:
            data, addr = await upstream.received.get()
            query = DNSRecord.parse(data)
            reply = query.reply()
            reply.add_answer(RR(query.q.qname, QTYPE.A, ttl=60, rdata=A("198.18.7.7")))
            upstream.sendto(reply.pack(), addr)

    task = asyncio.create_task(answer())
    try:
        port = h.free_port()
        upstream_port = upstream.transport.get_extra_info("sockname")[1]
        cfg = h.config(tmp_path, port, forwarders=[f"127.0.0.1:{upstream_port}"])
        async with serving(cfg, udp_slots=slots):
            queries = [_query("www.elsewhere.example", 50), _query("web.site.example", 51)]
            replies = {
                r.header.id: r
                for r in map(DNSRecord.parse, await _exchange(queries, ("127.0.0.1", port)))
            }
            assert sorted(replies) == [50, 51]
            assert [str(rr.rdata) for rr in replies[50].rr] == ["198.18.7.7"]
            assert [str(rr.rdata) for rr in replies[51].rr] == ["198.18.0.10"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        upstream.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("slots", PATHS)
async def test_answers_past_the_rate_limit_are_dropped_or_slip_truncated(
    tmp_path: Path, h: Any, slots: int
) -> None:
    port = h.free_port()
    limited = _sample("ddi_dns_dropped_total", reason="rate_limited")
    slipped = _sample("ddi_dns_dropped_total", reason="rate_limited_slip")
    async with serving(h.config(tmp_path, port), udp_slots=slots, clock=lambda: 1e9) as server:
        # Loopback is the site's own: exempt, with the limit on by default (NSD's numbers).
        replies = await _exchange(
            [_query("web.site.example", i) for i in range(30)], ("127.0.0.1", port)
        )
        assert len(replies) == 30
        assert server.statistics()["rate_limit"] == {
            "ratelimit": 200,
            "slip": 2,
            "dropped": 0,
            "slipped": 0,
            "prefixes": 0,
        }
        # The same loop with loopback taken for an outside client, 10 answers a second.
        server.limiter = rrl.RateLimiter(ratelimit=10, slip=2, exempt=Acl())
        queries = [_query("web.site.example", 100 + i) for i in range(30)]
        replies = await _exchange(queries, ("127.0.0.1", port), wait=1.0)
        messages = [DNSRecord.parse(r) for r in replies]
        full = [m for m in messages if not m.header.tc]
        cut = [m for m in messages if m.header.tc]
        assert len(full) == 10
        assert all([str(rr.rdata) for rr in m.rr] == ["198.18.0.10"] for m in full)
        assert len(cut) == 10  # every second one withheld goes out truncated
        assert all((m.rr, str(m.q.qname)) == ([], "web.site.example.") for m in cut)
        stats = server.statistics()["rate_limit"]
        assert (stats["dropped"], stats["slipped"], stats["prefixes"]) == (10, 10, 1)
    assert _sample("ddi_dns_dropped_total", reason="rate_limited") - limited == 10
    assert _sample("ddi_dns_dropped_total", reason="rate_limited_slip") - slipped == 10


@pytest.mark.asyncio
@pytest.mark.parametrize("slots", PATHS)
async def test_an_ipv4_client_on_a_dual_stack_listener_is_held_to_the_acl(
    tmp_path: Path, h: Any, slots: int
) -> None:
    """``listen = ["[::]:port"]``: an IPv4 client arrives as ``::ffff:127.0.0.1`` and must be
    matched as 127.0.0.1 (here outside ``recursion_from``), not waved through."""
    upstream = await h.datagrams(local_addr=("127.0.0.1", 0))
    upstream_port = upstream.transport.get_extra_info("sockname")[1]

    async def answer() -> None:
        while True:
            data, addr = await upstream.received.get()
            query = DNSRecord.parse(data)
            reply = query.reply()
            reply.add_answer(RR(query.q.qname, QTYPE.A, ttl=60, rdata=A("203.0.113.66")))
            upstream.sendto(reply.pack(), addr)

    task = asyncio.create_task(answer())
    port = h.free_port()
    cfg = h.config(
        tmp_path,
        port,
        listen=[f"[::]:{port}"],
        forwarders=[f"127.0.0.1:{upstream_port}"],
        recursion_from=["198.18.0.0/24"],
    )
    try:
        async with serving(cfg, udp_slots=slots):
            for address in (("127.0.0.1", port), ("::1", port)):
                replies = await _exchange([_query("www.elsewhere.example", 5)], address)
                assert len(replies) == 1
                reply = DNSRecord.parse(replies[0])
                assert (reply.header.rcode, reply.rr) == (5, [])  # REFUSED
                local = await _exchange([_query("web.site.example", 6)], address)
                assert [str(rr.rdata) for rr in DNSRecord.parse(local[0]).rr] == ["198.18.0.10"]
    finally:
        task.cancel()
        upstream.close()
