"""Subnets (from the config file): ``GET /v1/subnets`` → ``{"subnets": [image, …],
"subnets6": [image, …]}``, the IPv4 ones and the IPv6 ones (``[[subnets6]]``)."""

from __future__ import annotations

from aiohttp import web

from ddi.api.common import APP_KEY

routes = web.RouteTableDef()


@routes.get("/v1/subnets")
async def list_subnets(request: web.Request) -> web.Response:
    subnets = await request.app[APP_KEY].site.store.subnets()
    images = [s.to_image() for s in sorted(subnets, key=lambda s: s.cidr)]
    subnets6 = await request.app[APP_KEY].site.store.subnets6()
    return web.json_response({"subnets": images, "subnets6": [s.to_image() for s in subnets6]})
