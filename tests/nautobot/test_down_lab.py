"""Issue 17's "done when", end to end with real clients: an edge site in a network namespace
(``ddi serve`` with DHCP and DNS on its LAN, its WAN a veth to the root namespace where
``ddi-central serve`` and Nautobot run), a real DHCP client (dhclient) and dig on the LAN.

* A reservation made at the edge while the WAN is down appears in Nautobot once it returns.
* One made in Nautobot's API reaches the edge: dhclient gets that address, dig resolves the
  name at the edge.
* A conflict between the two (Nautobot reserves, while the WAN is down, an address the edge
  reserved for another MAC) is visible on both sides: ``ddi sync conflicts`` at the edge,
  ``ddi-central conflicts``, and a Note on the Nautobot address.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from central.nautobot.reserve import host_id
from ddi.cli.client import ApiClient
from ddi.lab import Lab
from tests.ci import require_root, require_tools
from tests.nautobot.lab import NautobotLab
from tests.nautobot.test_down import (
    addresses,
    central_conflicts,
    down_log,
    h,
    nautobot_config,
    notes,
    reserve,
    until,
)

WAN_ROOT = "198.19.254.1"
WAN_SITE = "198.19.254.2"
"""The WAN link's /30 (inside the lab range 198.18.0.0/15)."""

BODY = """
[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"
dns_servers = ["198.18.0.1"]
interface = "ddi0"
lease_time = 600

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.199"

[dhcp]
enabled = true

[dns]
listen = ["198.18.0.1:53"]
ns_address = "198.18.0.1"
"""


@dataclass
class Site:
    """The edge daemon in the site namespace, as the harness' comparisons want it."""

    site: str
    db: Path
    socket: Path
    proc: subprocess.Popen[str]

    def api(self) -> ApiClient:
        return ApiClient(str(self.socket), timeout=30)

    async def status(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.api().get, "/v1/sync/status")  # type: ignore[no-any-return]


@dataclass
class World:
    lab: Lab
    srv: str
    cli: str
    site: Site
    central: Any
    nautobot: NautobotLab
    namespace: str
    folder: Path

    def wan(self, up: bool) -> None:
        subprocess.run(["ip", "-n", self.srv, "link", "set", "wan", "up" if up else "down"],
                       check=True, timeout=30)  # fmt: skip

    def dig(self, *args: str) -> str:
        return self.lab.run(self.cli, "dig", "@198.18.0.1", "+tries=2", "+time=1", *args,
                            check=False).stdout  # fmt: skip


@dataclass
class Net:
    lab: Lab
    srv: str
    cli: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def net() -> Iterator[Net]:
    """The site's LAN (srv ddi0 ── cli eth0) and its WAN, a veth from the root namespace
    (central, Nautobot) into the site's: ``WAN_ROOT`` ── ``wan`` ``WAN_SITE``."""
    require_root("needs root for network namespaces")
    require_tools("ip", "dhclient", "dig")
    root_if = f"ndw{os.getpid() % 100000}"
    with Lab(f"nd{os.getpid() % 100000}") as lab:
        srv = lab.namespace("srv")
        cli = lab.namespace("cli")
        lab.link(srv, "ddi0", "198.18.0.1/24", cli, "eth0", "198.18.0.250/24")
        _ip("link", "add", root_if, "type", "veth", "peer", "name", "wan", "netns", srv)
        try:
            _ip("addr", "add", f"{WAN_ROOT}/30", "dev", root_if)
            _ip("link", "set", root_if, "up")
            _ip("-n", srv, "addr", "add", f"{WAN_SITE}/30", "dev", "wan")
            _ip("-n", srv, "link", "set", "wan", "up")
            yield Net(lab=lab, srv=srv, cli=cli)
        finally:
            subprocess.run(["ip", "link", "del", root_if], check=False, capture_output=True)


