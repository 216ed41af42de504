"""A site in network namespaces with a real DHCP client, its WAN link cut and restored, and
Nautobot compared with the edge afterwards (issue 17: "a reservation made at the edge with the
WAN down appears in Nautobot once the WAN returns").

Topology (198.18.0.0/15 only):

    cli  eth0 198.18.0.250/24 ── ddi0 198.18.0.1/24  site (ddi serve: DHCP, sync)
                                       wan0 198.19.255.2/30 ── 198.19.255.1/30 root namespace
                                                                (ddi-central serve → Nautobot
                                                                 on loopback)

The WAN is the veth into the root namespace: cutting it is ``ip link set ... down``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddi.cli.client import ApiClient
from ddi.lab import Lab
from tests.ci import require_root, require_tools
from tests.nautobot.lab import NautobotLab
from tests.nautobot.test_central_nautobot import edge_view, h, nautobot_view
from tests.waiting import wait_until

BIN = Path(sys.executable).parent
WAN_ROOT, WAN_SITE = "198.19.255.1", "198.19.255.2"
# The namespaces' health probes may leave a unix socket unclosed when connect() fails.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _edge_config(folder: Path, central_url: str, central_pub: Path) -> str:
    return f"""
[site]
id = "{h.SITE}"
domain = "s1.example"
data_dir = "{folder / "data"}"

[api]
socket = "{folder / "ddi.sock"}"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"
interface = "ddi0"
lease_time = 600
[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.149"

[dhcp]
interfaces = ["ddi0"]

[dns]
enabled = false

[sync]
central_url = "{central_url}"
insecure_http = true
site_key = "{folder / "site.key"}"
central_public_key = "{central_pub}"
backoff_base = 0.05
backoff_cap = 0.5
poll_interval = 0.3
timeout = 3.0
"""


def _dhclient(lab: Lab, ns: str, folder: Path, name: str) -> str:
    """dhclient (script off) once until bound; the address it bound."""
    conf = folder / f"{name}.conf"
    conf.write_text(f'send host-name "{name}";\n')
    files = ["-cf", str(conf), "-lf", str(folder / f"{name}.leases"),
             "-pf", str(folder / f"{name}.pid")]  # fmt: skip
    proc = lab.popen(ns, "dhclient", "-sf", "/bin/true", "-1", "-d", "-v", *files, "eth0",
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    found = None
    while found is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        found = re.search(r"bound to (\S+)", line)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert found is not None, "dhclient did not bind"
    return found.group(1)


def test_lease_and_reservation_made_with_the_wan_down_reach_nautobot(
    nautobot_running: NautobotLab, tmp_path: Path
) -> None:
    require_root("needs root for network namespaces")
    require_tools("ip", "dhclient")
    lab_nb = nautobot_running
    namespace = f"ns-lab-{os.getpid()}"
    central_dir, edge_dir = tmp_path / "central", tmp_path / "edge"
    central_dir.mkdir()
    edge_dir.mkdir()
    central_key = h.write_key(central_dir / "central.key")
    h.write_key(edge_dir / "site.key")
    port = h.free_port()
    (central_dir / "read.token").write_text("lab-read-token\n")
    (central_dir / "nautobot.token").write_text(lab_nb.token + "\n")
    config = central_dir / "central.toml"
    config.write_text(
        f'[central]\nlisten = "{WAN_ROOT}:{port}"\n'
        f'database = "sqlite://{central_dir / "central.sqlite"}"\n'
        'signing_key = "central.key"\ninsecure_http = true\nread_token_file = "read.token"\n\n'
        f'[nautobot]\nurl = "{lab_nb.url}"\ntoken_file = "nautobot.token"\ninterval = 0.2\n'
        f'[nautobot.sites.{h.SITE}]\nlocation = "{namespace}"\nnamespace = "{namespace}"\n'
    )
    subprocess.run(
        [str(BIN / "ddi-central"), "site", "add", "--config", str(config), "--id", h.SITE,
         "--public-key", str(edge_dir / "site.key.pub")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    root_if = f"nbwan{os.getpid() % 100000}"
    with Lab(f"nb{os.getpid() % 100000}") as lab:
        site, cli = lab.namespace("site"), lab.namespace("cli")
        lab.link(site, "ddi0", "198.18.0.1/24", cli, "eth0", "198.18.0.250/24")
        _ip("link", "add", root_if, "type", "veth", "peer", "name", "wan0", "netns", site)
        central = None
        try:
            _ip("addr", "add", f"{WAN_ROOT}/30", "dev", root_if)
            _ip("link", "set", root_if, "up")
            _ip("-n", site, "addr", "add", f"{WAN_SITE}/30", "dev", "wan0")
            _ip("-n", site, "link", "set", "wan0", "up")
            with (central_dir / "central.log").open("ab") as log:
                central = subprocess.Popen(
                    [str(BIN / "ddi-central"), "serve", "--config", str(config)],
                    stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
            edge_config = edge_dir / "ddi.toml"
            edge_config.write_text(
                _edge_config(edge_dir, f"http://{WAN_ROOT}:{port}", Path(f"{central_key}.pub"))
            )
            with (edge_dir / "edge.log").open("a") as log:
                lab.popen(site, sys.executable, "-m", "ddi", "serve", "--config",
                          str(edge_config), stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            api = ApiClient(str(edge_dir / "ddi.sock"), timeout=30)

            def serving() -> bool:
                try:
                    api.get("/healthz")
                except Exception:  # noqa: BLE001 - not up yet, whatever the reason
                    return False
                return True

            wait_until(serving, "the edge to serve", within=30)
            why = {"actor": "test", "reason": "lab"}
            api.post("/v1/hosts", {"ip": "198.18.0.10", "hostname": "printer",
                                   "mac": "52:54:00:00:00:10"} | why)  # fmt: skip
            wait_until(lambda: "ip:198.18.0.10" in nautobot_view(lab_nb, namespace),
                       "the first reservation in Nautobot", within=60)  # fmt: skip

            _ip("link", "set", root_if, "down")  # the WAN is cut
            api.post("/v1/hosts", {"ip": "198.18.0.20", "hostname": "camera",
                                   "mac": "52:54:00:00:00:20"} | why)  # fmt: skip
            leased = _dhclient(lab, cli, tmp_path, "laptop")
            assert leased.startswith("198.18.0.1")  # from the pool 198.18.0.100-149
            wait_until(lambda: api.get("/v1/sync/status")["backlog_entries"] >= 2,
                       "the changes to wait in the outbox")  # fmt: skip
            view = nautobot_view(lab_nb, namespace)
            assert "ip:198.18.0.20" not in view
            assert f"ip:{leased}" not in view

            _ip("link", "set", root_if, "up")  # the WAN is back
            want: dict[str, object] = {}

            def matches() -> bool:
                nonlocal want
                want = edge_view(edge_dir / "data" / "ddi.sqlite")
                return nautobot_view(lab_nb, namespace) == want

            wait_until(matches, "Nautobot to match the edge", within=90)
            assert want["ip:198.18.0.20"] == {
                "address": "198.18.0.20/32", "dns_name": "camera", "mac": "52:54:00:00:00:20",
                "status": "Reserved", "site": h.SITE,
            }  # fmt: skip
            lease = want[f"ip:{leased}"]
            assert isinstance(lease, dict)
            assert (lease["status"], lease["dns_name"]) == ("DHCP", "laptop")
        finally:
            if central is not None:
                central.terminate()
                central.wait(timeout=30)
            subprocess.run(["ip", "link", "del", root_if], capture_output=True, timeout=30)
