"""The site console: server-rendered pages on the admin API's listeners (``/`` and below,
``/static/``), answering an operator's questions from a browser (README "Site console").

``ddi.api.build_app`` calls :func:`setup` once per listener. The pages read the running daemon
as the API does (``request.app[APP_KEY]``) and write through the same store paths; who may
see the write forms is :mod:`ddi.console.access`'s question.
"""

from __future__ import annotations

from aiohttp import web

from ddi.api.principal import request_principal
from ddi.console import access, history, pages, reservations
from ddi.console.access import viewer
from ddi.web import NavItem, add_context
from ddi.web import setup as setup_web

NAV = (
    NavItem(path="/", label="Overview"),
    NavItem(path="/subnets", label="Subnets"),
    NavItem(path="/leases", label="Leases"),
    NavItem(path="/reservations", label="Reservations"),
    NavItem(path="/changes", label="Change log"),
    NavItem(path="/dns", label="DNS"),
    NavItem(path="/boot", label="Netboot"),
)


async def _principal(request: web.Request) -> dict[str, object]:
    if request_principal(request) is None:  # the login page, before anyone signed in
        return {"principal": None, "csrf": "", "logout_path": ""}
    who = await viewer(request)
    return {"principal": who, "csrf": who.csrf, "logout_path": "/logout" if who.signed_in else ""}


def setup(app: web.Application, *, interval: float = history.INTERVAL) -> None:
    """Serve the console on ``app`` (whose ``APP_KEY`` is set before it starts)."""
    setup_web(app, package=__name__, product="ddi site console", nav=NAV)
    add_context(app, _principal)
    app.add_routes(access.routes)
    app.add_routes(pages.routes)
    app.add_routes(reservations.routes)
    history.attach(app, interval=interval)
