"""The stall tracer (ddi.stalls, ``ddi serve --trace-stalls``) on uvloop, the daemon's loop:
a callback that holds the loop is logged with its length and its own frame; a loop that keeps
turning logs nothing."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import uvloop

from ddi.stalls import StallTracer


def _holds_the_loop_for(seconds: float) -> None:
    time.sleep(seconds)


async def _traced(work: float, threshold: float) -> StallTracer:
    tracer = StallTracer(asyncio.get_running_loop(), threshold)
    tracer.start()
    try:
        await asyncio.sleep(0.05)
        if work:
            _holds_the_loop_for(work)
        await asyncio.sleep(0.05)
    finally:
        tracer.stop()
    return tracer


def test_a_stop_is_logged_with_its_length_and_where_the_loop_was(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ddi.stalls")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        tracer = runner.run(_traced(0.5, threshold=0.1))
    # A busy machine may add a stop of its own; the one the call made is logged once.
    texts = [r.getMessage() for r in caplog.records if r.name == "ddi.stalls"]
    (text,) = [t for t in texts if "_holds_the_loop_for" in t]
    assert tracer.stalls == len(texts)
    assert float(text.split("stopped for ")[1].split(" ms")[0]) >= 500
    assert "time.sleep(seconds)" in text


def test_a_turning_loop_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ddi.stalls")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        tracer = runner.run(_traced(0, threshold=0.5))
    assert tracer.stalls == 0
    assert not [r for r in caplog.records if r.name == "ddi.stalls"]


@pytest.mark.parametrize("threshold", [0, -1.0, float("nan")])
def test_the_threshold_must_be_positive(threshold: float) -> None:
    loop = uvloop.new_event_loop()
    try:
        with pytest.raises(ValueError, match="positive"):
            StallTracer(loop, threshold)
    finally:
        loop.close()
