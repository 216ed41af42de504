"""``[ipam]``: how long the change log keeps entries, and how often a renewal is logged."""

from __future__ import annotations

from dataclasses import dataclass

from ddi.config.table import Table, setting


@dataclass(frozen=True, slots=True, kw_only=True)
class IpamConfig:
    retention_days: float = setting(90.0, lo=0, hi=36500)
    """Change-log entries older than this are deleted (0: kept whatever their age); with
    ``[sync]`` only those central has acknowledged."""
    retention_entries: int = setting(1_000_000, lo=0, hi=1_000_000_000)
    """At most this many entries are kept, the newest (0: no limit); with ``[sync]`` the
    unacknowledged ones are kept beyond it."""
    renewal_log_interval: float = setting(21600.0, lo=0, hi=31_536_000)
    """Seconds a renewal that changes nothing but the lease's end may move that end past the
    end last logged before it is logged again (0: log every renewal). Central's copy of a
    renewed lease's end lags by at most this; any other change is logged at once."""
    retention_interval: float = setting(3600.0, lo=1, hi=86400)
    """Seconds between two passes of the retention."""


def parse_ipam(t: Table | None) -> IpamConfig:
    if t is None:
        return IpamConfig()
    cfg = t.read(IpamConfig)
    t.done()
    return cfg
