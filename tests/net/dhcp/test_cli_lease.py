"""``ddi lease`` against a real ``python -m ddi serve`` with DHCP on loopback (no root needed):
a relayed client (RFC 8357 source port, so no privileged port) gets a lease, and the CLI lists,
shows and releases it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from ddi.dhcp.options import MessageType, OptionCode
from ddi.dhcp.packet import BOOTREQUEST, DhcpPacket, decode_packet, encode_packet

ROOT = Path(__file__).resolve().parents[3]
RELAY_INFO = bytes([1, 3]) + b"p01" + bytes([19, 0])

CONFIG = """\
[site]
id = "leasetest"
domain = "site.example"
data_dir = "data"

[api]
socket = "ddi.sock"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"
relay_agents = ["127.0.0.1"]

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.199"

[[subnets]]
name = "other"
cidr = "198.18.1.0/24"

[dhcp]
port = {port}
interfaces = ["lo"]

[dns]
enabled = false
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        (workdir / "site.toml").write_text(CONFIG.format(port=self.port))
        self.socket = workdir / "ddi.sock"
        self.log = workdir / "daemon.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ddi", "serve", "--config", str(workdir / "site.toml")],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"ddi serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            if self.cli("status", check=False).returncode == 0:
                return
            time.sleep(0.1)
        pytest.fail(f"ddi serve not ready:\n{self.log.read_text()}")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "ddi", "--socket", str(self.socket), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "DDI_SOCKET": str(self.socket)},
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"ddi {' '.join(args)}: {result.returncode}\n{result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    try:
        yield d
    finally:
        d.stop()


def _request(mac_tail: int, message_type: MessageType, **options: bytes) -> bytes:
    opts = [(int(OptionCode.MESSAGE_TYPE), bytes((message_type,)))]
    opts += [(int(OptionCode[name.upper()]), value) for name, value in options.items()]
    opts.append((int(OptionCode.RELAY_AGENT_INFORMATION), RELAY_INFO))
    packet = DhcpPacket(
        op=BOOTREQUEST,
        xid=99,
        hops=1,
        giaddr=IPv4Address("127.0.0.1"),
        chaddr=bytes.fromhex("5254000000") + bytes((mac_tail,)) + bytes(10),
        options=tuple(opts),
    )
    return encode_packet(packet)


def _dora(port: int, mac_tail: int, hostname: bytes) -> IPv4Address:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(15)
        sock.sendto(
            _request(mac_tail, MessageType.DISCOVER, host_name=hostname), ("127.0.0.1", port)
        )
        offer = decode_packet(sock.recv(4096))
        assert offer.message_type is MessageType.OFFER
        request = _request(
            mac_tail,
            MessageType.REQUEST,
            requested_address=offer.yiaddr.packed,
            server_identifier=offer.get(OptionCode.SERVER_IDENTIFIER) or b"",
            host_name=hostname,
        )
        sock.sendto(request, ("127.0.0.1", port))
        ack = decode_packet(sock.recv(4096))
        assert ack.message_type is MessageType.ACK
        return ack.yiaddr


def test_lease_list_show_release(daemon: Daemon) -> None:
    assert daemon.json("lease", "list") == []
    ip = _dora(daemon.port, 1, b"box1")
    leases = daemon.json("lease", "list")
    assert [(x["ip"], x["mac"], x["state"], x["hostname"], x["circuit_id"]) for x in leases] == [
        (str(ip), "52:54:00:00:00:01", "bound", "box1", "70:30:31")
    ]
    assert daemon.json("lease", "list", "--subnet", "lan") == leases
    assert daemon.json("lease", "list", "--subnet", "other") == []
    assert daemon.json("lease", "list", "--state", "released") == []
    table = daemon.cli("lease", "list").stdout
    assert table.split()[:2] == ["IP", "MAC"]
    assert str(ip) in table

    assert daemon.json("lease", "show", str(ip))["mac"] == "52:54:00:00:00:01"
    assert daemon.json("lease", "show", "52-54-00-00-00-01")["ip"] == str(ip)
    shown = daemon.cli("lease", "show", str(ip)).stdout
    assert "state:" in shown
    assert "bound" in shown

    missing = daemon.cli("lease", "show", "198.18.0.250", check=False)
    assert missing.returncode == 1
    assert "no lease 198.18.0.250" in missing.stderr
    unknown_subnet = daemon.cli("lease", "list", "--subnet", "nosuch", check=False)
    assert unknown_subnet.returncode == 1

    dry = daemon.cli("lease", "release", str(ip), "--dry-run")
    assert "nothing written" in dry.stdout
    assert daemon.json("lease", "show", str(ip))["state"] == "bound"
    done = daemon.cli("lease", "release", str(ip), "--reason", "moved rack")
    assert f"released {ip}" in done.stdout
    assert daemon.json("lease", "show", str(ip))["state"] == "released"
    again = daemon.cli("lease", "release", str(ip), check=False)
    assert again.returncode == 1
    assert "not bound" in again.stderr
    entries = [c for c in daemon.json("changes", "list") if c["kind"] == "lease"]
    assert [(c["image"]["state"], c["actor"]) for c in entries][-1] == (
        "released",
        entries[-1]["actor"],
    )
    assert entries[0]["actor"] == "dhcp"
    assert entries[-1]["reason"] == "moved rack"
