"""Client classes: a request's vendor class, user class, MAC prefix or relay circuit-id puts it in
named classes, which may give it options, a boot profile and pools of its own, sans-I/O.

Rules:
* A class matches when every test it names holds (all-of); a class naming no test matches no
  one. Classes are tested once per request, in configuration order; the order is also the
  precedence of their options (the first class that sets a code wins, as Kea does).
* A pool with ``client_class`` serves only that class's members; a pool without one serves
  everyone (Kea's ``client-class`` on pools). A member draws from its class's pools first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from ddi.dhcp.option_defs import OptionValue
from ddi.dhcp.options import OptionCode, decode_user_class
from ddi.dhcp.packet import DhcpPacket
from ddi.ipam.models import Subnet


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassMatch:
    """The tests of one class; each None is not tested. Bytes as they are on the wire."""

    vendor_class: bytes | None = None
    """Option 60 equal to this."""
    vendor_class_prefix: bytes | None = None
    """Option 60 starting with this (``Cisco Systems, Inc. IP Phone`` models differ after it)."""
    user_class: bytes | None = None
    """One of option 77's classes (RFC 3004) equal to this."""
    mac_prefix: bytes | None = None
    """The hardware address starting with these octets (an OUI, or longer)."""
    circuit_id: bytes | None = None
    """Option 82 sub-option 1 equal to this."""

    def is_empty(self) -> bool:
        return (
            self.vendor_class is None
            and self.vendor_class_prefix is None
            and self.user_class is None
            and self.mac_prefix is None
            and self.circuit_id is None
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientClass:
    name: str
    match: ClassMatch
    options: tuple[OptionValue, ...] = ()
    boot: str | None = None
    """A boot profile for members, over the subnet's (a reservation's own still wins)."""


def classify(
    packet: DhcpPacket, circuit_id: bytes | None, classes: Sequence[ClientClass]
) -> tuple[ClientClass, ...]:
    """The classes ``packet`` belongs to, in configuration order."""
    vendor = packet.get(OptionCode.VENDOR_CLASS_IDENTIFIER)
    raw_user = packet.get(OptionCode.USER_CLASS)
    users = decode_user_class(raw_user) if raw_user else ()
    mac = packet.chaddr[: packet.hlen] if packet.hlen <= 16 else packet.chaddr
    out = []
    for c in classes:
        m = c.match
        if m.is_empty():
            continue
        if m.vendor_class is not None and vendor != m.vendor_class:
            continue
        if m.vendor_class_prefix is not None and (
            vendor is None or not vendor.startswith(m.vendor_class_prefix)
        ):
            continue
        if m.user_class is not None and m.user_class not in users:
            continue
        if m.mac_prefix is not None and not mac.startswith(m.mac_prefix):
            continue
        if m.circuit_id is not None and circuit_id != m.circuit_id:
            continue
        out.append(c)
    return tuple(out)


def pool_views(subnet: Subnet, member_of: Collection[str]) -> tuple[Subnet, ...]:
    """``subnet`` as a client of these classes draws from it, in order: first its classes' own
    pools (when the subnet has any), then every pool it may use (its classes' and the open
    ones), so phones land in the voice pool while it has room."""
    allowed = tuple(
        p for p in subnet.pools if p.client_class is None or p.client_class in member_of
    )
    own = tuple(p for p in allowed if p.client_class is not None)
    every = subnet if len(allowed) == len(subnet.pools) else replace(subnet, pools=allowed)
    if own and len(own) < len(allowed):
        return (replace(subnet, pools=own), every)
    return (every,)


class PoolChooser:
    """``pool_views`` kept per subnet value and class set, so the allocator's per-pools caches
    keep working."""

    __slots__ = ("_cache",)
    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[Subnet, tuple[Subnet, ...]]] = {}

    def views(self, subnet: Subnet, member_of: tuple[str, ...]) -> tuple[Subnet, ...]:
        """``pool_views``; ``member_of`` the class names in configuration order."""
        key = (subnet.name, member_of)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is subnet:
            return hit[1]
        seen = pool_views(subnet, member_of)
        if len(self._cache) >= self.MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = (subnet, seen)
        return seen


def merged_options(*layers: Sequence[OptionValue], asked: bytes | None) -> dict[int, bytes]:
    """The options to send, lowest precedence first in ``layers`` (global, subnet, classes,
    host): a later layer's code replaces an earlier one's. Of the result, only the codes the
    client asked for in option 55 (RFC 2132 §9.8) or marked ``always_send``."""
    chosen: dict[int, OptionValue] = {}
    for layer in layers:
        for value in layer:
            chosen[value.code] = value
    return {
        code: value.data
        for code, value in chosen.items()
        if value.always_send or (asked is not None and code in asked)
    }
