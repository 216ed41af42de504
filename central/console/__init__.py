"""The fleet console: server-rendered pages on ``ddi-central``'s listener (``ddi.web`` layout).

Pages (``read``; a token narrowed to some sites sees only those, and 403 on the others):

* ``/``                   every site: link state, last heard from, backlog age, epoch,
                          open conflicts, hosts and leases (``central.console.fleet`` says how
                          each is worked out)
* ``/sites/{site}``       one site's objects from the collector (``?kind=host&q=...``)
* ``/conflicts``          conflicts the sites reported, each explained with its fix
* ``/search?q=``          where a MAC, an IP address or a name is, over every visible site
* ``/login``, ``/logout`` a token's secret for a session cookie (``ddi.web.sessions``)

A request may also carry ``Authorization: Bearer`` (scripts, curl). With no credentials
configured (loopback only) the pages are open, as the JSON reads are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from central import auth
from central.console import fleet, reads
from central.store import CentralStore
from ddi import web as layout
from ddi.errors import Invalid
from ddi.tokens import SCOPES, Token
from ddi.web import sessions

log = logging.getLogger(__name__)

TOKEN = web.RequestKey("fleet_token", Token)

NAV = (
    layout.NavItem(path="/", label="Sites"),
    layout.NavItem(path="/conflicts", label="Conflicts"),
    layout.NavItem(path="/search", label="Search"),
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Fleet:
    """What the pages need: the store, who may read, the sessions, the staleness threshold."""

    def __init__(
        self,
        *,
        store: CentralStore,
        readers: auth.Readers,
        stale_after: float,
        secure_cookies: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.readers = readers
        self.stale_after = stale_after
        self.cookie = sessions.CookieAttributes(secure=secure_cookies)
        self.sessions = sessions.Sessions(readers.current)
        self.clock = clock


STATE = web.AppKey("fleet_console", Fleet)


def mount(
    app: web.Application,
    *,
    store: CentralStore,
    readers: auth.Readers,
    stale_after: float,
    secure_cookies: bool,
) -> None:
    layout.setup(app, package=__name__, product="ddi-central fleet", nav=NAV)
    layout.add_context(app, _principal_context)
    app[STATE] = Fleet(
        store=store, readers=readers, stale_after=stale_after, secure_cookies=secure_cookies
    )
    app.router.add_get("/", _reader(overview))
    app.router.add_get("/sites/{site}", _reader(site_page))
    app.router.add_get("/conflicts", _reader(conflicts_page))
    app.router.add_get("/search", _reader(search_page))
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)


# --- who is asking ---


def _session(request: web.Request) -> sessions.Session | None:
    return request.app[STATE].sessions.get(request.cookies.get(sessions.COOKIE, ""))


def _token(request: web.Request) -> Token | None:
    fleet_ = request.app[STATE]
    if fleet_.readers.open:
        return auth.OPEN
    header = request.headers.get("Authorization")
    if header is not None:
        return fleet_.readers.bearer(header)
    session = _session(request)
    return None if session is None else session.token


def _reader(handler: Callable[[web.Request, Token], Awaitable[web.StreamResponse]]) -> Handler:
    """``handler`` for a request whose token holds ``read``; otherwise the login page (no
    token) or 403 (a token without ``read``, e.g. a metrics token)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        token = _token(request)
        if token is None:
            if "Authorization" in request.headers:
                return await _error(request, 401, "That token is not known here.")
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
        if not token.allows("read"):
            return await _error(request, 403, f"Token {token.name} may not read the fleet console.")
        request[TOKEN] = token
        return await handler(request, token)

    return guarded


async def _principal_context(request: web.Request) -> dict[str, Any]:
    token: Token | None = request.get(TOKEN)
    session = None if request.app[STATE].readers.open else _session(request)
    if token is None:
        return {"principal": None, "csrf": "", "logout_path": ""}
    top = max((SCOPES.index(s) for s in token.scopes), default=0)
    scope = SCOPES[top] + ("" if token.sites is None else f", sites {', '.join(token.sites)}")
    return {
        "principal": {"name": token.name, "scope": scope},
        "csrf": "" if session is None else session.csrf,
        "logout_path": "" if session is None else "/logout",
    }


async def _error(request: web.Request, status: int, message: str) -> web.Response:
    return await layout.render(
        request,
        "fleet_error.html",
        {
            "heading": {401: "Not signed in", 403: "Not allowed", 404: "Not found"}.get(
                status, "Refused"
            ),
            "message": message,
        },
        status=status,
    )


# --- login ---


def _see_other(target: str) -> web.Response:
    """A 303 to ``target`` that can carry a cookie (raising one would drop it)."""
    return web.Response(status=303, headers={"Location": target})


def safe_next(raw: str | None) -> str:
    """Where to go after login: a path on this server only (no ``//host`` or scheme)."""
    if raw and raw.startswith("/") and not raw.startswith("//") and len(raw) <= 2048:
        return raw
    return "/"


async def login_form(request: web.Request) -> web.Response:
    return await layout.render(
        request,
        "fleet_login.html",
        {"heading": "Sign in", "next": safe_next(request.query.get("next")), "error": None},
    )


