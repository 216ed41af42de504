"""``ddi.preflight``: what start-up refuses beyond the file itself, for each DHCP family."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from ddi.config import parse_config
from ddi.preflight import problems
from ddi.web.tls import self_signed

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


def test_api_tls_pair_and_tokens_file(tmp_path: Path) -> None:
    off = {"dhcp": {"enabled": False}}
    listen = {"listen": "198.18.0.1:8053"}
    assert _problems(tmp_path, api=listen, **off) == [], "the pair is made at first start"
    (tmp_path / "tokens.json").write_text('{"version": 2}')
    [bad_tokens] = _problems(tmp_path, **off)
    assert bad_tokens.startswith("api.tokens_file: ")
    assert "version" in bad_tokens
    (tmp_path / "tokens.json").unlink()

    other = tmp_path / "other"
    other.mkdir()
    now = datetime.datetime.now(datetime.UTC)
    cert, key = self_signed(other, ["198.18.0.1"], now=now)
    cert2, key2 = self_signed(tmp_path, ["198.18.0.1"], now=now)
    assert (
        _problems(tmp_path, api=listen | {"tls_cert": str(cert), "tls_key": str(key)}, **off) == []
    )
    mismatched = listen | {"tls_cert": str(cert), "tls_key": str(key2)}
    [problem] = _problems(tmp_path, api=mismatched, **off)
    assert problem.startswith("api.tls_cert: ")
    missing = listen | {"tls_cert": str(tmp_path / "none.pem"), "tls_key": str(key)}
    [problem] = _problems(tmp_path, api=missing, **off)
    assert "none.pem" in problem
    # The self-signed pair in the data directory, once made, is checked too.
    cert2.write_text("not a certificate\n")
    [problem] = _problems(tmp_path, api=listen, **off)
    assert problem.startswith("api: ")
