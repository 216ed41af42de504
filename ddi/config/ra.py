"""``[subnets6.ra]``: one subnet's router advertisements (``ddi.ra.settings.RaSettings``).

What may be advertised is what the config owns: the subnet's own ``cidr`` and nothing else (a
``prefix`` key naming anything else is refused), on the subnet's own ``interface``, and not a
prefix that overlaps a delegation pool (those prefixes belong to the routers they are
delegated to).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Address, IPv6Network
from typing import TYPE_CHECKING

from ddi.config.table import Later, Table
from ddi.errors import ConfigError
from ddi.ra.settings import RaLink, RaSettings

if TYPE_CHECKING:
    from ddi.ipam.models6 import Subnet6


def _prefix(t: Table) -> IPv6Network | None:
    text = t.str_("prefix", None)
    if text is None:
        return None
    try:
        return IPv6Network(text, strict=True)
    except ValueError as exc:
        raise ConfigError(t.key("prefix"), f"{text!r} is not an IPv6 network: {exc}") from None


def parse_ra(
    t: Table | None,
    *,
    key: str,
    cidr: IPv6Network,
    interface: str | None,
) -> RaSettings:
    """The subnet's settings (off when the table is absent); ``refuse_delegated`` checks them
    against the other subnets once all are read.

    Raises:
        ConfigError: a bad value, or an advertisement of something the config does not own.
    """
    if t is None:
        return RaSettings()
    settings = t.read(RaSettings, prefix=Later(lambda: _prefix(t)))
    t.done()
    if settings.prefix is not None and settings.prefix != cidr:
        raise ConfigError(
            t.key("prefix"),
            f"{settings.prefix} is not this subnet's cidr {cidr}: "
            "only the subnet's own prefix may be advertised",
        )
    limit = 0.75 * settings.interval  # RFC 4861 §6.2.1: MinRtrAdvInterval <= 0.75 x Max
    if settings.min_interval is not None and settings.min_interval > limit:
        raise ConfigError(t.key("min_interval"), f"must be at most 0.75 x interval ({limit:g})")
    if 0 < settings.router_lifetime < settings.interval:  # §6.2.1: 0, or interval..9000
        raise ConfigError(t.key("router_lifetime"), "must be 0 or at least interval")
    if settings.preferred_lifetime > settings.valid_lifetime:
        raise ConfigError(t.key("preferred_lifetime"), "must not exceed valid_lifetime")
    if settings.autonomous and cidr.prefixlen != 64:
        # RFC 4862 §5.5.3: a host forms addresses only from a prefix of 128 - 64 bits.
        raise ConfigError(t.key("autonomous"), f"SLAAC needs a /64, not {cidr}")
    if settings.enabled and interface is None:
        raise ConfigError(
            t.key("enabled"), "needs the subnet's interface: advertisements go on a link"
        )
    return settings


def refuse_delegated(subnets: Sequence[Subnet6]) -> None:
    """Refuse a subnet that advertises a prefix overlapping any subnet's delegation pool.

    Raises:
        ConfigError: naming the advertising subnet's ``ra.enabled``.
    """
    delegated = [pool.prefix for s in subnets for pool in s.pd_pools]
    for i, subnet in enumerate(subnets):
        if subnet.ra.enabled:
            for prefix in delegated:
                if prefix.overlaps(subnet.cidr):
                    raise ConfigError(
                        f"subnets6[{i}].ra.enabled",
                        f"{subnet.cidr} overlaps the delegation pool {prefix}: "
                        "not this link's to advertise",
                    )


def links(subnets: Sequence[Subnet6]) -> list[RaLink]:
    """What each subnet that enables advertisements advertises."""
    found = []
    for s in subnets:
        link = ra_link(
            subnet=s.name,
            cidr=s.cidr,
            interface=s.interface,
            settings=s.ra,
            has_pools=bool(s.pools or s.pd_pools),
            dns_servers=s.dns_servers,
            # An empty search list means the subnet's domain alone (as DHCPv6 option 24).
            search=s.search or ((s.domain,) if s.domain else ()),
        )
        if link is not None:
            found.append(link)
    return found


def ra_link(
    *,
    subnet: str,
    cidr: IPv6Network,
    interface: str | None,
    settings: RaSettings,
    has_pools: bool,
    dns_servers: Sequence[IPv6Address],
    search: Sequence[str],
) -> RaLink | None:
    """What the subnet advertises, or None when its advertisements are off."""
    if not settings.enabled or interface is None:
        return None
    managed = has_pools if settings.managed is None else settings.managed
    autonomous = settings.autonomous
    if autonomous is None:
        autonomous = cidr.prefixlen == 64 and not managed
    return RaLink(
        subnet=subnet,
        interface=interface,
        settings=settings,
        cidr=cidr,
        managed=managed,
        autonomous=autonomous,
        dns_servers=tuple(dns_servers),
        search=tuple(search),
    )
