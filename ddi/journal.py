"""Syslog priorities for the daemon's log lines when its standard error is the journal.

systemd sets ``JOURNAL_STREAM`` for a service whose stderr is connected to journald, which
then reads a ``<N>`` prefix on each line as its priority (sd-daemon(3), ``SyslogLevelPrefix=``
on by default): so ``journalctl -u ddi -p err`` shows the errors and nothing else. Every line
of a multi-line record (a traceback) gets the prefix, as journald stores each line apart.
"""

from __future__ import annotations

import logging
import os

__all__ = ["JournalFormatter", "priority", "use_priorities"]

_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
               (logging.INFO, 6))  # fmt: skip
_DEBUG = 7


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (RFC 5424 §6.2.1: 2 crit ... 7 debug)."""
    for level, value in _PRIORITIES:
        if levelno >= level:
            return value
    return _DEBUG


class JournalFormatter(logging.Formatter):
    """Another formatter's lines, each starting with the record's ``<N>`` priority."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in self.inner.format(record).split("\n"))


def use_priorities(environ: dict[str, str] | None = None) -> bool:
    """When stderr is the journal (``JOURNAL_STREAM`` set), give every handler of the root
    logger a :class:`JournalFormatter` with its format. Returns whether it did."""
    if not (os.environ if environ is None else environ).get("JOURNAL_STREAM"):
        return False
    for handler in logging.getLogger().handlers:
        if not isinstance(handler.formatter, JournalFormatter):
            handler.setFormatter(JournalFormatter(handler.formatter))
    return True
