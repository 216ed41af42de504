"""Reading the admin API's own answers in process: a console page that shows what a ``GET``
route answers calls that route's handler with the page's request and decodes its JSON, so
the page and ``ddi ... --json`` cannot disagree."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


async def api_json(handler: Any, request: web.Request) -> dict[str, Any]:
    """``handler(request)``'s JSON object body (the error tree propagates as raised).
    ``handler`` is a GET route function of ``ddi.api`` (typed loosely: the route decorator's
    return type is a union with class-based views)."""
    response = await handler(request)
    if not isinstance(response, web.Response):
        raise TypeError(f"{handler.__name__} answered {type(response).__name__}")
    body = response.body
    if not isinstance(body, bytes | bytearray):
        raise TypeError(f"{handler.__name__} answered a body that is not bytes")
    document: dict[str, Any] = json.loads(body)
    return document
