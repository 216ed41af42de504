"""The HTTP boot server against hostile and odd requests on loopback: what it logs for plain
fetches, numbers in Range headers, header sizes, paths, clients that vanish mid-file, and the
connection cap. Descriptors are counted in /proc/self/fd: the server runs in this process."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from ddi.boot.http import HttpBootServer, HttpBootSettings, ScriptSet
from ddi.ipam.views import IpamIndex

SMALL = bytes(range(256)) * 400
BIG = 8 * 1024 * 1024
DEADLINE = 10.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "grub").mkdir(parents=True)
    (root / "ipxe.efi").write_bytes(SMALL)
    (root / "big.img").write_bytes(os.urandom(BIG))
    (root / "grub" / "grub.cfg").write_text("set timeout=1\n")
    (tmp_path / "secret").write_text("outside the root\n")
    (root / "escape").symlink_to(tmp_path / "secret")
    (root / "up").symlink_to(tmp_path)
    return root


async def start(root: Path, **kwargs: int) -> HttpBootServer:
    settings = HttpBootSettings(
        root=root, domain="site.example", base_url=None, scripts=ScriptSet(), profiles={}
    )
    srv = HttpBootServer(
        settings, IpamIndex(subnets=[], hosts=[]), host="127.0.0.1", port=0, **kwargs
    )
    await srv.listen()
    return srv


@pytest_asyncio.fixture
async def server(root: Path) -> AsyncIterator[HttpBootServer]:
    srv = await start(root)
    try:
        yield srv
    finally:
        await srv.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` with a deadline (polled: the server runs on this loop)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one raw request with ``Connection: close``; the status, headers and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        raw = await asyncio.wait_for(reader.read(), DEADLINE)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def get(path: str, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"GET {path} HTTP/1.1\r\nHost: boot\r\nConnection: close\r\n{extra}\r\n".encode()


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


# --- every file fetch logged an "Unhandled exception" -------------------------------------------


@pytest.mark.asyncio
async def test_file_fetches_and_refusals_log_no_errors(
    server: HttpBootServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The handler prepared its FileResponse and returned it; aiohttp prepared it again, opening
    the file a second time and logging an AssertionError traceback for every fetch."""
    caplog.set_level(logging.DEBUG)
    status, _, body = await exchange(server.port, get("/ipxe.efi"))
    assert (status, body) == (200, SMALL)
    status, headers, body = await exchange(server.port, get("/ipxe.efi", "Range: bytes=10-19"))
    assert (status, body) == (206, SMALL[10:20])
    assert headers["Content-Range"] == f"bytes 10-19/{len(SMALL)}"
    status, _, _ = await exchange(server.port, get("/ipxe.efi", "Range: bytes=20-10"))
    assert status == 416
    status, _, _ = await exchange(server.port, get("/missing"))
    assert status == 404
    assert errors(caplog) == []
    assert server.statistics()["requests"] == {
        "file_200": 1,
        "file_206": 1,
        "file_404": 1,
        "file_416": 1,
    }


# --- numbers parsed from the request -------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "value",
    [
        "bytes=" + "9" * 5000 + "-",
        "bytes=0-" + "9" * 5000,
        "bytes=-" + "9" * 21,
        "bytes=٣-",
        "bytes=1-2,4-5",
        "bytes=-",
        "items=0-1",
    ],
)
async def test_range_that_is_not_one_short_byte_range_is_416(
    server: HttpBootServer, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, headers, body = await exchange(server.port, get("/ipxe.efi", f"Range: {value}"))
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{len(SMALL)}"
    assert SMALL[:100] not in body
    assert errors(caplog) == []


@pytest.mark.asyncio
async def test_range_past_the_end_is_clamped_and_suffix_ranges_work(server: HttpBootServer) -> None:
    status, _, body = await exchange(server.port, get("/ipxe.efi", "Range: bytes=100-" + "9" * 20))
    assert (status, body) == (206, SMALL[100:])
    status, _, body = await exchange(server.port, get("/ipxe.efi", "Range: bytes=-10"))
    assert (status, body) == (206, SMALL[-10:])


# --- header sizes --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_oversized_headers_are_refused_and_the_server_keeps_serving(
    server: HttpBootServer,
) -> None:
    status, _, _ = await exchange(server.port, get("/ipxe.efi", "X-Long: " + "a" * 9000))
    assert status in (400, 431)
    many = [f"X-{i}: y" for i in range(40)]
    status, _, _ = await exchange(server.port, get("/ipxe.efi", *many))
    assert status in (400, 431)
    status, _, _ = await exchange(server.port, get("/" + "a" * 9000))
    assert status in (400, 414)
    status, _, body = await exchange(server.port, get("/ipxe.efi", *many[:20]))
    assert (status, body) == (200, SMALL)


# --- paths ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("//ipxe.efi", 200),
        ("/grub/grub.cfg", 200),
        ("//grub/grub.cfg", 200),
        ("/escape", 403),
        ("//escape", 403),
        ("/up/secret", 403),
        ("/%2e%2e/secret", 403),
        ("/grub/%2e%2e/%2e%2e/secret", 403),
        ("/ipxe.efi%00", 403),
        ("/" + "a" * 300, 404),
        ("/" + "a/" * 1000, 404),
        ("/grub", 404),
    ],
)
async def test_paths(server: HttpBootServer, path: str, status: int) -> None:
    got, _, body = await exchange(server.port, get(path))
    assert got == status, path
    assert b"outside the root" not in body


# --- resources -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_clients_that_vanish_mid_file_release_everything(
    server: HttpBootServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = open_fds()
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/big.img"))
        await reader.readexactly(1000)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()  # a reset, with most of the file unsent
    await until(lambda: server.statistics()["connections"] == 0, "the connections to close")
    await until(lambda: open_fds() <= before, "the descriptors to be released")
    assert errors(caplog) == []
    status, _, body = await exchange(server.port, get("/ipxe.efi"))
    assert (status, body) == (200, SMALL)


@pytest.mark.asyncio
async def test_connections_beyond_the_cap_get_503_and_the_slot_comes_back(root: Path) -> None:
    srv = await start(root, max_connections=3)
    idle: list[asyncio.StreamWriter] = []
    try:
        for n in range(1, 4):
            _, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"GET /ipxe.efi HTTP/1.1\r\n")  # and nothing more
            idle.append(writer)
            await until(lambda n=n: srv.statistics()["connections"] == n, "the connection")
        status, headers, _ = await exchange(srv.port, get("/ipxe.efi"))
        assert status == 503
        assert headers["Connection"] == "close"
        idle.pop().close()
        await until(lambda: srv.statistics()["connections"] == 2, "a slot to free")
        status, _, body = await exchange(srv.port, get("/ipxe.efi"))
        assert (status, body) == (200, SMALL)
    finally:
        for writer in idle:
            writer.close()
        await srv.close()
    assert srv.statistics()["requests"]["connection_503"] == 1
