"""The site console in a real browser against a real daemon in the lab.

Topology: ``srv`` runs ``ddi serve`` (DHCP on ddi0, DNS and the admin API's TCP listener on
198.18.0.1) and the browser (chromium, through ``ip netns exec``); ``cli`` runs dhclient and dig.

    cli  eth0 198.18.0.250/24 ──── ddi0 198.18.0.1/24  srv

The tests drive the pages the way an operator does (keyboard included), check the results
where they land (the daemon's API, a real DNS answer) and take the README's screenshots.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ddi.lab import Lab
from tests.browser.conftest import BrowserLab, screenshot, spki_pin, tab_to
from tests.integration.conftest import DaemonHandle, require
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    # conftest's health probe leaves a unix socket unclosed when connect() fails.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

URL = "https://198.18.0.1:8053"
CLIENT_MAC = "52:54:00:00:16:01"
PRINTER_MAC = "52:54:00:00:16:02"


def _config(workdir: Path) -> str:
    return f"""
[site]
id = "lab1"
domain = "site1.example"
data_dir = "{workdir / "var"}"

[api]
socket = "{workdir / "ddi.sock"}"
listen = "198.18.0.1:8053"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"
dns_servers = ["198.18.0.1"]
interface = "ddi0"
lease_time = 600

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.109"

[dhcp]
interfaces = ["ddi0"]

[dns]
listen = ["198.18.0.1:53"]

[boot.profiles.pxe]
bios = "undionly.kpxe"
"""


def _dhclient(lab: Lab, ns: str, folder: Path, name: str) -> str:
    """dhclient (scripts off) once, in the foreground until bound: the address it bound."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / f"{name}.conf"
    conf.write_text(f'send host-name "{name}";\n')
    files = ["-cf", str(conf), "-lf", str(folder / f"{name}.leases"),
             "-pf", str(folder / f"{name}.pid")]  # fmt: skip
    argv = ["dhclient", "-sf", "/bin/true", "-1", "-d", "-v", *files, "eth0"]
    proc = lab.popen(ns, *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    bound = None
    for line in proc.stdout:  # dhclient -1 exits non-zero when it gets nothing in its time
        found = re.search(r"bound to (\S+)", line)
        if found:
            bound = found.group(1)
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert bound is not None, "dhclient did not bind"
    return bound


def _dig(lab: Lab, ns: str, *args: str) -> str:
    return lab.run(ns, "dig", "@198.18.0.1", "+tries=2", "+time=1", *args, check=False).stdout


@pytest.fixture
def site(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle], tmp_path: Path
) -> tuple[str, str, DaemonHandle]:
    require("dhclient", "dig", "chromium")
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", "198.18.0.1/24", cli, "eth0", "198.18.0.250/24")
    lab.run(cli, "ip", "link", "set", "eth0", "address", CLIENT_MAC)
    # The folder ddi_daemon gives its first daemon (its socket is where it probes health).
    daemon = ddi_daemon(srv, _config(tmp_path / "ddi0"))
    return srv, cli, daemon


def _token(daemon: DaemonHandle, name: str, scope: str) -> str:
    """A token made as an operator makes one: ``ddi token add`` on the site's socket."""
    made = daemon.cli("token", "add", name, "--scope", scope)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _browser(browser_lab: BrowserLab, ns: str, daemon: DaemonHandle) -> Any:
    """A browser in ``ns`` that trusts the daemon's self-signed certificate (pinned)."""
    pem = (daemon.workdir / "var" / "api-cert.pem").read_bytes()
    return browser_lab.open(ns=ns, base_url=URL, pins=[spki_pin(pem)])


def _sign_in(page: Any, secret: str, *, shot: str | None = None) -> None:
    """Open the console and sign in with the token through the login form, by keyboard."""
    page.goto("/")
    page.wait_for_url(re.compile(r"/login\?next=/$"))
    assert page.evaluate("document.activeElement.id") == "f-token"  # autofocus
    if shot:
        screenshot(page, shot)
    page.keyboard.type(secret)
    page.keyboard.press("Enter")
    page.wait_for_url(URL + "/")


def _reservations(daemon: DaemonHandle) -> list[dict[str, Any]]:
    hosts: list[dict[str, Any]] = daemon.api("/v1/hosts")["hosts"]
    return hosts


