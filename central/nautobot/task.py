"""The task ``ddi-central serve`` runs when ``[nautobot]`` is configured: it follows the pull
feed from its own durable cursor and keeps the IPAM in step, page by page.

A round: take (or renew) the lease; read up to ``batch_size`` feed entries after the cursor;
read the touched objects' current images and the claims on every key they touch
(``state``); plan the IPAM's objects (``mapping``); write them (prefixes first, then
addresses, then deletions of addresses, then of prefixes); and only once the IPAM confirmed
every write, move the cursor and record the claims in one transaction. A failure anywhere
leaves the cursor where it was: the round is redone after a backoff (``sync.backoff``), and
as every write is an upsert by natural key, redoing it doubles nothing. What a cut-short
round wrote is not in the claim table, so a round also plans every key its entries' images
name (``mapping.keys_in_entries``): an address written, then moved or deleted before the
redo, is removed by it.

With several collectors on one database, the lease (``state.acquire``) lets one run rounds at
a time; the others look every ``interval`` and take over once it has run out (``LEASE_TTL``).

Rounds only see the feed. Every ``reconcile_interval`` while idle (and ``RECONCILE_AFTER``
after taking the task over) the holder also reconciles: it reads afresh what it made in each
site's namespace and makes it equal to what central's current objects claim. That removes a
write a dead holder sent that landed after the survivor had looked (a request outlives its
sender), and restores what was edited or deleted by hand in the IPAM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from central import metrics
from central.nautobot import mapping, state
from central.nautobot.adapter import Ipam, IpamError
from central.nautobot.mapping import AddressState, Desired, PrefixState
from central.store import CentralStore
from sync.backoff import Backoff

log = logging.getLogger(__name__)

TARGET = "nautobot"
LEASE_TTL = 15.0
"""Seconds a lease lasts unless renewed; the holder renews it every round and while it
waits, so a live holder keeps it and a dead one loses it within this time."""
RENEW_EVERY = LEASE_TTL / 3
RECONCILE_AFTER = 60.0
"""Seconds from taking the task over to the first reconcile: long enough for the requests a
dead holder had in flight to land, so the reconcile sees and removes what they left."""
"""Seconds between renewals of the lease while a page's writes are in flight."""
BACKOFF = Backoff(base=0.5, cap=60.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundResult:
    entries: int
    """Feed entries the round covered (0: the cursor is at the head)."""
    writes: int
    cursor: int


class IpamSync:
    """Follows the feed into one IPAM (``Ipam``)."""

    def __init__(
        self,
        store: CentralStore,
        make_ipam: Callable[[], Ipam],
        *,
        batch_size: int,
        interval: float,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
        target: str = TARGET,
        reconcile_interval: float = 0.0,
    ) -> None:
        self._store = store
        self._make_ipam = make_ipam
        self._ipam: Ipam | None = None
        self._batch = batch_size
        self._interval = interval
        self.holder = holder or uuid.uuid4().hex
        self._clock = clock
        self._target = target
        self._leader = False
        self._random = random.Random()
        self._reconcile_interval = reconcile_interval
        self._next_reconcile = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop`` is set; errors are logged, counted and retried."""
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    if not await self._lead():
                        await _wait(stop, self._interval)
                        continue
                    result = await self.round()
                    attempt = 0
                    if result.entries == 0 and self._reconcile_due():
                        await self.reconcile()
                        self._next_reconcile = self._clock() + self._reconcile_interval
                    if result.entries == 0:
                        # Back before the lease runs out, however long the interval.
                        await _wait(stop, min(self._interval, LEASE_TTL / 3))
                except (IpamError, OSError, state.LostLease) as exc:
                    await self._failed(exc)
                    delay = BACKOFF.delay(attempt, self._random.random())
                    attempt += 1
                    log.warning(
                        "ipam sync (%s): %s; retrying in %.1fs, the cursor waits",
                        self._target, exc, delay,
                    )  # fmt: skip
                    await _wait(stop, delay)
                except Exception:
                    # The database or a bug: the collector keeps serving the edges, the task
                    # retries (a crash here would take the whole collector down).
                    log.exception("ipam sync (%s): round failed", self._target)
                    await self._failed(None)
                    delay = BACKOFF.delay(attempt, self._random.random())
                    attempt += 1
                    await _wait(stop, delay)
        finally:
            await self._stop()

    async def _lead(self) -> bool:
        was = self._leader
        self._leader = await state.acquire(
            self._store, self._target, self.holder, now=self._clock(), ttl=LEASE_TTL
        )
        metrics.IPAM_LEADER.labels(target=self._target).set(int(self._leader))
        if self._leader and not was:
            log.info("ipam sync (%s): this collector runs the task", self._target)
            self._next_reconcile = self._clock() + min(RECONCILE_AFTER, self._reconcile_interval)
            if self._ipam is not None:
                await self._ipam.forget()  # another collector may have written meanwhile
        return self._leader

    async def _failed(self, exc: BaseException | None) -> None:
        """Count the failure (``exc`` None: an unexpected one) and forget the IPAM's state."""
        reason = (
            "internal"
            if exc is None
            else "lost_lease"
            if isinstance(exc, state.LostLease)
            else "ipam"
        )
        metrics.IPAM_ERRORS.labels(target=self._target, reason=reason).inc()
        if isinstance(exc, state.LostLease):
            self._leader = False
        if self._ipam is not None:
            await self._ipam.forget()

    async def forget(self) -> None:
        """Drop what the adapter remembers of the IPAM (after a failed round)."""
        if self._ipam is not None:
            await self._ipam.forget()

    async def _stop(self) -> None:
        if self._ipam is not None:
            await self._ipam.close()
            self._ipam = None
        if self._leader:
            with contextlib.suppress(Exception):
                await state.release(self._store, self._target, self.holder)
            self._leader = False
        metrics.IPAM_LEADER.labels(target=self._target).set(0)

    async def round(self) -> RoundResult:
        """One page of the feed into the IPAM (the caller holds the lease).

        Raises:
            IpamError: the IPAM is unreachable or refused a write (the cursor stays).
            state.LostLease: another collector took the lease (the cursor stays).
        """
        store, target = self._store, self._target
        after = await state.cursor(store, target)
        changes = await store.changes(after=after, limit=self._batch)
        head = await state.head(store)
        # Set before the writes: while the IPAM is down the gauge shows what waits.
        metrics.IPAM_LAG.labels(target=target).set(max(0, head - after))
        if not changes:
            return RoundResult(entries=0, writes=0, cursor=after)
        objects = mapping.objects_touched(changes)
        page = mapping.read_page(objects, await state.current(store, objects))
        before = await state.claims_of(store, target, objects)
        keys = mapping.affected_keys(page, before) | mapping.keys_in_entries(changes)
        desired = mapping.plan(page, await state.claims_on(store, target, keys))
        for site_key in await state.marked(store) & desired.keys():
            del desired[site_key]  # the IPAM's own address, which a site reports back
        if page.unmapped:
            metrics.IPAM_ERRORS.labels(target=target, reason="unmapped").inc(page.unmapped)
        writes = await self._holding_lease(self._write(desired))
        last = int(changes[-1]["gseq"])
        await state.commit(store, target, self.holder, gseq=last, claims=page.after)
        metrics.IPAM_APPLIED.labels(target=target).inc(len(changes))
        metrics.IPAM_WRITES.labels(target=target).inc(writes)
        metrics.IPAM_LAG.labels(target=target).set(max(0, head - last))
        return RoundResult(entries=len(changes), writes=writes, cursor=last)

    def _reconcile_due(self) -> bool:
        return self._reconcile_interval > 0 and self._clock() >= self._next_reconcile

    async def reconcile(self) -> int:
        """Make what the task made in the IPAM equal to what central's current objects claim
        (the caller holds the lease): a key nothing claims goes, a missing or changed one is
        written again. Returns the writes; none when the IPAM is in step.

        Raises:
            IpamError: the IPAM is unreachable or refused a write.
            state.LostLease: another collector took the lease meanwhile.
        """
        writes = await self._holding_lease(self._reconcile())
        metrics.IPAM_RECONCILES.labels(target=self._target).inc()
        metrics.IPAM_WRITES.labels(target=self._target).inc(writes)
        if writes:
            log.warning(
                "ipam sync (%s): reconcile found the IPAM out of step, %d writes",
                self._target, writes,
            )  # fmt: skip
        return writes

    async def _reconcile(self) -> int:
        current = {
            (str(o["site"]), str(o["kind"]), str(o["object_id"])): o["image"]
            for o in await self._store.objects(None)
        }
        page = mapping.read_page(current, current)
        desired = mapping.plan(page, {})
        marked = await state.marked(self._store)
        for site_key in marked & desired.keys():
            del desired[site_key]
        ipam = self._adapter()
        for site in sorted({site for site, _ in desired}):
            for key in await ipam.keys(site):
                if (site, key) not in desired and (site, key) not in marked:
                    desired[(site, key)] = None
        return await self._write(desired)

    async def _holding_lease(self, work: Coroutine[Any, Any, int]) -> int:
        """``work``, renewing the lease every third of its life while the IPAM works: a
        page can take longer than the lease (Nautobot writes tens of objects a second), and
        a lease that ran out mid-page would let a second collector write the same keys at
        once. Once the renewal fails the work is cancelled and ``LostLease`` raised."""
        writing = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({writing}, timeout=RENEW_EVERY)
                if done:
                    return writing.result()
                if not await state.acquire(
                    self._store, self._target, self.holder, now=self._clock(), ttl=LEASE_TTL
                ):
                    raise state.LostLease(f"{self._target}: lease taken during a page")
        finally:
            if not writing.done():
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writing

    def _adapter(self) -> Ipam:
        if self._ipam is None:
            self._ipam = self._make_ipam()
        return self._ipam

    async def _write(self, desired: dict[mapping.SiteKey, Desired | None]) -> int:
        ipam = self._adapter()
        by_site: dict[str, dict[str, Desired | None]] = {}
        for (site, key), value in desired.items():
            by_site.setdefault(site, {})[key] = value
        writes = 0
        for site, keys in sorted(by_site.items()):
            await ipam.ensure_site(site)
            prefixes = [v for v in keys.values() if isinstance(v, PrefixState)]
            addresses = [v for v in keys.values() if isinstance(v, AddressState)]
            gone = [k for k, v in keys.items() if v is None]
            writes += await ipam.upsert_prefixes(site, sorted(prefixes, key=lambda p: p.prefix))
            writes += await ipam.upsert_addresses(site, sorted(addresses, key=lambda a: a.address))
            # Addresses before prefixes: a prefix goes once nothing of ours is inside it.
            writes += await ipam.delete(site, sorted(gone, key=lambda k: k.startswith("prefix:")))
        return writes


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
