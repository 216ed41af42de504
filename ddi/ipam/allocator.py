"""Which address a dynamic client may have: the free-address rules and the pool scan (pure).

Rules:
* An address is usable by a client when it lies in one of the subnet's pools, is not the
  subnet's gateway, is reserved for no other host, is not actively leased to another client,
  is not quarantined after a DECLINE (RFC 2131 §3.1.5), and is not offered to another client.
* A client is identified by its client-id when both sides have one, else by its hardware
  address (RFC 2131 §4.2, "client identifier"); this is the store's rule too.
* The pool scan starts at a caller-held cursor and wraps, so consecutive allocations cost O(1)
  each on a filling pool instead of rescanning from the start.
* An exhausted pool is known without a scan: :class:`FreeLedger` counts each subnet's taken pool
  addresses as the view and the offer table change, so a flood of new clients at a full pool
  costs each of them a lookup, not a walk of the pool.
* Nothing here reads the clock (``now`` is passed in), writes, or does I/O.
"""

from __future__ import annotations

import enum
import struct
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from ipaddress import IPv4Address
from itertools import chain
from typing import Protocol

from ddi.ipam.models import Host, Lease, LeaseState, Pool, Subnet


class AllocationView(Protocol):
    """The part of ``IpamView`` the allocator reads: ``host_at`` and ``lease_at`` are
    ``host_by_ip`` and ``lease_by_ip`` for the address as an int (the pool scan's form)."""

    def host_by_ip(self, ip: IPv4Address) -> Host | None: ...

    def lease_by_ip(self, ip: IPv4Address) -> Lease | None: ...

    def host_at(self, value: int) -> Host | None: ...

    def lease_at(self, value: int) -> Lease | None: ...


class LedgerView(AllocationView, Protocol):
    """The part of ``IpamView`` the free-address ledger reads."""

    def subnets(self) -> Sequence[Subnet]: ...
    def subnet(self, name: str) -> Subnet | None: ...
    def hosts(self) -> Iterable[Host]: ...
    def leases(self) -> Iterable[Lease]: ...
    def lease_count(self) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Client:
    """Who is asking: hardware address and client-id in normalised colon hex."""

    mac: str | None
    client_id: str | None

    @property
    def key(self) -> str:
        """One string per client, for in-memory maps (offers)."""
        return f"id:{self.client_id}" if self.client_id else f"hw:{self.mac}"

    def owns(self, lease: Lease) -> bool:
        if self.client_id and lease.client_id:
            return self.client_id == lease.client_id
        return self.mac is not None and self.mac == lease.mac

    def is_host(self, host: Host) -> bool:
        if self.client_id and host.client_id:
            return self.client_id == host.client_id
        return self.mac is not None and self.mac == host.mac


class Problem(enum.StrEnum):
    """Why an address is not usable by a client."""

    OUTSIDE_SUBNET = "outside-subnet"
    NOT_IN_POOL = "not-in-pool"
    RESERVED = "reserved"
    LEASED = "leased"
    QUARANTINED = "quarantined"
    OFFERED = "offered"


def quarantined(lease: Lease | None, now: float) -> bool:
    """A DECLINEd address stays out of use until the lease's ``end`` (RFC 2131 §3.1.5)."""
    return lease is not None and lease.state is LeaseState.DECLINED and lease.end > now


def pool_ranges(subnet: Subnet) -> tuple[tuple[int, int], ...]:
    """The subnet's pools as (first, last) integers in address order, computed once per pools
    value: IPv4Address's ordering operators are Python-level and slow on the hot path."""
    pools = subnet.pools
    cached = _RANGES.get(id(pools))
    if cached is not None and cached[0] is pools:
        return cached[1]
    ranges = tuple(sorted((int(pool.start), int(pool.end)) for pool in pools))
    if len(_RANGES) >= _MAX_RANGES:
        _RANGES.clear()
    _RANGES[id(pools)] = (pools, ranges)
    return ranges


_RANGES: dict[int, tuple[tuple[Pool, ...], tuple[tuple[int, int], ...]]] = {}
"""pool_ranges' memo, by the identity of the pools tuple (kept, so the id stays its own)."""
_MAX_RANGES = 256


def in_pool(ip: IPv4Address, subnet: Subnet) -> bool:
    value = int(ip)
    return any(lo <= value <= hi for lo, hi in pool_ranges(subnet))


def address_problem(
    ip: IPv4Address,
    subnet: Subnet,
    view: AllocationView,
    now: float,
    *,
    client: Client,
    offered: Mapping[IPv4Address, str],
) -> Problem | None:
    """Why ``client`` may not have the dynamic address ``ip`` in ``subnet``, or None if it may."""
    if ip not in subnet.cidr:
        return Problem.OUTSIDE_SUBNET
    if not in_pool(ip, subnet) or ip == subnet.gateway:
        return Problem.NOT_IN_POOL
    return _taken(int(ip), ip, view, now, client, offered)


