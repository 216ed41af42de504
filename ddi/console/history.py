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
from ddi.ipam.usage import UsageCount
from ddi.steps import STEP, count_usage
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
    count = UsageCount(index.subnets(), now)
    count.add_hosts(index.hosts())
    count.add_leases(index.leases())
    return _sample(count, now)


async def read_sample_stepwise(daemon: Daemon, now: float, step: int = STEP) -> Sample:
    """:func:`read_sample`, giving the event loop a turn every ``step`` objects: at 100,000
    leases the pass takes tens of milliseconds, which DHCP and DNS should not wait for.
    The objects are those of one moment (lists copied first); the counters are read at
    the end."""
    index = daemon.site.index
    hosts, leases = list(index.hosts()), list(index.leases())
    return _sample(await count_usage(index.subnets(), hosts, leases, now, step=step), now)


def _sample(count: UsageCount, now: float) -> Sample:
    values = {
        DHCP_RECEIVED: counter_total(metrics.DHCP_RECEIVED),
        DNS_ANSWERED: counter_total(metrics.DNS_QUERIES),
    }
    for usage in count.result():
        values[POOL + usage.name] = usage.total().utilisation
    return Sample(at=now, values=values)


@dataclass(eq=False)
class History:
    """One daemon's ring and its sampling task."""

    ring: Ring = field(default_factory=lambda: Ring(CAPACITY))
    users: int = 0
    task: asyncio.Task[None] | None = None

    async def run(self, daemon: Daemon, interval: float) -> None:
        while True:
            try:
                self.ring.add(await read_sample_stepwise(daemon, time.time()))
            except Exception:  # a failed sample leaves a gap in the charts, not a dead task
                log.exception("console sample failed")
                metrics.INTERNAL_ERRORS.labels(area="console").inc()
            await asyncio.sleep(interval)


_HISTORIES: dict[int, History] = {}
"""id(daemon) -> its history, while one of its listeners runs (the running app holds the
daemon, so its id is not reused meanwhile)."""


@dataclass(eq=False)
class Slot:
    """Where an app finds its daemon's history once it has started."""

    history: History | None = None


HISTORY_KEY: web.AppKey[Slot] = web.AppKey("ddi.console.history", Slot)


def attach(app: web.Application, *, interval: float = INTERVAL) -> Slot:
    """Share the daemon's history with ``app`` and sample while ``app`` runs (``APP_KEY``
    set). Taken at start-up, not here: an app built and never run leaves nothing behind."""
    slot = Slot()
    app[HISTORY_KEY] = slot

    async def start(app: web.Application) -> None:
        daemon = app[APP_KEY]
        history = slot.history = _HISTORIES.setdefault(id(daemon), History())
        history.users += 1
        if history.task is None:
            history.task = asyncio.create_task(history.run(daemon, interval))

    async def stop(app: web.Application) -> None:
        history, slot.history = slot.history, None
        if history is None:
            return
        history.users -= 1
        if history.users > 0:
            return
        _HISTORIES.pop(id(app[APP_KEY]), None)
        if history.task is not None:
            history.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await history.task
            history.task = None

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return slot


def active() -> dict[int, History]:
    """id(daemon) -> history of every daemon a listener serves now (a copy)."""
    return dict(_HISTORIES)


def samples(app: web.Application) -> Iterable[Sample]:
    """The samples of the daemon ``app`` serves (none before it started)."""
    history = app[HISTORY_KEY].history
    return () if history is None else history.ring.samples()
