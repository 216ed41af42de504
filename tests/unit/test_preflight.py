"""``ddi.preflight``: what start-up refuses beyond the file itself, for each DHCP family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ddi.config import parse_config
from ddi.preflight import problems

LAN = {"name": "lan", "cidr": "198.18.0.0/24"}
LAN6 = {"name": "lan6", "cidr": "2001:db8:10::/64"}


def _problems(tmp_path: Path, **sections: Any) -> list[str]:
    data = {"site": {"id": "s1", "domain": "site1.example", "data_dir": str(tmp_path)}}
    return problems(parse_config(data | sections, path=tmp_path / "ddi.toml"))


def test_dhcp_on_by_default_needs_some_subnet(tmp_path: Path) -> None:
    assert _problems(tmp_path) == ["dhcp.enabled: DHCP is enabled but no [[subnets]] is configured"]
    assert _problems(tmp_path, subnets=[LAN]) == []
    # A site that describes only IPv6 subnets is not refused for DHCPv4's default.
    assert _problems(tmp_path, subnets6=[LAN6]) == []
    assert _problems(tmp_path, dhcp={"enabled": False}) == []


def test_dhcp6_enabled_needs_subnets6_and_their_interfaces(tmp_path: Path) -> None:
    assert _problems(tmp_path, subnets=[LAN], dhcp6={"enabled": True}) == [
        "dhcp6.enabled: DHCPv6 is enabled but no [[subnets6]] is configured"
    ]
    missing = LAN6 | {"interface": "nosuch6"}
    assert _problems(tmp_path, subnets6=[missing], dhcp6={"enabled": True}) == [
        "subnets6[0].interface: no interface 'nosuch6'"
    ]
