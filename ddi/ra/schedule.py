"""When a link's next Router Advertisement goes out (RFC 4861 §6.2.4, §6.2.6), sans I/O.

Time comes in as ``now`` (the loop's clock) and randomness as a number in [0, 1) that the
caller draws, so that the schedule is a pure function of its inputs.

* Periodic: each interval is uniform in [MinRtrAdvInterval, MaxRtrAdvInterval]; the first
  ``MAX_INITIAL_RTR_ADVERTISEMENTS`` are at most ``MAX_INITIAL_RTR_ADVERT_INTERVAL`` apart
  (§6.2.4), so hosts that come up with the router learn it quickly.
* Solicited: a solicitation moves the next multicast advertisement to a random delay of up to
  ``MAX_RA_DELAY_TIME``, but never sooner than ``MIN_DELAY_BETWEEN_RAS`` after the last one, and
  never later than it was already due (§6.2.6): a flood of solicitations costs at most one
  advertisement every three seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_INITIAL_RTR_ADVERT_INTERVAL = 16.0
MAX_INITIAL_RTR_ADVERTISEMENTS = 3
MAX_RA_DELAY_TIME = 0.5
MIN_DELAY_BETWEEN_RAS = 3.0
"""RFC 4861 §10, router constants (seconds)."""


@dataclass(slots=True)
class RaSchedule:
    """One link's schedule: ``due_at`` is when the next multicast advertisement is due."""

    min_interval: float
    max_interval: float
    due_at: float
    last_sent: float | None = None
    sent_count: int = 0

    @classmethod
    def starting(cls, *, min_interval: float, max_interval: float, now: float) -> RaSchedule:
        """A schedule whose first advertisement is due at once (an interface comes up)."""
        if not 0 < min_interval <= max_interval:
            raise ValueError(f"intervals {min_interval}..{max_interval}")
        return cls(min_interval=min_interval, max_interval=max_interval, due_at=now)

    def due(self, now: float) -> bool:
        return now >= self.due_at

    def sent(self, now: float, draw: float) -> None:
        """An advertisement went out at ``now``: the next periodic one is due after an interval
        drawn from ``draw`` in [0, 1)."""
        self.last_sent = now
        self.sent_count += 1
        interval = self.min_interval + draw * (self.max_interval - self.min_interval)
        if self.sent_count < MAX_INITIAL_RTR_ADVERTISEMENTS:
            interval = min(interval, MAX_INITIAL_RTR_ADVERT_INTERVAL)
        self.due_at = now + interval

    def solicited(self, now: float, draw: float) -> bool:
        """A valid solicitation arrived at ``now``; True when it brought the next advertisement
        forward, False when one was already due at least as soon (the solicitation is merged)."""
        at = now + draw * MAX_RA_DELAY_TIME
        if self.last_sent is not None:
            at = max(at, self.last_sent + MIN_DELAY_BETWEEN_RAS)
        if at >= self.due_at:
            return False
        self.due_at = at
        return True
