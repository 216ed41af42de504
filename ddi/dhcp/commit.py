"""Group commit of DHCP leases: a reply that acknowledges a lease leaves only after the lease is
durable (DESIGN principle 4), and many leases share one transaction and one fsync.

The transport submits ``(lease, on_durable)`` without waiting; ``run`` takes whatever is pending
(up to ``max_batch``), commits it with one ``store.commit_leases`` call, then calls each
``on_durable`` (which sends the reply), ``REPLY_SLICE`` per turn of the event loop while the
next commit goes ahead. While a commit is in flight new submissions gather for the next one, so
the batch grows with the load. Pending work is bounded: past ``max_pending``
``submit_nowait`` refuses and the transport counts the shed packet; the client retransmits.

A batch the store refuses as a whole (``Invalid``) is retried one lease at a time so that one
bad lease costs only its own reply. A store failure (disk full, I/O error) sends nothing for
that batch: no lease is acknowledged that is not durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Generic, Protocol, TypeVar

from ddi import metrics
from ddi.errors import Invalid, StoreWriteFailed
from ddi.ipam.models import Change

log = logging.getLogger(__name__)

REPLY_SLICE = 32
"""Replies sent per turn of the event loop once their batch is durable (about 1 ms of work)."""

L = TypeVar("L")
"""The lease type: ``Lease`` for DHCPv4, ``Lease6`` for DHCPv6."""
L_contra = TypeVar("L_contra", contravariant=True)


class LeaseWriter(Protocol[L_contra]):
    async def commit_leases(
        self, leases: Sequence[L_contra], *, actor: str = "dhcp"
    ) -> list[Change]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitMetrics:
    """The metrics a committer moves (DHCPv4's by default, DHCPv6 passes its own)."""

    pending: Any = field(default_factory=lambda: metrics.DHCP_COMMIT_PENDING)
    batch: Any = field(default_factory=lambda: metrics.DHCP_COMMIT_BATCH)
    latency: Any = field(default_factory=lambda: metrics.DHCP_COMMIT_LATENCY)
    dropped: Any = field(default_factory=lambda: metrics.DHCP_DROPPED)


@dataclass(slots=True)
class _Pending(Generic[L]):
    lease: L
    on_durable: Callable[[], None]
    submitted: float


class GroupCommitter(Generic[L]):
    """Collects leases and commits them in batches; see the module docstring."""

    def __init__(
        self,
        store: LeaseWriter[L],
        *,
        max_batch: int,
        max_pending: int,
        delay: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        key: Callable[[L], Hashable] = attrgetter("ip"),
        meters: CommitMetrics | None = None,
    ) -> None:
        self._store = store
        self._key = key
        """What makes two leases one (their address): the last image in a batch wins."""
        self._meters = meters or CommitMetrics()
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._delay = delay
        self._clock = clock
        self._pending: deque[_Pending[L]] = deque()
        self._wakeup = asyncio.Event()
        self._replies: deque[_Pending[L]] = deque()
        """Durable leases whose ``on_durable`` has yet to run: while there are any, a
        ``_reply_slice`` is scheduled."""
        self.batches = 0
        self.committed = 0
        self.failed = 0
        self.shed = 0

    def submit_nowait(self, lease: L, on_durable: Callable[[], None]) -> bool:
        """Queue ``lease``; ``on_durable`` runs once it is committed.

        Returns:
            False (and nothing is queued) when ``max_pending`` leases are already waiting,
            to be committed or, committed, for their replies to go.
        """
        if len(self._pending) + len(self._replies) >= self._max_pending:
            self.shed += 1
            return False
        self._pending.append(_Pending(lease, on_durable, self._clock()))
        self._wakeup.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def replying(self) -> int:
        """Leases durable whose replies have yet to go (a slice per turn of the loop)."""
        return len(self._replies)

    def statistics(self) -> dict[str, Any]:
        return {
            "pending": len(self._pending),
            "replying": len(self._replies),
            "batches": self.batches,
            "committed": self.committed,
            "failed": self.failed,
            "shed": self.shed,
        }

    async def run(self) -> None:
        """Commit pending leases until cancelled."""
        while True:
            await self._wakeup.wait()
            if self._delay > 0 and len(self._pending) < self._max_batch:
                await asyncio.sleep(self._delay)  # let a burst gather into this batch
            while self._pending:
                self._wakeup.clear()
                count = min(len(self._pending), self._max_batch)
                batch = [self._pending.popleft() for _ in range(count)]
                self._meters.pending.set(len(self._pending))
                await self._commit(batch)
            self._wakeup.clear()

    async def _commit(self, batch: list[_Pending[L]]) -> None:
        # Retransmitted REQUESTs may put one address in a batch twice: the last image wins,
        # every reply still goes out.
        latest: dict[Hashable, L] = {}
        for item in batch:
            latest[self._key(item.lease)] = item.lease
        try:
            await self._store.commit_leases(list(latest.values()))
        except Invalid as exc:
            if len(batch) > 1:
                for item in batch:
                    await self._commit([item])
                return
            log.error("lease %s refused by the store: %s", self._key(batch[0].lease), exc)
            self._fail(batch)
            return
        except StoreWriteFailed:  # disk full: the store has logged it, rate-limited
            self._fail(batch)
            return
        except Exception:  # a store failure must not end the service; counted
            log.exception("committing %d leases failed; their replies are not sent", len(batch))
            self._fail(batch)
            return
        self.batches += 1
        self.committed += len(batch)
        self._meters.batch.observe(len(latest))
        done = self._clock()
        observe = self._meters.latency.observe
        for item in batch:
            observe(done - item.submitted)
        idle = not self._replies
        self._replies.extend(batch)
        if idle:
            asyncio.get_running_loop().call_soon(self._reply_slice)

    def _reply_slice(self) -> None:
        """Run the next ``REPLY_SLICE`` durable leases' ``on_durable``, then give the loop a
        turn before the rest: a full batch's replies are ~10 ms of work, which the sockets (and
        DNS on the same loop) should not wait for whole, nor the next commit, which starts
        meanwhile."""
        replies = self._replies
        for _ in range(min(REPLY_SLICE, len(replies))):
            item = replies.popleft()
            try:
                item.on_durable()
            except Exception:  # per-reply bug boundary (R9)
                log.exception("sending the reply for lease %s failed", self._key(item.lease))
                metrics.INTERNAL_ERRORS.labels(area="dhcp").inc()
        if replies:
            asyncio.get_running_loop().call_soon(self._reply_slice)

    def _fail(self, batch: list[_Pending[L]]) -> None:
        self.failed += len(batch)
        self._meters.dropped.labels(reason="commit-failed").inc(len(batch))
