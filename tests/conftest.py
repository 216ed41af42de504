"""Cross-cutting fixtures: a fixed clock, a seeded random source, hypothesis profiles."""

from __future__ import annotations

import random

import pytest
import uvloop
from hypothesis import HealthCheck, settings

from tests.ci import IN_CI

settings.register_profile("ci", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if IN_CI else "dev")

NOW = 1_800_000_000.0
"""A fixed wall-clock instant (2027-01-15) for pure cores that take ``now``."""


@pytest.fixture
def now() -> float:
    return NOW


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


def pytest_asyncio_loop_factories(config: object, item: object) -> dict[str, object]:
    """Every async test runs on the loop ``ddi serve`` runs (``ddi.app.run_daemon``: uvloop),
    so that a call the shipped loop lacks fails here rather than in production."""
    return {"uvloop": uvloop.new_event_loop}
