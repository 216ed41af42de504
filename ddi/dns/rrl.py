"""Response-rate limiting (RRL) of UDP answers to clients outside the site's own networks.

A UDP query's source address can be forged: without a limit, anyone can aim this server's
answers at a victim. As NSD and BIND do, answers are counted per client prefix (a /24 for
IPv4, a /56 for IPv6: one site, one customer) and per second; past ``ratelimit`` in one second
they are withheld, and every ``slip``-th withheld answer goes out truncated instead (TC=1 and
the question only: no amplification), so a real client behind the same prefix retries over
TCP, which cannot be forged and is not limited.

Rules:
* The site's own networks (its subnets and loopback) and ``exempt`` are never limited.
* Numbers: NSD's defaults, ``rrl-ratelimit: 200`` and ``rrl-slip: 2``; the prefixes are
  BIND's (``ipv4-prefix-length 24``, ``ipv6-prefix-length 56``; NSD's IPv6 one is /64).
* The count is per prefix only (BIND also splits by response); a second starts a new count.
* Bounded: at most ``MAX_PREFIXES`` prefixes are counted (past it the ones not counted in the
  current second are forgotten), and the sender-to-prefix memo holds at most ``MAX_HOSTS``.
* Next to free for the common sender, one of the site's own: the UDP loops test it against
  ``exempt_hosts`` inline (the batched loop a whole batch in one ``issuperset``) and call
  ``check`` only for the others.
* Pure: ``second`` is an argument.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from ipaddress import IPv4Address

from ddi.dns.acl import Acl, Address, peer_address

PASS = 0
DROP = 1
SLIP = 2
MAX_PREFIXES = 100_000
MAX_HOSTS = 65_536


class RateLimiter:
    def __init__(
        self,
        *,
        ratelimit: int,
        slip: int,
        ipv4_prefix: int = 24,
        ipv6_prefix: int = 56,
        exempt: Acl,
    ) -> None:
        self.ratelimit = ratelimit
        self.slip = slip
        self.ipv4_shift = 32 - ipv4_prefix
        self.ipv6_shift = 128 - ipv6_prefix
        self.exempt = exempt
        self.prefixes: dict[Hashable, int | None] = {}
        """A sender (as the socket gave it: host text, packed bytes, or a raw IPv4 word) to
        its prefix's counter key, or None when it is exempt."""
        self.exempt_hosts: set[Hashable] = set()
        """The senders seen that are exempt (the same keys)."""
        self._counts: dict[int, list[int]] = {}
        """Prefix key to [second, answers counted in that second]."""
        self.dropped = 0
        self.slipped = 0

    def check(self, host: Hashable, second: int) -> int:
        """Count one answer to ``host`` in ``second``: ``PASS``, ``DROP`` or ``SLIP``."""
        prefix = self.prefixes.get(host, -1)
        if prefix == -1:
            prefix = self._classify(host)
        if prefix is None:
            return PASS
        count = self._counts.get(prefix)
        if count is None:
            if len(self._counts) >= MAX_PREFIXES:
                self._forget(second)
            count = self._counts[prefix] = [second, 0]
        if count[0] != second:
            count[0] = second
            count[1] = 0
        count[1] += 1
        over = count[1] - self.ratelimit
        if over <= 0:
            return PASS
        if self.slip and over % self.slip == 0:
            self.slipped += 1
            return SLIP
        self.dropped += 1
        return DROP

    def _classify(self, host: Hashable) -> int | None:
        address = _address(host)
        if address is None or address in self.exempt:
            prefix = None
        elif isinstance(address, IPv4Address):
            prefix = int(address) >> self.ipv4_shift
        else:
            prefix = (1 << 128) | (int(address) >> self.ipv6_shift)  # apart from every IPv4 key
        if len(self.prefixes) >= MAX_HOSTS:
            self.prefixes.clear()
            self.exempt_hosts.clear()
        self.prefixes[host] = prefix
        if prefix is None:
            self.exempt_hosts.add(host)
        return prefix

    def _forget(self, second: int) -> None:
        stale = [key for key, (at, _) in self._counts.items() if at != second]
        for key in stale:
            del self._counts[key]
        if len(self._counts) >= MAX_PREFIXES:
            self._counts.clear()  # that many live prefixes: each starts again

    def statistics(self) -> dict[str, int]:
        return {
            "ratelimit": self.ratelimit,
            "slip": self.slip,
            "dropped": self.dropped,
            "slipped": self.slipped,
            "prefixes": len(self._counts),
        }


def _address(host: Hashable) -> Address | None:
    """The address of a sender key; an ``int`` is an IPv4 address as the 32-bit word of a
    ``sockaddr_in`` read in host byte order (``udp_batch.BatchSocket.hosts``)."""
    if isinstance(host, int):
        return IPv4Address(host.to_bytes(4, sys.byteorder))
    return peer_address(host)
