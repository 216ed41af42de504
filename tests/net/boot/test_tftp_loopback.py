"""The TFTP server on loopback against real clients (tftp-hpa, curl, atftp) and a scripted
client that loses and duplicates ACKs."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from ddi.boot.tftp import TftpServer, TftpSettings
from ddi.boot.tftp_session import (
    Data,
    Error,
    ErrorCode,
    Opcode,
    OptionAck,
    Request,
    TransferLimits,
    decode_packet,
    encode_ack,
    encode_request,
)
from tests.ci import require_tool

BIG = 5 * 1024 * 1024


def need(tool: str) -> str:
    return require_tool(tool)


@pytest.fixture(scope="module")
def boot_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tftp")
    root = base / "root"
    (root / "efi").mkdir(parents=True)
    (root / "big.bin").write_bytes(os.urandom(BIG))
    (root / "efi" / "ipxe.efi").write_bytes(os.urandom(70_000))
    (root / "exact.bin").write_bytes(os.urandom(512 * 4))
    (base / "secret.txt").write_text("outside the boot root\n")
    (root / "escape.txt").symlink_to(base / "secret.txt")
    (root / "inside.bin").symlink_to(root / "efi" / "ipxe.efi")
    return root


@pytest_asyncio.fixture
async def server(boot_root: Path) -> AsyncIterator[TftpServer]:
    limits = TransferLimits(timeout=0.3, retries=3, max_windowsize=64)
    settings = TftpSettings(root=boot_root, limits=limits, max_transfers=8)
    srv = TftpServer(settings, host="127.0.0.1", port=0)
    srv.listen()
    try:
        yield srv
    finally:
        await srv.close()


async def run(*argv: str, cwd: Path, limit: float = 60.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- real clients ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tftp_hpa_gets_5mb_byte_identical(
    server: TftpServer, boot_root: Path, tmp_path: Path
) -> None:
    tftp = need("tftp")
    port = str(server.port)
    code, out = await run(tftp, "-m", "octet", "127.0.0.1", port, "-c", "get", "big.bin", "o.bin",
                          cwd=tmp_path)  # fmt: skip
    assert code == 0, out
    assert digest(tmp_path / "o.bin") == digest(boot_root / "big.bin")
    assert server.statistics()["requests"] == {"completed": 1}


@pytest.mark.asyncio
async def test_curl_default_and_blksize_1468_byte_identical(
    server: TftpServer, boot_root: Path, tmp_path: Path
) -> None:
    curl = need("curl")
    url = f"tftp://127.0.0.1:{server.port}/big.bin"
    code, out = await run(curl, "-sS", "-o", "a.bin", url, cwd=tmp_path)
    assert code == 0, out
    code, out = await run(curl, "-sS", "--tftp-blksize", "1468", "-o", "b.bin", url, cwd=tmp_path)
    assert code == 0, out
    expected = digest(boot_root / "big.bin")
    assert digest(tmp_path / "a.bin") == expected
    assert digest(tmp_path / "b.bin") == expected


@pytest.mark.asyncio
async def test_blksize_1468_windowsize_8_byte_identical(
    server: TftpServer, boot_root: Path, tmp_path: Path
) -> None:
    """atftp negotiates windowsize (RFC 7440); without it the scripted client does."""
    atftp = shutil.which("atftp")
    if atftp is not None:
        code, out = await run(
            atftp, "--option", "blksize 1468", "--option", "windowsize 8", "--option",
            "tsize enable", "-g", "-r", "big.bin", "-l", "w.bin", "127.0.0.1", str(server.port),
            cwd=tmp_path,
        )  # fmt: skip
        assert code == 0, out
        assert digest(tmp_path / "w.bin") == digest(boot_root / "big.bin")
    result = await asyncio.to_thread(
        Client(server.port).get, "big.bin", [("blksize", "1468"), ("windowsize", "8")]
    )
    assert result.oack == {"blksize": "1468", "windowsize": "8"}
    assert result.data == (boot_root / "big.bin").read_bytes()


@pytest.mark.asyncio
async def test_curl_traversal_attempts_are_refused(server: TftpServer, tmp_path: Path) -> None:
    curl = need("curl")
    base = f"tftp://127.0.0.1:{server.port}"
    for path in ("/../secret.txt", "/efi/../../secret.txt", "//../secret.txt", "/escape.txt"):
        code, out = await run(curl, "-sS", "--path-as-is", "-o", "x", base + path, cwd=tmp_path)
        # curl exit 69 is CURLE_TFTP_PERM: the server answered "access violation"
        assert code == 69, (path, out)
    # "/etc/passwd" names <root>/etc/passwd, which does not exist: curl exit 68, CURLE_TFTP_NOTFOUND
    code, out = await run(
        curl, "-sS", "--path-as-is", "-o", "x", base + "//etc/passwd", cwd=tmp_path
    )
    assert code == 68, out
    assert not (tmp_path / "x").exists() or (tmp_path / "x").read_bytes() == b""
    assert server.statistics()["requests"] == {"access_refused": 4, "not_found": 1}


@pytest.mark.asyncio
async def test_tftp_hpa_missing_file_and_symlink_inside_root(
    server: TftpServer, boot_root: Path, tmp_path: Path
) -> None:
    tftp = need("tftp")
    port = str(server.port)
    _, out = await run(tftp, "-m", "octet", "127.0.0.1", port, "-c", "get", "nope.bin", "n",
                       cwd=tmp_path)  # fmt: skip
    assert "Error code 1: file not found" in out
    code, out = await run(tftp, "-m", "octet", "127.0.0.1", port, "-c", "get", "inside.bin", "i",
                          cwd=tmp_path)  # fmt: skip
    assert code == 0, out
    assert (tmp_path / "i").read_bytes() == (boot_root / "efi" / "ipxe.efi").read_bytes()


@pytest.mark.asyncio
async def test_netascii_and_write_requests_are_refused(server: TftpServer) -> None:
    client = Client(server.port)
    reply = await asyncio.to_thread(client.request_only, Opcode.RRQ, "big.bin", "netascii")
    assert isinstance(reply, Error)
    assert reply.code is ErrorCode.ILLEGAL_OPERATION
    reply = await asyncio.to_thread(client.request_only, Opcode.WRQ, "new.bin", "octet")
    assert isinstance(reply, Error)
    assert reply.code is ErrorCode.ACCESS_VIOLATION


# --- scripted client: lost and duplicate ACKs ----------------------------------------------------


@dataclass
class Result:
    data: bytes
    oack: dict[str, str]
    received: list[int] = field(default_factory=list)
    error: Error | None = None


class Client:
    """A small TFTP client that can drop or repeat chosen ACKs (by absolute block number)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request_only(self, opcode: Opcode, name: str, mode: str) -> object:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(encode_request(Request(opcode=opcode, filename=name, mode=mode)),
                     ("127.0.0.1", self.port))  # fmt: skip
            return decode_packet(s.recv(65536))

    def get(
        self,
        name: str,
        options: Sequence[tuple[str, str]] = (),
        *,
        drop_acks: Sequence[int] = (),
        duplicate_acks: Sequence[int] = (),
    ) -> Result:
        drops = set(drop_acks)
        dups = set(duplicate_acks)
        blksize = int(dict(options).get("blksize", "512"))
        window = int(dict(options).get("windowsize", "1"))
        request = Request(opcode=Opcode.RRQ, filename=name, mode="octet", options=tuple(options))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(encode_request(request), ("127.0.0.1", self.port))
            result = Result(data=b"", oack={})
            chunks: list[bytes] = []
            expected = 1
            peer = None
            while True:
                raw, addr = s.recvfrom(65536)
                peer = peer or addr
                assert addr == peer
                pkt = decode_packet(raw)
                if isinstance(pkt, OptionAck):
                    result.oack = dict(pkt.options)
                    blksize = int(result.oack.get("blksize", blksize))
                    window = int(result.oack.get("windowsize", window))
                    s.sendto(encode_ack(0), peer)
                    continue
                if isinstance(pkt, Error):
                    result.error = pkt
                    return result
                assert isinstance(pkt, Data)
                result.received.append(pkt.block)
                if pkt.block == (expected - 1) % 65536:
                    # the server timed out waiting for our ACK: acknowledge the copy
                    s.sendto(encode_ack(expected - 1), peer)
                    continue
                if pkt.block != expected % 65536:
                    continue  # out of order
                chunks.append(pkt.data)
                last = len(pkt.data) < blksize
                ack_now = last or expected % window == 0
                block = expected
                expected += 1
                if not ack_now:
                    continue
                if block in drops:
                    drops.discard(block)
                    expected = block + 1
                    continue  # this ACK is "lost": the server must time out and resend
                s.sendto(encode_ack(block), peer)
                if block in dups:
                    s.sendto(encode_ack(block), peer)
                if last:
                    result.data = b"".join(chunks)
                    return result


