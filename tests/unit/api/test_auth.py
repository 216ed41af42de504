"""The admin API's auth layer in process: the scope table, bearer tokens of each scope, the
legacy single token, console sessions with their CSRF check, the browser redirect, the actor a
token's write records, and a removed token refused without a restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ddi.api import build_app
from ddi.api.auth import (
    DEFAULT_SCOPE,
    LOCAL,
    Authenticator,
    bearer,
    local_target,
    principal,
    require,
    route_scope,
)
from ddi.app import App
from ddi.site import open_site
from ddi.tokens import TokenFile
from ddi.web.sessions import COOKIE, CSRF_HEADER
from tests.unit.api.test_api import HOST, write_config

Client = TestClient[web.Request, web.Application]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Lab:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "tokens.json"
        self.file = TokenFile(self.path)
        self.secrets = {
            scope: self.file.add(f"{scope}-token", [scope])[1]
            for scope in ("metrics", "read", "write")
        }
        self.clock = Clock()
        self.auth = Authenticator(
            tokens=TokenFile(self.path), legacy="legacy-secret", clock=self.clock
        )

    def bearer(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[scope]}"}


async def _whoami(request: web.Request) -> web.Response:
    who = require(request, "read")
    return web.json_response({"name": who.name, "via": who.via, "scopes": sorted(who.scopes)})


@pytest_asyncio.fixture
async def lab(tmp_path: Path) -> AsyncIterator[tuple[Lab, Client, App]]:
    config = write_config(tmp_path)
    async with open_site(config, store_path=tmp_path / "ddi.sqlite") as site:
        context = App(site)
        setup = Lab(tmp_path)
        app = build_app(context, auth=setup.auth)
        # /login and /logout are the site console's (ddi.console.access), over login()/logout().
        app.router.add_get("/whoami", _whoami)
        async with TestClient(TestServer(app)) as client:
            yield setup, client, context


async def call(
    client: Client, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body)
    async with client.request(method, path, data=data, allow_redirects=False, **kw) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


@pytest.mark.parametrize(
    ("method", "route", "scope"),
    [
        ("GET", "/healthz", None),
        ("GET", "/login", None),
        ("POST", "/login", None),
        ("GET", "/static/", None),
        ("GET", "/metrics", "metrics"),
        ("POST", "/metrics", "write"),
        ("GET", "/v1/hosts", "read"),
        ("HEAD", "/v1/hosts/{key}", "read"),
        ("POST", "/v1/hosts", "write"),
        ("DELETE", "/v1/hosts/{key}", "write"),
        ("GET", "/v1/tokens", LOCAL),
        ("DELETE", "/v1/tokens/{name}", LOCAL),
        ("POST", "/logout", "metrics"),
        ("GET", "/", "read"),
        ("GET", "/leases", "read"),
        ("PUT", "/anything-new", DEFAULT_SCOPE),
        ("POST", "/healthz", "write"),
    ],
)
def test_route_scope_table(method: str, route: str, scope: str | None) -> None:
    assert route_scope(method, route) == scope


@pytest.mark.parametrize(
    ("header", "secret"),
    [
        ("Bearer ddi_abc", "ddi_abc"),
        ("bearer ddi_abc", "ddi_abc"),
        ("Bearer  ddi_abc ", "ddi_abc"),
        ("Basic ddi_abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer a b", None),
        ("Bearer " + "x" * 600, None),
        ("", None),
    ],
)
def test_bearer(header: str, secret: str | None) -> None:
    assert bearer(header) == secret


@pytest.mark.asyncio
async def test_each_scope_reaches_what_it_may_and_nothing_else(
    lab: tuple[Lab, Client, App],
) -> None:
    setup, client, context = lab
    assert (await call(client, "GET", "/healthz"))[0] == 200
    assert (await call(client, "GET", "/v1/hosts"))[0] == 401
    assert (await call(client, "GET", "/metrics"))[0] == 401
    for scope in ("metrics", "read", "write"):
        assert (await call(client, "GET", "/metrics", headers=setup.bearer(scope)))[0] == 200

    status, body = await call(client, "GET", "/v1/hosts", headers=setup.bearer("metrics"))
    assert (status, body["error"], body["scope"]) == (403, "forbidden", "read")
    assert "metrics-token" in body["message"]
    assert (await call(client, "GET", "/v1/hosts", headers=setup.bearer("read")))[0] == 200

    write = {**HOST, "reason": "test"}
    status, body = await call(client, "POST", "/v1/hosts", write, headers=setup.bearer("read"))
    assert (status, body["scope"]) == (403, "write")
    assert list(context.site.index.hosts()) == [], "a refused write writes nothing"
    status, body = await call(client, "POST", "/v1/hosts", write, headers=setup.bearer("write"))
    assert status == 201
    assert body["change"]["actor"] == "token:write-token"


@pytest.mark.asyncio
async def test_a_named_token_is_the_actor_whatever_the_body_claims(
    lab: tuple[Lab, Client, App],
) -> None:
    setup, client, _ = lab
    body = {**HOST, "actor": "root", "reason": "claims"}
    status, answer = await call(client, "POST", "/v1/hosts", body, headers=setup.bearer("write"))
    assert status == 201
    assert answer["change"]["actor"] == "token:write-token"
    legacy = {"Authorization": "Bearer legacy-secret"}
    other = {**HOST, "mac": "52:54:00:00:02:02", "ip": "198.18.0.21", "hostname": "web2"}
    status, answer = await call(
        client, "POST", "/v1/hosts", {**other, "actor": "bob"}, headers=legacy
    )
    assert status == 201
    assert answer["change"]["actor"] == "api-token:bob"


@pytest.mark.asyncio
async def test_unknown_routes_need_write_and_tokens_need_the_socket(
    lab: tuple[Lab, Client, App],
) -> None:
    setup, client, _ = lab
    status, body = await call(client, "PUT", "/v1/new-thing", {}, headers=setup.bearer("read"))
    assert (status, body["scope"]) == (403, "write")
    assert (await call(client, "PUT", "/v1/new-thing", {}, headers=setup.bearer("write")))[0] == 404
    for method, path in (("GET", "/v1/tokens"), ("POST", "/v1/tokens"), ("DELETE", "/v1/tokens/x")):
        status, body = await call(client, method, path, {}, headers=setup.bearer("write"))
        assert (status, body["scope"]) == (403, LOCAL), (method, path)
    assert [t.name for t in setup.file.tokens()] == ["metrics-token", "read-token", "write-token"]


@pytest.mark.asyncio
async def test_a_bad_authorization_header_is_not_passed_over_for_a_cookie(
    lab: tuple[Lab, Client, App],
) -> None:
    setup, client, _ = lab
    async with client.post("/login", data={"token": setup.secrets["read"]}, allow_redirects=False):
        pass
    assert (await call(client, "GET", "/v1/hosts"))[0] == 200
    for header in ("Bearer nope", "Basic abc", "Bearer " + "x" * 1000):
        status, _ = await call(client, "GET", "/v1/hosts", headers={"Authorization": header})
        assert status == 401, header


@pytest.mark.asyncio
async def test_a_removed_token_stops_working_without_a_restart(
    lab: tuple[Lab, Client, App],
) -> None:
    setup, client, _ = lab
    async with client.post("/login", data={"token": setup.secrets["read"]}, allow_redirects=False):
        pass
    assert (await call(client, "GET", "/whoami"))[0] == 200
    TokenFile(setup.path).remove("read-token")  # as `ddi token rm` would, another process
    setup.clock.now += 0.5
    assert (await call(client, "GET", "/v1/hosts", headers=setup.bearer("read")))[0] == 200, (
        "the file is looked at once a second at most"
    )
    setup.clock.now += 1
    assert (await call(client, "GET", "/v1/hosts", headers=setup.bearer("read")))[0] == 401
    assert (await call(client, "GET", "/whoami"))[0] == 401, "its console session ends too"
    _, added = TokenFile(setup.path).add("late", ["read"])
    setup.clock.now += 1
    assert (await call(client, "GET", "/v1/hosts", headers={"Authorization": f"Bearer {added}"}))[
        0
    ] == 200


@pytest.mark.asyncio
async def test_console_session_cookie_and_csrf(lab: tuple[Lab, Client, App]) -> None:
    setup, client, context = lab
    async with client.post("/login", data={"token": "ddi_wrong"}, allow_redirects=False) as r:
        assert r.status == 401
    async with client.post(
        "/login", data={"token": setup.secrets["metrics"]}, allow_redirects=False
    ) as r:
        assert r.status == 401, "a metrics token has no console"
    async with client.post(
        "/login",
        data={"token": setup.secrets["write"], "next": "/v1/hosts"},
        allow_redirects=False,
    ) as r:
        assert r.status == 303
        assert r.headers["Location"] == "/v1/hosts"
        cookie = r.headers["Set-Cookie"]
    assert f"{COOKIE}=" in cookie
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in cookie
    assert "Secure" not in cookie, "this listener has no TLS"

    status, body = await call(client, "GET", "/whoami")
    assert status == 200
    assert body == {
        "name": "write-token",
        "via": "session",
        "scopes": ["metrics", "read", "write"],
    }
    session = next(iter(setup.auth.sessions._by_key.values()))
    write = {**HOST, "reason": "console"}
    status, body = await call(client, "POST", "/v1/hosts", write)
    assert (status, body["error"]) == (403, "forbidden")
    assert "CSRF" in body["message"]
    status, body = await call(client, "POST", "/v1/hosts", write, headers={CSRF_HEADER: "nope"})
    assert status == 403
    assert list(context.site.index.hosts()) == []
    status, body = await call(
        client, "POST", "/v1/hosts", write, headers={CSRF_HEADER: session.csrf}
    )
    assert status == 201
    assert body["change"]["actor"] == "token:write-token"

    async with client.post("/logout", data={"csrf": "wrong"}, allow_redirects=False) as r:
        assert r.status == 403
    async with client.post("/logout", data={"csrf": session.csrf}, allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == "/login"
    assert (await call(client, "GET", "/whoami"))[0] == 401
    assert len(setup.auth.sessions) == 0


def test_login_redirects_only_to_local_paths() -> None:
    assert local_target("/leases?ip=198.18.0.1") == "/leases?ip=198.18.0.1"
    for bad in ("https://evil.example/", "//evil.example/", "/\\evil", "/a\nb", "leases", ""):
        assert local_target(bad) == "/", bad


@pytest.mark.asyncio
async def test_a_browser_without_a_session_is_sent_to_the_login_page(
    lab: tuple[Lab, Client, App],
) -> None:
    _, client, _ = lab
    html = {"Accept": "text/html,application/xhtml+xml"}
    status, _ = await call(client, "GET", "/leases?ip=198.18.0.1", headers=html)
    assert status == 303
    async with client.get("/leases?ip=1", headers=html, allow_redirects=False) as r:
        assert r.headers["Location"] == "/login?next=/leases?ip=1"
    status, body = await call(client, "GET", "/v1/hosts", headers=html)
    assert (status, body["error"]) == (401, "unauthorized"), "the API answers 401, never a page"


@pytest.mark.asyncio
async def test_the_unix_listener_principal_may_do_everything(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with open_site(config, store_path=tmp_path / "ddi.sqlite") as site:
        app = build_app(App(site), tokens=TokenFile(tmp_path / "t.json"))
        seen: list[Any] = []

        async def who(request: web.Request) -> web.Response:
            seen.append(principal(request))
            return web.json_response({})

        app.router.add_get("/who", who)
        async with TestClient(TestServer(app)) as client:
            status, body = await call(
                client, "POST", "/v1/tokens", {"name": "x", "scopes": ["read"]}
            )
            assert status == 201
            assert body["secret"].startswith("ddi_")
            status, body = await call(
                client, "POST", "/v1/tokens", {"name": "api-token", "scopes": ["read"]}
            )
            assert (status, body["field"]) == (422, "name"), "the legacy token's name is reserved"
            status, body = await call(client, "POST", "/v1/tokens", {"name": "x", "scopes": "read"})
            assert (status, body["field"]) == (400, "scopes")
            status, body = await call(client, "DELETE", "/v1/tokens/x")
            assert (status, body["token"]["name"]) == (200, "x")
            assert (await call(client, "DELETE", "/v1/tokens/x"))[0] == 404
            assert (await call(client, "GET", "/who"))[0] == 200
    assert seen[0].via == "socket"
    assert LOCAL in seen[0].scopes


@pytest.mark.asyncio
async def test_a_path_through_the_static_folder_does_not_reach_the_api(tmp_path: Path) -> None:
    from yarl import URL

    config = write_config(tmp_path)
    async with open_site(config, store_path=tmp_path / "ddi.sqlite") as site:
        # /static/ is the site console's folder (ddi/web/static).
        app = build_app(App(site), auth=Authenticator(tokens=TokenFile(tmp_path / "t.json")))
        async with TestClient(TestServer(app)) as client:
            async with client.get("/static/console.css") as response:
                assert response.status == 200, "static files are open"
            for raw in ("/static/../v1/hosts", "/static/%2e%2e/v1/hosts", "/static/..%2fv1/hosts"):
                url = client.make_url("").with_path(raw, encoded=True)
                async with client.session.get(URL(str(url), encoded=True)) as response:
                    body = await response.text()
                    assert response.status in (401, 403, 404), (raw, response.status)
                    assert '"hosts"' not in body


@pytest.mark.asyncio
async def test_a_browser_is_told_in_a_page_which_scope_it_lacks(
    lab: tuple[Lab, Client, App],
) -> None:
    setup, client, _ = lab
    headers = {**setup.bearer("metrics"), "Accept": "text/html"}
    async with client.get("/leases", headers=headers, allow_redirects=False) as response:
        assert response.status == 403
        assert response.content_type == "text/html"
        assert "&#x27;read&#x27; scope" in await response.text()


@pytest.mark.asyncio
async def test_token_changes_at_once_lose_none(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with open_site(config, store_path=tmp_path / "ddi.sqlite") as site:
        tokens = TokenFile(tmp_path / "t.json")
        app = build_app(App(site), tokens=tokens)
        async with TestClient(TestServer(app)) as client:
            answers = await asyncio.gather(
                *(
                    call(client, "POST", "/v1/tokens", {"name": f"t{n}", "scopes": ["read"]})
                    for n in range(12)
                )
            )
            assert [status for status, _ in answers] == [201] * 12
            status, body = await call(client, "GET", "/v1/tokens")
    assert status == 200
    assert sorted(t["name"] for t in body["tokens"]) == sorted(f"t{n}" for n in range(12))
    assert len(TokenFile(tmp_path / "t.json").tokens()) == 12
