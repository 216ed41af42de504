"""``ddi.tally.Tally``: counts reach their metric child once per loop iteration."""

from __future__ import annotations

import asyncio

import pytest

from ddi.tally import Tally


class Child:
    def __init__(self) -> None:
        self.incs: list[int] = []

    def inc(self, n: int) -> None:
        self.incs.append(n)


@pytest.mark.asyncio
async def test_counts_are_added_together_at_the_end_of_the_iteration() -> None:
    tally, child = Tally(), Child()
    tally.loop = asyncio.get_running_loop()
    for _ in range(3):
        tally.add(child)
    assert child.incs == []
    await asyncio.sleep(0)  # one loop iteration
    assert child.incs == [3]
    tally.add(child)
    tally.flush()
    assert child.incs == [3, 1]


def test_without_a_loop_each_count_goes_at_once() -> None:
    tally, child = Tally(), Child()
    tally.add(child)
    tally.add(child)
    assert child.incs == [1, 1]
