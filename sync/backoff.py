"""Retry delays: exponential backoff with full jitter, capped, that never gives up.

``delay = uniform(0, min(cap, base * 2**attempt))`` ("full jitter", as in the AWS architecture
note on backoff): many edges that lost central at the same moment spread their retries
over the whole window instead of knocking together. There is no retry limit: a site that was
cut off for a week still reconnects on its own. Randomness comes from an injected ``rng``
(a function returning a float in [0, 1)), so tests fix it.
"""

from __future__ import annotations

from collections.abc import Callable


class Backoff:
    """The delays before successive retries; ``reset`` after a success."""

    def __init__(self, *, base: float, cap: float, rng: Callable[[], float]) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self._base = base
        self._cap = cap
        self._rng = rng
        self.attempt = 0

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        # Past 2**64 the cap has long been reached; bounding the exponent keeps it finite.
        exponent: int = min(self.attempt, 64)
        return min(self._cap, self._base * float(2**exponent))

    def next_delay(self) -> float:
        """Seconds to wait before the next try, in [0, ceiling)."""
        delay = self._rng() * self.ceiling()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
