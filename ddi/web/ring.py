"""A bounded ring of counter samples, and the series a chart draws from it.

The console samples a few cumulative counters (packets received, queries answered) and gauges
(pool utilisation) every minute or so; this module keeps the last ``capacity`` of them and turns
consecutive counter samples into per-second rates. Pure: time comes in with each sample.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_CAPACITY = 10_000
"""Samples a ring may hold at most: at one a minute, about a week."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """What was read at ``at`` (Unix seconds): counters and gauges by name."""

    at: float
    values: Mapping[str, float] = field(default_factory=dict)


class Ring:
    """The last ``capacity`` samples, oldest first; a sample older than the newest is refused
    (a clock that stepped back would otherwise draw a line backwards)."""

    __slots__ = ("_samples",)

    def __init__(self, capacity: int) -> None:
        if not 1 <= capacity <= MAX_CAPACITY:
            raise ValueError(f"capacity must be from 1 to {MAX_CAPACITY}")
        self._samples: deque[Sample] = deque(maxlen=capacity)

    def add(self, sample: Sample) -> bool:
        """Keep ``sample`` (dropping the oldest when full); False when it is not newer."""
        if self._samples and sample.at <= self._samples[-1].at:
            return False
        self._samples.append(sample)
        return True

    def samples(self) -> tuple[Sample, ...]:
        return tuple(self._samples)

    def __len__(self) -> int:
        return len(self._samples)


def rates(samples: Iterable[Sample], name: str) -> list[tuple[float, float]]:
    """``(at, per-second rate)`` of counter ``name`` between each sample and the one before.

    A counter that went down was reset (the daemon restarted its registry): the interval is
    left out rather than drawn as a negative rate. Samples without ``name`` are skipped.
    """
    points: list[tuple[float, float]] = []
    before: Sample | None = None
    for sample in samples:
        if name not in sample.values:
            continue
        if before is not None:
            delta = sample.values[name] - before.values[name]
            if delta >= 0:
                points.append((sample.at, delta / (sample.at - before.at)))
        before = sample
    return points


def series(samples: Iterable[Sample], name: str) -> list[tuple[float, float]]:
    """``(at, value)`` of gauge ``name`` in each sample that has it."""
    return [(s.at, s.values[name]) for s in samples if name in s.values]
