"""Subnets (from the config file): ``GET /v1/subnets`` → ``{"subnets": [image, …],
"subnets6": [image, …]}``, the IPv4 ones and the IPv6 ones (``[[subnets6]]``); each IPv4 subnet
with its ``usage``: per pool used, reserved, declined, free and utilisation (``ddi.ipam.usage``)."""

from __future__ import annotations

import time

from aiohttp import web

from ddi.api.common import APP_KEY
from ddi.ipam.usage import usage_by_subnet

routes = web.RouteTableDef()


@routes.get("/v1/subnets")
async def list_subnets(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    subnets = await site.store.subnets()
    ordered = sorted(subnets, key=lambda s: s.cidr)
    usages = usage_by_subnet(ordered, site.index.hosts(), site.index.leases(), time.time())
    images = [
        {**s.to_image(), "usage": usage.to_image()}
        for s, usage in zip(ordered, usages, strict=True)
    ]
    subnets6 = await site.store.subnets6()
    return web.json_response({"subnets": images, "subnets6": [s.to_image() for s in subnets6]})
