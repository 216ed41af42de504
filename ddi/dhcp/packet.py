"""DHCPv4 wire codec: RFC 2131 §2 header, RFC 2132 options, option overload (RFC 2132 §9.3)
and long options (RFC 3396).

Rules:
* ``decode_packet`` raises only ``DhcpFormatError``, whatever the input bytes (a property test
  holds it to that). Every read is bounds-checked; a length that runs past its field is an error,
  never a silent truncation.
* Options come out as ``(code, value)`` pairs in the order they first appear. Instances of the
  same code are concatenated in order across the options, ``file`` and ``sname`` fields
  (RFC 3396 §5); values are raw bytes, so unknown options and option 82 sub-options pass
  through untouched. Option 52 is framing, not content: the decoder applies it and drops it, the
  encoder adds it when it needs the ``file``/``sname`` fields.
* ``encode_packet`` lays options out in the order given, splits values longer than 255 bytes
  into consecutive instances (RFC 3396 §6), and never exceeds the size the client can take
  (option 57, never less than the 576 bytes of RFC 2131 §2). Options that still do not fit are
  left out, last first: callers put the important ones (53, 54, lease times) first.
* ``decode_packet(encode_packet(p)) == p`` for every packet without option 52 whose options fit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from ddi.dhcp.options import (
    MessageType,
    OptionCode,
    decode_ip,
    decode_parameter_request_list,
    decode_u16,
    format_hex,
    message_type_from_int,
)
from ddi.errors import DhcpFormatError
from ddi.values import slot_builder

# RFC 2131 §2: op htype hlen hops xid secs flags ciaddr yiaddr siaddr giaddr chaddr sname file,
# then the RFC 2132 §2 magic cookie: 240 bytes before the first option.
HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s4s")
MAGIC_COOKIE = b"\x63\x82\x53\x63"
OPTIONS_OFFSET = HEADER.size
SNAME_OFFSET, SNAME_SIZE = 44, 64
FILE_OFFSET, FILE_SIZE = 108, 128

BOOTREQUEST = 1
BOOTREPLY = 2
BROADCAST_FLAG = 0x8000

MIN_MESSAGE_SIZE = 576
"""RFC 2131 §2 / RFC 2132 §9.10: every client accepts a 576-byte IP datagram."""
IP_UDP_OVERHEAD = 28
"""Option 57 counts the IP and UDP headers (RFC 2132 §9.10)."""
BOOTP_MIN_PAYLOAD = 300
"""RFC 1542 §3.1.1: some relays and old clients drop BOOTP messages shorter than 300 bytes."""

_OVERLOAD_FILE = 1
_OVERLOAD_SNAME = 2

ZERO_ADDRESS = IPv4Address(0)

# The option codes the codec reads per packet, as plain ints: an enum member costs an attribute
# lookup on its class at every use (about 0.15 µs), several times per option and packet.
_PAD = int(OptionCode.PAD)
_END = int(OptionCode.END)
_OVERLOAD = int(OptionCode.OVERLOAD)
_MESSAGE_TYPE = int(OptionCode.MESSAGE_TYPE)
_CLIENT_IDENTIFIER = int(OptionCode.CLIENT_IDENTIFIER)
_REQUESTED_ADDRESS = int(OptionCode.REQUESTED_ADDRESS)
_SERVER_IDENTIFIER = int(OptionCode.SERVER_IDENTIFIER)
_PARAMETER_REQUEST_LIST = int(OptionCode.PARAMETER_REQUEST_LIST)
_MAX_MESSAGE_SIZE = int(OptionCode.MAX_MESSAGE_SIZE)
_ZERO4 = bytes(4)


@dataclass(frozen=True, slots=True, kw_only=True)
class DhcpPacket:
    """One DHCP message. ``chaddr`` is the 16-byte field as sent; ``sname`` and ``file`` are
    the fields without their trailing NULs (empty when they carried overloaded options)."""

    op: int
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    xid: int
    secs: int = 0
    flags: int = 0
    ciaddr: IPv4Address = ZERO_ADDRESS
    yiaddr: IPv4Address = ZERO_ADDRESS
    siaddr: IPv4Address = ZERO_ADDRESS
    giaddr: IPv4Address = ZERO_ADDRESS
    chaddr: bytes = b"\0" * 16
    sname: bytes = b""
    file: bytes = b""
    options: tuple[tuple[int, bytes], ...] = ()

    def get(self, code: int) -> bytes | None:
        """The raw value of option ``code``, or None when absent."""
        for c, value in self.options:
            if c == code:
                return value
        return None

    @property
    def message_type(self) -> MessageType | int | None:
        """Option 53; None when absent or not one byte (then it is a BOOTP message)."""
        value = self.get(_MESSAGE_TYPE)
        if value is None or len(value) != 1:
            return None
        return message_type_from_int(value[0])

    @property
    def mac(self) -> str | None:
        """The Ethernet hardware address (htype 1, hlen 6) in colon hex, else None."""
        if self.htype != 1 or self.hlen != 6:
            return None
        return format_hex(self.chaddr[:6])

    @property
    def client_id(self) -> str | None:
        """Option 61 in colon hex (RFC 2132 §9.14), or None."""
        value = self.get(_CLIENT_IDENTIFIER)
        return format_hex(value) if value else None

    @property
    def broadcast(self) -> bool:
        """RFC 2131 §2: the client cannot receive unicast before it is configured."""
        return bool(self.flags & BROADCAST_FLAG)

    def requested_address(self) -> IPv4Address | None:
        """Option 50. Raises DhcpFormatError when it is not 4 bytes."""
        value = self.get(_REQUESTED_ADDRESS)
        return None if value is None else decode_ip(value)

    def server_identifier(self) -> IPv4Address | None:
        """Option 54. Raises DhcpFormatError when it is not 4 bytes."""
        value = self.get(_SERVER_IDENTIFIER)
        return None if value is None else decode_ip(value)

    def parameter_request_list(self) -> tuple[int, ...]:
        value = self.get(_PARAMETER_REQUEST_LIST)
        return () if value is None else decode_parameter_request_list(value)

    def max_message_size(self) -> int | None:
        """Option 57. Raises DhcpFormatError when it is not 2 bytes."""
        value = self.get(_MAX_MESSAGE_SIZE)
        return None if value is None else decode_u16(value)


# --- decode --------------------------------------------------------------------------------


def decode_packet(data: bytes) -> DhcpPacket:
    """Parse one DHCP message from a UDP payload.

    Returns:
        The packet, options concatenated per RFC 3396.

    Raises:
        DhcpFormatError: too short, no magic cookie, hlen over 16, a bad option 52, or an option
            whose length runs past its field.
    """
    if len(data) < HEADER.size:
        raise DhcpFormatError(f"{len(data)} bytes is shorter than the {HEADER.size}-byte header")
    (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, sname,
     file, cookie) = HEADER.unpack_from(data)  # fmt: skip
    if cookie != MAGIC_COOKIE:
        raise DhcpFormatError(f"magic cookie {cookie.hex()} is not 63825363 (BOOTP-only client)")
    if hlen > 16:
        raise DhcpFormatError(f"hlen {hlen} exceeds the 16-byte chaddr field")
    found: dict[int, bytes] = {}
    overload = _read_options(data, OPTIONS_OFFSET, len(data), found, options_field=True)
    # RFC 2132 §9.3 and RFC 3396 §5: the options field, then file, then sname.
    if overload & _OVERLOAD_FILE:
        _read_options(data, FILE_OFFSET, FILE_OFFSET + FILE_SIZE, found, options_field=False)
        file = b""
    if overload & _OVERLOAD_SNAME:
        _read_options(data, SNAME_OFFSET, SNAME_OFFSET + SNAME_SIZE, found, options_field=False)
        sname = b""
    return new_packet(op, htype, hlen, hops, xid, secs, flags, _address(ciaddr), _address(yiaddr),
                    _address(siaddr), _address(giaddr), chaddr, sname.rstrip(b"\0"),
                    file.rstrip(b"\0"), tuple(found.items()))  # fmt: skip


new_packet = slot_builder(DhcpPacket)
"""``DhcpPacket(...)`` with every field given by position: 2 µs a packet instead of the frozen
``__init__``'s 6 (the decoder and the engine's replies make one per message)."""


def _address(raw: bytes) -> IPv4Address:
    # Most of a request's address fields are zero: share one value instead of parsing each.
    return ZERO_ADDRESS if raw == _ZERO4 else IPv4Address(raw)


def _read_options(
    data: bytes, pos: int, end: int, found: dict[int, bytes], *, options_field: bool
) -> int:
    """Read TLVs in ``data[pos:end]`` into ``found``; return the option 52 value seen (0 if
    none). Stops at End (255); a field without End ends at its boundary."""
    overload = 0
    while pos < end:
        code = data[pos]
        if code == _PAD:
            pos += 1
            continue
        if code == _END:
            break
        if pos + 1 >= end:
            raise DhcpFormatError(f"option {code} at offset {pos} has no length byte")
        length = data[pos + 1]
        start = pos + 2
        if length > end - start:
            raise DhcpFormatError(
                f"option {code} at offset {pos} wants {length} bytes, {end - start} left"
            )
        value = data[start : start + length]
        pos = start + length
        if code == _OVERLOAD:
            # RFC 2132 §9.3: only meaningful in the options field; one byte, 1-3.
            if not options_field:
                continue
            if length != 1 or not 1 <= value[0] <= 3 or overload:
                raise DhcpFormatError(f"option 52 value {value.hex()} is not 1, 2 or 3")
            overload = value[0]
            continue
        previous = found.get(code)
        # RFC 3396 §7: several instances of one option are concatenated in order.
        found[code] = value if previous is None else previous + value
    return overload


# --- encode --------------------------------------------------------------------------------


MAX_ENCODED_OPTIONS = 1024
_ENCODED_OPTIONS: dict[tuple[tuple[int, bytes], ...], bytes] = {}
"""Option lists already laid out as TLVs: replies repeat a few lists (the engine reuses the
list of each subnet and request shape), so most replies skip the layout."""


def encode_packet(packet: DhcpPacket, *, max_size: int = MIN_MESSAGE_SIZE) -> bytes:
    """Serialise ``packet`` for a receiver that takes IP datagrams up to ``max_size`` bytes.

    ``max_size`` is the client's option 57 (it counts IP and UDP headers); values below 576 are
    raised to 576 (RFC 2132 §9.10). The result is padded to 300 bytes (RFC 1542 §3.1.1).

    Returns:
        The UDP payload.
    """
    limit = max(max_size, MIN_MESSAGE_SIZE) - IP_UDP_OVERHEAD
    options_room = limit - OPTIONS_OFFSET - 1  # keep one byte for End
    encoded = _short_options(packet.options)
    if encoded is not None and len(encoded) <= options_room:
        return _assemble(packet, packet.sname, packet.file, [encoded])
    fragments = [_option_fragments(code, value) for code, value in packet.options]
    regions, dropped = _layout(fragments, [options_room])
    overload = 0
    file_field = packet.file
    sname_field = packet.sname
    if dropped and not (packet.file and packet.sname):
        # RFC 2132 §9.3: spill into the file (then sname) field when they carry nothing else.
        rooms = [options_room - 3]
        spill: list[int] = []
        if not packet.file:
            rooms.append(FILE_SIZE - 1)
            spill.append(_OVERLOAD_FILE)
        if not packet.sname:
            rooms.append(SNAME_SIZE - 1)
            spill.append(_OVERLOAD_SNAME)
        regions, _ = _layout(fragments, rooms)
        for flag, region in zip(spill, regions[1:], strict=True):
            if not region:
                continue
            overload |= flag
            body = b"".join(region) + b"\xff"
            if flag == _OVERLOAD_FILE:
                file_field = body
            else:
                sname_field = body
        if overload:
            regions[0].insert(0, bytes((OptionCode.OVERLOAD, 1, overload)))
        else:
            regions, _ = _layout(fragments, [options_room])
    return _assemble(packet, sname_field, file_field, regions[0])


_ECHOED = frozenset({OptionCode.CLIENT_IDENTIFIER, OptionCode.RELAY_AGENT_INFORMATION})
"""Options a reply ends with that are the client's own (``ddi.dhcp.engine`` rule 4)."""


