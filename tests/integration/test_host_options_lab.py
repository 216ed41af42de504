"""Per-host DHCP options with a real dhclient in the namespace lab: a reservation made with its
own options gets them; a pool client on the same subnet gets the subnet's.

    cli  eth0 (198.18.0.250/24) ── ddi0 198.18.0.1/24  srv (ddi serve)

dhclient runs with its script off; the options are read from its lease file.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ddi.lab import Lab

from .conftest import require
from .test_dhcp_lab import _wait_line

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

BODY = """
[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"
dns_servers = ["198.18.0.1"]
domain = "site.example"
interface = "ddi0"
lease_time = 3600

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.149"

[dhcp]
interfaces = ["ddi0"]
"""

DHCLIENT_CONF = """\
send host-name "{name}";
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers,
        interface-mtu, rfc3442-classless-static-routes, ntp-servers;
"""


def _obtain(lab: Lab, ns: str, folder: Path, name: str) -> tuple[str, Path]:
    """Run dhclient once until bound; return the address and the lease file."""
    folder.mkdir(parents=True)
    conf = folder / "dhclient.conf"
    conf.write_text(DHCLIENT_CONF.format(name=name))
    lease_file = folder / "dhclient.leases"
    argv = ["dhclient", "-sf", "/bin/true", "-1", "-d", "-v", "-cf", str(conf),
            "-lf", str(lease_file), "-pf", str(folder / "dhclient.pid"), "eth0"]  # fmt: skip
    proc = lab.popen(ns, *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        line = _wait_line(proc, re.compile(r"bound to (\S+)"), timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert line is not None, "dhclient did not bind"
    return line.group(1), lease_file


def _options(lease_file: Path) -> dict[str, str]:
    """The options of the last lease in a dhclient lease file."""
    text = lease_file.read_text()
    last = text[text.rindex("lease {") :]
    out: dict[str, str] = {}
    for line in last.splitlines():
        line = line.strip().rstrip(";")
        if line.startswith("option "):
            name, _, value = line.removeprefix("option ").partition(" ")
            out[name] = value
    return out


def test_reserved_host_gets_its_own_options_and_a_pool_client_the_subnets(
    lab: Lab, ddi_daemon: Any, tmp_path: Path
) -> None:
    require("dhclient")
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", "198.18.0.1/24", cli, "eth0", "198.18.0.250/24")
    daemon = ddi_daemon(srv, BODY)
    done = daemon.cli(
        "reserve", "add", "--mac", "52:54:00:ab:00:01", "--ip", "198.18.0.20",
        "--hostname", "opt1", "--lease-time", "600", "--router", "198.18.0.254",
        "--dns-server", "198.18.0.53", "--dns-server", "198.18.0.54",
        "--domain", "lab.site.example", "--mtu", "9000",
        "--route", "10.0.0.0/8=198.18.0.3", "--ntp-server", "198.18.0.123",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    clients = {}
    for mac, name in (("52:54:00:ab:00:01", "opt1"), ("52:54:00:ab:00:02", "laptop")):
        lab.run(cli, "ip", "link", "set", "eth0", "address", mac)
        ip, lease_file = _obtain(lab, cli, tmp_path / name, name)
        clients[name] = (ip, _options(lease_file))

    ip, options = clients["opt1"]
    assert ip == "198.18.0.20"
    assert options["dhcp-lease-time"] == "600"
    assert options["dhcp-renewal-time"] == "300"
    assert options["dhcp-rebinding-time"] == "525"
    assert options["routers"] == "198.18.0.254"
    assert options["domain-name-servers"] == "198.18.0.53,198.18.0.54"
    assert options["domain-name"] == '"lab.site.example"'
    assert options["interface-mtu"] == "9000"
    assert options["ntp-servers"] == "198.18.0.123"
    # RFC 3442: 10.0.0.0/8 via 198.18.0.3, then the default route via the host's router.
    assert options["rfc3442-classless-static-routes"] == "8,10,198,18,0,3,0,198,18,0,254"

    ip, options = clients["laptop"]
    assert 100 <= int(ip.rsplit(".", 1)[1]) <= 149
    assert options["dhcp-lease-time"] == "3600"
    assert options["routers"] == "198.18.0.1"
    assert options["domain-name-servers"] == "198.18.0.1"
    assert options["domain-name"] == '"site.example"'
    assert "interface-mtu" not in options
    assert "rfc3442-classless-static-routes" not in options
