"""The TFTP server against hostile and odd requests on loopback: numbers that cannot be
converted, failures while a transfer is set up, names with a leading "/", EDK2's size-only
request, and the per-client share of the transfer slots. Descriptors are counted in
/proc/self/fd: the server runs in this process."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import pytest_asyncio

import ddi.boot.tftp
from ddi.boot.tftp import TftpServer, TftpSettings
from ddi.boot.tftp_session import (
    Data,
    Error,
    ErrorCode,
    Opcode,
    OptionAck,
    Packet,
    Request,
    TransferLimits,
    decode_packet,
    encode_ack,
    encode_error,
    encode_request,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EFI = os.urandom(70_000)
GRUB_CFG = b"set timeout=1\n"
DEADLINE = 10.0


@pytest.fixture(scope="module")
def boot_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tftp-hostile")
    root = base / "root"
    (root / "efi").mkdir(parents=True)
    (root / "grub").mkdir()
    (root / "efi" / "ipxe.efi").write_bytes(EFI)
    (root / "grub" / "grub.cfg").write_bytes(GRUB_CFG)
    (base / "secret.txt").write_text("outside the boot root\n")
    (root / "escape.txt").symlink_to(base / "secret.txt")
    (root / "up").symlink_to(base)
    return root


@pytest_asyncio.fixture
async def server(boot_root: Path) -> AsyncIterator[TftpServer]:
    limits = TransferLimits(timeout=0.5, retries=2)
    srv = TftpServer(TftpSettings(root=boot_root, limits=limits), host="127.0.0.1", port=0)
    srv.listen()
    try:
        yield srv
    finally:
        await srv.close()


@pytest.fixture
def tftp_tool() -> str:
    path = shutil.which("tftp")
    if path is None:
        if IN_CI:
            pytest.fail("tftp is missing under CI")
        pytest.skip("tftp is not installed")
    return path


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` with a deadline (polled: the server runs on this loop)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@contextmanager
def client(address: str = "127.0.0.1", timeout: float = 2.0) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        s.settimeout(timeout)
        yield s


def rrq(name: str, *options: tuple[str, str]) -> bytes:
    return encode_request(
        Request(opcode=Opcode.RRQ, filename=name, mode="octet", options=tuple(options))
    )


async def ask(s: socket.socket, port: int, datagram: bytes) -> tuple[Packet | None, object]:
    s.sendto(datagram, ("127.0.0.1", port))
    try:
        raw, peer = await asyncio.to_thread(s.recvfrom, 65536)
    except TimeoutError:
        return None, None
    return decode_packet(raw), peer


async def fetch(port: int, name: str) -> bytes | Error:
    """A lock-step RFC 1350 download."""
    with client() as s:
        reply, peer = await ask(s, port, rrq(name))
        chunks: list[bytes] = []
        while True:
            if isinstance(reply, Error):
                return reply
            assert isinstance(reply, Data), reply
            chunks.append(reply.data)
            s.sendto(encode_ack(reply.block), peer)  # type: ignore[arg-type]
            if len(reply.data) < 512:
                return b"".join(chunks)
            reply = decode_packet(await asyncio.to_thread(s.recv, 65536))


# --- finding 1: one packet leaked a descriptor ---------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "value",
    ["9" * 5000, "9" * 4301, "1" * 21, "+1468", " 1468", "1_468", "0x5b8", "-1", "1e3"],
)
async def test_unconvertible_option_value_is_ignored_and_leaks_nothing(
    server: TftpServer, value: str
) -> None:
    """A number that int() refuses (too long, not ASCII digits) used to raise after the file and
    the transfer socket were open, leaving both open: ~130 packets exhausted a 256-fd limit.
    The option is now left out of the OACK and the transfer runs without it."""
    before = open_fds()
    for _ in range(20):
        with client() as s:
            reply, peer = await ask(s, server.port, rrq("efi/ipxe.efi", ("blksize", value)))
            assert reply == Data(block=1, data=EFI[:512]), value
            s.sendto(encode_error(ErrorCode.NOT_DEFINED, "enough"), peer)  # type: ignore[arg-type]
    await until(lambda: server.statistics()["active"] == 0, "the transfers to end")
    assert open_fds() <= before
    assert server.statistics()["requests"] == {"client_error": 20}


@pytest.mark.asyncio
async def test_a_failure_while_a_transfer_is_set_up_releases_file_and_socket(
    server: TftpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever raises after the file was opened (here the session itself), the transport closes
    the file and the socket on the way out."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(ddi.boot.tftp, "TftpTransfer", broken)
    before = open_fds()
    with client() as s:
        for _ in range(20):
            s.sendto(rrq("efi/ipxe.efi"), ("127.0.0.1", server.port))
        # The listener takes datagrams in order: once the probe is answered, all were handled.
        probe, _ = await ask(s, server.port, rrq("missing.bin"))
    assert probe == Error(code=ErrorCode.FILE_NOT_FOUND, message="file not found")
    assert open_fds() <= before
    assert server.statistics()["active"] == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("value", ["²", "١٤٦٨", ""])
async def test_non_ascii_or_missing_option_value_drops_the_request(
    server: TftpServer, value: str
) -> None:
    """RFC 2347 options are ASCII strings: such a request is a counted malformed drop."""
    before = open_fds()
    with client() as s:
        s.sendto(rrq("efi/ipxe.efi", ("blksize", value)), ("127.0.0.1", server.port))
        probe, _ = await ask(s, server.port, rrq("missing.bin"))
    assert probe == Error(code=ErrorCode.FILE_NOT_FOUND, message="file not found")
    assert open_fds() <= before
    assert server.statistics()["requests"] == {"malformed": 1, "not_found": 1}


# --- issue 12: names with a leading "/" are relative to the boot root ---------------------------


@pytest.mark.asyncio
async def test_grub_style_names_with_a_leading_slash_are_served(server: TftpServer) -> None:
    assert await fetch(server.port, "/grub/grub.cfg") == GRUB_CFG
    assert await fetch(server.port, "//efi/ipxe.efi") == EFI
    assert await fetch(server.port, "efi/ipxe.efi") == EFI
    await until(lambda: server.statistics()["active"] == 0, "the last ACK to be taken")
    assert server.statistics()["requests"] == {"completed": 3}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("/../secret.txt", ErrorCode.ACCESS_VIOLATION),
        ("/efi/../../secret.txt", ErrorCode.ACCESS_VIOLATION),
        ("//../secret.txt", ErrorCode.ACCESS_VIOLATION),
        ("/escape.txt", ErrorCode.ACCESS_VIOLATION),
        ("/up/secret.txt", ErrorCode.ACCESS_VIOLATION),
        ("escape.txt", ErrorCode.ACCESS_VIOLATION),
        ("/etc/passwd", ErrorCode.FILE_NOT_FOUND),
    ],
)
async def test_traversal_and_symlink_escapes_stay_refused(
    server: TftpServer, name: str, code: ErrorCode
) -> None:
    reply = await fetch(server.port, name)
    assert isinstance(reply, Error), name
    assert reply.code is code


@pytest.mark.asyncio
async def test_tftp_hpa_fetches_an_absolute_name(
    server: TftpServer, tmp_path: Path, tftp_tool: str
) -> None:
    proc = await asyncio.create_subprocess_exec(
        tftp_tool, "-m", "octet", "127.0.0.1", str(server.port), "-c", "get", "/grub/grub.cfg",
        "g.cfg", cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out
    assert (tmp_path / "g.cfg").read_bytes() == GRUB_CFG


# --- issue 12: EDK2's size-only request ----------------------------------------------------------


@pytest.mark.asyncio
async def test_edk2_size_query_is_counted_and_logged_at_info(
    server: TftpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """EDK2 (Mtftp4 GetInfo) asks with tsize, reads the size from the OACK and ends the
    transfer with ERROR 8 "User aborted the transfer", by design, on every UEFI PXE boot."""
    caplog.set_level(logging.DEBUG, logger="ddi.boot.tftp")
    with client() as s:
        oack, peer = await ask(
            s, server.port, rrq("efi/ipxe.efi", ("tsize", "0"), ("blksize", "1468"))
        )
        assert oack == OptionAck(options=(("tsize", str(len(EFI))), ("blksize", "1468")))
        s.sendto(encode_error(ErrorCode.OPTION_REFUSED, "User aborted the transfer"), peer)  # type: ignore[arg-type]
        await until(lambda: server.statistics()["active"] == 0, "the probe to end")
    assert server.statistics()["requests"] == {"size_query": 1}
    mine = [r for r in caplog.records if r.name == "ddi.boot.tftp"]
    assert [r for r in mine if r.levelno >= logging.WARNING] == []
    assert any(r.levelno == logging.INFO and "size_query" in r.getMessage() for r in mine)


@pytest.mark.asyncio
async def test_an_error_after_data_started_is_still_a_warning(
    server: TftpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ddi.boot.tftp")
    with client() as s:
        oack, peer = await ask(s, server.port, rrq("efi/ipxe.efi", ("tsize", "0")))
        assert isinstance(oack, OptionAck)
        s.sendto(encode_ack(0), peer)  # type: ignore[arg-type]
        assert isinstance(decode_packet(await asyncio.to_thread(s.recv, 65536)), Data)
        s.sendto(encode_error(ErrorCode.DISK_FULL, "disk full"), peer)  # type: ignore[arg-type]
        await until(lambda: server.statistics()["active"] == 0, "the transfer to end")
    assert server.statistics()["requests"] == {"client_error": 1}
    assert any(r.levelno == logging.WARNING for r in caplog.records if r.name == "ddi.boot.tftp")


# --- per-client share of the transfer slots ------------------------------------------------------


@pytest.mark.asyncio
async def test_one_client_address_cannot_take_every_slot(boot_root: Path) -> None:
    limits = TransferLimits(timeout=5.0)
    settings = TftpSettings(
        root=boot_root, limits=limits, max_transfers=16, max_transfers_per_client=2
    )
    srv = TftpServer(settings, host="127.0.0.1", port=0)
    srv.listen()
    try:
        with client() as a, client() as b, client() as c, client("127.0.0.2") as other:
            for s in (a, b):
                reply, _ = await ask(s, srv.port, rrq("efi/ipxe.efi"))
                assert isinstance(reply, Data)
            refused, _ = await ask(c, srv.port, rrq("efi/ipxe.efi"))
            assert refused == Error(
                code=ErrorCode.NOT_DEFINED, message="too many transfers to this client"
            )
            reply, _ = await ask(other, srv.port, rrq("efi/ipxe.efi"))
            assert isinstance(reply, Data)
            assert srv.statistics()["active"] == 3
    finally:
        await srv.close()
    assert srv.statistics()["requests"] == {"client_limit": 1, "aborted": 3}
