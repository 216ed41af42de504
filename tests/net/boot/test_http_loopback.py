"""The HTTP boot server on loopback: files with Range (curl), per-host iPXE scripts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import pytest_asyncio

from ddi.boot.http import HttpBootServer, HttpBootSettings, ScriptSet
from ddi.ipam.models import Host, Subnet
from ddi.ipam.views import IpamIndex
from tests.ci import require_tool

MAC = "52:54:00:00:00:07"

HOST_TEMPLATE = """#!ipxe
# ${net0/mac} is expanded by iPXE
kernel {base_url}/{profile}/vmlinuz hostname={hostname} fqdn={fqdn} ip={ip}
boot
"""
UNKNOWN_TEMPLATE = "#!ipxe\necho unknown {mac} on {ip} ({profile})\nshell\n"


def curl() -> str:
    return require_tool("curl")


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[HttpBootServer]:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ipxe.efi").write_bytes(bytes(range(256)) * 400)
    (tmp_path / "secret").write_text("no")
    (root / "escape").symlink_to(tmp_path / "secret")
    index = IpamIndex(
        subnets=[Subnet(name="lo", cidr=IPv4Network("127.0.0.0/8"), boot="rack")],
        hosts=[
            Host(id="a" * 32, ip=IPv4Address("127.0.0.10"), hostname="node1", mac=MAC),
            Host(
                id="b" * 32,
                ip=IPv4Address("127.0.0.11"),
                hostname="node2",
                mac="52:54:00:00:00:08",
                boot="other",
            ),
        ],
    )
    settings = HttpBootSettings(
        root=root,
        domain="site.example",
        base_url=None,
        scripts=ScriptSet(
            host={"rack": HOST_TEMPLATE, "other": "#!ipxe\nexit\n"},
            unknown={"rack": UNKNOWN_TEMPLATE},
        ),
        profiles={"ipxe.efi": "rack"},
    )
    srv = HttpBootServer(settings, index, host="127.0.0.1", port=0)
    await srv.listen()
    try:
        yield srv
    finally:
        await srv.close()


async def fetch(*args: str) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        curl(), "-sS", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out, err


@pytest.mark.asyncio
async def test_range_request_returns_the_slice(server: HttpBootServer) -> None:
    url = f"http://127.0.0.1:{server.port}/ipxe.efi"
    code, body, err = await fetch("-r", "1000-1999", "-D", "-", "-o", "/dev/null", url)
    assert code == 0, err
    assert b"206 Partial Content" in body
    assert b"Content-Range: bytes 1000-1999/102400" in body
    code, body, _ = await fetch("-r", "1000-1999", url)
    assert body == (bytes(range(256)) * 400)[1000:2000]
    code, body, _ = await fetch(url)
    assert body == bytes(range(256)) * 400
    assert server.statistics()["requests"] == {"file_200": 1, "file_206": 2}


@pytest.mark.asyncio
async def test_reserved_host_script_renders_its_values(server: HttpBootServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    code, body, err = await fetch("-f", f"{base}/boot/52-54-00-00-00-07.ipxe")
    assert code == 0, err
    assert body.decode() == (
        "#!ipxe\n# ${net0/mac} is expanded by iPXE\n"
        f"kernel {base}/rack/vmlinuz hostname=node1 fqdn=node1.site.example ip=127.0.0.10\nboot\n"
    )
    _, body, _ = await fetch("-f", f"{base}/boot/52:54:00:00:00:08.ipxe")
    assert body == b"#!ipxe\nexit\n"


@pytest.mark.asyncio
async def test_unknown_mac_gets_the_subnet_profiles_default_script(server: HttpBootServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    code, body, err = await fetch("-f", f"{base}/boot/52:54:00:aa:bb:cc.ipxe")
    assert code == 0, err
    assert body == b"#!ipxe\necho unknown 52:54:00:aa:bb:cc on 127.0.0.1 (rack)\nshell\n"


@pytest.mark.asyncio
async def test_unknown_mac_without_default_script_is_404(server: HttpBootServer) -> None:
    server.settings.scripts = ScriptSet(host=server.settings.scripts.host)
    base = f"http://127.0.0.1:{server.port}"
    _, out, _ = await fetch(
        "-o", "/dev/null", "-w", "%{http_code}", f"{base}/boot/02:00:00:00:00:01.ipxe"
    )
    assert out == b"404"
    _, out, _ = await fetch("-o", "/dev/null", "-w", "%{http_code}", f"{base}/boot/nonsense.ipxe")
    assert out == b"404"


@pytest.mark.asyncio
async def test_paths_outside_the_root_are_refused(server: HttpBootServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    for path, status in (("/escape", b"403"), ("/../secret", b"403"), ("/missing", b"404"),
                         ("/%2e%2e/secret", b"403")):  # fmt: skip
        _, out, _ = await fetch(
            "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", base + path
        )
        assert out == status, path
