"""Run the DNS service in-process on loopback for socket tests (real Store and IpamIndex),
on the loop the daemon runs (uvloop): a loop method the daemon may not use fails here too.
UDP test peers use datagram transports (``loop.sock_sendto`` is one uvloop lacks)."""

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
from typing import Any, cast

import pytest

from ddi.config import Config, parse_config
from ddi.dns import server as dns_server
from ddi.ipam.store import Store
from ddi.site import Service, Site, open_site
from tests.ci import require_tools
from tests.waiting import until

__all__ = ["until"]  # the tests reach it as h.until

DOMAIN = "site.example"
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMw=="
KEY = "xfr.site.example"


class Datagrams(asyncio.DatagramProtocol):
    """A UDP endpoint for tests: what it receives is queued with its sender."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        pass

    def sendto(self, data: bytes, addr: Any = None) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    async def next(self, wait: float) -> tuple[bytes, Any] | None:
        """The next datagram within ``wait`` seconds, or None."""
        try:
            return await asyncio.wait_for(self.received.get(), wait)
        except TimeoutError:
            return None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def datagrams(**where: Any) -> Datagrams:
    """A ``Datagrams`` endpoint (``local_addr=``/``remote_addr=`` as for
    ``create_datagram_endpoint``)."""
    loop = asyncio.get_running_loop()
    _, endpoint = await loop.create_datagram_endpoint(Datagrams, **where)
    return endpoint


async def udp(address: tuple[str, int], data: bytes, wait: float = 1.0) -> bytes | None:
    """Send ``data`` to ``address`` from a fresh socket; the first reply, or None."""
    endpoint = await datagrams(remote_addr=address)
    try:
        endpoint.sendto(data)
        got = await endpoint.next(wait)
        return None if got is None else got[0]
    finally:
        endpoint.close()


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


def config(
    tmp_path: Path, port: int, *, subnets6: list[dict[str, Any]] | None = None, **dns: Any
) -> Config:
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
    if subnets6:
        data["subnets6"] = subnets6
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
