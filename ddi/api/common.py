"""What every admin API route module uses: the AppContext key, JSON body readers that turn a
malformed request into a 400, and the shape of a write's answer.

Route modules read ``request.app[APP_KEY]`` (the daemon's ``AppContext``) and raise the store's
``Conflict`` / ``NotFound`` / ``Invalid`` or ``BadRequest``; the middleware in ``ddi.api`` maps
them to HTTP once.
"""

from __future__ import annotations

import json
import pwd
import socket
import struct
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ddi.ipam.models import Change

if TYPE_CHECKING:
    from ddi.app import AppContext

APP_KEY: web.AppKey[AppContext] = web.AppKey("ddi")


class BadRequest(Exception):
    """The request itself is malformed (not JSON, a missing or mistyped field): HTTP 400."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


async def read_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body (``{}`` when empty).

    Raises:
        BadRequest: the body is not a JSON object.
    """
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
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
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", field=name) from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be from {lo} to {hi}", field=name)
    return value


def peer_user(request: web.Request) -> str | None:
    """The user at the other end of a unix-socket connection (SO_PEERCRED), if known."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None or sock.family != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


class WriteArgs:
    """``actor``, ``reason`` and ``dry_run`` of a write request."""

    __slots__ = ("actor", "dry_run", "reason")

    def __init__(self, request: web.Request, body: dict[str, Any]) -> None:
        self.actor = text(body, "actor") or peer_user(request) or "api"
        self.reason = text(body, "reason") or ""
        self.dry_run = flag(body, "dry_run")


def change_response(change: Change, *, status: int = 200, **extra: Any) -> web.Response:
    """``{"change": <image>, "dry_run": bool, ...extra}``; a dry run's change has seq 0."""
    body = {"change": change.to_image(), "dry_run": change.seq == 0, **extra}
    return web.json_response(body, status=status)
