"""TFTP server: the asyncio adapter around ``tftp_session.TftpTransfer``.

One listening socket per ``boot.tftp_listen`` address (IPv4 or IPv6; an IPv6 one is
IPV6_V6ONLY, so ``0.0.0.0`` and ``::`` share the port) takes requests; each accepted read
request gets its own socket of the listener's family, bound to an ephemeral port and connected
to the client, which is its transfer ID (RFC 1350 §4): the
kernel then drops datagrams from any other peer. Sockets are non-blocking and read with
``loop.add_reader`` until ``BlockingIOError``; the session's timer is one ``loop.call_at``
handle. Nothing here creates tasks: every transfer lives in callbacks and ends by closing its
socket.

Refusals (write requests, netascii, names outside the boot root, missing files, too many
transfers in all or to one client address) are answered from the listening socket with an
error packet and counted by reason. A second request from a client address that already has a
transfer is a retransmitted RRQ and is ignored. File reads are ``pread`` of a few blocks at a
time from the page cache, done inline.

A request is decoded and its options checked (``tftp_session.read_options``) before anything is
opened; the file, the transfer socket and the reader registration are then acquired on one
``ExitStack`` that releases all of them if any later step raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddi import metrics
from ddi.boot.files import FileSource, PathRefusal, safe_path
from ddi.boot.tftp_session import (
    ErrorCode,
    Options,
    Outcome,
    Refusal,
    RefusalReason,
    Request,
    TftpTransfer,
    TransferLimits,
    decode_packet,
    read_options,
    refusal_for,
)
from ddi.errors import ConfigError, TftpFormatError

if TYPE_CHECKING:
    from ddi.config import BootConfig, Config
    from ddi.site import Site

log = logging.getLogger(__name__)

_RECV_SIZE = 65536
_SOCKET_BUFFER = 4 * 1024 * 1024
Peer = tuple[Any, ...]
"""A socket address: (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6."""
UNKNOWN_PROFILE = "-"
"""Profile label of a fetched file that no profile names."""


def limits_from_config(boot: BootConfig) -> TransferLimits:
    return TransferLimits(
        timeout=boot.tftp_timeout,
        retries=boot.tftp_retries,
        max_blksize=boot.tftp_max_blksize,
        max_windowsize=boot.tftp_max_windowsize,
        max_window_bytes=boot.tftp_max_window_bytes,
    )


def file_profiles(boot: BootConfig) -> dict[str, str]:
    """Boot file name -> the (first) profile that names it, for the funnel's profile label."""
    result: dict[str, str] = {}
    for name, profile in boot.profiles.items():
        for file in profile.files.values():
            result.setdefault(file.lstrip("/"), name)
    return result


@dataclass
class TftpSettings:
    """What a transfer needs from the config; replaced as a whole on reload."""

    root: Path
    limits: TransferLimits = field(default_factory=TransferLimits)
    max_transfers: int = 256
    max_transfers_per_client: int = 8
    profiles: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, boot: BootConfig) -> TftpSettings:
        return cls(
            root=boot.root,
            limits=limits_from_config(boot),
            max_transfers=boot.tftp_max_transfers,
            max_transfers_per_client=boot.tftp_max_transfers_per_client,
            profiles=file_profiles(boot),
        )


_BUSY = Refusal(
    reason=RefusalReason.BUSY, code=ErrorCode.NOT_DEFINED, message="server busy, try again later"
)
_CLIENT_BUSY = Refusal(
    reason=RefusalReason.CLIENT_LIMIT,
    code=ErrorCode.NOT_DEFINED,
    message="too many transfers to this client",
)
_QUIET_OUTCOMES = frozenset({Outcome.COMPLETED, Outcome.SIZE_QUERY})
"""Outcomes of a normal boot, logged at info; every other one is a warning."""

