"""DHCP in the namespace lab: real dhclient and busybox udhcpc, a relay crafted with scapy, live
reservations from the CLI, and no acknowledged lease lost to SIGKILL.

Topology (all on 198.18.0.0/15):

    cli  eth0 (198.18.0.250/24) ── ddi0 198.18.0.1/24 ┐
                                                     srv  (ddi serve, DHCP on ddi0 and ddi1)
    rly  eth0 198.18.8.2/24, lo 198.18.5.1 ── ddi1 198.18.8.1/24 ┘  route 198.18.5.0/24 via rly

Clients run with their scripts off, so nothing configures an address: the test reads the
result from the client's lease file/output and from ``ddi lease list --json``, and adds the
leased address itself where the client needs it to renew by unicast.
"""

from __future__ import annotations

import json
import os
import re
import select
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ddi.lab import Lab

from .conftest import DaemonHandle, require

# conftest's health probe leaves a unix socket unclosed when connect() fails (reported to the
# lead); those ResourceWarnings are not this module's to fail on.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

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
end = "198.18.0.149"

[[subnets]]
name = "far"
cidr = "198.18.5.0/24"
gateway = "198.18.5.1"
lease_time = 600

[[subnets.pools]]
start = "198.18.5.50"
end = "198.18.5.99"

[dhcp]
interfaces = ["ddi0", "ddi1"]
"""

RELAY_SCRIPT = r"""
import json, socket, sys
from scapy.layers.dhcp import BOOTP, DHCP

server, giaddr, count, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((giaddr, 67))
sock.settimeout(15)  # a loaded machine; nothing here retransmits

def exchange(packet):
    sock.sendto(bytes(packet), (server, 67))
    while True:
        data, src = sock.recvfrom(4096)
        reply = BOOTP(data)
        if reply.xid == packet.xid:
            return reply, src

def options(reply):
    return {o[0]: o[1] for o in reply[DHCP].options if isinstance(o, tuple)}

results = []
for i in range(count):
    n = first + i
    mac = bytes.fromhex("5254000b%04x" % n)
    relay = b"\x01\x07port%03d" % n + b"\x02\x03rly"
    head = dict(op=1, htype=1, hlen=6, hops=1, xid=0x10000 + n, giaddr=giaddr,
                chaddr=mac + b"\0" * 10)
    discover = BOOTP(**head) / DHCP(options=[
        ("message-type", "discover"), ("relay_agent_information", relay), "end"])
    offer, src = exchange(discover)
    got = options(offer)
    request = BOOTP(**head) / DHCP(options=[
        ("message-type", "request"), ("requested_addr", offer.yiaddr),
        ("server_id", got["server_id"]), ("relay_agent_information", relay), "end"])
    ack, src = exchange(request)
    acked = options(ack)
    results.append({
        "mac": mac.hex(":"), "ip": ack.yiaddr, "type": acked["message-type"],
        "relay_info": acked.get("relay_agent_information", b"").hex(),
        "sent_relay_info": relay.hex(), "src": list(src), "giaddr": ack.giaddr,
    })
    print(json.dumps(results[-1]), flush=True)
"""


def _setup(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle]
) -> tuple[str, str, DaemonHandle]:
    srv, cli, rly = lab.namespace("srv"), lab.namespace("cli"), lab.namespace("rly")
    lab.link(srv, "ddi0", "198.18.0.1/24", cli, "eth0", "198.18.0.250/24")
    lab.link(srv, "ddi1", "198.18.8.1/24", rly, "eth0", "198.18.8.2/24")
    lab.run(rly, "ip", "addr", "add", "198.18.5.1/32", "dev", "lo")
    lab.run(srv, "ip", "route", "add", "198.18.5.0/24", "via", "198.18.8.2")
    daemon = ddi_daemon(srv, BODY)
    return cli, rly, daemon


def _set_mac(lab: Lab, ns: str, mac: str) -> None:
    lab.run(ns, "ip", "link", "set", "eth0", "address", mac)


def _leases(daemon: DaemonHandle) -> dict[str, dict[str, Any]]:
    return {x["mac"]: x for x in daemon.cli_json("lease", "list")}


def _reserve(daemon: DaemonHandle, mac: str, ip: str, hostname: str) -> None:
    done = daemon.cli("reserve", "add", "--mac", mac, "--ip", ip, "--hostname", hostname)
    assert done.returncode == 0, done.stderr


def _metric(daemon: DaemonHandle, name: str, **labels: str) -> float:
    text = daemon.api("/metrics")
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Dhclient:
    """isc-dhcp-client with its script off and its files in a tmp folder."""

    def __init__(self, lab: Lab, ns: str, folder: Path, name: str) -> None:
        self.lab, self.ns = lab, ns
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / f"{name}.conf"
        conf.write_text(f'send host-name "{name}";\n')
        self.lease_file = folder / f"{name}.leases"
        self.files = ["-cf", str(conf), "-lf", str(self.lease_file),
                      "-pf", str(folder / f"{name}.pid")]  # fmt: skip

    def obtain(self) -> str:
        """Run once (-1) in the foreground until bound; return the address it bound."""
        argv = ["dhclient", "-sf", "/bin/true", "-1", "-d", "-v", *self.files, "eth0"]
        proc = self.lab.popen(self.ns, *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        line = _wait_line(proc, re.compile(r"bound to (\S+)"), timeout=30)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)  # waits and closes the pipe
        assert line is not None, "dhclient did not bind"
        return line.group(1)

    def lease_file_addresses(self) -> list[str]:
        return re.findall(r"fixed-address (\S+);", self.lease_file.read_text())

    def release(self) -> None:
        argv = ["dhclient", "-sf", "/bin/true", "-r", "-v", *self.files, "eth0"]
        done = self.lab.run(self.ns, *argv, timeout=60, check=False)
        assert done.returncode == 0, done.stderr


def _wait_line(
    proc: subprocess.Popen[str], pattern: re.Pattern[str], timeout: float
) -> re.Match[str] | None:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            line = proc.stdout.readline()
            if not line:
                return None
            found = pattern.search(line)
            if found:
                return found
    finally:
        selector.close()
    return None


def _wait_output(fd: int, text: bytes, timeout: float) -> bool:
    """Whether ``text`` appears on ``fd`` within ``timeout`` seconds (raw reads: nothing is
    left in a buffer that select cannot see)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                return False
            seen += chunk
    return True


