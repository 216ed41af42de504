"""DHCPv6 in the namespace lab: real clients (ISC dhclient -6 for IA_NA and -P for IA_PD, dhcpcd
-6), reserved (by DUID and by MAC) and pool addresses, renew, release, a relay built with scapy
that forwards through a second link, and durability (no REPLY before its lease is in the store).

DAD is off in every namespace (sysctl, before the links exist), so link-local addresses are
usable at once. Each client runs with its script off; dhcpcd runs in its own mount namespace
with a tmpfs over its state and run folders, and never with the resolv.conf hook.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ddi.lab import Lab
from tests.integration.conftest import DaemonHandle, require
from tests.waiting import wait_until

SERVER_ADDR = "2001:db8:10::1"
BODY = """
[dhcp]
enabled = false

[dhcp6]
enabled = true
client_rate = 0
link_rate = 0

[[subnets6]]
name = "lan6"
cidr = "2001:db8:10::/64"
interface = "ddi0"
pools = [{ start = "2001:db8:10::1000", end = "2001:db8:10::10ff" }]
pd_pools = [{ prefix = "2001:db8:100::/48", delegated_length = 56 }]
dns_servers = ["2001:db8:10::53"]
domain = "site1.example"

[[subnets6]]
name = "far6"
cidr = "2001:db8:50::/64"
pools = [{ start = "2001:db8:50::100", end = "2001:db8:50::1ff" }]
"""

RELAY_SCRIPT = r"""
import json, socket, sys
from scapy.layers import dhcp6 as s6

server, link, mac = sys.argv[1], sys.argv[2], sys.argv[3]
sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sock.bind((link, 547))
sock.settimeout(15)  # a loaded machine; nothing here retransmits
duid = s6.DUID_EN(enterprisenum=32473, id=b"relayed-client")

def relay(message, peer="fe80::5054:ff:fe0b:1"):
    forward = s6.DHCP6_RelayForward(hopcount=0, linkaddr=link, peeraddr=peer) / (
        s6.DHCP6OptIfaceId(ifaceid=b"port9")
        / s6.DHCP6OptClientLinkLayerAddr(clladdr=mac)
        / s6.DHCP6OptRelayMsg(message=message))
    sock.sendto(bytes(forward), (server, 547))
    data, src = sock.recvfrom(4096)
    reply = s6.DHCP6_RelayReply(data)
    return reply, src

solicit = s6.DHCP6_Solicit(trid=0x77) / s6.DHCP6OptClientId(duid=duid) / s6.DHCP6OptIA_NA(iaid=1)
advertise, src = relay(solicit)
inner = advertise[s6.DHCP6OptRelayMsg].message
address = inner[s6.DHCP6OptIAAddress].addr
server_id = inner[s6.DHCP6OptServerId].duid
request = (s6.DHCP6_Request(trid=0x78) / s6.DHCP6OptClientId(duid=duid)
           / s6.DHCP6OptServerId(duid=server_id)
           / s6.DHCP6OptIA_NA(iaid=1, ianaopts=[s6.DHCP6OptIAAddress(addr=address)]))
reply, src = relay(request)
got = reply[s6.DHCP6OptRelayMsg].message
print(json.dumps({
    "advertise": type(inner).__name__, "reply": type(got).__name__, "address": address,
    "reply_address": got[s6.DHCP6OptIAAddress].addr, "src": src[0], "src_port": src[1],
    "interface_id": bytes(advertise[s6.DHCP6OptIfaceId].ifaceid).decode(),
    "peer": advertise.peeraddr,
}), flush=True)
"""

PXE_SCRIPT = r"""
import json, socket, sys
from scapy.layers import dhcp6 as s6

iface, arch, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
index = socket.if_nametoindex(iface)
sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
sock.bind(("::", 546, 0, index))
sock.settimeout(15)  # a loaded machine; nothing here retransmits
duid = s6.DUID_LL(lladdr="52:54:00:0b:00:59")
solicit = (s6.DHCP6_Solicit(trid=0x59) / s6.DHCP6OptClientId(duid=duid)
           / s6.DHCP6OptIA_NA(iaid=1) / s6.DHCP6OptOptReq(reqopts=[59, 60])
           / s6.DHCP6OptVendorClass(enterprisenum=343, vcdata=[s6.VENDOR_CLASS_DATA(data=kind)])
           / s6.DHCP6OptClientArchType(archtypes=[arch]))
