"""Who may do what on the admin API: one middleware identifies every request (``Principal``)
and checks the scope its route needs, decided in one table (``route_scope``).

* The unix socket: the peer's account (SO_PEERCRED, ``ddi.api.common``) with every scope,
  including ``local``, which only the socket has (managing tokens).
* The TCP listener: ``Authorization: Bearer <secret>`` looked up in the tokens file
  (``ddi.tokens``), or the single ``[api] token`` of earlier versions, kept for compatibility as
  a ``write`` token named ``api-token``; or, for a browser, the session cookie of a console
  login (``ddi.web.sessions``), and then an unsafe method needs the session's CSRF secret (form
  field ``csrf`` or header ``X-CSRF-Token``).

Scopes per route (first match; a route no rule names needs ``write``, so a new route cannot
be forgotten open):

=================================  =================  ========================================
method                             path               scope
=================================  =================  ========================================
GET, HEAD                          ``/healthz``       none
GET, HEAD, POST                    ``/login``         none (the console's login form)
GET, HEAD                          ``/static/...``    none (the console's static files)
GET, HEAD                          ``/metrics``       ``metrics``
any                                ``/v1/tokens...``  ``local`` (the unix socket only)
POST                               ``/logout``        ``metrics`` (any signed-in principal)
GET, HEAD                          anything else      ``read``
any other                          anything else      ``write``
=================================  =================  ========================================

Without credentials a browser (``Accept: text/html``, outside ``/v1/`` and ``/metrics``) is
sent to ``/login``; anyone else gets 401. A principal without the scope gets 403 naming it
(JSON, or a short page for a browser).
"""

from __future__ import annotations

import hmac
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ddi.api.common import TOKEN_ACTOR, UNKNOWN_PEER, on_unix_socket, peer_user
from ddi.api.principal import (
    EVERY_SCOPE,
    LOCAL,
    PRINCIPAL_KEY,
    Principal,
    request_principal,
    token_principal,
)
from ddi.errors import ConfigError
from ddi.tokens import Token, TokenFile, digest
from ddi.web.sessions import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    MAX_ID,
    CookieAttributes,
    Session,
    Sessions,
    check_csrf,
)

__all__ = [
    "AUTH_KEY",
    "LOCAL",
    "Authenticator",
    "Principal",
    "auth_middleware",
    "bearer",
    "local_target",
    "login",
    "logout",
    "principal",
    "require",
    "route_scope",
]

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_GET = frozenset({"GET", "HEAD"})
MAX_AUTHORIZATION = 512
"""Characters of an ``Authorization`` header read; a longer one holds no token of ours."""
RELOAD_EVERY = 1.0
"""Seconds between two looks at the tokens file's mtime (a stat, on an authenticated request)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    methods: frozenset[str] | None
    """None: any method."""
    path: str
    prefix: bool
    """Whether ``path`` is a prefix of the route (``/static/``) or the whole route."""
    scope: str | None
    """None: open to anyone."""

    def matches(self, method: str, route: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return route.startswith(self.path) if self.prefix else route == self.path


RULES: tuple[Rule, ...] = (
    Rule(methods=_GET, path="/healthz", prefix=False, scope=None),
    Rule(methods=_GET | {"POST"}, path="/login", prefix=False, scope=None),
    Rule(methods=_GET, path="/static/", prefix=True, scope=None),
    Rule(methods=_GET, path="/metrics", prefix=False, scope="metrics"),
    Rule(methods=None, path="/v1/tokens", prefix=True, scope=LOCAL),
    Rule(methods=frozenset({"POST"}), path="/logout", prefix=False, scope="metrics"),
    Rule(methods=_GET, path="/", prefix=True, scope="read"),
)
DEFAULT_SCOPE = "write"


def route_scope(method: str, route: str) -> str | None:
    """The scope a request needs (None: open), by its method and matched route's pattern."""
    for rule in RULES:
        if rule.matches(method, route):
            return rule.scope
    return DEFAULT_SCOPE