def _udhcpc_once(lab: Lab, ns: str) -> str:
    argv = ["udhcpc", "-s", "/bin/true", "-q", "-n", "-f", "-i", "eth0", "-t", "10", "-T", "2"]
    done = lab.run(ns, *argv, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"lease of (\S+) obtained", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    return found.group(1)


def _wait(check: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


# --- dhclient ----------------------------------------------------------------------------------


def test_dhclient_reserved_and_pool_address_renew_and_release(
    lab: Lab, ddi_daemon: Any, tmp_path: Path
) -> None:
    require("dhclient")
    cli, _rly, daemon = _setup(lab, ddi_daemon)
    reserved_mac, pool_mac = "52:54:00:aa:00:01", "52:54:00:aa:00:02"
    _reserve(daemon, reserved_mac, "198.18.0.20", "dhc1")

    _set_mac(lab, cli, reserved_mac)
    first = Dhclient(lab, cli, tmp_path / "c1", "dhc1")
    assert first.obtain() == "198.18.0.20"
    assert first.lease_file_addresses()[-1] == "198.18.0.20"
    lease = _leases(daemon)[reserved_mac]
    assert (lease["ip"], lease["state"], lease["hostname"]) == ("198.18.0.20", "bound", "dhc1")

    _set_mac(lab, cli, pool_mac)
    second = Dhclient(lab, cli, tmp_path / "c2", "laptop")
    ip = second.obtain()
    assert ip.startswith("198.18.0.1")
    assert 100 <= int(ip.rsplit(".", 1)[1]) <= 149
    lease = _leases(daemon)[pool_mac]
    assert (lease["ip"], lease["state"], lease["hostname"]) == (ip, "bound", "laptop")

    # Renew: dhclient run again with its lease file asks for the same address (INIT-REBOOT).
    time.sleep(1.1)
    assert second.obtain() == ip
    assert _leases(daemon)[pool_mac]["end"] > lease["end"]
    assert _metric(daemon, "ddi_dhcp_decisions_total", rule="ack-init-reboot") >= 1

    # Release: unicast DHCPRELEASE from the client (its address is configured as the script
    # would have done, so the server sees it on the link).
    lab.run(cli, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
    second.release()
    assert _wait(lambda: _leases(daemon)[pool_mac]["state"] == "released")


# --- udhcpc ------------------------------------------------------------------------------------


def test_udhcpc_reserved_and_pool_address_renew_and_release(lab: Lab, ddi_daemon: Any) -> None:
    require("udhcpc")
    cli, _rly, daemon = _setup(lab, ddi_daemon)
    reserved_mac, pool_mac = "52:54:00:bb:00:01", "52:54:00:bb:00:02"
    _reserve(daemon, reserved_mac, "198.18.0.21", "udh1")

    _set_mac(lab, cli, reserved_mac)
    assert _udhcpc_once(lab, cli) == "198.18.0.21"
    assert _leases(daemon)[reserved_mac]["state"] == "bound"

    _set_mac(lab, cli, pool_mac)
    argv = ["udhcpc", "-s", "/bin/true", "-f", "-i", "eth0", "-t", "10", "-T", "2"]
    proc = lab.popen(cli, *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    got = _wait_line(proc, re.compile(r"lease of (\S+) obtained"), timeout=30)
    assert got is not None, "udhcpc got no lease"
    ip = got.group(1)
    assert 100 <= int(ip.rsplit(".", 1)[1]) <= 149
    before = _leases(daemon)[pool_mac]
    assert (before["ip"], before["state"]) == (ip, "bound")

    # Renew (SIGUSR1): a unicast REQUEST from ciaddr, so give the interface the address first.
    lab.run(cli, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
    time.sleep(1.1)
    proc.send_signal(signal.SIGUSR1)
    again = _wait_line(proc, re.compile(r"lease of (\S+) obtained"), timeout=30)
    assert again is not None
    assert again.group(1) == ip
    assert _leases(daemon)[pool_mac]["end"] > before["end"]
    assert _metric(daemon, "ddi_dhcp_decisions_total", rule="ack-renewing") >= 1

    # Release (SIGUSR2).
    proc.send_signal(signal.SIGUSR2)
    assert _wait(lambda: _leases(daemon)[pool_mac]["state"] == "released")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)


# --- relay -------------------------------------------------------------------------------------


def _relay(lab: Lab, rly: str, count: int, first: int) -> list[dict[str, Any]]:
    done = lab.run(rly, sys.executable, "-c", RELAY_SCRIPT, "198.18.8.1", "198.18.5.1",
                   str(count), str(first), timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_relayed_client_gets_a_relay_subnet_address_with_82_echoed(
    lab: Lab, ddi_daemon: Any
) -> None:
    require()
    _cli, rly, daemon = _setup(lab, ddi_daemon)
    [result] = _relay(lab, rly, 1, 1)
    assert result["type"] == 5  # DHCPACK
    assert result["ip"] == "198.18.5.50"
    assert result["giaddr"] == "198.18.5.1"
    assert result["src"] == ["198.18.8.1", 67]  # from the server port, to giaddr:67
    assert result["relay_info"] == result["sent_relay_info"]
    lease = _leases(daemon)[result["mac"]]
    assert (lease["ip"], lease["subnet"], lease["circuit_id"]) == (
        "198.18.5.50",
        "far",
        b"port001".hex(":"),
    )


# --- live reservations -------------------------------------------------------------------------


def test_reservation_added_while_running_is_served_and_removed_is_not(
    lab: Lab, ddi_daemon: Any
) -> None:
    require("udhcpc")
    cli, _rly, daemon = _setup(lab, ddi_daemon)
    mac = "52:54:00:cc:00:01"
    _set_mac(lab, cli, mac)
    dynamic = _udhcpc_once(lab, cli)
    assert dynamic != "198.18.0.30"
    _reserve(daemon, mac, "198.18.0.30", "live")
    assert _udhcpc_once(lab, cli) == "198.18.0.30"
    gone = daemon.cli("reserve", "rm", "live")
    assert gone.returncode == 0, gone.stderr
    after = _udhcpc_once(lab, cli)
    assert after != "198.18.0.30"
    assert 100 <= int(after.rsplit(".", 1)[1]) <= 149


# --- durability --------------------------------------------------------------------------------


def test_sigkill_right_after_acks_loses_no_acknowledged_lease(lab: Lab, ddi_daemon: Any) -> None:
    require()
    _cli, rly, daemon = _setup(lab, ddi_daemon)
    acked = _relay(lab, rly, 40, 100)
    daemon.kill()
    assert len(acked) == 40
    daemon.start()
    leases = _leases(daemon)
    for result in acked:
        assert result["type"] == 5
        lease = leases.get(result["mac"])
        assert lease is not None, f"acknowledged lease of {result['mac']} lost"
        assert (lease["ip"], lease["state"]) == (result["ip"], "bound")


# --- reply addressing ------------------------------------------------------------------------


def test_replies_to_a_client_without_address_are_link_layer_unicast(
    lab: Lab, ddi_daemon: Any
) -> None:
    require("udhcpc", "tcpdump")
    cli, _rly, _daemon = _setup(lab, ddi_daemon)
    mac = "52:54:00:dd:00:01"
    _set_mac(lab, cli, mac)
    argv = ["tcpdump", "-n", "-l", "-e", "-i", "eth0", "udp", "and", "src", "port", "67"]
    dump = lab.popen(cli, *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # tcpdump says so on stderr once its capture is open: only then can it miss nothing.
    assert dump.stderr is not None
    assert _wait_output(dump.stderr.fileno(), b"listening on eth0", 10)
    ip = _udhcpc_once(lab, cli)
    line = _wait_line(
        dump, re.compile(r"> (\S+), ethertype IPv4.*198\.18\.0\.1\.67 > (\S+)\.68:"), 5
    )
    dump.send_signal(signal.SIGTERM)
    dump.communicate(timeout=10)
    assert line is not None, "no reply seen by tcpdump"
    assert line.group(1) == mac  # to the client's MAC, not ff:ff:ff:ff:ff:ff
    assert line.group(2) == ip  # and to yiaddr, not 255.255.255.255
