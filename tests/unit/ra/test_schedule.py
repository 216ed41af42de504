"""The RA schedule: intervals, the initial burst and the rate limit on solicited replies."""

from __future__ import annotations

import pytest

from ddi.ra.schedule import (
    MAX_INITIAL_RTR_ADVERT_INTERVAL,
    MIN_DELAY_BETWEEN_RAS,
    RaSchedule,
)


def test_first_advertisement_at_once_then_the_initial_ones_at_most_16_s_apart() -> None:
    s = RaSchedule.starting(min_interval=198, max_interval=600, now=100.0)
    assert s.due(100.0)
    s.sent(100.0, 0.5)
    assert s.due_at == 100.0 + MAX_INITIAL_RTR_ADVERT_INTERVAL
    s.sent(s.due_at, 0.99)
    assert s.due_at == 132.0
    s.sent(132.0, 0.5)  # the third: the initial burst is over
    assert s.due_at == pytest.approx(132.0 + 399.0)


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999])
def test_periodic_interval_is_uniform_between_min_and_max(draw: float) -> None:
    s = RaSchedule(min_interval=4, max_interval=10, due_at=0.0, sent_count=5)
    s.sent(50.0, draw)
    assert 54.0 <= s.due_at <= 60.0
    assert s.due_at == pytest.approx(54.0 + draw * 6)
    assert not s.due(s.due_at - 0.001)
    assert s.due(s.due_at)


def test_a_solicitation_brings_the_advertisement_forward_by_at_most_half_a_second() -> None:
    s = RaSchedule(min_interval=198, max_interval=600, due_at=500.0, last_sent=10.0, sent_count=5)
    assert s.solicited(100.0, 0.5)
    assert s.due_at == 100.25


def test_solicitations_within_three_seconds_of_the_last_advertisement_wait() -> None:
    s = RaSchedule(min_interval=198, max_interval=600, due_at=500.0, last_sent=99.0, sent_count=5)
    assert s.solicited(100.0, 0.0)
    assert s.due_at == 99.0 + MIN_DELAY_BETWEEN_RAS
    # A flood adds nothing: the next one is already due as soon as it may be.
    assert not any(s.solicited(100.0 + i / 100, 0.0) for i in range(100))
    assert s.due_at == 99.0 + MIN_DELAY_BETWEEN_RAS


def test_a_solicitation_never_delays_an_advertisement_already_due() -> None:
    s = RaSchedule(min_interval=4, max_interval=10, due_at=100.1, last_sent=90.0, sent_count=5)
    assert not s.solicited(100.0, 0.9)
    assert s.due_at == 100.1


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="intervals"):
        RaSchedule.starting(min_interval=10, max_interval=5, now=0.0)