sock.sendto(bytes(solicit), ("ff02::1:2", 547, 0, index))
data, src = sock.recvfrom(4096)
advertise = s6.DHCP6_Advertise(data)
params, offset = [], 4  # option 60 read off the wire: 2-octet length, then the parameter
while offset + 4 <= len(data):
    code = int.from_bytes(data[offset:offset + 2], "big")
    length = int.from_bytes(data[offset + 2:offset + 4], "big")
    value, offset = data[offset + 4:offset + 4 + length], offset + 4 + length
    while code == 60 and len(value) >= 2:
        n = int.from_bytes(value[:2], "big")
        params.append(value[2:2 + n].decode())
        value = value[2 + n:]
print(json.dumps({"url": advertise[s6.DHCP6OptBootFileUrl].optdata.decode(), "params": params,
                  "src": src[0].split("%")[0], "port": src[1]}), flush=True)
"""

RENEW_SCRIPT = r"""
import json, socket, sys
from scapy.layers import dhcp6 as s6

iface, duid_hex, server_hex, address, kind, iaid = sys.argv[1:7]
index = socket.if_nametoindex(iface)
sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
sock.bind(("::", 546, 0, index))
sock.settimeout(15)  # a loaded machine; nothing here retransmits
message = {"renew": s6.DHCP6_Renew, "release": s6.DHCP6_Release}[kind](trid=0x99)
packet = (message / s6.DHCP6OptClientId(duid=bytes.fromhex(duid_hex))
          / s6.DHCP6OptServerId(duid=bytes.fromhex(server_hex))
          / s6.DHCP6OptIA_NA(iaid=int(iaid), ianaopts=[s6.DHCP6OptIAAddress(addr=address)]))
