"""``/v1/tokens``: the named API tokens (``ddi token add|list|rm``).

Only the unix socket reaches these routes (scope ``local``, ``ddi.api.auth``): a token can
never make or remove tokens, so a leaked ``write`` token cannot mint itself a successor. The
tokens file is rewritten whole and atomically; the TCP listener notices within a second.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from ddi.api.auth import principal
from ddi.api.common import TOKEN_ACTOR, BadRequest, read_body, text
from ddi.errors import ConfigError, Invalid
from ddi.tokens import TokenFile

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

TOKENS_KEY: web.AppKey[TokenFile] = web.AppKey("ddi.tokens", TokenFile)
LOCK_KEY: web.AppKey[asyncio.Lock] = web.AppKey("ddi.tokens.lock", asyncio.Lock)
"""One change of the tokens file at a time: each is read, change, rewrite (in a thread, for
the fsync), and two at once would lose one."""


def _file(request: web.Request) -> TokenFile:
    tokens = request.app.get(TOKENS_KEY)
    if tokens is None:
        raise Invalid("tokens_file", "", "this daemon has no tokens file")
    return tokens


def _refresh(tokens: TokenFile) -> None:
    try:
        tokens.reload_if_changed()
    except ConfigError as exc:
        raise Invalid("tokens_file", str(tokens.path), str(exc)) from None


@routes.get("/v1/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    tokens = _file(request)
    _refresh(tokens)
    return web.json_response(
        {"path": str(tokens.path), "tokens": [token.public() for token in tokens.tokens()]}
    )


def _scopes(body: dict[str, Any]) -> list[str]:
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise BadRequest("scopes must be a list of strings", field="scopes")
    return scopes


def _sites(body: dict[str, Any]) -> list[str] | None:
    sites = body.get("sites")
    if sites is None:
        return None
    if not isinstance(sites, list) or not all(isinstance(s, str) and s for s in sites):
        raise BadRequest("sites must be a list of site names", field="sites")
    return sites


@routes.post("/v1/tokens")
async def add_token(request: web.Request) -> web.Response:
    """Make a token; the answer holds its secret, the only time it is ever shown."""
    tokens = _file(request)
    body = await read_body(request)
    name = text(body, "name", required=True) or ""
    if name == TOKEN_ACTOR:
        raise Invalid("name", name, "reserved for the [api] token of the config file")
    scopes, sites = _scopes(body), _sites(body)
    async with request.app[LOCK_KEY]:
        _refresh(tokens)
        token, secret = await asyncio.to_thread(tokens.add, name, scopes, sites=sites)
    log.info("token %s added by %s: %s", token.name, principal(request).name, sorted(token.scopes))
    return web.json_response({"token": token.public(), "secret": secret}, status=201)


@routes.delete("/v1/tokens/{name}")
async def remove_token(request: web.Request) -> web.Response:
    tokens = _file(request)
    async with request.app[LOCK_KEY]:
        _refresh(tokens)
        token = await asyncio.to_thread(tokens.remove, request.match_info["name"])
    log.info("token %s removed by %s", token.name, principal(request).name)
    return web.json_response({"token": token.public()})
