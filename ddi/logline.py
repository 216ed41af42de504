"""The daemon's log line, made cheaply: the DHCP server writes one per lease it grants.

``logging``'s defaults cost about 8 µs a line here, a few percent of a DHCP exchange. Two
things in them serve nothing of ``ddi serve``'s format: each record looks up its thread's and
process's names (the format prints neither), and each line formats its time with
``strftime``, though a busy second's lines all share the same seconds. :func:`configure`
turns the first off and :class:`LineFormatter` formats the seconds once per second:
6.3 µs a line (``logging`` to an in-memory stream, the same format).
"""

from __future__ import annotations

import logging
import time

__all__ = ["LineFormatter", "configure"]


class LineFormatter(logging.Formatter):
    """``logging.Formatter`` with the default date format, its seconds formatted once per
    second (the milliseconds per line, as ``logging`` writes them)."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second: int | None = None
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"  # as default_msec_format


def configure(level: str, fmt: str) -> None:
    """The root logger at ``level``, writing ``fmt`` lines to stderr."""
    # No thread, process or multiprocessing name in the format: not looked up per record.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(LineFormatter(fmt))
    logging.basicConfig(level=level.upper(), handlers=[handler])
