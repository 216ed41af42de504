"""The console's memory of the last hours: a :class:`ddi.web.ring.Ring` per daemon, sampled
every ``INTERVAL`` seconds while a listener serves the console.

Each sample holds the cumulative DHCP packets received, DNS queries answered and the
utilisation of each IPv4 subnet's pools; the charts draw rates and levels from them. Nothing
is written to disk: a restart starts the charts afresh, and the ring's size bounds the memory.
Both listeners (unix socket and TCP) share one ring: the first to start samples, the last to
stop ends the sampling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web

from ddi import metrics
from ddi.api.common import APP_KEY, Daemon
from ddi.ipam.usage import subnet_usage
from ddi.web.ring import Ring, Sample

log = logging.getLogger(__name__)

INTERVAL = 60.0
"""Seconds between samples."""
CAPACITY = 6 * 60
"""Samples kept: six hours at one a minute."""
SPAN = 3 * 3600.0
"""Seconds the charts show."""
DHCP_RECEIVED = "dhcp_received"
DNS_ANSWERED = "dns_answered"
POOL = "pool:"
"""Prefix of a subnet's utilisation in a sample (``pool:lan``)."""


def counter_total(counter: object) -> float:
    """The sum of a labelled counter's ``_total`` samples (its public ``collect()``)."""
    total = 0.0
    collect = getattr(counter, "collect", None)
    if collect is None:
        return total
    for family in collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                total += float(sample.value)
    return total


def counter_by(counter: object, label: str) -> dict[str, float]:
    """A labelled counter's ``_total`` samples added up by the value of ``label``."""
    out: dict[str, float] = {}
    collect = getattr(counter, "collect", None)
    if collect is None:
        return out
    for family in collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = str(sample.labels.get(label, ""))
                out[key] = out.get(key, 0.0) + float(sample.value)
    return out


def read_sample(daemon: Daemon, now: float) -> Sample:
    """What the charts need, read now."""
    index = daemon.site.index
    hosts = list(index.hosts())
    leases = list(index.leases())
    values = {
        DHCP_RECEIVED: counter_total(metrics.DHCP_RECEIVED),
        DNS_ANSWERED: counter_total(metrics.DNS_QUERIES),
    }
    for subnet in index.subnets():
        total = subnet_usage(subnet, hosts, leases, now).total()
        values[POOL + subnet.name] = total.utilisation
    return Sample(at=now, values=values)


@dataclass(eq=False)
class History:
    """One daemon's ring and its sampling task."""

    ring: Ring = field(default_factory=lambda: Ring(CAPACITY))
    users: int = 0
    task: asyncio.Task[None] | None = None

    def sample(self, daemon: Daemon) -> None:
        self.ring.add(read_sample(daemon, time.time()))

    async def run(self, daemon: Daemon, interval: float) -> None:
        while True:
            try:
                self.sample(daemon)
            except Exception:  # a failed sample leaves a gap in the charts, not a dead task
                log.exception("console sample failed")
                metrics.INTERNAL_ERRORS.labels(area="console").inc()
            await asyncio.sleep(interval)


_HISTORIES: dict[int, History] = {}
"""id(daemon) -> its history, while one of its listeners runs."""
HISTORY_KEY: web.AppKey[History] = web.AppKey("ddi.console.history")


def attach(app: web.Application, daemon: Daemon, *, interval: float = INTERVAL) -> History:
    """Share ``daemon``'s history with ``app``; sample while ``app`` runs."""
    history = _HISTORIES.setdefault(id(daemon), History())
    app[HISTORY_KEY] = history

    async def start(app: web.Application) -> None:
        history.users += 1
        if history.task is None:
            history.task = asyncio.create_task(history.run(app[APP_KEY], interval))

    async def stop(app: web.Application) -> None:
        history.users -= 1
        if history.users > 0 or history.task is None:
            return
        history.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await history.task
        history.task = None
        _HISTORIES.pop(id(daemon), None)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return history


def samples(app: web.Application) -> Iterable[Sample]:
    return app[HISTORY_KEY].ring.samples()