def _taken(
    value: int,
    ip: IPv4Address | None,
    view: AllocationView,
    now: float,
    client: Client,
    offered: Mapping[IPv4Address, str],
) -> Problem | None:
    """Why ``client`` may not have the address ``value`` (``ip``, when the caller has it)."""
    host = view.host_at(value)
    if host is not None and not client.is_host(host):
        return Problem.RESERVED
    lease = view.lease_at(value)
    if lease is not None:
        if quarantined(lease, now):
            return Problem.QUARANTINED
        if lease.active(now) and not client.owns(lease):
            return Problem.LEASED
    if offered:  # the offer table is keyed by IPv4Address: build one only to look it up
        holder = offered.get(IPv4Address(value) if ip is None else ip)
        if holder is not None and holder != client.key:
            return Problem.OFFERED
    return None


def next_free(
    subnet: Subnet,
    view: AllocationView,
    now: float,
    *,
    client: Client,
    offered: Mapping[IPv4Address, str],
    start: IPv4Address | None = None,
) -> IPv4Address | None:
    """The first usable pool address at or after ``start`` (wrapping), or None when the
    subnet's pools are exhausted.

    Pools are scanned in address order; ``start`` outside every pool means "from the lowest".
    """
    ranges = pool_ranges(subnet)
    if not ranges:
        return None
    first = int(start) if start is not None and in_pool(start, subnet) else ranges[0][0]
    gateway = -1 if subnet.gateway is None else int(subnet.gateway)
    # Two passes over the pool list: from ``first`` to the end, then from the start up to it.
    segments: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if hi >= first:
            segments.append((max(lo, first), hi))
    for lo, hi in ranges:
        if lo >= first:
            break
        segments.append((lo, min(hi, first - 1)))
    for lo, hi in segments:
        for value in range(lo, hi + 1):
            if value == gateway:
                continue
            if _taken(value, None, view, now, client, offered) is None:
                return IPv4Address(value)
    return None


def pool_size(subnet: Subnet) -> int:
    """Addresses a dynamic client may get in ``subnet``: its pools (overlaps counted once)
    without the gateway."""
    total, reach = 0, -1
    for lo, hi in pool_ranges(subnet):
        lo = max(lo, reach + 1)
        if hi >= lo:
            total += hi - lo + 1
            reach = hi
    if subnet.gateway is not None and in_pool(subnet.gateway, subnet):
        total -= 1
    return total


COMPACT_FROM = 1024
"""Ledger heap entries below which it is never compacted (``FreeLedger``)."""
_HOLDS_ADDRESS = frozenset({LeaseState.BOUND, LeaseState.DECLINED})
_LOW = 0xFFFFFFFF
"""The low 32 bits of a ledger heap key: the address."""
_DOUBLE = struct.Struct("<d")
_BITS = struct.Struct("<Q")


def _end_bits(end: float) -> int:
    """``end`` as an integer in the same order: a non-negative IEEE double's bits compare as
    the number does (negative times, which no lease has, count as 0)."""
    return int(_BITS.unpack(_DOUBLE.pack(end if end > 0.0 else 0.0))[0])


