"""The admin API: JSON over HTTP on the daemon's unix socket (and, optionally, on TCP with TLS
behind named, scoped tokens: ``ddi.api.auth``). The CLI is its client.

Routes live under ``/v1/`` in one module per area, each exposing ``routes`` (a
``web.RouteTableDef``) and reading ``request.app[APP_KEY]``. ``/healthz`` and ``/metrics`` sit
at the top level. One middleware maps the error tree to HTTP, once:

=====================  ======  ==============================================================
raised                 status  body
=====================  ======  ==============================================================
Conflict               409     ``{"error": "conflict", "message", "field", "value", "holder"}``
NotFound               404     ``{"error": "not_found", "message", "kind", "key"}``
Invalid                422     ``{"error": "invalid", "message", "field", "value", "reason"}``
BadRequest             400     ``{"error": "bad_request", "message", "field"}``
StoreWriteFailed       503     ``{"error": "store_unavailable", "message", "cause"}``: the disk
                               refused the write (full, I/O error); nothing was written, the
                               store logged it (rate-limited); not a bug, not counted as one
(body over 1 MiB)      413     ``{"error": "http_error", "message"}``
(no or bad token)      401     ``{"error": "unauthorized", "message"}`` (TCP listener)
(scope missing)        403     ``{"error": "forbidden", "message", "scope"}``: the scope needed
(no such route)        404/405 ``{"error": "not_found"|"method_not_allowed", "message"}``
anything else (a bug)  500     ``{"error": "internal", "message"}``; logged with traceback and
                               counted in ``ddi_internal_errors_total{area="api"}``
=====================  ======  ==============================================================
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ddi import console, metrics
from ddi.api import boot as boot_api
from ddi.api import bulk, changes, hosts, leases, status, subnets
from ddi.api import dns as dns_api
from ddi.api import sync as sync_api
from ddi.api import tokens as tokens_api
from ddi.api.auth import AUTH_KEY, Authenticator, auth_middleware
from ddi.api.common import APP_KEY, MAX_BODY, BadRequest, Daemon
from ddi.errors import Conflict, Invalid, NotFound, StoreWriteFailed
from ddi.ipam.views import IpamIndex
from ddi.tokens import TokenFile

__all__ = ["APP_KEY", "BadRequest", "Daemon", "build_app"]

log = logging.getLogger(__name__)


def _error(status: int, error: str, message: str, **fields: object) -> web.Response:
    return web.json_response({"error": error, "message": message, **fields}, status=status)


def _route_label(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map the error tree to HTTP (table in the module docstring) and count every request."""
    started = time.perf_counter()
    response: web.StreamResponse
    try:
        response = await handler(request)
    except Conflict as exc:
        response = _error(
            409, "conflict", str(exc), field=exc.field, value=exc.value, holder=exc.holder
        )
    except NotFound as exc:
        response = _error(404, "not_found", str(exc), kind=exc.kind, key=exc.key)
    except Invalid as exc:
        response = _error(
            422, "invalid", str(exc), field=exc.field, value=exc.value, reason=exc.reason
        )
    except BadRequest as exc:
        response = _error(400, "bad_request", str(exc), field=exc.field)
    except StoreWriteFailed as exc:
        response = _error(503, "store_unavailable", str(exc), cause=exc.cause)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthorized",
            403: "forbidden",
        }.get(exc.status, "http_error")
        response = _error(exc.status, error, exc.reason)
    except Exception:  # the API's bug boundary (R9): log, count, answer 500
        log.exception("internal error serving %s %s", request.method, request.path)
        metrics.INTERNAL_ERRORS.labels(area="api").inc()
        response = _error(500, "internal", "internal error; the daemon log has the details")
    route = _route_label(request)
    metrics.API_REQUESTS.labels(
        method=request.method, route=route, status=str(response.status)
    ).inc()
    metrics.API_REQUEST_DURATION.labels(route=route).observe(time.perf_counter() - started)
    return response


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _refresh_metrics(index: IpamIndex) -> None:
    """Set the gauges that are cheaper to read at scrape time than to keep current."""
    metrics.STORE_OBJECTS.labels(kind="subnet").set(len(index.subnets()))
    metrics.STORE_OBJECTS.labels(kind="host").set(sum(1 for _ in index.hosts()))
    metrics.STORE_OBJECTS.labels(kind="lease").set(sum(1 for _ in index.leases()))
    metrics.STORE_OBJECTS.labels(kind="record").set(sum(1 for _ in index.records()))


async def _metrics(request: web.Request) -> web.Response:
    _refresh_metrics(request.app[APP_KEY].site.index)
    body, content_type = metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


def build_app(
    daemon: Daemon,
    *,
    token: str | None = None,
    auth: Authenticator | None = None,
    tokens: TokenFile | None = None,
) -> web.Application:
    """The aiohttp application for one listener.

    Args:
        daemon: the running daemon, reachable in handlers as ``request.app[APP_KEY]``.
        token: the legacy single token alone (no tokens file): shorthand for
            ``auth=Authenticator(tokens=None, legacy=token)``.
        auth: the TCP listener's credentials; every route then needs the scope
            ``ddi.api.auth.route_scope`` gives it. Neither: the unix socket, where the peer's
            account may do everything.
        tokens: the tokens file ``/v1/tokens`` manages (the unix socket's; default: the one
            ``auth`` reads).
    """
    if auth is None and token is not None:
        auth = Authenticator(tokens=None, legacy=token)
    middlewares: list[Middleware] = [error_middleware, auth_middleware(auth)]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
    app[APP_KEY] = daemon
    if auth is not None:
        app[AUTH_KEY] = auth
    tokens = tokens if tokens is not None else None if auth is None else auth.tokens
    if tokens is not None:
        app[tokens_api.TOKENS_KEY] = tokens
        app[tokens_api.LOCK_KEY] = asyncio.Lock()
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    # --- route modules: one line per area ---
    app.add_routes(hosts.routes)
    app.add_routes(boot_api.routes)
    app.add_routes(subnets.routes)
    app.add_routes(leases.routes)
    app.add_routes(changes.routes)
    app.add_routes(status.routes)
    app.add_routes(sync_api.routes)
    app.add_routes(dns_api.routes)
    app.add_routes(bulk.routes)
    app.add_routes(tokens_api.routes)
    console.setup(app)
    return app