_PATH_ERRORS: Mapping[PathRefusal, tuple[RefusalReason, ErrorCode, str]] = {
    PathRefusal.NOT_FOUND: (RefusalReason.NOT_FOUND, ErrorCode.FILE_NOT_FOUND, "file not found"),
    PathRefusal.NOT_A_FILE: (RefusalReason.NOT_FOUND, ErrorCode.FILE_NOT_FOUND, "not a file"),
    PathRefusal.TRAVERSAL: (
        RefusalReason.ACCESS,
        ErrorCode.ACCESS_VIOLATION,
        "'..' is not allowed",
    ),
    PathRefusal.ESCAPE: (
        RefusalReason.ACCESS,
        ErrorCode.ACCESS_VIOLATION,
        "path leaves the boot root",
    ),
}


class _Transfer:
    """One transfer's socket, timer and session."""

    def __init__(
        self,
        server: TftpServer,
        client: Peer,
        session: TftpTransfer,
        source: FileSource,
        sock: socket.socket,
        profile: str,
    ) -> None:
        self.server = server
        self.client = client
        self.session = session
        self.source = source
        self.sock = sock
        self.profile = profile
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop = server.loop
        self._loop.add_reader(sock.fileno(), self._readable)

    def pump(self) -> None:
        session = self.session
        for datagram in session.datagrams_to_send(self._loop.time()):
            try:
                self.sock.send(datagram)
            except (BlockingIOError, InterruptedError):
                pass  # a full send buffer is a lost datagram: the session's timer repairs it
            except OSError as exc:
                log.debug("tftp send to %s failed: %s", self.client, exc)
        if session.done:
            self.close()
            return
        when = session.get_timer()
        if when != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None if when is None else self._loop.call_at(when, self._on_timer)
            self._timer_at = when

    def _readable(self) -> None:
        try:
            while True:
                try:
                    data = self.sock.recv(_RECV_SIZE)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:
                    # ICMP port unreachable from an earlier send: the client is gone.
                    self.session.abort(Outcome.UNREACHABLE, "ICMP port unreachable")
                    break
                self.session.receive(data, self._loop.time())
                if self.session.done:
                    break
            self.pump()
        except Exception:  # noqa: BLE001 - the per-transfer bug boundary (R9): log, count, end it
            self.server.internal_error(self)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self.session.handle_timer(self._loop.time())
            self.pump()
        except Exception:  # noqa: BLE001 - the per-transfer bug boundary (R9)
            self.server.internal_error(self)

    def close(self) -> None:
        if self.sock.fileno() < 0:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.source.close()
        self.server.finished(self)


