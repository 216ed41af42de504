"""Options by definition and client classes with real clients in the namespace lab.

    cli  eth0 (198.18.0.250/24) ── ddi0 198.18.0.1/24  srv (ddi serve)

dhclient asks for 119, 150 and 252 (request lines in a dhclient.conf given with -cf) and its
lease file is read; busybox udhcpc says it is a Cisco phone with -V, asks for 150 and 66 with
-O, gets the voice pool, and tcpdump's capture of the ACK shows the class's options. Both run
with their scripts off.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.utils import rdpcap

from ddi.lab import Lab

from .conftest import require
from .test_dhcp_durability_lab import _read_until
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

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.149"

[[subnets.pools]]
start = "198.18.0.200"
end = "198.18.0.209"
client_class = "phones"

[[subnets.options]]
name = "wpad"
value = "http://198.18.0.1/wpad.dat"

[dhcp]
interfaces = ["ddi0"]

[[dhcp.options]]
name = "domain-search"
value = ["site.example", "lab.site.example"]

[[dhcp.options]]
name = "tftp-server-address"
value = "198.18.0.7"

[[dhcp.classes]]
name = "phones"
[dhcp.classes.match]
vendor_class_prefix = "Cisco Systems, Inc. IP Phone"
[[dhcp.classes.options]]
name = "tftp-server-address"
value = ["198.18.0.5", "198.18.0.6"]
[[dhcp.classes.options]]
name = "tftp-server-name"
value = "cucm.site.example"
"""

DHCLIENT_CONF = """\
send host-name "{name}";
option tftp-server-address code 150 = array of ip-address;
option wpad code 252 = text;
request subnet-mask, routers, domain-name, domain-name-servers, domain-search,
        tftp-server-address, wpad;
"""


def _dhclient(lab: Lab, ns: str, folder: Path, name: str) -> tuple[str, dict[str, str]]:
    """dhclient once until bound: the address and the options of its lease file."""
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
    text = lease_file.read_text()
    options: dict[str, str] = {}
    for raw in text[text.rindex("lease {") :].splitlines():
        raw = raw.strip().rstrip(";")
        if raw.startswith("option "):
            key, _, value = raw.removeprefix("option ").partition(" ")
            options[key] = value
    return line.group(1), options


def test_dhclient_gets_the_options_it_asks_for_and_a_reservation_its_own(
    lab: Lab, ddi_daemon: Any, tmp_path: Path
) -> None:
    require("dhclient")
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", "198.18.0.1/24", cli, "eth0", "198.18.0.250/24")
    daemon = ddi_daemon(srv, BODY)
    done = daemon.cli("reserve", "add", "--mac", "52:54:00:ac:00:01", "--ip", "198.18.0.20",
                      "--hostname", "opt1",
                      "--option", "wpad=http://198.18.0.9/own.dat")  # fmt: skip
    assert done.returncode == 0, done.stderr

    lab.run(cli, "ip", "link", "set", "eth0", "address", "52:54:00:ac:00:02")
    ip, options = _dhclient(lab, cli, tmp_path / "laptop", "laptop")
    assert 100 <= int(ip.rsplit(".", 1)[1]) <= 149
    # dhclient decodes the RFC 3397 compressed list back into the two names.
    assert options["domain-search"] == '"site.example.", "lab.site.example."'
    assert options["tftp-server-address"] == "198.18.0.7"  # the global value
    assert options["wpad"] == '"http://198.18.0.1/wpad.dat"'  # the subnet's

    lab.run(cli, "ip", "link", "set", "eth0", "address", "52:54:00:ac:00:01")
    ip, options = _dhclient(lab, cli, tmp_path / "opt1", "opt1")
    assert ip == "198.18.0.20"
    assert options["wpad"] == '"http://198.18.0.9/own.dat"'  # the reservation's, over the subnet's
    assert options["domain-search"] == '"site.example.", "lab.site.example."'


def test_udhcpc_phone_gets_the_voice_pool_and_its_class_options(
    lab: Lab, ddi_daemon: Any, tmp_path: Path
) -> None:
    require("udhcpc", "tcpdump")
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", "198.18.0.1/24", cli, "eth0", "198.18.0.250/24")
    ddi_daemon(srv, BODY)
    lab.run(cli, "ip", "link", "set", "eth0", "address", "00:1b:54:00:00:01")
    pcap = tmp_path / "replies.pcap"
    argv = ["tcpdump", "-n", "-U", "--immediate-mode", "-i", "eth0", "-w", str(pcap),
            "udp", "src", "port", "67"]  # fmt: skip
    dump = lab.popen(cli, *argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert dump.stderr is not None
    assert _read_until(dump.stderr.fileno(), b"listening on eth0", 1, 10) is not None
    try:
        udhcpc = ["udhcpc", "-s", "/bin/true", "-q", "-n", "-f", "-i", "eth0", "-t", "10",
                  "-T", "2", "-V", "Cisco Systems, Inc. IP Phone CP-7975G",
                  "-O", "150", "-O", "66"]  # fmt: skip
        got = lab.run(cli, *udhcpc, timeout=60, check=False)
    finally:
        dump.send_signal(signal.SIGTERM)
        dump.communicate(timeout=10)
        dump.stderr.close()
    output = got.stdout + got.stderr
    found = re.search(r"lease of (\S+) obtained", output)
    assert found, output
    assert 200 <= int(found.group(1).rsplit(".", 1)[1]) <= 209  # the phones' pool
    acks = []
    for frame in rdpcap(str(pcap)):
        if BOOTP in frame and DHCP in frame:
            options = {o[0]: o[1:] for o in frame[DHCP].options if isinstance(o, tuple)}
            if options.get("message-type") == (5,):
                acks.append(options)
    assert acks, "no ACK captured"
    ack = acks[-1]
    assert ack["tftp_server_address"] == ("198.18.0.5", "198.18.0.6")
    assert ack["tftp_server_name"] == (b"cucm.site.example",)
    assert 252 not in ack  # the subnet's wpad, not asked for: not sent


SHARED = """
[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.101"

[[subnets]]
name = "lan2"
cidr = "198.18.1.0/24"
gateway = "198.18.1.1"

[[subnets.pools]]
start = "198.18.1.100"
end = "198.18.1.101"

[dhcp]
interfaces = ["ddi0"]

[[dhcp.shared_networks]]
name = "floor1"
interface = "ddi0"
subnets = ["lan", "lan2"]
"""


def test_udhcpc_clients_overflow_into_the_next_subnet_of_a_shared_network(
    lab: Lab, ddi_daemon: Any
) -> None:
    require("udhcpc")
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", "198.18.0.1/24", cli, "eth0", "198.18.0.250/24")
    daemon = ddi_daemon(srv, SHARED)
    got = []
    for i in range(3):
        lab.run(cli, "ip", "link", "set", "eth0", "address", f"52:54:00:ad:00:0{i}")
        argv = ["udhcpc", "-s", "/bin/true", "-q", "-n", "-f", "-i", "eth0", "-t", "10", "-T", "2"]
        done = lab.run(cli, *argv, timeout=60, check=False)
        found = re.search(r"lease of (\S+) obtained", done.stdout + done.stderr)
        assert found, done.stdout + done.stderr
        got.append(found.group(1))
    assert got == ["198.18.0.100", "198.18.0.101", "198.18.1.100"]
    leases = {lease["ip"]: lease["subnet"] for lease in daemon.cli_json("lease", "list")}
    assert leases == {"198.18.0.100": "lan", "198.18.0.101": "lan", "198.18.1.100": "lan2"}
