"""The ``ra`` service: periodic and solicited Router Advertisements on each link whose
``[subnets6.ra]`` is enabled (RFC 4861 §6.2).

One raw ICMPv6 socket per link, bound to its interface, joined to All_Routers (ff02::2) and
filtered to Router Solicitations only (RFC 3542 §3.2). Advertisements go to All_Nodes (ff02::1)
with hop limit 255 (§6.1.2: hosts drop any other) from the interface's link-local address,
given in IPV6_PKTINFO (§6.1.2: the source of an RA must be link-local); the kernel fills in the
checksum. When the link-local address is missing or still tentative, the advertisement is
skipped and counted, and tried again at the next one.

The schedule (``ddi.ra.schedule``) decides when; a solicitation can only bring the next
multicast advertisement forward, at most one every 3 s (§6.2.6). Solicitations are checked as
§6.1.1 says (hop limit 255 from IPV6_HOPLIMIT, lengths, no source link-layer option from ::)
and every refusal is counted by reason.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import random
import socket
import struct
from collections.abc import Sequence
from dataclasses import replace
from ipaddress import IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddi import metrics
from ddi.config.ra import links
from ddi.errors import ConfigError
from ddi.ra.message import (
    ALL_NODES,
    ALL_ROUTERS,
    ND_HOP_LIMIT,
    ROUTER_SOLICITATION,
    NdFormatError,
    decode_solicit,
    encode_advert,
)
from ddi.ra.schedule import RaSchedule
from ddi.ra.settings import RaLink

if TYPE_CHECKING:
    from ddi.config import Config
    from ddi.site import Site

log = logging.getLogger(__name__)

ICMP6_FILTER = 1
"""``<netinet/icmp6.h>``: the ICMPv6 type filter option (level IPPROTO_ICMPV6)."""
_SIOCGIFHWADDR = 0x8927
_IF_INET6 = Path("/proc/net/if_inet6")
_IFA_F_TENTATIVE = 0x40
_IFA_F_DADFAILED = 0x08
_SCOPE_LINK = 0x20
_RECV_SIZE = 2048
_CMSG_SPACE = socket.CMSG_SPACE(4)


def solicit_filter() -> bytes:
    """An ICMP6_FILTER that blocks every type but Router Solicitation (RFC 3542 §3.2: a set
    bit blocks the type)."""
    words = [0xFFFFFFFF] * 8
    words[ROUTER_SOLICITATION >> 5] &= ~(1 << (ROUTER_SOLICITATION & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)


def link_local(ifindex: int, table: str | None = None) -> IPv6Address | None:
    """The interface's usable link-local address (not tentative, not failed DAD), from
    /proc/net/if_inet6, or None."""
    try:
        text = _IF_INET6.read_text() if table is None else table
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        try:
            index, scope, flags = int(fields[1], 16), int(fields[3], 16), int(fields[4], 16)
            address = IPv6Address(bytes.fromhex(fields[0]))
        except ValueError:
            continue
        if index != ifindex or scope != _SCOPE_LINK or not address.is_link_local:
            continue
        if flags & (_IFA_F_TENTATIVE | _IFA_F_DADFAILED):
            continue
        return address
    return None


def hardware_address(sock: socket.socket, interface: str) -> bytes | None:
    """The interface's Ethernet address, for the source link-layer option (§4.6.1)."""
    try:
        raw = fcntl.ioctl(sock.fileno(), _SIOCGIFHWADDR, struct.pack("256s", interface.encode()))
    except OSError:
        return None
    mac = raw[18:24]
    return None if mac == bytes(6) else mac


