"""Reservations (host objects): ``/v1/hosts``.

* ``GET    /v1/hosts``        → ``{"hosts": [image, …]}`` by IP
* ``GET    /v1/hosts/{key}``  → ``{"host": image}``; key = id, MAC, client-id, IP, IPv6
  address, DUID or hostname
* ``POST   /v1/hosts``        ← ``{mac?, client_id?, circuit_id?, duid?, ip?, ip6?, hostname,
  boot?, boot_file?, boot_script?, dhcp?, actor, reason, dry_run}`` (``ip``, ``ip6`` or both: a
  dual-stack host is one object) → 201 ``{"change", "host", "dry_run"}`` (200 on a dry run)
* ``PATCH  /v1/hosts/{key}``  ← ``{"fields": {name: value|null}, actor, reason, dry_run}``
  → ``{"change", "host", "before", "dry_run"}``; when the fields already hold these values
  nothing is written: ``{"change": null, "host": <current image>, "dry_run"}``

``dhcp`` is the host's own DHCP options, in their image form: ``{"lease_time": 600,
"gateway": IP, "dns_servers": [IP], "domain": NAME, "mtu": 1400, "routes": [{"destination":
"10.0.0.0/8", "gateway": IP}], "ntp_servers": [IP], "options": [{"name": "tftp-server-address",
"value": "198.18.0.5"}]}``, each key optional (absent: the subnet's). ``options`` are given by
name (or ``code``) and ``value`` and stored encoded by the daemon's definitions, as ``{"code",
"data" (hex), "name"}``.
In a PATCH, ``fields.dhcp`` is merged into the host's: a key set to null returns that option to
the subnet's, and ``"dhcp": null`` returns them all.
* ``DELETE /v1/hosts/{key}``  ← ``{actor, reason, dry_run}``
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ddi.api.common import APP_KEY, BadRequest, WriteArgs, change_response, read_body, text
from ddi.config import Config
from ddi.dhcp.option_defs import OptionDefs, OptionError, make_value
from ddi.errors import Invalid
from ddi.ipam import validate
from ddi.ipam.models import Host
from ddi.ipam.validate6 import parse_ipv6

routes = web.RouteTableDef()

MUTABLE = (
    "ip",
    "ip6",
    "hostname",
    "mac",
    "client_id",
    "circuit_id",
    "duid",
    "boot",
    "boot_file",
    "boot_script",
)
"""Fields a write may carry. The store validates and normalises each (MAC case and
separators, hostname label rules, ...) and raises Invalid naming the field."""


def _check_boot(config: Config, fields: dict[str, Any]) -> None:
    """A reservation made here may only name a boot profile the config defines."""
    profile = fields.get("boot")
    profiles = config.boot.profiles
    if profile and profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none are defined"
        raise Invalid("boot", profile, f"no such boot profile ({known})")


def _dhcp_object(config: Config, value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise BadRequest("dhcp must be an object or null", field="dhcp")
    if value is not None and isinstance(value.get("options"), list):
        defs = OptionDefs(config.dhcp.option_defs)
        value = {**value, "options": [_encoded(defs, o) for o in value["options"]]}
    result: dict[str, Any] | None = value
    return result


def _encoded(defs: OptionDefs, item: Any) -> Any:
    """``{"name" or "code", "value"}`` encoded by the daemon's definitions; anything else is
    left to the store's check (``{"code", "data"}`` as a host image holds it)."""
    if not isinstance(item, dict) or "value" not in item:
        return item
    if set(item) - {"name", "code", "value", "always_send"}:
        raise Invalid("options", str(item)[:80], "expected name (or code) and value")
    key = item.get("name", item.get("code"))
    if not isinstance(key, str | int) or isinstance(key, bool):
        raise Invalid("options", str(item)[:80], "expected name (or code) and value")
    try:
        option = make_value(defs, key, item["value"], always_send=bool(item.get("always_send")))
    except OptionError as exc:
        raise Invalid("options", f"{key}={str(item['value'])[:60]}", str(exc)) from None
    return option.to_image()


