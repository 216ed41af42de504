"""DHCPv6 option codes and the typed values of the options ddi reads and writes (RFC 8415 §21).

Options travel as data: ``(code, value)`` pairs in the order received, the value the raw bytes.
The functions here turn the values ddi cares about into typed values and back, and refuse
(``Dhcp6FormatError``) anything whose length does not fit its definition. IA_NA, IA_PD, IAADDR
and IAPREFIX carry options of their own (RFC 8415 §21.4-21.6, §21.21-21.22): they are decoded
one level at a time, each bounded like the message's.

Pure: no I/O.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network

from ddi.errors import DhcpFormatError

Option = tuple[int, bytes]

MAX_OPTIONS = 256
"""Options one message or one IA may carry at most; past it the message is refused."""
MAX_NAMES = 32
"""Names a domain list (option 24) may carry at most."""
MAX_DUID = 128
"""RFC 8415 §11.1: a DUID is at most 128 octets (plus its type)."""


class Dhcp6FormatError(DhcpFormatError):
    """A DHCPv6 message or option that does not parse: the message is dropped and counted."""


class MessageType(enum.IntEnum):
    """RFC 8415 §7.3."""

    SOLICIT = 1
    ADVERTISE = 2
    REQUEST = 3
    CONFIRM = 4
    RENEW = 5
    REBIND = 6
    REPLY = 7
    RELEASE = 8
    DECLINE = 9
    RECONFIGURE = 10
    INFORMATION_REQUEST = 11
    RELAY_FORW = 12
    RELAY_REPL = 13


RELAY_TYPES = frozenset({MessageType.RELAY_FORW, MessageType.RELAY_REPL})


class OptionCode(enum.IntEnum):
    """The option codes ddi reads or writes (RFC 8415 §21 and the RFCs cited)."""

    CLIENTID = 1
    SERVERID = 2
    IA_NA = 3
    IA_TA = 4
    IAADDR = 5
    ORO = 6
    PREFERENCE = 7
    ELAPSED_TIME = 8
    RELAY_MSG = 9
    AUTH = 11
    UNICAST = 12
    STATUS_CODE = 13
    RAPID_COMMIT = 14
    USER_CLASS = 15
    VENDOR_CLASS = 16
    VENDOR_OPTS = 17
    INTERFACE_ID = 18
    RECONF_MSG = 19
    RECONF_ACCEPT = 20
    DNS_SERVERS = 23  # RFC 3646
    DOMAIN_LIST = 24  # RFC 3646
    IA_PD = 25
    IAPREFIX = 26
    INFORMATION_REFRESH_TIME = 32
    CLIENT_FQDN = 39  # RFC 4704
    NTP_SERVER = 56  # RFC 5908
    BOOTFILE_URL = 59  # RFC 5970
    BOOTFILE_PARAM = 60  # RFC 5970
    CLIENT_ARCH_TYPE = 61  # RFC 5970
    CLIENT_LINKLAYER_ADDR = 79  # RFC 6939


class Status(enum.IntEnum):
    """RFC 8415 §21.13."""

    SUCCESS = 0
    UNSPEC_FAIL = 1
    NO_ADDRS_AVAIL = 2
    NO_BINDING = 3
    NOT_ON_LINK = 4
    USE_MULTICAST = 5
    NO_PREFIX_AVAIL = 6


NTP_SUBOPTION_SERVER_ADDRESS = 1
"""RFC 5908 §4.1: NTP_SUBOPTION_SRV_ADDR."""
ENTERPRISE_PXE = 343
"""Intel's enterprise number, which PXE and UEFI HTTP boot clients put in option 16."""
HWTYPE_ETHERNET = 1


def decode_options(data: bytes) -> tuple[Option, ...]:
    """The ``(code, value)`` pairs of an options area (RFC 8415 §21.1), in order.

    Raises:
        Dhcp6FormatError: an option runs past the end, or more than ``MAX_OPTIONS``.
    """
    options: list[Option] = []
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < 4:
            raise Dhcp6FormatError("truncated option header")
        code, length = struct.unpack_from("!HH", data, offset)
        offset += 4
        if length > end - offset:
            raise Dhcp6FormatError(f"option {code} length {length} past the end")
        if len(options) >= MAX_OPTIONS:
            raise Dhcp6FormatError(f"more than {MAX_OPTIONS} options")
        options.append((code, data[offset : offset + length]))
        offset += length
    return tuple(options)