class _Link:
    """One interface: its socket, schedule, timer and counters."""

    def __init__(self, service: RaService, link: RaLink) -> None:
        self.service = service
        self.link = link
        self.loop = service.loop
        self.ifindex = 0
        self.sock: socket.socket | None = None
        self.mac: bytes | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.schedule = RaSchedule.starting(
            min_interval=link.settings.min_seconds,
            max_interval=float(link.settings.interval),
            now=self.loop.time(),
        )
        self.counts: dict[str, int] = {}

    def open(self) -> None:
        """Raises OSError when the socket cannot be made (no such interface, no CAP_NET_RAW)."""
        interface = self.link.interface
        self.ifindex = socket.if_nametoindex(interface)
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, solicit_filter())
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ND_HOP_LIMIT)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ND_HOP_LIMIT)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            group = ALL_ROUTERS.packed + struct.pack("@I", self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.mac = hardware_address(sock, interface)
        self.loop.add_reader(sock.fileno(), self._readable)
        self._arm()
        log.info(
            "ra on %s: %s every %g-%d s", interface, self.link.cidr,
            self.schedule.min_interval, self.link.settings.interval,
        )  # fmt: skip

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        self.service.count(what)
        metrics.RA_EVENTS.labels(interface=self.link.interface, event=what).inc()
        if what == "internal_error":
            metrics.INTERNAL_ERRORS.labels(area="ra").inc()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(self.schedule.due_at, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        now = self.loop.time()
        try:
            if self.schedule.due(now):
                self.send(self.link)
                self.schedule.sent(now, random.random())
        except Exception:  # the per-link bug boundary: log, count, keep advertising
            log.exception("ra on %s failed", self.link.interface)
            self.count("internal_error")
        self._arm()

    def send(self, link: RaLink) -> bool:
        """One multicast advertisement to All_Nodes; False when it could not go out."""
        if self.sock is None:
            return False
        source = link_local(self.ifindex)
        if source is None:
            self.count("no_link_local")
            return False
        message = encode_advert(link.advert(self.mac))
        info = source.packed + struct.pack("@I", self.ifindex)
        try:
            self.sock.sendmsg(
                [message],
                [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)],
                0,
                (str(ALL_NODES), 0, 0, self.ifindex),
            )
        except OSError as exc:
            log.debug("ra on %s: send failed: %s", link.interface, exc)
            self.count("send_error")
            return False
        self.count("sent")
        return True

    def _readable(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data, ancdata, _, peer = self.sock.recvmsg(_RECV_SIZE, _CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("ra on %s: %s", self.link.interface, exc)
                return
            try:
                self._on_solicit(data, ancdata, peer)
            except Exception:  # the per-packet bug boundary: log, count, drop
                log.exception("ra solicitation on %s failed", self.link.interface)
                self.count("internal_error")

    def _on_solicit(
        self, data: bytes, ancdata: list[tuple[int, int, bytes]], peer: tuple[Any, ...]
    ) -> None:
        hop_limit = None
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT and len(value) == 4:
                hop_limit = struct.unpack("@i", value)[0]
        source = str(peer[0]).partition("%")[0]
        try:
            decode_solicit(data, hop_limit=hop_limit, unspecified_source=source == "::")
        except NdFormatError as exc:
            self.count("solicit_invalid")
            log.debug(
                "ra on %s: solicitation from %s dropped: %s", self.link.interface, source, exc
            )
            return
        self.count("solicit")
        if self.schedule.solicited(self.loop.time(), random.random()):
            self._arm()
        else:
            self.count("solicit_merged")  # an advertisement is already due as soon as allowed

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.sock is None:
            return
        if self.link.settings.router_lifetime:
            # Ceasing to advertise: a final advertisement with lifetime 0 (§6.2.5).
            final = replace(self.link.settings, router_lifetime=0)
            self.send(replace(self.link, settings=final))
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.sock = None


class RaService:
    """Router advertisements on every link that enables them (``ddi.site.Service``)."""

    name = "ra"

    def __init__(
        self, links: Sequence[RaLink], *, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self._pending = tuple(links)
        self._links: dict[str, _Link] = {}
        self.counts: dict[str, int] = {}

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    async def start(self, tg: asyncio.TaskGroup) -> None:
        """Open a socket per link; timers and readers live in callbacks, so ``tg`` gets no task.

        Raises:
            ConfigError: an interface is missing or raw sockets are not allowed.
        """
        for link in self._pending:
            state = _Link(self, link)
            try:
                state.open()
            except OSError as exc:
                await self.close()
                hint = " (needs CAP_NET_RAW)" if exc.errno in (errno.EPERM, errno.EACCES) else ""
                raise ConfigError(
                    f"subnets6.{link.subnet}.ra",
                    f"cannot advertise on {link.interface}: {exc.strerror or exc}{hint}",
                ) from None
            self._links[link.interface] = state

    async def close(self) -> None:
        for state in self._links.values():
            state.close()
        self._links.clear()

    async def reload(self, config: Config) -> None:
        """New settings for the links already advertised; a link added or removed waits for
        the next restart (its socket is made at start)."""
        for link in links_from_config(config):
            state = self._links.get(link.interface)
            if state is not None:
                state.link = link
                state.schedule.min_interval = link.settings.min_seconds
                state.schedule.max_interval = float(link.settings.interval)

    def statistics(self) -> dict[str, Any]:
        return {
            "links": {
                name: {"prefix": str(state.link.cidr), **dict(sorted(state.counts.items()))}
                for name, state in sorted(self._links.items())
            },
            **dict(sorted(self.counts.items())),
        }


def links_from_config(config: Config) -> list[RaLink]:
    return links(config.subnets6)


def service(site: Site) -> RaService:
    """Advertise on each ``[[subnets6]]`` link whose ``[subnets6.ra]`` is enabled."""
    return RaService(links_from_config(site.config))
