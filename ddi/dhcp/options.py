"""DHCPv4 wire codes and per-option value codecs (RFC 2132, 3046, 3442, 4578, 4702).

Rules:
* Known codes are ``IntEnum`` members; the ``*_from_int`` converters return the plain ``int``
  for anything else, so an unknown message type, option or architecture never crashes (R8).
* ``decode_*`` helpers take an option's raw value and raise only ``DhcpFormatError``;
  ``encode_*`` helpers take values the engine built and return bytes.
* Nothing here allocates addresses, reads the clock or does I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Network

from ddi.errors import DhcpFormatError


class MessageType(IntEnum):
    """Option 53 values (RFC 2132 §9.6)."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class OptionCode(IntEnum):
    """The option codes ddi reads or writes (RFC 2132 unless noted)."""

    PAD = 0
    SUBNET_MASK = 1
    TIME_OFFSET = 2
    ROUTER = 3
    DOMAIN_NAME_SERVER = 6
    HOST_NAME = 12
    DOMAIN_NAME = 15
    INTERFACE_MTU = 26
    BROADCAST_ADDRESS = 28
    NTP_SERVERS = 42
    VENDOR_SPECIFIC = 43
    REQUESTED_ADDRESS = 50
    LEASE_TIME = 51
    OVERLOAD = 52
    MESSAGE_TYPE = 53
    SERVER_IDENTIFIER = 54
    PARAMETER_REQUEST_LIST = 55
    MESSAGE = 56
    MAX_MESSAGE_SIZE = 57
    RENEWAL_TIME = 58
    REBINDING_TIME = 59
    VENDOR_CLASS_IDENTIFIER = 60
    CLIENT_IDENTIFIER = 61
    TFTP_SERVER_NAME = 66
    BOOTFILE_NAME = 67
    USER_CLASS = 77
    CLIENT_FQDN = 81  # RFC 4702
    RELAY_AGENT_INFORMATION = 82  # RFC 3046
    CLIENT_ARCH = 93  # RFC 4578
    CLIENT_NDI = 94  # RFC 4578
    CLIENT_UUID = 97  # RFC 4578
    DOMAIN_SEARCH = 119  # RFC 3397
    CLASSLESS_STATIC_ROUTE = 121  # RFC 3442
    IPXE_ENCAPSULATED = 175
    END = 255


class RelayAgentSubOption(IntEnum):
    """Option 82 sub-options (RFC 3046 §2.0, RFC 3527, RFC 5107, RFC 8357)."""

    CIRCUIT_ID = 1
    REMOTE_ID = 2
    LINK_SELECTION = 5
    SUBSCRIBER_ID = 6
    SERVER_ID_OVERRIDE = 11
    RELAY_SOURCE_PORT = 19  # RFC 8357


class ClientArch(IntEnum):
    """Option 93 values (RFC 4578 §2.1 and the IANA processor-architecture registry)."""

    BIOS = 0
    EFI_IA32 = 6
    EFI_BC = 7
    EFI_X86_64 = 9
    EFI_ARM64 = 11
    EFI_X86_64_HTTP = 16
    EFI_ARM64_HTTP = 19


_MESSAGE_TYPES: dict[int, MessageType] = {m.value: m for m in MessageType}
_OPTION_CODES: dict[int, OptionCode] = {c.value: c for c in OptionCode}
"""Lookups by value without calling the enum (``MessageType(v)`` costs a microsecond, a dict
hit a tenth of that; this runs for every packet)."""


def message_type_from_int(value: int) -> MessageType | int:
    return _MESSAGE_TYPES.get(value, value)


def option_code_from_int(value: int) -> OptionCode | int:
    return _OPTION_CODES.get(value, value)


def client_arch_from_int(value: int) -> ClientArch | int:
    try:
        return ClientArch(value)
    except ValueError:
        return value


_U8 = struct.Struct("!B")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