def encode_options(options: Iterable[Option]) -> bytes:
    """The wire form of ``options``.

    Raises:
        Dhcp6FormatError: a value longer than 65535 octets.
    """
    parts = []
    for code, value in options:
        if not 0 <= code <= 0xFFFF or len(value) > 0xFFFF:
            raise Dhcp6FormatError(f"option {code} cannot be encoded ({len(value)} octets)")
        parts.append(struct.pack("!HH", code, len(value)))
        parts.append(value)
    return b"".join(parts)


def first(options: Sequence[Option], code: int) -> bytes | None:
    """The value of the first option ``code``, or None."""
    for c, value in options:
        if c == code:
            return value
    return None


def all_of(options: Sequence[Option], code: int) -> list[bytes]:
    return [value for c, value in options if c == code]


# --- identity associations (RFC 8415 §21.4, §21.21) -----------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class IaAddress:
    """IAADDR (RFC 8415 §21.6)."""

    address: IPv6Address
    preferred: int
    valid: int
    options: tuple[Option, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class IaPrefix:
    """IAPREFIX (RFC 8415 §21.22)."""

    prefix: IPv6Network
    preferred: int
    valid: int
    options: tuple[Option, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Ia:
    """IA_NA (``code`` 3) or IA_PD (``code`` 25): the IAID, T1/T2 and the options within."""

    code: int
    iaid: int
    t1: int = 0
    t2: int = 0
    options: tuple[Option, ...] = ()

    def addresses(self) -> list[IaAddress]:
        return [decode_iaaddr(v) for v in all_of(self.options, OptionCode.IAADDR)]

    def prefixes(self) -> list[IaPrefix]:
        return [decode_iaprefix(v) for v in all_of(self.options, OptionCode.IAPREFIX)]


_IA = struct.Struct("!III")
_IAADDR = struct.Struct("!16sII")
_IAPREFIX = struct.Struct("!IIB16s")


def decode_ia(code: int, value: bytes) -> Ia:
    if len(value) < _IA.size:
        raise Dhcp6FormatError(f"option {code}: IA shorter than {_IA.size} octets")
    iaid, t1, t2 = _IA.unpack_from(value)
    return Ia(code=code, iaid=iaid, t1=t1, t2=t2, options=decode_options(value[_IA.size :]))


def encode_ia(ia: Ia) -> Option:
    return ia.code, _IA.pack(ia.iaid, ia.t1, ia.t2) + encode_options(ia.options)


def decode_iaaddr(value: bytes) -> IaAddress:
    if len(value) < _IAADDR.size:
        raise Dhcp6FormatError("IAADDR shorter than 24 octets")
    raw, preferred, valid = _IAADDR.unpack_from(value)
    return IaAddress(
        address=IPv6Address(raw),
        preferred=preferred,
        valid=valid,
        options=decode_options(value[_IAADDR.size :]),
    )


def encode_iaaddr(a: IaAddress) -> Option:
    value = _IAADDR.pack(a.address.packed, a.preferred, a.valid) + encode_options(a.options)
    return OptionCode.IAADDR, value


def decode_iaprefix(value: bytes) -> IaPrefix:
    if len(value) < _IAPREFIX.size:
        raise Dhcp6FormatError("IAPREFIX shorter than 25 octets")
    preferred, valid, length, raw = _IAPREFIX.unpack_from(value)
    if length > 128:
        raise Dhcp6FormatError(f"IAPREFIX prefix length {length}")
    # RFC 8415 §21.22: bits past the prefix length are the client's hint; ddi reads the prefix.
    prefix = IPv6Network((IPv6Address(raw), length), strict=False)
    return IaPrefix(
        prefix=prefix,
        preferred=preferred,
        valid=valid,
        options=decode_options(value[_IAPREFIX.size :]),
    )


def encode_iaprefix(p: IaPrefix) -> Option:
    value = _IAPREFIX.pack(
        p.preferred, p.valid, p.prefix.prefixlen, p.prefix.network_address.packed
    )
    return OptionCode.IAPREFIX, value + encode_options(p.options)


def status_option(status: Status, message: str = "") -> Option:
    """STATUS_CODE (RFC 8415 §21.13): the code and a UTF-8 message."""
    return OptionCode.STATUS_CODE, struct.pack("!H", status) + message.encode("utf-8")


def decode_status(value: bytes) -> tuple[int, str]:
    if len(value) < 2:
        raise Dhcp6FormatError("STATUS_CODE shorter than 2 octets")
    return int.from_bytes(value[:2], "big"), value[2:].decode("utf-8", "replace")


# --- small options -------------------------------------------------------------------------


def decode_oro(value: bytes) -> frozenset[int]:
    """ORO (RFC 8415 §21.7): the codes asked for."""
    if len(value) % 2:
        raise Dhcp6FormatError("ORO of odd length")
    return frozenset(struct.unpack(f"!{len(value) // 2}H", value))


def encode_addresses(addresses: Iterable[IPv6Address]) -> bytes:
    """Options 23 (RFC 3646 §3) and the like: addresses back to back."""
    return b"".join(a.packed for a in addresses)


def decode_addresses(value: bytes) -> tuple[IPv6Address, ...]:
    if len(value) % 16:
        raise Dhcp6FormatError("address list not a multiple of 16 octets")
    return tuple(IPv6Address(value[i : i + 16]) for i in range(0, len(value), 16))


def encode_name(name: str, *, partial: bool = False) -> bytes:
    """A domain name in RFC 1035 §3.1 label form, uncompressed (RFC 8415 §10); ``partial``
    leaves out the root label (RFC 4704 §4.2: a name the server is to complete).

    Raises:
        Dhcp6FormatError: an empty label or one longer than 63 octets.
    """
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
        if not 0 < len(raw) <= 63:
            raise Dhcp6FormatError(f"label {label!r} in {name!r}")
        out.append(len(raw))
        out += raw
    if not partial:
        out.append(0)
    if len(out) > 255:
        raise Dhcp6FormatError(f"name {name!r} longer than 255 octets")
    return bytes(out)


def decode_names(value: bytes) -> tuple[tuple[str, bool], ...]:
    """The names of option 24 or 39: ``(name, fully qualified)`` each (a name without its root
    label is partial, RFC 4704 §4.2)."""
    names: list[tuple[str, bool]] = []
    labels: list[str] = []
    offset = 0
    while offset < len(value):
        length = value[offset]
        offset += 1
        if length == 0:
            names.append((".".join(labels), True))
            labels = []
        else:
            if length > 63 or offset + length > len(value):
                raise Dhcp6FormatError("bad label in a domain name")
            labels.append(value[offset : offset + length].decode("ascii", "replace"))
            offset += length
        if len(names) > MAX_NAMES:
            raise Dhcp6FormatError(f"more than {MAX_NAMES} names")
    if labels:
        names.append((".".join(labels), False))
    return tuple(names)


def encode_domain_list(names: Iterable[str]) -> bytes:
    """Option 24 (RFC 3646 §4)."""
    return b"".join(encode_name(n) for n in names)


def ntp_server_option(addresses: Iterable[IPv6Address]) -> bytes:
    """Option 56 (RFC 5908 §4): one NTP_SUBOPTION_SRV_ADDR sub-option per server."""
    return b"".join(
        struct.pack("!HH", NTP_SUBOPTION_SERVER_ADDRESS, 16) + a.packed for a in addresses
    )


FQDN_S = 0x1
FQDN_O = 0x2
FQDN_N = 0x4


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientFqdn:
    """Option 39 (RFC 4704 §4.1)."""

    flags: int
    name: str
    """Empty when the client sent no name."""
    qualified: bool = False


def decode_client_fqdn(value: bytes) -> ClientFqdn:
    if not value:
        raise Dhcp6FormatError("empty client FQDN option")
    names = decode_names(value[1:])
    if len(names) > 1:
        raise Dhcp6FormatError("client FQDN with more than one name")
    name, qualified = names[0] if names else ("", False)
    return ClientFqdn(flags=value[0] & 0x7, name=name, qualified=qualified)


def encode_client_fqdn(fqdn: ClientFqdn) -> bytes:
    if not fqdn.name:
        return bytes((fqdn.flags,))
    return bytes((fqdn.flags,)) + encode_name(fqdn.name, partial=not fqdn.qualified)


def decode_vendor_class(value: bytes) -> tuple[int, tuple[bytes, ...]]:
    """Option 16 (RFC 8415 §21.16): the enterprise number and the vendor-class-data items,
    each a 2-octet length and its octets."""
    if len(value) < 4:
        raise Dhcp6FormatError("vendor class shorter than 4 octets")
    enterprise = int.from_bytes(value[:4], "big")
    items: list[bytes] = []
    offset = 4
    while offset < len(value):
        if offset + 2 > len(value):
            raise Dhcp6FormatError("truncated vendor class item")
        length = int.from_bytes(value[offset : offset + 2], "big")
        offset += 2
        if offset + length > len(value):
            raise Dhcp6FormatError("vendor class item past the end")
        if len(items) >= MAX_OPTIONS:
            raise Dhcp6FormatError("too many vendor class items")
        items.append(value[offset : offset + length])
        offset += length
    return enterprise, tuple(items)


def encode_vendor_class(enterprise: int, items: Iterable[bytes]) -> bytes:
    return enterprise.to_bytes(4, "big") + b"".join(len(i).to_bytes(2, "big") + i for i in items)


def decode_client_arch(value: bytes) -> tuple[int, ...]:
    """Option 61 (RFC 5970 §3.3): a list of 2-octet architecture types."""
    if not value or len(value) % 2:
        raise Dhcp6FormatError("client arch type list of odd or zero length")
    return struct.unpack(f"!{len(value) // 2}H", value)


def encode_boot_params(params: Iterable[str]) -> bytes:
    """Option 60 (RFC 5970 §3.2): each parameter a 2-octet length and its UTF-8 octets."""
    out = bytearray()
    for p in params:
        raw = p.encode("utf-8")
        out += len(raw).to_bytes(2, "big") + raw
    return bytes(out)


def decode_linklayer(value: bytes) -> tuple[int, bytes]:
    """Option 79 (RFC 6939 §4): the link-layer type and address."""
    if len(value) < 3:
        raise Dhcp6FormatError("client link-layer address shorter than 3 octets")
    return int.from_bytes(value[:2], "big"), value[2:]


# --- DUIDs (RFC 8415 §11) -------------------------------------------------------------------

DUID_LLT = 1
DUID_EN = 2
DUID_LL = 3
DUID_UUID = 4


def duid_text(raw: bytes) -> str:
    """A DUID as Kea prints it: lower-case hex octets joined by colons."""
    return raw.hex(":")


def check_duid(raw: bytes) -> bytes:
    """``raw`` when it can be a DUID (a type and 1 to 128 octets), else Dhcp6FormatError."""
    if not 3 <= len(raw) <= MAX_DUID + 2:
        raise Dhcp6FormatError(f"DUID of {len(raw)} octets")
    return raw


def mac_from_duid(raw: bytes) -> str | None:
    """The Ethernet address a DUID-LLT or DUID-LL carries (RFC 8415 §11.2, §11.4), else None."""
    if len(raw) == 14 and raw[:4] == b"\x00\x01\x00\x01":
        return raw[8:].hex(":")
    if len(raw) == 10 and raw[:4] == b"\x00\x03\x00\x01":
        return raw[4:].hex(":")
    return None


def duid_ll(mac: bytes) -> bytes:
    """DUID-LL (RFC 8415 §11.4) of an Ethernet address."""
    return struct.pack("!HH", DUID_LL, HWTYPE_ETHERNET) + mac


def duid_en(enterprise: int, identifier: bytes) -> bytes:
    """DUID-EN (RFC 8415 §11.3)."""
    return struct.pack("!HI", DUID_EN, enterprise) + identifier
