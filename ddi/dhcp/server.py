"""DHCP transport: sockets on :67, a bounded queue, decode -> engine -> group commit -> send.

One UDP socket per served interface, bound to 0.0.0.0:<port> with SO_BINDTODEVICE (so the
ingress interface is known, and broadcasts leave by it), SO_BROADCAST and SO_REUSEADDR.
Each socket is drained (``loop.add_reader``, then ``recvfrom`` until ``BlockingIOError``;
DESIGN.md principle 7) into one bounded queue; past ``dhcp.queue_size`` packets are shed and
counted (``reason="overload"``), never queued without bound, and a packet that waited longer
than ``dhcp.queue_max_age`` is dropped as ``stale`` instead of answered late. Packets that
continue an exchange (REQUEST, DECLINE, RELEASE, INFORM) queue apart and go first, and evict
DISCOVERs when the queue is full: under overload, new exchanges wait, begun ones do not.
Before any of that, each datagram is glanced at undecoded (``ddi.dhcp.admission``): past its
hardware address's token bucket it is dropped (``rate-limited-client``). Once the server is
backlogged (``admission.backlogged``: packets waiting for a tenth of a second), a client the
site knows (a reservation, lease or outstanding offer for that address) queues ahead of
everything else, and one it does not know draws from its relay's or interface's bucket first
(``rate-limited-link``). A boot storm the server keeps up with is answered whole; a flood of
random MACs beyond that costs a glance each past the link's rate, and reserved and bound
clients never wait behind it.
Under a backlog of DISCOVERs the newest is answered first and a full queue sheds its oldest
(``LIFO_BACKLOG``): answering a client that gave up long ago only wastes the capacity that an
overload lacks.
A ``call_soon`` step takes packets off the queues in small batches and runs decode -> engine;
replies that acknowledge a lease go to the group committer and leave only once it is durable;
others leave at once. A slow store never blocks the receive path: only the committer awaits it.

The per-packet bug boundary is in ``_process``: anything raised there other than a decoded
``DhcpFormatError`` is a bug, logged with its traceback and counted in
``ddi_internal_errors_total{area="dhcp"}``; that one packet is dropped and serving goes on.

A maintenance task marks ended leases expired (``store.expire_leases``, which logs each as a
change) and refreshes the lease and pool gauges every ``dhcp.expire_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from operator import attrgetter
from typing import TYPE_CHECKING, Any, assert_never

from ddi import metrics
from ddi.dhcp import lease_log
from ddi.dhcp.admission import BUSY_QUEUE, TokenBuckets, backlogged, client_key, link_key
from ddi.dhcp.commit import GroupCommitter
from ddi.dhcp.decision import Commit, Drop, Inbound, Reply
from ddi.dhcp.engine import DhcpEngine
from ddi.dhcp.netboot import profiles_from_config
from ddi.dhcp.options import MessageType
from ddi.dhcp.packet import decode_packet, encode_packet
from ddi.errors import ConfigError, DhcpFormatError
from ddi.ipam.models import LeaseState
from ddi.steps import count_usage
from ddi.tally import Tally

if TYPE_CHECKING:
    from ddi.config import Config
    from ddi.site import Site

log = logging.getLogger(__name__)

_STATE = attrgetter("state")

_Queued = tuple[bytes, Any, "_Listener", float]

RCVBUF = 4 * 1024 * 1024
"""Socket receive buffer: room for a boot storm's burst (PXE retries at 4/8/16 s)."""
READ_BATCH = 256
"""Datagrams read per wake-up of a socket's reader before yielding to the loop."""
PROCESS_BATCH = 16
"""Packets taken through the engine per loop iteration. Small, so that the loop comes round
often to the store's completions: a group commit needs several loop round trips, and the
replies it holds wait for them."""
LIFO_BACKLOG = 64
"""DISCOVERs waiting past which the newest is answered first (adaptive LIFO): under a backlog
the oldest ones' clients have most likely given up or retransmitted already, while an answer
to the newest still completes an exchange. The oldest age out as ``stale``."""
MAX_DATAGRAM = 4096
SIOCGIFADDR = 0x8915


