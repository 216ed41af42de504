"""What the site console and the fleet console share: the base layout (``templates/base.html``),
the stylesheet (``static/``), the SVG charts (``charts``), the sample ring (``ring``), browser
sessions bound to API tokens (``sessions``) and the admin listener's certificate (``tls``).
Central imports these without importing the edge's services.

A console calls :func:`setup` once on its aiohttp application with its own template package
and navigation; its templates extend ``base.html``. Everything is served from the package (no
CDN), and every response carries a Content-Security-Policy of ``default-src 'self'``, so a page
runs no script and loads no style but the package's own.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

STATIC = Path(__file__).parent / "static"
CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
"""``default-src 'self'``, plus no framing and forms that post back to this origin only."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NavItem:
    path: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Console:
    """What the layout needs from a console: its name and navigation."""

    product: str
    nav: tuple[NavItem, ...]


CONSOLE_KEY: web.AppKey[Console] = web.AppKey("ddi.web.console")
ContextHook = Callable[[web.Request], Awaitable[Mapping[str, Any]]]
"""Extra values every page gets (the signed-in principal, the CSRF value)."""
CONTEXT_KEY: web.AppKey[list[ContextHook]] = web.AppKey("ddi.web.context")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")


async def _layout_context(request: web.Request) -> dict[str, Any]:
    console = request.app[CONSOLE_KEY]
    context: dict[str, Any] = {"console": console, "path": request.path}
    for hook in request.app[CONTEXT_KEY]:
        context.update(await hook(request))
    return context


def setup(app: web.Application, *, package: str, product: str, nav: Sequence[NavItem]) -> None:
    """Templates from ``package``'s ``templates/`` (then this package's), ``/static/``, and
    the security headers, on ``app``."""
    loader = jinja2.ChoiceLoader(
        [jinja2.PackageLoader(package, "templates"), jinja2.PackageLoader(__name__, "templates")]
    )
    env = aiohttp_jinja2.setup(
        app,
        loader=loader,
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = when
    env.filters["bytes"] = size
    app[CONSOLE_KEY] = Console(product=product, nav=tuple(nav))
    app[CONTEXT_KEY] = []
    app.router.add_static("/static/", STATIC, name="static", append_version=False)
    app.on_response_prepare.append(_security_headers)


def add_context(app: web.Application, hook: ContextHook) -> None:
    """Have every page's template get ``hook(request)``'s values too."""
    app[CONTEXT_KEY].append(hook)


async def render(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    """``template`` with the layout's values (the console, the path, every context hook's)
    and ``context``. (Not aiohttp-jinja2's context processors: they add a middleware to every
    route of the app, the JSON API's included.)"""
    values = {**await _layout_context(request), **context}
    return aiohttp_jinja2.render_template(template, request, values, status=status)


def when(at: float | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS UTC`` (``-`` for none)."""
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def size(count: float | None) -> str:
    """Bytes in binary units (``-`` for none)."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
