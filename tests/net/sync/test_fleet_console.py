"""The fleet console's pages, through aiohttp's test client on a loopback listener: sign-in,
the sites overview (link states in words), a site's objects, conflicts explained, search
across sites, and tokens narrowed to one site."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from central import console
from central.app import build_app
from central.store import CentralStore, open_store
from ddi.ipam.models import Change, Host, Kind, Lease, LeaseState, Op, Subnet
from ddi.tokens import TokenFile
from ddi.web import sessions
from sync import protocol

KEYS = {site: protocol.generate_key() for site in ("s1", "s2", "s3")}
CENTRAL_KEY = protocol.generate_key()
MAC = "52:54:00:aa:bb:01"


def change(seq: int, kind: Kind, oid: str, image: dict[str, Any], age: float = 0) -> Any:
    return Change(epoch=1, seq=seq, kind=kind, object_id=oid, op=Op.UPSERT, image=image,
                  actor="t", time=time.time() - age).to_image()  # fmt: skip


def subnet(cidr: str) -> dict[str, Any]:
    return Subnet(name="lab", cidr=IPv4Network(cidr)).to_image()


async def fill(store: CentralStore) -> float:
    """Three sites (s3 never heard from); returns the time the contacts are relative to."""
    now = time.time()
    for site in KEYS:
        await store.add_site(site, protocol.public_key_raw(KEYS[site].public_key()))
    s1 = [
        change(1, Kind.SUBNET, "lab", subnet("198.18.1.0/24")),
        change(2, Kind.HOST, "h1", Host(id="h1", ip=IPv4Address("198.18.1.10"), hostname="web1",
                                        mac=MAC).to_image()),
        change(3, Kind.HOST, "h2", Host(id="h2", ip=IPv4Address("198.18.1.11"), hostname="db1",
                                        mac="52:54:00:aa:bb:02").to_image(), age=42),
    ]  # fmt: skip
    lease = Lease(ip=IPv4Address("198.18.2.50"), mac=MAC, hostname="laptop",
                  state=LeaseState.BOUND, start=now - 60, end=now + 3600, subnet="lab")  # fmt: skip
    s2 = [
        change(1, Kind.SUBNET, "lab", subnet("198.18.2.0/24")),
        change(2, Kind.LEASE, "198.18.2.50", lease.to_image()),
    ]
    for site, entries in (("s1", s1), ("s2", s2)):
        batch = protocol.make_batch(site=site, epoch=1, from_seq=1, to_seq=len(entries),
                                    entries=entries, key=KEYS[site])  # fmt: skip
        await store.apply_batch(site, batch)
    await store.touch("s1", now - 5)
    # s2 spoke last an hour ago: stale; s3 never.
    async with store.transaction() as tx:
        await tx.execute("UPDATE site SET last_seen = ? WHERE id = 's2'", now - 3600)
    await store.add_conflicts("s1", [{
        "id": 7, "object_id": "c1", "field": "ip", "value": "198.18.1.10",
        "edge_image": {"id": "h1", "hostname": "web1", "ip": "198.18.1.10"},
        "central_image": {"id": "c1", "hostname": "rack1", "ip": "198.18.1.10", "mac": MAC},
    }])  # fmt: skip
    return now


@pytest_asyncio.fixture
async def store(central_db: str) -> AsyncIterator[CentralStore]:
    """SQLite and PostgreSQL: the search's index expressions differ between them."""
    store = await open_store(central_db)
    try:
        await fill(store)
        yield store
    finally:
        await store.close()


@pytest.fixture
def secrets(tmp_path: Path) -> dict[str, str]:
    file = TokenFile(tmp_path / "tokens.json")
    return {
        "read": file.add("noc", ["read"])[1],
        "metrics": file.add("prom", ["metrics"])[1],
        "s1": file.add("site1-team", ["read"], sites=["s1"])[1],
    }


