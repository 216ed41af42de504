"""Shared networks: several subnets on one link (ISC dhcpd's ``shared-network``, Kea's
``shared-networks``), sans-I/O.

Rules:
* A client on the link is offered an address from the subnet the link selects first, then
  from the next member, in the order the network lists them, when that one's pools are full.
* A request for an address in any member (a renewal, an INIT-REBOOT) is judged in the member
  that holds the address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedNetwork:
    name: str
    subnets: tuple[str, ...]
    """Member subnets by name, in the order their pools are used."""
    interface: str | None = None
    relay_agents: tuple[IPv4Address, ...] = ()


def members_by_subnet(networks: Sequence[SharedNetwork]) -> Mapping[str, tuple[str, ...]]:
    """Subnet name -> the names of its network's members, itself first, then the rest in order
    (empty for a subnet in no shared network: absent from the map)."""
    out: dict[str, tuple[str, ...]] = {}
    for network in networks:
        for name in network.subnets:
            out[name] = (name, *(other for other in network.subnets if other != name))
    return out
