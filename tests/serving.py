"""One service run on its own, as ``ddi.app.serve`` runs each: started in a TaskGroup, then,
on the way out, the group's tasks cancelled and the service closed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from ddi.site import Service


@contextlib.asynccontextmanager
async def started(service: Service) -> AsyncIterator[None]:
    """Start ``service``; a start that fails raises here (as the TaskGroup's exception group)."""
    ready = asyncio.get_running_loop().create_future()

    async def run() -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                await service.start(tg)
                ready.set_result(None)
                await asyncio.Event().wait()
        finally:
            await service.close()

    task = asyncio.create_task(run())
    await asyncio.wait([ready, task], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def slowed(server: Any, seconds: float) -> None:
    """Make each packet cost ``server``'s engine ``seconds`` more (the loop is held, as by real
    work): a server that falls behind."""
    handle = server.engine.handle

    def slow(*args: Any) -> Any:
        time.sleep(seconds)
        return handle(*args)

    server.engine.handle = slow
