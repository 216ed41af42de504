"""The DNS service: UDP and TCP listeners around the responder, the forwarder and the NOTIFY
sender, and the zones following the store.

Every message takes the responder's one path (ddi.dns.responder); this module moves bytes and
counts. UDP: a drain loop (``loop.add_reader`` on a non-blocking socket; DESIGN.md principle 7).
On Linux it receives and sends in batches (``recvmmsg``/``sendmmsg``, ddi.dns.udp_batch): one
system call brings up to ``UDP_SLOTS`` queries, one sends their replies. Elsewhere, or when
ctypes cannot reach them, it is a ``recvfrom``/``sendto`` loop; the choice is made once at
start. Both loops make the responder's first step inline: the answer cache, looked up by the
bytes after the ID, where a hit is the query's ID followed by the cached body (a lookup and a
copy); a miss goes to ``Responder.resolve``. A forwarded query becomes a task in the service's
TaskGroup (bounded) that replies later with ``sendto``.

TCP, with zone transfers: ddi.dns.tcp. NOTIFY to the secondaries: ddi.dns.notify.

Zones follow the IPAM index: ``index.subscribe`` applies each committed batch to the zones,
invalidates the answer cache and queues NOTIFYs to the configured secondaries. ``reload``
builds the zones, engine rules and TSIG keys again from the new config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from ddi import metrics
from ddi.config import Config
from ddi.dns import rrl, tsig, udp_batch
from ddi.dns.acl import Acl
from ddi.dns.cache import AnswerCache, CachedAnswer
from ddi.dns.counting import count
from ddi.dns.engine import Client, Transport
from ddi.dns.forward import Forwarder
from ddi.dns.notify import NotifySender
from ddi.dns.responder import Drop, Forward, Reply, Responder, Result, build, site_networks
from ddi.dns.tcp import TcpListener
from ddi.dns.wire import HEADER_SIZE, slip_response
from ddi.dns.zone import Zone
from ddi.dns.zones import Zones
from ddi.errors import ConfigError
from ddi.heap import release_free_memory
from ddi.ipam.views import Applied
from ddi.site import Site

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
UDP = Transport.UDP


class DnsServer:
    """The DNS service of one daemon (``ddi.site.Service``)."""

    name = "dns"

    def __init__(
        self,
        site: Site,
        *,
        clock: Callable[[], float] = time.time,
        udp_slots: int = UDP_SLOTS,
        udp_slot_size: int = UDP_SLOT_SIZE,
    ) -> None:
        self.site = site
        self.config = site.config.dns
        self._clock = clock
        self.cache = AnswerCache(self.config.cache_size)
        self.replays = tsig.ReplayCache()
        self.limiter: rrl.RateLimiter | None = None
        """Response-rate limiting of UDP answers (None when ``dns.rrl_ratelimit`` is 0)."""
        self.responder: Responder | None = None
        self.forwarder: Forwarder | None = None
        self.notifier = NotifySender(self._zone, clock=clock)
        self.tcp = TcpListener(
            respond=self._respond_tcp,
            forward=self._forward,
            max_connections=self.config.tcp_max_connections,
            idle_timeout=self.config.tcp_idle_timeout,
        )
        self._udp: list[socket.socket] = []
        self._udp_slots = udp_slots if udp_batch.AVAILABLE else 0
        self._udp_slot_size = udp_slot_size
        self._batches: list[udp_batch.BatchSocket] = []
        self._tcp: list[asyncio.Server] = []
        self._tg: asyncio.TaskGroup | None = None
        self._forwards_in_flight = 0
        self.compiled_answers = 0
        """UDP queries answered from the compiled table."""
        self._query_counters: dict[tuple[str, str], Any] = {}
        """``ddi_dns_queries_total``'s child per (qtype, rcode): ``labels()`` costs five times
        an ``inc``, and the UDP loops count once per wake-up."""
        self._tasks: set[asyncio.Task[None]] = set()
        self.addresses: list[tuple[str, int]] = []

    @property
    def zones(self) -> Zones | None:
        return None if self.responder is None else self.responder.zones

    @property
    def tcp_connections(self) -> int:
        return self.tcp.connections

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self, tg: asyncio.TaskGroup) -> None:
        self._tg = tg
        serial = await self.site.store.last_seq()
        responder = self._build(self.site.config, serial)
        # No await between the build and the subscription: no commit can fall in between.
        self.site.index.subscribe(self._on_changes)
        self.notifier.configure(self.config.secondaries, responder.keys)
        if self.config.forwarders:
            self._start_forwarder()
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
            self._spawn(self.notifier.run(), name="dns-notify")
            self.notifier.queue(responder.zones.zones)
        origins = ", ".join(sorted(responder.zones.zones))
        log.info("dns serving %s on %s", origins, _fmt(self.addresses))

    def _build(self, config: Config, serial: int) -> Responder:
        responder = self.responder = build(
            config, self.site.index, serial=serial, cache=self.cache, replays=self.replays
        )
        self.limiter = rate_limiter(config)
        zones = responder.zones
        self._set_serial_gauges(zones, zones.zones)
        release_free_memory()  # the build's temporaries (and a replaced zone set)
        return responder

    def _start_forwarder(self) -> None:
        self.forwarder = Forwarder(self.config.forwarders, timeout=self.config.forward_timeout)
        self.forwarder.start()

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
                self.tcp, host, port, reuse_address=True, family=family
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

    def _spawn(self, job: Coroutine[Any, Any, None], *, name: str) -> None:
        assert self._tg is not None
        task = self._tg.create_task(job, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.site.index.unsubscribe(self._on_changes)
        for task in list(self._tasks):
            task.cancel()
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
            "queries_decoded": 0 if self.responder is None else self.responder.decoded,
            "cache": self.cache.statistics(),
            "compiled": self._compiled_statistics(),
            "tcp_connections": self.tcp.connections,
            "transfers": self.tcp.transfers,
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
        stats["rate_limit"] = (
            {"ratelimit": 0} if self.limiter is None else self.limiter.statistics()
        )
        return stats

    def _compiled_statistics(self) -> dict[str, int]:
        if self.responder is None:
            return {}
        return self.responder.compiled.statistics() | {"answers": self.compiled_answers}

    async def reload(self, config: Config) -> None:
        """Apply a reloaded config: zones, engine rules, TSIG keys, secondaries, forwarders and
        TCP limits at once; listeners and the cache size at the next restart."""
        old = self.config
        if (config.dns.listen, config.dns.port) != (old.listen, old.port):
            log.warning("dns.listen changed: takes effect at the next restart")
        self.config = config.dns
        self.tcp.max_connections = config.dns.tcp_max_connections
        self.tcp.idle_timeout = config.dns.tcp_idle_timeout
        if (config.dns.forwarders, config.dns.forward_timeout) != (
            old.forwarders,
            old.forward_timeout,
        ):
            if self.forwarder is not None:
                self.forwarder.close()
                self.forwarder = None
            if config.dns.forwarders:
                self._start_forwarder()
        zones = self.zones
        serial = max((z.serial for z in zones.zones.values()), default=0) if zones else 0
        responder = self._build(config, max(serial + 1, await self.site.store.last_seq()))
        self.notifier.configure(config.dns.secondaries, responder.keys)
        if config.dns.secondaries and not self.notifier.running and self._tg is not None:
            self._spawn(self.notifier.run(), name="dns-notify")
        self.notifier.queue(responder.zones.zones)

    # --- zone changes --------------------------------------------------------------------------

    def _zone(self, origin: str) -> Zone | None:
        zones = self.zones
        return None if zones is None else zones.zones.get(origin)

    def _on_changes(self, changes: Sequence[Applied]) -> None:
        zones = self.zones
        if zones is None:
            return
        try:
            result = zones.apply(changes)
        except Exception:  # bug boundary: a bad change must not stop commits (R9)
            log.exception("applying %d changes to the DNS zones failed", len(changes))
            metrics.INTERNAL_ERRORS.labels(area="dns").inc()
            return
        try:
            self.responder.compiled.update(result)  # type: ignore[union-attr]
        except Exception:  # bug boundary: the full path still answers every query (R9)
            log.exception("recompiling the DNS answers failed: compiling them all again")
            metrics.INTERNAL_ERRORS.labels(area="dns").inc()
            self.responder.compiled.rebuild()  # type: ignore[union-attr]
        for name in result.collisions:
            log.warning("lease hostname %s is owned by a reservation or record: no record", name)
            metrics.DNS_NAME_COLLISIONS.inc()
        if result.changed:
            self.cache.invalidate()
            self._set_serial_gauges(zones, result.changed)
            self.notifier.queue(result.changed)

    @staticmethod
    def _set_serial_gauges(zones: Zones, origins: Iterable[str]) -> None:
        for origin in origins:
            zone = zones.zones.get(origin)
            if zone is not None:
                metrics.DNS_ZONE_SERIAL.labels(zone=origin).set(zone.serial)

    # --- UDP -----------------------------------------------------------------------------------

    def _udp_readable(self, sock: socket.socket) -> None:
        assert self.responder is not None
        compiled = self.responder.compiled.answer
        table = self.cache.table(UDP)
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        hits: dict[tuple[str, str], int] = {}
        compiled_labels: dict[tuple[str, str], int] = {}
        misses = 0
        limiter = self.limiter
        exempt = limiter.exempt_hosts if limiter is not None else None
        second = int(self._clock())
        limited = slipped = 0
        for _ in range(UDP_BATCH):
            try:
                data, addr = recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            if exempt is not None and addr[0] not in exempt:
                assert limiter is not None
                verdict = limiter.check(addr[0], second)
                if verdict:
                    limited += 1
                    if verdict == rrl.SLIP and len(data) >= HEADER_SIZE:
                        slipped += 1
                        with contextlib.suppress(OSError):
                            sendto(slip_response(data), addr)
                    continue
            answer = compiled(data, UDP)
            if answer is not None:
                try:
                    sendto(answer[0], addr)
                except OSError:
                    metrics.DNS_DROPPED.labels(reason="send_failed").inc()
                self.compiled_answers += 1
                label = answer[1]
                compiled_labels[label] = compiled_labels.get(label, 0) + 1
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
            reply = self._udp_miss(data, addr, sock, truncated=False)
            if reply is not None:
                try:
                    sendto(reply, addr)
                except OSError:
                    metrics.DNS_DROPPED.labels(reason="send_failed").inc()
        self._count_udp(hits, misses)
        for label, n in compiled_labels.items():
            self._queries(label).inc(n)
        if limited:
            self._count_limited(limited, slipped)

    @staticmethod
    def _count_limited(limited: int, slipped: int) -> None:
        """One wake-up's answers withheld by rate limiting: dropped, or sent truncated."""
        if limited > slipped:
            metrics.DNS_DROPPED.labels(reason="rate_limited").inc(limited - slipped)
        if slipped:
            metrics.DNS_DROPPED.labels(reason="rate_limited_slip").inc(slipped)

    def _count_udp(self, hits: dict[tuple[str, str], int], misses: int) -> None:
        """One wake-up's compiled answers and cache hits (per metric label) and misses,
        counted once each."""
        if self.responder is not None:
            for label, n in self.responder.compiled.drain():
                self._queries(label).inc(n)
                self.compiled_answers += n
        if hits:
            total = 0
            for label, count_ in hits.items():
                self._queries(label).inc(count_)
                total += count_
            self.cache.hits += total
            metrics.DNS_CACHE_LOOKUPS.labels(result="hit").inc(total)
        if misses:
            self.cache.misses += misses
            metrics.DNS_CACHE_LOOKUPS.labels(result="miss").inc(misses)

    def _queries(self, label: tuple[str, str]) -> Any:
        """The (qtype, rcode) child of ``ddi_dns_queries_total``, made once."""
        child = self._query_counters.get(label)
        if child is None:
            if len(self._query_counters) >= 1024:  # bounded: qtype labels come from queries
                self._query_counters.clear()
            qtype, rcode = label
            child = self._query_counters[label] = metrics.DNS_QUERIES.labels(
                qtype=qtype, rcode=rcode
            )
        return child

    def _udp_batch_readable(self, batch: udp_batch.BatchSocket) -> None:
        """The batched twin of ``_udp_readable``: the same answers and the same counts. A
        compiled answer is written over its query in the batch buffer and sent from there."""
        assert self.responder is not None
        compiled = self.responder.compiled
        write = compiled.write
        counts = compiled.counts
        get = self.cache.table(UDP).get
        view = batch.view
        offsets = batch.offsets
        slot_size = batch.slot_size
        queue_written = batch.queue_written
        queue_body = batch.queue_body
        hits: dict[tuple[str, str], int] = {}
        misses = 0
        failed = 0
        limiter = self.limiter
        second = int(self._clock())
        limited = slipped = 0
        hosts: tuple[Any, ...] = ()
        for _ in range(max(1, UDP_BATCH // batch.slots)):
            try:
                n = batch.receive()
            except OSError:
                continue
            if not n:
                break
            # Rate limiting: a batch from the site's own senders only is let through whole.
            check_each = False
            if limiter is not None:
                hosts = batch.hosts()
                check_each = not limiter.exempt_hosts.issuperset(hosts)
            for i, data in enumerate(batch.datagrams()):
                if check_each:
                    assert limiter is not None
                    verdict = limiter.check(hosts[i], second)
                    if verdict:
                        limited += 1
                        if verdict == rrl.SLIP:
                            datagram = batch.datagram(i)
                            if len(datagram) >= HEADER_SIZE:
                                slipped += 1
                                if not batch.queue_reply(i, slip_response(datagram)):
                                    failed += 1
                        continue
                if data is None:
                    # recvmmsg(2) sets MSG_TRUNC when the datagram was longer than its slot:
                    # only the header is trusted, and the query cannot be parsed whole.
                    misses += 1
                    addr = batch.peer(i)
                    reply = self._udp_miss(
                        batch.datagram(i), addr, batch.sock, truncated=batch.truncated(i)
                    )
                    if reply is not None and not batch.queue_reply(i, reply):
                        failed += self._udp_sendto(batch.sock, reply, addr)
                    continue
                o = offsets[i]
                done = write(data, view, o, o + slot_size, True)
                if done:
                    counts[done & 0xFF] += 1
                    queue_written(i, done >> 8)
                    continue
                entry: CachedAnswer | None = get(data[2:])
                if entry is not None:
                    if not queue_body(i, entry.body):
                        failed += self._udp_sendto(batch.sock, data[:2] + entry.body, batch.peer(i))
                    label = entry.label
                    hits[label] = hits.get(label, 0) + 1
                    continue
                misses += 1
                addr = batch.peer(i)
                reply = self._udp_miss(data, addr, batch.sock, truncated=False)
                if reply is not None and not batch.queue_reply(i, reply):
                    failed += self._udp_sendto(batch.sock, reply, addr)
            failed += batch.flush()[1]
        if failed:
            metrics.DNS_DROPPED.labels(reason="send_failed").inc(failed)
        self._count_udp(hits, misses)
        if limited:
            self._count_limited(limited, slipped)

    def _udp_miss(
        self, data: bytes, addr: Any, sock: socket.socket, *, truncated: bool
    ) -> bytes | None:
        """The responder's answer to a datagram the cache did not hold: the bytes to send now,
        or None (dropped, or handed to a forwarding task)."""
        assert self.responder is not None
        client = Client.of_peer(addr)
        try:
            result: Result
            if truncated:
                log.debug("FORMERR to %s: query longer than the batch slot", client.peer)
                result = self.responder.malformed(data)
            else:
                result = self.responder.resolve(data, client, UDP, self._clock())
            count(result, client)
        except Exception:  # the per-packet bug boundary (R9)
            log.exception("internal error answering a DNS query")
            metrics.INTERNAL_ERRORS.labels(area="dns").inc()
            return None
        match result:
            case Reply(data=reply):
                return reply
            case Forward():
                self._start_forward(result, sock, addr)
            case Drop():
                pass
            # A transfer is a TCP-only decision: the engine never makes it for UDP.
        return None

    @staticmethod
    def _udp_sendto(sock: socket.socket, reply: bytes, addr: Any) -> int:
        """Send one reply outside the batch; returns 1 when it could not be sent."""
        try:
            sock.sendto(reply, addr)
        except OSError:
            return 1
        return 0

    # --- TCP -----------------------------------------------------------------------------------

    def _respond_tcp(self, data: bytes, client: Client) -> Result:
        assert self.responder is not None  # built before the listeners start
        return self.responder.respond(data, client, Transport.TCP, self._clock())

    # --- forwarding ----------------------------------------------------------------------------

    def _start_forward(self, forward: Forward, sock: socket.socket, addr: Any) -> None:
        if self.forwarder is None or self._forwards_in_flight >= MAX_FORWARDS_IN_FLIGHT:
            metrics.DNS_DROPPED.labels(reason="forward_overload").inc()
            return
        self._forwards_in_flight += 1
        self._spawn(self._forward_udp(forward, sock, addr), name="dns-forward")

    async def _forward_udp(self, forward: Forward, sock: socket.socket, addr: Any) -> None:
        try:
            reply = await self._forward(forward)
            if reply is not None:
                with contextlib.suppress(OSError):
                    sock.sendto(reply.data, addr)
        except Exception:  # the per-query bug boundary (R9)
            log.exception("internal error forwarding a DNS query")
            metrics.INTERNAL_ERRORS.labels(area="dns").inc()
        finally:
            self._forwards_in_flight -= 1

    async def _forward(self, forward: Forward) -> Reply | None:
        """Ask the forwarders; the reply to send (SERVFAIL when none answered in time), or None
        without forwarders."""
        forwarder = self.forwarder
        if forwarder is None:
            return None
        upstream = await forwarder.resolve(forward.query)
        if upstream is None:
            metrics.DNS_FORWARDER_TIMEOUTS.inc()
            metrics.DNS_FORWARDED.labels(result="timeout").inc()
        else:
            metrics.DNS_FORWARDED.labels(result="answered").inc()
        reply = forward.finish(upstream)
        metrics.DNS_QUERIES.labels(qtype=reply.qtype, rcode=reply.rcode).inc()
        return reply


def rate_limiter(config: Config) -> rrl.RateLimiter | None:
    """The UDP answer rate limiter of ``config``: the site's subnets, loopback and
    ``dns.rrl_exempt`` are exempt; None when ``dns.rrl_ratelimit`` is 0."""
    dns = config.dns
    if dns.rrl_ratelimit <= 0:
        return None
    return rrl.RateLimiter(
        ratelimit=dns.rrl_ratelimit,
        slip=dns.rrl_slip,
        ipv4_prefix=dns.rrl_ipv4_prefix,
        ipv6_prefix=dns.rrl_ipv6_prefix,
        exempt=Acl.of((*site_networks(config), *dns.rrl_exempt)),
    )


def _fmt(addresses: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{h}:{p}" for h, p in addresses)


def service(site: Site) -> DnsServer:
    return DnsServer(site)
