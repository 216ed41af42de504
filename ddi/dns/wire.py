"""The DNS wire format: the codes as enums, the one name reader and writer, and the dnslib
boundary (messages ⇄ bytes).

Rules:
* Rcodes, opcodes, types, classes and header flags are the enums below; the engine, TSIG, the
  forwarder, transfers and the zones all use them (no numeric literals for them elsewhere).
* ``read_name`` is the one reader of a wire name (compression pointers followed, bounded), for
  the fast paths and for every name dnslib decodes (``decode_message``): a label of at most 63
  octets and a name of at most 255 (RFC 1035 §2.3.4), or ``DnsFormatError``, so a message that
  decodes can always be packed again. ``write_name`` the one writer (uncompressed, or ending in
  a pointer). A name read off the wire stays bytes: it is compared as bytes (``name_key``: ASCII
  letters folded, RFC 4343) and shown with ``name_text`` (any byte escaped), never decoded with
  a codec that can fail.
* ``decode_message`` raises only ``DnsFormatError``, whatever the bytes (dnslib raises
  ``DNSError``, ``BufferError``, ``UnicodeError``, ``IndexError``…: all are wrapped here).
* A message shorter than the 12-byte header (RFC 1035 §4.1.1) cannot be answered: the transport
  drops it (``HEADER_SIZE``); anything longer that fails to parse gets FORMERR built from its
  header bytes alone (``error_response``).
* ``encode_message`` never exceeds ``max_size``: a reply that does not fit is cut to its header,
  question and OPT record with TC set (RFC 1035 §4.2.1, RFC 2181 §9, RFC 6891 §7).
* dnslib objects carry only dnslib's own attributes: nothing is stored on them.
* Pure: no I/O.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from typing import Any

from dnslib import RR, DNSBuffer, DNSHeader, DNSLabel, DNSQuestion, DNSRecord

from ddi.errors import DnsFormatError

HEADER = struct.Struct("!HHHHHH")
HEADER_SIZE = HEADER.size
MAX_POINTERS = 64
"""Compression pointers followed in one name before it is taken for a loop."""
MAX_NAME = 255
"""Octets of a name in wire form, length bytes and the root label included (RFC 1035 §2.3.4);
a label's 63 is the length byte's six bits (§4.1.4: the top two are the label type)."""


class Rcode(enum.IntEnum):
    """Response codes (RFC 1035 §4.1.1, RFC 2136, RFC 6891 §9)."""

    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5
    NOTAUTH = 9
    BADVERS = 16


class TsigError(enum.IntEnum):
    """The TSIG RR's error field (RFC 8945 §3): extended rcodes of a TSIG failure."""

    NOERROR = 0
    BADSIG = 16
    BADKEY = 17
    BADTIME = 18
    BADTRUNC = 22


class Opcode(enum.IntEnum):
    QUERY = 0
    IQUERY = 1
    STATUS = 2
    NOTIFY = 4
    UPDATE = 5


class QType(enum.IntEnum):
    """Record and query types this server names (any other value passes through as an int)."""

    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    MX = 15
    TXT = 16
    AAAA = 28
    SRV = 33
    OPT = 41
    DS = 43
    DNSKEY = 48
    SVCB = 64
    HTTPS = 65
    TKEY = 249
    TSIG = 250
    IXFR = 251
    AXFR = 252
    MAILB = 253
    MAILA = 254
    ANY = 255
    CAA = 257


class QClass(enum.IntEnum):
    IN = 1
    ANY = 255


class Flag(enum.IntFlag):
    """Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2). The hot paths use them through
    module-level ``int`` constants: arithmetic on ``IntFlag`` members is slow."""

    QR = 0x8000
    AA = 0x0400
    TC = 0x0200
    RD = 0x0100
    RA = 0x0080
    AD = 0x0020
    CD = 0x0010


OPCODE_MASK = 0x7800
RCODE_MASK = 0x000F


