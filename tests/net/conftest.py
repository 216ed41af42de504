"""The network tests run on the loop ``ddi serve`` runs (``ddi.app.run_daemon``: uvloop), so
that a call the shipped loop lacks fails here rather than in production."""

from __future__ import annotations

from typing import Any

import uvloop


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    return {"uvloop": uvloop.new_event_loop}
