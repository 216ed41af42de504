"""`ddi dns …` and `ddi reserve add` against a real `python -m ddi serve`, checked with dig."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CONFIG = """\
[site]
id = "dnstest"
domain = "site.example"
data_dir = "data"

[api]
socket = "ddi.sock"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"

[dhcp]
enabled = false

[dns]
listen = ["127.0.0.1:{port}"]
"""


class Daemon:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.socket = workdir / "ddi.sock"
        (workdir / "site.toml").write_text(CONFIG.format(port=port))
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
            if self.socket.exists() and "SOA" in self.dig("site.example", "SOA"):
                return
            time.sleep(0.1)
        raise RuntimeError("daemon did not start: " + (workdir / "daemon.log").read_text())

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "ddi", "--socket", str(self.socket), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)

    def dig(self, *args: str) -> str:
        argv = ["dig", "@127.0.0.1", "-p", str(self.port), "+tries=3", "+time=2", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout

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
    h.need("dig")
    d = Daemon(tmp_path, h.free_port())
    try:
        yield d
    finally:
        d.stop()


def test_reservation_added_with_the_cli_resolves_at_once(daemon: Daemon) -> None:
    done = daemon.cli(
        "reserve", "add", "--mac", "52:54:00:00:00:01", "--ip", "198.18.0.10", "--hostname", "web"
    )
    assert done.returncode == 0, done.stderr
    assert daemon.dig("+short", "web.site.example", "A").strip() == "198.18.0.10"
    assert daemon.dig("+short", "-x", "198.18.0.10").strip() == "web.site.example."


def test_dns_record_add_list_rm_and_zones(daemon: Daemon) -> None:
    before = json.loads(daemon.cli("dns", "zones", "--json").stdout)
    serial = {z["zone"]: z["serial"] for z in before["zones"]}["site.example"]
    dry = daemon.cli("dns", "record", "add", "mail", "A", "198.18.0.25", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout
    assert daemon.dig("+short", "mail.site.example").strip() == ""
    done = daemon.cli("dns", "record", "add", "mail", "A", "198.18.0.25", "--ttl", "60")
    assert done.returncode == 0, done.stderr
    assert daemon.dig("+short", "mail.site.example").strip() == "198.18.0.25"
    mx = daemon.cli("dns", "record", "add", "@", "MX", "10 mail.site.example", "--reason", "mail")
    assert mx.returncode == 0, mx.stderr
    assert daemon.dig("+short", "site.example", "MX").strip() == "10 mail.site.example."
    records = json.loads(daemon.cli("dns", "record", "list", "--json").stdout)
    assert {(r["name"], r["rtype"]) for r in records} == {
        ("mail.site.example", "A"),
        ("site.example", "MX"),
    }
    table = daemon.cli("dns", "record", "list").stdout
    assert "mail.site.example" in table
    after = json.loads(daemon.cli("dns", "zones", "--json").stdout)
    assert {z["zone"]: z["serial"] for z in after["zones"]}["site.example"] > serial
    assert "0.18.198.in-addr.arpa" in daemon.cli("dns", "zones").stdout
    rid = next(r["id"] for r in records if r["rtype"] == "A")
    gone = daemon.cli("dns", "record", "rm", rid)
    assert gone.returncode == 0, gone.stderr
    assert "NXDOMAIN" in daemon.dig("mail.site.example")
    missing = daemon.cli("dns", "record", "rm", rid)
    assert missing.returncode == 1
    bad = daemon.cli("dns", "record", "add", "x", "A", "not-an-ip")
    assert bad.returncode == 1  # an argument's value: refused (a flag's would exit 2)
    assert "not-an-ip" in bad.stderr
