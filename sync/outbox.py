"""The outbox policy: which unacknowledged change-log entries go into the next batch, and
what to do when the backlog grows.

Rules:
* The outbox is the store's change log past the acknowledged cursor; nothing here reads it.
  These functions take the entries (or counts) and return decisions.
* A batch is a prefix of the backlog: at most ``max_entries`` entries and ``max_bytes`` of
  canonical JSON, but never empty while the backlog is not (one oversized entry still goes).
* Past the soft limit, entries for the same object coalesce to the newest (each entry is a
  full post-image, so the newest alone brings central to the same state). Past the hard limit,
  the site starts a new epoch and brings central in line with a snapshot.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ddi.ipam.models import Change
from sync.signing import canonical


class Housekeeping(enum.Enum):
    NOTHING = "nothing"
    COALESCE = "coalesce"
    NEW_EPOCH = "new_epoch"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxLimits:
    max_entries: int = 500
    max_bytes: int = 1_000_000
    soft_limit: int = 100_000
    hard_limit: int = 1_000_000


def entry_size(change: Change) -> int:
    """Bytes ``change`` takes in a batch (its canonical JSON and a separator)."""
    return len(canonical(change.to_image())) + 1


def next_batch(
    backlog: Sequence[Change], limits: OutboxLimits, *, sizes: Sequence[int] | None = None
) -> list[Change]:
    """The prefix of ``backlog`` (in seq order) that the next batch carries; ``sizes`` are
    the entries' sizes when the caller has them (default: ``entry_size``).

    Returns:
        At most ``max_entries`` entries within ``max_bytes``; at least one when the backlog
        is not empty.
    """
    chosen: list[Change] = []
    size = 0
    for i, change in enumerate(backlog[: limits.max_entries]):
        cost = entry_size(change) if sizes is None else sizes[i] + 1
        if chosen and size + cost > limits.max_bytes:
            break
        chosen.append(change)
        size += cost
    return chosen


def plan(backlog: int, limits: OutboxLimits, *, coalesced_at: int | None) -> Housekeeping:
    """What to do with a backlog of ``backlog`` unacknowledged entries.

    ``coalesced_at`` is the backlog size right after the last coalescing (None: never), so a
    backlog of distinct objects above the soft limit is not rescanned on every batch: it is
    coalesced again only once it has grown by a tenth of the soft limit.
    """
    if backlog > limits.hard_limit:
        return Housekeeping.NEW_EPOCH
    if backlog > limits.soft_limit and (
        coalesced_at is None or backlog >= coalesced_at + max(1, limits.soft_limit // 10)
    ):
        return Housekeeping.COALESCE
    return Housekeeping.NOTHING


def superseded(backlog: Iterable[Change]) -> set[int]:
    """Seqs of entries that a later entry for the same object makes redundant."""
    newest: dict[tuple[str, str], int] = {}
    drop: set[int] = set()
    for change in backlog:
        key = (change.kind.value, change.object_id)
        previous = newest.get(key)
        if previous is not None:
            drop.add(min(previous, change.seq))
        newest[key] = max(previous or 0, change.seq)
    return drop