# --- scalar values -------------------------------------------------------------------------


def decode_u8(value: bytes) -> int:
    if len(value) != 1:
        raise DhcpFormatError(f"expected 1 byte, got {len(value)}")
    return value[0]


def decode_u16(value: bytes) -> int:
    if len(value) != 2:
        raise DhcpFormatError(f"expected 2 bytes, got {len(value)}")
    result: int = _U16.unpack(value)[0]
    return result


def decode_u32(value: bytes) -> int:
    if len(value) != 4:
        raise DhcpFormatError(f"expected 4 bytes, got {len(value)}")
    result: int = _U32.unpack(value)[0]
    return result


def encode_u8(value: int) -> bytes:
    return _U8.pack(value)


def encode_u16(value: int) -> bytes:
    return _U16.pack(value)


def encode_u32(value: int) -> bytes:
    return _U32.pack(value)


def decode_ip(value: bytes) -> IPv4Address:
    if len(value) != 4:
        raise DhcpFormatError(f"expected an IPv4 address (4 bytes), got {len(value)}")
    return IPv4Address(value)


def decode_ip_list(value: bytes) -> tuple[IPv4Address, ...]:
    if not value or len(value) % 4:
        raise DhcpFormatError(f"expected a list of IPv4 addresses, got {len(value)} bytes")
    return tuple(IPv4Address(value[i : i + 4]) for i in range(0, len(value), 4))


def encode_ip_list(addresses: Iterable[IPv4Address]) -> bytes:
    return b"".join(a.packed for a in addresses)


def decode_text(value: bytes) -> str:
    """NVT ASCII text (RFC 2132 §2): a trailing NUL is tolerated, non-ASCII is an error."""
    text = value.rstrip(b"\0")
    try:
        return text.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DhcpFormatError(f"non-ASCII text: {exc}") from None


# --- option 55: parameter request list ----------------------------------------------------


def decode_parameter_request_list(value: bytes) -> tuple[int, ...]:
    """RFC 2132 §9.8: a list of option codes, in the client's order of preference."""
    return tuple(value)


# --- option 61: client identifier ---------------------------------------------------------


def format_hex(value: bytes) -> str:
    """The normalised lower-case colon hex form used for MACs, client-ids and circuit-ids."""
    return value.hex(":")


# --- option 82: relay agent information ----------------------------------------------------


def decode_relay_agent_information(value: bytes) -> tuple[tuple[int, bytes], ...]:
    """RFC 3046 §2.0: sub-options, kept raw and in the order the relay sent them.

    Raises:
        DhcpFormatError: a sub-option's length runs past the option.
    """
    result: list[tuple[int, bytes]] = []
    pos = 0
    end = len(value)
    while pos < end:
        if end - pos < 2:
            raise DhcpFormatError(f"option 82 sub-option header truncated at offset {pos}")
        code = value[pos]
        length = value[pos + 1]
        if length > end - pos - 2:
            raise DhcpFormatError(
                f"option 82 sub-option {code} wants {length} bytes, {end - pos - 2} left"
            )
        result.append((code, value[pos + 2 : pos + 2 + length]))
        pos += 2 + length
    return tuple(result)


def encode_relay_agent_information(sub_options: Sequence[tuple[int, bytes]]) -> bytes:
    return b"".join(bytes((code, len(data))) + data for code, data in sub_options)


# --- option 81: client FQDN ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientFqdn:
    """RFC 4702 §2: flags and the name, decoded to dotted text without a trailing dot."""

    flags: int
    name: str

    FLAG_S = 0x01
    FLAG_O = 0x02
    FLAG_E = 0x04
    FLAG_N = 0x08


