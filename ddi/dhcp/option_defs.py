"""Option definitions by code and type (as Kea's ``option-def``), and values encoded once, sans-I/O.

A definition says how an option's value is written: ``ip-address``, ``uint8/16/32``,
``int8/16/32``, ``boolean``, ``string``, ``fqdn``, ``fqdn-list`` (RFC 1035 §4.1.4 compression, as
RFC 3397 option 119 requires), ``binary`` (hex), ``empty`` and ``record`` (fields of those types
one after the other); ``array = true`` repeats the type. Values are encoded when the
configuration (or a reservation) is read, so the reply path only copies bytes.

Rules:
* The codes the server sets itself (``MANAGED_CODES``) cannot be defined or given a value: their
  value comes from the subnet, the lease or the protocol. Options 43 and 66 may be given; when a
  boot profile answers a netbooting client, the profile's 43/66 replace them.
* Nothing here knows the address family beyond ``ip-address`` (4 bytes here); a DHCPv6 table of
  definitions can reuse the types.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address

from ddi.numbers import decimal

MAX_VALUE_BYTES = 1024
"""An option's encoded value at most (RFC 3396 splits it into 255-byte instances; a reply has
at most the client's maximum message size, 576 bytes unless it says more)."""
MAX_DEFS = 256


class OptionType(enum.StrEnum):
    IP_ADDRESS = "ip-address"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    BOOLEAN = "boolean"
    STRING = "string"
    FQDN = "fqdn"
    FQDN_LIST = "fqdn-list"
    BINARY = "binary"
    EMPTY = "empty"
    RECORD = "record"


_ALIASES = {
    "ip-addresses": (OptionType.IP_ADDRESS, True),
    "ipv4-address": (OptionType.IP_ADDRESS, False),
}
"""Type names accepted besides the enum's: ``ip-addresses`` is an array of ``ip-address``."""

_INTS: Mapping[OptionType, tuple[str, int, int]] = {
    OptionType.UINT8: ("!B", 0, 0xFF),
    OptionType.UINT16: ("!H", 0, 0xFFFF),
    OptionType.UINT32: ("!I", 0, 0xFFFF_FFFF),
    OptionType.INT8: ("!b", -0x80, 0x7F),
    OptionType.INT16: ("!h", -0x8000, 0x7FFF),
    OptionType.INT32: ("!i", -0x8000_0000, 0x7FFF_FFFF),
}

MANAGED_CODES = frozenset(
    {0, 1, 3, 6, 12, 15, 28, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 67, 81, 82, 121, 255}
)
"""Codes the server writes itself (RFC 2132 header options, the subnet's fixed list, the lease's
times, the echoed 61/82, the FQDN of RFC 4702, netboot's 60/67): a definition or value for one
is refused at load, naming it."""


