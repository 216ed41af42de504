"""The admin API: JSON over HTTP on the daemon's unix socket (and, optionally, on TCP behind a
bearer token). The CLI is its client.

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
(no such route)        404/405 ``{"error": "not_found"|"method_not_allowed", "message"}``
anything else (a bug)  500     ``{"error": "internal", "message"}``; logged with traceback and
                               counted in ``ddi_internal_errors_total{area="api"}``
=====================  ======  ==============================================================
"""

from __future__ import annotations

import hmac
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ddi import console, metrics
from ddi.api import boot as boot_api
from ddi.api import bulk, changes, hosts, leases, status, subnets
from ddi.api import dns as dns_api
from ddi.api import sync as sync_api
from ddi.api.common import APP_KEY, MAX_BODY, BadRequest, Daemon
from ddi.errors import Conflict, Invalid, NotFound, StoreWriteFailed
from ddi.ipam.views import IpamIndex

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
        error = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status, "http_error"
        )
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


def _token_middleware(token: str) -> Middleware:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz":
            return await handler(request)
        # The header's bytes as they came (aiohttp decodes them with surrogateescape); one that
        # is not even that is no token either.
        try:
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            given = b""
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": "unauthorized", "message": "a valid bearer token is required"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="ddi"'},
            )
        return await handler(request)

    return require_token


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


def build_app(daemon: Daemon, *, token: str | None = None) -> web.Application:
    """The aiohttp application for one listener.

    Args:
        daemon: the running daemon, reachable in handlers as ``request.app[APP_KEY]``.
        token: when given (the TCP listener), every route but ``/healthz`` requires
            ``Authorization: Bearer <token>``.
    """
    middlewares: list[Middleware] = [error_middleware]
    if token is not None:
        middlewares.append(_token_middleware(token))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
    app[APP_KEY] = daemon
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
    console.setup(app)
    return app
