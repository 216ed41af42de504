"""``[subnets6.ra]``: a subnet's router advertisement settings, and the advertisement they make.

Off by default: on most sites the router advertises. Defaults follow RFC 4861 §6.2.1 and RFC
8106 §5; the one exception is ``router_lifetime``, 0 by default, because the appliance does not
forward packets: a nonzero lifetime makes every host send its traffic to it (§6.2.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from ddi.ra.message import MAX_ROUTER_LIFETIME, PrefixInfo, RouterAdvert


def _bounds(lo: int, hi: int) -> dict[str, int]:
    return {"lo": lo, "hi": hi}


@dataclass(frozen=True, slots=True, kw_only=True)
class RaSettings:
    enabled: bool = False
    interval: int = field(default=600, metadata=_bounds(4, 1800))
    """MaxRtrAdvInterval, seconds (RFC 4861 §6.2.1: 4-1800)."""
    min_interval: int | None = field(default=None, metadata=_bounds(3, 1350))
    """MinRtrAdvInterval; default 0.33 x ``interval`` (at least 3), at most 0.75 x it."""
    router_lifetime: int = field(default=0, metadata=_bounds(0, MAX_ROUTER_LIFETIME))
    """Seconds hosts may use the appliance as their default router; 0: they must not."""
    managed: bool | None = None
    """M flag: addresses by DHCPv6; default: when the subnet has pools or pd_pools."""
    other: bool = True
    """O flag: other configuration (DNS, NTP) by DHCPv6 (RFC 8415 §18.2.6)."""
    autonomous: bool | None = None
    """A flag of the prefix (SLAAC, RFC 4862); default: a /64 without M. Only a /64 may."""
    valid_lifetime: int = field(default=2_592_000, metadata=_bounds(0, 0xFFFFFFFF))
    preferred_lifetime: int = field(default=604_800, metadata=_bounds(0, 0xFFFFFFFF))
    """Prefix lifetimes (§6.2.1 AdvValidLifetime, AdvPreferredLifetime); 0xffffffff: infinite."""
    mtu: int | None = field(default=None, metadata=_bounds(1280, 65535))
    """Link MTU option (§4.6.4); none: not sent."""
    dns_lifetime: int | None = field(default=None, metadata=_bounds(0, 0xFFFFFFFF))
    """RDNSS and DNSSL lifetime; default 3 x ``interval`` (RFC 8106 §5.1)."""
    prefix: IPv6Network | None = None
    """The prefix to advertise; when given it must be the subnet's own ``cidr``."""

    @property
    def min_seconds(self) -> float:
        return float(self.min_interval or max(3, round(0.33 * self.interval)))


@dataclass(frozen=True, slots=True, kw_only=True)
class RaLink:
    """What one link advertises: from a subnet and its ``RaSettings``."""

    subnet: str
    interface: str
    settings: RaSettings
    cidr: IPv6Network
    managed: bool
    autonomous: bool
    dns_servers: tuple[IPv6Address, ...]
    search: tuple[str, ...]

    def advert(self, source_mac: bytes | None) -> RouterAdvert:
        s = self.settings
        dns_lifetime = 3 * s.interval if s.dns_lifetime is None else s.dns_lifetime
        return RouterAdvert(
            managed=self.managed,
            other=s.other,
            router_lifetime=s.router_lifetime,
            source_mac=source_mac,
            mtu=s.mtu,
            prefixes=(
                PrefixInfo(
                    prefix=self.cidr,
                    on_link=True,
                    autonomous=self.autonomous,
                    valid_lifetime=s.valid_lifetime,
                    preferred_lifetime=s.preferred_lifetime,
                ),
            ),
            rdnss=self.dns_servers,
            rdnss_lifetime=dns_lifetime,
            dnssl=self.search,
            dnssl_lifetime=dns_lifetime,
        )