class OptionError(ValueError):
    """A definition or value that cannot be used; the text says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionDef:
    name: str
    code: int
    type: OptionType
    array: bool = False
    record_types: tuple[OptionType, ...] = ()
    """The fields of a ``record``, in order."""


def _d(name: str, code: int, type_: OptionType, array: bool = False) -> OptionDef:
    return OptionDef(name=name, code=code, type=type_, array=array)


_IP, _STR = OptionType.IP_ADDRESS, OptionType.STRING
STANDARD_DEFS: tuple[OptionDef, ...] = (
    _d("time-offset", 2, OptionType.INT32),
    _d("time-servers", 4, _IP, True),
    _d("name-servers", 5, _IP, True),
    _d("log-servers", 7, _IP, True),
    _d("lpr-servers", 9, _IP, True),
    _d("interface-mtu", 26, OptionType.UINT16),
    _d("ntp-servers", 42, _IP, True),
    _d("vendor-encapsulated-options", 43, OptionType.BINARY),
    _d("netbios-name-servers", 44, _IP, True),
    _d("netbios-node-type", 46, OptionType.UINT8),
    _d("netbios-scope", 47, _STR),
    _d("tftp-server-name", 66, _STR),
    _d("smtp-server", 69, _IP, True),
    _d("pop-server", 70, _IP, True),
    _d("www-server", 72, _IP, True),
    _d("pcode", 100, _STR),
    _d("tcode", 101, _STR),
    _d("v4-captive-portal", 114, _STR),  # RFC 8910
    _d("domain-search", 119, OptionType.FQDN_LIST),  # RFC 3397
    _d("tftp-server-address", 150, _IP, True),  # Cisco IP phones (RFC 5859)
    _d("wpad", 252, _STR),
)
"""Definitions known without configuration (names as Kea and dhclient spell them)."""


def parse_type(text: str) -> tuple[OptionType, bool]:
    """A type name and whether it implies an array; raises OptionError for an unknown one."""
    if text in _ALIASES:
        return _ALIASES[text]
    try:
        return OptionType(text), False
    except ValueError:
        known = ", ".join([*(t.value for t in OptionType), *_ALIASES])
        raise OptionError(f"unknown type {text!r} (one of {known})") from None


def check_definable(code: int) -> None:
    if not 1 <= code <= 254:
        raise OptionError(f"code {code} is not an option code (1-254)")
    if code in MANAGED_CODES:
        raise OptionError(f"code {code} is set by the server itself and cannot be defined")


class OptionDefs:
    """The definitions in force: the standard ones plus the configuration's, by name and code."""

    __slots__ = ("_by_code", "_by_name")

    def __init__(self, extra: Sequence[OptionDef] = ()) -> None:
        self._by_name: dict[str, OptionDef] = {d.name: d for d in STANDARD_DEFS}
        self._by_code: dict[int, OptionDef] = {d.code: d for d in STANDARD_DEFS}
        for d in extra:
            check_definable(d.code)
            # A configured definition replaces the standard one of its code (Kea allows the
            # same for its standard options' vendor spaces only; here it lets a site redefine
            # 43 as a record, say).
            old = self._by_code.get(d.code)
            if old is not None:
                self._by_name.pop(old.name, None)
            if d.name in self._by_name and self._by_name[d.name].code != d.code:
                raise OptionError(f"name {d.name!r} is already option {self._by_name[d.name].code}")
            self._by_name[d.name] = d
            self._by_code[d.code] = d

    def lookup(self, key: str | int) -> OptionDef:
        """By name, or by code (``"150"`` or ``150``); raises OptionError naming the key."""
        if isinstance(key, int) or key.isdigit():
            code = decimal(key, max_digits=3) if isinstance(key, str) else key
            if code is None:
                raise OptionError(f"{key!r} is not an option code")
            check_definable(code)
            found = self._by_code.get(code)
            if found is None:
                raise OptionError(f"option {code} has no definition ([[dhcp.option_defs]])")
            return found
        found = self._by_name.get(key)
        if found is None:
            raise OptionError(f"no option is named {key!r}")
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionValue:
    """An option ready to send: its code, its encoded value, and whether it goes to clients
    that did not ask for it (option 55)."""

    code: int
    data: bytes
    always_send: bool = False
    name: str = ""

    def to_image(self) -> dict[str, object]:
        image: dict[str, object] = {"code": self.code, "data": self.data.hex()}
        if self.name:
            image["name"] = self.name
        if self.always_send:
            image["always_send"] = True
        return image

    @classmethod
    def from_image(cls, image: Mapping[str, object]) -> OptionValue:
        code, data = image["code"], image["data"]
        if not isinstance(code, int) or not isinstance(data, str):
            raise OptionError("an option image needs an integer code and hex data")
        name = image.get("name", "")
        return cls(
            code=code,
            data=bytes.fromhex(data),
            always_send=bool(image.get("always_send", False)),
            name=name if isinstance(name, str) else "",
        )


def make_value(
    defs: OptionDefs, key: str | int, value: object, *, always_send: bool = False
) -> OptionValue:
    """The option ``key`` (a name or code) with ``value`` encoded by its definition."""
    d = defs.lookup(key)
    return OptionValue(code=d.code, data=encode(d, value), always_send=always_send, name=d.name)


def encode_sub_options(items: Sequence[tuple[int, OptionType, bool, object]]) -> bytes:
    """Sub-options (code, type, array, value) as RFC 2132 §8.4 lays out vendor-specific
    information: code, length, data, one after the other (Kea's encapsulated option spaces)."""
    out = bytearray()
    for code, type_, array, value in items:
        if not 1 <= code <= 254:
            raise OptionError(f"sub-option code {code} is not 1-254")
        data = encode(OptionDef(name=str(code), code=code, type=type_, array=array), value)
        if len(data) > 255:
            raise OptionError(f"sub-option {code} is {len(data)} bytes, more than 255")
        out += bytes((code, len(data))) + data
    if len(out) > MAX_VALUE_BYTES:
        raise OptionError(f"{len(out)} bytes encoded, more than {MAX_VALUE_BYTES}")
    return bytes(out)


# --- encoding ------------------------------------------------------------------------------