@pytest_asyncio.fixture
async def client(
    store: CentralStore, tmp_path: Path, secrets: dict[str, str]
) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(store, CENTRAL_KEY, tokens_file=tmp_path / "tokens.json", stale_after=300)
    async with TestClient(TestServer(app)) as client:
        yield client


async def login(client: TestClient[Any, Any], secret: str) -> None:
    r = await client.post("/login", data={"token": secret, "next": "/"}, allow_redirects=False)
    assert r.status == 303, await r.text()
    assert r.headers["Location"] == "/"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


def text(html: str) -> str:
    """The page's words: tags dropped, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" .", ".")


def cells(html: str, site: str) -> str:
    row = re.search(rf'<tr data-site="{site}">(.*?)</tr>', html, re.S)
    assert row is not None, site
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(1)))


@pytest.mark.asyncio
async def test_pages_need_a_read_token_and_login_makes_a_session(
    client: TestClient[Any, Any], secrets: dict[str, str]
) -> None:
    r = await client.get("/search?q=x", allow_redirects=False)
    assert r.status == 303
    assert unquote(r.headers["Location"]) == "/login?next=/search?q=x"
    r = await client.post("/login", data={"token": "ddi_wrong", "next": "/"})
    assert r.status == 401
    assert "not known here" in await r.text()
    r = await client.post("/login", data={"token": secrets["metrics"], "next": "/"})
    assert r.status == 401
    assert "needs read" in await r.text()
    # A next that leaves the server is ignored.
    r = await client.post("/login", data={"token": secrets["read"], "next": "//evil.example/"},
                          allow_redirects=False)  # fmt: skip
    assert r.headers["Location"] == "/"
    r = await client.get("/")
    assert r.status == 200
    html = await r.text()
    assert "Signed in as <strong>noc</strong> (read)" in html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None
    assert (await client.post("/logout", data={"csrf": "nope"})).status == 403
    assert (await client.get("/", allow_redirects=False)).status == 200
    r = await client.post("/logout", data={"csrf": csrf.group(1)}, allow_redirects=False)
    assert r.status == 303
    client.session.cookie_jar.update_cookies({sessions.COOKIE: ""})
    assert (await client.get("/", allow_redirects=False)).status == 303
    # A bearer header works too (scripts), and a metrics token reads no page.
    r = await client.get("/", headers={"Authorization": f"Bearer {secrets['metrics']}"})
    assert r.status == 403
    r = await client.get("/", headers={"Authorization": f"Bearer {secrets['read']}"})
    assert r.status == 200


@pytest.mark.asyncio
async def test_overview_says_each_sites_link_in_words(
    client: TestClient[Any, Any], secrets: dict[str, str]
) -> None:
    await login(client, secrets["read"])
    html = await (await client.get("/")).text()
    assert "3 sites: 1 up, 1 stale, 1 never seen" in text(html)
    s1, s2, s3 = cells(html, "s1"), cells(html, "s2"), cells(html, "s3")
    assert 'data-state="up"' in html
    assert s1.startswith(" s1 ✔ up ")
    assert "s ago" in s1
    # Backlog age: the newest change (seq 3) was made 42 s before central got it, plus the
    # moments the fixture took to send it (floored to whole seconds).
    assert re.search(r" 4[2-4] s ", s1), s1
    # epoch, open conflicts, hosts, leases
    assert s1.rstrip().endswith("1 1 2 0")
    assert s2.startswith(" s2 ⚠ stale ")
    assert "1 h ago" in s2
    assert "unknown (link stale)" in s2
    assert s2.rstrip().endswith("1 0 0 1")
    assert s3.startswith(" s3 ✖ never seen never ")
    assert "unknown (no contact)" in s3


@pytest.mark.asyncio
async def test_a_staleness_threshold_moves_a_site_from_up_to_stale(
    client: TestClient[Any, Any], secrets: dict[str, str]
) -> None:
    await login(client, secrets["read"])
    fleet = client.app[console.STATE]  # type: ignore[index]
    fleet.clock = lambda: time.time() + 400  # s1 last spoke 5 s ago
    html = await (await client.get("/")).text()
    assert cells(html, "s1").startswith(" s1 ⚠ stale ")


@pytest.mark.asyncio
async def test_site_page_lists_and_filters_its_objects(
    client: TestClient[Any, Any], secrets: dict[str, str]
) -> None:
    await login(client, secrets["read"])
    html = await (await client.get("/sites/s1")).text()
    assert "2 hosts." in text(html)
    assert "web1" in html
    assert "db1" in html
    html = await (await client.get("/sites/s1?kind=host&q=bb:02")).text()
    assert "1 of 2 hosts contain bb:02." in text(html)
    assert "db1" in html
    assert "web1" not in html
    html = await (await client.get("/sites/s2?kind=lease")).text()
    assert "1 lease." in text(html)
    assert "laptop" in html
    html = await (await client.get("/sites/s1?kind=subnet")).text()
    assert "198.18.1.0/24" in html
    assert (await client.get("/sites/nope")).status == 404


@pytest.mark.asyncio
async def test_conflicts_are_explained_with_their_fix(
    client: TestClient[Any, Any], secrets: dict[str, str]
) -> None:
    await login(client, secrets["read"])
    html = await (await client.get("/conflicts")).text()
    assert "s1: conflict 7 on ip 198.18.1.10" in html
    assert (
        "Central&#39;s reservation (host rack1 198.18.1.10 52:54:00:aa:bb:01) wants ip"
        " 198.18.1.10, which the site already gives to host web1 198.18.1.10" in html
    )
    assert "ddi-central reserve remove --site s1 c1" in html
    assert "ddi sync resolve 7 --keep central|edge" in html


@pytest.mark.asyncio
async def test_search_finds_a_mac_an_address_and_a_name_across_sites(
    client: TestClient[Any, Any], secrets: dict[str, str]
) -> None:
    await login(client, secrets["read"])
    html = await (await client.get("/search", params={"q": "52-54-00-AA-BB-01"})).text()
    assert "2 matches for the mac" in html
    assert "over 3 sites" in html
    assert cells(html, "s1").split()[:3] == ["s1", "host", "mac"]
    assert cells(html, "s2").split()[:3] == ["s2", "lease", "mac"]
    html = await (await client.get("/search", params={"q": "198.18.2.50"})).text()
    assert "2 matches for the ipv4" in html
    assert "lease ip 198.18.2.50" in cells(html, "s2")
    assert "s2 subnet subnet 198.18.2.0/24 - lab" in text(html)
    html = await (await client.get("/search", params={"q": "web1.s1.example."})).text()
    assert "1 match for the name" in html
    assert "host hostname" in cells(html, "s1")
    r = await client.get("/search", params={"q": "x" * 300})
    assert "longer than 253 characters" in await r.text()


@pytest.mark.asyncio
async def test_a_site_token_sees_one_site(
    client: TestClient[Any, Any], secrets: dict[str, str]
) -> None:
    await login(client, secrets["s1"])
    html = await (await client.get("/")).text()
    assert "1 site: 1 up" in text(html)
    assert 'data-site="s2"' not in html
    assert "(read, sites s1)" in html
    r = await client.get("/sites/s2")
    assert r.status == 403
    assert "does not reach site s2" in await r.text()
    html = await (await client.get("/search", params={"q": MAC})).text()
    assert "1 match for the mac" in html
    assert 'data-site="s2"' not in html
    html = await (await client.get("/conflicts")).text()
    assert "s1: conflict 7" in html


@pytest.mark.asyncio
async def test_a_removed_token_ends_its_session(
    client: TestClient[Any, Any], secrets: dict[str, str], tmp_path: Path
) -> None:
    await login(client, secrets["read"])
    assert (await client.get("/", allow_redirects=False)).status == 200
    TokenFile(tmp_path / "tokens.json").remove("noc")
    assert (await client.get("/", allow_redirects=False)).status == 303
