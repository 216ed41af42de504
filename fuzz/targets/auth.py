"""The admin API's auth middleware (``ddi.api.auth``): the request line and the headers it
reads, as a browser or a script would send them to the TCP listener.

An input is six lines: the method, the path (with its query), ``Authorization``, ``Cookie``,
``X-CSRF-Token`` and ``Accept``; an empty header line leaves that header out. ``SESSION`` in
the cookie line and ``CSRF`` in the CSRF line stand for a live session's id and secret, so
mutations reach the signed-in paths. The request is aiohttp's own (``make_mocked_request``),
with the resource a real router (holding a route of each kind) matched for it; the middleware
runs with a real ``Authenticator`` over a tokens file of three tokens, and a coroutine that
never suspends here is driven by hand.

Outcomes: the status the middleware answers (401, 403, a 303 to the login page) or the
route's own 200, with the principal's kind. Anything raised is a crash.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from ddi.api.auth import Authenticator, auth_middleware
from ddi.api.principal import request_principal
from ddi.tokens import TokenFile, digest
from fuzz.core import Target, Unexpected

T = TypeVar("T")
SECRETS = {"metrics": "ddi_fuzz-metrics", "read": "ddi_fuzz-read", "write": "ddi_fuzz-write"}
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


def _drive(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coroutine.close()
    raise Unexpected("the middleware waited on something")


async def _ok(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


def _tokens() -> TokenFile:
    folder = Path(tempfile.mkdtemp(prefix="ddi-fuzz-auth-"))
    path = folder / "tokens.json"
    entries = [
        {"name": f"{scope}-token", "scopes": [scope], "sha256": digest(secret), "created": ""}
        for scope, secret in SECRETS.items()
    ]
    path.write_text(json.dumps({"version": 1, "tokens": entries}))
    return TokenFile(path)


class _Harness:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.auth = Authenticator(tokens=_tokens(), legacy="legacy-secret", secure=True)
        token = self.auth.token_for(SECRETS["write"])
        assert token is not None
        self.session = self.auth.sessions.open(token)
        self.app = web.Application()
        for method, path in (
            ("GET", "/healthz"),
            ("GET", "/metrics"),
            ("GET", "/v1/hosts"),
            ("POST", "/v1/hosts"),
            ("DELETE", "/v1/hosts/{key}"),
            ("GET", "/v1/tokens"),
            ("GET", "/login"),
            ("POST", "/logout"),
            ("GET", "/leases"),
        ):
            self.app.router.add_route(method, path, _ok)
        self.app.router.add_static("/static/", Path(__file__).parent)
        self.middleware = auth_middleware(self.auth)

    def check(self, data: bytes) -> str:
        lines = data.decode("utf-8", "surrogateescape").split("\n")
        lines += [""] * (6 - len(lines))
        method_line, path, authorization, cookie, csrf, accept = lines[:6]
        method = METHODS[len(method_line) % len(METHODS)] if method_line else "GET"
        if not path.startswith("/"):
            path = "/" + path
        headers = CIMultiDict[str]()
        for name, value in (
            ("Authorization", authorization),
            ("Cookie", cookie.replace("SESSION", self.session.id)),
            ("X-CSRF-Token", csrf.replace("CSRF", self.session.csrf)),
            ("Accept", accept),
        ):
            if value:
                headers[name] = value
        try:
            probe = make_mocked_request(method, path, headers=headers, app=self.app)
        except ValueError:
            return "unparsable-request-line"  # aiohttp's HTTP parser refuses such a line first
        resolved = _drive(self.app.router.resolve(probe))
        request = make_mocked_request(
            method, path, headers=headers, app=self.app, match_info=dict(resolved)
        )
        # The mocked request's route is a stand-in: give it the resource the router matched.
        request.match_info.route.resource = resolved.route.resource  # type: ignore[misc]
        answered: Coroutine[Any, Any, web.StreamResponse] = self.middleware(request, _ok)  # type: ignore[assignment]
        response = _drive(answered)
        who = request_principal(request)
        return f"{response.status}:{'-' if who is None else who.via}"


def target() -> Target:
    harness = _Harness()
    return Target(
        name="auth",
        doc="the admin API's auth middleware: method, path, Authorization, Cookie, "
        "X-CSRF-Token and Accept lines through a real router and Authenticator",
        check=harness.check,
        seeds=seeds,
        allowed=(),
        max_len=2048,
        dictionary=DICTIONARY,
        reset=harness.reset,
    )


def seeds() -> list[bytes]:
    return [
        b"\n/v1/hosts\nBearer ddi_fuzz-read\n\n\n",
        b"\n/metrics\nBearer ddi_fuzz-metrics\n\n\n",
        b"\n/v1/hosts\nBearer ddi_fuzz-metrics\n\n\n",
        b"PUT\n/v1/hosts\nBearer ddi_fuzz-write\n\n\napplication/json",
        b"PU\n/v1/hosts/h1\nbearer  ddi_fuzz-write \n\n\n",
        b"\n/v1/tokens\nBearer ddi_fuzz-write\n\n\n",
        b"\n/v1/hosts\nBearer legacy-secret\n\n\n",
        b"\n/leases?ip=198.18.0.1\n\n\n\ntext/html,application/xhtml+xml",
        b"\n/leases\n\nddi_session=SESSION\n\ntext/html",
        b"PUT\n/v1/hosts\n\nddi_session=SESSION; other=1\nCSRF\n",
        b"PUT\n/v1/hosts\n\nddi_session=SESSION\nwrong\n",
        b'PUT\n/logout\n\nddi_session="SESSION"\nCSRF\n',
        b"\n/static/auth.py\n\n\n\n",
        b"\n/static/../v1/hosts\n\n\n\n",
        b"\n/healthz\nBasic Zm9vOmJhcg==\n\n\n",
        b"\n/v1/hosts\nBearer\n\n\n",
        b"\n/v1/hosts\nBearer ddi_\xff\xfe\n\n\n",
    ]


DICTIONARY = (
    b"Bearer ",
    b"ddi_fuzz-read",
    b"ddi_fuzz-write",
    b"ddi_session=",
    b"SESSION",
    b"CSRF",
    b"text/html",
    b"/v1/",
    b"/static/",
    b"/login",
    b"/logout",
    b"%2e%2e/",
    b"; ",
    b"\xff",
)
