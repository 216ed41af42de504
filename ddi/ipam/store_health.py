"""The store's disk health: a rate-limited record of the writes the disk refused (which SQLite
errors those are: ``ddi.ipam.transaction.write_failure``), and the free space of the data
directory.

A full disk is an operating condition, not a bug: the transaction is rolled back, the caller
gets ``StoreWriteFailed`` (the API answers 503), and the log gets one line per
:data:`LOG_INTERVAL` with the count of failures since the last line, not a traceback per
failed write (thousands a second under DHCP load).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ddi.errors import StoreWriteFailed

log = logging.getLogger("ddi.ipam.store")

LOG_INTERVAL = 10.0
"""Seconds between two log lines about failing writes: the first failure is logged at once,
the rest of a burst is counted into the next line."""

KEEP_FREE_FRACTION = 0.15
KEEP_FREE_MAX = 4 * 1024**3
"""Free space below min(15 % of the filesystem, 4 GiB) is "low": systemd-journald's default
``SystemKeepFree``, the space it leaves to the other users of a filesystem. The daemon then
warns and checkpoints the WAL back to zero bytes, so the log is not what takes the last
megabytes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskSpace:
    free: int
    """Bytes an unprivileged writer may still use."""
    total: int

    @property
    def low(self) -> bool:
        return self.free < min(self.total * KEEP_FREE_FRACTION, KEEP_FREE_MAX)


def disk_space(path: Path) -> DiskSpace:
    """The free and total space of the filesystem holding ``path``."""
    st = os.statvfs(path)
    return DiskSpace(free=st.f_bavail * st.f_frsize, total=st.f_blocks * st.f_frsize)


class WriteHealth:
    """Failed writes since start: counted, the last one kept for ``ddi status``, and logged
    at most once per ``interval``."""

    def __init__(
        self,
        *,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._wall = wall
        self.failures = 0
        """Writes the disk refused since the daemon started."""
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        """Wall-clock time of the last refused write."""
        self._unreported = 0
        self._next_log = float("-inf")
        self._failing = False

    def failed(self, error: StoreWriteFailed) -> None:
        self.failures += 1
        self.last_error = str(error)
        self.last_error_at = self._wall()
        self._failing = True
        self._unreported += 1
        now = self._clock()
        if now < self._next_log:
            return
        log.error(
            "%s: %d write(s) refused and rolled back since the last report (%d since start); "
            "nothing was acknowledged that is not stored",
            error,
            self._unreported,
            self.failures,
        )
        self._unreported = 0
        self._next_log = now + self._interval

    def succeeded(self) -> None:
        """A write committed: after failures, say once that writes work again."""
        if self._failing:
            self._failing = False
            log.warning(
                "store writes succeed again (%d refused since start, %d since the last report)",
                self.failures,
                self._unreported,
            )
            self._unreported = 0
            self._next_log = float("-inf")
