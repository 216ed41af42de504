"""``[subnets6.ra]``: defaults, bounds, and the refusal to advertise what the config does not
own."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from ddi.config.ra import parse_ra, ra_link
from ddi.config.table import Table
from ddi.errors import ConfigError
from ddi.ra.settings import RaSettings

CIDR = IPv6Network("2001:db8:10::/64")
KEY = "subnets6[0].ra"


def ra(data: dict[str, Any] | None, **kw: Any) -> RaSettings:
    table = None if data is None else Table(data, KEY, Path("/etc/ddi"))
    args: dict[str, Any] = {"key": KEY, "cidr": CIDR, "interface": "ddi0"} | kw
    return parse_ra(table, **args)


def test_off_by_default_with_rfc_4861_defaults() -> None:
    settings = ra(None)
    assert not settings.enabled
    assert settings.interval == 600
    assert settings.min_seconds == 198  # 0.33 x MaxRtrAdvInterval
    assert settings.router_lifetime == 0  # the appliance does not forward
    assert ra({}) == settings


def test_flags_follow_the_subnet() -> None:
    settings = ra({"enabled": True, "interval": 30})
    with_pools = ra_link(subnet="lan6", cidr=CIDR, interface="ddi0", settings=settings,
                         has_pools=True, dns_servers=[IPv6Address("2001:db8:10::1")],
                         search=["lab.example"])  # fmt: skip
    assert with_pools is not None
    assert with_pools.managed
    assert not with_pools.autonomous  # addresses come from DHCPv6
    advert = with_pools.advert(None)
    assert advert.other
    assert advert.rdnss == (IPv6Address("2001:db8:10::1"),)
    assert advert.dnssl == ("lab.example",)
    assert advert.rdnss_lifetime == 90  # 3 x interval (RFC 8106 §5.1)
    assert [p.prefix for p in advert.prefixes] == [CIDR]
    slaac = ra_link(subnet="lan6", cidr=CIDR, interface="ddi0", settings=settings,
                    has_pools=False, dns_servers=[], search=[])  # fmt: skip
    assert slaac is not None
    assert not slaac.managed
    assert slaac.autonomous
    assert ra_link(subnet="x", cidr=CIDR, interface="ddi0", settings=ra(None), has_pools=True,
                   dns_servers=[], search=[]) is None  # fmt: skip


def test_the_subnets_own_prefix_may_be_named() -> None:
    assert ra({"enabled": True, "prefix": "2001:db8:10::/64"}).prefix == CIDR


@pytest.mark.parametrize(
    ("data", "kw", "key", "reason"),
    [
        ({"enabled": True, "prefix": "2001:db8:99::/64"}, {}, "prefix", "not this subnet's"),
        ({"prefix": "2001:db8:10::/48"}, {}, "prefix", "not this subnet's"),
        ({"prefix": "2001:db8:10::1/64"}, {}, "prefix", "not an IPv6 network"),
        ({"enabled": True}, {"interface": None}, "enabled", "interface"),
        ({"autonomous": True}, {"cidr": IPv6Network("2001:db8:10::/80")}, "autonomous", "/64"),
        ({"interval": 3}, {}, "interval", "at least 4"),
        ({"interval": 100, "min_interval": 80}, {}, "min_interval", "0.75"),
        ({"interval": 600, "router_lifetime": 300}, {}, "router_lifetime", "0 or at least"),
        ({"router_lifetime": 9001}, {}, "router_lifetime", "at most 9000"),
        ({"preferred_lifetime": 10, "valid_lifetime": 5}, {}, "preferred_lifetime", "exceed"),
        ({"mtu": 1000}, {}, "mtu", "at least 1280"),
        ({"enable": True}, {}, "enable", "unknown key"),
    ],
)
def test_refused(data: dict[str, Any], kw: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as info:
        ra(data, **kw)
    assert info.value.key == f"{KEY}.{key}"


DOC = """
[site]
id = "s1"
domain = "lab.example"

[[subnets6]]
name = "lan6"
cidr = "2001:db8:10::/48"
interface = "ddi0"
dns_servers = ["2001:db8:10::1"]

[[subnets6.pools]]
start = "2001:db8:10::100"
end = "2001:db8:10::1ff"
"""


def parse_doc(extra: str) -> Any:
    import tomllib

    from ddi.config import parse_config

    return parse_config(tomllib.loads(DOC + extra), path=Path("/etc/ddi/site.toml"))


def test_a_site_config_reads_subnets6_ra_and_keeps_it_out_of_the_image() -> None:
    config = parse_doc("\n[subnets6.ra]\nenabled = true\ninterval = 60\n")
    (subnet,) = config.subnets6
    assert subnet.ra == RaSettings(enabled=True, interval=60)
    assert "ra" not in subnet.to_image()  # config only: never in the change log
    assert not parse_doc("").subnets6[0].ra.enabled


def test_a_site_config_advertising_another_prefix_is_refused() -> None:
    with pytest.raises(ConfigError, match="only the subnet's own prefix") as info:
        parse_doc('\n[subnets6.ra]\nenabled = true\nprefix = "2001:db8:99::/64"\n')
    assert info.value.key == "subnets6[0].ra.prefix"


def test_a_site_config_advertising_over_a_delegation_pool_is_refused() -> None:
    pd = '\n[[subnets6.pd_pools]]\nprefix = "2001:db8:10:100::/56"\ndelegated_length = 64\n'
    assert not parse_doc(pd).subnets6[0].ra.enabled  # delegating alone is fine
    with pytest.raises(ConfigError, match="delegation pool 2001:db8:10:100::/56") as info:
        parse_doc(pd + "\n[subnets6.ra]\nenabled = true\n")
    assert info.value.key == "subnets6[0].ra.enabled"
