"""How full each IPv6 pool is: IA_NA pools by address, PD pools by delegated prefix.

The IPv4 figures come from ``ddi.ipam.usage``; this is the same idea for ``[[subnets6]]``, for
the console's subnets page. An IPv6 pool may hold 2**64 addresses, so sizes stay integers and
the fraction is a float that is simply tiny. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ddi.ipam.models import Host
from ddi.ipam.models6 import Lease6, Lease6Kind, Subnet6


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolUsage6:
    """One pool: ``kind`` ``na`` (addresses, ``start``-``end``) or ``pd`` (prefixes of
    ``/length`` carved out of ``start``)."""

    kind: str
    start: str
    end: str
    size: int
    used: int
    reserved: int

    @property
    def utilisation(self) -> float:
        return (self.used + self.reserved) / self.size if self.size else 0.0


def subnet6_usage(
    subnet: Subnet6, hosts: Iterable[Host], leases: Iterable[Lease6], now: float
) -> tuple[PoolUsage6, ...]:
    """Each pool of ``subnet``: active leases in it, and reservations' ``ip6`` in an NA pool
    that no active lease holds (a reserved address counts once)."""
    active = [x for x in leases if x.subnet == subnet.name and x.active(now)]
    leased_na = {x.address for x in active if x.kind is Lease6Kind.NA}
    reserved_ip6 = {h.ip6 for h in hosts if h.ip6 is not None}
    out: list[PoolUsage6] = []
    for pool in subnet.pools:
        used = sum(1 for ip in leased_na if pool.start <= ip <= pool.end)
        reserved = sum(
            1 for ip in reserved_ip6 if pool.start <= ip <= pool.end and ip not in leased_na
        )
        out.append(
            PoolUsage6(
                kind="na",
                start=str(pool.start),
                end=str(pool.end),
                size=pool.size,
                used=used,
                reserved=reserved,
            )
        )
    for pd in subnet.pd_pools:
        size = 1 << max(0, pd.delegated_length - pd.prefix.prefixlen)
        used = sum(1 for x in active if x.kind is Lease6Kind.PD and x.prefix in pd)
        out.append(
            PoolUsage6(
                kind="pd",
                start=str(pd.prefix),
                end=f"/{pd.delegated_length}",
                size=size,
                used=used,
                reserved=0,
            )
        )
    return tuple(out)