def _short_options(options: tuple[tuple[int, bytes], ...]) -> bytes | None:
    """The TLVs of ``options`` when each fits in one (the common case), else None.

    The part before the echoed options comes from ``_ENCODED_OPTIONS``: it repeats from reply
    to reply, while the echoed ones are each client's own and would only flush the cache.
    """
    cut = len(options)
    while cut and options[cut - 1][0] in _ECHOED:
        cut -= 1
    head = options if cut == len(options) else options[:cut]
    encoded = _ENCODED_OPTIONS.get(head)
    if encoded is None:
        if not all(len(value) <= 255 for _, value in head):
            return None
        encoded = b"".join([bytes((code, len(value))) + value for code, value in head])
        if len(_ENCODED_OPTIONS) >= MAX_ENCODED_OPTIONS:
            _ENCODED_OPTIONS.clear()
        _ENCODED_OPTIONS[head] = encoded
    if cut < len(options):
        tail = options[cut:]
        if not all(len(value) <= 255 for _, value in tail):
            return None
        encoded += b"".join([bytes((code, len(value))) + value for code, value in tail])
    return encoded


def _assemble(
    packet: DhcpPacket, sname_field: bytes, file_field: bytes, tlvs: list[bytes]
) -> bytes:
    if len(packet.chaddr) > 16 or len(sname_field) > SNAME_SIZE or len(file_field) > FILE_SIZE:
        raise ValueError("chaddr, sname or file is longer than its field")
    header = HEADER.pack(
        packet.op,
        packet.htype,
        packet.hlen,
        packet.hops,
        packet.xid,
        packet.secs,
        packet.flags,
        packet.ciaddr.packed,
        packet.yiaddr.packed,
        packet.siaddr.packed,
        packet.giaddr.packed,
        packet.chaddr,
        sname_field,
        file_field,
        MAGIC_COOKIE,
    )
    out = header + b"".join(tlvs) + b"\xff"
    if len(out) < BOOTP_MIN_PAYLOAD:
        out += b"\0" * (BOOTP_MIN_PAYLOAD - len(out))
    return out


