"""NOTIFY (RFC 1996) to the configured secondaries when a zone's serial moves.

Rules:
* Changed zones are queued; one task sends, per queued zone and secondary, a NOTIFY and waits
  for the answer with the same ID, retrying ``NOTIFY_ATTEMPTS`` times ``NOTIFY_TIMEOUT`` apart
  (RFC 1996 §3.6), then gives up (counted, logged).
* A secondary with a TSIG key gets a signed NOTIFY, and its answer must be signed with the same
  key (RFC 8945 §5.3), else the result is ``bad_tsig``.
* Each attempt reads the zone again: a retry carries the current serial.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

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
        loop = asyncio.get_running_loop()
        host, port = secondary.address
        key = self.keys.get(secondary.key) if secondary.key else None
        # A datagram endpoint, not loop.sock_sendto/sock_recvfrom: uvloop, the daemon's loop,
        # does not implement those. Connected to the secondary: only its answers arrive.
        try:
            transport, replies = await loop.create_datagram_endpoint(
                _Replies, remote_addr=(host, port)
            )
        except OSError as exc:
            metrics.DNS_NOTIFIES.labels(result="timeout").inc()
            log.warning("NOTIFY %s to %s:%d: %s", origin, host, port, exc)
            return
        try:
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
                    transport.sendto(wire)
                    reply = await _answer(loop, replies.queue, msg_id)
                except (TimeoutError, OSError):
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
        finally:
            transport.close()
        metrics.DNS_NOTIFIES.labels(result="timeout").inc()
        log.warning("NOTIFY %s to %s:%d: no answer", origin, host, port)


class _Replies(asyncio.DatagramProtocol):
    """The datagrams a NOTIFY's endpoint receives, in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for an earlier datagram: that attempt times out and is retried."""


async def _answer(
    loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes], msg_id: int
) -> bytes:
    """The first datagram in ``queue`` that answers ``msg_id`` within ``NOTIFY_TIMEOUT``.

    Raises:
        TimeoutError: none came in time.
    """
    deadline = loop.time() + NOTIFY_TIMEOUT
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError
        reply = await asyncio.wait_for(queue.get(), remaining)
        if len(reply) >= HEADER_SIZE and struct.unpack_from("!H", reply)[0] == msg_id:
            return reply
