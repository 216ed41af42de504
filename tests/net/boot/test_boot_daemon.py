"""``ddi serve`` with the boot servers on loopback high ports: ``ddi boot profiles`` and
``ddi boot explain`` through the admin API, a TFTP fetch and a per-host script over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import require_tool

ROOT = Path(__file__).resolve().parents[3]
MAC = "52:54:00:00:00:07"

CONFIG = """\
[site]
id = "boottest"
domain = "site.example"
data_dir = "data"

[api]
socket = "ddi.sock"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
boot = "rack"

[dhcp]
enabled = false

[dns]
enabled = false

[boot]
root = "root"
tftp_listen = "127.0.0.1"
tftp_port = {tftp_port}
http_listen = "127.0.0.1"
http_port = {http_port}

[boot.profiles.rack]
bios = "undionly.kpxe"
efi_x86_64 = "ipxe.efi"
efi_bc = "ipxe.efi"
http_x86_64 = "x64/ipxe.efi"

[boot.profiles.other]
bios = "other.kpxe"
next_server = "198.18.0.9"
"""


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Daemon:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tftp_port = free_port(socket.SOCK_DGRAM)
        self.http_port = free_port(socket.SOCK_STREAM)
        (workdir / "root").mkdir()
        (workdir / "root" / "ipxe.efi").write_bytes(os.urandom(300_000))
        self.config = workdir / "site.toml"
        self.config.write_text(CONFIG.format(tftp_port=self.tftp_port, http_port=self.http_port))
        self.socket = workdir / "ddi.sock"
        self.log = workdir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ddi", "serve", "--config", str(self.config)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(self.log.read_text())
            if self.socket.exists() and self.cli("status").returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("daemon did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ddi", "--socket", str(self.socket), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("bootd"))
    d.start()
    reserve = d.cli(
        "reserve", "add", "--mac", MAC, "--ip", "198.18.0.10", "--hostname", "node1",
        "--boot", "other", "--reason", "test",
    )  # fmt: skip
    assert reserve.returncode == 0, reserve.stderr + reserve.stdout
    try:
        yield d
    finally:
        d.stop()


def explain(d: Daemon, *args: str) -> dict[str, object]:
    done = d.cli("boot", "explain", *args, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_profiles_lists_files_and_users(daemon: Daemon) -> None:
    done = daemon.cli("boot", "profiles", "--json")
    assert done.returncode == 0, done.stderr
    profiles = {p["name"]: p for p in json.loads(done.stdout)}
    assert profiles["rack"]["files"] == {
        "bios": "undionly.kpxe", "efi_bc": "ipxe.efi", "efi_x86_64": "ipxe.efi",
        "http_x86_64": "x64/ipxe.efi",
    }  # fmt: skip
    assert profiles["rack"]["subnets"] == ["lan"]
    assert profiles["other"]["hosts"] == 1
    table = daemon.cli("boot", "profiles")
    assert table.stdout.splitlines()[0].split()[:2] == ["NAME", "FILES"]


def test_explain_unreserved_uefi_client_uses_subnet_profile(daemon: Daemon) -> None:
    result = explain(daemon, "--mac", "52:54:00:aa:00:01", "--arch", "7", "--subnet", "lan")
    assert result["rule"] == "arch-file"
    assert (result["profile"], result["profile_source"]) == ("rack", "subnet")
    assert result["file"] == "ipxe.efi"
    # no dhcp.server_id and no interface on the subnet: the engine's own address, unknown here
    assert [o["code"] for o in result["options"]] == [43, 60, 66, 67]  # type: ignore[union-attr]
    assert result["siaddr"] == "{server}"


def test_explain_reserved_host_profile_and_ipxe(daemon: Daemon) -> None:
    result = explain(daemon, "--mac", MAC, "--arch", "0")
    assert (result["rule"], result["profile"], result["profile_source"]) == (
        "arch-file", "other", "host",
    )  # fmt: skip
    assert result["siaddr"] == "198.18.0.9"
    assert result["file"] == "other.kpxe"
    ipxe = explain(daemon, "--mac", MAC, "--arch", "0", "--user-class", "iPXE")
    assert ipxe["rule"] == "ipxe-script"
    assert ipxe["file"] == f"http://{{server}}:{daemon.http_port}/boot/{MAC}.ipxe"


def test_explain_text_names_rule_and_options(daemon: Daemon) -> None:
    done = daemon.cli("boot", "explain", "--mac", "52:54:00:aa:00:02", "--arch", "25",
                      "--subnet", "lan")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no-file-for-arch" in done.stdout
    assert "unknown (25)" in done.stdout
    assert "options: none" in done.stdout
    http = daemon.cli("boot", "explain", "--mac", "52:54:00:aa:00:03", "--arch", "16",
                      "--subnet", "lan")  # fmt: skip
    assert " 60 vendor_class_identifier: HTTPClient" in http.stdout
    assert f"67 bootfile_name: http://{{server}}:{daemon.http_port}/x64/ipxe.efi" in http.stdout


def test_tftp_and_http_serve_from_the_daemon(daemon: Daemon, tmp_path: Path) -> None:
    curl = require_tool("curl")
    out = tmp_path / "ipxe.efi"
    done = subprocess.run(
        [curl, "-sS", "-o", str(out), f"tftp://127.0.0.1:{daemon.tftp_port}/ipxe.efi"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (daemon.workdir / "root" / "ipxe.efi").read_bytes()
    url = f"http://127.0.0.1:{daemon.http_port}/boot/{MAC}.ipxe"
    with urllib.request.urlopen(url, timeout=10) as response:
        script = response.read().decode()
    assert script.startswith("#!ipxe\n")
    assert f"node1.site.example (198.18.0.10, {MAC}) boots with profile other" in script
    status = json.loads(daemon.cli("status", "--json").stdout)
    assert status["statistics"]["tftp"]["requests"] == {"completed": 1}
    assert status["statistics"]["http_boot"]["requests"] == {"script_200": 1}
    text = metrics_text(daemon.socket)
    assert 'ddi_boot_fetches_completed_total{profile="rack",protocol="tftp"} 1.0' in text
    assert 'ddi_boot_fetches_started_total{profile="other",protocol="http"} 1.0' in text
    assert 'ddi_boot_tftp_requests_total{outcome="completed"} 1.0' in text


def metrics_text(path: Path) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()