sock.sendto(bytes(packet), ("ff02::1:2", 547, 0, index))
data, src = sock.recvfrom(4096)
reply = s6.DHCP6_Reply(data)
ia = reply[s6.DHCP6OptIA_NA]
addresses = [(o.addr, o.validlft) for o in ia.ianaopts if isinstance(o, s6.DHCP6OptIAAddress)]
print(json.dumps({"type": type(reply).__name__, "addresses": addresses}), flush=True)
"""


def _no_dad(lab: Lab, ns: str) -> None:
    for key in ("all", "default"):
        lab.run(ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{key}.accept_dad=0")


def _link_local(lab: Lab, ns: str, ifname: str) -> None:
    """Wait until ``ifname`` has its link-local address (assigned once the carrier is up)."""

    def ready() -> bool:
        out = lab.run(ns, "ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link")
        return "fe80::" in out.stdout and "tentative" not in out.stdout

    wait_until(ready, what=f"a link-local address on {ns}/{ifname}", within=15)


def _setup(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle], body: str = BODY
) -> tuple[str, str, DaemonHandle]:
    require("dhclient")
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    _no_dad(lab, srv)
    _no_dad(lab, cli)
    lab.link(srv, "ddi0", f"{SERVER_ADDR}/64", cli, "eth0", None)
    _link_local(lab, srv, "ddi0")
    _link_local(lab, cli, "eth0")
    daemon = ddi_daemon(srv, body)
    return srv, cli, daemon


def _set_mac(lab: Lab, ns: str, mac: str) -> None:
    lab.run(ns, "ip", "link", "set", "eth0", "down")
    lab.run(ns, "ip", "link", "set", "eth0", "address", mac)
    lab.run(ns, "ip", "link", "set", "eth0", "up")
    _link_local(lab, ns, "eth0")


def _leases6(daemon: DaemonHandle) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = daemon.cli_json("lease", "list", "--v6")
    return result


class Dhclient6:
    """ISC dhclient -6 with its script off and its files in a tmp folder."""

    def __init__(
        self, lab: Lab, ns: str, folder: Path, name: str, *, rapid_commit: bool = False
    ) -> None:
        self.lab, self.ns = lab, ns
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / f"{name}.conf"
        rapid = "send dhcp6.rapid-commit;\n" if rapid_commit else ""
        conf.write_text(f'send fqdn.fqdn "{name}";\nsend fqdn.server-update on;\n{rapid}')
        self.lease_file = folder / f"{name}.leases"
        self.log = folder / f"{name}.log"
        self.files = ["-cf", str(conf), "-lf", str(self.lease_file),
                      "-pf", str(folder / f"{name}.pid")]  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None

    def obtain(self, *flags: str, want: str = "iaaddr") -> str:
        """Run in the foreground until the lease file holds a binding; return its text."""
        argv = ["dhclient", "-6", *flags, "-sf", "/bin/true", "-d", "-v", *self.files, "eth0"]
        with self.log.open("a") as log:
            self.proc = self.lab.popen(self.ns, *argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(
            lambda: self.lease_file.exists() and want in self.lease_file.read_text(),
            what=f"dhclient -6 {' '.join(flags)} bound (see {self.log})",
            within=30,
        )
        self.stop()
        return self.lease_file.read_text()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def release(self) -> None:
        argv = ["dhclient", "-6", "-r", "-sf", "/bin/true", "-v", *self.files, "eth0"]
        done = self.lab.run(self.ns, *argv, timeout=60, check=False)
        assert done.returncode == 0, done.stderr


def _server_duid(daemon: DaemonHandle) -> str:
    status = daemon.api("/v1/status")
    return str(status["statistics"]["dhcp6"]["server_duid"])


def _reserve6(daemon: DaemonHandle, *flags: str) -> None:
    done = daemon.cli("reserve", "add", *flags)
    assert done.returncode == 0, done.stderr


def test_dhclient_pool_address_prefix_renew_and_release(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle], tmp_path: Path
) -> None:
    _, cli, daemon = _setup(lab, ddi_daemon)
    client = Dhclient6(lab, cli, tmp_path / "c", "laptop")
    text = client.obtain()
    [address] = re.findall(r"iaaddr (\S+) \{", text)
    assert address.startswith("2001:db8:10::10")
    assert "2001:db8:10::53" in text  # option 23
    [lease] = [x for x in _leases6(daemon) if x["kind"] == "na"]
    assert lease["prefix"] == f"{address}/128"
    assert lease["state"] == "bound"
    assert lease["hostname"] == "laptop"
    duid = lease["duid"]

    # A RENEW (sent with scapy over the client's link) extends the same address.
    renew = lab.run(
        cli,
        sys.executable,
        "-c",
        RENEW_SCRIPT,
        "eth0",
        duid.replace(":", ""),
        _server_duid(daemon).replace(":", ""),
        address,
        "renew",
        str(lease["iaid"]),
    )
    renewed = json.loads(renew.stdout)
    assert renewed["type"] == "DHCP6_Reply"
    assert renewed["addresses"][0] == [address, 7200]
    after = next(x for x in _leases6(daemon) if x["kind"] == "na")
    assert after["end"] > lease["end"]

    # dhclient -6 -r releases it: the store says released.
    client.release()
    wait_until(
        lambda: [x["state"] for x in _leases6(daemon) if x["kind"] == "na"] == ["released"],
        what="the release in the store",
        within=15,
    )

    # IA_PD: dhclient -6 -P gets a /56 from the PD pool.
    delegated = Dhclient6(lab, cli, tmp_path / "p", "router").obtain("-P", want="iaprefix")
    [prefix] = re.findall(r"iaprefix (\S+) \{", delegated)
    assert prefix.endswith("/56")
    assert prefix.startswith("2001:db8:1")
    kinds = {(x["kind"], x["prefix"]) for x in _leases6(daemon) if x["state"] == "bound"}
    assert ("pd", prefix) in kinds
    text = daemon.cli("lease", "list").stdout
    assert prefix in text  # `ddi lease list` shows the DHCPv6 leases after the DHCPv4 ones


def test_reservations_by_duid_and_by_mac(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle], tmp_path: Path
) -> None:
    _, cli, daemon = _setup(lab, ddi_daemon)
    mac = "52:54:00:0b:00:21"
    _set_mac(lab, cli, mac)
    _reserve6(daemon, "--mac", mac, "--ip6", "2001:db8:10::21", "--hostname", "web6")
    # dhclient's DUID is a DUID-LLT of eth0's MAC: the reservation by MAC matches it.
    text = Dhclient6(lab, cli, tmp_path / "m", "web6").obtain()
    assert re.findall(r"iaaddr (\S+) \{", text) == ["2001:db8:10::21"]
    # The server DUID the client now holds survives a restart (RENEW names it).
    before = _server_duid(daemon)
    daemon.restart()
    assert _server_duid(daemon) == before

    # By DUID: a dhcpcd client whose DUID is reserved (dhcpcd writes its DUID-LL first).
    require("dhcpcd")
    duid = "00:03:00:01:52:54:00:0b:00:22"
    _set_mac(lab, cli, "52:54:00:0b:00:22")
    _reserve6(daemon, "--duid", duid, "--ip6", "2001:db8:10::22", "--hostname", "db6")
    address = _dhcpcd(lab, cli, tmp_path / "d", duid)
    assert address == "2001:db8:10::22"
    bound = {x["prefix"]: x for x in _leases6(daemon) if x["state"] == "bound"}
    assert bound["2001:db8:10::22/128"]["duid"] == duid


def _dhcpcd(lab: Lab, ns: str, folder: Path, duid: str) -> str:
    """Run dhcpcd -6 once in its own mount namespace (state and run folders on a tmpfs, its DUID
    written there first) and return the IA_NA address it configured on eth0."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "dhcpcd.conf"
    conf.write_text(
        "ipv6only\nnoipv6rs\nia_na 1\nscript /bin/true\nnohook resolv.conf\n"
        "duid ll\noption dhcp6_name_servers\n"
    )
    script = (
        "set -e; mount -t tmpfs none /var/lib/dhcpcd 2>/dev/null || "
        "{ mkdir -p /var/lib/dhcpcd; mount -t tmpfs none /var/lib/dhcpcd; }; "
        "mkdir -p /run/dhcpcd; mount -t tmpfs none /run/dhcpcd; "
        f"echo {duid} > /var/lib/dhcpcd/duid; "
        f"exec dhcpcd -6 -1 -B -t 30 -f {conf} eth0"
    )
    done = lab.run(ns, "unshare", "-m", "sh", "-c", script, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = lab.run(ns, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
    found = re.findall(r"inet6 (2001:db8:10::[0-9a-f:]+)/128", out.stdout)
    assert found, out.stdout
    return found[0]


def test_relay_forw_through_a_scapy_relay_in_a_namespace(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle]
) -> None:
    require()
    srv, rly = lab.namespace("srv"), lab.namespace("rly")
    _no_dad(lab, srv)
    _no_dad(lab, rly)
    lab.link(srv, "ddi1", "2001:db8:8::1/64", rly, "eth0", "2001:db8:8::2/64")
    _link_local(lab, srv, "ddi1")
    lab.run(rly, "ip", "addr", "add", "2001:db8:50::1/128", "dev", "lo")
    lab.run(srv, "ip", "-6", "route", "add", "2001:db8:50::/64", "via", "2001:db8:8::2")
    # lan6 sits on the server's one link here (start-up refuses a missing interface).
    body = BODY.replace("[dhcp6]\n", '[dhcp6]\ninterfaces = ["ddi1"]\n').replace(
        'interface = "ddi0"', 'interface = "ddi1"'
    )
    daemon = ddi_daemon(srv, body)
    mac = "52:54:00:0b:00:50"
    _reserve6(daemon, "--mac", mac, "--ip6", "2001:db8:50::50", "--hostname", "far")
    # The relay's link-address is in far6; the client's MAC comes in option 79.
    out = lab.run(rly, sys.executable, "-c", RELAY_SCRIPT, "2001:db8:8::1", "2001:db8:50::1",
                  mac)  # fmt: skip
    result = json.loads(out.stdout)
    assert result["advertise"] == "DHCP6_Advertise"
    assert result["reply"] == "DHCP6_Reply"
    assert result["address"] == "2001:db8:50::50"
    assert result["reply_address"] == "2001:db8:50::50"
    assert result["interface_id"] == "port9"
    assert result["peer"] == "fe80::5054:ff:fe0b:1"
    assert result["src_port"] == 547
    [lease] = _leases6(daemon)
    assert (lease["subnet"], lease["mac"]) == ("far6", mac)


def test_rapid_commit_reply_only_after_the_lease_is_durable(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle], tmp_path: Path
) -> None:
    """Rapid Commit: one SOLICIT, one REPLY. The lease the REPLY carries is in the store the
    moment the client has it: the daemon is killed (SIGKILL keeps only what was committed) as
    soon as the client's lease file holds the address, and the database is read without it."""
    body = BODY.replace('interface = "ddi0"\n', 'interface = "ddi0"\nrapid_commit = true\n')
    _, cli, daemon = _setup(lab, ddi_daemon, body)
    client = Dhclient6(lab, cli, tmp_path / "r", "durable", rapid_commit=True)
    text = client.obtain()
    [address] = re.findall(r"iaaddr (\S+) \{", text)
    daemon.kill()
    store = daemon.workdir / "var" / "ddi.sqlite"
    with sqlite3.connect(store) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        table = next(t for t in tables if "lease6" in t or "leases6" in t)
        rows = [str(r) for r in db.execute(f"select * from {table}")]
    assert any(address in row for row in rows), rows