class TftpServer:
    """The TFTP listener and its transfers: the ``tftp`` service (``ddi.site.Service``)."""

    name = "tftp"

    def __init__(
        self,
        settings: TftpSettings,
        *,
        host: str | Sequence[str] = "0.0.0.0",
        port: int = 69,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.settings = settings
        self.hosts = (host,) if isinstance(host, str) else tuple(host)
        self.loop = loop or asyncio.get_running_loop()
        self._requested_port = port
        self._socks: list[socket.socket] = []
        self._binding = ""
        self._transfers: dict[Peer, _Transfer] = {}
        self._per_client: Counter[str] = Counter()
        self._counts: dict[str, int] = {}
        self._bytes_sent = 0

    @property
    def port(self) -> int:
        """The first listener's port (they differ only when the configured port is 0)."""
        return self.ports[0]

    @property
    def ports(self) -> list[int]:
        """Each listener's port, in ``boot.tftp_listen`` order."""
        assert self._socks
        return [int(sock.getsockname()[1]) for sock in self._socks]

    async def start(self, tg: asyncio.TaskGroup) -> None:
        """Bind the listening socket; transfers live in callbacks, so ``tg`` gets no task.

        Raises:
            ConfigError: the address cannot be used (naming ``boot.tftp_port``).
        """
        try:
            self.listen()
        except OSError as exc:
            hint = " (needs CAP_NET_BIND_SERVICE)" if exc.errno == errno.EACCES else ""
            raise ConfigError(
                "boot.tftp_port", f"cannot listen on {self._binding}: {exc.strerror}{hint}"
            ) from None

    def listen(self) -> None:
        """Bind a listening socket per address. Raises OSError when one cannot be used (the
        ones bound before it are closed)."""
        try:
            for host in self.hosts:
                self._binding = address_text(host, self._requested_port)
                sock = bound_udp(host, self._requested_port)
                self._socks.append(sock)
                self.loop.add_reader(sock.fileno(), self._readable, sock)
                log.info(
                    "tftp on %s serving %s",
                    address_text(host, sock.getsockname()[1]),
                    self.settings.root,
                )
        except OSError:
            self._close_listeners()
            raise

    def _close_listeners(self) -> None:
        for sock in self._socks:
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self._socks.clear()

    async def close(self) -> None:
        for transfer in list(self._transfers.values()):
            transfer.session.abort(Outcome.ABORTED, "server stopping")
            transfer.close()
        self._close_listeners()

    async def reload(self, config: Config) -> None:
        """New transfers use the new ``[boot]`` settings; running ones finish with what they
        started with. The listening address changes at the next restart."""
        self.settings = TftpSettings.from_config(config.boot)

    def statistics(self) -> dict[str, Any]:
        return {
            "port": self.port if self._socks else None,
            "active": len(self._transfers),
            "bytes_sent": self._bytes_sent,
            "requests": dict(sorted(self._counts.items())),
        }

    def _count(self, outcome: str) -> None:
        self._counts[outcome] = self._counts.get(outcome, 0) + 1
        metrics.BOOT_TFTP_REQUESTS.labels(outcome=outcome).inc()

    def _readable(self, listener: socket.socket) -> None:
        while True:
            try:
                data, client = listener.recvfrom(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("tftp listener: %s", exc)
                return
            try:
                self._on_request(data, client, listener)
            except Exception:  # the per-request bug boundary (R9): log, count, drop
                log.exception("tftp request from %s failed", client)
                metrics.INTERNAL_ERRORS.labels(area="boot").inc()

    def _refuse(self, refusal: Refusal, client: Peer, listener: socket.socket) -> None:
        self._count(refusal.reason.value)
        with contextlib.suppress(OSError):
            listener.sendto(refusal.datagram(), client)

    def _on_request(self, data: bytes, client: Peer, listener: socket.socket) -> None:
        try:
            request = decode_packet(data)
        except TftpFormatError as exc:
            self._count("malformed")
            log.debug("tftp drop from %s: %s", client, exc)
            return
        if not isinstance(request, Request):
            self._count("not_a_request")
            return
        if client in self._transfers:
            return  # a retransmitted RRQ: the running transfer answers it
        refusal = refusal_for(request)
        if refusal is None and len(self._transfers) >= self.settings.max_transfers:
            refusal = _BUSY
        if (
            refusal is None
            and self._per_client[client[0]] >= self.settings.max_transfers_per_client
        ):
            refusal = _CLIENT_BUSY
        if refusal is not None:
            self._refuse(refusal, client, listener)
            return
        options = read_options(request)  # checked before anything is opened
        path = safe_path(self.settings.root, request.filename)
        if isinstance(path, PathRefusal):
            reason, code, message = _PATH_ERRORS[path]
            log.info("tftp %s refused for %s: %s", request.filename, client[0], path.value)
            self._refuse(Refusal(reason=reason, code=code, message=message), client, listener)
            return
        self._start(request, options, path, client, listener)

    def _start(
        self,
        request: Request,
        options: Options,
        path: Path,
        client: Peer,
        listener: socket.socket,
    ) -> None:
        with contextlib.ExitStack() as resources:
            try:
                source = FileSource(path)
            except OSError as exc:
                log.warning("tftp cannot open %s: %s", path, exc.strerror)
                self._refuse(
                    Refusal(
                        reason=RefusalReason.ACCESS,
                        code=ErrorCode.ACCESS_VIOLATION,
                        message="cannot read file",
                    ),
                    client,
                    listener,
                )
                return
            resources.callback(source.close)
            try:
                # The listener's family and address, an ephemeral port (RFC 1350 §4).
                sock = resources.enter_context(socket.socket(listener.family, socket.SOCK_DGRAM))
                sock.setblocking(False)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
                sock.bind((listener.getsockname()[0], 0, *listener.getsockname()[2:]))
                sock.connect(client)
            except OSError as exc:  # out of descriptors or ports: a refusal, not a bug
                log.debug("tftp cannot open a transfer socket for %s: %s", client, exc)
                self._refuse(_BUSY, client, listener)
                return
            session = TftpTransfer(
                request,
                source,
                options=options,
                size=source.size,
                limits=self.settings.limits,
                now=self.loop.time(),
            )
            profile = self.settings.profiles.get(request.filename.lstrip("/"), UNKNOWN_PROFILE)
            transfer = _Transfer(self, client, session, source, sock, profile)
            resources.callback(self.loop.remove_reader, sock.fileno())
            resources.pop_all()  # the transfer owns them now and releases them in close()
        self._transfers[client] = transfer
        self._per_client[client[0]] += 1
        metrics.BOOT_TFTP_ACTIVE.set(len(self._transfers))
        metrics.BOOT_FETCHES_STARTED.labels(protocol="tftp", profile=profile).inc()
        log.debug(
            "tftp %s to %s:%d blksize %d windowsize %d",
            request.filename,
            client[0],
            client[1],
            session.negotiated.blksize,
            session.negotiated.windowsize,
        )
        try:
            transfer.pump()
        except Exception:  # noqa: BLE001 - the per-transfer bug boundary (R9)
            self.internal_error(transfer)

    def finished(self, transfer: _Transfer) -> None:
        if self._transfers.get(transfer.client) is transfer:
            del self._transfers[transfer.client]
            self._per_client[transfer.client[0]] -= 1
            if self._per_client[transfer.client[0]] <= 0:
                del self._per_client[transfer.client[0]]
        metrics.BOOT_TFTP_ACTIVE.set(len(self._transfers))
        session = transfer.session
        outcome = session.outcome or Outcome.ABORTED
        self._count(outcome.value)
        self._bytes_sent += session.bytes_sent
        metrics.BOOT_TFTP_SENT_BYTES.inc(session.bytes_sent)
        metrics.BOOT_TFTP_RETRANSMISSIONS.inc(session.retransmissions)
        if outcome is Outcome.COMPLETED:
            metrics.BOOT_FETCHES_COMPLETED.labels(protocol="tftp", profile=transfer.profile).inc()
        log.log(
            logging.INFO if outcome in _QUIET_OUTCOMES else logging.WARNING,
            "tftp %s to %s: %s (%d bytes, %d retransmissions)%s",
            session.request.filename,
            transfer.client[0],
            outcome.value,
            session.bytes_sent,
            session.retransmissions,
            f": {session.error_message}" if session.error_message else "",
        )

    def internal_error(self, transfer: _Transfer) -> None:
        log.exception("tftp transfer of %s failed", transfer.session.request.filename)
        metrics.INTERNAL_ERRORS.labels(area="boot").inc()
        transfer.session.abort(Outcome.ABORTED, "internal error")
        transfer.close()


def address_text(host: str, port: int) -> str:
    """``198.18.0.1:69`` or ``[2001:db8::1]:69``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bound_udp(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``host`` (IPv4 or IPv6, ``fe80::1%eth0`` with its
    scope), an IPv6 one for IPv6 only so that ``0.0.0.0`` and ``::`` can share ``port``.

    Raises:
        OSError: the address cannot be used.
    """
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST | socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def service(site: Site) -> TftpServer:
    """Serve TFTP from ``boot.root`` on ``boot.tftp_listen:boot.tftp_port``."""
    boot = site.config.boot
    return TftpServer(TftpSettings.from_config(boot), host=boot.tftp_listen, port=boot.tftp_port)
