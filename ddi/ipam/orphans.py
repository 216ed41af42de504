"""What a new set of subnets would leave behind: reservations outside every subnet and active
leases whose subnet is gone or no longer holds their address. A reload that would orphan any
is refused unless forced (``ddi reload --force``), naming them.

Pure: the subnets, hosts and leases come in as values, and time as ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ddi.ipam.models import Host, Lease, Subnet
from ddi.ipam.models6 import Lease6, Lease6Kind, Subnet6
from ddi.ipam.validate import host_address_problem

__all__ = ["MAX_NAMED", "orphaned", "summary"]

MAX_NAMED = 20
"""Orphans a refusal names one by one; the rest are counted."""


def orphaned(
    subnets: Sequence[Subnet],
    hosts: Iterable[Host],
    leases: Iterable[Lease],
    now: float,
    *,
    subnets6: Sequence[Subnet6] = (),
    leases6: Iterable[Lease6] = (),
) -> list[str]:
    """Each reservation and active lease the new ``subnets`` and ``subnets6`` would orphan,
    described for an operator (``host web1 198.18.0.10``, ``lease 198.18.0.150 of
    52:54:00:00:00:10``, ``lease6 pd 2001:db8:100::/56 of DUID``), IPv4 first, by address."""
    found: list[tuple[int, int, str]] = []
    for host in hosts:
        if host.ip is not None and all(
            host_address_problem(host.ip, s) is not None for s in subnets
        ):
            found.append((4, int(host.ip), f"host {host.hostname} {host.ip}"))
        if host.ip6 is not None and not any(host.ip6 in s.cidr for s in subnets6):
            found.append((6, int(host.ip6), f"host {host.hostname} {host.ip6}"))
    by_name = {s.name: s for s in subnets}
    for lease in leases:
        if not lease.active(now):
            continue
        subnet = by_name.get(lease.subnet)
        if subnet is None or lease.ip not in subnet.cidr:
            client = lease.client_id or lease.mac or lease.circuit_id or "an unknown client"
            found.append((4, int(lease.ip), f"lease {lease.ip} of {client}"))
    by_name6 = {s.name: s for s in subnets6}
    for lease6 in leases6:
        if not lease6.active(now):
            continue
        subnet6 = by_name6.get(lease6.subnet)
        if subnet6 is None or not _holds(subnet6, lease6):
            what = f"lease6 {lease6.kind.value} {lease6.prefix} of {lease6.duid}"
            found.append((6, int(lease6.prefix.network_address), what))
    return [text for _, _, text in sorted(found)]


def _holds(subnet: Subnet6, lease: Lease6) -> bool:
    """An address lease inside the subnet; a delegated prefix inside one of its PD pools."""
    if lease.kind is Lease6Kind.PD:
        return any(lease.prefix.subnet_of(pool.prefix) for pool in subnet.pd_pools)
    return lease.prefix.network_address in subnet.cidr


def summary(orphans: Sequence[str]) -> str:
    """The orphans as one line: the first :data:`MAX_NAMED` named, the rest counted."""
    named = ", ".join(orphans[:MAX_NAMED])
    rest = len(orphans) - MAX_NAMED
    return f"{named} and {rest} more" if rest > 0 else named
