"""Address lists of the DNS service: who may recurse, who may transfer without TSIG, whose
NOTIFY answers count, and who is exempt from response-rate limiting.

Rules:
* A peer is an ``IPv4Address`` or an ``IPv6Address``. An IPv4 address mapped into IPv6
  (``::ffff:a.b.c.d``, RFC 4291 §2.5.5.2: how a dual-stack socket reports an IPv4 peer) is the
  IPv4 address, so one list of IPv4 networks covers the IPv4 and the dual-stack sockets.
* A list holds IPv4 and IPv6 networks; an address matches the networks of its own version.
* A peer whose address cannot be read matches no list. Whether a caller is trusted is its own
  flag (``ddi.dns.engine.Client.trusted``), never inferred from a missing address.
* Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

LOOPBACK: tuple[Network, ...] = (IPv4Network("127.0.0.0/8"), IPv6Network("::1/128"))


def unmapped(address: Address) -> Address:
    """``address``, with an IPv4-mapped IPv6 address turned into its IPv4 address."""
    if isinstance(address, IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
    return address


def peer_address(host: Any) -> Address | None:
    """The address of a socket peer's host (text as ``recvfrom`` gives it, possibly with an
    IPv6 zone ``%eth0``, or packed bytes), unmapped; None when it is not an address."""
    try:
        if isinstance(host, str):
            host = host.partition("%")[0]
        return unmapped(ip_address(host))
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class Acl:
    """A list of networks, split by IP version (an address is only compared with its own)."""

    v4: tuple[IPv4Network, ...] = ()
    v6: tuple[IPv6Network, ...] = ()

    @classmethod
    def of(cls, networks: Iterable[Network]) -> Acl:
        nets = tuple(networks)
        return cls(
            v4=tuple(n for n in nets if isinstance(n, IPv4Network)),
            v6=tuple(n for n in nets if isinstance(n, IPv6Network)),
        )

    def __contains__(self, address: object) -> bool:
        if isinstance(address, IPv4Address):
            return any(address in net for net in self.v4)
        if isinstance(address, IPv6Address):
            mapped = address.ipv4_mapped
            if mapped is not None:
                return any(mapped in net for net in self.v4)
            return any(address in net for net in self.v6)
        return False

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    @property
    def networks(self) -> tuple[Network, ...]:
        return (*self.v4, *self.v6)


NOBODY = Acl()
"""The empty list."""