async def login(request: web.Request) -> web.StreamResponse:
    fleet_ = request.app[STATE]
    form = await request.post()
    secret = form.get("token")
    target = safe_next(str(form.get("next", "/")))
    token = fleet_.readers.verify(secret.strip()) if isinstance(secret, str) else None
    problem = None
    if token is None:
        problem = "That token is not known here (check for a missing character)."
    elif not token.allows("read"):
        problem = f"Token {token.name} may not read the fleet console (it needs read)."
    if problem is not None or token is None:
        return await layout.render(
            request,
            "fleet_login.html",
            {
                "heading": "Sign in",
                "next": target,
                "error": {"field": "token", "message": problem},
            },
            status=401,
        )
    session = fleet_.sessions.open(token)
    log.info("console: %s signed in", token.name)
    response = _see_other(target)
    response.set_cookie(sessions.COOKIE, session.id, **fleet_.cookie.as_kwargs())
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    fleet_ = request.app[STATE]
    session = _session(request)
    if session is not None:
        form = await request.post()
        csrf = form.get(sessions.CSRF_FIELD)
        if not sessions.check_csrf(session, csrf if isinstance(csrf, str) else None):
            return await _error(request, 403, "The form was stale; reload the page and try again.")
        fleet_.sessions.close(session.id)
    response = _see_other("/login")
    response.del_cookie(sessions.COOKIE, path="/")
    return response


# --- pages ---


async def _visible(request: web.Request, token: Token) -> list[Any]:
    sites = await request.app[STATE].store.sites()
    return [s for s in sites if auth.site_visible(token, s.site)]


async def overview(request: web.Request, token: Token) -> web.Response:
    fleet_ = request.app[STATE]
    now = fleet_.clock()
    rows = await reads.overview(
        fleet_.store, await _visible(request, token), now=now, stale_after=fleet_.stale_after
    )
    return await layout.render(
        request,
        "fleet_overview.html",
        {
            "heading": "Sites",
            "rows": rows,
            "now": now,
            "stale_after": fleet.duration(fleet_.stale_after),
            "fleet": fleet,
            "counts": {
                state: sum(1 for r in rows if r.state == state) for state in fleet.LINK_TEXT
            },
        },
    )


async def site_page(request: web.Request, token: Token) -> web.Response:
    fleet_ = request.app[STATE]
    name = request.match_info["site"]
    if not auth.site_visible(token, name):
        return await _error(request, 403, f"Token {token.name} does not reach site {name}.")
    info = await fleet_.store.site(name) if len(name) <= 64 else None
    if info is None:
        return await _error(request, 404, "No such site is enrolled.")
    kind = request.query.get("kind", "host")
    if kind not in reads.OBJECT_KINDS:
        kind = "host"
    needle = request.query.get("q", "")[: fleet.MAX_TERM]
    objects, matched, total = await reads.site_objects(fleet_.store, name, kind, needle)
    now = fleet_.clock()
    row = (await reads.overview(fleet_.store, [info], now=now, stale_after=fleet_.stale_after))[0]
    return await layout.render(
        request,
        "fleet_site.html",
        {
            "heading": f"Site {name}",
            "site": name,
            "row": row,
            "now": now,
            "fleet": fleet,
            "kind": kind,
            "kinds": reads.OBJECT_KINDS,
            "q": needle,
            "objects": objects,
            "matched": matched,
            "total": total,
            "columns": _COLUMNS[kind],
        },
    )


_COLUMNS = {
    "subnet": ("name", "cidr", "gateway", "interface"),
    "subnet6": ("name", "cidr", "interface"),
    "host": ("hostname", "ip", "mac", "ip6", "owner"),
    "lease": ("ip", "mac", "hostname", "state", "end"),
    "lease6": ("prefix", "duid", "mac", "hostname", "state", "end"),
    "record": ("name", "rtype", "value", "ttl", "owner"),
}
"""The image fields each kind's table shows (every image is larger)."""


async def conflicts_page(request: web.Request, token: Token) -> web.Response:
    fleet_ = request.app[STATE]
    show_all = request.query.get("all") == "1"
    rows = [
        c
        for c in await fleet_.store.conflicts()
        if auth.site_visible(token, c["site"]) and (show_all or c["resolved_at"] is None)
    ]
    return await layout.render(
        request,
        "fleet_conflicts.html",
        {
            "heading": "Conflicts",
            "conflicts": [(c, fleet.explain(c)) for c in rows],
            "show_all": show_all,
        },
    )


async def search_page(request: web.Request, token: Token) -> web.Response:
    fleet_ = request.app[STATE]
    raw = request.query.get("q", "")
    context: dict[str, Any] = {"heading": "Search", "q": raw[: fleet.MAX_TERM], "error": None}
    if raw.strip():
        try:
            term = fleet.classify(raw)
        except Invalid as exc:
            context["error"] = {"field": "q", "message": exc.reason}
            return await layout.render(request, "fleet_search.html", context | {"found": None})
        sites = [s.site for s in await _visible(request, token)]
        found = await reads.search(fleet_.store, term, sites)
        context |= {
            "term": term,
            "found": found[: reads.MAX_RESULTS],
            "more": len(found) > reads.MAX_RESULTS,
            "sites_searched": len(sites),
        }
    else:
        context["found"] = None
    return await layout.render(request, "fleet_search.html", context)
