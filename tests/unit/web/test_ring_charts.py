"""The sample ring and the SVG charts: pure, no clock."""

from __future__ import annotations

import re

import pytest

from ddi.web.charts import level, line_chart, usage_bar
from ddi.web.ring import Ring, Sample, rates, series


def test_ring_keeps_the_newest_and_refuses_time_going_back() -> None:
    ring = Ring(3)
    for at in (10.0, 20.0, 30.0, 40.0):
        assert ring.add(Sample(at=at, values={"x": at}))
    assert [s.at for s in ring.samples()] == [20.0, 30.0, 40.0]
    assert not ring.add(Sample(at=40.0))
    assert not ring.add(Sample(at=5.0))
    assert len(ring) == 3


@pytest.mark.parametrize("capacity", [0, -1, 10_001])
def test_ring_capacity_is_bounded(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity"):
        Ring(capacity)


def test_rates_per_second_and_a_reset_is_left_out() -> None:
    samples = [
        Sample(at=0.0, values={"q": 100.0}),
        Sample(at=60.0, values={"q": 160.0}),
        Sample(at=120.0, values={"g": 1.0}),  # no "q": skipped
        Sample(at=180.0, values={"q": 400.0}),
        Sample(at=240.0, values={"q": 10.0}),  # reset: no negative rate
        Sample(at=300.0, values={"q": 70.0}),
    ]
    assert rates(samples, "q") == [(60.0, 1.0), (180.0, 2.0), (300.0, 1.0)]
    assert series(samples, "g") == [(120.0, 1.0)]


def test_usage_bar_fill_level_and_words() -> None:
    svg = usage_bar(0.5, label="lan 198.18.0.100-198.18.0.149")
    assert 'width="80.0"' in svg
    assert 'class="bar ok"' in svg
    assert "<title>lan 198.18.0.100-198.18.0.149: 50.0% used</title>" in svg
    assert 'class="bar full"' in usage_bar(1.7, label="x")  # clamped, still drawn full
    assert 'width="160.0"' in usage_bar(1.7, label="x")
    assert [level(f) for f in (0.0, 0.79, 0.8, 0.949, 0.95)] == ["ok", "ok", "warn", "warn", "full"]


def test_usage_bar_escapes_its_label() -> None:
    svg = usage_bar(0.1, label='<script>"x"')
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_line_chart_scales_points_into_the_span() -> None:
    svg = line_chart(
        [(0.0, 5.0), (3000.0, 10.0), (3600.0, 0.0)], now=3600.0, span=3600.0,
        title="DHCP", unit="pkt/s", width=140, height=66,
    )  # fmt: skip
    # plot: x from 36 over 100, y from 6 over 44 (66 - 6 - 16)
    coords = re.search(r'points="([^"]+)"', svg)
    assert coords is not None
    assert coords.group(1) == "36.0,28.0 119.3,6.0 136.0,50.0"
    assert "latest 0 pkt/s" in svg
    assert ">10<" in svg  # the top of the scale


def test_line_chart_says_so_when_it_has_too_few_points() -> None:
    svg = line_chart([(10.0, 1.0)], now=3600.0, span=3600.0, title="DNS", unit="q/s")
    assert "collecting samples" in svg
    assert "polyline" not in svg
    old = line_chart([(0.0, 1.0), (1.0, 2.0)], now=99999.0, span=3600.0, title="D", unit="")
    assert "no samples yet" in old