BOOT = """
[boot]
tftp_enabled = false
http_enabled = false
http_base_url = "http://{server}:8080"

[boot.profiles.uefi]
efi_bc = "ipxe.efi"
http_x86_64 = "boot/ipxe.efi"
boot_params = ["console=ttyS0", "profile={profile}"]
"""


def test_netboot_over_ipv6_from_the_subnets_boot_profile(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle]
) -> None:
    """A PXE and a UEFI HTTP client (their SOLICITs built with scapy, sent over the client's
    link) get option 59 with the server's address in brackets, from the subnet's profile."""
    body = BODY.replace('interface = "ddi0"\n', 'interface = "ddi0"\nboot = "uefi"\n') + BOOT
    _, cli, daemon = _setup(lab, ddi_daemon, body)
    pxe = json.loads(
        lab.run(cli, sys.executable, "-c", PXE_SCRIPT, "eth0", "7", "PXEClient").stdout
    )
    assert pxe["url"] == f"tftp://[{SERVER_ADDR}]/ipxe.efi"
    assert pxe["params"] == ["console=ttyS0", "profile=uefi"]  # option 60 with option 59
    assert pxe["src"].startswith("fe80::")  # from the server's link-local address, port 547
    assert pxe["port"] == 547
    http = json.loads(
        lab.run(cli, sys.executable, "-c", PXE_SCRIPT, "eth0", "16", "HTTPClient").stdout
    )
    assert http["url"] == f"http://[{SERVER_ADDR}]:8080/boot/ipxe.efi"
    explained = daemon.cli_json(
        "boot", "explain", "--v6", "52:54:00:0b:00:59", "--arch", "7", "--subnet", "lan6"
    )
    assert explained["url"] == pxe["url"]
    assert explained["params"] == pxe["params"]
    assert {"code": 60, "name": "bootfile_param", "value": "console=ttyS0 profile=uefi"} in (
        explained["options"]
    )
    assert explained["rule"] == "arch-file"
    assert _metric(daemon, "ddi_dhcp6_decisions_total", rule="advertise") == 2
    assert _metric(daemon, "ddi_dhcp6_packets_sent_total", message_type="advertise") == 2


def _metric(daemon: DaemonHandle, name: str, **labels: str) -> float:
    text = daemon.api("/metrics")
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