def interface_address(name: str) -> IPv4Address | None:
    """The primary IPv4 address of interface ``name``, or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            raw = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return IPv4Address(raw[20:24])


ETH_P_IP = 0x0800


def _frame_socket(interface: str) -> socket.socket | None:
    """A send-only packet socket (protocol 0: it receives nothing), or None when the process
    lacks CAP_NET_RAW or the interface has no Ethernet-like link layer."""
    if interface == "lo":
        return None
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    except OSError as exc:
        log.info("dhcp: no packet socket (%s): replies to new clients are broadcast", exc)
        return None
    sock.setblocking(False)
    return sock


def _checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum.

    The ones'-complement sum of the 16-bit words is the residue of the whole message read as
    one big-endian number modulo 0xFFFF (2**16 is 1 modulo 0xFFFF), with 0xFFFF standing for
    a residue of 0 when any bit is set (RFC 1071 §2: the end-around carry never yields +0).
    One C-level division instead of a Python loop over the words.
    """
    if len(data) % 2:
        data += b"\0"
    total = int.from_bytes(data, "big") % 0xFFFF
    if total == 0 and any(data):
        total = 0xFFFF
    return ~total & 0xFFFF


_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")


def udp_datagram(
    src: IPv4Address, dst: IPv4Address, sport: int, dport: int, payload: bytes
) -> bytes:
    """``payload`` in a UDP header (RFC 768) in an IPv4 header (RFC 791), checksums filled in:
    what a packet socket sends, the kernel adding the link-layer header."""
    length = _UDP.size + len(payload)
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
    udp_sum = _checksum(pseudo + _UDP.pack(sport, dport, length, 0) + payload) or 0xFFFF
    header = _IPV4.pack(0x45, 0, 20 + length, 0, 0, 64, socket.IPPROTO_UDP, 0, src.packed,
                        dst.packed)  # fmt: skip
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + _UDP.pack(sport, dport, length, udp_sum) + payload


def _message_label(value: MessageType | int | None) -> str:
    if isinstance(value, MessageType):
        return value.name.lower()
    return "none" if value is None else "other"


def _starts_exchange(data: bytes) -> bool:
    """A glance, before decoding: is this a DHCPDISCOVER? Clients put option 53 first
    (RFC 2131 §4.1 does not require it; a packet that does not is simply not prioritised)."""
    return len(data) < 243 or data[240] != 53 or data[241] != 1 or data[242] == 1


@dataclass(slots=True)
class _Listener:
    sock: socket.socket
    interface: str
    local_ip: IPv4Address | None
    frames: socket.socket | None = None
    """A packet socket for link-layer unicast to clients without an address (RFC 2131 §4.1);
    None without CAP_NET_RAW (those replies are then broadcast)."""
    inbounds: dict[Any, Inbound] = field(default_factory=dict)
    """The ``Inbound`` of each source address seen lately."""


