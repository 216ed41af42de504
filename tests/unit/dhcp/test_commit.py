"""Group commit: batching, durability before the reply, bounds, failure isolation."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence
from ipaddress import IPv4Address

import pytest

from ddi.dhcp.commit import REPLY_SLICE, GroupCommitter
from ddi.errors import Invalid
from ddi.ipam.models import Change, Lease
from tests.waiting import until

NOW = 1_800_000_000.0


def lease(n: int, *, end: float = NOW + 60) -> Lease:
    return Lease(ip=IPv4Address("198.18.0.0") + n, mac=f"52:54:00:00:00:{n:02x}", start=NOW,
                 end=end, subnet="lan")  # fmt: skip


class FakeStore:
    """Records batches; refuses leases whose end is before start, like the store does."""

    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[list[Lease]] = []
        self.fail = fail
        self.gate: asyncio.Event | None = None

    async def commit_leases(self, leases: Sequence[Lease], *, actor: str = "dhcp") -> list[Change]:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise OSError("disk full")
        if any(x.end < x.start for x in leases):
            raise Invalid("leases", "batch", "end before start")
        self.batches.append(list(leases))
        return []


async def _run(committer: GroupCommitter[Lease]) -> None:
    """Run the committer until every lease submitted so far is committed or failed."""
    submitted = committer.pending
    task = asyncio.create_task(committer.run())
    await until(
        lambda: committer.committed + committer.failed >= submitted and not committer.replying
    )
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_pending_leases_share_one_commit_and_replies_follow_it() -> None:
    store = FakeStore()
    committer = GroupCommitter(store, max_batch=100, max_pending=100)
    sent: list[int] = []
    for n in range(10):
        assert committer.submit_nowait(lease(n), functools.partial(sent.append, n))
    assert sent == []  # nothing leaves before it is durable
    await _run(committer)
    assert [len(b) for b in store.batches] == [10]
    assert sent == list(range(10))
    assert committer.statistics()["batches"] == 1


@pytest.mark.asyncio
async def test_batches_are_bounded_by_max_batch() -> None:
    store = FakeStore()
    committer = GroupCommitter(store, max_batch=4, max_pending=100)
    for n in range(10):
        committer.submit_nowait(lease(n), lambda: None)
    await _run(committer)
    assert [len(b) for b in store.batches] == [4, 4, 2]


@pytest.mark.asyncio
async def test_submissions_during_a_commit_form_the_next_batch() -> None:
    store = FakeStore()
    store.gate = asyncio.Event()
    committer = GroupCommitter(store, max_batch=100, max_pending=100)
    task = asyncio.create_task(committer.run())
    committer.submit_nowait(lease(1), lambda: None)
    await until(lambda: committer.pending == 0)  # the first commit now waits on the gate
    for n in range(2, 7):
        committer.submit_nowait(lease(n), lambda: None)
    store.gate.set()
    await until(lambda: len(store.batches) == 2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert [len(b) for b in store.batches] == [1, 5]


@pytest.mark.asyncio
async def test_pending_is_bounded_and_refusal_is_counted() -> None:
    committer = GroupCommitter(FakeStore(), max_batch=10, max_pending=2)
    assert committer.submit_nowait(lease(1), lambda: None)
    assert committer.submit_nowait(lease(2), lambda: None)
    assert not committer.submit_nowait(lease(3), lambda: None)
    assert committer.statistics()["shed"] == 1
    assert committer.pending == 2


@pytest.mark.asyncio
async def test_a_refused_lease_costs_only_its_own_reply() -> None:
    store = FakeStore()
    committer = GroupCommitter(store, max_batch=10, max_pending=10)
    sent: list[int] = []
    committer.submit_nowait(lease(1), lambda: sent.append(1))
    committer.submit_nowait(lease(2, end=NOW - 1), lambda: sent.append(2))
    committer.submit_nowait(lease(3), lambda: sent.append(3))
    await _run(committer)
    assert sent == [1, 3]
    assert committer.statistics()["failed"] == 1


@pytest.mark.asyncio
async def test_store_failure_sends_nothing() -> None:
    committer = GroupCommitter(FakeStore(fail=True), max_batch=10, max_pending=10)
    sent: list[int] = []
    committer.submit_nowait(lease(1), lambda: sent.append(1))
    await _run(committer)
    assert sent == []
    assert committer.statistics()["failed"] == 1


@pytest.mark.asyncio
async def test_same_address_twice_in_a_batch_is_written_once_and_both_replies_go() -> None:
    store = FakeStore()
    committer = GroupCommitter(store, max_batch=10, max_pending=10, delay=0.001)
    sent: list[int] = []
    committer.submit_nowait(lease(1), lambda: sent.append(1))
    committer.submit_nowait(lease(1, end=NOW + 120), lambda: sent.append(2))
    await _run(committer)
    assert store.batches == [[lease(1, end=NOW + 120)]]
    assert sent == [1, 2]


@pytest.mark.asyncio
async def test_a_failing_reply_callback_does_not_stop_the_others() -> None:
    committer = GroupCommitter(FakeStore(), max_batch=10, max_pending=10)
    sent: list[int] = []

    def boom() -> None:
        raise RuntimeError("bug")

    committer.submit_nowait(lease(1), boom)
    committer.submit_nowait(lease(2), lambda: sent.append(2))
    await _run(committer)
    assert sent == [2]


@pytest.mark.asyncio
async def test_replies_go_a_slice_per_loop_turn_in_order_while_the_next_commit_goes_ahead() -> None:
    loop = asyncio.get_running_loop()
    turn = 0
    ticking = True

    def tick() -> None:  # once per turn of the loop
        nonlocal turn
        turn += 1
        if ticking:
            loop.call_soon(tick)

    loop.call_soon(tick)
    store = FakeStore()
    committer = GroupCommitter(store, max_batch=1000, max_pending=1000)
    count = 3 * REPLY_SLICE
    sent: list[tuple[int, int, int]] = []  # (lease, turn, batches committed by then)

    def reply(n: int) -> None:
        sent.append((n, turn, len(store.batches)))
        if n == 0:  # a new exchange while the first batch's replies go
            committer.submit_nowait(lease(count), functools.partial(reply, count))

    for n in range(count):
        committer.submit_nowait(lease(n), functools.partial(reply, n))
    try:
        await _run(committer)
        await until(lambda: len(sent) == count + 1 and not committer.replying)
    finally:
        ticking = False
    assert [n for n, _, _ in sent] == list(range(count + 1))  # in commit order
    per_turn: dict[int, int] = {}
    for _, at, _ in sent[:count]:
        per_turn[at] = per_turn.get(at, 0) + 1
    assert max(per_turn.values()) == REPLY_SLICE
    assert len(per_turn) == 3
    # The second batch was committed before the first one's last reply went.
    assert sent[count - 1][2] == 2


@pytest.mark.asyncio
async def test_replies_yet_to_go_count_against_max_pending() -> None:
    committer = GroupCommitter(FakeStore(), max_batch=10, max_pending=2)
    accepted: list[bool] = []

    def first() -> None:  # the second lease's reply has yet to go
        accepted.append(committer.submit_nowait(lease(3), lambda: None))
        accepted.append(committer.submit_nowait(lease(4), lambda: None))

    committer.submit_nowait(lease(1), first)
    committer.submit_nowait(lease(2), lambda: None)
    await _run(committer)
    assert accepted == [True, False]
    assert committer.statistics()["shed"] == 1