def _option_fragments(code: int, value: bytes) -> list[bytes]:
    """RFC 3396 §6: a value longer than 255 bytes goes out as consecutive instances."""
    if len(value) <= 255:
        return [bytes((code, len(value))) + value]
    return [
        bytes((code, len(chunk))) + chunk
        for chunk in (value[i : i + 255] for i in range(0, len(value), 255))
    ]


def _layout(options: list[list[bytes]], rooms: list[int]) -> tuple[list[list[bytes]], int]:
    """Place each option's fragments, in order, into the regions of sizes ``rooms``, moving
    forward only (so the concatenation order is the option order). An option that does not fit
    whole is left out. Returns the fragments per region and how many options were left out."""
    regions: list[list[bytes]] = [[] for _ in rooms]
    used = [0] * len(rooms)
    dropped = 0
    index = 0
    for fragments in options:
        saved_index, saved_used = index, used[:]
        placed: list[tuple[int, bytes]] = []
        for fragment in fragments:
            while index < len(rooms) and used[index] + len(fragment) > rooms[index]:
                index += 1
            if index == len(rooms):
                break
            used[index] += len(fragment)
            placed.append((index, fragment))
        else:
            for region, fragment in placed:
                regions[region].append(fragment)
            continue
        index, used = saved_index, saved_used
        dropped += 1
    return regions, dropped
