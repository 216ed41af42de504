"""Retry delays: exponential backoff with full jitter, capped, that never gives up.

``delay = uniform(0, min(cap, base * 2**attempt))`` ("full jitter", as in the AWS architecture
note on backoff): many edges that lost central at the same moment spread their retries
over the whole window instead of knocking together. There is no retry limit: a site that was
cut off for a week still reconnects on its own. The jitter (a float in [0, 1)) and the attempt
count are the caller's, so the delay is a pure function of them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """The bounds of the delays before successive retries."""

    base: float
    cap: float

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError("backoff needs 0 < base <= cap")

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the delay before retry number ``attempt`` (from 0)."""
        # Past 2**64 the cap has long been reached; bounding the exponent keeps it finite.
        exponent: int = min(max(attempt, 0), 64)
        return min(self.cap, self.base * float(2**exponent))

    def delay(self, attempt: int, jitter: float) -> float:
        """Seconds to wait before retry number ``attempt``, in [0, ceiling) for ``jitter``
        in [0, 1)."""
        return jitter * self.ceiling(attempt)