def test_operator_journey(
    lab: Lab, site: tuple[str, str, DaemonHandle], browser_lab: BrowserLab, tmp_path: Path
) -> None:
    srv, cli, daemon = site
    leased = _dhclient(lab, cli, tmp_path / "dhclient", "laptop16")
    secret = _token(daemon, "operator", "write")
    page = _browser(browser_lab, srv, daemon).new_page()

    # Sign in with the token; the overview: services and the store, readable as text.
    _sign_in(page, secret, shot="login")
    assert page.locator("h1").inner_text() == "Overview"
    assert "Signed in as operator (write)" in page.locator("header").inner_text()
    services = page.locator("section", has=page.locator("#h-services"))
    for name in ("dhcp", "dns"):
        assert "running" in services.locator("tr", has_text=name).inner_text()
    assert "1 bound leases" in page.locator("main").inner_text()
    screenshot(page, "overview")

    # Leases: Tab from the top of the page to the search box, type the MAC, Enter.
    page.goto("/leases")
    presses = tab_to(page, "q")
    assert presses <= 12, f"{presses} presses of Tab to reach the search box"
    page.keyboard.type(CLIENT_MAC.upper().replace(":", "-"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/leases\?q="))
    row = page.locator("tbody tr").first
    assert row.locator("th").inner_text() == leased
    assert "laptop16" in row.inner_text()
    assert "bound" in row.inner_text()
    screenshot(page, "leases")

    # ... and who had that address: its history.
    row.get_by_role("link", name=f"who had {leased}").click()
    page.wait_for_url(re.compile(r"/leases/history"))
    history = page.locator("tbody").inner_text()
    assert "bound" in history
    assert CLIENT_MAC in history
    screenshot(page, "lease-history")

    # Add a reservation: Preview first (nothing written), then Save; dig sees it at once.
    page.goto("/reservations/new")
    page.get_by_label("Host name").fill("printer")
    page.get_by_label("MAC address").fill(PRINTER_MAC)
    page.get_by_label("IPv4 address").fill("198.18.0.20")
    page.get_by_label("Boot profile").select_option("pxe")
    page.get_by_label("Reason").fill("ticket 16: the new printer")
    page.get_by_role("button", name="Preview").click()
    assert "Preview: would be allowed" in page.locator(".preview").inner_text()
    assert _reservations(daemon) == []
    screenshot(page, "reservation-preview")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/reservations/[^/]+\?done=added"))
    assert "Reservation added." in page.locator("main").inner_text()
    [printer] = _reservations(daemon)
    assert (printer["hostname"], printer["ip"], printer["boot"]) == (
        "printer",
        "198.18.0.20",
        "pxe",
    )
    wait_until(lambda: _dig(lab, cli, "+short", "printer.site1.example").strip() == "198.18.0.20",
               "printer.site1.example to resolve")  # fmt: skip
    changes = daemon.api("/v1/changes?kind=host")["changes"]
    assert (changes[-1]["actor"], changes[-1]["reason"]) == (
        "token:operator", "ticket 16: the new printer",
    )  # fmt: skip

    # A conflict, explained in words at the field, on Preview and on Save; nothing written.
    page.goto("/reservations/new")
    page.get_by_label("Host name").fill("scanner")
    page.get_by_label("MAC address").fill("52:54:00:00:16:03")
    page.get_by_label("IPv4 address").fill("198.18.0.20")
    page.get_by_label("Reason").fill("ticket 17")
    for button in ("Preview", "Save"):
        page.get_by_role("button", name=button).click()
        alert = page.get_by_role("alert")
        assert "Refused: conflict" in alert.inner_text()
        assert "ip 198.18.0.20 is already used by" in alert.inner_text()
        ip_box = page.get_by_label("IPv4 address")
        assert ip_box.get_attribute("aria-invalid") == "true"
        assert "Problem with this field" in page.locator("#e-ip").inner_text()
        if button == "Preview":
            screenshot(page, "reservation-conflict")
    assert [h["hostname"] for h in _reservations(daemon)] == ["printer"]

    # Why does the printer netboot the way it does: boot explain for its MAC.
    page.goto("/boot")
    tab_to(page, "f-mac")
    page.keyboard.type(PRINTER_MAC)
    page.keyboard.press("Tab")
    page.keyboard.type("0")  # BIOS; the vendor class is PXEClient already
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/boot\?mac="))
    explained = page.locator("#h-explained").locator("..").inner_text()
    assert "printer (198.18.0.20)" in explained
    assert "pxe" in explained
    assert "undionly.kpxe" in explained
    screenshot(page, "boot")

    # Subnets: the pool's level as text; the change log with a filter.
    page.goto("/subnets")
    lan = page.locator("tbody tr", has_text="198.18.0.100 - 198.18.0.109").inner_text()
    assert "10.0%" in lan  # 1 lease of 10; the reservation is outside the pool
    screenshot(page, "subnets")
    page.goto("/changes")
    page.get_by_label("Kind").select_option("host")
    page.get_by_role("button", name="Filter").click()
    assert "ticket 16: the new printer" in page.locator("tbody").inner_text()
    screenshot(page, "changes")


def test_read_token_sees_everything_and_no_forms(
    site: tuple[str, str, DaemonHandle], browser_lab: BrowserLab
) -> None:
    srv, _cli, daemon = site
    made = daemon.cli("reserve", "add", "--mac", PRINTER_MAC, "--ip", "198.18.0.20",
                      "--hostname", "printer", "--reason", "seed")  # fmt: skip
    assert made.returncode == 0, made.stderr
    page = _browser(browser_lab, srv, daemon).new_page()
    _sign_in(page, _token(daemon, "noc", "read"))
    assert "Signed in as noc (read)" in page.locator("header").inner_text()

    page.goto("/reservations")
    assert page.locator("tbody").inner_text().startswith("printer")
    assert page.get_by_role("link", name="Add a reservation").count() == 0
    page.get_by_role("link", name="printer").click()
    assert "52:54:00:00:16:02" in page.locator("main").inner_text()
    assert page.locator("main form").count() == 0
    assert page.get_by_role("button", name="Remove").count() == 0
    screenshot(page, "read-only")

    # The form is not shown, and its POST is refused anyway, CSRF value and all.
    csrf = page.locator('header input[name="csrf"]').get_attribute("value")
    assert csrf
    # Posted from the page itself (its cookie, its origin), as a crafted form would be.
    status, body = page.evaluate(
        """async (csrf) => {
            const form = new URLSearchParams({csrf, hostname: "rogue", mac: "52:54:00:00:16:09",
                                              ip: "198.18.0.21", reason: "no", action: "save"});
            const answer = await fetch("/reservations/new", {method: "POST", body: form});
            return [answer.status, await answer.json()];
        }""",
        csrf,
    )
    assert status == 403
    assert body["scope"] == "write"
    assert [h["hostname"] for h in _reservations(daemon)] == ["printer"]

    # Signing out ends the session: the console asks for a token again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login"))
    page.goto("/reservations")
    page.wait_for_url(re.compile(r"/login\?next=/reservations"))
