"""The change log: ``GET /v1/changes`` → ``{"changes": [image, …], "last_seq"}``, oldest first.

Query parameters, each optional, all of them combined:

* ``after=N``: entries with seq > N (default 0), the first ``limit`` of them
* ``latest=1``: instead of ``after``, the latest ``limit`` matches (still oldest first)
* ``limit=N`` (1-10000, default 1000)
* ``kind=host,lease``: one or more of subnet, host, lease, record
* ``object=ID``: the object's id (a lease's is its address)
* ``actor=NAME``, ``op=upsert|delete``
* ``since=T``, ``until=T``: Unix seconds, ``since <= time < until``
* ``subject=IP|MAC|HOSTNAME``: entries whose object has that address, MAC or hostname (what
  ``ddi lease history`` asks)
"""

from __future__ import annotations

from aiohttp import web

from ddi.api.common import APP_KEY, BadRequest, query_int
from ddi.ipam.change_query import MAX_LIMIT, ChangeQuery, kinds_of, subject_filter
from ddi.ipam.models import Op

routes = web.RouteTableDef()

_MAX_TEXT = 256


def _text(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is not None and (not value or len(value) > _MAX_TEXT):
        raise BadRequest(f"{name} must be 1 to {_MAX_TEXT} characters", field=name)
    return value


def _time(request: web.Request, name: str) -> float | None:
    if name not in request.query:
        return None
    return float(query_int(request, name, 0, lo=0, hi=2**40))


def query_from(request: web.Request) -> ChangeQuery:
    """The :class:`ChangeQuery` the parameters describe. Raises BadRequest or Invalid."""
    op = _text(request, "op")
    if op is not None and op not in (o.value for o in Op):
        raise BadRequest("op must be upsert or delete", field="op")
    kind = _text(request, "kind")
    subject = _text(request, "subject")
    after = query_int(request, "after", 0, lo=0, hi=2**63 - 1)
    latest = query_int(request, "latest", 0, lo=0, hi=1)
    return ChangeQuery(
        kinds=kinds_of(kind.split(",")) if kind else (),
        object_id=_text(request, "object"),
        actor=_text(request, "actor"),
        op=None if op is None else Op(op),
        since=_time(request, "since"),
        until=_time(request, "until"),
        subject=None if subject is None else subject_filter(subject),
        after=None if latest else after,
        limit=query_int(request, "limit", 1000, lo=1, hi=MAX_LIMIT),
    )


@routes.get("/v1/changes")
async def list_changes(request: web.Request) -> web.Response:
    store = request.app[APP_KEY].site.store
    query = query_from(request)
    if query == ChangeQuery(after=query.after, limit=query.limit) and query.after is not None:
        # No filter: the outbox read the sync agent and older CLIs make.
        entries = await store.changes(after=query.after, limit=query.limit)
    else:
        entries = await store.find_changes(query)
    return web.json_response(
        {"changes": [c.to_image() for c in entries], "last_seq": await store.last_seq()}
    )
