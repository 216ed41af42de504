"""The dnslib boundary: DNS messages ⇄ bytes.

Rules:
* ``decode_message`` raises only ``DnsFormatError``, whatever the bytes (dnslib raises
  ``DNSError``, ``BufferError``, ``UnicodeError``, ``IndexError``…: all are wrapped here).
* A message shorter than the 12-byte header (RFC 1035 §4.1.1) cannot be answered: the transport
  drops it (``HEADER_SIZE``); anything longer that fails to parse gets FORMERR built from its
  header bytes alone (``error_response``).
* ``encode_message`` never exceeds ``max_size``: a reply that does not fit is cut to its header,
  question and OPT record with TC set (RFC 1035 §4.2.1, RFC 2181 §9, RFC 6891 §7).
* Pure: no I/O.
"""

from __future__ import annotations

import struct
from typing import Any

from dnslib import DNSRecord

from ddi.errors import DnsFormatError

HEADER = struct.Struct("!HHHHHH")
HEADER_SIZE = HEADER.size
OPT_TYPE = 41
TC_BIT = 0x0200
QR_BIT = 0x8000


def decode_message(data: bytes) -> Any:
    """Parse a DNS message.

    Returns:
        A ``dnslib.DNSRecord``.

    Raises:
        DnsFormatError: for any input that is not a well-formed message.
    """
    if len(data) < HEADER_SIZE:
        raise DnsFormatError(f"message of {len(data)} bytes is shorter than a header")
    try:
        return DNSRecord.parse(data)
    except Exception as exc:  # noqa: BLE001 - the codec boundary: any dnslib failure is bad input
        raise DnsFormatError(f"{type(exc).__name__}: {exc}") from None


def encode_message(message: Any, *, max_size: int = 65535) -> bytes:
    """Pack ``message``; if it is larger than ``max_size``, pack the truncated form (TC set)."""
    data: bytes = message.pack()
    if len(data) <= max_size:
        return data
    return truncated(message)


def truncated(message: Any) -> bytes:
    """Header + question + OPT, TC set: the client retries over TCP (RFC 7766 §5)."""
    cut = DNSRecord(
        header=message.header,
        questions=list(message.questions),
        ar=[rr for rr in message.ar if rr.rtype == OPT_TYPE],
    )
    cut.header.tc = 1
    data: bytes = cut.pack()
    return data


def error_response(data: bytes, rcode: int) -> bytes:
    """A header-only reply to ``data`` (at least a header long) with ``rcode``: same ID, opcode
    and RD, QR set, no sections. Used when the message does not parse (FORMERR)."""
    msg_id, flags, *_ = HEADER.unpack_from(data)
    flags = QR_BIT | (flags & 0x7900) | (rcode & 0xF)  # keep opcode (0x7800) and RD (0x0100)
    return HEADER.pack(msg_id, flags, 0, 0, 0, 0)


def patch_id(data: bytes, msg_id: bytes) -> bytes:
    """``data`` with its first two bytes (the ID) replaced by ``msg_id``."""
    return msg_id + data[2:]
