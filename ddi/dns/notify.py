"""NOTIFY (RFC 1996) to the configured secondaries when a zone's serial moves.

Rules:
* Changed zones are queued; one task sends, per queued zone and secondary, a NOTIFY and waits
  for the answer with the same ID, retrying ``NOTIFY_ATTEMPTS`` times ``NOTIFY_TIMEOUT`` apart
  (RFC 1996 §3.6), then gives up (counted, logged).
* A secondary with a TSIG key gets a signed NOTIFY, and its answer must be signed with the same
  key (RFC 8945 §5.3), else the result is ``bad_tsig``.
* Each attempt reads the zone again: a retry carries the current serial.
* One UDP socket per NOTIFY, connected to the secondary through the loop's datagram transport
  (works on every loop, uvloop included): only that address and port can answer it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, cast

from ddi import metrics
from ddi.config import SecondaryConfig
from ddi.dns import tsig, xfr
from ddi.dns.engine import rcode_label
from ddi.dns.wire import HEADER_SIZE, RCODE_MASK, Rcode
from ddi.dns.zone import Zone
from ddi.errors import DnsFormatError

log = logging.getLogger("ddi.dns.server")  # the service's logger: one name for its lines

NOTIFY_TIMEOUT = 2.0
NOTIFY_ATTEMPTS = 3


class NotifySender:
    """Queue changed zones with ``queue``; ``run`` (one task) sends their NOTIFYs."""

    def __init__(
        self,
        zone: Callable[[str], Zone | None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._zone = zone
        self._clock = clock
        self.secondaries: Sequence[SecondaryConfig] = ()
        self.keys: Mapping[str, tsig.TsigKey] = {}
        self._pending: set[str] = set()
        self._event = asyncio.Event()
        self.running = False

    def configure(
        self, secondaries: Sequence[SecondaryConfig], keys: Mapping[str, tsig.TsigKey]
    ) -> None:
        self.secondaries = secondaries
        self.keys = keys

    def queue(self, origins: Iterable[str]) -> None:
        if not self.secondaries:
            return
        self._pending |= set(origins)
        self._event.set()

    async def run(self) -> None:
        """Send the queued NOTIFYs until cancelled."""
        self.running = True
        try:
            while True:
                await self._event.wait()
                self._event.clear()
                origins, self._pending = self._pending, set()
                await self._send_all(origins)
        finally:
            self.running = False

    async def _send_all(self, origins: Collection[str]) -> None:
        jobs = [
            self._notify(origin, secondary)
            for origin in sorted(origins)
            for secondary in self.secondaries
        ]
        await asyncio.gather(*jobs)

    async def _notify(self, origin: str, secondary: SecondaryConfig) -> None:
        """RFC 1996 §3.6: send NOTIFY, retry until the secondary answers (or give up)."""
        if self._zone(origin) is None:
            return
        host, port = secondary.address
        key = self.keys.get(secondary.key) if secondary.key else None
        try:
            channel = await _Channel.open(host, port)
        except OSError as exc:
            metrics.DNS_NOTIFIES.labels(result="error").inc()
            log.warning("NOTIFY %s to %s:%d: %s", origin, host, port, exc.strerror or exc)
            return
        with channel:
            for _ in range(NOTIFY_ATTEMPTS):
                zone = self._zone(origin)
                if zone is None:
                    return
                msg_id = secrets.randbits(16)
                wire = xfr.notify_message(zone, msg_id).pack()
                request_mac = b""
                if key is not None:
                    wire, request_mac = tsig.sign(wire, key, now=self._clock())
                try:
                    reply = await channel.ask(wire, msg_id)
                except TimeoutError:
                    continue
                rcode = reply[3] & RCODE_MASK
                result = "ok" if rcode == Rcode.NOERROR else rcode_label(rcode).lower()
                if key is not None and rcode == Rcode.NOERROR:
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


class _Channel(asyncio.DatagramProtocol):
    """A UDP socket connected to one secondary, through the loop's datagram transport (which
    every loop implements, uvloop included; ``loop.sock_sendto`` is not one of them). Being
    connected, the socket takes datagrams from that address and port only."""

    def __init__(self) -> None:
        self._replies: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> _Channel:
        loop = asyncio.get_running_loop()
        _, channel = await loop.create_datagram_endpoint(cls, remote_addr=(host, port))
        return channel

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a flood is dropped, not queued
            self._replies.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        """An ICMP error (port unreachable): the attempt times out and is retried."""

    async def ask(self, wire: bytes, msg_id: int) -> bytes:
        """Send ``wire``; the first datagram that answers ``msg_id`` within ``NOTIFY_TIMEOUT``.

        Raises:
            TimeoutError: none came in time.
        """
        assert self._transport is not None
        self._transport.sendto(wire)
        async with asyncio.timeout(NOTIFY_TIMEOUT):
            while True:
                reply = await self._replies.get()
                if len(reply) >= HEADER_SIZE and struct.unpack_from("!H", reply)[0] == msg_id:
                    return reply

    def __enter__(self) -> _Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()