def read_name(data: bytes, pos: int) -> tuple[tuple[bytes, ...], int]:
    """The name at ``pos``: its labels as they are on the wire, and the offset just after it
    (after the first compression pointer, when it has one; RFC 1035 §4.1.4).

    Raises:
        DnsFormatError: the name runs past the end, has a bad label type (a length byte of
            64 or more), is longer than ``MAX_NAME`` octets, or has a pointer that does not
            point back to a prior occurrence (§4.1.4), or too many.
    """
    labels: list[bytes] = []
    end = -1
    jumps = 0
    size = len(data)
    octets = 1  # the root label
    while True:
        if pos >= size:
            raise DnsFormatError("name runs past the end of the message")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= size:
                raise DnsFormatError("truncated compression pointer")
            if end < 0:
                end = pos + 2
            jumps += 1
            if jumps > MAX_POINTERS:
                raise DnsFormatError("compression pointer loop")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= pos:
                raise DnsFormatError(f"compression pointer forward at offset {pos}")
            pos = target
            continue
        if length & 0xC0:
            raise DnsFormatError(f"bad label type at offset {pos}")
        pos += 1
        if length == 0:
            break
        octets += 1 + length
        if octets > MAX_NAME:
            raise DnsFormatError(f"name longer than {MAX_NAME} octets")
        if pos + length > size:
            raise DnsFormatError("label runs past the end of the message")
        labels.append(data[pos : pos + length])
        pos += length
    return tuple(labels), (end if end >= 0 else pos)


def write_name(labels: Sequence[bytes], pointer: int | None = None) -> bytes:
    """``labels`` in wire form: ending in the root label, or with ``pointer`` in a compression
    pointer to that offset (RFC 1035 §4.1.4)."""
    head = b"".join(bytes((len(part),)) + part for part in labels)
    if pointer is None:
        return head + b"\x00"
    return head + (0xC000 | pointer).to_bytes(2, "big")


def name_key(labels: Sequence[bytes]) -> tuple[bytes, ...]:
    """``labels`` for comparison: ASCII letters lower-cased, every other byte kept (RFC 4343)."""
    return tuple(part.lower() for part in labels)


_PRINTABLE = frozenset(range(0x21, 0x7F)) - {ord("."), ord("\\"), ord(";"), ord('"')}


def name_text(labels: Sequence[bytes]) -> str:
    """``labels`` in presentation form (RFC 1035 §5.1, no trailing dot; ``.`` for the root):
    a byte that is not printable ASCII, and a dot or backslash inside a label, is escaped
    (``\\DDD``, ``\\.``), so any name off the wire can be logged."""
    if not labels:
        return "."
    return ".".join(
        "".join(chr(b) if b in _PRINTABLE else f"\\{b:03d}" for b in part) for part in labels
    )


def text_labels(name: str) -> tuple[bytes, ...]:
    """The labels of a dotted ASCII name (``"a.b."`` → ``(b"a", b"b")``)."""
    return tuple(part.encode("ascii") for part in name.split(".") if part)


class _CheckedBuffer(DNSBuffer):  # type: ignore[misc]
    """A dnslib buffer that reads names with ``read_name``. dnslib's own reader takes a length
    byte of 64-191 for a label and bounds no name, so it decodes names that its packer then
    refuses (DNSLabelError) when the reply, a SERVFAIL or the forwarded query is built."""

    offset: int

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self._wire = bytes(data)

    def decode_name(self, last: int = -1) -> Any:
        labels, self.offset = read_name(self._wire, self.offset)
        for part in labels:
            # As dnslib: a label that is not UTF-8 is refused (its text form decodes labels).
            part.decode()
        return DNSLabel(labels)


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
        # DNSRecord.parse, with every name read by read_name (_CheckedBuffer).
        buffer = _CheckedBuffer(data)
        header = DNSHeader.parse(buffer)
        questions = [DNSQuestion.parse(buffer) for _ in range(header.q)]
        sections = [
            [RR.parse(buffer) for _ in range(n)] for n in (header.a, header.auth, header.ar)
        ]
        return DNSRecord(header, questions, sections[0], auth=sections[1], ar=sections[2])
    except DnsFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - the codec boundary: any dnslib failure is bad input
        raise DnsFormatError(f"{type(exc).__name__}: {exc}") from None


