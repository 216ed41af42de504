"""``ddi serve`` as it ships (a process, on its own loop: uvloop) with every documented section
of the config on at once: DHCP, DNS with forwarders, TSIG and an NSD secondary, TFTP and HTTP
boot, sync to a central it also starts, and the TCP admin API behind a token. Each answers
a real client; then SIGHUP reloads the config and each answers again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RR, A, DNSRecord

from ddi.cli.client import ApiClient
from tests.ci import require_tools
from tests.net.cli.test_cli import _UnixConnection, http_get
from tests.net.sync.harness import SITE, Central, free_port, write_key
from tests.nsd import write_secondary_conf
from tests.waiting import wait_until

KEY = "xfr.site.example"
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMw=="
TOKEN = "everything-token"
UPSTREAM_ANSWER = "192.0.2.53"
SERVICES = {"dhcp", "dns", "tftp", "http_boot", "sync"}

CONFIG = """\
[site]
id = "{site}"
domain = "site.example"
data_dir = "data"

[api]
socket = "ddi.sock"
listen = "127.0.0.1:0"
token_file = "api.token"
tokens_file = "tokens.json"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"
dns_servers = ["198.18.0.1"]
relay_agents = ["127.0.0.1"]
boot = "rack"
lease_time = {lease_time}

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.199"

[dhcp]
port = {dhcp}
interfaces = ["lo"]

[dns]
listen = ["127.0.0.1:{dns}"]
ns_name = "ns"
ns_address = "198.18.0.1"
forwarders = ["127.0.0.1:{upstream}"]

[dns.tsig."{key}"]
algorithm = "hmac-sha256"
secret = "{secret}"

[[dns.secondaries]]
address = "127.0.0.1:{nsd}"
key = "{key}"

[boot]
root = "boot"
tftp_listen = "127.0.0.1"
tftp_port = {tftp}
http_listen = "127.0.0.1"
http_port = {http}

[boot.profiles.rack]
bios = "undionly.kpxe"
efi_x86_64 = "ipxe.efi"

[sync]
central_url = "{central}"
insecure_http = true
site_key = "site.key"
central_public_key = "{central_key}"
backoff_base = 0.05
backoff_cap = 0.5
poll_interval = 0.3
"""


class Upstream:
    """A forwarder's upstream on loopback: every A question gets ``UPSTREAM_ANSWER``."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = DNSRecord.parse(data)
            reply = query.reply()
            if query.q.qtype == QTYPE.A:
                reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(UPSTREAM_ANSWER), ttl=60))
            self.sock.sendto(reply.pack(), peer)

    def close(self) -> None:
        self.sock.close()
        self._thread.join(timeout=5)


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, cwd=cwd)


def _dig(port: int, *args: str) -> str:
    done = _run("dig", "@127.0.0.1", "-p", str(port), "+tries=3", "+time=2", *args)
    return done.stdout


def _relayed_dora(port: int, mac: str) -> tuple[str, str]:
    """DISCOVER and REQUEST as a relay on 127.0.0.1 asking for replies at its own port (RFC
    8357); returns the ACK's yiaddr and boot file name."""
    chaddr = bytes.fromhex(mac.replace(":", ""))
    relay_info = bytes([1, 4]) + b"lo-1" + bytes([19, 0])

    def packet(kind: int, extra: bytes = b"") -> bytes:
        head = struct.pack(
            "!BBBBIHH4s4s4s4s16s64s128s",
            1,
            1,
            6,
            1,
            0x7E57,
            0,
            0,
            bytes(4),
            bytes(4),
            bytes(4),
            socket.inet_aton("127.0.0.1"),
            chaddr + bytes(10),
            b"",
            b"",
        )
        options = bytes([53, 1, kind, 93, 2, 0, 0]) + extra  # arch 0: BIOS PXE
        options += bytes([82, len(relay_info)]) + relay_info
        return head + b"\x63\x82\x53\x63" + options + b"\xff"

    def options(data: bytes) -> dict[int, bytes]:
        found, i = {}, 240
        while i + 1 < len(data) and data[i] != 255:
            if data[i] == 0:
                i += 1
                continue
            found[data[i]] = data[i + 2 : i + 2 + data[i + 1]]
            i += 2 + data[i + 1]
        return found

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        sock.sendto(packet(1), ("127.0.0.1", port))
        offer = sock.recv(4096)
        assert options(offer)[53] == bytes([2]), options(offer)
        server_id = options(offer)[54]
        sock.sendto(
            packet(3, bytes([50, 4]) + offer[16:20] + bytes([54, 4]) + server_id),
            ("127.0.0.1", port),
        )
        ack = sock.recv(4096)
    assert options(ack)[53] == bytes([5]), options(ack)
    boot_file = ack[108:236].rstrip(b"\0").decode() or options(ack).get(67, b"").decode()
    return socket.inet_ntoa(ack[16:20]), boot_file


