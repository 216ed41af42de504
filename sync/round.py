"""The sync round's decisions, as pure functions over frozen values.

What central answered (its status and body bytes) and what the edge's log holds (the store's
``SyncCursors``) go in; a typed decision comes out, and ``sync.agent`` (the HTTP loop) carries
it out. A round:

1. ``read_cursor`` parses central's cursor; ``start_round`` decides from it and the local log
   whether to ``Ship`` the backlog after central's ``applied_seq``, roll a ``NewEpoch`` (central
   is ahead of this log, or needs entries compacted away) or ``SendSnapshot`` (resuming at
   central's staged page when it has the same snapshot);
2. each batch's answer (``read_answer``) becomes ``Continue`` (acknowledged), ``Restart`` (a
   gap: rewind the cursor to what central expects, or central needs a snapshot), or a failure;
   each snapshot page's becomes ``NextPage``, ``SnapshotDone``, ``Restart`` or a failure;
3. ``read_down_page`` checks the signed down log; ``conflict_report`` picks what central has
   not seen;
4. ``after_round`` turns how the round ended into the next wait: at once, the poll interval, or
   a full-jitter backoff. A committed change cuts the poll interval short, never a backoff:
   while the link is down only ``ddi sync now`` starts a round before the wait is over.

Rules:
* No I/O, clock or randomness: the agent passes bytes, the store's values and a jitter in
  [0, 1).
* Anything central answers that does not fit is ``Unexpected`` (retry after backoff) and a
  refusal is ``Refused``: both are values, never an exception out of here.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ddi.errors import SyncRefused
from ddi.ipam.sync_values import SyncConflict, SyncCursors
from sync import protocol
from sync.backoff import Backoff
from sync.outbox import Housekeeping, OutboxLimits, plan

MAX_RESTARTS = 5
"""Rounds started over at once (gap, new epoch) before the agent backs off instead."""
DOWN_PAGE = 200
"""Down-log entries asked for per request."""

# --- central's answers ---


@dataclass(frozen=True, slots=True, kw_only=True)
class StagedSnapshot:
    """The snapshot central is receiving for the site: where a resumed one continues."""

    epoch: int
    as_of_seq: int
    next_page: int
    after: tuple[str, str] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CentralCursor:
    """Central's cursor for the site (``GET /v1/sites/{site}``): where the round resumes."""

    epoch: int
    applied_seq: int
    snapshot: StagedSnapshot | None = None
    accepts: frozenset[str] = frozenset()
    """Central's capabilities (``protocol.CAPABILITIES``); none from the previous version."""

    @property
    def ipv6(self) -> bool:
        return protocol.IPV6 in self.accepts


@dataclass(frozen=True, slots=True, kw_only=True)
class Acked:
    """Central applied the batch or page (or had already: ``duplicate``)."""

    duplicate: bool = False
    epoch: int | None = None
    applied_seq: int | None = None
    """None when central left it out or sent something that is not a seq."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GapAt:
    """Central expects another seq (a batch) or page (a snapshot)."""

    expected: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotNeeded:
    """Central cannot continue from this batch (another epoch): it needs a snapshot first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """Central refused the message, or the edge refuses what central sent down."""

    reason: str
    detail: str = ""

    def error(self) -> SyncRefused:
        return SyncRefused(self.reason, self.detail)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unexpected:
    """An answer the round cannot go on from; retry after backoff."""

    detail: str
    result: str = ""
    """Central's ``result`` when it sent one the edge does not know."""


Answer = Acked | GapAt | SnapshotNeeded | Refused | Unexpected
Failure = Refused | Unexpected


def _count(value: Any, lo: int = 0) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        return None
    return value


def _json(data: bytes) -> Any:
    """The JSON value of ``data``; an ``Unexpected`` (not an exception) when it is not JSON."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return Unexpected(detail="not JSON")


def _reason(data: bytes) -> str:
    answer = _json(data)
    return str(answer.get("reason", "refused")) if isinstance(answer, dict) else "refused"


def _staged(value: Any) -> StagedSnapshot | None:
    if not isinstance(value, dict):
        return None
    epoch, as_of, page = (_count(value.get(k)) for k in ("epoch", "as_of_seq", "next_page"))
    if epoch is None or as_of is None or page is None:
        return None
    after = value.get("after")
    if after is None:
        return StagedSnapshot(epoch=epoch, as_of_seq=as_of, next_page=page, after=None)
    if not isinstance(after, list) or len(after) != 2:
        return None
    pair = (str(after[0]), str(after[1]))
    return StagedSnapshot(epoch=epoch, as_of_seq=as_of, next_page=page, after=pair)


def read_cursor(status: int, data: bytes) -> CentralCursor | Failure:
    """Central's answer to the cursor request."""
    if status in (403, 404):
        return Refused(
            reason=_reason(data), detail=f"central refused the cursor request ({status})"
        )
    if status != 200:
        return Unexpected(detail=f"central answered {status} to the cursor request")
    answer = _json(data)
    if isinstance(answer, Unexpected):
        return Unexpected(detail="central's cursor is not JSON")
    if not isinstance(answer, dict):
        return Unexpected(detail="central's cursor is not an object")
    epoch, applied = _count(answer.get("epoch", 0)), _count(answer.get("applied_seq", 0))
    if epoch is None:
        return Unexpected(detail="central's cursor has a malformed epoch")
    if applied is None:
        return Unexpected(detail="central's cursor has a malformed applied_seq")
    return CentralCursor(
        epoch=epoch,
        applied_seq=applied,
        snapshot=_staged(answer.get("snapshot")),
        accepts=_accepts(answer.get("accepts")),
    )


