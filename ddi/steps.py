"""Long passes inside the daemon, in steps: one event loop serves DHCP, DNS and the API, and a
pass over 100,000 leases at once stops all of them for tens of milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TypeVar

from ddi.ipam.models import Host, Lease, Subnet
from ddi.ipam.usage import UsageCount

__all__ = ["STEP", "count_usage", "in_steps"]

T = TypeVar("T")

STEP = 5_000
"""Objects a pass handles between two turns of the event loop: a few milliseconds of work."""


async def in_steps(items: Sequence[T], step: int = STEP) -> AsyncIterator[Sequence[T]]:
    """``items`` in chunks of ``step``, giving the event loop a turn after each."""
    for start in range(0, len(items), step):
        yield items[start : start + step]
        await asyncio.sleep(0)


async def count_usage(
    subnets: Iterable[Subnet],
    hosts: Sequence[Host],
    leases: Sequence[Lease],
    now: float,
    *,
    step: int = STEP,
    each: Callable[[Sequence[Lease]], None] | None = None,
) -> UsageCount:
    """The pool usage of ``subnets`` (``ddi.ipam.usage.UsageCount``) from one pass over
    ``hosts`` and ``leases`` in steps; ``each`` sees every chunk of leases too (for other
    counts made in the same pass)."""
    count = UsageCount(subnets, now)
    async for some_hosts in in_steps(hosts, step):
        count.add_hosts(some_hosts)
    async for some_leases in in_steps(leases, step):
        count.add_leases(some_leases)
        if each is not None:
            each(some_leases)
    return count
