"""Subnets (from the config file): ``GET /v1/subnets`` → ``{"subnets": [image, …],
"subnets6": [image, …]}``, the IPv4 ones and the IPv6 ones (``[[subnets6]]``); each IPv4 subnet
with its ``usage``: per pool used, reserved, declined, free and utilisation (``ddi.ipam.usage``)."""

from __future__ import annotations

import time

from aiohttp import web

from ddi.api.common import APP_KEY
from ddi.ipam.usage import subnet_usage

routes = web.RouteTableDef()


@routes.get("/v1/subnets")
async def list_subnets(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    subnets = await site.store.subnets()
    hosts = list(site.index.hosts())
    leases = list(site.index.leases())
    now = time.time()
    images = [
        {**s.to_image(), "usage": subnet_usage(s, hosts, leases, now).to_image()}
        for s in sorted(subnets, key=lambda s: s.cidr)
    ]
    subnets6 = await site.store.subnets6()
    return web.json_response({"subnets": images, "subnets6": [s.to_image() for s in subnets6]})