def _accepts(value: Any) -> frozenset[str]:
    """Central's capabilities: names it lists that this edge knows (others are ignored, and
    anything that is not a short list of strings means none)."""
    if not isinstance(value, list) or len(value) > protocol.MAX_CAPABILITIES:
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str) and v in protocol.CAPABILITIES)


def read_answer(status: int, data: bytes) -> Answer:
    """Central's answer to a batch or a snapshot page."""
    answer = _json(data)
    if isinstance(answer, Unexpected):
        return Unexpected(detail=f"central answered {status} without JSON")
    if not isinstance(answer, dict):
        return Unexpected(detail=f"central answered {status} with {type(answer).__name__}")
    result = answer.get("result")
    match result:
        case "applied" | "duplicate":
            return Acked(
                duplicate=result == "duplicate",
                epoch=_count(answer.get("epoch")),
                applied_seq=_count(answer.get("applied_seq")),
            )
        case "gap":
            return GapAt(expected=_count(answer.get("expected")))
        case "snapshot_needed":
            return SnapshotNeeded()
        case "refused":
            reason, detail = answer.get("reason", "refused"), answer.get("detail", "")
            return Refused(reason=str(reason), detail=str(detail))
    return Unexpected(
        detail=f"central answered {status}: {answer}",
        result=result if isinstance(result, str) else "",
    )


def label(answer: Answer) -> str:
    """The ``result`` label of ``ddi_sync_batches_total`` for ``answer``."""
    match answer:
        case Acked(duplicate=duplicate):
            return "duplicate" if duplicate else "applied"
        case GapAt():
            return "gap"
        case SnapshotNeeded():
            return "snapshot_needed"
        case Refused():
            return "refused"
        case Unexpected(result=result):
            return result or "error"


# --- the round's decisions ---


@dataclass(frozen=True, slots=True, kw_only=True)
class Ship:
    """Ship the backlog after ``applied`` (central's acknowledged seq)."""

    applied: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEpoch:
    """Start a new epoch, numbered at least ``at_least``, and send its snapshot from page 0."""

    at_least: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SendSnapshot:
    """Send the site's objects as of ``as_of`` in ``epoch``, from ``page`` (after ``after``)."""

    epoch: int
    as_of: int
    page: int = 0
    after: tuple[str, str] | None = None


Start = Ship | NewEpoch | SendSnapshot


def start_round(central: CentralCursor, local: SyncCursors) -> Start:
    """Where the round starts, from central's cursor and the edge's log."""
    epoch, floor = local.epoch, local.floor
    if central.epoch > epoch or (
        central.epoch == epoch and not floor <= central.applied_seq <= local.last_seq
    ):
        # Central is ahead of this log (a restored edge) or needs entries compacted away.
        return NewEpoch(at_least=central.epoch + 1)
    if central.epoch < epoch and not (central.epoch == 0 and floor == 0):
        return snapshot_from(epoch, local.snapshot_seq, central.snapshot)
    if local.withheld and central.ipv6:
        # Central now takes what was held back from it: a snapshot carries it across.
        return NewEpoch(at_least=max(central.epoch, epoch) + 1)
    return Ship(applied=central.applied_seq)


def snapshot_from(epoch: int, as_of: int, staged: StagedSnapshot | None) -> SendSnapshot:
    """The snapshot of ``epoch`` as of ``as_of``, resumed at central's next page when central
    is receiving that same snapshot."""
    if staged is not None and (staged.epoch, staged.as_of_seq) == (epoch, as_of):
        return SendSnapshot(epoch=epoch, as_of=as_of, page=staged.next_page, after=staged.after)
    return SendSnapshot(epoch=epoch, as_of=as_of)


@dataclass(frozen=True, slots=True, kw_only=True)
class Continue:
    """Central acknowledged up to ``cursor``: record it and go on."""

    cursor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Restart:
    """Start the round over at once, after moving the cursor to ``cursor`` when given."""

    cursor: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NextPage:
    """Send the snapshot's next page."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotDone:
    """Central holds the snapshot: its acknowledged seq is ``cursor``."""

    cursor: int


def after_batch(answer: Answer) -> Continue | Restart | Failure:
    """What central's ``answer`` to a batch means for the round."""
    match answer:
        case Acked(applied_seq=int() as applied):
            return Continue(cursor=applied)
        case Acked():
            return Unexpected(detail="central acknowledged without a valid applied_seq")
        case GapAt(expected=int() as expected) if expected >= 1:
            return Restart(cursor=expected - 1)
        case GapAt():
            return Unexpected(detail="central reported a gap without a valid expected seq")
        case SnapshotNeeded():
            return Restart()
    return answer


