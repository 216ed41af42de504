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

import contextlib
import struct
from typing import Any

from dnslib import DNSBuffer, DNSRecord

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
    data = pack(message)
    if len(data) <= max_size:
        return data
    return truncated(message)


def pack(message: Any) -> bytes:
    """``message.pack()``, faster: each record's wire form is computed once and kept on the
    record (zone records are long-lived), and an owner name equal to the question's is a
    compression pointer to it (RFC 1035 §4.1.4). Names inside rdata are not compressed, which
    RFC 1035 allows and RFC 3597 §4 recommends for unknown types."""
    header = message.header
    questions = message.questions
    sections = (message.rr, message.auth, message.ar)
    out = [
        HEADER.pack(
            header.id,
            header.bitmap,
            len(questions),
            len(sections[0]),
            len(sections[1]),
            len(sections[2]),
        )
    ]
    suffixes: dict[tuple[bytes, ...], int] = {}
    for i, q in enumerate(questions):
        labels = q.qname.label
        if i == 0:
            # Owner names are compressed against the first question's name and its suffixes.
            lowered = tuple(part.lower() for part in labels)
            offset = HEADER.size
            for j in range(len(lowered)):
                suffixes[lowered[j:]] = offset
                offset += 1 + len(lowered[j])
        out.append(_name_wire(labels))
        out.append(_QUESTION.pack(q.qtype, q.qclass))
    for section in sections:
        for rr in section:
            out.append(_owner_wire(rr.rname.label, suffixes))
            tail = getattr(rr, "ddi_wire", None)
            if tail is None:
                tail = rr_tail(rr)
            out.append(tail)
    return b"".join(out)


_QUESTION = struct.Struct("!HH")
_RR_FIXED = struct.Struct("!HHIH")


def _owner_wire(labels: tuple[bytes, ...], suffixes: dict[tuple[bytes, ...], int]) -> bytes:
    """``labels`` in wire form, ending in a pointer to the question where a suffix matches."""
    if suffixes:
        lowered = tuple(part.lower() for part in labels)
        for j in range(len(lowered)):
            pointer = suffixes.get(lowered[j:])
            if pointer is not None:
                head = b"".join(bytes((len(part),)) + part for part in labels[:j])
                return head + (0xC000 | pointer).to_bytes(2, "big")
    return _name_wire(labels)


def _name_wire(labels: tuple[bytes, ...]) -> bytes:
    return b"".join(bytes((len(part),)) + part for part in labels) + b"\x00"


class _FlatBuffer(DNSBuffer):  # type: ignore[misc]
    """A dnslib buffer that never compresses: rdata packed alone must not point into itself
    (SOA MNAME and RNAME share a suffix) or anywhere else."""

    def encode_name(self, name: Any) -> None:
        self.encode_name_nocompress(name)


def rr_tail(rr: Any) -> bytes:
    """Type, class, TTL, RDLENGTH and uncompressed RDATA of ``rr``, kept on the record."""
    tail = _rr_tail(rr)
    with contextlib.suppress(AttributeError):
        rr.ddi_wire = tail
    return tail


def _rr_tail(rr: Any) -> bytes:
    if rr.rtype == OPT_TYPE:
        body = b"".join(_QUESTION.pack(o.code, len(o.data)) + o.data for o in rr.rdata)
    else:
        buffer = _FlatBuffer()
        rr.rdata.pack(buffer)
        body = bytes(buffer.data)
    return _RR_FIXED.pack(rr.rtype, rr.rclass, rr.ttl, len(body)) + body


def truncated(message: Any) -> bytes:
    """Header + question + OPT, TC set: the client retries over TCP (RFC 7766 §5)."""
    cut = DNSRecord(
        header=message.header,
        questions=list(message.questions),
        ar=[rr for rr in message.ar if rr.rtype == OPT_TYPE],
    )
    cut.header.tc = 1
    return pack(cut)


def error_response(data: bytes, rcode: int) -> bytes:
    """A header-only reply to ``data`` (at least a header long) with ``rcode``: same ID, opcode
    and RD, QR set, no sections. Used when the message does not parse (FORMERR)."""
    msg_id, flags, *_ = HEADER.unpack_from(data)
    flags = QR_BIT | (flags & 0x7900) | (rcode & 0xF)  # keep opcode (0x7800) and RD (0x0100)
    return HEADER.pack(msg_id, flags, 0, 0, 0, 0)


def patch_id(data: bytes, msg_id: bytes) -> bytes:
    """``data`` with its first two bytes (the ID) replaced by ``msg_id``."""
    return msg_id + data[2:]
