"""The DHCPv6 transport on loopback: a real Store, IpamIndex and sockets, in-process.

The test client is a UDP socket on [::1] that sends SOLICITs (each from its own DUID unless a
test says otherwise) to the server's port on ``lo``; an ADVERTISE goes back to the client's
own source port, so no privileged port and no multicast are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from ipaddress import IPv6Network
from pathlib import Path
from typing import Any

import pytest

from ddi.config import Config, parse_config
from ddi.dhcp.admission import BUSY_QUEUE, BUSY_WAIT
from ddi.dhcp6 import server as dhcp6_server
from ddi.dhcp6.options import MessageType, OptionCode
from ddi.dhcp6.packet import Message, decode_message
from ddi.ipam.models6 import Lease6, Lease6Kind
from ddi.ipam.store import Store
from ddi.site import Site, open_site
from tests.serving import slowed, started


def free_udp6_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


def make_config(tmp_path: Path, port: int, **dhcp6: Any) -> Config:
    data = {
        "site": {"id": "s1", "domain": "site.example", "data_dir": str(tmp_path)},
        "api": {"socket": str(tmp_path / "api.sock")},
        "subnets6": [
            {
                "name": "lo6",
                "cidr": "2001:db8:60::/64",
                "interface": "lo",
                "pools": [{"start": "2001:db8:60::1000", "end": "2001:db8:60::1fff"}],
            }
        ],
        "dhcp6": {"enabled": True, "port": port, "interfaces": ["lo"], **dhcp6},
    }
    return parse_config(data, path=tmp_path / "ddi.toml")


@dataclass
class Running:
    site: Site
    store: Store
    server: dhcp6_server.Dhcp6Server
    port: int


@contextlib.asynccontextmanager
async def running(cfg: Config) -> AsyncIterator[Running]:
    async with open_site(cfg) as site:
        server = dhcp6_server.service(site)
        async with started(server):
            if not server.statistics()["interfaces"]:
                raise RuntimeError("dhcp6 service did not start")
            yield Running(site=site, store=site.store, server=server, port=cfg.dhcp6.port)


def duid(n: int) -> bytes:
    return struct.pack("!HH", 3, 1) + bytes.fromhex("0200") + n.to_bytes(4, "big")


def solicit(n: int, xid: int) -> bytes:
    options = struct.pack("!HH", OptionCode.CLIENTID, 10) + duid(n)
    options += struct.pack("!HHIII", OptionCode.IA_NA, 12, 1, 0, 0)
    return bytes((MessageType.SOLICIT,)) + xid.to_bytes(3, "big") + options


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.bind(("::1", 0))
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("::1", self.port))

    async def replies(self, quiet: float = 0.5) -> list[Message]:
        """Every reply until none comes for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        got: list[Message] = []
        with contextlib.suppress(TimeoutError):
            while True:
                async with asyncio.timeout(quiet):
                    data = await loop.sock_recv(self.sock, 4096)
                message = decode_message(data)
                assert isinstance(message, Message)
                got.append(message)
        return got


@pytest.fixture
def port() -> int:
    return free_udp6_port()


@pytest.mark.asyncio
async def test_a_storm_the_server_clears_is_answered_whole(tmp_path: Path, port: int) -> None:
    # A link limit of almost nothing: it must not apply while the server keeps up, even with
    # twice BUSY_QUEUE read at once (none of them waits BUSY_WAIT).
    async with running(make_config(tmp_path, port, link_rate=0.001, link_burst=1)) as r:
        client = Client(port)
        try:
            for n in range(2 * BUSY_QUEUE):
                client.send(solicit(n, n))
            replies = await client.replies()
            assert sorted(m.transaction_id for m in replies) == list(range(2 * BUSY_QUEUE))
            assert {m.msg_type for m in replies} == {MessageType.ADVERTISE}
            assert "rate-limited-link" not in r.server.statistics()["dropped"]
        finally:
            client.close()


@pytest.mark.asyncio
async def test_once_backlogged_new_clients_share_the_link_rate_and_known_ones_go_first(
    tmp_path: Path, port: int
) -> None:
    cfg = make_config(tmp_path, port, link_rate=0.001, link_burst=5, queue_size=10_000)
    wave, late = 120, 20
    async with running(cfg) as r:
        now = time.time()
        known = Lease6(kind=Lease6Kind.NA, prefix=IPv6Network("2001:db8:60::1234/128"),
                       duid=duid(9999).hex(":"), iaid=1, start=now, end=now + 3600,
                       preferred_end=now + 1800, subnet="lo6")  # fmt: skip
        await r.store.commit_leases6([known])
        slowed(r.server, 0.01)  # 1.2 s for the wave: it is still waiting when the rest comes
        client = Client(port)
        try:
            for n in range(wave):  # taken in one read: none has waited yet, none is refused
                client.send(solicit(n, n))
            await asyncio.sleep(2 * BUSY_WAIT)
            for n in range(late):  # the wave has waited past BUSY_WAIT: backlogged
                client.send(solicit(1000 + n, 1000 + n))
            client.send(solicit(9999, 0xABCDE))
            replies = await client.replies(quiet=1.0)
            xids = [m.transaction_id for m in replies]
            # The bound client's SOLICIT went ahead of the wave's messages still waiting, and
            # it got its own address back.
            assert any(x < wave for x in xids[xids.index(0xABCDE) :])
            ia = replies[xids.index(0xABCDE)].option(OptionCode.IA_NA)
            assert ia is not None
            assert known.prefix.network_address.packed in ia
            # The whole wave was answered; of the late new clients, the link's burst only.
            assert sorted(x for x in xids if x < wave) == list(range(wave))
            assert len([x for x in xids if 1000 <= x < 1000 + late]) == 5
            assert r.server.statistics()["dropped"]["rate-limited-link"] == late - 5
        finally:
            client.close()


@pytest.mark.asyncio
async def test_the_client_limit_is_per_duid_not_per_source_address(
    tmp_path: Path, port: int
) -> None:
    async with running(make_config(tmp_path, port, client_rate=0.001)) as r:
        client = Client(port)
        try:
            for xid in range(20):  # one DUID: its burst (8), then nothing
                client.send(solicit(7, xid))
            assert len(await client.replies()) == 8
            assert r.server.statistics()["dropped"]["rate-limited-client"] == 12
            for n in range(20):  # twenty DUIDs from the same address: all answered
                client.send(solicit(100 + n, n))
            assert len(await client.replies()) == 20
        finally:
            client.close()
