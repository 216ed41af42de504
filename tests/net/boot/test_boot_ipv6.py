"""TFTP and HTTP boot over IPv6 on loopback, dual-stack on one port, with real clients
(tftp-hpa -6, curl -g), and the per-client TFTP cap keyed on the IPv6 address."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from ipaddress import IPv4Network
from pathlib import Path

import pytest
import pytest_asyncio

from ddi.boot.http import HttpBootServer, HttpBootSettings, ScriptSet
from ddi.boot.tftp import TftpServer, TftpSettings
from ddi.boot.tftp_session import (
    Data,
    Error,
    Opcode,
    Request,
    TransferLimits,
    decode_packet,
    encode_request,
)
from ddi.errors import ConfigError
from ddi.ipam.models import Host, Subnet
from ddi.ipam.views import IpamIndex
from tests.ci import require_tool

CONTENT = os.urandom(300_000)
MAC = "52:54:00:00:00:07"


def free_port() -> int:
    """A port free for UDP and TCP on both families (bound then released)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind(("::", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def boot_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ipxe.efi").write_bytes(CONTENT)
    return root


async def run(*argv: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest_asyncio.fixture
async def tftp(boot_root: Path) -> AsyncIterator[TftpServer]:
    limits = TransferLimits(timeout=0.3, retries=3)
    settings = TftpSettings(root=boot_root, limits=limits, max_transfers_per_client=1)
    srv = TftpServer(settings, host=("127.0.0.1", "::1"), port=free_port())
    srv.listen()
    try:
        yield srv
    finally:
        await srv.close()


@pytest.mark.asyncio
async def test_tftp_hpa_and_curl_over_ipv6_and_ipv4_on_one_port(
    tftp: TftpServer, tmp_path: Path
) -> None:
    assert tftp.ports[0] == tftp.ports[1]
    port = str(tftp.port)
    client = require_tool("tftp")
    code, out = await run(client, "-6", "-m", "octet", "::1", port, "-c", "get", "ipxe.efi", "a",
                          cwd=tmp_path)  # fmt: skip
    assert code == 0, out
    assert (tmp_path / "a").read_bytes() == CONTENT
    code, out = await run(require_tool("curl"), "-sS", "-g", "-o", "b",
                          f"tftp://[::1]:{port}/ipxe.efi", cwd=tmp_path)  # fmt: skip
    assert code == 0, out
    assert (tmp_path / "b").read_bytes() == CONTENT
    code, out = await run(client, "-4", "-m", "octet", "127.0.0.1", port, "-c", "get",
                          "ipxe.efi", "c", cwd=tmp_path)  # fmt: skip
    assert code == 0, out
    assert (tmp_path / "c").read_bytes() == CONTENT
    assert tftp.statistics()["requests"] == {"completed": 3}


def _recv(sock: socket.socket) -> tuple[object, tuple[str, int, int, int]]:
    data, peer = sock.recvfrom(65536)
    return decode_packet(data), peer


@pytest.mark.asyncio
async def test_per_client_cap_is_keyed_on_the_ipv6_address(tftp: TftpServer) -> None:
    """One transfer per client: a second request from another port of ::1 is refused, and the
    first transfer comes from a new port of the IPv6 listener's address (RFC 1350 §4)."""
    rrq = encode_request(Request(opcode=Opcode.RRQ, filename="ipxe.efi", mode="octet"))
    first = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    second = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    with first, second:
        for sock in (first, second):
            sock.settimeout(5)
        first.sendto(rrq, ("::1", tftp.port))
        packet, peer = await asyncio.to_thread(_recv, first)
        assert isinstance(packet, Data)
        assert packet.block == 1
        assert peer[0] == "::1"
        assert peer[1] != tftp.port
        second.sendto(rrq, ("::1", tftp.port))
        packet, peer = await asyncio.to_thread(_recv, second)
        assert isinstance(packet, Error)
        assert packet.message == "too many transfers to this client"
        assert peer[1] == tftp.port
    assert tftp.statistics()["requests"]["client_limit"] == 1


@pytest.mark.asyncio
async def test_tftp_refuses_to_start_when_an_address_is_not_local(boot_root: Path) -> None:
    srv = TftpServer(TftpSettings(root=boot_root), host=("127.0.0.1", "2001:db8::99"), port=0)
    async with asyncio.TaskGroup() as tg:
        with pytest.raises(ConfigError, match=r"\[2001:db8::99\]:0"):
            await srv.start(tg)
    assert srv.statistics()["port"] is None  # the IPv4 socket bound first was closed
    await srv.close()


@pytest_asyncio.fixture
async def http(boot_root: Path) -> AsyncIterator[HttpBootServer]:
    index = IpamIndex(
        subnets=[Subnet(name="lo", cidr=IPv4Network("127.0.0.0/8"), boot="rack")],
        hosts=[Host(id="a" * 32, ip=None, hostname="node1", mac=MAC, boot="rack")],
    )
    settings = HttpBootSettings(
        root=boot_root,
        domain="site.example",
        base_url=None,
        scripts=ScriptSet(host={"rack": "#!ipxe\nchain {base_url}/ipxe.efi\n"}),
        profiles={"ipxe.efi": "rack"},
    )
    srv = HttpBootServer(settings, index, host=["::1", "127.0.0.1"], port=free_port())
    await srv.listen()
    try:
        yield srv
    finally:
        await srv.close()


@pytest.mark.asyncio
async def test_http_boot_over_ipv6_with_curl(http: HttpBootServer, tmp_path: Path) -> None:
    assert http.ports[0] == http.ports[1]
    curl = require_tool("curl")
    base = f"http://[::1]:{http.port}"
    code, out = await run(curl, "-sS", "-g", "-o", "f", f"{base}/ipxe.efi", cwd=tmp_path)
    assert code == 0, out
    assert (tmp_path / "f").read_bytes() == CONTENT
    code, out = await run(curl, "-sS", "-g", f"{base}/boot/{MAC}.ipxe", cwd=tmp_path)
    assert code == 0, out
    assert out == f"#!ipxe\nchain {base}/ipxe.efi\n"  # the base URL a v6 client reached
    code, out = await run(curl, "-sS", "-o", "g", f"http://127.0.0.1:{http.port}/ipxe.efi",
                          cwd=tmp_path)  # fmt: skip
    assert code == 0, out
    assert http.statistics()["requests"] == {"file_200": 2, "script_200": 1}
