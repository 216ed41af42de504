"""Router advertisements from ``ddi serve`` on a lab link: solicited ones seen by rdisc6
(ndisc6), periodic ones in a capture, solicitations checked and rate-limited (RFC 4861 §6.1.1,
§6.2.6)."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6NDOptDNSSL,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.utils import rdpcap

from ddi.lab import Lab
from tests.integration.conftest import require
from tests.waiting import wait_until

BODY = """
[[subnets6]]
name = "lan6"
cidr = "2001:db8:10::/64"
interface = "ddi0"
dns_servers = ["2001:db8:10::1"]
search = ["lab.example", "site1.example"]

[[subnets6.pools]]
start = "2001:db8:10::100"
end = "2001:db8:10::1ff"

[subnets6.ra]
enabled = true
interval = 4
mtu = 1500
"""

SOLICIT = """
import socket, struct, sys
hops, count = int(sys.argv[1]), int(sys.argv[2])
index = socket.if_nametoindex("eth0")
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
for _ in range(count):
    s.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ("ff02::2", 0, 0, index))
"""


def _capture(lab: Lab, ns: str, pcap: Path, count: int) -> subprocess.Popen[str]:
    """tcpdump on the client's link, for ``count`` router advertisements."""
    proc = lab.popen(ns, "tcpdump", "-i", "eth0", "-n", "-U", "--immediate-mode",
                     "-c", str(count), "-w", str(pcap), "icmp6 and ip6[40] == 134",
                     stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "listening on eth0...": the capture is open
    assert "listening" in line, line
    return proc


def _stats(daemon: Any) -> dict[str, Any]:
    result: dict[str, Any] = daemon.cli_json("status")["statistics"].get("ra", {})
    return result


def test_periodic_and_solicited_advertisements(lab: Lab, ddi_daemon: Any, tmp_path: Path) -> None:
    require("rdisc6", "tcpdump")
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", ("198.18.0.1/24", "2001:db8:10::1/64"), cli, "eth0", None)
    pcap = tmp_path / "ra.pcap"
    capture = _capture(lab, cli, pcap, 3)
    daemon = ddi_daemon(srv, BODY)
    # The API answers before the services start: a solicitation sent before the RA socket
    # is open is lost, and rdisc6 would take the first periodic advertisement instead.
    wait_until(lambda: _stats(daemon).get("sent", 0) >= 1, "the first advertisement")

    # Solicited: rdisc6 sends a solicitation and prints the advertisement it accepted (it
    # drops any whose hop limit is not 255).
    done = lab.run(cli, "rdisc6", "-1", "-n", "-w", "5000", "eth0", timeout=30)
    out = " ".join(done.stdout.split())
    for expected in (
        "Stateful address conf. : Yes",
        "Stateful other conf. : Yes",
        "Router lifetime : 0 (0x00000000) seconds",
        "MTU : 1500 bytes (valid)",
        "Prefix : 2001:db8:10::/64 On-link : Yes Autonomous address conf.: No",
        "Valid time : 2592000",
        "Recursive DNS server : 2001:db8:10::1 DNS server lifetime : 12",
        "DNS search list : lab.example site1.example",
        "Source link-layer address:",
        "from fe80::",
    ):
        assert expected in out, (expected, done.stdout)
    assert _stats(daemon)["solicit"] >= 1

    # Periodic: three advertisements to all-nodes from the link-local address, hop limit 255,
    # never closer than MIN_DELAY_BETWEEN_RAS (3 s) and, initially, at most MaxRtrAdvInterval
    # apart (plus the solicited one that may fall between).
    capture.communicate(timeout=30)
    assert capture.returncode == 0
    packets = rdpcap(str(pcap))
    assert len(packets) == 3
    for packet in packets:
        ip = packet[IPv6]
        assert ip.hlim == 255
        assert ip.dst == "ff02::1"
        assert ip.src.startswith("fe80::")
        ra = packet[ICMPv6ND_RA]
        assert (ra.M, ra.O, ra.routerlifetime) == (1, 1, 0)
        assert packet[ICMPv6NDOptPrefixInfo].prefix == "2001:db8:10::"
        assert packet[ICMPv6NDOptRDNSS].dns == ["2001:db8:10::1"]
        assert packet[ICMPv6NDOptDNSSL].searchlist == ["lab.example.", "site1.example."]
        assert packet.haslayer(ICMPv6NDOptSrcLLAddr)
    times = [float(p.time) for p in packets]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(2.9 <= gap <= 6.0 for gap in gaps), gaps  # 6.0: timers late on a busy machine


def test_solicitations_are_checked_and_rate_limited(
    lab: Lab, ddi_daemon: Any, tmp_path: Path
) -> None:
    require("tcpdump")
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", "2001:db8:10::1/64", cli, "eth0", None)
    daemon = ddi_daemon(srv, BODY.replace("interval = 4", "interval = 600"))
    wait_until(lambda: _stats(daemon).get("sent", 0) >= 1, "the first advertisement")

    # Hop limit 64: not from the link (§6.1.1), dropped and counted.
    lab.run(cli, sys.executable, "-c", SOLICIT, "64", "5")
    wait_until(lambda: _stats(daemon).get("solicit_invalid", 0) == 5, "5 counted drops")
    assert _stats(daemon).get("solicit", 0) == 0
    exported = daemon.api("/metrics")
    assert 'ddi_ra_events_total{event="solicit_invalid",interface="ddi0"} 5.0' in exported

    # A burst of 200 valid solicitations: at most one advertisement per 3 s answers them all.
    pcap = tmp_path / "burst.pcap"
    capture = _capture(lab, cli, pcap, 100)
    lab.run(cli, sys.executable, "-c", SOLICIT, "255", "200")
    wait_until(lambda: _stats(daemon).get("solicit", 0) == 200, "200 solicitations")
    wait_until(lambda: _stats(daemon).get("sent", 0) >= 2, "the solicited advertisement")
    stats = _stats(daemon)
    assert stats["sent"] == 2, stats  # the first periodic one, and one for the burst
    assert stats["solicit_merged"] == 199, stats
    wait_until(lambda: pcap.stat().st_size > 24, "the advertisement in the capture")  # header
    capture.terminate()
    capture.communicate(timeout=10)
    assert len(rdpcap(str(pcap))) == 1


def test_reload_applies_new_settings_and_refuses_a_prefix_it_does_not_own(
    lab: Lab, ddi_daemon: Any
) -> None:
    require("rdisc6")
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", "2001:db8:10::1/64", cli, "eth0", None)
    daemon = ddi_daemon(srv, BODY)
    assert daemon.proc is not None

    def advertised() -> str:
        done = lab.run(cli, "rdisc6", "-1", "-n", "-w", "4000", "eth0", timeout=30, check=False)
        return " ".join(done.stdout.split())

    assert "MTU : 1500 bytes" in advertised()
    text = daemon.config_path.read_text()
    daemon.config_path.write_text(text.replace("mtu = 1500", "mtu = 1400"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "MTU : 1400 bytes" in advertised(), "the reloaded MTU", within=30)

    refused = text.replace("mtu = 1500", 'prefix = "2001:db8:99::/64"')
    daemon.config_path.write_text(refused)
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in daemon.log_path.read_text(), "the refusal")
    log = daemon.log_path.read_text()
    assert "subnets6[0].ra.prefix: 2001:db8:99::/64 is not this subnet's cidr" in log
    out = advertised()
    assert "Prefix : 2001:db8:10::/64" in out
    assert "2001:db8:99" not in out