@pytest.mark.asyncio
async def test_lost_ack_is_answered_by_retransmission(server: TftpServer, boot_root: Path) -> None:
    # The ACK of block 3 is lost: the client still holds block 3, the server resends it after
    # its timeout, the client ACKs the copy and the transfer completes.
    result = await asyncio.to_thread(Client(server.port).get, "efi/ipxe.efi", drop_acks=[3])
    assert result.data == (boot_root / "efi" / "ipxe.efi").read_bytes()
    assert result.received[:5] == [1, 2, 3, 3, 4]
    assert server.statistics()["requests"] == {"completed": 1}


@pytest.mark.asyncio
async def test_duplicate_ack_causes_no_duplicate_data(server: TftpServer, boot_root: Path) -> None:
    result = await asyncio.to_thread(
        Client(server.port).get, "efi/ipxe.efi", duplicate_acks=[1, 2, 10]
    )
    assert result.data == (boot_root / "efi" / "ipxe.efi").read_bytes()
    blocks = len(result.data) // 512 + 1
    assert result.received == list(range(1, blocks + 1))


@pytest.mark.asyncio
async def test_client_that_vanishes_times_out_and_frees_its_slot(server: TftpServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(encode_request(Request(opcode=Opcode.RRQ, filename="big.bin", mode="octet")),
                 ("127.0.0.1", server.port))  # fmt: skip
        s.settimeout(2)
        assert isinstance(decode_packet(await asyncio.to_thread(s.recv, 65536)), Data)
        assert server.statistics()["active"] == 1
        # no ACK ever: 1 send + 3 retries at 0.3 s, then an error packet
        for _ in range(40):
            await asyncio.sleep(0.1)
            if server.statistics()["active"] == 0:
                break
    assert server.statistics()["requests"] == {"timeout": 1}


@pytest.mark.asyncio
async def test_requests_beyond_the_transfer_limit_get_busy(boot_root: Path) -> None:
    settings = TftpSettings(root=boot_root, limits=TransferLimits(timeout=5.0), max_transfers=1)
    srv = TftpServer(settings, host="127.0.0.1", port=0)
    srv.listen()
    rrq = encode_request(Request(opcode=Opcode.RRQ, filename="big.bin", mode="octet"))
    try:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second,
        ):
            first.settimeout(3)
            second.settimeout(3)
            first.sendto(rrq, ("127.0.0.1", srv.port))
            assert isinstance(decode_packet(await asyncio.to_thread(first.recv, 65536)), Data)
            first.sendto(rrq, ("127.0.0.1", srv.port))  # a retransmitted RRQ: ignored
            second.sendto(rrq, ("127.0.0.1", srv.port))
            busy = decode_packet(await asyncio.to_thread(second.recv, 65536))
            assert busy == Error(code=ErrorCode.NOT_DEFINED, message="server busy, try again later")
            assert srv.statistics()["active"] == 1
    finally:
        await srv.close()
    assert srv.statistics()["requests"] == {"busy": 1, "aborted": 1}
