"""How much the DHCP server takes from whom: token buckets per client and per link (pure).

A flood of DHCPDISCOVERs from random hardware addresses must not starve the clients the site
knows, nor the event loop the DNS server shares. The transport glances at each datagram before
decoding it and asks:

* ``client_key`` / ``link_key``: whose packet it is (chaddr) and by which relay (giaddr) or
  interface it came.
* ``TokenBuckets.allow``: whether that key still has a token. One bucket per hardware address
  (``dhcp.client_rate``/``client_burst``) for everyone; one per link (``dhcp.link_rate``/
  ``link_burst``) for clients the server does not know, drawn from only while the server is
  backlogged (``backlogged``: packets have waited a tenth of a second, or a thousand wait). A
  refused packet is counted and never decoded.

Why the link buckets wait for a backlog: a boot storm (a site powering up, a relay coming
back) is thousands of clients the server has never seen, at a rate only the server's capacity
should bound, as it is for Kea (no rate limit unless its limits hook is configured) and
dnsmasq (none; only ``dhcp-lease-max``). A flood of random MACs looks the same on the wire.
The difference that matters is whether the server keeps up: while it does, every packet is
answered and nobody starves; once packets queue, known clients go first and unknown ones
draw from their link's bucket, so a flood cannot take the capacity the site's clients need.

Nothing here reads the clock (``now`` is passed in), does I/O or draws randomness.
"""

from __future__ import annotations

from collections.abc import Hashable

MAX_KEYS = 16_384
"""Buckets kept at most (about 3 MB); past it they all start over, full (as the transport's
other per-source tables do). Under a flood of new keys that lets a chatty client a burst more
every MAX_KEYS new keys: still bounded, and the flood itself is the link buckets' to stop. A
plain dict, cleared, costs the hot path less than keeping an LRU order per packet."""

BUSY_QUEUE = 64
"""Packets that must wait for the engine before the server can count as backlogged (with
``BUSY_WAIT`` or ``BUSY_DEPTH``): known clients are then looked up and queued first, and unknown
ones draw from their link's bucket."""
BUSY_WAIT = 0.1
"""Seconds the oldest waiting packet has waited from which the server counts as backlogged.
Depth alone is no measure: at 6,000 exchanges a second the event loop's own pauses (a group
commit's replies, a collection) queue 64 packets within milliseconds of work the server then
catches up on, and charging the link buckets for those refused 1-4% of a storm the server kept
up with. A client retransmits after 4 s (RFC 2131 §4.1): 0.1 s is nothing to it."""
BUSY_DEPTH = 1024
"""Packets waiting from which the server counts as backlogged however recent they are: a burst
read at once after a stop (the time a packet spent in the socket's buffer is not seen), about
0.1 s of work."""


def backlogged(waiting: int, waited: float) -> bool:
    """Whether a server with ``waiting`` packets queued, the oldest for ``waited`` seconds, has
    fallen behind (``BUSY_QUEUE``, ``BUSY_WAIT``, ``BUSY_DEPTH``)."""
    return waiting >= BUSY_QUEUE and (waited >= BUSY_WAIT or waiting >= BUSY_DEPTH)


_ZERO_GIADDR = bytes(4)
_MIN_GLANCE = 44
"""Bytes up to the end of chaddr's first 16 octets (RFC 2131 §2, fixed header)."""


def client_key(data: bytes) -> bytes:
    """chaddr as sent, ``hlen`` octets (at most 16), read off the datagram undecoded."""
    if len(data) < _MIN_GLANCE:
        return b""
    return data[28 : 28 + min(data[2], 16)]


def link_key(data: bytes, interface: str) -> bytes | str:
    """The relay's giaddr (RFC 2131 §4.1) when set, else the ingress interface's name."""
    giaddr = data[24:28]
    return interface if giaddr == _ZERO_GIADDR or len(giaddr) < 4 else giaddr


class TokenBuckets:
    """One token bucket per key: ``burst`` tokens, refilled at ``rate`` per second; each
    allowed packet takes one. ``rate`` 0 allows everything."""

    __slots__ = ("_buckets", "_burst", "_max_keys", "_rate")

    def __init__(self, rate: float, burst: int, *, max_keys: int = MAX_KEYS) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_keys = max_keys
        self._buckets: dict[Hashable, list[float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: Hashable, now: float) -> bool:
        if self._rate <= 0:
            return True
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= self._max_keys:
                # Cleared, not evicted one by one from the front: a dict evicted that way
                # leaves dead slots every later eviction walks over (quadratic under a flood).
                buckets.clear()
            bucket = buckets[key] = [self._burst, now]
        else:
            tokens = bucket[0] + (now - bucket[1]) * self._rate
            bucket[0] = tokens if tokens < self._burst else self._burst
            bucket[1] = now
        if bucket[0] < 1.0:
            return False
        bucket[0] -= 1.0
        return True
