"""``[dns]``: address lists of both IP versions, and the response-rate limiting settings."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from ddi.config import parse_config
from ddi.errors import ConfigError

PATH = Path("/etc/ddi/ddi.toml")


def dns(**table: Any) -> Any:
    data = {
        "site": {"id": "site1", "domain": "site1.example", "data_dir": "state"},
        "api": {"socket": "/run/ddi/ddi.sock"},
        "dns": table,
    }
    return parse_config(data, path=PATH).dns


@pytest.mark.parametrize("key", ["recursion_from", "allow_transfer", "rrl_exempt"])
def test_address_lists_take_ipv4_and_ipv6_networks(key: str) -> None:
    cfg = dns(**{key: ["198.18.0.0/24", "2001:db8:5::/48", "::1/128"]})
    assert getattr(cfg, key) == (
        IPv4Network("198.18.0.0/24"),
        IPv6Network("2001:db8:5::/48"),
        IPv6Network("::1/128"),
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [("2001:db8::1/48", "not a network"), ("resolver", "not a network"), (7, "CIDR string")],
)
def test_address_list_entries_are_checked(value: Any, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as err:
        dns(recursion_from=[value])
    assert err.value.key == "dns.recursion_from[0]"


def test_rate_limiting_is_on_by_default_with_nsds_numbers() -> None:
    cfg = dns()
    assert (cfg.rrl_ratelimit, cfg.rrl_slip) == (200, 2)
    assert (cfg.rrl_ipv4_prefix, cfg.rrl_ipv6_prefix) == (24, 56)
    assert dns(rrl_ratelimit=0).rrl_ratelimit == 0
