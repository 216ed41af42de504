"""The Nautobot lab (``tests.nautobot.lab``) as one session-scoped fixture: started once for
every test that asks for it, stopped after the last. Outside CI a missing piece (the Nautobot
venv from ``make nautobot``, redis-server, PostgreSQL) skips those tests with the reason; under
CI=true it fails them (``tests.ci``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ci import skip_or_fail
from tests.nautobot.lab import NautobotLab, Unavailable, nautobot_lab


@pytest.fixture(scope="session")
def nautobot() -> Iterator[NautobotLab]:
    """A running Nautobot with a superuser token; its start-up timings are printed."""
    try:
        with nautobot_lab() as lab:
            steps = ", ".join(f"{k} {v:.1f}s" for k, v in lab.timings.steps.items())
            print(f"Nautobot {lab.version} lab up in {lab.timings.total():.1f}s ({steps})")
            yield lab
            if lab.server is None:  # a test left it stopped: the next one gets it running
                lab.start_server()
    except Unavailable as exc:
        skip_or_fail(f"Nautobot lab unavailable: {exc}")


@pytest.fixture
def nautobot_running(nautobot: NautobotLab) -> NautobotLab:
    """The lab with its web server up (a test that stopped it may have left it down)."""
    if nautobot.server is None:
        nautobot.start_server()
    return nautobot
