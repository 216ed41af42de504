"""Router Advertisement and Router Solicitation messages (RFC 4861 §4.1, §4.2), as bytes.

Pure: values in, bytes out, and the one check a received Router Solicitation gets (§6.1.1).
The options a router advertisement carries: source link-layer address (§4.6.1), prefix
information (§4.6.2), MTU (§4.6.4), recursive DNS servers and the DNS search list (RFC 8106
§5.1, §5.2). Option lengths are in units of 8 octets, the header included (§4.6).

The ICMPv6 checksum covers a pseudo-header with both addresses (RFC 4443 §2.3); the kernel fills
it in on a raw ICMPv6 socket (RFC 3542 §3.1), so ``encode_advert`` leaves it zero unless it is
given the addresses (for a test, or a capture).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network

from ddi.errors import WireFormatError

ROUTER_SOLICITATION = 133
ROUTER_ADVERTISEMENT = 134
ND_HOP_LIMIT = 255
"""Hop limit of every ND message sent, and the only one accepted (§6.1.1, §6.1.2)."""
ALL_NODES = IPv6Address("ff02::1")
ALL_ROUTERS = IPv6Address("ff02::2")
MAX_ROUTER_LIFETIME = 9000
"""AdvDefaultLifetime's upper bound, seconds (§6.2.1)."""
INFINITY = 0xFFFFFFFF

OPT_SOURCE_LL = 1
OPT_PREFIX = 3
OPT_MTU = 5
OPT_RDNSS = 25
OPT_DNSSL = 31

_FLAG_MANAGED = 0x80
_FLAG_OTHER = 0x40
_FLAG_ON_LINK = 0x80
_FLAG_AUTONOMOUS = 0x40
MAX_ADVERT = 1280 - 40
"""An advertisement must fit the IPv6 minimum MTU with its header (RFC 8200 §5)."""


