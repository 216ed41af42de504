"""Reservations: list, show, and (for a principal with ``write``) add, edit and remove.

A form goes through the API's own path: ``ddi.api.hosts.new_host`` / ``patch_fields`` read it
as the JSON body would be read, and ``Store.add_host`` / ``update_host`` / ``remove_host`` check
and write it, so a form is refused exactly where ``ddi reserve add`` is. "Preview" is the
store's dry run: the same checks, nothing written, and a refusal shown in words beside the
field it concerns. A reason is required here (the change log's why).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from ddi import __version__
from ddi.api.common import APP_KEY, MAX_REASON, write_actor
from ddi.api.hosts import new_host, patch_fields
from ddi.console.access import Viewer, viewer
from ddi.console.problems import Problem, problem_of
from ddi.errors import Invalid, NotFound
from ddi.ipam.models import Change, Host
from ddi.web import render

routes = web.RouteTableDef()

FORM_FIELDS = ("hostname", "mac", "ip", "ip6", "boot")
"""What the form edits; the rest of a host (client ids, DHCP options) stays the CLI's."""
MAX_FIELD = 256
_C = TypeVar("_C", Change, Change | None)
MAX_ROWS = 500
"""Reservations a listing shows; the page says when the filter would show more."""


def _sorted(hosts: list[Host]) -> list[Host]:
    return sorted(hosts, key=lambda h: (h.ip is None, int(h.ip or 0), int(h.ip6 or 0),
                                        h.hostname))  # fmt: skip


async def _page(
    request: web.Request, template: str, heading: str, *, status: int = 200, **context: Any
) -> web.Response:
    values = {"heading": heading, "version": __version__, **context}
    return await render(request, template, values, status=status)


