"""Who is making a request, as the auth middleware (``ddi.api.auth``) found it: kept apart so
``ddi.api.common`` (the write's actor) and ``ddi.api.auth`` both read it without a cycle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from ddi.tokens import SCOPES, granted
from ddi.web.sessions import Session

LOCAL = "local"
"""A pseudo-scope only the unix socket grants: managing tokens (a token never mints tokens)."""
EVERY_SCOPE = frozenset({*SCOPES, LOCAL})
Via = Literal["socket", "token", "session"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    name: str
    """The peer's account on the unix socket; the token's name otherwise."""
    scopes: frozenset[str]
    """As granted: ``write`` brings ``read`` and ``metrics`` (``ddi.tokens.granted``)."""
    via: Via
    session: Session | None = None
    legacy: bool = False
    """The single ``[api] token`` of earlier versions (recorded as ``api-token``)."""

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def token_principal(
    name: str, scopes: frozenset[str], *, session: Session | None = None, legacy: bool = False
) -> Principal:
    return Principal(
        name=name,
        scopes=granted(scopes),
        via="token" if session is None else "session",
        session=session,
        legacy=legacy,
    )


PRINCIPAL_KEY: web.RequestKey[Principal | None] = web.RequestKey("ddi.principal", Principal)


def request_principal(request: web.Request) -> Principal | None:
    """The principal the auth middleware set on ``request`` (None: none, or no middleware)."""
    try:
        return request[PRINCIPAL_KEY]
    except KeyError:
        return None