def encode(d: OptionDef, value: object) -> bytes:
    """``value`` (TOML-native, or the text a CLI flag gives) as ``d`` says to write it.

    Text for an array or record is comma-separated. Raises OptionError saying why."""
    if d.type is OptionType.EMPTY:
        if value not in ("", None, True):
            raise OptionError("an 'empty' option takes no value")
        return b""
    if d.type is OptionType.FQDN_LIST:
        data = encode_fqdn_list(_items(value))
    elif d.type is OptionType.RECORD:
        items = _items(value)
        if len(items) != len(d.record_types):
            raise OptionError(f"a record of {len(d.record_types)} fields, got {len(items)} values")
        data = b"".join(_scalar(t, v) for t, v in zip(d.record_types, items, strict=True))
    elif d.array:
        items = _items(value)
        if not items:
            raise OptionError("an array option needs at least one value")
        data = b"".join(_scalar(d.type, v) for v in items)
    else:
        data = _scalar(d.type, value)
    if len(data) > MAX_VALUE_BYTES:
        raise OptionError(f"{len(data)} bytes encoded, more than {MAX_VALUE_BYTES}")
    return data


def _items(value: object) -> list[object]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _scalar(t: OptionType, value: object) -> bytes:
    if t in _INTS:
        fmt, lo, hi = _INTS[t]
        if isinstance(value, bool):
            raise OptionError(f"{t.value} needs an integer, not a boolean")
        if isinstance(value, str):
            text = value.strip()
            magnitude = decimal(text.removeprefix("-"), max_digits=10)
            if magnitude is None:
                raise OptionError(f"{value[:40]!r} is not a {t.value} ({lo}-{hi})")
            number = -magnitude if text.startswith("-") else magnitude
        elif isinstance(value, int):
            number = value
        else:
            raise OptionError(f"{t.value} needs an integer")
        if not lo <= number <= hi:
            raise OptionError(f"{number} is outside {t.value} ({lo}-{hi})")
        return struct.pack(fmt, number)
    if t is OptionType.IP_ADDRESS:
        if not isinstance(value, str):
            raise OptionError("an ip-address needs a dotted-quad string")
        try:
            return IPv4Address(value.strip()).packed
        except AddressValueError:
            raise OptionError(f"{value[:40]!r} is not an IPv4 address") from None
    if t is OptionType.BOOLEAN:
        if isinstance(value, bool):
            return b"\x01" if value else b"\x00"
        if value in ("true", "1", "on", "yes"):
            return b"\x01"
        if value in ("false", "0", "off", "no"):
            return b"\x00"
        raise OptionError(f"{str(value)[:40]!r} is not a boolean (true or false)")
    if t is OptionType.STRING:
        if not isinstance(value, str) or not value:
            raise OptionError("a string option needs non-empty text")
        try:
            return value.encode("ascii")  # RFC 2132 §2: NVT ASCII
        except UnicodeEncodeError:
            raise OptionError(f"{value[:40]!r} is not ASCII text") from None
    if t is OptionType.FQDN:
        return encode_fqdn_list([value])
    if t is OptionType.BINARY:
        if not isinstance(value, str):
            raise OptionError("a binary option needs hex text")
        text = value.strip().replace(":", "").replace(" ", "")
        if text.startswith(("0x", "0X")):
            text = text[2:]
        if len(text) > 2 * MAX_VALUE_BYTES:
            raise OptionError(f"more than {MAX_VALUE_BYTES} bytes of hex")
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise OptionError(f"{value[:40]!r} is not hex") from None
    raise OptionError(f"type {t.value} cannot be a field")


def _labels(name: object) -> tuple[bytes, ...]:
    if not isinstance(name, str):
        raise OptionError("a domain name needs text")
    text = name.strip().rstrip(".").lower()
    if not text:
        raise OptionError("an empty domain name")
    labels = tuple(label.encode("ascii", "replace") for label in text.split("."))
    for label in labels:
        if not 1 <= len(label) <= 63:
            raise OptionError(f"{name[:80]!r}: a label must be 1-63 characters")
        if not all(c in b"abcdefghijklmnopqrstuvwxyz0123456789-_" for c in label):
            raise OptionError(f"{name[:80]!r}: letters, digits, '-' and '_' only")
    if sum(len(label) + 1 for label in labels) + 1 > 255:
        raise OptionError(f"{name[:80]!r} is longer than 255 bytes")
    return labels


def encode_fqdn_list(names: Sequence[object]) -> bytes:
    """RFC 3397 §2: the names in DNS wire form, compressed as RFC 1035 §4.1.4 describes, with
    offsets from the start of the option's value (as if the instances were concatenated)."""
    if not names:
        raise OptionError("a domain list needs at least one name")
    out = bytearray()
    suffixes: dict[tuple[bytes, ...], int] = {}
    for name in names:
        labels = _labels(name)
        for i in range(len(labels)):
            tail = labels[i:]
            at = suffixes.get(tail)
            if at is not None:
                out += struct.pack("!H", 0xC000 | at)
                break
            if len(out) < 0x4000:  # a pointer has 14 bits
                suffixes[tail] = len(out)
            out.append(len(labels[i]))
            out += labels[i]
        else:
            out.append(0)
    return bytes(out)
