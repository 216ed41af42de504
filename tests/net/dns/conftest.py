"""Run the DNS service in-process on loopback for socket tests (real Store and IpamIndex)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import types
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ddi.config import Config, parse_config
from ddi.dns import server as dns_server
from ddi.ipam.store import Store
from ddi.site import Service, Site, open_site
from tests.ci import require_tools

DOMAIN = "site.example"
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMw=="
KEY = "xfr.site.example"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def need(*tools: str) -> None:
    require_tools(*tools)


def config(tmp_path: Path, port: int, **dns: Any) -> Config:
    table: dict[str, Any] = {
        "listen": [f"127.0.0.1:{port}"],
        "tsig": {KEY: {"algorithm": "hmac-sha256", "secret": SECRET}},
    }
    table.update(dns)
    data = {
        "site": {"id": "s1", "domain": DOMAIN, "data_dir": str(tmp_path)},
        "api": {"socket": str(tmp_path / "api.sock")},
        "subnets": [
            {
                "name": "lan",
                "cidr": "198.18.0.0/24",
                "pools": [{"start": "198.18.0.100", "end": "198.18.0.199"}],
            },
            {"name": "lab", "cidr": "198.19.0.0/23"},
        ],
        "dns": table,
    }
    return parse_config(data, path=tmp_path / "ddi.toml")


@dataclass
class Running:
    site: Site
    store: Store
    port: int
    server: dns_server.DnsServer

    def dig(self, *args: str, timeout: float = 10.0) -> str:
        argv = ["dig", "@127.0.0.1", "-p", str(self.port), "+tries=1", "+time=3", *args]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False
        ).stdout


def as_service(server: dns_server.DnsServer) -> Service:
    """The DNS server is a ``Service`` (checked by mypy)."""
    return server


@contextlib.asynccontextmanager
async def running(cfg: Config, port: int) -> AsyncIterator[Running]:
    async with open_site(cfg, actor="test") as site, asyncio.TaskGroup() as tg:
        server = dns_server.service(site)
        assert as_service(server).name == "dns"
        try:
            await server.start(tg)
            assert server.statistics()["listen"]
            yield Running(site=site, store=site.store, port=port, server=server)
        finally:
            await server.close()


async def dig(r: Running, *args: str) -> str:
    return await asyncio.to_thread(r.dig, *args)


@pytest.fixture
def h() -> types.ModuleType:
    """This module's helpers (test modules cannot import a conftest by name)."""
    return sys.modules[__name__]
