"""Stall tracing (``ddi serve --trace-stalls MS``): names what stops the event loop.

Every answer the daemon gives waits while a callback runs, so one slow callback shows as a
latency tail (DNS queries queue behind it) that no profile's averages point at. A tick on the
loop stamps the time every ``threshold / 2``; a watcher thread looks as often, and when the
stamp is older than the threshold it takes the loop thread's stack (``sys._current_frames``),
which is then inside whatever holds the loop. Once the loop runs again, the tick logs the
stop's length with that stack, at WARNING under ``ddi.stalls``.

A diagnostic, off by default: the thread wakes a few hundred times a second and takes the GIL
each time.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

log = logging.getLogger(__name__)

MAX_FRAMES = 12
"""Innermost frames logged per stall: where the loop was held, not how it got there."""


class StallTracer:
    """Logs each stop of ``loop`` longer than ``threshold`` seconds, with where it was."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threshold: float) -> None:
        if not threshold > 0:
            raise ValueError(f"stall threshold must be positive, not {threshold!r}")
        self._loop = loop
        self.threshold = threshold
        self._period = threshold / 2
        self._stamp = time.monotonic()
        self._seen: str | None = None
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._handle: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._watch, name="stall-tracer", daemon=True)
        self.stalls = 0

    def start(self) -> None:
        """Start ticking (call on the loop's thread) and watching."""
        self._loop_thread = threading.get_ident()
        self._stamp = time.monotonic()
        self._handle = self._loop.call_later(self._period, self._tick)
        self._thread.start()
        log.info("tracing event-loop stops over %.0f ms", self.threshold * 1000)

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
        if self._thread.is_alive():
            self._thread.join()

    def _tick(self) -> None:
        now = time.monotonic()
        gap = now - self._stamp
        self._stamp = now
        seen, self._seen = self._seen, None
        if gap > self.threshold:
            self.stalls += 1
            log.warning(
                "event loop stopped for %.0f ms; %s",
                gap * 1000,
                f"at %.0f ms it was in:\n{seen}" % (self.threshold * 1000)
                if seen
                else "its stack was not caught",
            )
        self._handle = self._loop.call_later(self._period, self._tick)

    def _watch(self) -> None:
        caught_at = -1.0
        while not self._stop.wait(self._period):
            stamp = self._stamp
            if time.monotonic() - stamp <= self.threshold or stamp == caught_at:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            if frame is None:
                continue
            caught_at = stamp  # one stack a stop: the first, nearest its start
            lines = traceback.format_list(traceback.extract_stack(frame)[-MAX_FRAMES:])
            self._seen = "".join(lines).rstrip()