def after_snapshot_page(
    answer: Answer, *, epoch: int, as_of: int, last: bool
) -> NextPage | SnapshotDone | Restart | Failure:
    """What central's ``answer`` to a page of ``epoch``'s snapshot (as of ``as_of``) means.

    Central answers a page of a snapshot it already holds whole with its cursor in that epoch
    (a resumed snapshot whose last answer was lost): that also ends the snapshot.
    """
    match answer:
        case GapAt():
            return Restart()
        case Acked(epoch=acked_epoch, applied_seq=applied) if last or acked_epoch == epoch:
            return SnapshotDone(cursor=as_of if applied is None else applied)
        case Acked():
            return NextPage()
        case SnapshotNeeded():
            return Unexpected(detail="central needs a snapshot while receiving one")
    return answer


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncState:
    """What the agent carries from one decision to the next (the rest is in the store)."""

    restarts: int = 0
    """Rounds started over at once since the last one that ended."""
    failures: int = 0
    """Rounds failed in a row: the backoff's attempt."""
    coalesced_at: int | None = None
    """The backlog right after the last coalescing (None: not since the backlog emptied)."""


def housekeeping(state: SyncState, backlog: int, limits: OutboxLimits) -> Housekeeping:
    """What the backlog of ``backlog`` entries needs before the next batch."""
    return plan(backlog, limits, coalesced_at=state.coalesced_at)


class RoundEnd(enum.Enum):
    DONE = "done"
    RESTART = "restart"
    """Central asked to start over (a gap, a new epoch): the next round starts at once."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Again:
    """Start the next round at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Wait:
    """Wait ``seconds`` for the next round; the link is ``up`` or not. ``sync now`` always
    ends the wait; a committed change ends it only when ``wake_on_change``."""

    seconds: float
    up: bool
    gave_up_restarting: bool = False
    """Central kept asking to start over: the round counts as failed."""
    wake_on_change: bool = False
    """The link is up: a change goes out at once. After a failure it waits its backoff, or
    a busy site would retry a dead central on every commit."""


def after_round(
    state: SyncState, end: RoundEnd, *, poll_interval: float, backoff: Backoff, jitter: float
) -> tuple[SyncState, Again | Wait]:
    """The next state, and when the next round starts, after a round that ended with ``end``
    (``jitter`` in [0, 1) spreads the backoff)."""
    if end is RoundEnd.DONE:
        poll = Wait(seconds=poll_interval, up=True, wake_on_change=True)
        return replace(state, restarts=0, failures=0), poll
    if end is RoundEnd.RESTART and state.restarts < MAX_RESTARTS:
        return replace(state, restarts=state.restarts + 1), Again()
    delay = backoff.delay(state.failures, jitter)
    failed = replace(state, restarts=0, failures=state.failures + 1)
    return failed, Wait(seconds=delay, up=False, gave_up_restarting=end is RoundEnd.RESTART)


# --- down direction and conflicts ---


@dataclass(frozen=True, slots=True, kw_only=True)
class DownPage:
    """Checked down-log entries after the cursor; ``more`` when a full page came."""

    entries: tuple[protocol.DownEntry, ...]
    more: bool


def read_down_page(
    status: int, data: bytes, *, site: str, after: int, central_key: Ed25519PublicKey
) -> DownPage | Failure:
    """Central's answer to ``GET /v1/sites/{site}/down?after=...``, opened with its key."""
    if status in (403, 404):
        detail = f"central refused the down-log request ({status})"
        return Refused(reason=_reason(data), detail=detail)
    if status != 200:
        return Unexpected(detail=f"central answered {status} to the down-log request")
    try:
        body = protocol.open_envelope(
            data, type_=protocol.DOWN_TYPE, site=site, public_key=central_key
        )
        if body.get("after") != after:
            return Refused(reason="replay", detail="down log answer for another cursor")
        entries = protocol.down_entries(body, after=after)
    except SyncRefused as exc:
        return Refused(reason=exc.reason, detail=exc.detail)
    return DownPage(entries=tuple(entries), more=len(entries) >= DOWN_PAGE)


def _millis(when: float) -> int:
    return int(when * 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConflictReport:
    """Conflicts to send central, and the report marks to record once it has them."""

    conflicts: tuple[SyncConflict, ...]
    conflicts_reported: int
    resolutions_reported: int


def conflict_report(
    conflicts: Sequence[SyncConflict], *, reported: int, resolutions: int
) -> ConflictReport | None:
    """The conflicts central has not seen (ids past ``reported``) and the resolutions since
    the last report (``resolutions``: unix milliseconds); None when there is nothing new.
    Central records both idempotently by conflict id."""
    chosen = tuple(
        c
        for c in conflicts
        if c.id > reported or (c.resolved_at is not None and _millis(c.resolved_at) > resolutions)
    )
    if not chosen:
        return None
    resolved = [_millis(c.resolved_at) for c in chosen if c.resolved_at is not None]
    return ConflictReport(
        conflicts=chosen,
        conflicts_reported=max([reported] + [c.id for c in chosen]),
        resolutions_reported=max([resolutions, *resolved]),
    )
