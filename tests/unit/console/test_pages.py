"""The site console in process: each page's content over aiohttp's test client against a real
store and index (``build_app``, as both listeners serve it), and the reservation forms going
through the API's checks and the store's dry run."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ddi import metrics
from ddi.api import build_app
from ddi.app import App
from ddi.config import load_config
from ddi.ipam.models import Host, Lease
from ddi.site import open_site

SITE = """\
[site]
id = "webtest"
domain = "site.example"
data_dir = "data"

[api]
socket = "ddi.sock"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.103"

[[subnets]]
name = "big"
cidr = "198.18.1.0/24"
gateway = "198.18.1.1"

[[subnets.pools]]
start = "198.18.1.10"
end = "198.18.1.209"

[[subnets6]]
name = "lan6"
cidr = "2001:db8:1::/64"
interface = "ddi0"

[[subnets6.pools]]
start = "2001:db8:1::100"
end = "2001:db8:1::1ff"

[boot.profiles.pxe]
bios = "undionly.kpxe"

[dhcp]
enabled = false
"""

Client = TestClient[web.Request, web.Application]


@pytest_asyncio.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[App]:
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    async with open_site(load_config(path), store_path=tmp_path / "ddi.sqlite") as site:
        now = time.time()
        await site.store.commit_leases([
            Lease(ip=IPv4Address(f"198.18.0.{100 + i}"), mac=f"52:54:00:00:00:{i:02x}",
                  hostname=f"laptop{i}", start=now - 60, end=now + 3600, subnet="lan")
            for i in range(3)
        ])  # fmt: skip
        await site.store.add_host(
            Host(id="", hostname="printer", mac="52:54:00:aa:00:01", ip=IPv4Address("198.18.1.5")),
            actor="alice", reason="seed",
        )  # fmt: skip
        yield App(site)


@pytest_asyncio.fixture
async def client(daemon: App) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(daemon))) as test_client:
        yield test_client


async def page(client: Client, path: str, status: int = 200) -> str:
    async with client.get(path) as response:
        text = await response.text()
        assert response.status == status, text[:2000]
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert response.content_type == "text/html"
        return text


def rows(html: str) -> list[str]:
    """The body rows of the page's tables, tags stripped, spaces collapsed."""
    out = []
    for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        if '<th scope="col"' in row:
            continue
        out.append(" ".join(re.sub(r"<[^>]+>", " ", row).split()))
    return out


@pytest.mark.asyncio
async def test_every_page_has_landmarks_skip_link_and_labelled_inputs(client: Client) -> None:
    for path in ("/", "/subnets", "/leases", "/leases/history", "/reservations",
                 "/reservations/new", "/changes", "/dns", "/boot"):  # fmt: skip
        html = await page(client, path)
        for landmark in ("<header", "<nav", '<main id="main"'):
            assert landmark in html, (path, landmark)
        assert '<a class="skip" href="#main">' in html
        ids = re.findall(r"<(?:input|select)[^>]*\bid=\"([^\"]+)\"", html)
        labels = set(re.findall(r'<label for="([^"]+)"', html))
        assert set(ids) <= labels, (path, set(ids) - labels)
        assert "<th>" not in html, path  # every header cell says its scope


@pytest.mark.asyncio
async def test_static_stylesheet_is_served_from_the_package(client: Client) -> None:
    async with client.get("/static/console.css") as response:
        assert response.status == 200
        assert ":focus-visible" in await response.text()


@pytest.mark.asyncio
async def test_subnets_fullest_first_with_percentage_as_text(client: Client) -> None:
    html = await page(client, "/subnets")
    body = [r for r in rows(html) if r.startswith(("lan", "big"))]
    # lan: 3 of 4 leased (75%); big: 1 reservation in a pool of 200 is outside the pool (0%).
    assert body[0].startswith("lan 198.18.0.0/24 IPv4 198.18.0.100 - 198.18.0.103")
    assert "75.0%" in body[0]
    assert "big" in body[-1] or "lan6" in body[-1]
    assert any(r.startswith("lan6") and "IPv6" in r and "0.0%" in r for r in rows(html))
    assert 'aria-label="lan 198.18.0.100: 75.0% used"' in html


