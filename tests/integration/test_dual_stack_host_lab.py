"""One dual-stack host, end to end, in the namespace lab: a single ``ddi reserve add`` with a
MAC, an IPv4 and an IPv6 address, a name and a boot profile; then real clients on the other
end of a veth get both addresses (dhclient -4 and dhclient -6), the name resolves to A and
AAAA and both addresses back to it (dig over IPv4 and IPv6), and the host's boot file comes
over both families: a PXE DISCOVER and a PXE SOLICIT from the same MAC name the file (field
``file`` + siaddr, option 59's ``tftp://[...]``), which tftp then fetches over IPv4 and IPv6."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ddi.lab import Lab
from tests.integration.conftest import DaemonHandle, require
from tests.integration.test_dhcp6_lab import Dhclient6, _link_local, _no_dad
from tests.integration.test_netboot_lab import _discover, pxe
from tests.waiting import wait_until

MAC = "52:54:00:d5:00:01"
IP4, IP6 = "198.18.0.10", "2001:db8:10::10"
SERVER4, SERVER6 = "198.18.0.1", "2001:db8:10::1"
BODY = """
[dhcp]
enabled = true

[dhcp6]
enabled = true

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
interface = "ddi0"
dns_servers = ["198.18.0.1"]
pools = [{{ start = "198.18.0.100", end = "198.18.0.199" }}]

[[subnets6]]
name = "lan6"
cidr = "2001:db8:10::/64"
interface = "ddi0"
pools = [{{ start = "2001:db8:10::1000", end = "2001:db8:10::10ff" }}]

[dns]
listen = ["198.18.0.1:53", "[2001:db8:10::1]:53"]
ns_address = "198.18.0.1"

[boot]
root = "{root}"
tftp_listen = ["198.18.0.1", "2001:db8:10::1"]
tftp_port = 69
http_enabled = false

[boot.profiles.rack]
efi_bc = "rack/{{hostname}}.efi"
"""

# A UEFI PXE client's SOLICIT (RFC 5970: arch 7, vendor class PXEClient), its DUID-LL made of
# the host's MAC: what OVMF sends for PXEv6.
PXE6 = r"""
import json, socket, sys
from scapy.layers import dhcp6 as s6

iface, mac = sys.argv[1], sys.argv[2]
index = socket.if_nametoindex(iface)
sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
sock.bind(("::", 546, 0, index))
sock.settimeout(15)  # a loaded machine; nothing here retransmits
solicit = (s6.DHCP6_Solicit(trid=0x5e) / s6.DHCP6OptClientId(duid=s6.DUID_LL(lladdr=mac))
           / s6.DHCP6OptIA_NA(iaid=1) / s6.DHCP6OptOptReq(reqopts=[59, 60])
           / s6.DHCP6OptVendorClass(enterprisenum=343,
                                    vcdata=[s6.VENDOR_CLASS_DATA(data=b"PXEClient")])
           / s6.DHCP6OptClientArchType(archtypes=[7]))
sock.sendto(bytes(solicit), ("ff02::1:2", 547, 0, index))
advertise = s6.DHCP6_Advertise(sock.recvfrom(4096)[0])
print(json.dumps({"url": advertise[s6.DHCP6OptBootFileUrl].optdata.decode(),
                  "address": advertise[s6.DHCP6OptIAAddress].addr}), flush=True)
