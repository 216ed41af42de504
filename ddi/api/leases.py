"""DHCP leases: ``/v1/leases``.

* ``GET  /v1/leases[?subnet=NAME][&state=STATE]`` → ``{"leases": [image, …]}`` by IP
* ``GET  /v1/leases/{key}`` → ``{"leases": [image, …]}``: key is an IP (that address's lease) or
  a MAC / client-id (every lease the client has had, the bound ones first)
* ``GET  /v1/leases6[?subnet=NAME][&state=STATE]`` → ``{"leases": [image, …]}``: DHCPv6 leases
  (IA_NA addresses and IA_PD prefixes) by kind and prefix
* ``POST /v1/leases/{ip}/release`` ← ``{actor, reason, dry_run}`` → ``{"change", "lease",
  "dry_run"}``: the bound lease ends now and its address returns to the pool
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from aiohttp import web

from ddi.api.common import APP_KEY, BadRequest, WriteArgs, change_response, read_body
from ddi.errors import Invalid, NotFound
from ddi.ipam import validate
from ddi.ipam.models import Lease, LeaseState

routes = web.RouteTableDef()


def _images(leases: list[Lease]) -> list[dict[str, Any]]:
    return [x.to_image() for x in sorted(leases, key=lambda x: x.ip)]


@routes.get("/v1/leases")
async def list_leases(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    leases = await site.store.leases()
    subnet = request.query.get("subnet")
    if subnet is not None:
        if site.index.subnet(subnet) is None:
            raise NotFound("subnet", subnet)
        leases = [x for x in leases if x.subnet == subnet]
    state = request.query.get("state")
    if state is not None:
        try:
            wanted = LeaseState(state)
        except ValueError:
            states = ", ".join(s.value for s in LeaseState)
            raise BadRequest(f"state must be one of {states}", field="state") from None
        leases = [x for x in leases if x.state is wanted]
    return web.json_response({"leases": _images(leases)})


def _state_filter(request: web.Request) -> LeaseState | None:
    state = request.query.get("state")
    if state is None:
        return None
    try:
        return LeaseState(state)
    except ValueError:
        states = ", ".join(s.value for s in LeaseState)
        raise BadRequest(f"state must be one of {states}", field="state") from None


@routes.get("/v1/leases6")
async def list_leases6(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    leases = list(site.index.leases6())
    subnet = request.query.get("subnet")
    if subnet is not None:
        if site.index.subnet6(subnet) is None:
            raise NotFound("subnet6", subnet)
        leases = [x for x in leases if x.subnet == subnet]
    wanted = _state_filter(request)
    if wanted is not None:
        leases = [x for x in leases if x.state is wanted]
    leases.sort(key=lambda x: (x.kind.value, x.prefix))
    return web.json_response({"leases": [x.to_image() for x in leases]})


@routes.get("/v1/leases/{key}")
async def show_leases(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    key = request.match_info["key"]
    try:
        ip = IPv4Address(key.strip())
    except ValueError:
        ip = None
    if ip is not None:
        lease = await site.store.lease(ip)
        if lease is None:
            raise NotFound("lease", key)
        return web.json_response({"leases": [lease.to_image()]})
    try:
        mac: str | None = validate.parse_mac(key)
    except Invalid:
        mac = None
    client_id = validate.parse_client_id(key)
    found = [
        x
        for x in await site.store.leases()
        if (mac is not None and x.mac == mac) or x.client_id == client_id
    ]
    if not found:
        raise NotFound("lease", key)
    found.sort(key=lambda x: (x.state is not LeaseState.BOUND, -x.end))
    return web.json_response({"leases": [x.to_image() for x in found]})


@routes.post("/v1/leases/{ip}/release")
async def release_lease(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    body = await read_body(request)
    args = WriteArgs(request, body)
    unknown = set(body) - {"actor", "reason", "dry_run"}
    if unknown:
        raise BadRequest(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    ip = validate.parse_ipv4(request.match_info["ip"])
    change = await site.store.release_lease(
        ip, actor=args.actor, reason=args.reason, dry_run=args.dry_run
    )
    return change_response(change, lease=change.image)
