"""The ``ip6.arpa`` side of the derived zones (pure): which reverse zones cover an IPv6 subnet,
and the PTR owner name of an IPv6 address and back.

Zones sit on nibble boundaries (RFC 3596 §2.5: one label per 4 bits). Each IPv6 subnet gets
the one zone at the nibble boundary at or above its prefix length: a /64 or a /48 is exactly
its zone, a /62 is served from its /60 zone, as a /25 is served from its /24 on the IPv4 side
(BIND's and Kea's DDNS documentation set up reverse zones the same way). A /52 is then one
zone, not sixteen /56 ones: fewer zones for the secondaries, and no zone for space the site
does not serve.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

__all__ = ["SUFFIX", "ip_of_reverse6", "reverse_name6", "reverse_network6", "reverse_origin6"]

SUFFIX = ".ip6.arpa"
_HEX = frozenset("0123456789abcdef")


def reverse_name6(ip: IPv6Address) -> str:
    """``2001:db8::1`` → ``1.0.0. … .8.b.d.0.1.0.0.2.ip6.arpa`` (32 nibble labels)."""
    return ip.reverse_pointer


def reverse_network6(cidr: IPv6Network) -> IPv6Network:
    """The nibble-aligned network whose reverse zone covers ``cidr``."""
    return cidr.supernet(new_prefix=cidr.prefixlen // 4 * 4)


def reverse_origin6(net: IPv6Network) -> str:
    """The ``ip6.arpa`` origin of a nibble-aligned ``net`` (``ip6.arpa`` itself for ::/0)."""
    nibbles = net.network_address.exploded.replace(":", "")[: net.prefixlen // 4]
    return ".".join([*reversed(nibbles), "ip6.arpa"])


def ip_of_reverse6(name: str) -> IPv6Address | None:
    """The address whose PTR owner name is ``name`` (absolute, lower case), or None when it
    is not 32 single-hex-digit labels under ``ip6.arpa``."""
    if not name.endswith(SUFFIX) or len(name) != 64 + len(SUFFIX) - 1:
        return None
    labels = name[: -len(SUFFIX)].split(".")
    if len(labels) != 32 or any(len(x) != 1 or x not in _HEX for x in labels):
        return None
    return IPv6Address(int("".join(reversed(labels)), 16))
