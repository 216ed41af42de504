"""The site console behind the TCP listener's auth: login and logout pages, the forms a read
principal does not see and the POST the middleware refuses it anyway, the CSRF value the
forms carry, and the token's name recorded as the actor."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ddi.api import build_app
from ddi.api.auth import Authenticator
from ddi.app import App
from ddi.tokens import TokenFile
from tests.unit.console.test_pages import daemon  # noqa: F401 (fixture)

Client = TestClient[web.Request, web.Application]
HTML = {"Accept": "text/html"}


@pytest_asyncio.fixture
async def secured(daemon: App, tmp_path: Path) -> AsyncIterator[tuple[Client, dict[str, str]]]:  # noqa: F811
    tokens = TokenFile(tmp_path / "tokens.json")
    secrets = {scope: tokens.add(f"{scope}-token", [scope])[1] for scope in ("read", "write")}
    app = build_app(daemon, auth=Authenticator(tokens=TokenFile(tmp_path / "tokens.json")))
    async with TestClient(TestServer(app)) as client:
        yield client, secrets


async def _sign_in(client: Client, secret: str) -> str:
    """Sign in through the login form; the CSRF value the next page's forms carry."""
    async with client.post("/login", data={"token": secret, "next": "/reservations"},
                           allow_redirects=False) as r:  # fmt: skip
        assert r.status == 303
        assert r.headers["Location"] == "/reservations"
    async with client.get("/reservations") as r:
        html = await r.text()
    found = re.search(r'name="csrf" value="([^"]+)"', html)  # the Sign out form's
    assert found is not None
    return found.group(1)


@pytest.mark.asyncio
async def test_a_browser_without_credentials_is_sent_to_the_login_page(
    secured: tuple[Client, dict[str, str]],
) -> None:
    client, _ = secured
    async with client.get("/leases?q=x", headers=HTML, allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == "/login?next=/leases?q=x"
    async with client.get("/login?next=/leases") as r:
        html = await r.text()
    assert '<label for="f-token">API token</label>' in html
    assert 'name="next" value="/leases"' in html
    async with client.post("/login", data={"token": "ddi_nope", "next": "//evil"}) as r:
        assert r.status == 401
        html = await r.text()
    assert "Not signed in" in html
    assert 'name="next" value="/"' in html  # no open redirect


@pytest.mark.asyncio
async def test_read_principal_sees_no_forms_and_its_post_is_refused(
    secured: tuple[Client, dict[str, str]],
    daemon: App,  # noqa: F811
) -> None:
    client, secrets = secured
    read = {"Authorization": f"Bearer {secrets['read']}"}
    async with client.get("/reservations", headers=read) as r:
        html = await r.text()
    assert "Signed in as <strong>read-token</strong> (read)" in html
    assert "Add a reservation" not in html
    host = next(iter(daemon.site.index.hosts()))
    async with client.get(f"/reservations/{host.id}", headers=read) as r:
        shown = await r.text()
    assert "printer" in shown
    assert "<form" not in shown.split("<main", 1)[1]
    form = {"hostname": "x", "ip": "198.18.1.9", "reason": "r", "action": "save"}
    async with client.post("/reservations/new", headers=read, data=form) as r:
        assert r.status == 403
        assert (await r.json())["scope"] == "write"
    async with client.post(f"/reservations/{host.id}/remove", headers=read,
                           data={"reason": "r", "action": "save"}) as r:  # fmt: skip
        assert r.status == 403
    assert len(list(daemon.site.index.hosts())) == 1
    # A read session: the same, by cookie.
    await _sign_in(client, secrets["read"])
    async with client.get("/reservations") as r:
        assert "Add a reservation" not in await r.text()


@pytest.mark.asyncio
async def test_write_session_posts_with_its_csrf_value_and_is_the_actor(
    secured: tuple[Client, dict[str, str]],
    daemon: App,  # noqa: F811
) -> None:
    client, secrets = secured
    csrf = await _sign_in(client, secrets["write"])
    async with client.get("/reservations/new") as r:
        html = await r.text()
    assert f'<input type="hidden" name="csrf" value="{csrf}">' in html
    form = {"hostname": "scanner", "mac": "52:54:00:aa:00:09", "ip": "198.18.1.9",
            "reason": "ticket 9", "action": "save"}  # fmt: skip
    async with client.post("/reservations/new", data=form, allow_redirects=False) as r:
        assert r.status == 403, "no CSRF value: refused"
    async with client.post("/reservations/new", data={**form, "csrf": "wrong"},
                           allow_redirects=False) as r:  # fmt: skip
        assert r.status == 403
    async with client.post("/reservations/new", data={**form, "csrf": csrf},
                           allow_redirects=False) as r:  # fmt: skip
        assert r.status == 303
    changes = await daemon.site.store.changes(after=0, limit=100)
    assert (changes[-1].actor, changes[-1].reason) == ("token:write-token", "ticket 9")
    async with client.post("/logout", data={"csrf": csrf}, allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == "/login"
    async with client.get("/", headers=HTML, allow_redirects=False) as r:
        assert r.status == 303
