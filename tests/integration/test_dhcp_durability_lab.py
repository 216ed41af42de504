"""What a DHCPACK promises, checked against the wire: every ACK that left the daemon is in its
store, whether the daemon is SIGKILLed in the middle of a storm or its disk fills up.

A relay in its own namespace (as in ``test_dhcp_lab``) runs a storm of relayed DORAs from
many MACs, pipelined; tcpdump on the relay's link records what the daemon sent. Every
DHCPACK in the capture must be in ``ddi lease list`` afterwards.

    rly  eth0 198.18.8.2/24, lo 198.18.5.1 ── ddi1 198.18.8.1/24  srv (ddi serve)
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.utils import rdpcap

from ddi.lab import Lab
from tests.diskfull import fill, small_filesystem

from .conftest import DaemonHandle, internal_errors, require

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SERVER, GIADDR = "198.18.8.1", "198.18.5.1"

BODY = """
[site]
id = "lab1"
domain = "site1.example"
data_dir = "{data}"

[api]
socket = "{socket}"

[[subnets]]
name = "far"
cidr = "198.18.5.0/24"
gateway = "198.18.5.1"
lease_time = 600

[[subnets.pools]]
start = "198.18.5.10"
end = "198.18.5.250"

[dhcp]
interfaces = ["ddi1"]
"""

STORM_SCRIPT = r"""
import json, select, socket, struct, sys, time

server, giaddr = sys.argv[1], sys.argv[2]
count, first, window = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((giaddr, 67))
sock.setblocking(False)

def packet(n, kind, requested=None, server_id=None):
    mac = bytes.fromhex("5254000c%04x" % n)
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 1, 0x20000 + n, 0, 0,
                       bytes(4), bytes(4), bytes(4), socket.inet_aton(giaddr),
                       mac + bytes(10), b"", b"")
    options = bytes([53, 1, kind])
    if requested:
        options += bytes([50, 4]) + requested
    if server_id:
        options += bytes([54, 4]) + server_id
    return head + b"\x63\x82\x53\x63" + options + b"\xff"

