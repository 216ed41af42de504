"""How full each pool is: used, reserved, declined and free addresses, and the utilisation
``ddi subnet list``, ``ddi subnet show`` and ``ddi status`` print.

Each address of a pool counts once, in the first of: reserved (a reservation holds it, leased
or not), declined (a DECLINE still quarantines it, ``allocator``), used (an active bound lease),
free. Utilisation is (used + reserved + declined) / size: what the allocator cannot hand out.

Pure: the values come in, and time as ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ddi.ipam.models import Host, Lease, LeaseState, Subnet

__all__ = ["PoolUsage", "SubnetUsage", "subnet_usage"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolUsage:
    start: str
    end: str
    size: int
    used: int
    reserved: int
    declined: int

    @property
    def free(self) -> int:
        return self.size - self.used - self.reserved - self.declined

    @property
    def utilisation(self) -> float:
        """Taken / size, 0.0 to 1.0 (0.0 for an empty pool)."""
        return (self.size - self.free) / self.size if self.size else 0.0

    def to_image(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "size": self.size,
            "used": self.used,
            "reserved": self.reserved,
            "declined": self.declined,
            "free": self.free,
            "utilisation": round(self.utilisation, 4),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SubnetUsage:
    name: str
    pools: tuple[PoolUsage, ...]

    def total(self) -> PoolUsage:
        """Every pool of the subnet added up (start and end: the first pool's and the last's)."""
        return PoolUsage(
            start=self.pools[0].start if self.pools else "",
            end=self.pools[-1].end if self.pools else "",
            size=sum(p.size for p in self.pools),
            used=sum(p.used for p in self.pools),
            reserved=sum(p.reserved for p in self.pools),
            declined=sum(p.declined for p in self.pools),
        )

    def to_image(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pools": [p.to_image() for p in self.pools],
            "total": self.total().to_image(),
        }


def subnet_usage(
    subnet: Subnet, hosts: Iterable[Host], leases: Iterable[Lease], now: float
) -> SubnetUsage:
    """The usage of each pool of ``subnet``; ``hosts`` and ``leases`` may span every subnet."""
    reserved = {int(h.ip) for h in hosts if h.ip is not None and h.ip in subnet.cidr}
    declined: set[int] = set()
    used: set[int] = set()
    for lease in leases:
        if lease.ip not in subnet.cidr or lease.end <= now:
            continue
        if lease.state is LeaseState.DECLINED:
            declined.add(int(lease.ip))
        elif lease.state is LeaseState.BOUND:
            used.add(int(lease.ip))
    declined -= reserved
    used -= reserved | declined
    pools = []
    for pool in subnet.pools:
        lo, hi = int(pool.start), int(pool.end)

        def inside(addresses: set[int], lo: int = lo, hi: int = hi) -> int:
            return sum(1 for a in addresses if lo <= a <= hi)

        pools.append(
            PoolUsage(
                start=str(pool.start),
                end=str(pool.end),
                size=hi - lo + 1,
                used=inside(used),
                reserved=inside(reserved),
                declined=inside(declined),
            )
        )
    return SubnetUsage(name=subnet.name, pools=tuple(pools))
