"""The fleet console in a real browser: ``ddi-central serve`` with two real edges (``ddi serve``
processes syncing to it over loopback, as in tests/net/sync/test_sync_e2e.py).

An operator signs in with a read token and sees both sites up; one edge stops and its site goes
stale (``stale_after = 3`` here); a MAC reserved at both sites is found across them; a
conflict a site reported is explained with its fix; a token narrowed to one site sees that site
only. The screenshots in the README (``docs/screenshots/fleet-*.png``) are taken here
(``make screenshots``).

The browser is driven through Playwright's sync API, so the processes are started and stopped
synchronously too (no event loop runs beside Playwright's).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import BrowserLab, screenshot, tab_to
from tests.net.sync import harness as h
from tests.waiting import wait_until

SHARED_MAC = "52:54:00:16:00:01"
"""Reserved at both sites: the laptop that moved."""
STALE_AFTER = 3


@dataclass
class Fleet:
    central: h.Central
    edges: dict[str, h.Edge]
    secrets: dict[str, str]


def _spawned(proc: subprocess.Popen[bytes] | None, log: Path) -> None:
    assert proc is not None
    if proc.poll() is not None:
        raise AssertionError(f"exited: {log.read_text()[-2000:]}")


def _get(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def _central_up(central: h.Central) -> bool:
    _spawned(central.proc, central.log)
    try:
        return bool(_get(f"{central.url}/healthz")["status"] == "ok")
    except OSError:
        return False


def _edge_up(edge: h.Edge) -> bool:
    return edge._healthy()


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _as_site(edge: h.Edge, site: str) -> None:
    """The harness writes every edge as site s1: make this one ``site``."""
    text = edge.config.read_text()
    text = text.replace(f'id = "{h.SITE}"', f'id = "{site}"', 1)
    edge.config.write_text(text.replace('domain = "s1.example"', f'domain = "{site}.example"'))


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    port = h.free_port()
    url = f"http://127.0.0.1:{port}"
    central_folder = tmp_path / "central"
    central_folder.mkdir()
    key = h.write_key(central_folder / "central.key")
    edges = {
        site: h.Edge(tmp_path / site, url, Path(f"{key}.pub"), poll_interval=0.3)
        for site in ("s1", "s2")
    }
    _as_site(edges["s2"], "s2")
    central = h.Central(central_folder, f"sqlite://{tmp_path}/central.sqlite",
                        Path(f"{edges['s1'].key}.pub"), port=port)  # fmt: skip
    central.cli("site", "add", "--id", "s2", "--public-key", f"{edges['s2'].key}.pub")
    with central.config.open("a") as config:
        config.write(f'tokens_file = "tokens.json"\nstale_after = {STALE_AFTER}\n')
    secrets = {}
    for name, extra in (("noc", ()), ("s1-team", ("--site", "s1"))):
        made = central.cli("token", "add", "--config", str(central.config), name,
                           "--scope", "read", *extra)  # fmt: skip
        secrets[name] = made.stdout.strip().splitlines()[-1]
    try:
        central._spawn()
        wait_until(lambda: _central_up(central), "central to listen", within=30)
        for edge in edges.values():
            edge._spawn()
        for edge in edges.values():
            wait_until(lambda e=edge: _edge_up(e), "an edge to serve", within=30)
        yield Fleet(central=central, edges=edges, secrets=secrets)
    finally:
        for edge in edges.values():
            _stop(edge.proc)
        _stop(central.proc)


def _populate(fleet: Fleet) -> None:
    s1, s2 = fleet.edges["s1"].api(), fleet.edges["s2"].api()
    s1.post("/v1/hosts", h.host_body(1, mac=SHARED_MAC, hostname="laptop"))
    s1.post("/v1/hosts", h.host_body(2))
    s2.post("/v1/hosts", h.host_body(3, mac=SHARED_MAC, hostname="laptop"))
    # An address record at rack1.s1.example: central's reservation for a host named rack1
    # passes central's checks (no host of that name) and is refused at the site.
    record = {"name": "rack1.s1.example", "rtype": "A", "value": h.ip_of(40)}
    s1.post("/v1/dns/records", record | {"actor": "test", "reason": "lab"})
    token = fleet.secrets["noc"]
    base = fleet.central.url

    def synced() -> bool:
        hosts = {
            site: _get(f"{base}/v1/sites/{site}/hosts", token)["hosts"] for site in ("s1", "s2")
        }
        return len(hosts["s1"]) == 2 and len(hosts["s2"]) == 1

    wait_until(synced, "both sites' hosts at central", within=60)
    fleet.central.cli("reserve", "add", "--site", "s1", "--mac", "52:54:00:16:00:09",
                      "--ip", h.ip_of(41), "--hostname", "rack1")  # fmt: skip

    def reported() -> bool:
        return len(_get(f"{base}/v1/conflicts", token)["conflicts"]) == 1

    wait_until(reported, "the site to report the conflict", within=60)


def _sign_in(page: Any, secret: str) -> None:
    page.goto("/")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_label("Token").focus()
    page.keyboard.type(secret)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"^http://[^/]+/$"))


def _state(page: Any, site: str) -> str:
    return str(page.locator(f'tr[data-site="{site}"] [data-state]').get_attribute("data-state"))


def test_fleet_console_in_a_browser(fleet: Fleet, browser_lab: BrowserLab) -> None:
    _populate(fleet)
    page = browser_lab.open(base_url=fleet.central.url).new_page()
    _sign_in(page, fleet.secrets["noc"])
    assert "Signed in as noc (read)" in page.locator("header").inner_text()
    wait_until(lambda: page.reload() and _state(page, "s1") == _state(page, "s2") == "up",
               "both sites up", within=15)  # fmt: skip
    row = page.locator('tr[data-site="s1"]').inner_text()
    assert "up" in row  # in words, not colour alone
    assert "s ago" in row
    screenshot(page, "fleet-sites")

    # One edge stops: its site goes stale once stale_after passes without a poll.
    _stop(fleet.edges["s2"].proc)

    def s2_stale() -> bool:
        page.reload()
        return _state(page, "s2") == "stale"

    wait_until(s2_stale, "site s2 to go stale", within=STALE_AFTER + 20)
    assert _state(page, "s1") == "up"
    s2_row = page.locator('tr[data-site="s2"]').inner_text()
    assert "stale" in s2_row
    assert "unknown (link stale)" in s2_row
    assert "2 sites: 1 up, 1 stale" in page.locator("main").inner_text()
    screenshot(page, "fleet-stale")

    # Where is this MAC? Typed by keyboard into the search field, in another notation.
    page.goto("/search")
    tab_to(page, "f-q")
    page.keyboard.type(SHARED_MAC.upper().replace(":", "-"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q="))
    assert "2 matches for the mac" in page.locator("#summary").inner_text()
    sites = page.locator("#results tbody tr").evaluate_all("rows => rows.map(r => r.dataset.site)")
    assert sorted(sites) == ["s1", "s2"]
    screenshot(page, "fleet-search")

    # The conflict, explained, with both ways out.
    page.goto("/conflicts")
    section = page.locator("section.problem").first
    text = section.inner_text()
    assert "wants hostname rack1, which the site already gives to record rack1.s1.example" in text
    assert "the site keeps serving its own" in text
    assert "ddi-central reserve remove --site s1" in section.locator(".fix-central").inner_text()
    assert "ddi sync resolve" in section.locator(".fix-edge").inner_text()
    screenshot(page, "fleet-conflicts")

    # A token narrowed to s1: one site, and 403 on the other's page.
    narrowed = browser_lab.open(base_url=fleet.central.url).new_page()
    _sign_in(narrowed, fleet.secrets["s1-team"])
    assert narrowed.locator("#sites tbody tr").count() == 1
    assert _state(narrowed, "s1") == "up"
    assert "(read, sites s1)" in narrowed.locator("header").inner_text()
    answer = narrowed.goto("/sites/s2")
    assert answer is not None
    assert answer.status == 403
    assert "does not reach site s2" in narrowed.locator("main").inner_text()
    narrowed.goto("/sites/s1")
    assert "2 hosts" in narrowed.locator("#shown").inner_text()
    screenshot(narrowed, "fleet-site")
