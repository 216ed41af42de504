"""The DHCP engine's outstanding OFFERs and holds (its rule 2), in memory only.

An OFFER holds its address for the client it went to (``offer_ttl``); an acknowledged or
declined address is held the same way until its lease is committed and visible in the IPAM
view (``release``; ``offer_ttl`` at most, should the commit fail), so the group-commit window
never hands one address to two clients. The table is bounded
in all (``max_offers``: past it the oldest is forgotten) and per link (past the link's bound,
the link's oldest OFFER), and holds expire through a heap, since they differ in length (a
DECLINE's is capped by the quarantine). Each hold and drop is told to the free-address ledger,
which counts an offered address as taken.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from ipaddress import IPv4Address
from typing import Protocol

from ddi.dhcp.decision import Rule

__all__ = ["Ledger", "Offer", "OfferTable"]


class Ledger(Protocol):
    """What the table tells the free-address ledger (``ddi.ipam.allocator.FreeLedger``)."""

    def offered(self, ip: IPv4Address, subnet: str, *, pooled: bool = False) -> None: ...
    def touch(self, ip: IPv4Address, hint: str | None = None) -> None: ...


@dataclass(slots=True)
class Offer:
    ip: IPv4Address
    subnet: str
    expires: float
    rule: Rule
    mac: str | None = None
    link: int | str | None = None
    """The relay or interface an OFFER went out by (the per-link bound); None for the holds
    that follow an ACK or a DECLINE."""


class OfferTable:
    """Outstanding OFFERs and holds by client key; see the module docstring."""

    def __init__(self, ledger: Ledger, by_ip: dict[IPv4Address, str], *, max_offers: int) -> None:
        self.ledger = ledger
        """Told of every address held and dropped."""
        self.max_offers = max_offers
        self.by_key: dict[str, Offer] = {}
        self.by_ip = by_ip
        """Address -> the key holding it: what the allocator's checks and the ledger read
        (the ledger is made with this dict, before the table)."""
        self._expiry: list[tuple[float, int, str, Offer]] = []
        """(expires, seq, key, offer) of every hold, a heap; entries go stale when replaced."""
        self._seq = itertools.count()
        self._by_mac: dict[str, str] = {}
        """Hardware address -> the key of its client's outstanding offer or hold."""
        self._by_link: dict[int | str, OrderedDict[str, None]] = {}
        """Link -> the keys of its outstanding OFFERs, oldest first (an OrderedDict: a flood
        evicts from the front, which a plain dict makes ever slower to find)."""

    def __len__(self) -> int:
        return len(self.by_key)

    def get(self, key: str) -> Offer | None:
        return self.by_key.get(key)

    def holds_mac(self, mac: str) -> bool:
        """Whether a client with this hardware address has an outstanding offer or hold."""
        return mac in self._by_mac

    def hold(
        self,
        key: str,
        mac: str | None,
        ip: IPv4Address,
        subnet: str,
        expires: float,
        rule: Rule,
        *,
        link: int | str | None = None,
        per_link: int = 0,
        pooled: bool = False,
    ) -> None:
        """Hold ``ip`` for ``key`` until ``expires``; ``link`` (with its bound ``per_link``) for
        an OFFER; ``pooled`` when ``ip`` is known to be a usable pool address of ``subnet``
        (spares the ledger a lookup)."""
        held = self.by_key.get(key)
        # The same address held again (an ACK after its OFFER) stays taken in the ledger.
        self.drop(key, recount=held is None or held.ip != ip)
        while len(self.by_key) >= self.max_offers:
            self.drop(next(iter(self.by_key)))
        if link is not None:
            on_link = self._by_link.get(link)
            if on_link is None:
                on_link = self._by_link[link] = OrderedDict()
            while len(on_link) >= per_link:
                self.drop(next(iter(on_link)))
            on_link[key] = None
        offer = Offer(ip=ip, subnet=subnet, expires=expires, rule=rule, mac=mac, link=link)
        self.by_key[key] = offer
        self.by_ip[ip] = key
        if mac is not None:
            self._by_mac[mac] = key
        self.ledger.offered(ip, subnet, pooled=pooled)
        heappush(self._expiry, (expires, next(self._seq), key, offer))

    def release(self, key: str, ip: IPv4Address) -> None:
        """A lease for ``ip`` is now in the view: the hold that kept ``ip`` for ``key`` until
        then (an ACK's or a DECLINE's, never an OFFER's) has done its job. The lease keeps the
        address taken, so the ledger is not told (the view's own notice recounts it)."""
        held = self.by_key.get(key)
        if held is not None and held.link is None and held.ip == ip:
            self.drop(key, recount=False)

    def drop(self, key: str, *, recount: bool = True) -> None:
        """Forget ``key``'s offer or hold; ``recount`` False when its address stays taken."""
        offer = self.by_key.pop(key, None)
        if offer is None:
            return
        if offer.link is not None:
            on_link = self._by_link[offer.link]
            del on_link[key]
            if not on_link:
                del self._by_link[offer.link]
        if offer.mac is not None and self._by_mac.get(offer.mac) == key:
            del self._by_mac[offer.mac]
        if self.by_ip.get(offer.ip) == key:
            del self.by_ip[offer.ip]
            if recount:
                self.ledger.touch(offer.ip, offer.subnet)

    def expire(self, now: float) -> None:
        """Drop every hold that ended by ``now``."""
        expiry, offers = self._expiry, self.by_key
        while expiry and expiry[0][0] <= now:
            _, _, key, offer = heappop(expiry)
            if offers.get(key) is offer:  # else replaced or dropped since: a stale entry
                self.drop(key)
        if len(expiry) > 2 * len(offers) + 1024:
            # Entries of replaced holds wait for their time; past this many, start over.
            self._expiry = [entry for entry in expiry if offers.get(entry[2]) is entry[3]]
            heapify(self._expiry)
