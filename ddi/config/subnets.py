"""``[[subnets]]``: the networks the site serves, read into ``ddi.ipam.models.Subnet`` (whose
fields declare their defaults and bounds)."""

from __future__ import annotations

from ipaddress import IPv4Network

from ddi.config.dhcp_options import parse_option_values
from ddi.config.site import SiteConfig
from ddi.config.table import Later, Table, domain, label
from ddi.dhcp.option_defs import OptionDefs
from ddi.errors import ConfigError
from ddi.ipam.models import Pool, Route, Subnet


def _pool(t: Table, cidr: IPv4Network) -> Pool:
    start, end = t.ip_("start"), t.ip_("end")
    for name, ip in (("start", start), ("end", end)):
        if ip not in cidr:
            raise ConfigError(t.key(name), f"{ip} is outside the subnet {cidr}")
        if cidr.prefixlen < 31 and ip in (cidr.network_address, cidr.broadcast_address):
            raise ConfigError(t.key(name), f"{ip} is the subnet's network or broadcast address")
    if end < start:
        raise ConfigError(t.key("end"), f"{end} is before start {start}")
    client_class = t.str_("client_class", None)
    t.done()
    return Pool(start=start, end=end, client_class=client_class)


def _route(t: Table) -> Route:
    route = t.read(Route)
    t.done()
    return route


def _subnet(t: Table, site: SiteConfig, defs: OptionDefs) -> Subnet:
    name = label(t.key("name"), t.field(Subnet, "name"))
    cidr = t.field(Subnet, "cidr")
    gateway = t.field(Subnet, "gateway")
    if gateway is not None and gateway not in cidr:
        raise ConfigError(t.key("gateway"), f"{gateway} is outside the subnet {cidr}")
    pools = tuple(_pool(p, cidr) for p in t.tables("pools"))
    for i, a in enumerate(pools):
        for b in pools[i + 1 :]:
            if a.start <= b.end and b.start <= a.end:
                raise ConfigError(
                    t.key("pools"), f"pools {a.start}-{a.end} and {b.start}-{b.end} overlap"
                )
    subnet_domain = t.field(Subnet, "domain")
    subnet = t.read(
        Subnet,
        name=name,
        cidr=cidr,
        gateway=gateway,
        domain=Later(
            lambda: site.domain if subnet_domain is None else domain(t.key("domain"), subnet_domain)
        ),
        pools=pools,
        routes=Later(lambda: tuple(_route(r) for r in t.tables("routes"))),
        options=Later(lambda: parse_option_values(t.tables("options"), defs)),
    )
    t.done()
    return subnet


def parse_subnets(
    tables: list[Table], site: SiteConfig, defs: OptionDefs | None = None
) -> tuple[Subnet, ...]:
    known = OptionDefs() if defs is None else defs
    subnets = tuple(_subnet(t, site, known) for t in tables)
    seen: dict[str, int] = {}
    for i, s in enumerate(subnets):
        if s.name in seen:
            raise ConfigError(f"subnets[{i}].name", f"{s.name!r} is also subnets[{seen[s.name]}]")
        seen[s.name] = i
        for j, other in enumerate(subnets[:i]):
            if s.cidr.overlaps(other.cidr):
                raise ConfigError(
                    f"subnets[{i}].cidr",
                    f"{s.cidr} overlaps subnets[{j}] ({other.name}, {other.cidr})",
                )
    return subnets