SERVE = (sys.executable, "-m", "ddi", "serve")


class Everything:
    """The edge daemon with every section, its central, NSD and the upstream."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.edge = folder / "edge"
        (self.edge / "boot").mkdir(parents=True)
        self.kpxe = os.urandom(50_000)
        (self.edge / "boot" / "undionly.kpxe").write_bytes(self.kpxe)
        (self.edge / "boot" / "ipxe.efi").write_bytes(os.urandom(1000))
        (self.edge / "api.token").write_text(TOKEN + "\n")
        write_key(self.edge / "site.key")
        self.central = Central(
            folder / "central", f"sqlite://{folder}/central.sqlite", self.edge / "site.key.pub"
        )
        self.upstream = Upstream()
        self.ports = {name: free_port() for name in ("dhcp", "dns", "nsd", "tftp", "http")}
        self.config = self.edge / "ddi.toml"
        self.write_config(lease_time=3600)
        self.nsd_conf = write_secondary_conf(
            folder / "nsd",
            port=self.ports["nsd"],
            primary=self.ports["dns"],
            key=KEY,
            secret=SECRET,
        )
        self.log = self.edge / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.nsd: subprocess.Popen[str] | None = None

    def write_config(self, *, lease_time: int) -> None:
        self.config.write_text(
            CONFIG.format(
                site=SITE,
                key=KEY,
                secret=SECRET,
                upstream=self.upstream.port,
                central=self.central.url,
                central_key=self.central.public_key,
                lease_time=lease_time,
                **self.ports,
            )
        )

    def start(self) -> None:
        asyncio.run(self.central.start())
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                # With the stall tracer on too: its thread and ticks run on the shipped loop.
                [*SERVE, "--config", str(self.config), "--trace-stalls", "2000"],
                cwd=self.edge,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, "ddi serve to answer", within=30)
        # The API answers first; then the services start, one after the other.
        wait_until(
            lambda: set(self.api().get("/v1/status")["statistics"]) == SERVICES,
            "every service to start",
            within=30,
        )
        self.nsd = subprocess.Popen(
            ["nsd", "-d", "-c", str(self.nsd_conf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _healthy(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, f"ddi serve exited:\n{self.log.read_text()}"
        try:
            self.api().get("/healthz")
        except Exception:  # noqa: BLE001 - not up yet
            return False
        return True

    def api(self) -> ApiClient:
        return ApiClient(str(self.edge / "ddi.sock"), timeout=10)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(sys.executable, "-m", "ddi", "--socket", str(self.edge / "ddi.sock"), *args)

    def stop(self) -> None:
        if self.nsd is not None:
            self.nsd.terminate()
            try:
                self.nsd.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.nsd.kill()
                self.nsd.communicate()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        asyncio.run(self.central.stop())
        self.upstream.close()


@pytest.fixture
def everything(tmp_path: Path) -> Iterator[Everything]:
    require_tools("dig", "nsd", "tftp", "curl")
    e = Everything(tmp_path)
    try:
        e.start()
        yield e
    finally:
        e.stop()


def _tcp_api(e: Everything) -> str:
    [endpoint] = [a for a in e.api().get("/v1/status")["api"] if a.startswith("tcp:")]
    return "https://" + endpoint.removeprefix("tcp:")


def check_every_service(e: Everything, tmp_path: Path, host: int) -> None:
    """Each listener answers a real client; ``host`` is a reservation just added."""
    name, ip = f"h{host}.site.example", f"198.18.0.{host}"
    # DNS: the zone from IPAM, a forwarded name, a TSIG-signed transfer, the NSD secondary.
    dns = e.ports["dns"]
    wait_until(lambda: _dig(dns, "+short", name, "A").strip() == ip, f"{name} in DNS")
    assert _dig(dns, "+short", "www.example.org", "A").strip() == UPSTREAM_ANSWER
    axfr = _dig(dns, "-y", f"hmac-sha256:{KEY}:{SECRET}", "AXFR", "site.example")
    assert f"{name}." in axfr, axfr
    assert "Transfer failed" not in axfr
    nsd = e.ports["nsd"]
    # NSD refreshes hourly: only the NOTIFY brings the new name this fast.
    wait_until(lambda: _dig(nsd, "+short", name, "A").strip() == ip, f"{name} on NSD", 30)
    # DHCP: a relayed DORA, with the PXE boot file of the subnet's profile.
    leased, boot_file = _relayed_dora(e.ports["dhcp"], f"52:54:00:00:0a:{host:02x}")
    assert leased.startswith("198.18.0.1"), leased
    assert boot_file == "undionly.kpxe"
    # TFTP and HTTP boot.
    out = tmp_path / f"tftp-{host}.bin"
    done = _run(
        "tftp",
        "-m",
        "octet",
        "127.0.0.1",
        str(e.ports["tftp"]),
        "-c",
        "get",
        "undionly.kpxe",
        str(out),
    )
    assert out.read_bytes() == e.kpxe, done.stdout + done.stderr
    url = f"http://127.0.0.1:{e.ports['http']}/undionly.kpxe"
    assert _run("curl", "-sSf", "-o", str(out), url).returncode == 0
    assert out.read_bytes() == e.kpxe
    # The TCP admin API, behind its token.
    base = _tcp_api(e)
    # TLS by default: the self-signed certificate made at first start in the data directory.
    ca = str(e.edge / "data" / "api-cert.pem")
    denied = _run(
        "curl", "-s", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", f"{base}/v1/hosts"
    )
    assert denied.stdout == "401"
    allowed = _run(
        "curl", "-sSf", "--cacert", ca, "-H", f"Authorization: Bearer {TOKEN}", f"{base}/v1/hosts"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert name.split(".")[0] in {h["hostname"] for h in json.loads(allowed.stdout)["hosts"]}
    # A named metrics token from the tokens file: /metrics, and nothing else.
    made = e.api().post("/v1/tokens", {"name": f"prometheus-{host}", "scopes": ["metrics"]})
    scrape = ["curl", "-s", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}",
              "-H", f"Authorization: Bearer {made['secret']}"]  # fmt: skip
    assert _run(*scrape, f"{base}/metrics").stdout == "200"
    assert _run(*scrape, f"{base}/v1/hosts").stdout == "403"
    # Sync: central has the reservation.
    wait_until(lambda: _central_has(e, ip), f"{ip} at central", 30)


def _central_has(e: Everything, ip: str) -> bool:
    objects = asyncio.run(e.central.get(f"/v1/sites/{SITE}/hosts"))
    return ip in json.dumps(objects)


def _reserve(e: Everything, n: int) -> None:
    done = e.cli(
        "reserve",
        "add",
        "--mac",
        f"52:54:00:00:0b:{n:02x}",
        "--ip",
        f"198.18.0.{n}",
        "--hostname",
        f"h{n}",
    )
    assert done.returncode == 0, done.stderr


def test_every_section_on_answers_then_reloads_and_answers_again(
    everything: Everything, tmp_path: Path
) -> None:
    e = everything
    status = e.api().get("/v1/status")
    assert status["event_loop"] == "uvloop"  # the loop the daemon ships with
    _reserve(e, 10)
    check_every_service(e, tmp_path, 10)

    e.write_config(lease_time=1800)
    assert e.proc is not None
    e.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded " in e.log.read_text(), "the reload", 20)
    assert e.proc.poll() is None, e.log.read_text()
    _reserve(e, 11)
    check_every_service(e, tmp_path, 11)
    log = e.log.read_text()
    assert "Traceback" not in log, log
    assert "tracing event-loop stops over 2000 ms" in log
    status, _, body = http_get(_UnixConnection(e.edge / "ddi.sock"), "/metrics")
    assert status == 200
    errors = [
        line
        for line in body.decode().splitlines()
        if line.startswith("ddi_internal_errors_total") and not line.endswith(" 0.0")
    ]
    assert errors == [], errors
