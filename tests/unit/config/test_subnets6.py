"""``[[subnets6]]``: IPv6 subnets with address and prefix-delegation pools."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from ddi.config import parse_config
from ddi.errors import ConfigError
from ddi.ipam.models6 import PdPool, Pool6, Subnet6

PATH = Path("/etc/ddi/ddi.toml")


def config(*subnets6: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "site": {"id": "site1", "domain": "site1.example", "data_dir": "state"},
        "subnets6": list(subnets6),
        **top,
    }


def lan6(**fields: Any) -> dict[str, Any]:
    return {
        "name": "lan6",
        "cidr": "2001:db8:10::/64",
        "pools": [{"start": "2001:db8:10::1000", "end": "2001:db8:10::1fff"}],
        "pd_pools": [{"prefix": "2001:db8:100::/40", "delegated_length": 56}],
        **fields,
    }


def test_a_subnet6_parses_with_its_defaults() -> None:
    parsed = parse_config(config(lan6(dns_servers=["2001:db8:10::53"])), path=PATH)
    assert parsed.subnets == ()
    assert parsed.subnets6 == (
        Subnet6(
            name="lan6",
            cidr=IPv6Network("2001:db8:10::/64"),
            pools=(
                Pool6(start=IPv6Address("2001:db8:10::1000"), end=IPv6Address("2001:db8:10::1fff")),
            ),
            pd_pools=(PdPool(prefix=IPv6Network("2001:db8:100::/40"), delegated_length=56),),
            dns_servers=(IPv6Address("2001:db8:10::53"),),
            domain="site1.example",
            preferred_lifetime=3600,
            valid_lifetime=7200,
        ),
    )
    assert parsed.subnets6[0].pd_pools[0].size == 1 << 16


def test_every_setting_is_read() -> None:
    parsed = parse_config(
        config(
            lan6(
                domain="Lab.Site1.Example",
                search=["lab.site1.example", "site1.example"],
                ntp_servers=["2001:db8:10::123"],
                interface="eth1",
                relay_links=["2001:db8:99::1"],
                preferred_lifetime=600,
                valid_lifetime=900,
                rapid_commit=True,
                known_hosts_only=True,
                boot="pxe",
            )
        )
        | {"boot": {"profiles": {"pxe": {"efi_x86_64": "ipxe.efi"}}}},
        path=PATH,
    )
    s = parsed.subnets6[0]
    assert (s.domain, s.search) == ("lab.site1.example", ("lab.site1.example", "site1.example"))
    assert s.ntp_servers == (IPv6Address("2001:db8:10::123"),)
    assert (s.interface, s.relay_links) == ("eth1", (IPv6Address("2001:db8:99::1"),))
    assert (s.preferred_lifetime, s.valid_lifetime) == (600, 900)
    assert (s.rapid_commit, s.known_hosts_only, s.boot) == (True, True, "pxe")
    assert Subnet6.from_image(s.to_image()) == s


@pytest.mark.parametrize(
    ("subnets6", "key", "reason"),
    [
        ([lan6(cidr="198.18.0.0/24")], "subnets6[0].cidr", "not an IPv6 network"),
        ([lan6(cidr="2001:db8:10::1/64")], "subnets6[0].cidr", "host bits set"),
        (
            [lan6(pools=[{"start": "2001:db8:11::1", "end": "2001:db8:11::2"}])],
            "subnets6[0].pools[0].start",
            "outside the subnet",
        ),
        (
            [lan6(pools=[{"start": "2001:db8:10::", "end": "2001:db8:10::2"}])],
            "subnets6[0].pools[0].start",
            "subnet-router anycast",
        ),
        (
            [lan6(pools=[{"start": "2001:db8:10::9", "end": "2001:db8:10::2"}])],
            "subnets6[0].pools[0].end",
            "before start",
        ),
        (
            [
                lan6(
                    pools=[
                        {"start": "2001:db8:10::1", "end": "2001:db8:10::20"},
                        {"start": "2001:db8:10::20", "end": "2001:db8:10::30"},
                    ]
                )
            ],
            "subnets6[0].pools",
            "overlap",
        ),
        (
            [lan6(pd_pools=[{"prefix": "2001:db8:100::/56", "delegated_length": 48}])],
            "subnets6[0].pd_pools[0].delegated_length",
            "shorter than",
        ),
        (
            [lan6(pd_pools=[{"prefix": "2001:db8:100::/40", "delegated_length": 129}])],
            "subnets6[0].pd_pools[0].delegated_length",
            "at most 128",
        ),
        (
            [lan6(pd_pools=[{"prefix": "2001:db8:10::1f00/120", "delegated_length": 124}])],
            "subnets6",
            "overlap",
        ),
        (
            [
                lan6(),
                lan6(
                    name="other",
                    cidr="2001:db8:20::/64",
                    pools=[],
                    pd_pools=[{"prefix": "2001:db8:100:ff00::/56", "delegated_length": 60}],
                ),
            ],
            "subnets6",
            "overlap",
        ),
        (
            [lan6(), lan6(cidr="2001:db8:20::/64", pools=[], pd_pools=[])],
            "subnets6[1].name",
            "also",
        ),
        (
            [lan6(), lan6(name="b", cidr="2001:db8:10::/48", pools=[], pd_pools=[])],
            "subnets6[1].cidr",
            "overlaps",
        ),
        (
            [lan6(preferred_lifetime=900, valid_lifetime=600)],
            "subnets6[0].preferred_lifetime",
            "exceeds",
        ),
        ([lan6(valid_lifetime=10)], "subnets6[0].valid_lifetime", "at least 60"),
        ([lan6(dns_servers=["198.18.0.53"])], "subnets6[0].dns_servers[0]", "not an IPv6"),
        ([lan6(search=["bad..name"])], "subnets6[0].search[0]", "not a valid domain"),
        ([lan6(boot="nope")], "subnets6[0].boot", "no [boot.profiles.nope]"),
        ([lan6(gateway="2001:db8:10::1")], "subnets6[0].gateway", "unknown key"),
    ],
)
def test_bad_subnet6_is_refused_naming_the_key(
    subnets6: list[dict[str, Any]], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(*subnets6), path=PATH)
    assert caught.value.key == key
    assert reason in str(caught.value)