def _route(request: web.Request) -> str:
    """The pattern of the route that matched (``/v1/hosts/{key}``; a static folder's prefix
    with a ``/``), so a path's spelling cannot pick a rule its route does not have; the path
    when nothing matched (a 404 either way)."""
    resource = request.match_info.route.resource
    if resource is None:
        return request.path
    canonical: object = resource.canonical
    if not isinstance(canonical, str):  # fail closed: a route of no known shape is the path
        return request.path
    if isinstance(resource, web.StaticResource):
        return canonical.rstrip("/") + "/"
    return canonical


def bearer(header: str) -> str | None:
    """The secret of an ``Authorization: Bearer <secret>`` header (RFC 6750 §2.1), or None."""
    if not header or len(header) > MAX_AUTHORIZATION:
        return None
    scheme, _, secret = header.partition(" ")
    secret = secret.strip(" ")
    if scheme.lower() != "bearer" or not secret or " " in secret:
        return None
    return secret


class Authenticator:
    """The TCP listener's credentials: the tokens file, the legacy token, the browser sessions.

    Args:
        tokens: the tokens file (None: only the legacy token).
        legacy: the ``[api] token`` of earlier versions, a ``write`` token named ``api-token``.
        secure: the listener has TLS (the session cookie is then ``Secure``).
    """

    def __init__(
        self,
        *,
        tokens: TokenFile | None,
        legacy: str | None = None,
        secure: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = tokens
        self._legacy = (
            None
            if legacy is None
            else Token(
                name=TOKEN_ACTOR, scopes=frozenset({"write"}), sha256=digest(legacy), created=""
            )
        )
        self._clock = clock
        self._checked = float("-inf")
        self._bad_file: str | None = None
        self.sessions = Sessions(self.current, clock=clock)
        self.cookie = CookieAttributes(secure=secure)

    def refresh(self) -> None:
        """Pick up changes to the tokens file, looking at most once a second."""
        now = self._clock()
        if self.tokens is None or now - self._checked < RELOAD_EVERY:
            return
        self._checked = now
        try:
            if self.tokens.reload_if_changed():
                log.info(
                    "tokens file %s read: %d tokens", self.tokens.path, len(self.tokens.tokens())
                )
            self._bad_file = None
        except ConfigError as exc:
            if str(exc) != self._bad_file:  # once per distinct fault, not once a second
                log.error("%s; the tokens read before stay in use", exc)
            self._bad_file = str(exc)

    def token_for(self, secret: str) -> Token | None:
        """The token whose secret this is, or None."""
        self.refresh()
        if self.tokens is not None:
            token = self.tokens.verify(secret)
            if token is not None:
                return token
        if self._legacy is not None and hmac.compare_digest(digest(secret), self._legacy.sha256):
            return self._legacy
        return None

    def current(self, token: Token) -> Token | None:
        """``token`` as the tokens file has it now (None: removed or replaced)."""
        if self._legacy is not None and token.sha256 == self._legacy.sha256:
            return self._legacy
        return None if self.tokens is None else self.tokens.by_digest(token.sha256)

    def principal_of(self, token: Token, session: Session | None = None) -> Principal:
        return token_principal(
            token.name, token.scopes, session=session, legacy=token is self._legacy
        )

    async def identify(self, request: web.Request) -> Principal | None:
        """The request's principal by its bearer token or session cookie; None: neither."""
        header = request.headers.get("Authorization")
        if header is not None:
            secret = bearer(header)
            # A header that is not a valid bearer token is refused, never passed over for a cookie.
            token = None if secret is None else self.token_for(secret)
            return None if token is None else self.principal_of(token)
        session_id = request.cookies.get(COOKIE)
        if session_id is None:
            return None
        self.refresh()
        session = self.sessions.get(session_id)
        if session is None:
            return None
        return self.principal_of(session.token, session)


AUTH_KEY: web.AppKey[Authenticator] = web.AppKey("ddi.auth", Authenticator)


def _local(request: web.Request) -> Principal:
    user = peer_user(request) if on_unix_socket(request) else None
    return Principal(name=user or UNKNOWN_PEER, scopes=EVERY_SCOPE, via="socket")


def _wants_html(request: web.Request) -> bool:
    if request.path.startswith("/v1/") or request.path == "/metrics":
        return False
    return "text/html" in request.headers.get("Accept", "")[:1024]


def _unauthorized(request: web.Request) -> web.Response:
    if _wants_html(request) and request.method in SAFE_METHODS:
        target = quote(request.path_qs[:1024], safe="/?=&")
        return web.Response(status=303, headers={"Location": f"/login?next={target}"})
    return web.json_response(
        {"error": "unauthorized", "message": "a valid bearer token or console login is required"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="ddi"'},
    )


def _forbidden(request: web.Request, who: Principal, scope: str) -> web.Response:
    if scope == LOCAL:
        message = "only the appliance's unix socket may do this (ddi token ... on the site itself)"
    else:
        have = ", ".join(sorted(who.scopes)) or "none"
        message = f"this needs the {scope!r} scope; token {who.name!r} has {have}"
    if _wants_html(request):
        page = f"<!doctype html><title>Forbidden</title><h1>Forbidden</h1><p>{html.escape(message)}"
        return web.Response(status=403, text=page, content_type="text/html")
    return web.json_response({"error": "forbidden", "message": message, "scope": scope}, status=403)


async def _csrf_value(request: web.Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()  # aiohttp keeps it: the handler reads the same form
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def auth_middleware(auth: Authenticator | None) -> Middleware:
    """Identify every request and refuse what its principal may not do (module docstring).

    ``auth`` None is the unix socket: the peer's account, every scope.
    """

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        who = _local(request) if auth is None else await auth.identify(request)
        request[PRINCIPAL_KEY] = who
        scope = route_scope(request.method, _route(request))
        if scope is None:
            return await handler(request)
        if who is None:
            return _unauthorized(request)
        if not who.allows(scope):
            return _forbidden(request, who, scope)
        if (
            who.session is not None
            and request.method not in SAFE_METHODS
            and not check_csrf(who.session, await _csrf_value(request))
        ):
            return web.json_response(
                {"error": "forbidden", "message": "missing or wrong CSRF value; reload the page"},
                status=403,
            )
        return await handler(request)

    return authenticate


def principal(request: web.Request) -> Principal:
    """Who made the request (set by the middleware).

    Raises:
        web.HTTPUnauthorized: nobody (an open route reached without credentials).
    """
    who = request_principal(request)
    if who is None:
        raise web.HTTPUnauthorized(reason="a valid bearer token or console login is required")
    return who


def require(request: web.Request, scope: str) -> Principal:
    """The request's principal, if it has ``scope``.

    Raises:
        web.HTTPUnauthorized: no credentials.
        web.HTTPForbidden: the scope is missing; the reason names it.
    """
    who = principal(request)
    if not who.allows(scope):
        raise web.HTTPForbidden(reason=f"this needs the {scope!r} scope")
    return who


def local_target(location: str) -> str:
    """``location`` if it is a path on this server, else ``/`` (no open redirect)."""
    if (
        not location.startswith("/")
        or location.startswith("//")
        or "\\" in location
        or len(location) > 1024
        or any(ord(c) < 0x20 for c in location)
    ):
        return "/"
    return location


def login(request: web.Request, secret: str, *, location: str = "/") -> web.Response | None:
    """Open a console session for the token whose secret the login form gave.

    Returns a 303 to ``location`` (a local path) that sets the session cookie, or None when the
    secret is no token, the token cannot read (a ``metrics`` token has no console), or this
    listener takes no tokens (the unix socket).
    """
    auth = request.app.get(AUTH_KEY)
    if auth is None or not secret or len(secret) > MAX_ID:
        return None
    token = auth.token_for(secret.strip())
    if token is None or not token.allows("read"):
        return None
    session = auth.sessions.open(token)
    log.info("console login by token %s", token.name)
    response = web.Response(status=303, headers={"Location": local_target(location)})
    response.set_cookie(COOKIE, session.id, **auth.cookie.as_kwargs())
    return response


def logout(request: web.Request, *, location: str = "/login") -> web.Response:
    """End the request's session and clear its cookie; a 303 to ``location``."""
    auth = request.app.get(AUTH_KEY)
    if auth is not None:
        auth.sessions.close(request.cookies.get(COOKIE, ""))
    response = web.Response(status=303, headers={"Location": local_target(location)})
    response.del_cookie(COOKIE, path="/")
    return response