def _host_order(host: Host) -> tuple[int, int, int, str]:
    """By IPv4 address, then IPv6-only hosts by IPv6 address."""
    ip, ip6 = host.ip, host.ip6
    return (ip is None, int(ip or 0), int(ip6 or 0), host.hostname)


def _sorted_hosts(hosts: list[Host]) -> list[dict[str, Any]]:
    return [h.to_image() for h in sorted(hosts, key=_host_order)]


@routes.get("/v1/hosts")
async def list_hosts(request: web.Request) -> web.Response:
    hosts = await request.app[APP_KEY].site.store.hosts()
    return web.json_response({"hosts": _sorted_hosts(hosts)})


@routes.get("/v1/hosts/{key}")
async def show_host(request: web.Request) -> web.Response:
    host = await request.app[APP_KEY].site.store.find_host(request.match_info["key"])
    return web.json_response({"host": host.to_image()})


def new_host(config: Config, body: dict[str, Any]) -> Host:
    """The host a ``POST /v1/hosts`` body describes (the site console's form too), before the
    store's own checks. Raises BadRequest or Invalid naming the field."""
    unknown = set(body) - {*MUTABLE, "dhcp", "actor", "reason", "dry_run"}
    if unknown:
        raise BadRequest(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    values: dict[str, Any] = {}
    for name in MUTABLE:
        raw = text(body, name, required=name == "hostname")
        if raw is not None:
            values[name] = raw
    _check_boot(config, values)
    if "ip" not in values and "ip6" not in values:
        raise BadRequest("give ip, ip6 or both", field="ip")
    if "ip" in values:
        values["ip"] = validate.parse_ipv4(values["ip"])
    if "ip6" in values:
        values["ip6"] = parse_ipv6(values["ip6"])
    return Host(id="", dhcp=validate.parse_host_dhcp(_dhcp_object(config, body.get("dhcp"))),
                **values)  # fmt: skip


def patch_fields(config: Config, fields: Any) -> dict[str, Any]:
    """The ``fields`` of a ``PATCH /v1/hosts/{key}`` body (the site console's form too),
    checked as far as the API checks them before the store. Raises BadRequest or Invalid."""
    if not isinstance(fields, dict) or not fields:
        raise BadRequest("fields must be a non-empty object", field="fields")
    for name, value in fields.items():
        if name == "dhcp":
            fields[name] = _dhcp_object(config, value)
        elif value is not None and not isinstance(value, str):
            raise BadRequest(f"fields.{name} must be a string or null", field=name)
    _check_boot(config, fields)
    return fields


@routes.post("/v1/hosts")
async def add_host(request: web.Request) -> web.Response:
    body = await read_body(request)
    args = WriteArgs(request, body)
    host = new_host(request.app[APP_KEY].site.config, body)
    change = await request.app[APP_KEY].site.store.add_host(
        host, actor=args.actor, reason=args.reason, dry_run=args.dry_run
    )
    return change_response(change, status=200 if args.dry_run else 201, host=change.image)


@routes.patch("/v1/hosts/{key}")
async def update_host(request: web.Request) -> web.Response:
    body = await read_body(request)
    args = WriteArgs(request, body)
    fields = patch_fields(request.app[APP_KEY].site.config, body.get("fields"))
    store = request.app[APP_KEY].site.store
    before = await store.find_host(request.match_info["key"])
    change = await store.update_host(
        before.id, fields, actor=args.actor, reason=args.reason, dry_run=args.dry_run
    )
    if change is None:
        return web.json_response(
            {"change": None, "host": before.to_image(), "dry_run": args.dry_run}
        )
    return change_response(change, host=change.image, before=before.to_image())


@routes.delete("/v1/hosts/{key}")
async def remove_host(request: web.Request) -> web.Response:
    body = await read_body(request)
    args = WriteArgs(request, body)
    change = await request.app[APP_KEY].site.store.remove_host(
        request.match_info["key"], actor=args.actor, reason=args.reason, dry_run=args.dry_run
    )
    return change_response(change, host=change.image)
