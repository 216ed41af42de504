"""The console's sample ring: one per daemon, shared by its listeners, sampling while one runs,
and what a sample holds."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp.test_utils import TestServer

from ddi import metrics
from ddi.api import build_app
from ddi.app import App
from ddi.console import history
from tests.unit.console.test_pages import daemon  # noqa: F401 (fixture)
from tests.waiting import until


def test_a_sample_holds_counters_and_each_subnets_utilisation(daemon: App) -> None:  # noqa: F811
    before = history.counter_total(metrics.DHCP_RECEIVED)
    metrics.DHCP_RECEIVED.labels(message_type="DHCPDISCOVER").inc(5)
    sample = history.read_sample(daemon, time.time())
    assert sample.values[history.DHCP_RECEIVED] == before + 5
    assert sample.values[history.POOL + "lan"] == 0.75
    assert sample.values[history.POOL + "big"] == 0.0
    assert history.DNS_ANSWERED in sample.values


@pytest.mark.asyncio
async def test_both_listeners_share_one_ring_sampled_while_either_runs(daemon: App) -> None:  # noqa: F811
    unix, tcp = build_app(daemon), build_app(daemon)
    assert id(daemon) not in history.active()  # built, not started: nothing kept
    async with TestServer(unix), TestServer(tcp):
        shared = unix[history.HISTORY_KEY].history
        assert shared is not None
        assert tcp[history.HISTORY_KEY].history is shared
        await until(lambda: len(shared.ring) >= 1, "the first sample at start")
        assert shared.users == 2
        task = shared.task
        assert task is not None
        assert history.active()[id(daemon)] is shared
    assert task.done()
    assert shared.task is None
    assert id(daemon) not in history.active()


@pytest.mark.asyncio
async def test_the_sampler_counts_as_the_one_shot_sample_and_lets_the_loop_run(
    daemon: App,  # noqa: F811
) -> None:
    turns = 0

    async def beside() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(beside())
    try:
        await asyncio.sleep(0)
        started = turns
        now = time.time()
        stepwise = await history.read_sample_stepwise(daemon, now, step=1)
    finally:
        other.cancel()
    assert stepwise == history.read_sample(daemon, now)
    assert stepwise.values[history.POOL + "lan"] == 0.75
    objects = len(list(daemon.site.index.hosts())) + len(list(daemon.site.index.leases()))
    assert turns - started >= objects  # a turn for the loop after each object