@pytest_asyncio.fixture
async def world(net: Net, nautobot_running: NautobotLab, tmp_path: Path) -> AsyncIterator[World]:
    lab, srv, cli = net.lab, net.srv, net.cli
    proxy = h.FaultProxy(0)
    try:
        folder = tmp_path / "central"
        folder.mkdir()
        central_key = h.write_key(folder / "central.key")
        edge_folder = tmp_path / "edge"
        edge_folder.mkdir()
        site_key = h.write_key(edge_folder / "site.key")
        central = h.Central(folder, f"sqlite://{folder / 'central.sqlite'}",
                            Path(f"{site_key}.pub"))  # fmt: skip
        # Central listens on loopback; the site reaches it on the WAN address.
        proxy.upstream = central.port
        await proxy.start(WAN_ROOT)
        namespace = f"nsl-{tmp_path.name[-40:]}"
        with central.config.open("a") as config:
            config.write(nautobot_config(nautobot_running, folder, namespace))
        await central.start()
        socket = edge_folder / "ddi.sock"
        (edge_folder / "ddi.toml").write_text(
            f'[site]\nid = "{h.SITE}"\ndomain = "s1.example"\ndata_dir = "{edge_folder}/data"\n\n'
            f'[api]\nsocket = "{socket}"\n'
            f"{BODY}\n"
            "[sync]\n"
            f'central_url = "http://{WAN_ROOT}:{proxy.port}"\n'
            "insecure_http = true\n"
            f'site_key = "{site_key}"\n'
            f'central_public_key = "{central_key}.pub"\n'
            "backoff_base = 0.05\nbackoff_cap = 0.5\npoll_interval = 0.3\ntimeout = 5.0\n"
        )
        log = (edge_folder / "edge.log").open("a")
        config = str(edge_folder / "ddi.toml")
        proc = lab.popen(srv, sys.executable, "-m", "ddi", "serve", "--config", config,
                         stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        log.close()
        site = Site(site=h.SITE, db=edge_folder / "data" / "ddi.sqlite", socket=socket, proc=proc)

        def healthy() -> bool:
            assert proc.poll() is None, (edge_folder / "edge.log").read_text()[-3000:]
            try:
                site.api().get("/healthz")
            except Exception:  # noqa: BLE001 - not up yet, whatever the reason
                return False
            return True

        await until(healthy, "the edge daemon", within=30)
        yield World(lab=lab, srv=srv, cli=cli, site=site, central=central,
                    nautobot=nautobot_running, namespace=namespace, folder=tmp_path)  # fmt: skip
        await central.stop()
    finally:
        await proxy.close()


def mac_of(lab: Lab, ns: str, ifname: str) -> str:
    shown = lab.run(ns, "ip", "-j", "link", "show", ifname).stdout
    return str(json.loads(shown)[0]["address"])


@pytest.mark.asyncio
async def test_wan_down_reservations_nautobot_reservations_and_a_conflict(world: World) -> None:
    w = world
    edge = w.site.api()
    await h.wait_synced(w.site, w.central, within=60)
    await until(lambda: w.nautobot.all(f"/api/ipam/namespaces/?name={w.namespace}"),
                "the site's namespace in Nautobot")  # fmt: skip
    await until(lambda: w.nautobot.all(f"/api/ipam/prefixes/?namespace={w.namespace}"),
                "the site's prefix in Nautobot")  # fmt: skip
    await until(lambda: w.nautobot.all("/api/extras/tags/?name=ddi-reserve"), "the tag")

    # The WAN goes down. The edge reserves two addresses; in Nautobot an operator reserves
    # one for the LAN's laptop and one the edge just took, for another client.
    w.wan(up=False)
    why = {"actor": "test", "reason": "wan down"}
    await asyncio.to_thread(edge.post, "/v1/hosts", {"ip": "198.18.0.31", "hostname": "printer",
                            "mac": "52:54:00:00:31:31"} | why)  # fmt: skip
    await asyncio.to_thread(edge.post, "/v1/hosts", {"ip": "198.18.0.30", "hostname": "camera",
                            "mac": "52:54:00:00:30:30"} | why)  # fmt: skip
    laptop_mac = mac_of(w.lab, w.cli, "eth0")
    laptop = reserve(w.nautobot, w.namespace, "198.18.0.20/24", mac=laptop_mac,
                     dns_name="laptop.s1.example")  # fmt: skip
    scanner = reserve(w.nautobot, w.namespace, "198.18.0.30/24", mac="52:54:00:00:30:99",
                      dns_name="scanner")  # fmt: skip
    status = await w.site.status()
    assert status["backlog_entries"] >= 2
    assert not addresses(w.nautobot, w.namespace, "198.18.0.31")
    # Central queues both (it cannot know the edge took .30) before the WAN returns.
    database = w.folder / "central" / "central.sqlite"
    await until(lambda: {host_id(laptop), host_id(scanner)}
                <= {e["id"] for e in down_log(database)}, "both queued at central")  # fmt: skip

    w.wan(up=True)
    # 1. The edge's reservation made while the WAN was down appears in Nautobot.
    await h.wait_synced(w.site, w.central, within=120)

    def printer() -> dict[str, Any] | None:
        found = addresses(w.nautobot, w.namespace, "198.18.0.31")
        return found[0] if found and found[0]["dns_name"] == "printer" else None

    shown = await until(printer, "the printer in Nautobot")
    assert shown["custom_fields"]["ddi_mac"] == "52:54:00:00:31:31"
    assert len(addresses(w.nautobot, w.namespace, "198.18.0.31")) == 1

    # 2. The one made in Nautobot reaches the edge's DHCP and DNS.
    def at_edge() -> bool:
        found = edge.get("/v1/hosts")["hosts"]
        return any(x["id"] == host_id(laptop) and x["owner"] == "central" for x in found)

    await until(at_edge, "the laptop's reservation at the edge")
    files = ["-lf", str(w.folder / "leases"), "-pf", str(w.folder / "dhclient.pid")]
    got = w.lab.run(w.cli, "dhclient", "-sf", "/bin/true", "-1", "-v", *files, "eth0",
                    timeout=60, check=False)  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert "fixed-address 198.18.0.20;" in (w.folder / "leases").read_text()
    leases = edge.get("/v1/leases")["leases"]
    assert [x["ip"] for x in leases if x["mac"] == laptop_mac] == ["198.18.0.20"]
    assert w.dig("+short", "laptop.s1.example").strip() == "198.18.0.20"
    assert w.dig("+short", "-x", "198.18.0.20").strip() == "laptop.s1.example."

    # 3. The conflict, on both sides: the edge keeps its camera and reports it.
    def reported() -> list[dict[str, Any]]:
        return [c for c in edge.get("/v1/sync/conflicts")["conflicts"]
                if c["object_id"] == host_id(scanner)]  # fmt: skip

    at_site = await until(reported, "the conflict at the edge")
    assert (at_site[0]["field"], at_site[0]["value"]) == ("ip", "198.18.0.30")
    assert at_site[0]["edge_image"]["hostname"] == "camera"
    cli = w.lab.run(w.srv, sys.executable, "-m", "ddi", "--socket", str(w.site.socket), "sync",
                    "conflicts", check=False)  # fmt: skip
    assert "198.18.0.30" in cli.stdout, cli.stdout + cli.stderr
    await until(lambda: [r for r in central_conflicts(w.central)
                         if r["object_id"] == host_id(scanner) and r["field"] == "ip"],
                "the conflict at central")  # fmt: skip
    assert "198.18.0.30" in w.central.cli("conflicts").stdout
    await until(lambda: [n for n in notes(w.nautobot, scanner) if "reports a conflict" in n],
                "the conflict noted on the Nautobot address")  # fmt: skip
    assert w.dig("+short", "camera.s1.example").strip() == "198.18.0.30"
    assert w.dig("+short", "scanner.s1.example").strip() == ""
    # Nautobot holds one address per IP: the operator's, as the operator made them.
    laptop_now = addresses(w.nautobot, w.namespace, "198.18.0.20")
    assert [a["id"] for a in laptop_now] == [laptop]
    assert {t["name"] for t in laptop_now[0]["tags"]} == {"ddi-reserve"}
    assert [a["id"] for a in addresses(w.nautobot, w.namespace, "198.18.0.30")] == [scanner]
    await h.wait_synced(w.site, w.central, within=60)
    await h.assert_same(w.site, w.central)
