"""``[[subnets6]]``: the IPv6 networks the site serves, read into
``ddi.ipam.models6.Subnet6`` (whose fields declare their defaults and bounds).

Kept apart from ``[[subnets]]`` as Kea keeps ``subnet6`` apart from ``subnet4``: a dual-stack
link is one table of each.
"""

from __future__ import annotations

import itertools
from ipaddress import IPv6Network

from ddi.config.site import SiteConfig
from ddi.config.table import Later, Table, domain, label
from ddi.errors import ConfigError
from ddi.ipam.models6 import PdPool, Pool6, Subnet6

__all__ = ["parse_subnets6"]


def _pool(t: Table, cidr: IPv6Network) -> Pool6:
    start, end = t.ip6_("start"), t.ip6_("end")
    for name, ip in (("start", start), ("end", end)):
        if ip not in cidr:
            raise ConfigError(t.key(name), f"{ip} is outside the subnet {cidr}")
        # RFC 4291 §2.6.1: the subnet-router anycast address is no client's.
        if cidr.prefixlen < 127 and ip == cidr.network_address:
            raise ConfigError(t.key(name), f"{ip} is the subnet-router anycast address")
    if end < start:
        raise ConfigError(t.key("end"), f"{end} is before start {start}")
    t.done()
    return Pool6(start=start, end=end)


def _pd_pool(t: Table) -> PdPool:
    prefix = t.field(PdPool, "prefix")
    length = t.int_("delegated_length", lo=1, hi=128)
    if length < prefix.prefixlen:
        raise ConfigError(
            t.key("delegated_length"),
            f"{length} is shorter than the pool's prefix length /{prefix.prefixlen}",
        )
    t.done()
    return PdPool(prefix=prefix, delegated_length=length)


def _search(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "must be a domain name")
    return domain(key, value)


def _no_overlap(key: str, what: str, ranges: list[tuple[int, int, str]]) -> None:
    ordered = sorted(ranges)
    for (_, a_end, a), (b_start, _, b) in itertools.pairwise(ordered):
        if b_start <= a_end:
            raise ConfigError(key, f"{what} {a} and {b} overlap")


def _subnet6(t: Table, site: SiteConfig) -> Subnet6:
    name = label(t.key("name"), t.field(Subnet6, "name"))
    cidr = t.field(Subnet6, "cidr")
    pools = tuple(_pool(p, cidr) for p in t.tables("pools"))
    _no_overlap(
        t.key("pools"),
        "pools",
        [(int(p.start), int(p.end), f"{p.start}-{p.end}") for p in pools],
    )
    pd_pools = tuple(_pd_pool(p) for p in t.tables("pd_pools"))
    subnet_domain = t.field(Subnet6, "domain")
    subnet = t.read(
        Subnet6,
        name=name,
        cidr=cidr,
        pools=pools,
        pd_pools=pd_pools,
        domain=Later(
            lambda: site.domain if subnet_domain is None else domain(t.key("domain"), subnet_domain)
        ),
        search=Later(lambda: t.list_("search", _search)),
    )
    if subnet.preferred_lifetime > subnet.valid_lifetime:
        # RFC 8415 §21.6: a preferred lifetime greater than the valid one is discarded.
        raise ConfigError(
            t.key("preferred_lifetime"),
            f"{subnet.preferred_lifetime} exceeds valid_lifetime {subnet.valid_lifetime}",
        )
    t.done()
    return subnet


def parse_subnets6(tables: list[Table], site: SiteConfig) -> tuple[Subnet6, ...]:
    """Every ``[[subnets6]]`` table; names unique, networks disjoint, and no address or
    prefix in two pools (of one subnet or of two)."""
    subnets = tuple(_subnet6(t, site) for t in tables)
    seen: dict[str, int] = {}
    for i, s in enumerate(subnets):
        if s.name in seen:
            raise ConfigError(f"subnets6[{i}].name", f"{s.name!r} is also subnets6[{seen[s.name]}]")
        seen[s.name] = i
        for j, other in enumerate(subnets[:i]):
            if s.cidr.overlaps(other.cidr):
                raise ConfigError(
                    f"subnets6[{i}].cidr",
                    f"{s.cidr} overlaps subnets6[{j}] ({other.name}, {other.cidr})",
                )
    # A delegated prefix is routed to the requesting router: it may lie outside its subnet,
    # but never over an address pool or another pool's prefixes (of any subnet).
    ranges = [
        (int(p.start), int(p.end), f"{s.name} pool {p.start}-{p.end}")
        for s in subnets
        for p in s.pools
    ]
    ranges += [
        (
            int(p.prefix.network_address),
            int(p.prefix.broadcast_address),
            f"{s.name} pd pool {p.prefix}",
        )
        for s in subnets
        for p in s.pd_pools
    ]
    _no_overlap("subnets6", "pools", ranges)
    return subnets
