"""Which IPv6 address or delegated prefix is free (pure).

IPv6 pools are too large to walk (a /64 holds 2**64 addresses), so the search starts at a
point derived from the client's (DUID, IAID), then probes forward a bounded number of times,
wrapping round the pool. The same IA is offered the same address or prefix again while it is
free (stable across a server restart, as Kea's FLQ and hash allocators aim for), and the cost
of a search is bounded whatever the pool's size. A small pool (up to ``FULL_SCAN`` entries) is
searched in full, so it is handed out to its last address.

Whether a candidate is taken is the caller's question (``taken``), answered from the index:
:func:`address_taken` and :func:`prefix_taken` are the rules the DHCPv6 engine uses.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from ipaddress import IPv6Address, IPv6Network
from typing import Protocol, TypeVar

from ddi.ipam.models import Host, LeaseState
from ddi.ipam.models6 import Lease6, Lease6Kind, PdPool, Pool6

__all__ = [
    "FULL_SCAN",
    "MAX_PROBES",
    "View6",
    "address_taken",
    "choose_address",
    "choose_address_int",
    "choose_prefix",
    "prefix_taken",
]

T = TypeVar("T")

FULL_SCAN = 4096
"""Pools with at most this many entries are searched in full."""
MAX_PROBES = 256
"""Candidates tried in a larger pool before it is reported exhausted (never, in practice)."""


class View6(Protocol):
    def host_by_ip6(self, ip: IPv6Address) -> Host | None: ...
    def lease6(self, kind: Lease6Kind, prefix: IPv6Network) -> Lease6 | None: ...


def _seed(duid: str, iaid: int, salt: str) -> int:
    digest = hashlib.blake2b(f"{salt}|{duid}|{iaid}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big")


def _held(lease: Lease6 | None, duid: str, now: float) -> bool:
    """Whether ``lease`` keeps its address or prefix from client ``duid`` at ``now``: bound
    to another client and not ended, or declined and still in quarantine (its ``end``)."""
    if lease is None or lease.end <= now:
        return False
    if lease.state is LeaseState.DECLINED:
        return True
    return lease.state is LeaseState.BOUND and lease.duid != duid


def address_taken(view: View6, ip: IPv6Address, duid: str, now: float) -> bool:
    """An address is taken when a reservation holds it (RFC 8415 §18.3: reserved addresses go
    only to their hosts) or another client's lease (or a quarantine) does."""
    if view.host_by_ip6(ip) is not None:
        return True
    return _held(view.lease6(Lease6Kind.NA, IPv6Network(ip)), duid, now)


def prefix_taken(view: View6, prefix: IPv6Network, duid: str, now: float) -> bool:
    return _held(view.lease6(Lease6Kind.PD, prefix), duid, now)


def _search(
    size: int, seed: int, taken: Callable[[T], bool], candidate: Callable[[int], T]
) -> T | None:
    """The first ``candidate(i)`` not taken for offsets ``i`` in ``range(size)``: all of them
    for a small range, else :data:`MAX_PROBES` from ``seed`` on, wrapping round."""
    tries = size if size <= FULL_SCAN else MAX_PROBES
    start = seed % size
    for i in range(tries):
        found = candidate((start + i) % size)
        if not taken(found):
            return found
    return None


def choose_address(
    pools: Sequence[Pool6],
    duid: str,
    iaid: int,
    taken: Callable[[IPv6Address], bool],
) -> IPv6Address | None:
    """A free address from ``pools`` for the IA (``duid``, ``iaid``), or None when every
    candidate searched is taken. Pools are tried in order, each from the IA's own start."""
    seed = _seed(duid, iaid, "na")
    for pool in pools:
        found = _search(pool.size, seed, taken, functools.partial(_nth_address, int(pool.start)))
        if found is not None:
            return found
    return None


def choose_address_int(
    pools: Sequence[Pool6],
    duid: str,
    iaid: int,
    taken: Callable[[int], bool],
) -> int | None:
    """:func:`choose_address` with the candidates as integers (the same ones in the same
    order, so the same address): no ``IPv6Address`` per candidate probed."""
    seed = _seed(duid, iaid, "na")
    for pool in pools:
        found = _search(pool.size, seed, taken, functools.partial(_offset, int(pool.start)))
        if found is not None:
            return found
    return None


def _offset(first: int, i: int) -> int:
    return first + i


def _nth_address(first: int, i: int) -> IPv6Address:
    return IPv6Address(first + i)


def _nth_prefix(pool: PdPool, i: int) -> IPv6Network:
    step = 1 << (128 - pool.delegated_length)
    return IPv6Network((int(pool.prefix.network_address) + i * step, pool.delegated_length))


def choose_prefix(
    pools: Sequence[PdPool],
    duid: str,
    iaid: int,
    taken: Callable[[IPv6Network], bool],
) -> IPv6Network | None:
    """A free delegated prefix from ``pools`` for the IA_PD (``duid``, ``iaid``), or None."""
    seed = _seed(duid, iaid, "pd")
    for pool in pools:
        found = _search(pool.size, seed, taken, functools.partial(_nth_prefix, pool))
        if found is not None:
            return found
    return None
