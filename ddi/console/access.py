"""Who is looking at the console, and whether they may write.

The admin API decides who a request is; the console only asks, to show or hide the write
forms (a hidden form is a courtesy: the API's middleware refuses the POST of a principal
without ``write`` whatever the page showed).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ddi.api.common import peer_user


@dataclass(frozen=True, slots=True, kw_only=True)
class Viewer:
    name: str
    scope: str
    can_write: bool
    csrf: str


async def viewer(request: web.Request) -> Viewer:
    """The principal behind ``request``: on the unix socket its account (root's socket access
    is write access); on TCP the holder of the listener's token."""
    user = peer_user(request)
    return Viewer(name=user or "api-token", scope="write", can_write=True, csrf="")
