"""Measure reservations per second into a running ``ddi serve`` through the admin API: one
bulk import (``POST /v1/import``, what ``ddi import`` sends) against one ``POST /v1/hosts``
each, side by side in one run.

Not a test (pytest does not collect it). Run from the repository root:

    .venv/bin/python -m bench.import_bulk [--hosts 50000] [--single 500]

The daemon runs on a temporary socket and data directory with DHCP and DNS off, serving
198.18.0.0/15; each reservation has its own MAC, address and name. The figure for one call each
is taken on ``--single`` reservations after the bulk ones are in (the checks then run over a
full store, as they would on a site).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

CONFIG = """\
[site]
id = "bench"
domain = "site.example"
data_dir = "data"

[api]
socket = "ddi.sock"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/15"
gateway = "198.18.0.1"

[dhcp]
enabled = false

[dns]
enabled = false
"""
BASE = int(IPv4Address("198.18.1.0"))


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=600)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(self._path))


def _post(sock: Path, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    conn = _Unix(sock)
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _host(i: int) -> dict[str, Any]:
    mac = (0x525400000000 + i).to_bytes(6, "big").hex(":")
    return {"ip": str(IPv4Address(BASE + i)), "hostname": f"h{i}", "mac": mac}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50_000)
    parser.add_argument("--single", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "site.toml").write_text(CONFIG)
        sock = work / "ddi.sock"
        daemon = subprocess.Popen(
            [sys.executable, "-m", "ddi", "serve", "--config", str(work / "site.toml"),
             "--log-level", "warning"],
            cwd=work,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not sock.exists():
                if time.monotonic() > deadline or daemon.poll() is not None:
                    print("ddi serve did not start", file=sys.stderr)
                    return 1
                time.sleep(0.05)
            items = [{"source": f"bench:{i}", **_host(i)} for i in range(args.hosts)]
            started = time.perf_counter()
            status, answer = _post(sock, "/v1/import", {"hosts": items, "reason": "bench"})
            bulk = time.perf_counter() - started
            if status != 200 or len(answer["added"]) != args.hosts:
                print(f"bulk import failed: {status} {str(answer)[:300]}", file=sys.stderr)
                return 1
            started = time.perf_counter()
            for i in range(args.hosts, args.hosts + args.single):
                status, answer = _post(sock, "/v1/hosts", _host(i))
                if status != 201:
                    print(f"single add failed: {status} {answer}", file=sys.stderr)
                    return 1
            single = time.perf_counter() - started
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    print(f"bulk:   {args.hosts} reservations in {bulk:.2f} s: {args.hosts / bulk:,.0f}/s")
    print(f"single: {args.single} reservations in {single:.2f} s: {args.single / single:,.0f}/s")
    print(f"ratio:  {(args.hosts / bulk) / (args.single / single):.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
