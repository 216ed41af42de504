"""What a new set of subnets would leave behind: reservations outside every subnet and active
leases whose subnet is gone or no longer holds their address. A reload that would orphan any
is refused unless forced (``ddi reload --force``), naming them.

Pure: the subnets, hosts and leases come in as values, and time as ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ddi.ipam.models import Host, Lease, Subnet
from ddi.ipam.validate import host_address_problem

__all__ = ["MAX_NAMED", "orphaned", "summary"]

MAX_NAMED = 20
"""Orphans a refusal names one by one; the rest are counted."""


def orphaned(
    subnets: Sequence[Subnet], hosts: Iterable[Host], leases: Iterable[Lease], now: float
) -> list[str]:
    """Each reservation and active lease ``subnets`` would orphan, described for an operator
    (``host web1 198.18.0.10``, ``lease 198.18.0.150 of 52:54:00:00:00:10``), by address."""
    found: list[tuple[int, str]] = []
    for host in hosts:
        if host.ip is None:  # IPv6-only: no IPv4 subnet holds it (subnets6 are not checked here)
            continue
        if all(host_address_problem(host.ip, s) is not None for s in subnets):
            found.append((int(host.ip), f"host {host.hostname} {host.ip}"))
    by_name = {s.name: s for s in subnets}
    for lease in leases:
        if not lease.active(now):
            continue
        subnet = by_name.get(lease.subnet)
        if subnet is None or lease.ip not in subnet.cidr:
            client = lease.client_id or lease.mac or lease.circuit_id or "an unknown client"
            found.append((int(lease.ip), f"lease {lease.ip} of {client}"))
    return [text for _, text in sorted(found)]


def summary(orphans: Sequence[str]) -> str:
    """The orphans as one line: the first :data:`MAX_NAMED` named, the rest counted."""
    named = ", ".join(orphans[:MAX_NAMED])
    rest = len(orphans) - MAX_NAMED
    return f"{named} and {rest} more" if rest > 0 else named
