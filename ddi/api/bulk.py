"""Bulk import: ``POST /v1/import`` ← ``{"hosts": [...], "leases": [...], "records": [...],
actor, reason, dry_run}`` → ``{"added", "changed", "unchanged", "skipped", "refused",
"dry_run", "applied"}``, each a list of ``{"source", "kind", "key", "what"}``.

One request, one transaction: every item is written, or, when any is refused, none (answered
409 with the same body, ``applied`` false). The items' fields (``ddi.migrate.items``):

* host: ``{source, ip, hostname, mac?, client_id?, lease_time?}``
* lease: ``{source, ip, mac, start, end, client_id?, hostname?}`` (Unix seconds; start 0: now)
* record: ``{source, name, rtype, value, ttl?}`` (a name without a dot is under the site domain)

The body may be up to :data:`MAX_BULK_BODY` bytes (the other routes take 1 MiB) and hold up to
:data:`~ddi.migrate.limits.MAX_ITEMS` items.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ddi.api.common import APP_KEY, MAX_DEPTH, BadRequest, WriteArgs
from ddi.migrate.items import HostItem, LeaseItem, RecordItem
from ddi.migrate.limits import MAX_ITEMS

routes = web.RouteTableDef()

MAX_BULK_BODY = 64 * 1024 * 1024
"""Bytes of an import request: 200,000 reservations at about 150 bytes each, with room."""
_MAX_TEXT = 1024

_FIELDS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    # field: (types, required)
    "hosts": {
        "source": ((str,), True),
        "ip": ((str,), True),
        "hostname": ((str,), True),
        "mac": ((str, type(None)), False),
        "client_id": ((str, type(None)), False),
        "lease_time": ((int, type(None)), False),
    },
    "leases": {
        "source": ((str,), True),
        "ip": ((str,), True),
        "mac": ((str, type(None)), True),
        "start": ((int, float), True),
        "end": ((int, float), True),
        "client_id": ((str, type(None)), False),
        "hostname": ((str, type(None)), False),
    },
    "records": {
        "source": ((str,), True),
        "name": ((str,), True),
        "rtype": ((str,), True),
        "value": ((str,), True),
        "ttl": ((int, type(None)), False),
    },
}


async def _read_large_body(request: web.Request) -> dict[str, Any]:
    """The JSON object body, up to :data:`MAX_BULK_BODY` bytes (read in chunks, refused as
    soon as it passes the bound)."""
    if request.content_length is not None and request.content_length > MAX_BULK_BODY:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_BULK_BODY, actual_size=request.content_length
        )
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(1 << 20):
        size += len(chunk)
        if size > MAX_BULK_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BULK_BODY, actual_size=size)
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks)) if chunks else {}
    except RecursionError:
        raise BadRequest(f"body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _item(kind: str, index: int, raw: Any) -> HostItem | LeaseItem | RecordItem:
    where = f"{kind}[{index}]"
    if not isinstance(raw, Mapping):
        raise BadRequest(f"{where} must be an object", field=kind)
    fields = _FIELDS[kind]
    for name in raw:
        if name not in fields:
            raise BadRequest(f"{where}: unknown field {name!r}", field=name)
    for name, (types, required) in fields.items():
        if name not in raw:
            if required:
                raise BadRequest(f"{where}: {name} is required", field=name)
            continue
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise BadRequest(f"{where}: {name} has the wrong type", field=name)
        if isinstance(value, str) and len(value) > _MAX_TEXT:
            raise BadRequest(f"{where}: {name} longer than {_MAX_TEXT}", field=name)
        if isinstance(value, int | float) and not -(2**53) <= value <= 2**53:
            raise BadRequest(f"{where}: {name} out of range", field=name)
    if kind == "hosts":
        return HostItem(**raw)
    if kind == "leases":
        return LeaseItem(**{**raw, "start": float(raw["start"]), "end": float(raw["end"])})
    return RecordItem(**raw)


@routes.post("/v1/import")
async def bulk_import(request: web.Request) -> web.Response:
    body = await _read_large_body(request)
    args = WriteArgs(request, body)
    unknown = set(body) - {*_FIELDS, "actor", "reason", "dry_run"}
    if unknown:
        raise BadRequest(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    items: dict[str, list[Any]] = {}
    total = 0
    for kind in _FIELDS:
        raw = body.get(kind) or []
        if not isinstance(raw, list):
            raise BadRequest(f"{kind} must be a list", field=kind)
        total += len(raw)
        if total > MAX_ITEMS:
            raise BadRequest(f"more than {MAX_ITEMS} items in one import", field=kind)
        items[kind] = [_item(kind, i, entry) for i, entry in enumerate(raw)]
    plan = await request.app[APP_KEY].site.store.import_items(
        hosts=items["hosts"],
        leases=items["leases"],
        records=items["records"],
        actor=args.actor,
        reason=args.reason,
        dry_run=args.dry_run,
    )
    applied = not plan.refused and not args.dry_run
    answer = {**plan.to_image(), "dry_run": args.dry_run, "applied": applied}
    if plan.refused and not args.dry_run:
        count = len(plan.refused)
        answer.update(error="conflict", message=f"{count} refused; nothing written")
        return web.json_response(answer, status=409)
    return web.json_response(answer)