def decode_client_fqdn(value: bytes) -> ClientFqdn:
    """RFC 4702 §2.1: E=1 means canonical wire format, else (deprecated) ASCII.

    Raises:
        DhcpFormatError: shorter than 3 bytes, or a malformed name.
    """
    if len(value) < 3:
        raise DhcpFormatError(f"option 81 needs at least 3 bytes, got {len(value)}")
    flags = value[0]
    raw = value[3:]
    if flags & ClientFqdn.FLAG_E:
        labels: list[str] = []
        pos = 0
        while pos < len(raw):
            length = raw[pos]
            if length == 0:
                break
            if length > 63 or length > len(raw) - pos - 1:
                raise DhcpFormatError(f"option 81 label at offset {pos} is malformed")
            labels.append(decode_text(raw[pos + 1 : pos + 1 + length]))
            pos += 1 + length
        name = ".".join(labels)
    else:
        name = decode_text(raw)
    return ClientFqdn(flags=flags, name=name.rstrip("."))


def encode_client_fqdn(fqdn: ClientFqdn) -> bytes:
    """RFC 4702 §2: RCODE1/RCODE2 are 255 from a server (§4)."""
    if fqdn.flags & ClientFqdn.FLAG_E:
        wire = b"".join(
            bytes((len(label),)) + label.encode("ascii") for label in fqdn.name.split(".") if label
        )
        name = wire + b"\0"
    else:
        name = fqdn.name.encode("ascii")
    return bytes((fqdn.flags, 255, 255)) + name


# --- option 93: client system architecture ---------------------------------------------------


def decode_client_arch(value: bytes) -> tuple[ClientArch | int, ...]:
    """RFC 4578 §2.1: one or more 16-bit architecture types, in preference order."""
    if not value or len(value) % 2:
        raise DhcpFormatError(f"option 93 must be a list of 16-bit values, got {len(value)} bytes")
    return tuple(
        client_arch_from_int(_U16.unpack_from(value, i)[0]) for i in range(0, len(value), 2)
    )


# --- option 77: user class -------------------------------------------------------------------


def decode_user_class(value: bytes) -> tuple[bytes, ...]:
    """RFC 3004 §2: length-prefixed class names. Many clients (iPXE) send one bare string
    instead, so anything that does not parse as RFC 3004 is returned as a single class."""
    classes: list[bytes] = []
    pos = 0
    while pos < len(value):
        length = value[pos]
        if length == 0 or length > len(value) - pos - 1:
            return (value,)
        classes.append(value[pos + 1 : pos + 1 + length])
        pos += 1 + length
    return tuple(classes)


# --- option 121: classless static routes ---------------------------------------------------


def encode_classless_routes(routes: Iterable[tuple[IPv4Network, IPv4Address]]) -> bytes:
    """RFC 3442 §3: width, the significant octets of the destination, then the router."""
    out = bytearray()
    for destination, gateway in routes:
        width = destination.prefixlen
        significant = (width + 7) // 8
        out.append(width)
        out += destination.network_address.packed[:significant]
        out += gateway.packed
    return bytes(out)


def decode_classless_routes(value: bytes) -> tuple[tuple[IPv4Network, IPv4Address], ...]:
    """RFC 3442 §3; raises DhcpFormatError on a truncated or impossible descriptor."""
    routes: list[tuple[IPv4Network, IPv4Address]] = []
    pos = 0
    while pos < len(value):
        width = value[pos]
        if width > 32:
            raise DhcpFormatError(f"option 121 prefix width {width} at offset {pos}")
        significant = (width + 7) // 8
        if pos + 1 + significant + 4 > len(value):
            raise DhcpFormatError(f"option 121 route at offset {pos} is truncated")
        prefix = value[pos + 1 : pos + 1 + significant] + b"\0" * (4 - significant)
        gateway = value[pos + 1 + significant : pos + 5 + significant]
        try:
            destination = IPv4Network((IPv4Address(prefix), width))
        except ValueError:
            raise DhcpFormatError(f"option 121 route at offset {pos} has host bits") from None
        routes.append((destination, IPv4Address(gateway)))
        pos += 5 + significant
    return tuple(routes)
