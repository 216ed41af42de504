"""What every admin API route module uses: the running daemon as the API sees it (``Daemon``,
under ``APP_KEY``), JSON body readers that turn a malformed request into a 400, and the shape
of a write's answer.

Route modules read ``request.app[APP_KEY]`` (its ``site`` and ``services``) and raise the store's
``Conflict`` / ``NotFound`` / ``Invalid`` or ``BadRequest``; the middleware in ``ddi.api`` maps
them to HTTP once.

Who a write is recorded as (the change log's ``actor``) is decided here, never taken on trust:

* On the unix socket: the connecting process's account, from SO_PEERCRED. An ``actor`` in the
  body is ignored, except from root, which may name the user it acts for: recorded as
  ``"root as alice"`` (the CLI sends ``$SUDO_USER`` when run through sudo). Root without an
  actor, or naming itself, is ``"root"``.
* On the TCP listener, a named token (``ddi.tokens``; by bearer header or a console session):
  ``"token:<name>"``, whatever the body names: the token is who wrote.
* On the TCP listener with the single ``[api] token`` of earlier versions: ``"api-token"``, or
  ``"api-token:<actor>"`` when the body names one.

A ``:`` or a space never occurs in a local account name, so no token form can pass for a local
user, nor for ``central``, the one actor that may change central-owned objects.
"""

from __future__ import annotations

import json
import pwd
import re
import socket
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web

from ddi.api.principal import request_principal
from ddi.ipam.models import Change
from ddi.reloads import ReloadResult
from ddi.site import Service, Site


class Daemon(Protocol):
    """The running daemon as the admin API sees it (``ddi.app.App`` is one)."""

    @property
    def site(self) -> Site: ...

    @property
    def services(self) -> Mapping[str, Service]:
        """name -> running service: the one place the API finds a service."""
        ...

    @property
    def endpoints(self) -> Sequence[str]:
        """Where the admin API listens: the socket path, and ``tcp:host:port`` when enabled."""
        ...

    @property
    def tls_fingerprint(self) -> str | None:
        """SHA-256 of the TCP listener's certificate; None without TLS."""
        ...

    @property
    def last_reload(self) -> ReloadResult | None:
        """The last config reload's result; None when there was none since start."""
        ...

    async def reload(self, *, force: bool = False) -> ReloadResult:
        """Reload the config file (``ddi.app.reload``)."""
        ...


APP_KEY: web.AppKey[Daemon] = web.AppKey("ddi")


class BadRequest(Exception):
    """The request itself is malformed (not JSON, a missing or mistyped field): HTTP 400."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


MAX_BODY = 1024 * 1024
"""Bytes of a request body; a larger one is refused with 413 before it is read whole."""
MAX_DEPTH = 32
"""Nesting of a JSON body: the deepest the API reads is 3 (a host's ``dhcp`` options); the cap
refuses with 400 a body that would otherwise exhaust the parser's recursion (RecursionError)."""


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


async def read_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body (``{}`` when empty).

    Raises:
        BadRequest: the body is not a JSON object, or nests deeper than :data:`MAX_DEPTH`.
    """
    raw = await request.read()
    if not raw:
        return {}
    too_deep = BadRequest(f"body nests deeper than {MAX_DEPTH} levels")
    try:
        body = json.loads(raw)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    if _depth(body) > MAX_DEPTH:
        raise too_deep
    return body


def text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """``body[name]`` as a string, None when absent or null."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", field=name)
    return value


def flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false", field=name)
    return value


def query_int(request: web.Request, name: str, default: int, *, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # Bounded before conversion: int() of a long digit string costs quadratic time.
    if len(raw) > 20:
        raise BadRequest(f"{name} must be an integer", field=name)
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", field=name) from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be from {lo} to {hi}", field=name)
    return value


TOKEN_ACTOR = "api-token"
"""The actor of a write with the legacy ``[api] token``; ``api-token:<name>`` when the client
names one."""
NAMED_TOKEN_ACTOR = "token:"
"""Prefix of the actor of a write with a named token: ``token:alice-laptop``."""
UNKNOWN_PEER = "unix-peer-unknown"
"""The actor of a unix-socket write whose peer credentials cannot be read."""
_CLAIMED_ACTOR = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")


def _peer_uid(request: web.Request) -> int | None:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def on_unix_socket(request: web.Request) -> bool:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    return sock is not None and sock.family == socket.AF_UNIX


def peer_user(request: web.Request) -> str | None:
    """The user at the other end of a unix-socket connection (SO_PEERCRED), if known."""
    uid = _peer_uid(request) if on_unix_socket(request) else None
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def write_actor(request: web.Request, claimed: str | None) -> str:
    """The change log's actor for a write whose body named ``claimed`` (module docstring).

    Raises:
        BadRequest: ``claimed`` is used and is not 1-64 letters, digits or ``._@+-``.
    """
    who = request_principal(request)
    if who is not None and who.via != "socket" and not who.legacy:
        return NAMED_TOKEN_ACTOR + who.name
    if on_unix_socket(request):
        user = peer_user(request)
        if user is None:
            return UNKNOWN_PEER
        if _peer_uid(request) != 0 or not claimed or claimed == user:
            return user
        return f"{user} as {_checked_actor(claimed)}"
    return f"{TOKEN_ACTOR}:{_checked_actor(claimed)}" if claimed else TOKEN_ACTOR


def _checked_actor(claimed: str) -> str:
    if not _CLAIMED_ACTOR.match(claimed):
        raise BadRequest("actor must be 1-64 letters, digits or '._@+-'", field="actor")
    return claimed


MAX_REASON = 500
"""Characters of a write's ``reason``: a sentence or two for the change log, not a document."""


class WriteArgs:
    """``actor``, ``reason`` and ``dry_run`` of a write request; ``actor`` is the one recorded
    (:func:`write_actor`), not simply the one the body names."""

    __slots__ = ("actor", "dry_run", "reason")

    def __init__(self, request: web.Request, body: dict[str, Any]) -> None:
        self.actor = write_actor(request, text(body, "actor"))
        reason = text(body, "reason") or ""
        if len(reason) > MAX_REASON:
            raise BadRequest(f"reason must be at most {MAX_REASON} characters", field="reason")
        self.reason = reason
        self.dry_run = flag(body, "dry_run")


def change_response(change: Change, *, status: int = 200, **extra: Any) -> web.Response:
    """``{"change": <image>, "dry_run": bool, ...extra}``; a dry run's change has seq 0."""
    body = {"change": change.to_image(), "dry_run": change.seq == 0, **extra}
    return web.json_response(body, status=status)
