"""TFTP: a read request and the client's datagrams after it, through what ``ddi.boot.tftp``
does with them: ``decode_packet``, ``refusal_for``, ``read_options``, ``files.safe_path`` under a
boot root, then one ``TftpTransfer`` fed the rest of the datagrams and its own timer until it ends.

An input is datagrams separated by ``MARK``: the first is the request; each later one starts
with a byte ``step`` and reaches the transfer ``step`` tenths of a second after the previous
(its timer fires in between when due). A separator rather than length prefixes, so that a
mutation inside a datagram (an option value grown to thousands of digits) keeps the framing.
After the last, the timer runs until the transfer ends; it must end within its retries.

Outcomes: ``TftpFormatError`` from the request's decoder (counted ``malformed``), a non-request
(counted), a refusal (an error packet), or a transfer that ends (completed, timed out, or by the
client's error).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from ddi.boot.files import PathRefusal, safe_path
from ddi.boot.tftp_session import (
    Request,
    TftpTransfer,
    TransferLimits,
    decode_packet,
    encode_ack,
    encode_error,
    read_options,
    refusal_for,
)
from ddi.errors import TftpFormatError
from fuzz.core import Target, Unexpected
from fuzz.seeds import captured

MARK = b"\xf0\x9f\x93\xa6"
"""Separates datagrams in an input (U+1F4E6 in UTF-8; no TFTP datagram here holds it)."""
LIMITS = TransferLimits()
MAX_FRAMES = 64
FILES = {
    "boot.ipxe": b"#!ipxe\nchain http://198.18.0.1/boot/${mac}.ipxe\n",
    "ipxe.efi": bytes(range(256)) * 12,
    "grub/grub.cfg": b"set timeout=1\n",
    "empty": b"",
    "exact": b"x" * 512,
}


class _Root:
    """A boot root made once per process: a few files, a directory, and a symlink out."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="fuzz-tftp-"))
        atexit.register(shutil.rmtree, self.path, True)
        for name, data in FILES.items():
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
            (self.path / name).write_bytes(data)
        os.symlink("/etc/hostname", self.path / "escape")
        os.symlink("boot.ipxe", self.path / "alias")
        self.contents: dict[Path, bytes] = {}

    def read(self, path: Path) -> bytes:
        data = self.contents.get(path)
        if data is None:
            data = self.contents[path] = path.read_bytes()
        return data


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, offset: int, size: int) -> bytes:
        return self.data[offset : offset + size]


_root: _Root | None = None


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split an input into (step, datagram) frames: the request (step 0), then the rest."""
    first, *rest = data.split(MARK, MAX_FRAMES)
    return [(0, first)] + [(part[0], part[1:]) for part in rest[: MAX_FRAMES - 1] if part]


def check(data: bytes) -> str:
    global _root
    if _root is None:
        _root = _Root()
    items = frames(data)
    request = decode_packet(items[0][1])
    if not isinstance(request, Request):
        return "drop:not_a_request"
    refusal = refusal_for(request)
    if refusal is not None:
        refusal.datagram()
        return f"refused:{refusal.reason.value}"
    options = read_options(request)  # as ddi.boot.tftp: checked before anything is opened
    path = safe_path(_root.path, request.filename)
    if isinstance(path, PathRefusal):
        return f"refused:{path.value}"
    content = _root.read(path)
    now = 0.0
    session = TftpTransfer(
        request, _Bytes(content), options=options, size=len(content), limits=LIMITS, now=now
    )
    session.datagrams_to_send(now)
    for step, datagram in items[1:]:
        now += step / 10
        timer = session.get_timer()
        if timer is not None and timer <= now:
            session.handle_timer(now)
            session.datagrams_to_send(now)
        session.receive(datagram, now)
        session.datagrams_to_send(now)
    for _ in range(LIMITS.retries + 2):
        timer = session.get_timer()
        if timer is None:
            break
        now = max(now, timer)
        session.handle_timer(now)
        session.datagrams_to_send(now)
    if not session.done:
        raise Unexpected("the transfer outlived its retries")
    assert session.outcome is not None
    return f"transfer:{session.outcome.value}"


def _frame(datagram: bytes, step: int = 1) -> bytes:
    return MARK + bytes((step,)) + datagram


def _rrq(name: str, *options: str, mode: str = "octet") -> bytes:
    return b"\0\1" + b"".join(s.encode() + b"\0" for s in (name, mode, *options))


def seeds() -> list[bytes]:
    """The captured iPXE requests, and requests with the options and ACK sequences the
    transfer tells apart."""
    acks = b"".join(_frame(encode_ack(n)) for n in range(12))
    return [
        *(rrq + acks for rrq in captured(69)),
        _rrq("boot.ipxe") + _frame(encode_ack(1)),
        _rrq("ipxe.efi", "blksize", "1024", "tsize", "0") + acks,
        _rrq("ipxe.efi", "windowsize", "4", "blksize", "512") + acks,
        _rrq("ipxe.efi", "timeout", "2", "tsize", "0") + _frame(encode_ack(0), 30),
        _rrq("ipxe.efi", "tsize", "0") + _frame(encode_error(0, "size only")),
        _rrq("exact") + _frame(encode_ack(1)) + _frame(encode_ack(2)),
        _rrq("empty") + _frame(encode_ack(1)),
        _rrq("grub/grub.cfg") + _frame(encode_ack(1)),
        _rrq("alias") + _frame(encode_ack(1)),
        _rrq("escape"),
        _rrq("../etc/passwd"),
        _rrq("/boot.ipxe"),
        _rrq("boot.ipxe", mode="netascii"),
        b"\0\2boot.ipxe\0octet\0",
        encode_ack(1),
    ]


DICTIONARY = (
    b"blksize\0",
    b"tsize\0",
    b"timeout\0",
    b"windowsize\0",
    b"octet\0",
    b"65464\0",
    b"99999999999999999999\0",
    b"\0\4\0\0",
    b"\0\4\xff\xff",
    b"\0\5\0\0",
    MARK + b"\x01\x00\x04\x00",
    b"ipxe.efi\0",
)


def target() -> Target:
    return Target(
        name="tftp",
        doc="TFTP frames: the read request (decode, refusal, safe_path), then a TftpTransfer "
        "fed the client's datagrams and its timer until it ends",
        check=check,
        seeds=seeds,
        allowed=(TftpFormatError,),
        max_len=65507,
        dictionary=DICTIONARY,
    )
