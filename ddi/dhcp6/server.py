"""DHCPv6 transport: UDP [::]:547 per interface, decode -> engine -> group commit -> send.

One socket per served interface, bound to [::]:<port> with SO_BINDTODEVICE and joined to
All_DHCP_Relay_Agents_and_Servers (ff02::1:2, RFC 8415 §7.1) on it; IPV6_RECVPKTINFO says
whether a message came to that group or to one of the server's unicast addresses (§18.4).
Each socket is drained (``add_reader``, then ``recvmsg`` until ``BlockingIOError``) into two
bounded queues, as DHCPv4 does: messages that continue an exchange (REQUEST, RENEW, REBIND,
RELEASE, DECLINE, CONFIRM, INFORMATION-REQUEST) and SOLICITs, relayed or not (``admission6.
glance`` reads the client's type and DUID through the relays before anything is decoded). The
first go first, a full queue sheds (``overload``), past ``LIFO_BACKLOG`` waiting SOLICITs the
newest is answered first, and a message older than ``dhcp6.queue_max_age`` is dropped as
``stale``. Each client (its DUID, else its source address) has a token bucket
(``rate-limited-client``). Once the server is backlogged (``ddi.dhcp.admission.backlogged``,
as for DHCPv4: messages waiting for a tenth of a second), a SOLICIT from a client the site
knows (a reservation or lease for the DUID) queues with the exchanges under way, and one from
an unknown client draws from its relay's or interface's bucket (``rate-limited-link``): a
storm the server keeps up with is answered whole, as by Kea, which limits nothing by default.

A reply that binds, releases or declines leases leaves only after ``GroupCommitter`` has made
every one of them durable (DESIGN principle 4); a reply to a client goes to its link-local
source at port 546, one to a relay back to the relay at 547 (§19.3). The per-message bug
boundary is in ``_process``: an exception is logged, counted in
``ddi_internal_errors_total{area="dhcp6"}``, and that one message dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddi import metrics
from ddi.dhcp.admission import BUSY_QUEUE, TokenBuckets, backlogged
from ddi.dhcp.commit import CommitMetrics, GroupCommitter
from ddi.dhcp.netboot import profiles_from_config
from ddi.dhcp6.admission6 import glance
from ddi.dhcp6.decision import Drop6, Inbound6, Reply6
from ddi.dhcp6.engine import Dhcp6Engine, Dhcp6Settings
from ddi.dhcp6.netboot import boot_params_from_config
from ddi.dhcp6.options import MessageType, duid_text
from ddi.dhcp6.packet import decode_message, encode_message
from ddi.dhcp6.server_duid import server_duid
from ddi.errors import ConfigError, DhcpFormatError
from ddi.ipam.models import Change, LeaseState
from ddi.ipam.models6 import Lease6, Lease6Kind
from ddi.tally import Tally

if TYPE_CHECKING:
    from ddi.config import Config
    from ddi.site import Site

log = logging.getLogger(__name__)

ALL_DHCP_RELAY_AGENTS_AND_SERVERS = IPv6Address("ff02::1:2")
RCVBUF = 4 * 1024 * 1024
READ_BATCH = 256
PROCESS_BATCH = 16
MAX_DATAGRAM = 65535
_PKTINFO = struct.Struct("16sI")
_ANCILLARY = socket.CMSG_SPACE(_PKTINFO.size)
MAX_SOURCES = 4096
"""Peer addresses whose parsed form is kept; past it the table starts over."""
LIFO_BACKLOG = 64
"""SOLICITs waiting past which the newest is answered first."""
_SOLICIT = int(MessageType.SOLICIT)
_RELAY_FORW = int(MessageType.RELAY_FORW)

_Queued = tuple[bytes, Any, "_Listener", float, bool]


def _message_label(value: int | None) -> str:
    try:
        return "none" if value is None else MessageType(value).name.lower()
    except ValueError:
        return "other"


def global_address(interface: str) -> IPv6Address | None:
    """A global IPv6 address of ``interface`` (/proc/net/if_inet6), or None."""
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) == 6 and fields[5] == interface and fields[3] == "00":
            return IPv6Address(bytes.fromhex(fields[0]))
    return None


@dataclass(slots=True)
class _Listener:
    sock: socket.socket
    interface: str
    index: int
    local: IPv6Address | None


class LeaseWriter6:
    """``commit_leases`` of DHCPv6 leases for the group committer: ``Store.commit_leases6``."""

    def __init__(self, store: Any) -> None:
        self._store = store

    async def commit_leases(
        self, leases: Sequence[Lease6], *, actor: str = "dhcp6"
    ) -> list[Change]:
        changes: list[Change] = await self._store.commit_leases6(leases, actor=actor)
        return changes


def _lease_key(lease: Lease6) -> tuple[Lease6Kind, Any]:
    return lease.kind, lease.prefix


class Dhcp6Server:
    """The DHCPv6 service (``ddi.site.Service``)."""

    name = "dhcp6"

    def __init__(self, site: Site, *, clock: Callable[[], float] = time.time) -> None:
        self.site = site
        self.config = site.config.dhcp6
        self._clock = clock
        self.engine = Dhcp6Engine(
            self._settings(b""),
            site.index,
            profiles=profiles_from_config(site.config.boot),
            boot_params=boot_params_from_config(site.config.boot),
        )
        self.committer: GroupCommitter[Lease6] = GroupCommitter(
            LeaseWriter6(site.store),
            max_batch=self.config.commit_batch,
            max_pending=self.config.queue_size,
            delay=self.config.commit_delay,
            key=_lease_key,
            meters=CommitMetrics(
                pending=metrics.DHCP6_COMMIT_PENDING,
                batch=metrics.DHCP6_COMMIT_BATCH,
                latency=metrics.DHCP6_COMMIT_LATENCY,
                dropped=metrics.DHCP6_DROPPED,
            ),
        )
        self._listeners: list[_Listener] = []
        self._clients = TokenBuckets(self.config.client_rate, self.config.client_burst)
        self._links = TokenBuckets(self.config.link_rate, self.config.link_burst)
        self._new: deque[_Queued] = deque()
        self._urgent: deque[_Queued] = deque()
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sources: dict[str, IPv6Address] = {}
        self._children: dict[tuple[Any, int | str], Any] = {}
        self._tally = Tally()
        self.received = 0
        self.sent = 0
        self.dropped: dict[str, int] = {}

    def _settings(self, duid: bytes) -> Dhcp6Settings:
        return Dhcp6Settings(
            server_duid=duid,
            decline_quarantine=self.config.decline_quarantine,
            domain=self.site.config.site.domain,
        )

    # --- lifecycle -----------------------------------------------------------------------------

    def interfaces(self) -> list[str]:
        if self.config.interfaces:
            return list(self.config.interfaces)
        return sorted({s.interface for s in self.site.index.subnets6() if s.interface})

    async def start(self, tg: asyncio.TaskGroup) -> None:
        self._loop = asyncio.get_running_loop()
        self._tally.loop = self._loop
        names = self.interfaces()
        duid = server_duid(self.config.server_duid, self.site.config.site.data_dir, names)
        self.engine.reconfigure(
            self._settings(duid),
            profiles=profiles_from_config(self.site.config.boot),
            boot_params=boot_params_from_config(self.site.config.boot),
        )
        if not names:
            log.warning("dhcp6: no interface to serve (set dhcp6.interfaces or subnets6)")
        for name in names:
            self._listen(name)
        tg.create_task(self.committer.run(), name="dhcp6-commit")
        tg.create_task(self._maintain(), name="dhcp6-expire")
        log.info(
            "dhcp6 serving on %s, port %d, server DUID %s",
            ", ".join(x.interface for x in self._listeners),
            self.config.port,
            duid.hex(":"),
        )

    def _listen(self, interface: str) -> None:
        assert self._loop is not None
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            index = socket.if_nametoindex(interface)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            sock.bind(("::", self.config.port))
            group = ALL_DHCP_RELAY_AGENTS_AND_SERVERS.packed + struct.pack("@I", index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ConfigError(
                "dhcp6.interfaces",
                f"cannot listen on {interface} port {self.config.port}: {exc.strerror or exc}",
            ) from None
        listener = _Listener(
            sock=sock, interface=interface, index=index, local=global_address(interface)
        )
        self._loop.add_reader(sock.fileno(), self._readable, listener)
        self._listeners.append(listener)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.remove_reader(listener.sock.fileno())
            listener.sock.close()
        self._listeners.clear()
        self._new.clear()
        self._urgent.clear()
        self._tally.flush()

    async def reload(self, config: Config) -> None:
        new = config.dhcp6
        if new.interfaces != self.config.interfaces or new.port != self.config.port:
            log.warning("dhcp6.interfaces/port changed: takes effect at the next restart")
        old, self.config = self.config, new
        if (old.client_rate, old.client_burst) != (new.client_rate, new.client_burst):
            self._clients = TokenBuckets(new.client_rate, new.client_burst)
        if (old.link_rate, old.link_burst) != (new.link_rate, new.link_burst):
            self._links = TokenBuckets(new.link_rate, new.link_burst)
        self.engine.reconfigure(
            self._settings(self.engine.settings.server_duid),
            profiles=profiles_from_config(config.boot),
            boot_params=boot_params_from_config(config.boot),
        )

    def statistics(self) -> dict[str, Any]:
        return {
            "interfaces": [
                {"name": x.interface, "address": None if x.local is None else str(x.local)}
                for x in self._listeners
            ],
            "port": self.config.port,
            "server_duid": self.engine.settings.server_duid.hex(":"),
            "received": self.received,
            "sent": self.sent,
            "dropped": dict(sorted(self.dropped.items())),
            "queue": len(self._new) + len(self._urgent),
            "commit": self.committer.statistics(),
        }

    # --- receive -------------------------------------------------------------------------------

    def _readable(self, listener: _Listener) -> None:
        assert self._loop is not None
        arrived = self._loop.time()
        limit = self.config.queue_size
        new, urgent = self._new, self._urgent
        clients, links = self._clients, self._links
        # How long the oldest waiting message has waited: the same for this whole read.
        heads = [q[0][3] for q in (new, urgent) if q]
        waited = arrived - min(heads) if heads else 0.0
        shed = limited_client = limited_link = 0
        recvmsg = listener.sock.recvmsg
        for _ in range(READ_BATCH):
            try:
                data, ancillary, _flags, addr = recvmsg(MAX_DATAGRAM, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            if not data:
                continue
            kind, duid = glance(data)
            # Per client: its DUID, not the source, which for relayed traffic is the relay.
            if not clients.allow(addr[0] if duid is None else duid, arrived):
                limited_client += 1
                continue
            item = (data, addr, listener, arrived, _to_unicast(ancillary))
            waiting = len(new) + len(urgent)
            if kind == _SOLICIT:
                if waiting >= BUSY_QUEUE and backlogged(waiting, waited):
                    # Backlogged: a client the site knows goes first; an unknown one draws
                    # from its link's bucket (the relay's, or the interface's).
                    if self._known(duid):
                        if waiting >= limit:
                            shed += 1
                            if not new:
                                continue
                            new.popleft()
                        urgent.append(item)
                        continue
                    link = addr[0] if data[0] == _RELAY_FORW else listener.interface
                    if not links.allow(link, arrived):
                        limited_link += 1
                        continue
                if waiting >= limit:
                    shed += 1
                    if not new:
                        continue
                    new.popleft()  # the oldest SOLICIT makes room for the newest
                new.append(item)
            else:
                if waiting >= limit:
                    shed += 1
                    if not new:
                        continue
                    new.popleft()  # an exchange under way beats a new one
                urgent.append(item)
        if shed:
            self._drop("overload", shed)
        if limited_client:
            self._drop("rate-limited-client", limited_client)
        if limited_link:
            self._drop("rate-limited-link", limited_link)
        if (new or urgent) and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._process)

    def _known(self, duid: bytes | None) -> bool:
        """Whether the site knows the client: a reservation or a lease for its DUID."""
        if duid is None:
            return False
        text = duid_text(duid)
        index = self.site.index
        if index.host_by_duid(text) is not None:
            return True
        return any(index.leases6_of_duid(kind, text) for kind in Lease6Kind)

    def _process(self) -> None:
        self._scheduled = False
        assert self._loop is not None
        now = self._clock()
        oldest = self._loop.time() - self.config.queue_max_age
        stale = 0
        for _ in range(PROCESS_BATCH):
            if self._urgent:
                item = self._urgent.popleft()
            elif self._new:
                # Past a backlog the newest SOLICIT first: the oldest ones' clients have most
                # likely retransmitted or given up; those age out as ``stale``.
                item = self._new.pop() if len(self._new) > LIFO_BACKLOG else self._new.popleft()
            else:
                break
            data, addr, listener, arrived, unicast = item
            if arrived < oldest:
                stale += 1
                continue
            try:
                self._handle(data, addr, listener, unicast, now)
            except Exception:  # the per-message bug boundary (R9)
                log.exception("internal error handling a DHCPv6 message from %s", addr)
                metrics.INTERNAL_ERRORS.labels(area="dhcp6").inc()
        if stale:
            self._drop("stale", stale)
        metrics.DHCP6_QUEUE_DEPTH.set(len(self._new) + len(self._urgent))
        if (self._new or self._urgent) and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._process)

    def _handle(
        self, data: bytes, addr: Any, listener: _Listener, unicast: bool, now: float
    ) -> None:
        try:
            message = decode_message(data)
            self._tally.add(self._counter(metrics.DHCP6_RECEIVED, message.msg_type))
            self.received += 1
            inbound = Inbound6(
                interface=listener.interface,
                src=self._source(addr[0]),
                src_port=addr[1],
                unicast=unicast,
                local=listener.local,
            )
            decision = self.engine.handle(message, inbound, now)
        except DhcpFormatError as exc:
            log.debug("drop malformed DHCPv6 message from %s: %s", addr, exc)
            self._drop("malformed")
            return
        if isinstance(decision, Drop6):
            log.debug("drop DHCPv6 message from %s: %s", addr, decision.reason.value)
            self._drop(decision.reason.value)
            return
        self._tally.add(self._counter(metrics.DHCP6_DECISIONS, decision.rule))
        payload = encode_message(decision.message)
        if not decision.commit:
            self._send(listener, payload, decision, addr)
            return
        # Every lease of the reply durable, then the reply: a countdown over the commits.
        remaining = [len(decision.commit)]

        def durable() -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                self._send(listener, payload, decision, addr)

        for lease in decision.commit:
            if not self.committer.submit_nowait(lease, durable):
                self._drop("commit-overload")
                return

    def _source(self, host: str) -> IPv6Address:
        """The address of a peer as recvmsg names it (``fe80::1%eth0``), parsed once per peer:
        a relay or a client sends several messages, and parsing an IPv6 string costs more
        than the rest of admission."""
        cache = self._sources
        ip = cache.get(host)
        if ip is None:
            if len(cache) >= MAX_SOURCES:
                cache.clear()
            ip = cache[host] = IPv6Address(host.split("%", 1)[0])
        return ip

    def _send(self, listener: _Listener, payload: bytes, reply: Reply6, peer: Any) -> None:
        to = reply.to
        if to.ip is self._sources.get(peer[0]):
            # Back to the sender (always, today): its own address and scope, nothing to format.
            # Without the "%zone" suffix the address is numeric to the socket module, which
            # then skips getaddrinfo(3).
            target = (peer[0].partition("%")[0], to.port, 0, peer[3])
        else:
            target = (str(to.ip), to.port, 0, listener.index if to.ip.is_link_local else 0)
        try:
            listener.sock.sendto(payload, target)
        except OSError as exc:
            log.debug("send to [%s]:%d failed: %s", to.ip, to.port, exc)
            self._drop("send-failed")
            return
        self.sent += 1
        self._tally.add(self._counter(metrics.DHCP6_SENT, reply.reply_type))

    def _counter(self, family: Any, value: int | str) -> Any:
        """The child of a per-message counter for a message type or a rule, looked up once."""
        key = (family, value)
        child = self._children.get(key)
        if child is None:
            if family is metrics.DHCP6_DECISIONS:
                child = family.labels(rule=str(value))
            else:
                child = family.labels(message_type=_message_label(int(value)))
            self._children[key] = child
        return child

    def _drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n
        metrics.DHCP6_DROPPED.labels(reason=reason).inc(n)

    # --- maintenance ---------------------------------------------------------------------------

    async def _maintain(self) -> None:
        while True:
            try:
                changes = await self.site.store.expire_leases6(self._clock())
            except Exception:  # a store failure must not end DHCPv6; logged, counted
                log.exception("expiring DHCPv6 leases failed")
                metrics.INTERNAL_ERRORS.labels(area="dhcp6").inc()
            else:
                if changes:
                    metrics.DHCP6_EXPIRED.inc(len(changes))
            self.refresh_gauges()
            await asyncio.sleep(self.config.expire_interval)

    def refresh_gauges(self) -> None:
        counts = {(kind, state): 0 for kind in Lease6Kind for state in LeaseState}
        for lease in self.site.index.leases6():
            counts[lease.kind, lease.state] += 1
        for (kind, state), n in counts.items():
            metrics.DHCP6_LEASES.labels(kind=kind.value, state=state.value).set(n)


def _to_unicast(ancillary: list[tuple[int, int, bytes]]) -> bool:
    """Whether IPV6_PKTINFO names a unicast destination (not ff02::1:2, §18.4)."""
    for level, kind, value in ancillary:
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(value) >= 16:
            return value[0] != 0xFF  # ff00::/8 is multicast (RFC 4291 §2.7)
    return False


def service(site: Site) -> Dhcp6Server:
    return Dhcp6Server(site)
