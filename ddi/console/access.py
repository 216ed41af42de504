"""Who is looking at the console, whether they may write, and the login and logout pages.

The admin API's auth middleware (``ddi.api.auth``) decides who a request is and refuses what
its principal may not do; the console only asks, to show or hide the write forms (a hidden
form is a courtesy: the middleware refuses a read principal's POST whatever the page showed,
and a session's POST without its CSRF value).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ddi import __version__
from ddi.api.auth import local_target, login, logout, principal
from ddi.web import render

routes = web.RouteTableDef()

MAX_SECRET = 512
"""Characters of a token typed into the login form; no token of ours is longer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Viewer:
    name: str
    scope: str
    """The widest scope held, as the header shows it (``write``, ``read``, ...)."""
    can_write: bool
    csrf: str
    """The session's CSRF value for the forms ("" without a session: a bearer header or the
    unix socket, where no cookie rides along)."""
    signed_in: bool
    """A console session (the header then offers Sign out)."""


async def viewer(request: web.Request) -> Viewer:
    who = principal(request)
    scope = next((s for s in ("write", "read", "metrics") if who.allows(s)), "none")
    return Viewer(
        name=who.name, scope=scope, can_write=who.allows("write"),
        csrf="" if who.session is None else who.session.csrf,
        signed_in=who.session is not None,
    )  # fmt: skip


async def _login_page(
    request: web.Request, *, next_path: str, problem: str = "", status: int = 200
) -> web.Response:
    return await render(
        request, "login.html",
        {"heading": "Sign in", "version": __version__, "next_path": next_path,
         "problem": problem, "principal": None, "csrf": ""},
        status=status,
    )  # fmt: skip


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    return await _login_page(request, next_path=local_target(request.query.get("next", "/")))


@routes.post("/login")
async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    secret = form.get("token", "")
    target = form.get("next", "/")
    next_path = local_target(target if isinstance(target, str) else "/")
    if isinstance(secret, str) and len(secret) <= MAX_SECRET:
        done = login(request, secret.strip(), location=next_path)
        if done is not None:
            return done
    return await _login_page(
        request, next_path=next_path, status=401,
        problem="That is not a token this site accepts for the console (a read or write "
        "token; a metrics token has no console).",
    )  # fmt: skip


@routes.post("/logout")
async def logout_submit(request: web.Request) -> web.Response:
    return logout(request)
