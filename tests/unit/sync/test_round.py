"""sync.round: the sync round's decisions, bytes and values in, a decision out."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddi.ipam.sync_values import SyncConflict, SyncCursors
from sync import protocol
from sync.backoff import Backoff
from sync.outbox import Housekeeping, OutboxLimits
from sync.round import (
    DOWN_PAGE,
    MAX_RESTARTS,
    Acked,
    Again,
    CentralCursor,
    Continue,
    DownPage,
    GapAt,
    NewEpoch,
    NextPage,
    Refused,
    Restart,
    RoundEnd,
    SendSnapshot,
    Ship,
    SnapshotDone,
    SnapshotNeeded,
    StagedSnapshot,
    SyncState,
    Unexpected,
    Wait,
    after_batch,
    after_round,
    after_snapshot_page,
    conflict_report,
    housekeeping,
    label,
    read_answer,
    read_cursor,
    read_down_page,
    snapshot_from,
    start_round,
)

CENTRAL_KEY = protocol.generate_key()
OTHER_KEY = protocol.generate_key()
BACKOFF = Backoff(base=1.0, cap=60.0)


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def local(**kw: int) -> SyncCursors:
    values = {"epoch": 1, "last_seq": 100} | kw
    return SyncCursors(**values)


def cursor(epoch: int, applied: int, snapshot: StagedSnapshot | None = None) -> CentralCursor:
    return CentralCursor(epoch=epoch, applied_seq=applied, snapshot=snapshot)


# --- central's cursor ---


def test_cursor_is_read_with_its_staged_snapshot() -> None:
    data = body(
        {
            "site": "s1",
            "epoch": 2,
            "applied_seq": 40,
            "snapshot": {"epoch": 3, "as_of_seq": 90, "next_page": 2, "after": ["host", "h9"]},
        }
    )
    staged = StagedSnapshot(epoch=3, as_of_seq=90, next_page=2, after=("host", "h9"))
    assert read_cursor(200, data) == cursor(2, 40, staged)
    assert read_cursor(200, body({})) == cursor(0, 0)
    nothing_staged = {"epoch": 0, "as_of_seq": 0, "next_page": 0, "after": None}
    assert read_cursor(200, body({"snapshot": nothing_staged})) == cursor(
        0, 0, StagedSnapshot(epoch=0, as_of_seq=0, next_page=0, after=None)
    )


@pytest.mark.parametrize(
    "snapshot", [None, [], {"epoch": 1}, {"epoch": 1, "as_of_seq": 2, "next_page": 0, "after": 5}]
)
def test_a_malformed_staged_snapshot_is_none(snapshot: Any) -> None:
    assert read_cursor(200, body({"epoch": 1, "applied_seq": 2, "snapshot": snapshot})) == (
        cursor(1, 2)
    )


def test_cursor_refusals_and_errors_are_values() -> None:
    assert read_cursor(403, body({"reason": "bad_signature"})) == Refused(
        reason="bad_signature", detail="central refused the cursor request (403)"
    )
    assert read_cursor(404, b"<html>") == Refused(
        reason="refused", detail="central refused the cursor request (404)"
    )
    assert read_cursor(502, b"") == Unexpected(detail="central answered 502 to the cursor request")
    assert read_cursor(200, b"{") == Unexpected(detail="central's cursor is not JSON")
    assert read_cursor(200, b"[]") == Unexpected(detail="central's cursor is not an object")


@pytest.mark.parametrize("value", [True, -1, "3", 1.5, None])
@pytest.mark.parametrize("name", ["epoch", "applied_seq"])
def test_cursor_with_a_malformed_number_is_unexpected(name: str, value: Any) -> None:
    answer = read_cursor(200, body({name: value}))
    assert isinstance(answer, Unexpected)
    assert name in answer.detail


@given(st.integers(100, 599), st.binary(max_size=300))
def test_reading_any_bytes_never_raises(status: int, data: bytes) -> None:
    assert isinstance(read_cursor(status, data), CentralCursor | Refused | Unexpected)
    assert isinstance(
        read_answer(status, data), Acked | GapAt | SnapshotNeeded | Refused | Unexpected
    )
    page = read_down_page(status, data, site="s1", after=0, central_key=CENTRAL_KEY.public_key())
    assert isinstance(page, Refused | Unexpected)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
answers = st.fixed_dictionaries(
    {},
    optional={
        "result": st.sampled_from(
            ["applied", "duplicate", "gap", "snapshot_needed", "refused", "x"]
        )
        | json_values,
        "epoch": json_values,
        "applied_seq": json_values,
        "expected": json_values,
        "reason": json_values,
        "snapshot": json_values,
    },
)


@given(answers)
@settings(max_examples=200)
def test_any_json_answer_reads_to_a_typed_value(answer: dict[str, Any]) -> None:
    data = body(answer)
    result = read_answer(200, data)
    assert isinstance(label(result), str)
    if isinstance(result, Acked):
        assert result.applied_seq is None or result.applied_seq >= 0
    cursor_answer = read_cursor(200, data)
    if isinstance(cursor_answer, CentralCursor):
        assert cursor_answer.epoch >= 0
        assert cursor_answer.applied_seq >= 0


# --- answers to batches and snapshot pages ---


ANSWERS = [
    ({"result": "applied", "epoch": 1, "applied_seq": 9}, Acked(epoch=1, applied_seq=9)),
    ({"result": "duplicate", "applied_seq": 9}, Acked(duplicate=True, applied_seq=9)),
    ({"result": "applied", "applied_seq": "9"}, Acked()),
    ({"result": "gap", "expected": 5}, GapAt(expected=5)),
    ({"result": "gap"}, GapAt(expected=None)),
    ({"result": "snapshot_needed"}, SnapshotNeeded()),
    ({"result": "refused", "reason": "replay", "detail": "old"},
     Refused(reason="replay", detail="old")),
    ({"result": "refused"}, Refused(reason="refused")),
]  # fmt: skip
LABELS = ["applied", "duplicate", "applied", "gap", "gap", "snapshot_needed", "refused", "refused"]


@pytest.mark.parametrize(
    ("answer", "expected", "result_label"),
    [(a, e, lbl) for (a, e), lbl in zip(ANSWERS, LABELS, strict=True)],
)
def test_answers_are_typed(answer: dict[str, Any], expected: Any, result_label: str) -> None:
    assert read_answer(200, body(answer)) == expected
    assert label(expected) == result_label


def test_unknown_answers_are_unexpected_with_a_bounded_label() -> None:
    weird = read_answer(500, body({"result": "busy"}))
    assert isinstance(weird, Unexpected)
    assert (weird.result, label(weird)) == ("busy", "busy")
    assert label(read_answer(200, b"oops")) == "error"
    assert read_answer(200, b"oops") == Unexpected(detail="central answered 200 without JSON")
    assert read_answer(200, b"[1]") == Unexpected(detail="central answered 200 with list")
    assert label(read_answer(200, body({"result": 3}))) == "error"


def test_batch_acknowledged_moves_the_cursor() -> None:
    assert after_batch(Acked(applied_seq=30)) == Continue(cursor=30)
    assert after_batch(Acked(duplicate=True, applied_seq=30)) == Continue(cursor=30)
    assert after_batch(Acked()) == Unexpected(
        detail="central acknowledged without a valid applied_seq"
    )


def test_gap_rewinds_to_what_central_expects_and_starts_over() -> None:
    assert after_batch(GapAt(expected=11)) == Restart(cursor=10)
    assert after_batch(GapAt(expected=1)) == Restart(cursor=0)
    for bad in (None, 0):
        assert after_batch(GapAt(expected=bad)) == Unexpected(
            detail="central reported a gap without a valid expected seq"
        )


def test_snapshot_needed_starts_over_and_failures_pass_through() -> None:
    assert after_batch(SnapshotNeeded()) == Restart()
    refused = Refused(reason="bad_signature")
    assert after_batch(refused) is refused
    unexpected = Unexpected(detail="x")
    assert after_batch(unexpected) is unexpected


def test_snapshot_pages() -> None:
    def page(answer: Any, last: bool = False) -> Any:
        return after_snapshot_page(answer, epoch=3, as_of=90, last=last)

    assert page(Acked(epoch=2, applied_seq=40)) == NextPage()
    assert page(Acked(duplicate=True, epoch=2)) == NextPage()
    assert page(Acked(epoch=2, applied_seq=90), last=True) == SnapshotDone(cursor=90)
    assert page(Acked(), last=True) == SnapshotDone(cursor=90)
    # Central already holds this epoch's snapshot (the last answer was lost): done.
    assert page(Acked(duplicate=True, epoch=3, applied_seq=95)) == SnapshotDone(cursor=95)
    assert page(GapAt(expected=0)) == Restart()
    assert isinstance(page(SnapshotNeeded()), Unexpected)
    assert page(Refused(reason="replay")) == Refused(reason="replay")


# --- where a round starts ---


def test_same_epoch_within_the_log_ships_after_centrals_cursor() -> None:
    assert start_round(cursor(1, 40), local(floor=10)) == Ship(applied=40)
    assert start_round(cursor(1, 10), local(floor=10)) == Ship(applied=10)
    assert start_round(cursor(1, 100), local(floor=10)) == Ship(applied=100)


def test_a_fresh_central_gets_the_whole_log() -> None:
    assert start_round(cursor(0, 0), local(epoch=1)) == Ship(applied=0)


def test_central_ahead_of_the_log_or_behind_its_floor_needs_a_new_epoch() -> None:
    # A restored edge: central has an epoch or entries this log never wrote.
    assert start_round(cursor(2, 5), local(epoch=1)) == NewEpoch(at_least=3)
    assert start_round(cursor(1, 101), local(epoch=1)) == NewEpoch(at_least=2)
    # Central needs entries that were compacted away.
    assert start_round(cursor(1, 9), local(epoch=1, floor=10)) == NewEpoch(at_least=2)


def test_central_in_an_older_epoch_gets_this_epochs_snapshot() -> None:
    assert start_round(cursor(1, 50), local(epoch=2, snapshot_seq=70)) == SendSnapshot(
        epoch=2, as_of=70
    )
    # A fresh central but a log that was compacted: the entries alone no longer suffice.
    assert start_round(cursor(0, 0), local(epoch=2, floor=5, snapshot_seq=70)) == SendSnapshot(
        epoch=2, as_of=70
    )


def test_a_snapshot_resumes_at_centrals_next_page_only_for_the_same_snapshot() -> None:
    staged = StagedSnapshot(epoch=2, as_of_seq=70, next_page=4, after=("lease", "x"))
    assert start_round(cursor(1, 50, staged), local(epoch=2, snapshot_seq=70)) == SendSnapshot(
        epoch=2, as_of=70, page=4, after=("lease", "x")
    )
    assert snapshot_from(2, 71, staged) == SendSnapshot(epoch=2, as_of=71)
    assert snapshot_from(3, 70, staged) == SendSnapshot(epoch=3, as_of=70)
    assert snapshot_from(2, 70, None) == SendSnapshot(epoch=2, as_of=70)


counts = st.integers(0, 50)


@given(counts, counts, counts, counts, counts, counts)
def test_start_round_never_ships_what_the_log_cannot_continue(
    c_epoch: int, applied: int, epoch: int, floor: int, extra: int, snapshot_seq: int
) -> None:
    log = local(epoch=epoch, floor=floor, last_seq=floor + extra, snapshot_seq=snapshot_seq)
    decision = start_round(cursor(c_epoch, applied), log)
    match decision:
        case Ship(applied=shipped):
            assert shipped == applied
            assert (c_epoch == epoch and floor <= applied <= floor + extra) or (
                c_epoch == 0 and floor == 0 and epoch > 0
            )
        case NewEpoch(at_least=at_least):
            assert at_least is not None
            assert at_least > c_epoch
            assert at_least > epoch or c_epoch == epoch
        case SendSnapshot(epoch=sent_epoch, as_of=as_of, page=0):
            assert (sent_epoch, as_of) == (epoch, snapshot_seq)
            assert c_epoch < epoch
        case _:
            pytest.fail(f"unexpected {decision}")


# --- between rounds ---


def test_a_round_that_ends_waits_the_poll_interval_and_resets() -> None:
    state = SyncState(restarts=3, failures=4, coalesced_at=7)
    after, then = after_round(state, RoundEnd.DONE, poll_interval=5.0, backoff=BACKOFF, jitter=0.9)
    assert after == SyncState(coalesced_at=7)
    assert then == Wait(seconds=5.0, up=True, wake_on_change=True)


def test_restarts_go_again_at_once_until_the_limit_then_back_off() -> None:
    state = SyncState()
    for _ in range(MAX_RESTARTS):
        state, then = after_round(
            state, RoundEnd.RESTART, poll_interval=5.0, backoff=BACKOFF, jitter=0.5
        )
        assert then == Again()
    state, then = after_round(
        state, RoundEnd.RESTART, poll_interval=5.0, backoff=BACKOFF, jitter=0.5
    )
    assert then == Wait(seconds=0.5, up=False, gave_up_restarting=True)
    assert state == SyncState(restarts=0, failures=1)


def test_failures_back_off_with_full_jitter_and_never_give_up() -> None:
    state = SyncState(restarts=2)
    waits = []
    for _ in range(12):
        state, then = after_round(
            state, RoundEnd.FAILED, poll_interval=5.0, backoff=BACKOFF, jitter=0.5
        )
        assert isinstance(then, Wait)
        assert not then.up
        assert not then.gave_up_restarting
        waits.append(then.seconds)
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    assert state == SyncState(failures=12)


@given(st.lists(st.sampled_from(list(RoundEnd)), max_size=40), st.floats(0, 0.999))
def test_any_run_of_rounds_waits_within_the_bounds(ends: list[RoundEnd], jitter: float) -> None:
    state = SyncState()
    for end in ends:
        state, then = after_round(state, end, poll_interval=5.0, backoff=BACKOFF, jitter=jitter)
        assert state.restarts <= MAX_RESTARTS
        if isinstance(then, Wait):
            assert 0 <= then.seconds < 60.0 or then.seconds == 5.0
            assert then.up == (end is RoundEnd.DONE)
        else:
            assert end is RoundEnd.RESTART


def test_housekeeping_remembers_the_last_coalescing() -> None:
    limits = OutboxLimits(soft_limit=100, hard_limit=1000)
    assert housekeeping(SyncState(), 150, limits) is Housekeeping.COALESCE
    assert housekeeping(SyncState(coalesced_at=150), 155, limits) is Housekeeping.NOTHING
    assert housekeeping(SyncState(coalesced_at=150), 160, limits) is Housekeeping.COALESCE
    assert housekeeping(SyncState(), 1001, limits) is Housekeeping.NEW_EPOCH


# --- the down log ---


def down(
    after: int, entries: list[dict[str, Any]], key: Any = CENTRAL_KEY, site: str = "s1"
) -> bytes:
    envelope = protocol.seal(
        protocol.DOWN_TYPE, site=site, body={"after": after, "entries": entries}, key=key
    )
    return protocol.encode_envelope(envelope)


def read(data: bytes, after: int = 3, status: int = 200) -> Any:
    return read_down_page(
        status, data, site="s1", after=after, central_key=CENTRAL_KEY.public_key()
    )


ENTRIES = [
    {"dseq": 4, "op": "upsert", "image": {"id": "a"}},
    {"dseq": 6, "op": "delete", "image": {"id": "b"}},
]


def test_down_page_is_opened_and_checked() -> None:
    page = read(down(3, ENTRIES))
    assert isinstance(page, DownPage)
    assert [e.to_image() for e in page.entries] == ENTRIES
    assert not page.more
    full = [{"dseq": 4 + i, "op": "upsert", "image": {}} for i in range(DOWN_PAGE)]
    full_page = read(down(3, full))
    assert isinstance(full_page, DownPage)
    assert full_page.more
    assert read(down(3, [])) == DownPage(entries=(), more=False)


def test_down_page_refusals() -> None:
    assert read(down(2, ENTRIES)) == Refused(
        reason="replay", detail="down log answer for another cursor"
    )
    assert read(down(3, ENTRIES, key=OTHER_KEY)) == Refused(reason="bad_signature")
    assert read(down(3, ENTRIES, site="s2")).reason == "wrong_site"
    out_of_order = read(down(3, [{"dseq": 3, "op": "upsert", "image": {}}]))
    assert isinstance(out_of_order, Refused)
    assert out_of_order.reason == "malformed"
    assert read(body({"reason": "stale"}), status=403) == Refused(
        reason="stale", detail="central refused the down-log request (403)"
    )
    assert read(b"", status=503) == Unexpected(
        detail="central answered 503 to the down-log request"
    )


# --- conflict reports ---


def conflict(id_: int, resolved_at: float | None = None) -> SyncConflict:
    return SyncConflict(
        id=id_,
        kind="host",
        object_id=f"h{id_}",
        field="ip",
        value="198.18.0.10",
        edge_image=None,
        central_image={"id": f"h{id_}"},
        detected_at=1000.0,
        resolved_at=resolved_at,
    )


def test_conflict_report_carries_new_conflicts_and_new_resolutions() -> None:
    rows = [
        conflict(1, resolved_at=2000.0),
        conflict(2, resolved_at=1500.0),
        conflict(3),
        conflict(4),
    ]
    report = conflict_report(rows, reported=3, resolutions=1_600_000)
    assert report is not None
    assert [c.id for c in report.conflicts] == [1, 4]
    assert (report.conflicts_reported, report.resolutions_reported) == (4, 2_000_000)
    assert conflict_report(rows, reported=4, resolutions=2_000_000) is None
    assert conflict_report([], reported=0, resolutions=0) is None


@given(st.lists(st.tuples(st.integers(1, 30), st.none() | st.floats(0, 5000)), max_size=12),
       st.integers(0, 30), st.integers(0, 5_000_000))  # fmt: skip
def test_conflict_report_marks_never_go_back(
    rows: list[tuple[int, float | None]], reported: int, resolutions: int
) -> None:
    report = conflict_report(
        [conflict(i, resolved_at=r) for i, r in rows], reported=reported, resolutions=resolutions
    )
    if report is None:
        return
    assert report.conflicts_reported >= reported
    assert report.resolutions_reported >= resolutions
    again = conflict_report(
        report.conflicts,
        reported=report.conflicts_reported,
        resolutions=report.resolutions_reported,
    )
    assert again is None


@pytest.mark.parametrize("end", [RoundEnd.FAILED, RoundEnd.RESTART])
def test_while_the_link_is_down_a_change_does_not_cut_the_backoff_short(end: RoundEnd) -> None:
    # A busy site commits changes all the time: if each one ended the backoff, a dead
    # central would be retried on every commit.
    state = SyncState(restarts=MAX_RESTARTS)
    for _ in range(4):
        state, then = after_round(state, end, poll_interval=5.0, backoff=BACKOFF, jitter=0.5)
        assert isinstance(then, Wait)
        assert not then.up
        assert not then.wake_on_change
        state = replace(state, restarts=MAX_RESTARTS)
    _, then = after_round(state, RoundEnd.DONE, poll_interval=5.0, backoff=BACKOFF, jitter=0.5)
    assert then == Wait(seconds=5.0, up=True, wake_on_change=True)
