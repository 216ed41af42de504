"""Validation and normalisation of the IPv6 parts of the IPAM (pure): DUIDs, addresses, and
which IPv6 subnet holds an address.

The same rules as :mod:`ddi.ipam.validate`: every ``parse_*`` returns the one normalised form or
raises :class:`~ddi.errors.Invalid` naming the field, the value and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from ipaddress import IPv6Address

from ddi.errors import Invalid
from ddi.ipam.models6 import Subnet6

__all__ = [
    "DUID_MAX_BYTES",
    "check_host_address6",
    "duid_mac",
    "host_address6_problem",
    "parse_duid",
    "parse_ipv6",
    "subnet6_for",
]

DUID_MAX_BYTES = 130
"""RFC 8415 §11.1: a DUID is at most 128 octets, not counting its 2-octet type code."""
_DUID_HEX = re.compile(r"^[0-9a-f]{1,2}(?::[0-9a-f]{1,2})+$|^(?:[0-9a-f]{2})+$")


def parse_duid(raw: str) -> str:
    """Normalise a DHCPv6 DUID given as hex bytes, with or without colons (``00:01:00:01:…``,
    ``000100012b…``; Kea's and ISC's forms), to lower-case colon-separated hex.

    Raises:
        Invalid: not hex bytes, shorter than a type code and one octet, or longer than
            RFC 8415 §11.1 allows.
    """
    text = raw.strip().lower()
    if len(text) > 3 * DUID_MAX_BYTES or not _DUID_HEX.match(text):
        raise Invalid("duid", raw, "not a DUID (hex bytes, e.g. 00:03:00:01:52:54:00:00:00:01)")
    data = bytes(int(part, 16) for part in text.split(":")) if ":" in text else bytes.fromhex(text)
    if len(data) < 3:
        raise Invalid("duid", raw, "too short: a DUID is a 2-octet type and at least one octet")
    if len(data) > DUID_MAX_BYTES:
        raise Invalid("duid", raw, f"longer than {DUID_MAX_BYTES} octets (RFC 8415 §11.1)")
    return data.hex(":")


_ETHERNET = 1
"""ARP hardware type 1 (Ethernet), the link-layer type of a DUID-LLT or DUID-LL."""


def duid_mac(duid: str) -> str | None:
    """The MAC a DUID-LLT (type 1) or DUID-LL (type 3) of an Ethernet interface carries
    (RFC 8415 §11.2, §11.4), in the IPAM's form, or None for other DUIDs. ``duid`` is
    normalised (:func:`parse_duid`)."""
    data = bytes.fromhex(duid.replace(":", ""))
    kind = int.from_bytes(data[:2], "big")
    hardware = int.from_bytes(data[2:4], "big")
    offset = {1: 8, 3: 4}.get(kind)
    if offset is None or hardware != _ETHERNET or len(data) != offset + 6:
        return None
    return data[offset:].hex(":")


def parse_ipv6(raw: str | IPv6Address, *, field: str = "ip6") -> IPv6Address:
    """Return ``raw`` as an IPv6 address a host may hold: unicast, not link-local, not
    IPv4-mapped. Raises Invalid otherwise."""
    if isinstance(raw, IPv6Address):
        ip = raw
    else:
        text = str(raw).strip()
        if len(text) > 45:
            raise Invalid(field, text[:64], "not an IPv6 address")
        try:
            ip = IPv6Address(text)
        except ValueError:
            raise Invalid(field, text, "not an IPv6 address") from None
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback:
        raise Invalid(field, str(ip), "not a unicast address a host can hold")
    if ip.is_link_local:
        raise Invalid(field, str(ip), "a link-local address is the client's own choice")
    if ip.ipv4_mapped is not None:
        raise Invalid(field, str(ip), "an IPv4-mapped address; give the IPv4 address as --ip")
    return ip


def subnet6_for(ip: IPv6Address, subnets: Iterable[Subnet6]) -> Subnet6 | None:
    """The most specific IPv6 subnet whose CIDR holds ``ip``, or None."""
    best: Subnet6 | None = None
    for subnet in subnets:
        if ip in subnet.cidr and (best is None or subnet.cidr.prefixlen > best.cidr.prefixlen):
            best = subnet
    return best


def host_address6_problem(ip: IPv6Address, subnet: Subnet6) -> str | None:
    """Why ``ip`` cannot be a host's address in ``subnet``, or None when it can.

    The subnet-router anycast address (all interface-identifier bits zero, RFC 4291 §2.6.1)
    belongs to the routers, except on a /127 (RFC 6164) or /128.
    """
    if ip not in subnet.cidr:
        return f"outside subnet {subnet.name} ({subnet.cidr})"
    if subnet.cidr.prefixlen < 127 and ip == subnet.cidr.network_address:
        return f"the subnet-router anycast address of {subnet.name} ({subnet.cidr})"
    return None


def check_host_address6(ip: IPv6Address, subnets: Sequence[Subnet6]) -> Subnet6:
    """The IPv6 subnet in which ``ip`` may be a reservation's address.

    Raises:
        Invalid: ``ip`` is outside every IPv6 subnet, or is a subnet-router anycast address.
    """
    subnet = subnet6_for(ip, subnets)
    if subnet is None:
        served = ", ".join(f"{s.name} {s.cidr}" for s in subnets) or "none"
        raise Invalid("ip6", str(ip), f"outside every IPv6 subnet the site serves ({served})")
    problem = host_address6_problem(ip, subnet)
    if problem is not None:
        raise Invalid("ip6", str(ip), f"is {problem}")
    return subnet
