"""How full each pool is: used, reserved, declined and free addresses, and the utilisation
``ddi subnet list``, ``ddi subnet show`` and ``ddi status`` print.

Each address of a pool counts once, in the first of: reserved (a reservation holds it, leased
or not), declined (a DECLINE still quarantines it, ``allocator``), used (an active bound lease),
free. Utilisation is (used + reserved + declined) / size: what the allocator cannot hand out.

Pure: the values come in, and time as ``now`` (inside the daemon they come in chunks,
``ddi.steps``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ddi.ipam.models import Host, Lease, LeaseState, Subnet

__all__ = ["PoolUsage", "SubnetUsage", "UsageCount", "subnet_usage", "usage_by_subnet"]


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


class UsageCount:
    """The pool usage of many subnets from one pass over hosts and leases, which may come in
    chunks (the console's sampler hands them over between turns of the event loop, so a site
    of 100,000 leases never stops it for the whole pass). Addresses are counted as integers:
    an ``ipaddress`` containment test per object and subnet was most of the old cost."""

    def __init__(self, subnets: Iterable[Subnet], now: float) -> None:
        self._subnets = tuple(subnets)
        self._now = now
        self._reserved: set[int] = set()
        self._declined: set[int] = set()
        self._used: set[int] = set()

    def add_hosts(self, hosts: Iterable[Host]) -> None:
        self._reserved.update(int(h.ip) for h in hosts if h.ip is not None)

    def add_leases(self, leases: Iterable[Lease]) -> None:
        now, used, declined = self._now, self._used, self._declined
        bound, refused = LeaseState.BOUND, LeaseState.DECLINED
        for lease in leases:
            if lease.end <= now:
                continue
            if lease.state is bound:
                used.add(int(lease.ip))
            elif lease.state is refused:
                declined.add(int(lease.ip))

    def result(self) -> list[SubnetUsage]:
        """Each subnet's usage, in the order given.

        An address counts for a pool when it lies in the pool and in the subnet (a pool the
        config let out of its subnet counts only the part inside): the first of reserved,
        declined, used, as the module says. Whether an address is in a subnet does not
        depend on which subnet asks, so the three sets are made once for all of them."""
        reserved = sorted(self._reserved)
        declined = sorted(self._declined - self._reserved)
        used = sorted(self._used - self._reserved - self._declined)
        out = []
        for subnet in self._subnets:
            first = int(subnet.cidr.network_address)
            last = int(subnet.cidr.broadcast_address)
            pools = []
            for pool in subnet.pools:
                lo, hi = int(pool.start), int(pool.end)
                a, b = max(lo, first), min(hi, last)
                pools.append(
                    PoolUsage(
                        start=str(pool.start),
                        end=str(pool.end),
                        size=hi - lo + 1,
                        used=_between(used, a, b),
                        reserved=_between(reserved, a, b),
                        declined=_between(declined, a, b),
                    )
                )
            out.append(SubnetUsage(name=subnet.name, pools=tuple(pools)))
        return out


def _between(ordered: list[int], lo: int, hi: int) -> int:
    """How many of ``ordered`` lie in ``[lo, hi]`` (none when ``lo > hi``)."""
    return max(0, bisect_right(ordered, hi) - bisect_left(ordered, lo))


def subnet_usage(
    subnet: Subnet, hosts: Iterable[Host], leases: Iterable[Lease], now: float
) -> SubnetUsage:
    """The usage of each pool of ``subnet``; ``hosts`` and ``leases`` may span every subnet."""
    return usage_by_subnet((subnet,), hosts, leases, now)[0]


def usage_by_subnet(
    subnets: Iterable[Subnet], hosts: Iterable[Host], leases: Iterable[Lease], now: float
) -> list[SubnetUsage]:
    """:func:`subnet_usage` of each of ``subnets``, from one pass over hosts and leases."""
    count = UsageCount(subnets, now)
    count.add_hosts(hosts)
    count.add_leases(leases)
    return count.result()