@routes.get("/reservations")
async def list_reservations(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    query = request.query.get("q", "")[:MAX_FIELD].strip().lower()
    hosts = [
        h for h in _sorted(list(site.index.hosts()))
        if not query or query in " ".join(str(v) for v in (h.hostname, h.mac, h.ip, h.ip6)
                                          if v).lower()
    ]  # fmt: skip
    notice = "Reservation removed." if request.query.get("done") == "removed" else ""
    return await _page(request, "reservations.html", "Reservations", hosts=hosts[:MAX_ROWS],
                       total=len(hosts), query=query,
                 who=await viewer(request), notice=notice)  # fmt: skip


async def _form(request: web.Request) -> tuple[dict[str, str], str, str]:
    """The posted fields (bounded), the action (``preview`` or ``save``) and the reason."""
    posted = await request.post()
    fields: dict[str, str] = {}
    for name in FORM_FIELDS:
        value = posted.get(name, "")
        fields[name] = value.strip()[:MAX_FIELD] if isinstance(value, str) else ""
    action = posted.get("action", "preview")
    reason = posted.get("reason", "")
    reason = reason.strip() if isinstance(reason, str) else ""
    return fields, "save" if action == "save" else "preview", reason


def _check_reason(reason: str) -> None:
    if not reason:
        raise Invalid("reason", "", "a reason is required: it is kept in the change log")
    if len(reason) > MAX_REASON:
        raise Invalid("reason", reason[:32] + "...", f"at most {MAX_REASON} characters")


async def _editor(
    request: web.Request,
    who: Viewer,
    *,
    heading: str,
    action_path: str,
    fields: dict[str, str],
    reason: str = "",
    problem: Problem | None = None,
    preview: Change | None = None,
    host: Host | None = None,
    status: int = 200,
) -> web.Response:
    profiles = sorted(request.app[APP_KEY].site.config.boot.profiles)
    return await _page(
        request, "reservation_form.html", heading, who=who, action_path=action_path,
        fields=fields, reason=reason, problem=problem, preview=preview, host=host,
        profiles=profiles, status=status,
    )  # fmt: skip


async def _submit(
    request: web.Request,
    who: Viewer,
    action: str,
    form: dict[str, Any],
    write: Callable[[bool], Awaitable[_C]],
) -> _C | web.Response:
    """``write(dry_run)`` for a posted form: the change once saved, or the form (``form`` is
    what ``_editor`` shows) back with the store's refusal beside its field, or with the
    preview."""
    try:
        _check_reason(form.get("reason", ""))
        change = await write(action != "save")
    except Exception as exc:
        problem = problem_of(exc)
        if problem is None:
            raise
        status = 422 if problem.field else 409
        return await _editor(request, who, **form, problem=problem, status=status)
    if action != "save":
        return await _editor(request, who, **form, preview=change)
    return change


async def _refused(request: web.Request, who: Viewer) -> web.Response | None:
    """A page saying so (403) when ``who`` may not write; None when it may. (The auth
    middleware refuses such a POST before it gets here; this is for the form pages.)"""
    if who.can_write:
        return None
    problem = Problem(
        title="Read only",
        message=f"{who.name} may read but not change reservations: this needs a token with "
        "the write scope.",
    )
    return await _page(request, "reservation.html", "Reservations", host=None, problem=problem,
                       who=who, notice="", status=403)  # fmt: skip


@routes.get("/reservations/new")
async def new_form(request: web.Request) -> web.Response:
    who = await viewer(request)
    if (refusal := await _refused(request, who)) is not None:
        return refusal
    fields = dict.fromkeys(FORM_FIELDS, "")
    return await _editor(request, who, heading="Add a reservation", action_path="/reservations/new",
                   fields=fields)  # fmt: skip


@routes.post("/reservations/new")
async def add(request: web.Request) -> web.Response:
    who = await viewer(request)
    if (refusal := await _refused(request, who)) is not None:
        return refusal
    site = request.app[APP_KEY].site
    fields, action, reason = await _form(request)
    body: dict[str, Any] = {k: v for k, v in fields.items() if v}
    form = {"heading": "Add a reservation", "action_path": "/reservations/new",
            "fields": fields, "reason": reason}  # fmt: skip

    async def write(dry_run: bool) -> Change:
        host = new_host(site.config, body)
        actor = write_actor(request, None)
        return await site.store.add_host(host, actor=actor, reason=reason, dry_run=dry_run)

    done = await _submit(request, who, action, form, write)
    if isinstance(done, web.Response):
        return done
    raise web.HTTPSeeOther(f"/reservations/{done.object_id}?done=added")


async def _find(request: web.Request) -> Host | web.Response:
    """The reservation the path names, or the page saying there is none (404)."""
    try:
        return await request.app[APP_KEY].site.store.find_host(
            request.match_info["key"][:MAX_FIELD]
        )
    except NotFound as exc:
        return await _page(request, "reservation.html", "Reservation", host=None,
                           problem=problem_of(exc), who=await viewer(request), notice="",
                           status=404)  # fmt: skip


@routes.get("/reservations/{key}")
async def show(request: web.Request) -> web.Response:
    host = await _find(request)
    if isinstance(host, web.Response):
        return host
    done = request.query.get("done", "")
    notice = {"added": "Reservation added.", "saved": "Reservation saved."}.get(done, "")
    return await _page(request, "reservation.html", f"Reservation {host.hostname}", host=host,
                 problem=None, who=await viewer(request), notice=notice)  # fmt: skip


def _current(host: Host) -> dict[str, str]:
    return {name: "" if getattr(host, name) is None else str(getattr(host, name))
            for name in FORM_FIELDS}  # fmt: skip


@routes.get("/reservations/{key}/edit")
async def edit_form(request: web.Request) -> web.Response:
    who = await viewer(request)
    if (refusal := await _refused(request, who)) is not None:
        return refusal
    host = await _find(request)
    if isinstance(host, web.Response):
        return host
    return await _editor(request, who, heading=f"Edit {host.hostname}",
                   action_path=f"/reservations/{host.id}/edit", fields=_current(host),
                   host=host)  # fmt: skip


@routes.post("/reservations/{key}/edit")
async def edit(request: web.Request) -> web.Response:
    who = await viewer(request)
    if (refusal := await _refused(request, who)) is not None:
        return refusal
    site = request.app[APP_KEY].site
    host = await _find(request)
    if isinstance(host, web.Response):
        return host
    fields, action, reason = await _form(request)
    before = _current(host)
    # Only what changed; an emptied box clears that field (null in the API's PATCH).
    changed: dict[str, Any] = {k: (v or None) for k, v in fields.items() if v != before[k]}
    heading = f"Edit {host.hostname}"
    path = f"/reservations/{host.id}/edit"
    if not changed:
        return await _editor(request, who, heading=heading, action_path=path, fields=fields,
                       reason=reason, host=host,
                       problem=Problem(title="Nothing to save",
                                       message="The form holds the reservation's current "
                                       "values."))  # fmt: skip
    form = {"heading": heading, "action_path": path, "fields": fields, "reason": reason,
            "host": host}  # fmt: skip

    async def write(dry_run: bool) -> Change | None:
        return await site.store.update_host(
            host.id, patch_fields(site.config, changed), actor=write_actor(request, None),
            reason=reason, dry_run=dry_run,
        )  # fmt: skip

    done = await _submit(request, who, action, form, write)
    if isinstance(done, web.Response):
        return done
    raise web.HTTPSeeOther(f"/reservations/{host.id}?done=saved")


@routes.post("/reservations/{key}/remove")
async def remove(request: web.Request) -> web.Response:
    who = await viewer(request)
    if (refusal := await _refused(request, who)) is not None:
        return refusal
    site = request.app[APP_KEY].site
    host = await _find(request)
    if isinstance(host, web.Response):
        return host
    _, action, reason = await _form(request)
    try:
        _check_reason(reason)
        change = await site.store.remove_host(
            host.id, actor=write_actor(request, None), reason=reason, dry_run=action != "save"
        )
    except Exception as exc:
        problem = problem_of(exc)
        if problem is None:
            raise
        return await _page(request, "reservation.html", f"Reservation {host.hostname}", host=host,
                     problem=problem, who=who, notice="", status=422)  # fmt: skip
    if action != "save":
        return await _page(request, "reservation.html", f"Reservation {host.hostname}", host=host,
                     problem=None, who=who, notice="", removal=change, reason=reason)  # fmt: skip
    raise web.HTTPSeeOther("/reservations?done=removed")
