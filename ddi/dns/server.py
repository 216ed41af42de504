"""DNS transport: UDP and TCP listeners around the zones, engine, answer cache and forwarder.

UDP: a drain loop (``loop.add_reader`` on a non-blocking socket; DESIGN.md principle 7). On
Linux it receives and sends in batches (``recvmmsg``/``sendmmsg``, ddi.dns.udp_batch): one
system call brings up to ``UDP_SLOTS`` queries, one sends their replies. Elsewhere, or when
ctypes cannot reach them, it is a ``recvfrom``/``sendto`` loop; the choice is made once at
start. Each datagram is first looked up in the answer cache by its bytes after the ID: a hit
is the query's ID followed by the cached body, no decode. A miss is decoded, resolved by the
engine, encoded, cached when the engine marks it cacheable, and sent. Forwarded queries
become tasks in the service's TaskGroup (bounded) that reply later with ``sendto``.

TCP (RFC 7766): length-prefixed messages, pipelined queries answered in order on the
connection, an idle timeout, a cap on open connections; zone transfers (AXFR/IXFR) are
streamed here.

TSIG (RFC 8945): a signed query is verified before the engine sees it; a valid one gets a
signed reply (never cached), an invalid one NOTAUTH with the TSIG error.

Zones follow the IPAM index: ``index.subscribe`` applies each committed batch to the zones,
invalidates the answer cache and queues NOTIFYs to the configured secondaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address
from typing import TYPE_CHECKING, Any

from ddi import metrics
from ddi.dns import tsig, udp_batch, xfr
from ddi.dns.cache import AnswerCache, CachedAnswer
from ddi.dns.engine import (
    Answer,
    Decision,
    DnsEngine,
    Drop,
    EngineSettings,
    Forward,
    Rcode,
    Transfer,
    Transport,
    qtype_label,
)
from ddi.dns.forward import Forwarder
from ddi.dns.wire import HEADER_SIZE, decode_message, encode_message, error_response, pack
from ddi.dns.zone import Zones, ZoneSettings
from ddi.errors import ConfigError, DnsFormatError
from ddi.heap import release_free_memory
from ddi.ipam.views import Applied

if TYPE_CHECKING:
    from ddi.app import AppContext
    from ddi.config import Config

log = logging.getLogger(__name__)

UDP_RCVBUF = 4 * 1024 * 1024
UDP_BATCH = 256
"""Datagrams handled per wake-up before yielding to the loop."""
UDP_SLOTS = 64
"""Datagrams per ``recvmmsg``/``sendmmsg`` call; 0 selects the ``recvfrom`` loop."""
UDP_SLOT_SIZE = 4096
"""Bytes per batch slot: a longer query is cut by the kernel (and answered FORMERR), a longer
reply is sent on its own."""
MAX_FORWARDS_IN_FLIGHT = 1024
NOTIFY_TIMEOUT = 2.0
NOTIFY_ATTEMPTS = 3
TSIG_SIGNATURE = b"\x00\xfa\x00\xff"
"""TYPE TSIG (250), CLASS ANY (255): a message containing these bytes may be signed."""
TSIG_ROOM = 160
"""Bytes kept free for the TSIG RR when a signed reply must fit a size limit."""


_RCODE_LABELS = {int(r): r.name for r in Rcode}


def _rcode_label(rcode: int) -> str:
    return _RCODE_LABELS.get(rcode, "other")


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
    recursion_from = dns.recursion_from or (
        *(s.cidr for s in config.subnets),
        IPv4Network("127.0.0.0/8"),
    )
    return EngineSettings(
        forwarding=bool(dns.forwarders),
        recursion_from=tuple(recursion_from),
        allow_transfer=tuple(dns.allow_transfer),
        edns_udp_size=dns.edns_udp_size,
    )


@dataclass(frozen=True, slots=True)
class _Immediate:
    """A message answered (or dropped, ``reply`` None) before the engine."""

    reply: bytes | None


def _client_ip(addr: Any) -> IPv4Address | None:
    try:
        ip = ip_address(addr[0])
    except (ValueError, IndexError, TypeError):
        return None
    return ip if isinstance(ip, IPv4Address) else None


class DnsServer:
    """The DNS service of one daemon: build with the app, ``start`` in a TaskGroup, ``close``."""

    def __init__(
        self,
        app: AppContext,
        *,
        clock: Callable[[], float] = time.time,
        udp_slots: int = UDP_SLOTS,
        udp_slot_size: int = UDP_SLOT_SIZE,
    ) -> None:
        self.app = app
        self.config = app.config.dns
        self._clock = clock
        self.keys = {
            k.name: tsig.TsigKey(name=k.name, secret=k.secret)
            for k in self.config.tsig_keys.values()
        }
        self.zones: Zones | None = None
        self.engine: DnsEngine | None = None
        self.cache = AnswerCache(self.config.cache_size)
        self.forwarder: Forwarder | None = None
        self._udp: list[socket.socket] = []
        self._udp_slots = udp_slots if udp_batch.AVAILABLE else 0
        self._udp_slot_size = udp_slot_size
        self._batches: list[udp_batch.BatchSocket] = []
        self._tcp: list[asyncio.Server] = []
        self._tg: asyncio.TaskGroup | None = None
        self._forwards_in_flight = 0
        self.tcp_connections = 0
        self.queries = 0
        self.transfers = 0
        self._notify_pending: set[str] = set()
        self._notify_event = asyncio.Event()
        self.addresses: list[tuple[str, int]] = []

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self, tg: asyncio.TaskGroup) -> None:
        self._tg = tg
        serial = await self.app.store.last_seq()
        self._build(self.app.config, serial)
        # No await between the build and the subscription: no commit can fall in between.
        self.app.index.subscribe(self._on_changes)
        if self.config.forwarders:
            self.forwarder = Forwarder(self.config.forwarders, timeout=self.config.forward_timeout)
            self.forwarder.start()
        listen = self.config.listen or (("127.0.0.1", self.config.port),)
        if self._udp_slots:
            log.debug("dns UDP: recvmmsg/sendmmsg in batches of %d", self._udp_slots)
        elif udp_batch.AVAILABLE:
            log.debug("dns UDP: recvfrom/sendto (batching switched off)")
        else:
            log.debug("dns UDP: recvfrom/sendto (%s)", udp_batch.UNAVAILABLE_REASON)
        for host, port in listen:
            await self._listen(host, port)
        if self.config.secondaries:
            tg.create_task(self._notifier(), name="dns-notify")
            assert self.zones is not None
            self._queue_notify(self.zones.zones)
        assert self.zones is not None
        log.info("dns serving %s on %s", ", ".join(sorted(self.zones.zones)), _fmt(self.addresses))

    def _build(self, config: Config, serial: int) -> None:
        self.zones = Zones(zone_settings(config), self.app.index, serial=serial)
        self.engine = DnsEngine(engine_settings(config), self.zones)
        self.cache.invalidate()
        self._set_serial_gauges(self.zones.zones)
        release_free_memory()  # the build's temporaries (and a replaced zone set)

    async def _listen(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
        sock.setblocking(False)
        try:
            sock.bind((host, port))
            port = sock.getsockname()[1]
            server = await asyncio.start_server(
                self._tcp_client, host, port, reuse_address=True, family=family
            )
        except OSError as exc:
            sock.close()
            raise ConfigError(
                "dns.listen", f"cannot listen on {host}:{port}: {exc.strerror}"
            ) from None
        loop = asyncio.get_running_loop()
        if self._udp_slots:
            batch = udp_batch.BatchSocket(sock, self._udp_slots, self._udp_slot_size)
            loop.add_reader(sock.fileno(), self._udp_batch_readable, batch)
            self._batches.append(batch)
        else:
            loop.add_reader(sock.fileno(), self._udp_readable, sock)
        self._udp.append(sock)
        self._tcp.append(server)
        self.addresses.append((host, port))

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.app.index.unsubscribe(self._on_changes)
        loop = asyncio.get_running_loop()
        for sock in self._udp:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._udp.clear()
        self._batches.clear()
        for server in self._tcp:
            server.close()
        for server in self._tcp:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._tcp.clear()
        if self.forwarder is not None:
            self.forwarder.close()

    def statistics(self) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "listen": [f"{h}:{p}" for h, p in self.addresses],
            "queries_decoded": self.queries,
            "cache": self.cache.statistics(),
            "tcp_connections": self.tcp_connections,
            "transfers": self.transfers,
            "udp_io": "recvmmsg" if self._udp_slots else "recvfrom",
        }
        if self._batches:
            stats["udp_batches"] = {
                "receive_calls": sum(b.receive_calls for b in self._batches),
                "send_calls": sum(b.send_calls for b in self._batches),
            }
        if self.zones is not None:
            stats |= self.zones.statistics()
        if self.forwarder is not None:
            stats["forwarder"] = self.forwarder.statistics()
        return stats

    async def reload(self, config: Config) -> None:
        """Apply a reloaded config: zones, engine rules, TSIG keys, secondaries and forwarders
        at once; listeners, TCP limits and the cache size at the next restart."""
        old = self.config
        if (config.dns.listen, config.dns.port) != (old.listen, old.port):
            log.warning("dns.listen changed: takes effect at the next restart")
        self.config = config.dns
        self.keys = {
            k.name: tsig.TsigKey(name=k.name, secret=k.secret)
            for k in config.dns.tsig_keys.values()
        }
        if (config.dns.forwarders, config.dns.forward_timeout) != (
            old.forwarders,
            old.forward_timeout,
        ):
            if self.forwarder is not None:
                self.forwarder.close()
                self.forwarder = None
            if config.dns.forwarders:
                self.forwarder = Forwarder(
                    config.dns.forwarders, timeout=config.dns.forward_timeout
                )
                self.forwarder.start()
        if config.dns.secondaries and not old.secondaries and self._tg is not None:
            self._tg.create_task(self._notifier(), name="dns-notify")
        serial = max(z.serial for z in self.zones.zones.values()) if self.zones else 0
        self._build(config, max(serial + 1, await self.app.store.last_seq()))
        self._queue_notify(self.zones.zones if self.zones else ())

    # --- zone changes --------------------------------------------------------------------------

    def _on_changes(self, changes: Sequence[Applied]) -> None:
        if self.zones is None:
            return
        try:
            result = self.zones.apply(changes)
        except Exception:  # bug boundary: a bad change must not stop commits (R9)
            log.exception("applying %d changes to the DNS zones failed", len(changes))
            metrics.INTERNAL_ERRORS.labels(area="dns").inc()
            return
        for name in result.collisions:
            log.warning("lease hostname %s is owned by a reservation or record: no record", name)
            metrics.DNS_NAME_COLLISIONS.inc()
        if result.changed:
            self.cache.invalidate()
            self._set_serial_gauges(result.changed)
            self._queue_notify(result.changed)

    def _set_serial_gauges(self, origins: Any) -> None:
        assert self.zones is not None
        for origin in origins:
            zone = self.zones.zones.get(origin)
            if zone is not None:
                metrics.DNS_ZONE_SERIAL.labels(zone=origin).set(zone.serial)

    # --- UDP -----------------------------------------------------------------------------------

    def _udp_readable(self, sock: socket.socket) -> None:
        table = self.cache.table(Transport.UDP)
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        hits: dict[tuple[str, str], int] = {}
        misses = 0
        for _ in range(UDP_BATCH):
            try:
                data, addr = recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            entry: CachedAnswer | None = table.get(data[2:])
            if entry is not None:
                try:
                    sendto(data[:2] + entry.body, addr)
                except OSError:
                    metrics.DNS_DROPPED.labels(reason="send_failed").inc()
                label = entry.label
                hits[label] = hits.get(label, 0) + 1
                continue
            misses += 1
            try:
                reply = self._handle(data, addr, Transport.UDP, sock)
            except Exception:  # the per-packet bug boundary (R9)
                log.exception("internal error answering a DNS query")
                metrics.INTERNAL_ERRORS.labels(area="dns").inc()
                continue
            if reply is not None:
                try:
                    sendto(reply, addr)
                except OSError:
                    metrics.DNS_DROPPED.labels(reason="send_failed").inc()
        self._count_udp(hits, misses)

    def _count_udp(self, hits: dict[tuple[str, str], int], misses: int) -> None:
        """One wake-up's cache hits (per metric label) and misses, counted once each."""
        if hits:
            total = 0
            for (qtype, rcode), count in hits.items():
                metrics.DNS_QUERIES.labels(qtype=qtype, rcode=rcode).inc(count)
                total += count
            self.cache.hits += total
            metrics.DNS_CACHE_LOOKUPS.labels(result="hit").inc(total)
        if misses:
            self.cache.misses += misses
            metrics.DNS_CACHE_LOOKUPS.labels(result="miss").inc(misses)

    def _udp_batch_readable(self, batch: udp_batch.BatchSocket) -> None:
        """The batched twin of ``_udp_readable``: the same answers and the same counts."""
        get = self.cache.table(Transport.UDP).get
        queue_body = batch.queue_body
        hits: dict[tuple[str, str], int] = {}
        misses = 0
        failed = 0
        for _ in range(max(1, UDP_BATCH // batch.slots)):
            try:
                n = batch.receive()
            except OSError:
                continue
            if not n:
                break
            for i, key in enumerate(batch.keys()):
                entry: CachedAnswer | None = None if key is None else get(key)
                if entry is not None:
                    if not queue_body(i, entry.body):
                        reply = batch.datagram(i)[:2] + entry.body
                        failed += self._udp_sendto(batch.sock, reply, batch.peer(i))
                    label = entry.label
                    hits[label] = hits.get(label, 0) + 1
                    continue
                misses += 1
                failed += self._udp_batch_miss(batch, i)
            failed += batch.flush()[1]
        if failed:
            metrics.DNS_DROPPED.labels(reason="send_failed").inc(failed)
        self._count_udp(hits, misses)

    def _udp_batch_miss(self, batch: udp_batch.BatchSocket, i: int) -> int:
        """Answer slot ``i`` by the slow path; returns 1 when its reply could not be sent."""
        data = batch.datagram(i)
        addr = batch.peer(i)
        try:
            if batch.truncated(i):
                # recvmmsg(2) sets MSG_TRUNC when the datagram was longer than its slot: only
                # the header is trusted, and the query cannot be parsed whole.
                log.debug("FORMERR to %s: query longer than %d bytes", addr[0], batch.slot_size)
                reply = self._formerr(data)
            else:
                reply = self._handle(data, addr, Transport.UDP, batch.sock)
        except Exception:  # the per-packet bug boundary (R9)
            log.exception("internal error answering a DNS query")
            metrics.INTERNAL_ERRORS.labels(area="dns").inc()
            return 0
        if reply is None or batch.queue_reply(i, reply):
            return 0
        return self._udp_sendto(batch.sock, reply, addr)

    @staticmethod
    def _udp_sendto(sock: socket.socket, reply: bytes, addr: Any) -> int:
        """Send one reply outside the batch; returns 1 when it could not be sent."""
        try:
            sock.sendto(reply, addr)
        except OSError:
            return 1
        return 0

    # --- the slow path, shared by UDP and TCP ---------------------------------------------------

    def _handle(
        self, data: bytes, addr: Any, transport: Transport, sock: socket.socket | None
    ) -> bytes | None:
        """Answer ``data``: the reply bytes, or None when nothing is to be sent now (dropped,
        or handed to a forwarding task)."""
        fast = self._fast(data, transport)
        if fast is not None:
            return fast
        decided = self._decide(data, addr, transport)
        if isinstance(decided, _Immediate):
            return decided.reply
        decision, verified = decided
        match decision:
            case Answer():
                return self._encode_answer(decision, data, transport, verified)
            case Forward():
                self._start_forward(decision, sock, addr)
                return None
            case Transfer():
                return None  # the engine only transfers over TCP; handled by the TCP path
            case Drop(reason=reason):
                metrics.DNS_DROPPED.labels(reason=reason.value).inc()
                return None

    def _fast(self, data: bytes, transport: Transport) -> bytes | None:
        """The engine's bytes-to-bytes path for plain local queries (never for signed ones)."""
        if TSIG_SIGNATURE in data:
            return None
        assert self.engine is not None
        fast = self.engine.resolve_wire(data, transport)
        if fast is None:
            return None
        self.queries += 1
        qtype = qtype_label(fast.qtype)
        rcode = _rcode_label(fast.rcode)
        metrics.DNS_DECISIONS.labels(reason=fast.reason.value).inc()
        metrics.DNS_QUERIES.labels(qtype=qtype, rcode=rcode).inc()
        self.cache.put(transport, data, fast.data, qtype=qtype, rcode=rcode)
        return fast.data

    def _decide(
        self, data: bytes, addr: Any, transport: Transport
    ) -> tuple[Decision, tsig.Verified | None] | _Immediate:
        """Decode, check TSIG and resolve: the engine's decision and the verified TSIG, or
        ``_Immediate`` when the message was answered (FORMERR, NOTAUTH) or dropped here."""
        if len(data) < HEADER_SIZE:
            # RFC 1035 §4.1.1: without a whole header there is no ID to answer to.
            metrics.DNS_DROPPED.labels(reason="short_header").inc()
            return _Immediate(None)
        verified: tsig.Verified | None = None
        if TSIG_SIGNATURE in data:
            try:
                check = tsig.verify(data, self.keys, now=self._clock())
            except DnsFormatError:
                return _Immediate(self._formerr(data))
            if isinstance(check, tsig.Failed):
                metrics.DNS_TSIG_FAILURES.labels(error=check.error.name).inc()
                log.info(
                    "TSIG %s from %s (key %s)", check.error.name, addr[0], check.record.key_name
                )
                reply = error_response(data, Rcode.NOTAUTH)
                return _Immediate(tsig.error_tsig(reply, check, now=self._clock()))
            verified = check
        try:
            query = decode_message(data)
        except DnsFormatError as exc:
            log.debug("FORMERR to %s: %s", addr[0], exc)
            return _Immediate(self._formerr(data))
        self.queries += 1
        assert self.engine is not None
        decision = self.engine.resolve(
            query,
            client=_client_ip(addr),
            transport=transport,
            tsig_key=None if verified is None else verified.key.name,
        )
        metrics.DNS_DECISIONS.labels(reason=decision.reason.value).inc()
        return decision, verified

    def _formerr(self, data: bytes) -> bytes | None:
        if data[2] & 0x80:
            metrics.DNS_DROPPED.labels(reason="not_query").inc()
            return None  # never answer a response (RFC 1035 §4.1.1 QR)
        metrics.DNS_DECISIONS.labels(reason="formerr").inc()
        metrics.DNS_QUERIES.labels(qtype="other", rcode="FORMERR").inc()
        return error_response(data, Rcode.FORMERR)

    def _encode_answer(
        self, answer: Answer, data: bytes, transport: Transport, verified: tsig.Verified | None
    ) -> bytes:
        message = answer.message
        qtype = qtype_label(message.questions[0].qtype) if message.questions else "other"
        rcode = _rcode_label(message.header.rcode)
        metrics.DNS_QUERIES.labels(qtype=qtype, rcode=rcode).inc()
        if verified is not None:
            wire = encode_message(message, max_size=answer.max_size - TSIG_ROOM)
            signed, _ = tsig.sign(
                wire, verified.key, now=self._clock(), request_mac=verified.record.mac
            )
            return signed
        wire = encode_message(message, max_size=answer.max_size)
        if answer.cacheable:
            self.cache.put(transport, data, wire, qtype=qtype, rcode=rcode)
        return wire

    def _start_forward(self, decision: Forward, sock: socket.socket | None, addr: Any) -> None:
        assert self._tg is not None
        if self.forwarder is None or self._forwards_in_flight >= MAX_FORWARDS_IN_FLIGHT:
            metrics.DNS_DROPPED.labels(reason="forward_overload").inc()
            return
        self._forwards_in_flight += 1
        self._tg.create_task(self._forward_udp(decision, sock, addr))

    async def _forward_udp(self, decision: Forward, sock: socket.socket | None, addr: Any) -> None:
        try:
            reply = await self._forward(decision)
            if sock is not None and reply is not None:
                with contextlib.suppress(OSError):
                    sock.sendto(reply, addr)
        except Exception:  # the per-query bug boundary (R9)
            log.exception("internal error forwarding a DNS query")
            metrics.INTERNAL_ERRORS.labels(area="dns").inc()
        finally:
            self._forwards_in_flight -= 1

    async def _forward(self, decision: Forward) -> bytes:
        assert self.forwarder is not None
        query = decision.query
        qtype = qtype_label(query.questions[0].qtype)
        reply = await self.forwarder.resolve(query)
        if reply is None:
            metrics.DNS_FORWARDER_TIMEOUTS.inc()
            metrics.DNS_FORWARDED.labels(result="timeout").inc()
            metrics.DNS_QUERIES.labels(qtype=qtype, rcode="SERVFAIL").inc()
            return error_response_with_question(query, Rcode.SERVFAIL)
        metrics.DNS_FORWARDED.labels(result="answered").inc()
        metrics.DNS_QUERIES.labels(qtype=qtype, rcode=_rcode_label(reply.header.rcode)).inc()
        return encode_message(reply, max_size=decision.max_size)

    # --- TCP -----------------------------------------------------------------------------------

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.tcp_connections >= self.config.tcp_max_connections:
            metrics.DNS_DROPPED.labels(reason="tcp_connection_cap").inc()
            writer.close()
            return
        self.tcp_connections += 1
        metrics.DNS_TCP_CONNECTIONS.inc()
        addr = writer.get_extra_info("peername") or ("", 0)
        idle = self.config.tcp_idle_timeout
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), idle)
                    (length,) = struct.unpack("!H", head)
                    data = await asyncio.wait_for(reader.readexactly(length), idle)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    break  # RFC 7766 §6.2.3: the server closes idle connections
                for n, reply in enumerate(await self._tcp_replies(data, addr), 1):
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    if n % 8 == 0:  # a long transfer: let the other clients in between
                        await writer.drain()
                        await asyncio.sleep(0)
                await writer.drain()
        except ConnectionError:
            pass
        except Exception:  # the per-connection bug boundary (R9)
            log.exception("internal error on a DNS TCP connection")
            metrics.INTERNAL_ERRORS.labels(area="dns").inc()
        finally:
            self.tcp_connections -= 1
            metrics.DNS_TCP_CONNECTIONS.dec()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _tcp_replies(self, data: bytes, addr: Any) -> Iterable[bytes]:
        hit = self.cache.get(Transport.TCP, data)
        if hit is not None:
            metrics.DNS_CACHE_LOOKUPS.labels(result="hit").inc()
            return [hit]
        metrics.DNS_CACHE_LOOKUPS.labels(result="miss").inc()
        fast = self._fast(data, Transport.TCP)
        if fast is not None:
            return [fast]
        decided = self._decide(data, addr, Transport.TCP)
        if isinstance(decided, _Immediate):
            return [] if decided.reply is None else [decided.reply]
        decision, verified = decided
        match decision:
            case Answer():
                return [self._encode_answer(decision, data, Transport.TCP, verified)]
            case Forward():
                if self.forwarder is None:
                    return []
                return [await self._forward(decision)]
            case Transfer():
                return self._transfer(decision, verified, addr)
            case Drop(reason=reason):
                metrics.DNS_DROPPED.labels(reason=reason.value).inc()
                return []

    def _transfer(
        self, decision: Transfer, verified: tsig.Verified | None, addr: Any
    ) -> Iterator[bytes]:
        """The transfer's messages, packed and signed one by one as the connection takes them
        (the record list is fixed when the first is asked for: a consistent snapshot)."""
        kind = "axfr" if decision.client_serial is None else "ixfr"
        mac: bytes | None = None
        now = self._clock()
        for message in xfr.transfer_messages(decision.query, decision.zone, decision.client_serial):
            wire = pack(message)
            if verified is not None:
                if mac is None:
                    wire, mac = tsig.sign(
                        wire, verified.key, now=now, request_mac=verified.record.mac
                    )
                else:
                    wire, mac = tsig.sign(wire, verified.key, now=now, prior_mac=mac)
            yield wire
        self.transfers += 1
        metrics.DNS_TRANSFERS.labels(type=kind, result="ok").inc()
        log.info(
            "%s of %s (serial %d) to %s%s",
            kind.upper(),
            decision.zone.origin,
            decision.zone.serial,
            addr[0],
            "" if verified is None else f" (key {verified.key.name})",
        )

    # --- NOTIFY --------------------------------------------------------------------------------

    def _queue_notify(self, origins: Any) -> None:
        if not self.config.secondaries:
            return
        self._notify_pending |= set(origins)
        self._notify_event.set()

    async def _notifier(self) -> None:
        while True:
            await self._notify_event.wait()
            self._notify_event.clear()
            origins, self._notify_pending = self._notify_pending, set()
            jobs = [
                self._notify(origin, secondary)
                for origin in sorted(origins)
                for secondary in self.config.secondaries
            ]
            await asyncio.gather(*jobs)

    async def _notify(self, origin: str, secondary: Any) -> None:
        """RFC 1996 §3.6: send NOTIFY, retry until the secondary answers (or give up)."""
        if self.zones is None or origin not in self.zones.zones:
            return
        loop = asyncio.get_running_loop()
        host, port = secondary.address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        key = self.keys.get(secondary.key) if secondary.key else None
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            for _ in range(NOTIFY_ATTEMPTS):
                zone = self.zones.zones.get(origin)
                if zone is None:
                    return
                msg_id = secrets.randbits(16)
                wire = xfr.notify_message(zone, msg_id).pack()
                request_mac = b""
                if key is not None:
                    wire, request_mac = tsig.sign(wire, key, now=self._clock())
                try:
                    await loop.sock_sendto(sock, wire, (host, port))
                    deadline = loop.time() + NOTIFY_TIMEOUT
                    while True:
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            raise TimeoutError
                        reply, _ = await asyncio.wait_for(
                            loop.sock_recvfrom(sock, 65535), remaining
                        )
                        if (
                            len(reply) >= HEADER_SIZE
                            and struct.unpack_from("!H", reply)[0] == msg_id
                        ):
                            break
                except (TimeoutError, OSError):
                    continue
                rcode = reply[3] & 0xF
                result = "ok" if rcode == 0 else _rcode_label(rcode).lower()
                if key is not None and rcode == 0:
                    # RFC 8945 §5.3: the answer to a signed request is signed with the same key.
                    try:
                        check = tsig.verify(
                            reply, {key.name: key}, now=self._clock(), request_mac=request_mac
                        )
                    except DnsFormatError:
                        check = None
                    if not isinstance(check, tsig.Verified):
                        result = "bad_tsig"
                metrics.DNS_NOTIFIES.labels(result=result).inc()
                log.info(
                    "NOTIFY %s serial %d to %s:%d: %s", origin, zone.serial, host, port, result
                )
                return
        metrics.DNS_NOTIFIES.labels(result="timeout").inc()
        log.warning("NOTIFY %s to %s:%d: no answer", origin, host, port)


def error_response_with_question(query: Any, rcode: int) -> bytes:
    """A reply to a decoded ``query`` with ``rcode``, its question and no records."""
    reply = query.reply(ra=1, aa=0)
    reply.header.rcode = rcode
    reply.rr, reply.auth = [], []
    reply.ar = [rr for rr in query.ar if rr.rtype == 41]
    data: bytes = reply.pack()
    return data


def _fmt(addresses: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{h}:{p}" for h, p in addresses)


async def run(app: AppContext) -> None:
    """Serve DNS until cancelled."""
    async with asyncio.TaskGroup() as tg:
        server = DnsServer(app)
        app.statistics["dns"] = server.statistics
        app.reload_hooks.append(server.reload)
        try:
            await server.start(tg)
            await asyncio.Event().wait()
        finally:
            await server.close()
            with contextlib.suppress(ValueError):
                app.reload_hooks.remove(server.reload)
            app.statistics.pop("dns", None)
