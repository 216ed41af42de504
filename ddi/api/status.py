"""``GET /v1/status``: version, uptime, store counters and every service's statistics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from ddi import __version__, metrics
from ddi.api.common import APP_KEY, Daemon

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


async def status_document(daemon: Daemon) -> dict[str, Any]:
    """The ``/v1/status`` document."""
    site = daemon.site
    config = site.config
    index = site.index
    now = time.time()
    leases = list(index.leases())
    statistics: dict[str, Any] = {}
    for name, service in sorted(daemon.services.items()):
        try:
            statistics[name] = dict(service.statistics())
        except Exception:  # one service's bug must not hide the others
            log.exception("statistics of %s failed", name)
            metrics.INTERNAL_ERRORS.labels(area="status").inc()
            statistics[name] = {"error": "statistics failed; see the daemon log"}
    return {
        "version": __version__,
        "site": config.site.id,
        "domain": config.site.domain,
        "config": str(config.path),
        "started": site.started,
        "uptime": round(time.monotonic() - site.started_monotonic, 3),
        "event_loop": type(asyncio.get_running_loop()).__module__.partition(".")[0],
        "api": list(daemon.endpoints),
        "store": {
            "path": str(site.store_path),
            "epoch": await site.store.epoch(),
            "last_seq": await site.store.last_seq(),
            "subnets": len(index.subnets()),
            "hosts": sum(1 for _ in index.hosts()),
            "leases": len(leases),
            "leases_bound": sum(1 for lease in leases if lease.active(now)),
            "records": sum(1 for _ in index.records()),
        },
        "statistics": statistics,
    }


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    return web.json_response(await status_document(request.app[APP_KEY]))