def parse(data):
    options, i = {}, 240
    while i + 1 < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        options[data[i]] = data[i + 2:i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    return struct.unpack_from("!I", data, 4)[0] - 0x20000, data[16:20], data[28:34], options

# Up to `window` clients in flight; a client without an answer for 5 s is given up (a loaded
# machine's fsync can stall a second or two); the storm ends when every client is answered or
# given up, or nothing has answered for 6 s.
next_n, waiting, last_answer = first, {}, time.monotonic()
while True:
    now = time.monotonic()
    while next_n < first + count and len(waiting) < window:
        sock.sendto(packet(next_n, 1), (server, 67))
        waiting[next_n] = now
        next_n += 1
    for n, since in list(waiting.items()):
        if now - since > 5:
            del waiting[n]
    if (next_n >= first + count and not waiting) or now - last_answer > 6:
        break
    if not select.select([sock], [], [], 0.1)[0]:
        continue
    data, _ = sock.recvfrom(4096)
    n, yiaddr, mac, options = parse(data)
    last_answer = time.monotonic()
    kind = options.get(53, b"\0")[0]
    if kind == 2:
        sock.sendto(packet(n, 3, yiaddr, options.get(54)), (server, 67))
        waiting[n] = last_answer
    elif kind == 5:
        waiting.pop(n, None)
        print(json.dumps({"mac": mac.hex(":"), "ip": socket.inet_ntoa(yiaddr)}), flush=True)
    else:
        waiting.pop(n, None)
"""


def _read_until(fd: int, text: bytes, count: int, timeout: float) -> bytes | None:
    """What was read from ``fd`` once ``text`` appeared ``count`` times in it, or None when it
    did not within ``timeout`` seconds."""
    seen = b""
    deadline = time.monotonic() + timeout
    while seen.count(text) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            seen += chunk
    return seen


class Capture:
    """tcpdump on the relay's link, writing every packet from port 67 to a pcap at once."""

    def __init__(self, lab: Lab, ns: str, path: Path) -> None:
        self.path = path
        # A 32 MiB capture buffer: on a loaded machine the default 2 MiB one dropped ACKs.
        argv = ["tcpdump", "-n", "-U", "--immediate-mode", "-B", "32768", "-i", "eth0",
                "-w", str(path), "udp", "src", "port", "67"]  # fmt: skip
        self.proc = lab.popen(ns, *argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        assert _read_until(self.proc.stderr.fileno(), b"listening on eth0", 1, 10) is not None

    def acks(self, seen: list[dict[str, str]]) -> dict[str, str]:
        """Stop, then every DHCPACK the daemon sent: client MAC -> yiaddr. Each ACK a client
        got (``seen``) must be among them: the capture missed nothing."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        acks = {}
        for frame in rdpcap(str(self.path)):
            if BOOTP not in frame or DHCP not in frame:
                continue
            options = dict(o for o in frame[DHCP].options if isinstance(o, tuple))
            if options.get("message-type") == 5:
                acks[frame[BOOTP].chaddr[:6].hex(":")] = frame[BOOTP].yiaddr
        missed = [ack for ack in seen if acks.get(ack["mac"]) != ack["ip"]]
        assert not missed, f"the capture missed ACKs the clients got: {missed}"
        return acks


def _storm(lab: Lab, rly: str, count: int, first: int, window: int = 32) -> subprocess.Popen[str]:
    return lab.popen(rly, sys.executable, "-c", STORM_SCRIPT, SERVER, GIADDR,
                     str(count), str(first), str(window),
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _finish(storm: subprocess.Popen[str], already: str = "") -> list[dict[str, str]]:
    """Every ACK the storm's clients got; ``already``: what was read from its output before."""
    out, err = storm.communicate(timeout=120)
    assert storm.returncode == 0, err
    return [json.loads(line) for line in (already + out).splitlines() if line.startswith("{")]


def _leases(daemon: DaemonHandle) -> dict[str, dict[str, Any]]:
    return {x["mac"]: x for x in daemon.cli_json("lease", "list")}


def _assert_stored(acks: dict[str, str], leases: dict[str, dict[str, Any]]) -> None:
    lost = {mac: ip for mac, ip in acks.items() if leases.get(mac, {}).get("ip") != ip}
    assert not lost, f"{len(lost)} acknowledged leases are not in the store: {lost}"
    assert all(leases[mac]["state"] == "bound" for mac in acks)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """The daemon's data dir on a 4 MiB tmpfs of its own."""
    require("tcpdump")
    with small_filesystem(tmp_path / "data") as mounted:
        yield mounted


def _start(
    lab: Lab,
    ddi_daemon: Callable[[str | None, str], DaemonHandle],
    tmp_path: Path,
    data: Path,
) -> tuple[str, DaemonHandle]:
    srv, rly = lab.namespace("srv"), lab.namespace("rly")
    lab.link(srv, "ddi1", "198.18.8.1/24", rly, "eth0", "198.18.8.2/24")
    lab.run(rly, "ip", "addr", "add", f"{GIADDR}/32", "dev", "lo")
    lab.run(srv, "ip", "route", "add", "198.18.5.0/24", "via", "198.18.8.2")
    # ddi_daemon's first handle lives in tmp_path/ddi0.
    body = BODY.format(data=data, socket=tmp_path / "ddi0" / "ddi.sock")
    return rly, ddi_daemon(srv, body)


def test_sigkill_during_a_storm_loses_no_acked_lease(
    lab: Lab, ddi_daemon: Any, tmp_path: Path, data_dir: Path
) -> None:
    rly, daemon = _start(lab, ddi_daemon, tmp_path, data_dir)
    capture = Capture(lab, rly, tmp_path / "storm.pcap")
    storm = _storm(lab, rly, count=240, first=1)
    assert storm.stdout is not None
    # In the middle of the storm: some clients ACKed, many more in flight.
    early = _read_until(storm.stdout.fileno(), b'"mac"', 60, 60)
    assert early is not None, "the storm got no ACKs"
    daemon.kill()
    seen = _finish(storm, early.decode())
    acks = capture.acks(seen)
    assert 60 <= len(seen) <= len(acks) < 240, (len(seen), len(acks))  # killed mid-storm
    daemon.start()
    _assert_stored(acks, _leases(daemon))
    assert daemon.stop() == 0


def test_a_full_disk_acks_nothing_it_did_not_store_and_serving_resumes(
    lab: Lab, ddi_daemon: Any, tmp_path: Path, data_dir: Path
) -> None:
    rly, daemon = _start(lab, ddi_daemon, tmp_path, data_dir)
    capture = Capture(lab, rly, tmp_path / "full.pcap")
    before = _finish(_storm(lab, rly, count=20, first=1))
    assert len(before) == 20

    filler = fill(data_dir)
    refused = _finish(_storm(lab, rly, count=40, first=100))
    assert refused == []
    health = daemon.cli_json("status")["store"]["health"]
    assert health["write_failures"] > 0
    assert health["last_write_error"] == "store write failed: disk full"

    filler.unlink()
    after = _finish(_storm(lab, rly, count=20, first=200))
    assert len(after) == 20
    acks = capture.acks(before + after)
    leases = _leases(daemon)
    assert len(acks) == 40  # the 20 before the disk filled and the 20 after
    _assert_stored(acks, leases)
    refused_macs = {f"52:54:00:0c:{n >> 8:02x}:{n & 0xFF:02x}" for n in range(100, 140)}
    assert not refused_macs & leases.keys()
    assert internal_errors(daemon) == []
    assert daemon.stop() == 0
    log = daemon.log_path.read_text()
    assert "Traceback" not in log, log
    assert "store write failed: disk full" in log