class NdFormatError(WireFormatError):
    """A neighbour discovery message that fails its validity checks (RFC 4861 §6.1.1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixInfo:
    prefix: IPv6Network
    on_link: bool = True
    autonomous: bool = False
    """Hosts may form addresses from it by SLAAC (RFC 4862 §5.5.3): a /64 only."""
    valid_lifetime: int = 2_592_000
    preferred_lifetime: int = 604_800


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterAdvert:
    cur_hop_limit: int = 64
    managed: bool = False
    other: bool = False
    router_lifetime: int = 0
    """Seconds as a default router; 0: not a default router (§4.2)."""
    reachable_time: int = 0
    retrans_timer: int = 0
    source_mac: bytes | None = None
    mtu: int | None = None
    prefixes: tuple[PrefixInfo, ...] = ()
    rdnss: tuple[IPv6Address, ...] = ()
    rdnss_lifetime: int = 0
    dnssl: tuple[str, ...] = ()
    dnssl_lifetime: int = 0


def _option(kind: int, body: bytes) -> bytes:
    """Type, length in 8-octet units, body (already padded to fill them)."""
    total = 2 + len(body)
    if total % 8 or total > 255 * 8:
        raise ValueError(f"option {kind}: {total} octets is not a multiple of 8 up to 2040")
    return bytes((kind, total // 8)) + body


def _prefix_option(info: PrefixInfo) -> bytes:
    flags = (_FLAG_ON_LINK if info.on_link else 0) | (_FLAG_AUTONOMOUS if info.autonomous else 0)
    return _option(
        OPT_PREFIX,
        struct.pack(
            "!BBIII16s",
            info.prefix.prefixlen,
            flags,
            info.valid_lifetime,
            info.preferred_lifetime,
            0,
            info.prefix.network_address.packed,
        ),
    )


def encode_domain(name: str) -> bytes:
    """A domain name in DNS wire form, uncompressed (RFC 8106 §5.2, RFC 1035 §3.1)."""
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) <= 63:
            raise ValueError(f"{name!r}: a label must be 1-63 octets")
        out += bytes((len(raw),)) + raw
    out += b"\0"
    if len(out) > 255:
        raise ValueError(f"{name!r}: longer than 255 octets")
    return bytes(out)


def _dnssl_option(names: tuple[str, ...], lifetime: int) -> bytes:
    encoded = b"".join(encode_domain(name) for name in names)
    encoded += b"\0" * (-(8 + len(encoded)) % 8)  # zero padding to 8 octets (§5.2)
    return _option(OPT_DNSSL, struct.pack("!HI", 0, lifetime) + encoded)


def _rdnss_option(servers: tuple[IPv6Address, ...], lifetime: int) -> bytes:
    return _option(OPT_RDNSS, struct.pack("!HI", 0, lifetime) + b"".join(s.packed for s in servers))


def encode_advert(
    advert: RouterAdvert, *, source: IPv6Address | None = None, dest: IPv6Address | None = None
) -> bytes:
    """The ICMPv6 message (no IPv6 header); the checksum only when both addresses are given.

    Raises:
        ValueError: a field out of range, or the message longer than ``MAX_ADVERT``.
    """
    if not 0 <= advert.router_lifetime <= MAX_ROUTER_LIFETIME:
        raise ValueError(f"router lifetime {advert.router_lifetime} is not 0-9000")
    flags = (_FLAG_MANAGED if advert.managed else 0) | (_FLAG_OTHER if advert.other else 0)
    message = bytearray(
        struct.pack(
            "!BBHBBHII",
            ROUTER_ADVERTISEMENT,
            0,
            0,
            advert.cur_hop_limit,
            flags,
            advert.router_lifetime,
            advert.reachable_time,
            advert.retrans_timer,
        )
    )
    if advert.source_mac is not None:
        if len(advert.source_mac) != 6:
            raise ValueError("source link-layer address: 6 octets (Ethernet)")
        message += _option(OPT_SOURCE_LL, advert.source_mac)
    if advert.mtu is not None:
        message += _option(OPT_MTU, struct.pack("!HI", 0, advert.mtu))
    for info in advert.prefixes:
        message += _prefix_option(info)
    if advert.rdnss:
        message += _rdnss_option(advert.rdnss, advert.rdnss_lifetime)
    if advert.dnssl:
        message += _dnssl_option(advert.dnssl, advert.dnssl_lifetime)
    if len(message) > MAX_ADVERT:
        raise ValueError(f"advertisement of {len(message)} octets exceeds {MAX_ADVERT}")
    if source is not None and dest is not None:
        struct.pack_into("!H", message, 2, checksum(source, dest, bytes(message)))
    return bytes(message)


def checksum(source: IPv6Address, dest: IPv6Address, message: bytes) -> int:
    """The ICMPv6 checksum of ``message`` (its checksum field zero) between two addresses."""
    pseudo = source.packed + dest.packed + struct.pack("!I3xB", len(message), 58)
    data = pseudo + message + b"\0" * (len(message) % 2)
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True, slots=True, kw_only=True)
class Solicitation:
    source_mac: bytes | None
    """The solicitor's source link-layer address option, when it sent one."""


def decode_solicit(data: bytes, *, hop_limit: int | None, unspecified_source: bool) -> Solicitation:
    """A Router Solicitation after the validity checks of RFC 4861 §6.1.1.

    ``hop_limit`` is the received packet's (from ``IPV6_HOPLIMIT``); None when the kernel did
    not say, which fails the check. The checksum was verified by the kernel.

    Raises:
        NdFormatError: the message fails a check (its text says which).
    """
    if hop_limit != ND_HOP_LIMIT:
        raise NdFormatError(f"hop limit {hop_limit}, not 255")
    if len(data) < 8:
        raise NdFormatError(f"{len(data)} octets: shorter than 8")
    if data[0] != ROUTER_SOLICITATION or data[1] != 0:
        raise NdFormatError(f"type {data[0]} code {data[1]}: not a router solicitation")
    source_mac = None
    offset = 8
    while offset < len(data):
        if len(data) - offset < 2:
            raise NdFormatError("truncated option header")
        kind, units = data[offset], data[offset + 1]
        if units == 0:
            raise NdFormatError(f"option {kind} with length 0")
        end = offset + units * 8
        if end > len(data):
            raise NdFormatError(f"option {kind} runs past the message")
        if kind == OPT_SOURCE_LL:
            if unspecified_source:
                raise NdFormatError("source link-layer option from the unspecified address")
            if source_mac is None:
                source_mac = data[offset + 2 : end]
        offset = end
    return Solicitation(source_mac=source_mac)