@pytest.mark.asyncio
async def test_lease_search_by_ip_mac_and_name(client: Client) -> None:
    by_ip = rows(await page(client, "/leases?q=198.18.0.101"))
    assert len(by_ip) == 1
    assert by_ip[0].startswith("198.18.0.101 52:54:00:00:00:01 laptop1 ● bound")
    by_mac = rows(await page(client, "/leases?q=52-54-00-00-00-02"))
    assert [r.split()[0] for r in by_mac] == ["198.18.0.102"]
    by_name = rows(await page(client, "/leases?q=LAPTOP"))
    assert len(by_name) == 3
    none = rows(await page(client, "/leases?q=nobody"))
    assert none == ["No lease matches."]
    too_long = await page(client, "/leases?q=" + "a" * 200)
    assert "at most 128 characters" in too_long


@pytest.mark.asyncio
async def test_lease_history_with_since_until(client: Client) -> None:
    html = await page(client, "/leases/history?subject=198.18.0.100&since=1d")
    found = rows(html)
    assert len(found) == 1
    assert "lease bound 198.18.0.100 52:54:00:00:00:00 laptop0" in found[0]
    assert found[0].endswith("dhcp")
    future = rows(await page(client, "/leases/history?subject=198.18.0.100&since=2099-01-01"))
    assert future == ["Nothing in the change log for 198.18.0.100 in that time."]
    bad = await page(client, "/leases/history?subject=198.18.0.100&until=yesterday")
    assert 'aria-invalid="true"' in bad
    assert "Problem with this field" in bad
    assert "until &#39;yesterday&#39;" in bad


@pytest.mark.asyncio
async def test_change_log_filters(client: Client) -> None:
    hosts = rows(await page(client, "/changes?kind=host&actor=alice"))
    assert len(hosts) == 1
    assert "host" in hosts[0]
    assert "alice seed" in hosts[0]
    leases = rows(await page(client, "/changes?kind=lease&op=upsert"))
    assert len(leases) == 3
    assert "not one of upsert, delete" in await page(client, "/changes?op=drop")


@pytest.mark.asyncio
async def test_reservation_preview_shows_conflict_in_words_then_nothing_written(
    client: Client, daemon: App
) -> None:
    form = {"hostname": "scanner", "mac": "52:54:00:aa:00:02", "ip": "198.18.1.5",
            "reason": "ticket 7", "action": "preview"}  # fmt: skip
    async with client.post("/reservations/new", data=form) as response:
        html = await response.text()
        assert response.status == 422
    assert "Refused: conflict" in html
    assert "ip 198.18.1.5 is already used by" in html
    assert "printer" in html
    assert re.search(r'<div class="field invalid">\s*<label for="f-ip">', html)
    assert 'id="e-ip"' in html
    assert [h.hostname for h in daemon.site.index.hosts()] == ["printer"]


@pytest.mark.asyncio
async def test_reservation_reason_required_preview_then_save(client: Client, daemon: App) -> None:
    form = {"hostname": "scanner", "mac": "52:54:00:aa:00:02", "ip": "198.18.1.6",
            "boot": "pxe", "reason": "", "action": "save"}  # fmt: skip
    async with client.post("/reservations/new", data=form) as response:
        html = await response.text()
    assert "a reason is required" in html
    assert 'id="e-reason"' in html
    form["reason"] = "ticket 8"
    form["action"] = "preview"
    async with client.post("/reservations/new", data=form) as response:
        html = await response.text()
        assert response.status == 200
    assert "Preview: would be allowed" in html
    assert "Nothing has been written yet" in html
    assert len(list(daemon.site.index.hosts())) == 1
    form["action"] = "save"
    async with client.post("/reservations/new", data=form, allow_redirects=False) as response:
        assert response.status == 303
        location = response.headers["Location"]
    shown = await page(client, location)
    assert "Reservation added." in shown
    assert "198.18.1.6" in shown
    host = daemon.site.index.host_by_mac("52:54:00:aa:00:02")
    assert host is not None
    assert host.boot == "pxe"
    changes = await daemon.site.store.changes(after=0, limit=100)
    assert changes[-1].reason == "ticket 8"


