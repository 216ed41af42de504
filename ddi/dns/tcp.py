"""DNS over TCP (RFC 7766): length-prefixed messages, answered in order on each connection,
zone transfers (AXFR/IXFR) streamed here.

Rules:
* At most ``max_connections`` open connections: one more is closed at once (counted).
* A connection idle for ``idle_timeout`` seconds is closed by the server (RFC 7766 §6.2.3).
* Pipelined queries are answered in the order they came; a forwarded one is awaited in turn.
* A transfer's messages are written as they are packed, with a pause every few messages so
  the other clients are served in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable, Iterable

from ddi import metrics
from ddi.dns.counting import count
from ddi.dns.responder import Client, Drop, Forward, Reply, Result, Transfer

log = logging.getLogger("ddi.dns.server")  # the service's logger: one name for its lines

TRANSFER_SLICE = 8
"""Messages of a transfer written between two yields to the event loop."""


class TcpListener:
    """The per-connection handler for ``asyncio.start_server``."""

    def __init__(
        self,
        *,
        respond: Callable[[bytes, Client], Result],
        forward: Callable[[Forward], Awaitable[Reply | None]],
        max_connections: int,
        idle_timeout: float,
    ) -> None:
        self._respond = respond
        self._forward = forward
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.connections = 0
        self.transfers = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections >= self.max_connections:
            metrics.DNS_DROPPED.labels(reason="tcp_connection_cap").inc()
            writer.close()
            return
        self.connections += 1
        metrics.DNS_TCP_CONNECTIONS.inc()
        client = Client.of_peer(writer.get_extra_info("peername") or ("", 0))
        idle = self.idle_timeout
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), idle)
                    (length,) = struct.unpack("!H", head)
                    data = await asyncio.wait_for(reader.readexactly(length), idle)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    break  # RFC 7766 §6.2.3: the server closes idle connections
                for n, reply in enumerate(await self._replies(data, client), 1):
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    if n % TRANSFER_SLICE == 0:  # a long transfer: let the other clients in
                        await writer.drain()
                        await asyncio.sleep(0)
                await writer.drain()
        except ConnectionError:
            pass
        except Exception:  # the per-connection bug boundary (R9)
            log.exception("internal error on a DNS TCP connection")
            metrics.INTERNAL_ERRORS.labels(area="dns").inc()
        finally:
            self.connections -= 1
            metrics.DNS_TCP_CONNECTIONS.dec()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _replies(self, data: bytes, client: Client) -> Iterable[bytes]:
        result = self._respond(data, client)
        metrics.DNS_CACHE_LOOKUPS.labels(
            result="hit" if isinstance(result, Reply) and result.cached else "miss"
        ).inc()
        count(result, client)
        match result:
            case Reply(data=reply):
                return [reply]
            case Forward():
                reply_to = await self._forward(result)
                return [] if reply_to is None else [reply_to.data]
            case Transfer():
                return self._transfer(result, client)
            case Drop():
                return []

    def _transfer(self, transfer: Transfer, client: Client) -> Iterable[bytes]:
        yield from transfer.messages()
        self.transfers += 1
        metrics.DNS_TRANSFERS.labels(type=transfer.kind, result="ok").inc()
        zone = transfer.decision.zone
        key = transfer.key_name
        log.info(
            "%s of %s (serial %d) to %s%s",
            transfer.kind.upper(),
            zone.origin,
            zone.serial,
            client.peer,
            "" if key is None else f" (key {key})",
        )
