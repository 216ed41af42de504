"""Waiting for a condition with a deadline: what tests do instead of sleeping for a while."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(check: Callable[[], object], what: str = "condition", within: float = 10.0) -> None:
    """Return once ``check()`` is true, yielding to the loop between looks; fail after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if check():
            return
        assert time.monotonic() < deadline, f"timed out after {within}s waiting for {what}"
        await asyncio.sleep(0.002)


def wait_until(check: Callable[[], object], what: str = "condition", within: float = 10.0) -> None:
    """:func:`until` for code outside an event loop."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out after {within}s waiting for {what}"
        time.sleep(0.01)
