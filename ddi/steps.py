"""Long passes inside the daemon, in steps: one event loop serves DHCP, DNS and the API, and a
pass over 100,000 leases at once stops all of them for tens of milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

__all__ = ["STEP", "in_steps"]

T = TypeVar("T")

STEP = 5_000
"""Objects a pass handles between two turns of the event loop: a few milliseconds of work."""


async def in_steps(items: Sequence[T], step: int = STEP) -> AsyncIterator[Sequence[T]]:
    """``items`` in chunks of ``step``, giving the event loop a turn after each."""
    for start in range(0, len(items), step):
        yield items[start : start + step]
        await asyncio.sleep(0)
