"""Netboot in the namespace lab: PXE DISCOVERs crafted with scapy get the right file, server and
vendor options from ``ddi serve``; as iPXE they get their script URL; the client then fetches
the file with tftp-hpa and the script with curl.

    cli  eth0 198.18.0.250/24 ── ddi0 198.18.0.1/24  srv (ddi serve: DHCP, TFTP :69, HTTP :8067)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ddi.lab import Lab

from .conftest import DaemonHandle, require

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SERVER = "198.18.0.1"
UNRESERVED = "52:54:00:0b:00:01"
RESERVED = "52:54:00:0b:00:02"

BODY = """
[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"
interface = "ddi0"
lease_time = 600
boot = "rack"

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.149"

[dhcp]
interfaces = ["ddi0"]

[boot]
root = "{root}"
http_port = 8067

[boot.profiles.rack]
bios = "undionly.kpxe"
efi_bc = "ipxe.efi"
efi_x86_64 = "ipxe.efi"

[boot.profiles.special]
bios = "special.kpxe"
efi_bc = "special/{{hostname}}.efi"
"""

# Runs inside the client namespace: one DISCOVER per line of argv[1] (JSON), broadcast flag set
# so that the OFFER comes back to 255.255.255.255:68 without an address configured for it.
PXE_CLIENT = r"""
import json, random, socket, sys
from scapy.layers.dhcp import BOOTP, DHCP

requests = json.loads(sys.argv[1])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
sock.bind(("0.0.0.0", 68))
sock.settimeout(15)  # a loaded machine; nothing here retransmits
out = []
for req in requests:
    xid = random.getrandbits(32)
    mac = bytes.fromhex(req["mac"].replace(":", ""))
    options = [("message-type", "discover"),
               ("pxe_client_architecture", int(req["arch"]).to_bytes(2, "big")),
               ("vendor_class_id", req["vendor"].encode()),
               ("param_req_list", [1, 3, 6, 43, 60, 66, 67])]
    if req.get("user_class"):
        options.append(("user_class", req["user_class"].encode()))
    discover = BOOTP(op=1, xid=xid, flags=0x8000, chaddr=mac + b"\0" * 10) / DHCP(
        options=options + ["end"])
    sock.sendto(bytes(discover), ("255.255.255.255", 67))
    while True:
        data, src = sock.recvfrom(4096)
        reply = BOOTP(data)
        if reply.xid == xid:
            break
    opts = {}
    for o in reply[DHCP].options:
        if isinstance(o, tuple):
            value = o[1]
            opts[str(o[0])] = value.hex() if isinstance(value, bytes) else value
    out.append({"siaddr": reply.siaddr, "yiaddr": reply.yiaddr,
                "file": reply.file.rstrip(b"\0").decode(), "options": opts})
print(json.dumps(out))
"""


def _text(hexed: str) -> str:
    return bytes.fromhex(hexed).decode()


def _discover(lab: Lab, ns: str, *requests: dict[str, Any]) -> list[dict[str, Any]]:
    done = lab.run(ns, sys.executable, "-c", PXE_CLIENT, json.dumps(list(requests)), timeout=60)
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def pxe(mac: str, arch: int, user_class: str | None = None) -> dict[str, Any]:
    return {"mac": mac, "arch": arch, "vendor": f"PXEClient:Arch:{arch:05d}:UNDI:003016",
            "user_class": user_class}  # fmt: skip


def _setup(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle], root: Path
) -> tuple[str, DaemonHandle]:
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", f"{SERVER}/24", cli, "eth0", "198.18.0.250/24")
    daemon = ddi_daemon(srv, BODY.format(root=root))
    return cli, daemon


def _boot_root(tmp_path: Path) -> Path:
    root = tmp_path / "bootroot"
    (root / "special").mkdir(parents=True)
    for name in ("undionly.kpxe", "ipxe.efi", "special.kpxe", "special/pxe2.efi"):
        (root / name).write_bytes(os.urandom(200_000))
    return root


def test_uefi_pxe_then_ipxe_get_file_then_script_and_fetch_both(
    lab: Lab, ddi_daemon: Any, tmp_path: Path
) -> None:
    require("tftp", "curl")
    root = _boot_root(tmp_path)
    cli, daemon = _setup(lab, ddi_daemon, root)

    uefi, ipxe = _discover(lab, cli, pxe(UNRESERVED, 7), pxe(UNRESERVED, 7, "iPXE"))

    assert uefi["siaddr"] == SERVER
    assert uefi["file"] == "ipxe.efi"
    options = uefi["options"]
    assert _text(options["boot-file-name"]) == "ipxe.efi"
    assert _text(options["vendor_class_id"]) == "PXEClient"
    assert options["vendor_specific"] == "060108ff"
    assert _text(options["tftp_server_name"]) == SERVER

    script_url = f"http://{SERVER}:8067/boot/{UNRESERVED}.ipxe"
    assert ipxe["file"] == script_url
    assert _text(ipxe["options"]["boot-file-name"]) == script_url
    assert "vendor_specific" not in ipxe["options"]

    # The client fetches what it was told: the file by TFTP from siaddr...
    out = tmp_path / "ipxe.efi"
    done = lab.run(cli, "tftp", "-m", "octet", uefi["siaddr"], "-c", "get", uefi["file"],
                   str(out), timeout=60)  # fmt: skip
    assert out.read_bytes() == (root / "ipxe.efi").read_bytes(), done.stdout + done.stderr
    # ...and (as iPXE) its script by HTTP: no reservation and no default_script -> 404.
    done = lab.run(cli, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", script_url,
                   check=False)  # fmt: skip
    assert done.stdout == "404"
    statistics = daemon.cli_json("status")["statistics"]
    assert statistics["tftp"]["requests"] == {"completed": 1}
    assert statistics["http_boot"]["requests"] == {"script_404": 1}
    # The funnel's first step: both OFFERs carried boot options from the subnet's profile.
    offers = [
        line
        for line in daemon.api("/metrics").splitlines()
        if line.startswith("ddi_boot_offers_total{")
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in offers) == 2, offers


def test_reserved_host_boots_bios_then_uefi_then_ipxe_from_its_profile(
    lab: Lab, ddi_daemon: Any, tmp_path: Path
) -> None:
    require("tftp", "curl")
    root = _boot_root(tmp_path)
    cli, daemon = _setup(lab, ddi_daemon, root)
    done = daemon.cli("reserve", "add", "--mac", RESERVED, "--ip", "198.18.0.20",
                      "--hostname", "pxe2", "--boot", "special")  # fmt: skip
    assert done.returncode == 0, done.stderr

    bios, uefi, ipxe = _discover(
        lab, cli, pxe(RESERVED, 0), pxe(RESERVED, 7), pxe(RESERVED, 7, "iPXE")
    )
    assert (bios["yiaddr"], bios["siaddr"], bios["file"]) == ("198.18.0.20", SERVER, "special.kpxe")
    assert (uefi["yiaddr"], uefi["file"]) == ("198.18.0.20", "special/pxe2.efi")
    script_url = f"http://{SERVER}:8067/boot/{RESERVED}.ipxe"
    assert ipxe["file"] == script_url

    out = tmp_path / "pxe2.efi"
    lab.run(cli, "tftp", "-m", "octet", SERVER, "-c", "get", uefi["file"], str(out), timeout=60)
    assert out.read_bytes() == (root / "special" / "pxe2.efi").read_bytes()
    done = lab.run(cli, "curl", "-sf", script_url, timeout=30)
    assert "pxe2.site1.example (198.18.0.20" in done.stdout
    assert "profile special" in done.stdout

    explain = daemon.cli_json("boot", "explain", "--mac", RESERVED, "--arch", "0")
    assert (explain["rule"], explain["profile"], explain["file"]) == (
        "arch-file", "special", "special.kpxe",
    )  # fmt: skip
    # the same options as the OFFER the client got (the daemon runs in srv, next to ddi0)
    assert explain["siaddr"] == SERVER
    assert {o["code"]: o["value"] for o in explain["options"]} == {
        43: "06 01 08 ff", 60: "PXEClient", 66: SERVER, 67: "special.kpxe",
    }  # fmt: skip
    status = daemon.cli_json("status")
    assert status["statistics"]["tftp"]["requests"] == {"completed": 1}
