"""Leases: ``GET /v1/leases`` → ``{"leases": [image, …]}`` by IP, every state."""

from __future__ import annotations

from aiohttp import web

from ddi.api.common import APP_KEY

routes = web.RouteTableDef()


@routes.get("/v1/leases")
async def list_leases(request: web.Request) -> web.Response:
    leases = await request.app[APP_KEY].store.leases()
    return web.json_response({"leases": [x.to_image() for x in sorted(leases, key=lambda x: x.ip)]})