class DhcpServer:
    """The DHCP service (``ddi.site.Service``): build from the site, ``start`` in a TaskGroup,
    ``close``."""

    name = "dhcp"

    def __init__(self, site: Site, *, clock: Callable[[], float] = time.time) -> None:
        self.site = site
        self.config = site.config.dhcp
        self._clock = clock
        self.engine = DhcpEngine(
            self.config,
            site.index,
            profiles=profiles_from_config(site.config.boot),
            domain=site.config.site.domain,
        )
        self.committer = GroupCommitter(
            site.store,
            max_batch=self.config.commit_batch,
            max_pending=self.config.queue_size,
            delay=self.config.commit_delay,
        )
        self._listeners: list[_Listener] = []
        self._clients = TokenBuckets(self.config.client_rate, self.config.client_burst)
        self._links = TokenBuckets(self.config.link_rate, self.config.link_burst)
        self._known: deque[_Queued] = deque()
        """Packets of clients the site knows (reservation, lease, outstanding offer): first."""
        self._queue: deque[_Queued] = deque()
        """DISCOVERs (and anything not recognised at a glance): new exchanges."""
        self._urgent: deque[_Queued] = deque()
        """Everything else (REQUEST, DECLINE, RELEASE, INFORM): exchanges under way, which the
        engine takes first, so an overload costs new exchanges rather than half-done ones."""
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.received = 0
        self.sent = 0
        self.dropped: dict[str, int] = {}
        self._boot_problems: set[str] = set()
        self._sources: dict[str, IPv4Address] = {}
        self._texts: dict[IPv4Address, str] = {}
        self._drop_counters: dict[str, Any] = {}
        self._received_counters: dict[Any, Any] = {}
        self._sent_counters: dict[Any, Any] = {}
        self._tally = Tally()
        self._rule_counters: dict[str, Any] = {}

    # --- lifecycle -----------------------------------------------------------------------------

    def interfaces(self) -> list[str]:
        """``dhcp.interfaces``, else the ``interface`` of every subnet."""
        if self.config.interfaces:
            return list(self.config.interfaces)
        return sorted({s.interface for s in self.site.index.subnets() if s.interface})

    async def start(self, tg: asyncio.TaskGroup) -> None:
        self._loop = asyncio.get_running_loop()
        self._tally.loop = self._loop
        names = self.interfaces()
        if not names:
            log.warning("dhcp: no interface to serve (set dhcp.interfaces or subnets' interface)")
        for name in names:
            self._listen(name)
        tg.create_task(self.committer.run(), name="dhcp-commit")
        tg.create_task(self._maintain(), name="dhcp-expire")
        log.info(
            "dhcp serving on %s, port %d",
            ", ".join(f"{x.interface} ({x.local_ip or 'no address'})" for x in self._listeners),
            self.config.port,
        )

    def _listen(self, interface: str) -> None:
        assert self._loop is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            sock.bind(("0.0.0.0", self.config.port))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ConfigError(
                "dhcp.interfaces",
                f"cannot listen on {interface} port {self.config.port}: {exc.strerror or exc}",
            ) from None
        local_ip = interface_address(interface)
        if local_ip is None and self.config.server_id is None:
            log.warning("dhcp: %s has no IPv4 address and dhcp.server_id is unset", interface)
        listener = _Listener(
            sock=sock, interface=interface, local_ip=local_ip, frames=_frame_socket(interface)
        )
        self._loop.add_reader(sock.fileno(), self._readable, listener)
        self._listeners.append(listener)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.remove_reader(listener.sock.fileno())
            listener.sock.close()
            if listener.frames is not None:
                listener.frames.close()
        self._listeners.clear()
        self._known.clear()
        self._queue.clear()
        self._urgent.clear()
        self.engine.close()
        self._tally.flush()

    async def reload(self, config: Config) -> None:
        if config.dhcp.interfaces != self.config.interfaces or config.dhcp.port != self.config.port:
            log.warning("dhcp.interfaces/port changed: takes effect at the next restart")
        old, new = self.config, config.dhcp
        self.config = new
        if (old.client_rate, old.client_burst) != (new.client_rate, new.client_burst):
            self._clients = TokenBuckets(new.client_rate, new.client_burst)
        if (old.link_rate, old.link_burst) != (new.link_rate, new.link_burst):
            self._links = TokenBuckets(new.link_rate, new.link_burst)
        self.engine.reconfigure(
            config.dhcp, profiles=profiles_from_config(config.boot), domain=config.site.domain
        )

    def statistics(self) -> dict[str, Any]:
        return {
            "interfaces": [
                {"name": x.interface, "address": None if x.local_ip is None else str(x.local_ip)}
                for x in self._listeners
            ],
            "port": self.config.port,
            "received": self.received,
            "sent": self.sent,
            "dropped": dict(sorted(self.dropped.items())),
            "queue": len(self._known) + len(self._queue) + len(self._urgent),
            "commit": self.committer.statistics(),
            **self.engine.statistics(),
        }

    # --- receive -------------------------------------------------------------------------------

    def _readable(self, listener: _Listener) -> None:
        recvfrom = listener.sock.recvfrom
        known, queue, urgent = self._known, self._queue, self._urgent
        clients, links, interface = self._clients, self._links, listener.interface
        limit = self.config.queue_size
        assert self._loop is not None
        arrived = self._loop.time()
        # How long the oldest waiting packet has waited: the same for this whole read.
        heads = [q[0][3] for q in (known, queue, urgent) if q]
        waited = arrived - min(heads) if heads else 0.0
        shed = limited_client = limited_link = 0
        for _ in range(READ_BATCH):
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            hwaddr = client_key(data)
            if not clients.allow(hwaddr, arrived):
                limited_client += 1
                continue
            item = (data, addr, listener, arrived)
            waiting = len(known) + len(queue) + len(urgent)
            # BUSY_QUEUE first: below it, as nearly always, the call is spared.
            if waiting >= BUSY_QUEUE and backlogged(waiting, waited):
                # Backlogged (ddi.dhcp.admission): clients the site knows go first, and the
                # others draw from their link's bucket. Below it every packet is taken in
                # turn, without the lookups.
                if self._is_known(data, hwaddr):
                    if len(known) + len(queue) + len(urgent) >= limit:
                        # Room is made from the unknown: new exchanges first, then begun ones.
                        if queue:
                            queue.popleft()
                        elif urgent:
                            urgent.popleft()
                        else:
                            known.popleft()
                        shed += 1
                    known.append(item)
                    continue
                if not links.allow(link_key(data, interface), arrived):
                    limited_link += 1
                    continue
            if not _starts_exchange(data):
                if len(known) + len(queue) + len(urgent) >= limit:
                    if not queue:
                        shed += 1
                        continue
                    queue.popleft()  # an exchange under way beats a new one
                    shed += 1
                urgent.append(item)
            elif len(known) + len(queue) + len(urgent) >= limit:
                shed += 1
                if queue:
                    queue.popleft()  # the oldest DISCOVER makes room for the newest
                    queue.append(item)
            else:
                queue.append(item)
        if shed:
            self._drop("overload", shed)
        if limited_client:
            self._drop("rate-limited-client", limited_client)
        if limited_link:
            self._drop("rate-limited-link", limited_link)
        if (known or queue or urgent) and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._process)

    def _is_known(self, data: bytes, hwaddr: bytes) -> bool:
        """Whether the site knows this Ethernet client: a reservation, a lease or an outstanding
        offer for its hardware address (a glance: option 61 is not read before decoding)."""
        if len(hwaddr) != 6 or data[1] != 1:
            return False
        mac = hwaddr.hex(":")
        index = self.site.index
        return (
            self.engine.holds(mac)  # first: every REQUEST of a DORA
            or index.host_by_mac(mac) is not None
            or index.lease_by_client(mac, None) is not None
        )

    def _process(self) -> None:
        self._scheduled = False
        known, queue, urgent = self._known, self._queue, self._urgent
        now = self._clock()
        assert self._loop is not None
        oldest = self._loop.time() - self.config.queue_max_age
        stale = 0
        while queue and queue[0][3] < oldest:
            queue.popleft()
            stale += 1
        for _ in range(PROCESS_BATCH):
            if known:
                data, addr, listener, arrived = known.popleft()
            elif urgent:
                data, addr, listener, arrived = urgent.popleft()
            elif len(queue) > LIFO_BACKLOG:
                data, addr, listener, arrived = queue.pop()
            elif queue:
                data, addr, listener, arrived = queue.popleft()
            else:
                break
            if arrived < oldest:
                stale += 1
                continue
            try:
                self._handle(data, addr, listener, now)
            except Exception:  # the per-packet bug boundary (R9)
                log.exception("internal error handling a DHCP packet from %s", addr)
                metrics.INTERNAL_ERRORS.labels(area="dhcp").inc()
        if stale:
            self._drop("stale", stale)
        metrics.DHCP_QUEUE_DEPTH.set(len(known) + len(queue) + len(urgent))
        metrics.DHCP_COMMIT_PENDING.set(self.committer.pending)
        if (known or queue or urgent) and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._process)

    def _handle(self, data: bytes, addr: Any, listener: _Listener, now: float) -> None:
        try:
            packet = decode_packet(data)
        except DhcpFormatError as exc:
            log.debug("drop malformed packet from %s: %s", addr, exc)
            self._drop("malformed")
            return
        self.received += 1
        self._count(self._received_counters, metrics.DHCP_RECEIVED, packet.message_type)
        # Sources repeat (relays, the 0.0.0.0:68 of unconfigured clients): one value each.
        inbound = listener.inbounds.get(addr)
        if inbound is None:
            if len(listener.inbounds) >= 4096:
                listener.inbounds.clear()
            inbound = listener.inbounds[addr] = Inbound(
                interface=listener.interface,
                local_ip=listener.local_ip,
                src_ip=self._source_address(addr[0]),
                src_port=addr[1],
            )
        decision = self.engine.handle(packet, inbound, now)
        match decision:
            case Reply():
                self._count_rule(decision.rule.value)
                if decision.boot is not None:
                    self._count_boot(decision)
                payload = encode_packet(decision.packet, max_size=decision.max_size)
                if decision.commit is None:
                    self._send(listener, payload, decision)
                elif not self.committer.submit_nowait(
                    decision.commit, lambda: self._send(listener, payload, decision)
                ):
                    self._drop("commit-overload")
            case Commit():
                self._count_rule(decision.rule.value)
                if not self.committer.submit_nowait(
                    decision.lease, lease_log.after(listener.interface, decision.lease)
                ):
                    self._drop("commit-overload")
            case Drop(reason=reason):
                log.debug("drop %s from %s: %s", packet.message_type, addr, reason.value)
                self._drop(reason.value)
            case _:
                assert_never(decision)

    def _count_boot(self, reply: Reply) -> None:
        boot = reply.boot
        assert boot is not None
        if boot.problem is not None:
            self._boot_problem(boot.problem)
        # The netboot funnel's first step: an OFFER that carries boot options.
        if boot.offers_boot and reply.packet.message_type is MessageType.OFFER:
            profile = boot.profile or "-"
            metrics.BOOT_OFFERS.labels(profile=profile, rule=boot.rule.value).inc()

    def _source_address(self, text: str) -> IPv4Address:
        # Sources repeat (relays, the 0.0.0.0 of unconfigured clients): parse each once.
        found = self._sources.get(text)
        if found is None:
            if len(self._sources) >= 4096:
                self._sources.clear()
            found = self._sources[text] = IPv4Address(text)
        return found

    def _address_text(self, ip: IPv4Address) -> str:
        # Destinations repeat (relays): format each once, as sources are parsed once.
        text = self._texts.get(ip)
        if text is None:
            if len(self._texts) >= 4096:
                self._texts.clear()
            text = self._texts[ip] = str(ip)
        return text

    def _send(self, listener: _Listener, payload: bytes, reply: Reply) -> None:
        to = reply.to
        try:
            if to.hwaddr is None:
                listener.sock.sendto(payload, (self._address_text(to.ip), to.port))
            elif (
                listener.frames is not None
                and listener.local_ip is not None
                and len(to.hwaddr) == 6
            ):
                # RFC 2131 §4.1: unicast to yiaddr at chaddr; the client cannot answer ARP yet.
                datagram = udp_datagram(
                    listener.local_ip, to.ip, self.config.port, to.port, payload
                )
                listener.frames.sendto(datagram, (listener.interface, ETH_P_IP, 0, 0, to.hwaddr))
            else:
                listener.sock.sendto(payload, ("255.255.255.255", to.port))
        except OSError as exc:
            log.debug("send to %s:%d failed: %s", to.ip, to.port, exc)
            self._drop("send-failed")
            return
        self.sent += 1
        self._count(self._sent_counters, metrics.DHCP_SENT, reply.packet.message_type)
        lease_log.sent(listener.interface, reply)

    # --- counting ------------------------------------------------------------------------------

    def _drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n
        child = self._drop_counters.get(reason)
        if child is None:
            child = self._drop_counters[reason] = metrics.DHCP_DROPPED.labels(reason=reason)
        child.inc(n)

    def _count(self, cache: dict[Any, Any], counter: Any, value: MessageType | int | None) -> None:
        child = cache.get(value)
        if child is None:
            if len(cache) >= 512:  # bounded: unknown message types share the "other" label
                cache.clear()
            child = cache[value] = counter.labels(message_type=_message_label(value))
        self._tally.add(child)

    def _count_rule(self, rule: str) -> None:
        child = self._rule_counters.get(rule)
        if child is None:
            child = self._rule_counters[rule] = metrics.DHCP_DECISIONS.labels(rule=rule)
        self._tally.add(child)

    def _boot_problem(self, problem: str) -> None:
        if problem not in self._boot_problems and len(self._boot_problems) < 1000:
            self._boot_problems.add(problem)
            log.warning("netboot: %s", problem)

    # --- maintenance ---------------------------------------------------------------------------

    async def _maintain(self) -> None:
        while True:
            try:
                changes = await self.site.store.expire_leases(self._clock())
            except Exception:  # a store failure must not end DHCP; logged, counted
                log.exception("expiring leases failed")
                metrics.INTERNAL_ERRORS.labels(area="dhcp").inc()
            else:
                if changes:
                    metrics.DHCP_EXPIRED.inc(len(changes))
                    log.info("%d leases expired", len(changes))
            await self.refresh_gauges()
            await asyncio.sleep(self.config.expire_interval)

    async def refresh_gauges(self) -> None:
        """The lease and pool gauges, from one pass over the index taken in steps
        (``ddi.steps``): a site's 100,000 leases at once would stop the loop
        for tens of milliseconds every sweep."""
        index = self.site.index
        by_state: Counter[LeaseState] = Counter()
        count = await count_usage(
            index.subnets(),
            list(index.hosts()),
            list(index.leases()),
            self._clock(),
            each=lambda leases: by_state.update(map(_STATE, leases)),
        )
        for state in LeaseState:
            metrics.DHCP_LEASES.labels(state=state.value).set(by_state[state])
        for usage in count.result():
            total = usage.total()
            metrics.DHCP_POOL_SIZE.labels(subnet=usage.name).set(total.size)
            metrics.DHCP_POOL_USED.labels(subnet=usage.name).set(total.size - total.free)
            metrics.DHCP_POOL_UTILISATION.labels(subnet=usage.name).set(total.utilisation)


def service(site: Site) -> DhcpServer:
    return DhcpServer(site)