class FreeLedger:
    """How many pool addresses of each subnet are left for a client that holds none of them.

    An address counts as taken when it is reserved, offered (``offered``, the engine's table),
    or carries a bound or declined lease that has not ended by the latest ``now`` seen; that is
    what ``next_free`` skips for such a client, so ``free(subnet, now) == 0`` means it would
    find nothing. The caller keeps the count current: :meth:`touch` an address whenever its
    reservation, lease or offer changes, :meth:`rebuild` when subnets change. Leases ending
    are found through a heap of their ends, so time passing costs O(log n) per lease, never a
    walk of the pool. A clock going backwards only makes the count low (a scan then decides).

    Memory is one dict entry per taken address and one int per queued lease end: the heap key
    packs the end (as its double's bits) above the address, and an entry the lease has since
    outgrown is recognised when it comes out (the lease there still holds), so no second map
    says which entry is live. Which subnet's pool holds an address is a bisection over every
    pool's range, not a memo per address.
    """

    def __init__(
        self,
        view: LedgerView,
        offered: Mapping[IPv4Address, str],
        *,
        compact_from: int = COMPACT_FROM,
    ) -> None:
        self._view = view
        self._offered = offered
        self._now = float("-inf")
        self._size: dict[str, int] = {}
        self._taken: dict[str, int] = {}
        # Keyed by the address as an int: an IPv4Address hashes in Python, an int in C, and
        # the hot path (an OFFER) does three of these lookups.
        self._where: dict[int, str] = {}
        """Taken address -> the subnet whose count includes it."""
        self._starts: list[int] = []
        self._spans: list[tuple[int, int, str, int]] = []
        """Every counted subnet's pool ranges, merged and sorted: (first, last, subnet,
        gateway or -1); ``_starts`` holds the firsts, for bisection."""
        self._ends: list[int] = []
        """A heap of ``end bits << 32 | address`` of the leases that hold their address."""
        self._compact_from = compact_from
        self._compact_at = compact_from
        """Heap length past which stale entries are dropped (``_count``)."""
        self.rebuild()

    def rebuild(self) -> None:
        """Count everything again (subnets or their pools changed)."""
        view = self._view
        subnets = list(view.subnets())
        self._size = {s.name: pool_size(s) for s in subnets}
        self._taken = dict.fromkeys(self._size, 0)
        spans: list[tuple[int, int, str, int]] = []
        for subnet in subnets:
            gateway = -1 if subnet.gateway is None else int(subnet.gateway)
            for lo, hi in pool_ranges(subnet):  # sorted: merge a subnet's overlapping pools
                if spans and spans[-1][2] == subnet.name and lo <= spans[-1][1] + 1:
                    if hi > spans[-1][1]:
                        spans[-1] = (spans[-1][0], hi, subnet.name, gateway)
                    continue
                spans.append((lo, hi, subnet.name, gateway))
        spans.sort()
        self._spans = spans
        self._starts = [span[0] for span in spans]
        self._where.clear()
        hosts = (h.ip for h in view.hosts() if h.ip is not None)
        leases = (lease.ip for lease in view.leases())
        for ip in chain(hosts, leases, list(self._offered)):
            self._count(ip, None, queue=False)
        self._compact()  # every holding lease's end queued once, in one list of its own size

    def free(self, subnet: Subnet, now: float) -> int:
        """Pool addresses of ``subnet`` nobody holds at ``now``."""
        if now > self._now:
            self._now = now
            ends = self._ends
            if ends and ends[0] <= (limit := _end_bits(now) << 32 | _LOW):
                lease_at = self._view.lease_at
                while ends and ends[0] <= limit:
                    value = heappop(ends) & _LOW
                    lease = lease_at(value)
                    # Still held: the lease was renewed and its new end has its own entry.
                    if lease is None or lease.state not in _HOLDS_ADDRESS or lease.end <= now:
                        self.touch(IPv4Address(value))
        name = subnet.name
        return self._size.get(name, 0) - self._taken.get(name, 0)

    def touch(self, ip: IPv4Address, hint: str | None = None) -> None:
        """Count ``ip`` again from the view and the offer table; ``hint`` names its subnet."""
        self._count(ip, hint, queue=True)

    def _count(self, ip: IPv4Address, hint: str | None, *, queue: bool) -> None:
        """:meth:`touch`; ``queue`` False leaves the lease's end out of the heap (a rebuild
        queues every end at once)."""
        view, value = self._view, int(ip)
        lease = view.lease_at(value)
        if lease is not None and lease.state in _HOLDS_ADDRESS and lease.end > self._now:
            taken = True
            if queue:
                ends = self._ends
                heappush(ends, _end_bits(lease.end) << 32 | value)
                # A lease has at most one live entry, so past twice the view's leases at
                # least half are stale and a compaction halves the heap at least. Against the
                # entries alone (twice those kept last time) a site taking new leases, all
                # live, walked every lease at each doubling for nothing (30 ms at 30,000).
                if len(ends) > self._compact_at and len(ends) > 2 * view.lease_count():
                    self._compact()
        else:
            taken = ip in self._offered or view.host_at(value) is not None
        home = None
        if taken:
            home = self._home(value, hint or (lease.subnet if lease is not None else None))
        old = self._where.get(value)
        if old == home:
            return
        if old is not None:
            self._taken[old] -= 1
            del self._where[value]
        if home is not None:
            self._taken[home] += 1
            self._where[value] = home

    def _compact(self) -> None:
        """Queue each holding lease's end once again (entries pile up as leases renew)."""
        now = self._now
        self._ends = ends = [
            _end_bits(lease.end) << 32 | int(lease.ip)
            for lease in self._view.leases()
            if lease.state in _HOLDS_ADDRESS and lease.end > now
        ]
        heapify(ends)
        self._compact_at = 2 * len(ends) + self._compact_from

    def offered(self, ip: IPv4Address, subnet: str, *, pooled: bool = False) -> None:
        """``ip`` was just offered in ``subnet``: taken, whatever else holds it (the hot path's
        :meth:`touch`, without the view's lookups). ``pooled``: the caller knows ``ip`` is a
        usable pool address of ``subnet`` (``address_problem`` found none), so its home need
        not be looked for."""
        value = int(ip)
        if value in self._where:
            return
        if pooled and subnet in self._taken:
            home: str | None = subnet
        else:
            home = self._home(value, subnet)
        if home is not None:
            self._taken[home] += 1
            self._where[value] = home

    def _home(self, value: int, hint: str | None) -> str | None:
        """The counted subnet whose pool holds ``value`` (not as its gateway), else None."""
        hinted = None if hint is None or hint not in self._size else self._view.subnet(hint)
        if hinted is not None and (hinted.gateway is None or int(hinted.gateway) != value):
            for lo, hi in pool_ranges(hinted):
                if lo <= value <= hi:
                    return hint
        at = bisect_right(self._starts, value) - 1
        if at < 0:
            return None
        _, last, name, gateway = self._spans[at]
        return name if value <= last and value != gateway else None
