"""Sync health and control: ``/v1/sync``.

* ``GET  /v1/sync/status``     → link state, last success, backlog entries and the age of the
  oldest unsynced change, epoch, acknowledged seq, open conflicts (``{"configured": false}``
  without ``[sync]``)
* ``POST /v1/sync/now``        ← ``{"timeout": seconds?}`` → runs a round now and answers with
  the status after it (``"completed": false`` when it did not end in time)
* ``GET  /v1/sync/conflicts``  → ``{"conflicts": [...]}`` (``?open=1`` for unresolved only)
* ``POST /v1/sync/conflicts/{id}/resolve`` ← ``{"keep": "edge"|"central", actor, reason}`` →
  ``{"conflict": row}``; keeping central removes the colliding edge hosts and applies central's
  reservation in one transaction (409 when it still cannot apply)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from ddi.api.common import APP_KEY, BadRequest, WriteArgs, read_body
from ddi.ipam.models import Owner
from ddi.numbers import decimal

routes = web.RouteTableDef()


@runtime_checkable
class SyncControl(Protocol):
    """What the API asks of the running sync service (``sync.agent.SyncAgent``), named here
    so that the API does not import the agent's HTTP client and signature stack."""

    def statistics(self) -> Mapping[str, Any]: ...

    async def sync_now(self) -> bool: ...


def _agent(request: web.Request) -> SyncControl | None:
    """The running sync service, or None."""
    service = request.app[APP_KEY].services.get("sync")
    return service if isinstance(service, SyncControl) else None


async def _status(request: web.Request) -> dict[str, Any]:
    site = request.app[APP_KEY].site
    config = site.config
    if config.sync is None:
        return {"configured": False}
    store = site.store
    state = await store.sync.cursors()
    backlog = await store.sync.backlog(state.cursor)
    conflicts = await store.sync.conflicts(open_only=True)
    agent = _agent(request)
    live = dict(agent.statistics()) if agent is not None else {"link": "not running"}
    return live | {
        "configured": True,
        "site": config.site.id,
        "central": config.sync.central_url,
        "epoch": state.epoch,
        "last_seq": state.last_seq,
        "acked_seq": state.cursor,
        "backlog_entries": backlog.count,
        "oldest_unsynced_age": None
        if backlog.oldest is None
        else round(time.time() - backlog.oldest, 3),
        "down_seq": state.down_cursor,
        "conflicts": len(conflicts),
    }


@routes.get("/v1/sync/status")
async def status(request: web.Request) -> web.Response:
    return web.json_response(await _status(request))


@routes.post("/v1/sync/now")
async def now(request: web.Request) -> web.Response:
    body = await read_body(request)
    timeout = body.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise BadRequest("timeout must be a positive number of seconds", field="timeout")
    agent = _agent(request)
    if agent is None:
        return web.json_response(
            {"error": "not_configured", "message": "sync is not configured or not running"},
            status=409,
        )
    completed = True
    try:
        async with asyncio.timeout(float(timeout)):
            await agent.sync_now()
    except TimeoutError:
        completed = False
    return web.json_response(await _status(request) | {"completed": completed})


@routes.get("/v1/sync/conflicts")
async def conflicts(request: web.Request) -> web.Response:
    open_only = request.query.get("open", "") in ("1", "true", "yes")
    rows = await request.app[APP_KEY].site.store.sync.conflicts(open_only=open_only)
    return web.json_response({"conflicts": [row.to_json() for row in rows]})


@routes.post("/v1/sync/conflicts/{id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    body = await read_body(request)
    args = WriteArgs(request, body)
    keep = body.get("keep")
    if keep not in ("edge", "central"):
        raise BadRequest("keep must be 'edge' or 'central'", field="keep")
    raw_id = request.match_info["id"]
    conflict_id = decimal(raw_id, max_digits=18)
    if conflict_id is None:
        raise BadRequest("the conflict id is a number", field="id")
    row = await request.app[APP_KEY].site.store.sync.resolve_conflict(
        conflict_id, keep=Owner(keep), actor=args.actor, reason=args.reason
    )
    return web.json_response({"conflict": row.to_json()})
