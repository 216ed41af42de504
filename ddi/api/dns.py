"""Static DNS records and zone state: ``/v1/dns/…``.

* ``GET    /v1/dns/records``       → ``{"records": [image, …]}`` by name, type, value
* ``POST   /v1/dns/records``       ← ``{name, rtype, value, ttl?, actor, reason, dry_run}``
  → 201 ``{"change", "record", "dry_run"}`` (200 on a dry run). ``name`` follows zone-file
  rules with the site domain as origin (``ddi.ipam.validate.zone_name``): ``@`` is the domain,
  ``_ldap._tcp`` is relative, ``host.other.example.`` (trailing dot) absolute; a name already
  ending in the site domain is taken as written.
* ``DELETE /v1/dns/records/{id}``  ← ``{actor, reason, dry_run}`` → ``{"change", "dry_run"}``
* ``GET    /v1/dns/zones``         → ``{"zones": [{"zone", "serial"}], "running": bool}``
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ddi.api.common import APP_KEY, BadRequest, WriteArgs, change_response, read_body, text
from ddi.ipam.models import Record
from ddi.ipam.validate import zone_name

routes = web.RouteTableDef()

FIELDS = ("name", "rtype", "value", "ttl")


@routes.get("/v1/dns/records")
async def list_records(request: web.Request) -> web.Response:
    records = await request.app[APP_KEY].site.store.records()
    return web.json_response({"records": [r.to_image() for r in records]})


@routes.post("/v1/dns/records")
async def add_record(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    body = await read_body(request)
    args = WriteArgs(request, body)
    unknown = set(body) - {*FIELDS, "actor", "reason", "dry_run"}
    if unknown:
        first = sorted(unknown)[0]
        raise BadRequest(f"unknown field {first!r}", field=first)
    name = text(body, "name", required=True) or ""
    rtype = text(body, "rtype", required=True) or ""
    value = text(body, "value", required=True) or ""
    ttl: Any = body.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int)):
        raise BadRequest("ttl must be an integer", field="ttl")
    record = Record(
        id="",
        name=zone_name(name, site.config.site.domain),
        rtype=rtype.upper(),
        value=value,
        ttl=ttl,
    )
    change = await site.store.add_record(
        record, actor=args.actor, reason=args.reason, dry_run=args.dry_run
    )
    return change_response(change, status=200 if args.dry_run else 201, record=change.image)


@routes.delete("/v1/dns/records/{id}")
async def remove_record(request: web.Request) -> web.Response:
    body = await read_body(request)
    args = WriteArgs(request, body)
    change = await request.app[APP_KEY].site.store.remove_record(
        request.match_info["id"], actor=args.actor, reason=args.reason, dry_run=args.dry_run
    )
    return change_response(change, record=change.image)


@routes.get("/v1/dns/zones")
async def zones(request: web.Request) -> web.Response:
    server = request.app[APP_KEY].services.get("dns")
    if server is None:
        return web.json_response({"zones": [], "running": False})
    stats = server.statistics()
    serials = stats.get("zones", {})
    listing = [{"zone": origin, "serial": serial} for origin, serial in sorted(serials.items())]
    return web.json_response({"zones": listing, "running": True})
