"""``GET /v1/status``: version, uptime, store counters and every area's statistics snapshot."""

from __future__ import annotations

from aiohttp import web

from ddi.api.common import APP_KEY

routes = web.RouteTableDef()


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    return web.json_response(await request.app[APP_KEY].status())
