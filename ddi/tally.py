"""Counters incremented together once per event-loop iteration: a Prometheus ``inc`` takes a
lock, and once per packet and label is measurable on the DHCP servers' hot paths."""

from __future__ import annotations

import asyncio
from typing import Any


class Tally:
    """``add(child)`` counts one for a metric child; the counts reach it at the end of the
    current loop iteration (at once when no loop is bound), and on ``flush()``."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._counts: dict[Any, int] = {}
        self._scheduled = False

    def add(self, child: Any) -> None:
        counts = self._counts
        counts[child] = counts.get(child, 0) + 1
        if not self._scheduled:
            self._scheduled = True
            if self.loop is None:
                self.flush()
            else:
                self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        counts, self._counts = self._counts, {}
        for child, n in counts.items():
            child.inc(n)
