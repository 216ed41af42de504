"""HTTP boot: one request to the running ``HttpBootServer`` (the ``/boot/{mac}.ipxe`` scripts
and the files under the boot root), over a kept-alive loopback connection on the daemon's own
event loop (uvloop).

aiohttp's mocked requests cost milliseconds each, and the handlers' only pure parts
(``render_script``, ``files.safe_path``) would leave out the routing and the URL decoding in
front of them, so the server runs for real: an input is the request target, then (after the
first newline) header lines, sent as ``GET <target> HTTP/1.1``. Header lines that would make
the server wait for a body or change the connection are left out.

Outcomes: any HTTP response but a 500. A 500 is a handler's exception: the one aiohttp logged
is raised again, so the crash is keyed by where it happened. No response within ``TIMEOUT``
seconds is a crash too (a request must never hang the server).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shutil
import tempfile
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import uvloop

from ddi.boot.http import DEFAULT_SCRIPT, HttpBootServer, HttpBootSettings, ScriptSet
from ddi.ipam.models import Host, Lease, LeaseState, Subnet
from ddi.ipam.views import IpamIndex
from fuzz.core import Target, Unexpected

TIMEOUT = 10.0
NOW = 1_800_000_000.0
_SKIPPED_HEADERS = frozenset(
    {b"content-length", b"transfer-encoding", b"expect", b"upgrade", b"connection"}
)


class _Capture(logging.Handler):
    """Keeps the exceptions aiohttp logs while answering 500."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


class _Server:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fuzz-http-"))
        atexit.register(shutil.rmtree, self.root, True)
        (self.root / "grub").mkdir()
        (self.root / "grub" / "grub.cfg").write_bytes(b"set timeout=1\n")
        (self.root / "ipxe.efi").write_bytes(bytes(range(256)) * 16)
        (self.root / "pxe.ipxe").write_bytes(b"#!ipxe\nchain ipxe.efi\n")
        os.symlink("/etc/hostname", self.root / "escape")
        subnet = Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"), boot="pxe")
        index = IpamIndex(
            subnets=[subnet],
            hosts=[
                Host(
                    id="h-web",
                    ip=IPv4Address("198.18.0.10"),
                    hostname="web",
                    mac="52:54:00:00:00:01",
                    boot="pxe",
                )
            ],
            leases=[
                Lease(
                    ip=IPv4Address("198.18.0.100"),
                    mac="52:54:00:00:00:02",
                    state=LeaseState.BOUND,
                    start=NOW - 60,
                    end=NOW + 3600,
                    subnet="lan",
                )
            ],
            records=[],
            domain="site.example",
        )
        settings = HttpBootSettings(
            root=self.root,
            domain="site.example",
            base_url=None,
            scripts=ScriptSet(
                host={"pxe": DEFAULT_SCRIPT},
                unknown={"pxe": "#!ipxe\necho {mac} {ip} {server} {base_url}\n"},
            ),
            profiles={"ipxe.efi": "pxe"},
        )
        self.server = HttpBootServer(settings, index, host="127.0.0.1", port=0)
        self.loop = uvloop.new_event_loop()
        self.loop.run_until_complete(self.server.listen())
        self.capture = _Capture()
        for name in ("aiohttp.server", "aiohttp.web", "aiohttp.access"):
            logging.getLogger(name).addHandler(self.capture)
        logging.getLogger("ddi.boot.http").setLevel(logging.WARNING)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        atexit.register(self.close)

    def close(self) -> None:
        self.loop.run_until_complete(self._close())
        self.loop.run_until_complete(self.server.close())
        self.loop.close()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.reader.at_eof():
            await self._close()
            assert self.server.port is not None
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        return self.reader, self.writer

    async def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def exchange(self, raw: bytes) -> int:
        """Send one request; the response's status, its body read and discarded (framed as
        RFC 9112 §6.3 says: none for 1xx/204/304, chunked, Content-Length, or to the close)."""
        reader, writer = await self._connection()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        close = chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value.endswith(b"chunked")
            elif name == b"connection" and value == b"close":
                close = True
        if status < 200 or status in (204, 304):
            pass
        elif chunked:
            await _read_chunked(reader)
        elif length is not None:
            await reader.readexactly(length)
        else:
            await reader.read()
            close = True
        if close:
            await self._close()
        return status

    def request(self, raw: bytes) -> int:
        try:
            return self.loop.run_until_complete(asyncio.wait_for(self.exchange(raw), TIMEOUT))
        except TimeoutError:
            self.loop.run_until_complete(self._close())
            raise Unexpected(f"no response in {TIMEOUT} s") from None
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed the connection without an answer (aiohttp does so for a
            # request head it cannot parse, after a 400 on some paths).
            self.loop.run_until_complete(self._close())
            return 0


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    """Read a chunked body (RFC 9112 §7.1) to its last chunk and trailer section."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            break
        await reader.readexactly(size + 2)
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass


_server: _Server | None = None


def request_bytes(data: bytes) -> bytes:
    target, _, rest = data.partition(b"\n")
    headers = [b"Host: boot.site.example"]
    for line in rest.split(b"\n"):
        line = line.rstrip(b"\r")
        name = line.partition(b":")[0].strip().lower()
        if line and name not in _SKIPPED_HEADERS:
            headers.append(line)
    return b"GET " + target.rstrip(b"\r") + b" HTTP/1.1\r\n" + b"\r\n".join(headers) + b"\r\n\r\n"


def check(data: bytes) -> str:
    global _server
    if _server is None:
        _server = _Server()
    _server.capture.errors.clear()
    status = _server.request(request_bytes(data))
    if status == 500:
        if _server.capture.errors:
            raise _server.capture.errors[0]
        raise Unexpected("500 without a logged exception")
    return "closed" if status == 0 else f"status:{status}"


def seeds() -> list[bytes]:
    return [
        b"/boot/52:54:00:00:00:01.ipxe",
        b"/boot/52-54-00-00-00-02.ipxe",
        b"/boot/525400000003.ipxe",
        b"/boot/not-a-mac.ipxe",
        b"/ipxe.efi",
        b"/ipxe.efi\nRange: bytes=100-199",
        b"/ipxe.efi\nRange: bytes=-10",
        b"/ipxe.efi\nRange: bytes=100-1",
        b"/ipxe.efi\nRange: bytes=5000-6000",
        b"/ipxe.efi\nIf-None-Match: *",
        b"/ipxe.efi\nIf-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT",
        b"/grub/grub.cfg",
        b"/grub/",
        b"/pxe.ipxe?x=1",
        b"/escape",
        b"/../etc/passwd",
        b"/%2e%2e/etc/passwd",
        b"//etc/passwd",
        b"/%00",
    ]


DICTIONARY = (
    b"/boot/",
    b".ipxe",
    b"%2e%2e/",
    b"%2f",
    b"%00",
    b"%ff",
    b"52:54:00:00:00:01",
    b"\nRange: bytes=",
    b"\nIf-None-Match: ",
    b"\nHost: ",
)


def target() -> Target:
    return Target(
        name="http_boot",
        doc="an HTTP request target and headers, sent to the running HttpBootServer",
        check=check,
        seeds=seeds,
        max_len=2048,
        dictionary=DICTIONARY,
    )
