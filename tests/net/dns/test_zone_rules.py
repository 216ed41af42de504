"""DNS data a secondary accepts: record names follow zone-file rules (the README's SRV example is
served), a CNAME at the apex or beside other data is refused, the name server's name is owned
like a reservation's, and every zone a real ``ddi serve`` transfers passes ``named-checkzone``
after a mix of reservations, leases and records. Checked with dig and named-checkzone."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from ddi.ipam.models import Lease
from ddi.ipam.store import Store
from tests.ci import require_tools

DOMAIN = "site1.example"

CONFIG = """\
[site]
id = "zonerules"
domain = "site1.example"
data_dir = "data"

[api]
socket = "ddi.sock"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.199"

[dhcp]
enabled = false

[dns]
listen = ["127.0.0.1:{port}"]
ns_address = "198.18.0.53"
allow_transfer = ["127.0.0.1/32"]
"""


async def _seed_leases(path: Path, leases: list[Lease]) -> None:
    """Leases written the way the DHCP server's group commit writes them, before the start."""
    store = await Store.open(path, domain=DOMAIN)
    try:
        await store.commit_leases(leases)
    finally:
        await store.close()


class Daemon:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.socket = workdir / "ddi.sock"
        (workdir / "site.toml").write_text(CONFIG.format(port=port))
        (workdir / "data").mkdir()
        now = time.time()

        def lease(last: int, hostname: str) -> Lease:
            return Lease(ip=IPv4Address(f"198.18.0.{last}"), mac=f"52:54:00:00:00:{last - 100}",
                         hostname=hostname, start=now, end=now + 3600, subnet="lan")  # fmt: skip

        # "ns": a client calling itself so must not add an A beside the server's; "web1": a
        # name a reservation owns, so the lease gets no record.
        leases = [lease(120, "laptop"), lease(121, "ns"), lease(122, "web1")]
        asyncio.run(_seed_leases(workdir / "data" / "ddi.sqlite", leases))
        self.log = (workdir / "daemon.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ddi", "serve", "--config", str(workdir / "site.toml")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((workdir / "daemon.log").read_text())
            if self.socket.exists() and "SOA" in self.dig(DOMAIN, "SOA"):
                return
            time.sleep(0.1)
        raise RuntimeError("daemon did not start: " + (workdir / "daemon.log").read_text())

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "ddi", "--socket", str(self.socket), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)

    def dig(self, *args: str) -> str:
        argv = ["dig", "@127.0.0.1", "-p", str(self.port), "+tries=3", "+time=2", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False).stdout

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def daemon(tmp_path: Path, h: Any) -> Iterator[Daemon]:
    require_tools("dig", "named-checkzone")
    d = Daemon(tmp_path, h.free_port())
    try:
        yield d
    finally:
        d.stop()


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


def test_the_readme_srv_example_is_served_relative_to_the_zone(daemon: Daemon) -> None:
    _ok(daemon.cli("dns", "record", "add", "_ldap._tcp", "SRV", f"0 5 389 dc1.{DOMAIN}"))
    names = {r["name"] for r in json.loads(daemon.cli("dns", "record", "list", "--json").stdout)}
    assert names == {f"_ldap._tcp.{DOMAIN}"}
    answer = daemon.dig("+short", f"_ldap._tcp.{DOMAIN}", "SRV").strip()
    assert answer == f"0 5 389 dc1.{DOMAIN}."
    # A trailing dot makes a name absolute, as in a zone file: outside the zone, refused or
    # not, it is never stored under the site domain.
    absolute = daemon.cli("dns", "record", "add", "_ldap._tcp.other.example.", "TXT", "x")
    names = {r["name"] for r in json.loads(daemon.cli("dns", "record", "list", "--json").stdout)}
    assert absolute.returncode != 0 or "_ldap._tcp.other.example" in names
    assert f"_ldap._tcp.other.example.{DOMAIN}" not in names


def test_a_cname_at_the_apex_or_beside_other_data_is_refused(daemon: Daemon) -> None:
    apex = daemon.cli("dns", "record", "add", "@", "CNAME", f"web1.{DOMAIN}")
    assert apex.returncode == 1, apex.stderr
    assert "apex" in apex.stderr
    _ok(daemon.cli("dns", "record", "add", "www", "TXT", "hello"))
    beside = daemon.cli("dns", "record", "add", "www", "CNAME", f"web1.{DOMAIN}")
    assert beside.returncode == 1, beside.stderr
    assert f"record www.{DOMAIN} TXT" in beside.stderr
    assert "NXDOMAIN" not in daemon.dig(f"www.{DOMAIN}", "TXT")
    assert daemon.dig("+short", DOMAIN, "CNAME").strip() == ""


def test_the_name_server_name_is_owned_like_a_reservation(daemon: Daemon) -> None:
    host = daemon.cli(
        "reserve", "add", "--mac", "52:54:00:00:00:30", "--ip", "198.18.0.30", "--hostname", "ns"
    )
    assert host.returncode == 1, host.stderr
    assert f"the name server ns.{DOMAIN} (dns.ns_name)" in host.stderr
    record = daemon.cli("dns", "record", "add", "ns", "A", "198.18.0.31")
    assert record.returncode == 1, record.stderr
    # The one A at the server's name is its own; the lease named "ns" got none.
    assert daemon.dig("+short", f"ns.{DOMAIN}", "A").strip() == "198.18.0.53"
    assert daemon.dig("+short", "-x", "198.18.0.121").strip() == ""
    assert daemon.dig("+short", f"laptop.{DOMAIN}", "A").strip() == "198.18.0.120"


def test_every_transferred_zone_passes_named_checkzone(daemon: Daemon, tmp_path: Path) -> None:
    _ok(daemon.cli("reserve", "add", "--mac", "52:54:00:00:00:10", "--ip", "198.18.0.10",
                   "--hostname", "web1"))  # fmt: skip
    _ok(daemon.cli("reserve", "add", "--client-id", "0152540000000b", "--ip", "198.18.0.11",
                   "--hostname", "db1"))  # fmt: skip
    for args in (
        ("www", "CNAME", f"web1.{DOMAIN}"),
        ("@", "MX", f"10 mail.{DOMAIN}"),
        ("mail", "A", "198.18.0.25"),
        ("_ldap._tcp", "SRV", f"0 5 389 db1.{DOMAIN}"),
        ("@", "TXT", "v=spf1 -all"),
        ("ipv6", "AAAA", "2001:db8::1"),
    ):
        _ok(daemon.cli("dns", "record", "add", *args))
    zones = [z["zone"] for z in json.loads(daemon.cli("dns", "zones", "--json").stdout)["zones"]]
    assert DOMAIN in zones
    assert "0.18.198.in-addr.arpa" in zones
    for zone in zones:
        text = daemon.dig("+nocmd", "+nostats", "+nocomments", zone, "AXFR")
        assert "SOA" in text, text
        path = tmp_path / f"{zone}.zone"
        path.write_text(text)
        check = subprocess.run(
            ["named-checkzone", "-i", "full", "-k", "fail", "-n", "fail", "-M", "fail",
             "-S", "fail", zone, str(path)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert check.returncode == 0, f"{zone}:\n{check.stdout}\n{check.stderr}\n{text}"
        assert "OK" in check.stdout
