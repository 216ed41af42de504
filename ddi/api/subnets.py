"""Subnets: ``GET /v1/subnets`` → ``{"subnets": [image, …]}`` (from the config file)."""

from __future__ import annotations

from aiohttp import web

from ddi.api.common import APP_KEY

routes = web.RouteTableDef()


@routes.get("/v1/subnets")
async def list_subnets(request: web.Request) -> web.Response:
    subnets = await request.app[APP_KEY].site.store.subnets()
    images = [s.to_image() for s in sorted(subnets, key=lambda s: s.cidr)]
    return web.json_response({"subnets": images})
