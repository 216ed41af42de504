"""A bound on requests in one phase: the collector's requests not yet authenticated.

Rules:
* ``Gate.slot`` never waits: beyond ``limit`` the request is refused at once (``Busy``), so
  a flood costs a refusal each, not a queue that grows without bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Busy(Exception):
    """Every slot is taken."""


class Gate:
    """At most ``limit`` holders at a time."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a gate needs at least one slot")
        self.limit = limit
        self.busy = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the ``with`` block.

        Raises:
            Busy: all ``limit`` slots are held.
        """
        if self.busy >= self.limit:
            raise Busy
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
