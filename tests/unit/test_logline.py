"""The daemon's log line: the same text as ``logging``'s own formatter, its time included."""

from __future__ import annotations

import logging

from ddi.logline import LineFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _record(created: float, message: str = "DHCPACK(eth0) 198.18.0.10") -> logging.LogRecord:
    record = logging.LogRecord("ddi.dhcp.leases", logging.INFO, __file__, 1, message, (), None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


def test_lines_read_as_loggings_own() -> None:
    ours, theirs = LineFormatter(FORMAT), logging.Formatter(FORMAT)
    # Within one second, across a second's end, and back to an earlier second.
    for created in (1_800_000_000.0, 1_800_000_000.5, 1_800_000_000.999, 1_800_000_001.001,
                    1_800_000_059.25, 1_799_999_999.75):  # fmt: skip
        record = _record(created)
        assert ours.format(record) == theirs.format(record)


def test_a_date_format_given_is_used() -> None:
    record = _record(1_800_000_000.25)
    assert LineFormatter(FORMAT).formatTime(record, "%Y") == logging.Formatter().formatTime(
        record, "%Y"
    )
