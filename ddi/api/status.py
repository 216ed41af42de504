"""``GET /v1/status``: version, uptime, store counters, pool usage, the last reload and every
service's statistics; ``POST /v1/reload``: reload the config file and answer with the result."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from ddi import __version__, metrics
from ddi.api.common import APP_KEY, Daemon, WriteArgs, flag, read_body
from ddi.ipam.models import Lease
from ddi.ipam.store import Store
from ddi.steps import count_usage

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
    hosts, leases = list(index.hosts()), list(index.leases())
    # One pass over hosts and leases, in steps (ddi.steps): a monitor polling the status of a
    # site with 100,000 leases must not stop DHCP and DNS for tens of milliseconds each time.
    bound = 0

    def count_bound(some: Sequence[Lease]) -> None:
        nonlocal bound
        bound += sum(1 for lease in some if lease.active(now))

    usage = await count_usage(index.subnets(), hosts, leases, now, each=count_bound)
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
        "tls_fingerprint": daemon.tls_fingerprint,
        "store": {
            "path": str(site.store_path),
            "epoch": await site.store.epoch(),
            "last_seq": await site.store.last_seq(),
            "subnets": len(index.subnets()),
            "hosts": len(hosts),
            "leases": len(leases),
            "leases_bound": bound,
            "records": len(list(index.records())),
            "health": store_health(site.store),
            "change_log": (await site.store.log.size()).to_image(),
        },
        "pools": [subnet.to_image() for subnet in usage.result()],
        "reload": None if daemon.last_reload is None else daemon.last_reload.to_image(),
        "statistics": statistics,
    }


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    return web.json_response(await status_document(request.app[APP_KEY]))


@routes.post("/v1/reload")
async def reload(request: web.Request) -> web.Response:
    """Reload the config file: 200 with the result when applied, 409 with it when refused.
    ``{"force": true}`` applies subnets that orphan reservations or active leases."""
    body = await read_body(request)
    args = WriteArgs(request, body)
    force = flag(body, "force")
    daemon = request.app[APP_KEY]
    log.info("reload requested by %s%s", args.actor, " (force)" if force else "")
    result = await daemon.reload(force=force)
    image = result.to_image()
    if result.applied:
        return web.json_response({"reload": image})
    return web.json_response(
        {"error": "reload_refused", "message": result.reason, "reload": image}, status=409
    )
