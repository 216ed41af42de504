"""``GET /v1/status``: version, uptime, store counters and every service's statistics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from ddi import __version__, metrics
from ddi.api.common import APP_KEY, Daemon
from ddi.ipam.store import Store

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


def store_health(store: Store) -> dict[str, Any]:
    """Whether the disk takes the store's writes: refused writes since start, the last one,
    and the space left where the database lives (``low`` below ``store_health``'s threshold)."""
    health = store.health
    space = store.disk_space()
    return {
        "write_failures": health.failures,
        "last_write_error": health.last_error,
        "last_write_error_at": health.last_error_at,
        "free_bytes": space.free,
        "total_bytes": space.total,
        "low_space": space.low,
        "wal_bytes": store.wal_bytes(),
    }


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
            "health": store_health(site.store),
        },
        "statistics": statistics,
    }


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    return web.json_response(await status_document(request.app[APP_KEY]))
