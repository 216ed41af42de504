"""A tiny sd_notify(3) client and the watchdog ticker.

systemd passes ``NOTIFY_SOCKET`` (a datagram socket path; a leading ``@`` names an abstract
socket) to a ``Type=notify`` service, and ``WATCHDOG_USEC`` (with ``WATCHDOG_PID``) when
``WatchdogSec=`` is set. The daemon sends ``READY=1`` once it serves, ``RELOADING=1`` /
``READY=1`` around a reload, ``STOPPING=1`` when it starts to shut down, and ``WATCHDOG=1``
every half watchdog interval, as sd_watchdog_enabled(3) recommends.

Without ``NOTIFY_SOCKET`` every call is a no-op. A failed send is logged, never raised: the
service manager's socket going away must not take DHCP and DNS down with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends state lines to the service manager's notification socket."""

    def __init__(self, address: str | None) -> None:
        self._address = _socket_address(address) if address else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *states: str) -> bool:
        """Send ``states`` (``"READY=1"``, ``"STATUS=…"``) as one datagram.

        Returns:
            True when the datagram was sent; False without a socket or when the send failed.
        """
        if self._address is None or not states:
            return False
        message = "\n".join(states).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(message, self._address)
        except OSError as exc:
            log.warning("sd_notify %s failed: %s", states[0], exc)
            return False
        return True

    def reloading(self) -> bool:
        """``RELOADING=1`` with the ``MONOTONIC_USEC`` that systemd 253+ asks for."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")


def _socket_address(address: str) -> str | bytes:
    if address.startswith("@"):
        return b"\0" + address[1:].encode()
    return address


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None when the
    watchdog is off or meant for another process (``WATCHDOG_PID`` names someone else)."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 1_000_000 / 2


async def run_watchdog(notifier: Notifier, interval: float) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds until cancelled.

    The pings come from the event loop, so a loop blocked for longer than ``WatchdogSec``
    is what the watchdog catches, which is the point.
    """
    while True:
        notifier.notify("WATCHDOG=1")
        await asyncio.sleep(interval)
