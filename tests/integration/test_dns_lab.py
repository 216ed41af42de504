"""DNS in the namespace lab: names from the CLI and from DHCP leases, queried by a real dig on
the client side of a veth pair, with the daemon serving DHCP and DNS on 198.18.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ddi.lab import Lab

from .conftest import DaemonHandle, require

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


def _setup(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle]
) -> tuple[str, DaemonHandle]:
    srv = lab.namespace("srv")
    cli = lab.namespace("cli")
    lab.link(srv, "ddi0", "198.18.0.1/24", cli, "eth0", "198.18.0.250/24")
    daemon = ddi_daemon(srv, BODY)
    return cli, daemon


def _dig(lab: Lab, ns: str, *args: str) -> str:
    out = lab.run(ns, "dig", "@198.18.0.1", "+tries=2", "+time=1", *args, check=False)
    return out.stdout


def _wait(check: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_reservation_from_the_cli_resolves_at_once(lab: Lab, ddi_daemon: Any) -> None:
    require("dig")
    cli, daemon = _setup(lab, ddi_daemon)
    done = daemon.cli(
        "reserve", "add", "--mac", "52:54:00:12:34:56", "--ip", "198.18.0.20", "--hostname", "web"
    )
    assert done.returncode == 0, done.stderr
    assert _dig(lab, cli, "+short", "web.site1.example").strip() == "198.18.0.20"
    assert _dig(lab, cli, "+short", "-x", "198.18.0.20").strip() == "web.site1.example."
    assert "198.18.0.20" in _dig(lab, cli, "+tcp", "+short", "web.site1.example")
    gone = daemon.cli("reserve", "rm", "web")
    assert gone.returncode == 0, gone.stderr
    assert "status: NXDOMAIN" in _dig(lab, cli, "web.site1.example")


def test_lease_name_appears_and_goes_with_the_lease(
    lab: Lab, ddi_daemon: Any, tmp_path: Path
) -> None:
    require("dig", "dhclient")
    cli, daemon = _setup(lab, ddi_daemon)
    conf = tmp_path / "dhclient.conf"
    conf.write_text('send host-name "laptop";\n')
    files = ["-cf", str(conf), "-lf", str(tmp_path / "leases"), "-pf", str(tmp_path / "pid")]
    got = lab.run(cli, "dhclient", "-sf", "/bin/true", "-1", "-v", *files, "eth0", timeout=60)
    assert got.returncode == 0, got.stderr
    leases = daemon.cli_json("lease", "list")
    ip = next(lease["ip"] for lease in leases if lease["hostname"] == "laptop")
    assert _wait(lambda: _dig(lab, cli, "+short", "laptop.site1.example").strip() == ip)
    assert _dig(lab, cli, "+short", "-x", ip).strip() == "laptop.site1.example."
    released = lab.run(cli, "dhclient", "-sf", "/bin/true", "-r", "-v", *files, "eth0", timeout=60)
    assert released.returncode == 0, released.stderr
    assert _wait(lambda: "status: NXDOMAIN" in _dig(lab, cli, "laptop.site1.example"))
    assert "status: NXDOMAIN" in _dig(lab, cli, "-x", ip)