"""


def _dhclient4(lab: Lab, ns: str, folder: Path) -> str:
    lease_file = folder / "v4.leases"
    argv = ["dhclient", "-4", "-1", "-v", "-sf", "/bin/true", "-lf", str(lease_file),
            "-pf", str(folder / "v4.pid"), "eth0"]  # fmt: skip
    done = lab.run(ns, *argv, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lab.run(ns, "dhclient", "-4", "-x", "-sf", "/bin/true", "-lf", str(lease_file),
            "-pf", str(folder / "v4.pid"), "eth0", check=False)  # fmt: skip
    return lease_file.read_text()


def _dig(lab: Lab, ns: str, server: str, *args: str) -> str:
    out = lab.run(ns, "dig", f"@{server}", "+short", "+tries=2", "+time=2", *args, check=False)
    return out.stdout.strip()


def _tftp(lab: Lab, ns: str, family: str, server: str, name: str, out: Path) -> bytes:
    done = lab.run(ns, "tftp", family, "-m", "octet", server, "-c", "get", name, str(out),
                   timeout=60, check=False)  # fmt: skip
    assert out.exists(), done.stdout + done.stderr
    return out.read_bytes()


def test_one_reservation_serves_a_dual_stack_host_its_addresses_names_and_boot_file(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle], tmp_path: Path
) -> None:
    require("dhclient", "dig", "tftp")
    root = tmp_path / "bootroot"
    (root / "rack").mkdir(parents=True)
    image = os.urandom(120_000)
    (root / "rack" / "dual1.efi").write_bytes(image)

    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    _no_dad(lab, srv)
    _no_dad(lab, cli)
    lab.link(srv, "ddi0", (f"{SERVER4}/24", f"{SERVER6}/64"), cli, "eth0", None)
    lab.run(cli, "ip", "link", "set", "eth0", "down")
    lab.run(cli, "ip", "link", "set", "eth0", "address", MAC)
    lab.run(cli, "ip", "link", "set", "eth0", "up")
    _link_local(lab, srv, "ddi0")
    _link_local(lab, cli, "eth0")
    daemon = ddi_daemon(srv, BODY.format(root=root))

    done = daemon.cli("reserve", "add", "--mac", MAC, "--ip", IP4, "--ip6", IP6,
                      "--hostname", "dual1", "--boot", "rack", "--reason", "lab")  # fmt: skip
    assert done.returncode == 0, done.stderr
    [host] = daemon.cli_json("reserve", "list")
    assert (host["ip"], host["ip6"], host["mac"], host["boot"]) == (IP4, IP6, MAC, "rack")

    # Netboot first, as a machine does: the PXE firmware's DISCOVER and SOLICIT (same MAC)
    # are offered the reserved addresses and the host's profile's file.
    [offer] = _discover(lab, cli, pxe(MAC, 7))
    assert (offer["yiaddr"], offer["siaddr"], offer["file"]) == (IP4, SERVER4, "rack/dual1.efi")

    out = lab.run(cli, sys.executable, "-c", PXE6, "eth0", MAC, timeout=30)
    advertised = json.loads(out.stdout)
    assert advertised == {"url": f"tftp://[{SERVER6}]/rack/dual1.efi", "address": IP6}
    # The firmware takes the offered addresses to fetch its file (then the OS asks for its own).
    lab.run(cli, "ip", "addr", "add", f"{IP4}/24", "dev", "eth0")
    lab.run(cli, "ip", "addr", "add", f"{IP6}/64", "dev", "eth0", "nodad")

    # The file over IPv4 (siaddr + file) and over IPv6 (option 59's tftp://[...] URL).
    assert _tftp(lab, cli, "-4", offer["siaddr"], offer["file"], tmp_path / "v4.efi") == image
    assert _tftp(lab, cli, "-6", SERVER6, "rack/dual1.efi", tmp_path / "v6.efi") == image

    # Then the OS: real DHCP clients get both addresses.
    v4 = _dhclient4(lab, cli, tmp_path)
    assert f"fixed-address {IP4};" in v4, v4
    v6 = Dhclient6(lab, cli, tmp_path / "v6", "dual1").obtain()
    assert f"iaaddr {IP6}" in v6, v6

    # Names: A, AAAA and both PTRs, asked over IPv4 and over IPv6.
    for server in (SERVER4, SERVER6):
        assert _dig(lab, cli, server, "A", "dual1.site1.example") == IP4
        assert _dig(lab, cli, server, "AAAA", "dual1.site1.example") == IP6
        assert _dig(lab, cli, server, "-x", IP4) == "dual1.site1.example."
        assert _dig(lab, cli, server, "-x", IP6) == "dual1.site1.example."

    # Both fetches completed at the TFTP server.
    def completed() -> bool:
        requests = daemon.cli_json("status")["statistics"]["tftp"]["requests"]
        return bool(requests.get("completed") == 2)

    wait_until(completed, what="two completed TFTP transfers", within=10)
