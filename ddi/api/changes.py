"""The change log: ``GET /v1/changes?after=N&limit=N`` → ``{"changes": [image, …], "last_seq"}``,
entries with seq > after in commit order."""

from __future__ import annotations

from aiohttp import web

from ddi.api.common import APP_KEY, query_int

routes = web.RouteTableDef()

MAX_LIMIT = 10_000


@routes.get("/v1/changes")
async def list_changes(request: web.Request) -> web.Response:
    store = request.app[APP_KEY].site.store
    after = query_int(request, "after", 0, lo=0, hi=2**63 - 1)
    limit = query_int(request, "limit", 1000, lo=1, hi=MAX_LIMIT)
    entries = await store.changes(after=after, limit=limit)
    return web.json_response(
        {"changes": [c.to_image() for c in entries], "last_seq": await store.last_seq()}
    )