@pytest.mark.asyncio
async def test_reservation_listing_is_bounded_and_says_so(
    client: Client, daemon: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ddi.console import reservations

    monkeypatch.setattr(reservations, "MAX_ROWS", 1)
    await daemon.site.store.add_host(
        Host(id="", hostname="zz", mac="52:54:00:aa:00:0f", ip=IPv4Address("198.18.1.99")),
        actor="alice", reason="seed",
    )  # fmt: skip
    html = await page(client, "/reservations")
    assert "2 reservations match; the first 1 are shown" in html
    assert len(rows(html)) == 1


@pytest.mark.asyncio
async def test_unknown_reservation_is_a_page_saying_so(client: Client) -> None:
    for path in ("/reservations/nosuch", "/reservations/nosuch/edit"):
        html = await page(client, path, status=404)
        assert "There is no host nosuch." in html
    async with client.post("/reservations/nosuch/remove", data={"reason": "x"}) as response:
        assert response.status == 404
        assert "There is no host nosuch." in await response.text()


@pytest.mark.asyncio
async def test_reservation_edit_and_remove_with_preview(client: Client, daemon: App) -> None:
    host = daemon.site.index.host_by_mac("52:54:00:aa:00:01")
    assert host is not None
    form = {"hostname": "printer", "mac": "52:54:00:aa:00:01", "ip": "198.18.1.7", "ip6": "",
            "boot": "nosuch", "reason": "move", "action": "save"}  # fmt: skip
    async with client.post(f"/reservations/{host.id}/edit", data=form) as response:
        html = await response.text()
    assert "no such boot profile" in html
    form["boot"] = ""
    async with client.post(
        f"/reservations/{host.id}/edit", data=form, allow_redirects=False
    ) as response:
        assert response.status == 303
    moved = daemon.site.index.host_by_mac("52:54:00:aa:00:01")
    assert moved is not None
    assert str(moved.ip) == "198.18.1.7"
    gone = {"reason": "retired", "action": "preview"}
    async with client.post(f"/reservations/{host.id}/remove", data=gone) as response:
        assert "removing printer would be allowed" in await response.text()
    assert daemon.site.index.host_by_mac("52:54:00:aa:00:01") is not None
    gone["action"] = "save"
    async with client.post(f"/reservations/{host.id}/remove", data=gone) as response:
        assert "Reservation removed." in await response.text()
    assert daemon.site.index.host_by_mac("52:54:00:aa:00:01") is None


@pytest.mark.asyncio
async def test_overview_dns_and_boot(client: Client) -> None:
    html = await page(client, "/")
    assert "Not configured: this site keeps its changes locally." in html
    assert "3 bound leases" in html
    assert "DHCP packets received" in html
    assert "<svg" in html
    lan = next(r for r in rows(html) if r.startswith("lan "))
    assert "75.0%" in lan
    dns = await page(client, "/dns")
    assert "The DNS service is not running." in dns
    assert any(r.startswith("printer.site.example 198.18.1.5") for r in rows(dns))
    metrics.BOOT_OFFERS.labels(profile="pxe", rule="test").inc(3)
    metrics.BOOT_FETCHES_STARTED.labels(protocol="tftp", profile="pxe").inc(1)
    boot = await page(client, "/boot?mac=52:54:00:aa:00:01")
    funnel = next(r for r in rows(boot) if r.startswith("pxe "))
    assert "offered but no fetch" in funnel
    assert "printer (198.18.1.5)" in boot
    bad = await page(client, "/boot?mac=zz")
    assert 'aria-invalid="true"' in bad
    assert "Refused: not valid" in bad