def encode_message(message: Any, *, max_size: int = 65535) -> bytes:
    """Pack ``message``; if it is larger than ``max_size``, pack the truncated form (TC set)."""
    data = pack(message)
    if len(data) <= max_size:
        return data
    return truncated(message)


def pack(message: Any) -> bytes:
    """``message.pack()``, faster: an owner name equal to (or ending in) the question's is a
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
        out.append(write_name(labels))
        out.append(_QUESTION.pack(q.qtype, q.qclass))
    for section in sections:
        for rr in section:
            out.append(_owner_wire(rr.rname.label, suffixes))
            out.append(rr_tail(rr))
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
                return write_name(labels[:j], pointer)
    return write_name(labels)


class _FlatBuffer(DNSBuffer):  # type: ignore[misc]
    """A dnslib buffer that never compresses: rdata packed alone must not point into itself
    (SOA MNAME and RNAME share a suffix) or anywhere else."""

    def encode_name(self, name: Any) -> None:
        self.encode_name_nocompress(name)


def rr_tail(rr: Any) -> bytes:
    """Type, class, TTL, RDLENGTH and uncompressed RDATA of ``rr``."""
    if rr.rtype == QType.OPT:
        body = b"".join(_QUESTION.pack(o.code, len(o.data)) + o.data for o in rr.rdata)
    else:
        buffer = _FlatBuffer()
        rr.rdata.pack(buffer)
        body = bytes(buffer.data)
    return _RR_FIXED.pack(rr.rtype, rr.rclass, rr.ttl, len(body)) + body


def truncated(message: Any) -> bytes:
    """Header + question + OPT, TC set: the client retries over TCP (RFC 7766 §5)."""
    header = message.header
    cut = DNSRecord(
        header=DNSHeader(id=header.id, bitmap=header.bitmap | int(Flag.TC)),
        questions=list(message.questions),
        ar=[rr for rr in message.ar if rr.rtype == QType.OPT],
    )
    return pack(cut)


def error_response(data: bytes, rcode: int) -> bytes:
    """A header-only reply to ``data`` (at least a header long) with ``rcode``: same ID, opcode
    and RD, QR set, no sections. Used when the message does not parse (FORMERR)."""
    msg_id, flags, *_ = HEADER.unpack_from(data)
    flags = int(Flag.QR) | (flags & (OPCODE_MASK | int(Flag.RD))) | (rcode & RCODE_MASK)
    return HEADER.pack(msg_id, flags, 0, 0, 0, 0)


def slip_response(data: bytes) -> bytes:
    """The truncated reply to ``data`` (at least a header long) that response-rate limiting
    sends instead of an answer: same ID, opcode and RD, QR and TC set, the question when it
    can be read, nothing else (smaller than the query: no amplification). The client retries
    over TCP (RFC 7766 §5)."""
    msg_id, flags, qdcount, *_ = HEADER.unpack_from(data)
    flags = int(Flag.QR | Flag.TC) | (flags & (OPCODE_MASK | int(Flag.RD)))
    question = b""
    if qdcount == 1:
        try:
            _, end = read_name(data, HEADER_SIZE)
        except DnsFormatError:
            end = len(data)
        if end + 4 <= len(data):
            question = data[HEADER_SIZE : end + 4]
    return HEADER.pack(msg_id, flags, 1 if question else 0, 0, 0, 0) + question


def patch_id(data: bytes, msg_id: bytes) -> bytes:
    """``data`` with its first two bytes (the ID) replaced by ``msg_id``."""
    return msg_id + data[2:]
