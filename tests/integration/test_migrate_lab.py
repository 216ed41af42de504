"""Moving a site onto ddi in the lab: dnsmasq (and Kea) serve real dhclient clients and write
their own lease files; the server stops; ``ddi import`` takes its configuration and lease file
in one transaction; on their next renewal every client keeps its address from ddi, and every
name resolves (dig against ddi).

Topology: srv ``ddi0`` 198.18.0.1/24 ── cli ``eth0`` (no address: dhclient's script is off).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ddi.lab import Lab

from .conftest import DaemonHandle, require
from .test_dhcp_lab import Dhclient, _leases, _set_mac, _wait_line


class Client(Dhclient):
    """A dhclient run that closes its output pipe."""

    def obtain(self) -> str:
        argv = ["dhclient", "-sf", "/bin/true", "-1", "-d", "-v", *self.files, "eth0"]
        proc = self.lab.popen(self.ns, *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            line = _wait_line(proc, re.compile(r"bound to (\S+)"), timeout=30)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=10)
            assert proc.stdout is not None
            proc.stdout.close()
        assert line is not None, "dhclient did not bind"
        return line.group(1)


pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

DYNAMIC_MAC, RESERVED_MAC = "52:54:00:ab:00:01", "52:54:00:ab:00:02"
RESERVED_IP = "198.18.0.20"

BODY = """
[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"
interface = "ddi0"
lease_time = 600

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.149"

[dhcp]
interfaces = ["ddi0"]

[dns]
listen = ["198.18.0.1:53"]
"""


def _setup(lab: Lab) -> tuple[str, str]:
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", "198.18.0.1/24", cli, "eth0", None)
    return srv, cli


def _serve_clients(lab: Lab, cli: str, folder: Path) -> tuple[Client, Client, str]:
    """Both clients get an address from whichever server runs: the dynamic one's."""
    _set_mac(lab, cli, DYNAMIC_MAC)
    dynamic = Client(lab, cli, folder / "dyn", "laptop")
    dynamic_ip = dynamic.obtain()
    _set_mac(lab, cli, RESERVED_MAC)
    reserved = Client(lab, cli, folder / "res", "res1")
    assert reserved.obtain() == RESERVED_IP
    return dynamic, reserved, dynamic_ip


def _wait(check: Callable[[], bool], within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _renew_at_ddi(
    lab: Lab,
    cli: str,
    srv: str,
    daemon: DaemonHandle,
    clients: tuple[Client, Client, str],
    imported_end: float,
) -> None:
    """Each client asks ddi for its address again (INIT-REBOOT from its lease file) and keeps
    it; ddi's lease moves on from the imported one; the names resolve at ddi."""
    dynamic, reserved, dynamic_ip = clients
    _set_mac(lab, cli, DYNAMIC_MAC)
    assert dynamic.obtain() == dynamic_ip
    _set_mac(lab, cli, RESERVED_MAC)
    assert reserved.obtain() == RESERVED_IP
    leases = _leases(daemon)
    assert leases[DYNAMIC_MAC]["ip"] == dynamic_ip
    assert leases[RESERVED_MAC]["ip"] == RESERVED_IP
    # ddi's lease moved on from the imported one (its end is now ddi's, from the subnet's
    # lease time); the history holds the import by the operator, with the imported end.
    assert leases[DYNAMIC_MAC]["end"] != imported_end
    history = daemon.cli_json("lease", "history", dynamic_ip)
    imported = [e for e in history if e["actor"] == "root"]
    assert [(e["image"]["mac"], e["image"]["end"]) for e in imported] == [
        (DYNAMIC_MAC, imported_end)
    ]
    lab.run(cli, "ip", "addr", "add", f"{RESERVED_IP}/24", "dev", "eth0")  # as its script would
    for name, address in (("res1", RESERVED_IP), ("laptop", dynamic_ip)):
        answer = lab.run(cli, "dig", "+short", "+time=2", "+tries=3", "@198.18.0.1",
                         f"{name}.site1.example", "A", check=False)  # fmt: skip
        assert answer.stdout.split() == [address], (name, answer.stdout, answer.stderr)
    log = daemon.log_path.read_text()
    assert f"DHCPACK(ddi0) {dynamic_ip} {DYNAMIC_MAC} laptop" in log


def _import(daemon: DaemonHandle, form: str, *files: Path) -> dict[str, Any]:
    dry = daemon.cli("import", form, "--dry-run", *map(str, files))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert " 0 refused" in dry.stdout, dry.stdout
    done = daemon.cli("import", form, "--json", *map(str, files))
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["applied"] is True
    return result


def test_a_dnsmasq_site_moves_onto_ddi(lab: Lab, ddi_daemon: Any, tmp_path: Path) -> None:
    require("dnsmasq", "dhclient", "dig")
    srv, cli = _setup(lab)
    folder = tmp_path / "dnsmasq"
    folder.mkdir()
    conf = folder / "dnsmasq.conf"
    lease_file = folder / "dnsmasq.leases"
    conf.write_text(
        "port=0\ninterface=ddi0\nbind-interfaces\ndhcp-authoritative\n"
        "dhcp-range=198.18.0.100,198.18.0.149,255.255.255.0,1h\n"
        f"dhcp-host={RESERVED_MAC},{RESERVED_IP},res1\n"
        f"dhcp-leasefile={lease_file}\npid-file={folder / 'pid'}\n"
    )
    dnsmasq = lab.popen(srv, "dnsmasq", "--no-daemon", f"--conf-file={conf}", "--user=root",
                        "--group=root", stdout=subprocess.DEVNULL,
                        stderr=subprocess.STDOUT)  # fmt: skip
    try:
        clients = _serve_clients(lab, cli, folder)
        assert _wait(lambda: lease_file.exists() and lease_file.read_text().count("\n") >= 2)
    finally:
        _stop(dnsmasq)
    written = lease_file.read_text()
    assert f" {DYNAMIC_MAC} {clients[2]} laptop " in written  # dnsmasq's own lease line

    daemon = ddi_daemon(srv, BODY)
    result = _import(daemon, "dnsmasq", conf, lease_file)
    assert {(o["kind"], o["key"]) for o in result["added"]} == {
        ("host", RESERVED_IP), ("lease", clients[2]), ("lease", RESERVED_IP),
    }  # fmt: skip
    imported_end = _leases(daemon)[DYNAMIC_MAC]["end"]
    assert f"{int(imported_end)} {DYNAMIC_MAC} {clients[2]} " in written  # dnsmasq's expiry
    _renew_at_ddi(lab, cli, srv, daemon, clients, imported_end)


def test_a_kea_site_moves_onto_ddi(lab: Lab, ddi_daemon: Any, tmp_path: Path) -> None:
    require("kea-dhcp4", "dhclient", "dig")
    srv, cli = _setup(lab)
    folder = tmp_path / "kea"
    folder.mkdir()
    lease_file = folder / "kea-leases4.csv"
    conf = folder / "kea-dhcp4.conf"
    conf.write_text(
        "// written for the migration test\n"
        + json.dumps(
            {
                "Dhcp4": {
                    "interfaces-config": {"interfaces": ["ddi0"], "dhcp-socket-type": "raw"},
                    "lease-database": {"type": "memfile", "persist": True,
                                       "name": str(lease_file), "lfc-interval": 0},
                    "valid-lifetime": 3600,
                    "subnet4": [{
                        "id": 1, "subnet": "198.18.0.0/24",
                        "pools": [{"pool": "198.18.0.100 - 198.18.0.149"}],
                        "reservations": [{"hw-address": RESERVED_MAC, "ip-address": RESERVED_IP,
                                          "hostname": "res1"}],
                    }],
                    "loggers": [{"name": "kea-dhcp4", "severity": "WARN",
                                 "output_options": [{"output": str(folder / "kea.log")}]}],
                }
            },
            indent=1,
        )
    )  # fmt: skip
    kea = lab.popen(srv, "env", f"KEA_PIDFILE_DIR={folder}", f"KEA_LOCKFILE_DIR={folder}",
                    "kea-dhcp4", "-c", str(conf), stdout=subprocess.DEVNULL,
                    stderr=subprocess.STDOUT)  # fmt: skip
    try:
        clients = _serve_clients(lab, cli, folder)
        assert _wait(lambda: lease_file.exists() and RESERVED_MAC in lease_file.read_text())
    finally:
        _stop(kea)
    written = lease_file.read_text()
    assert re.search(rf"^{re.escape(clients[2])},{DYNAMIC_MAC},", written, re.MULTILINE)

    daemon = ddi_daemon(srv, BODY)
    result = _import(daemon, "kea", conf, lease_file)
    assert ("host", RESERVED_IP) in {(o["kind"], o["key"]) for o in result["added"]}
    imported_end = _leases(daemon)[DYNAMIC_MAC]["end"]
    _renew_at_ddi(lab, cli, srv, daemon, clients, imported_end)
