"""sync.outbox and sync.backoff: batch selection, housekeeping policy, retry delays."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddi.ipam.models import Change, Kind, Op
from sync.backoff import Backoff
from sync.outbox import Housekeeping, OutboxLimits, entry_size, next_batch, plan, superseded


def change(seq: int, object_id: str = "a", size: int = 10) -> Change:
    return Change(
        epoch=1, seq=seq, kind=Kind.HOST, object_id=object_id, op=Op.UPSERT, image={"x": "y" * size}
    )


def test_next_batch_is_bounded_by_count() -> None:
    backlog = [change(i, str(i)) for i in range(1, 20)]
    assert [c.seq for c in next_batch(backlog, OutboxLimits(max_entries=5))] == [1, 2, 3, 4, 5]


def test_next_batch_is_bounded_by_bytes_but_never_empty() -> None:
    backlog = [change(i, str(i), size=400) for i in range(1, 20)]
    one = entry_size(backlog[0])
    assert len(next_batch(backlog, OutboxLimits(max_bytes=one * 3))) == 3
    assert len(next_batch(backlog, OutboxLimits(max_bytes=1))) == 1
    assert next_batch([], OutboxLimits()) == []


def test_plan_coalesces_past_soft_and_rolls_past_hard() -> None:
    limits = OutboxLimits(soft_limit=100, hard_limit=1000)
    assert plan(100, limits, coalesced_at=None) is Housekeeping.NOTHING
    assert plan(101, limits, coalesced_at=None) is Housekeeping.COALESCE
    assert plan(105, limits, coalesced_at=101) is Housekeeping.NOTHING
    assert plan(111, limits, coalesced_at=101) is Housekeeping.COALESCE
    assert plan(1001, limits, coalesced_at=1000) is Housekeeping.NEW_EPOCH


@given(st.lists(st.sampled_from("abcde"), max_size=40))
def test_coalescing_keeps_exactly_the_newest_per_object(ids: list[str]) -> None:
    backlog = [change(i + 1, oid) for i, oid in enumerate(ids)]
    drop = superseded(backlog)
    kept = [c for c in backlog if c.seq not in drop]
    newest = {c.object_id: c.seq for c in backlog}
    assert sorted(c.seq for c in kept) == sorted(newest.values())


def test_backoff_full_jitter_is_capped_and_never_gives_up() -> None:
    rng = random.Random(7)
    b = Backoff(base=1.0, cap=60.0)
    delays = [b.delay(attempt, rng.random()) for attempt in range(10_000)]
    assert all(0 <= d < 60.0 for d in delays)
    assert b.ceiling(10_000) == 60.0
    assert max(delays[-100:]) > 30
    assert b.ceiling(0) == 1.0


def test_backoff_grows_exponentially_until_the_cap() -> None:
    b = Backoff(base=0.5, cap=8.0)
    ceilings = [b.ceiling(attempt) for attempt in range(7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert b.delay(3, 0.999999) < 4.0 <= b.delay(4, 0.5) * 2


def test_backoff_refuses_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="base"):
        Backoff(base=0, cap=1)
    with pytest.raises(ValueError, match="base"):
        Backoff(base=2, cap=1)
