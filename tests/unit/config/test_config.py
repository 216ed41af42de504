"""Configuration: a good file parses; each invalid key is refused with its dotted key and why."""

from __future__ import annotations

import copy
import dataclasses
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from ddi.config import (
    ApiConfig,
    BootConfig,
    BootProfileConfig,
    DhcpConfig,
    DnsConfig,
    SecondaryConfig,
    SyncConfig,
    TsigKeyConfig,
    load_config,
    parse_config,
)
from ddi.errors import ConfigError
from ddi.ipam.models import Subnet

REPO = Path(__file__).resolve().parents[3]
PATH = Path("/etc/ddi/ddi.toml")


def base() -> dict[str, Any]:
    return {
        "site": {"id": "site1", "domain": "Site1.Example.", "data_dir": "state"},
        "api": {"socket": "/run/ddi/ddi.sock"},
        "subnets": [
            {
                "name": "lan",
                "cidr": "198.18.0.0/24",
                "gateway": "198.18.0.1",
                "dns_servers": ["198.18.0.1"],
                "pools": [{"start": "198.18.0.100", "end": "198.18.0.199"}],
            },
            {"name": "servers", "cidr": "198.18.1.0/24", "domain": "srv.site1.example"},
        ],
        "dhcp": {"enabled": False},
    }


def with_value(path: str, value: Any) -> dict[str, Any]:
    """``base()`` with the key at dotted ``path`` (``subnets.0.cidr``) set, or deleted for
    ``...``."""
    data = base()
    node: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def test_valid_config_parses_to_typed_values() -> None:
    config = parse_config(base(), path=PATH)
    assert config.site.domain == "site1.example"
    assert config.site.data_dir == Path("/etc/ddi/state")
    lan, servers = config.subnets
    assert lan.cidr == IPv4Network("198.18.0.0/24")
    assert lan.gateway == IPv4Address("198.18.0.1")
    assert lan.domain == "site1.example"  # the site domain unless the subnet sets one
    assert servers.domain == "srv.site1.example"
    assert lan.pools[0].size == 100
    assert config.dhcp.enabled is False
    assert config.sync is None


def test_example_site_config_loads_as_it_is() -> None:
    config = load_config(REPO / "examples" / "site.toml")
    assert config.site.id
    assert config.subnets
    assert config.ipam.retention_days == 90
    assert config.ipam.renewal_log_interval == 21600


@pytest.mark.parametrize(
    ("path", "value", "key", "reason"),
    [
        ("site", ..., "site", "is required"),
        ("site.id", ..., "site.id", "is required"),
        ("site.id", "site 1", "site.id", "letters, digits"),
        ("site.id", 7, "site.id", "must be a string, not an integer"),
        ("site.domain", "bad..example", "site.domain", "not a valid domain"),
        ("site.domian", "x.example", "site.domian", "did you mean 'domain'"),
        ("sites", {}, "sites", "did you mean 'site'"),
        ("subnets.0.cidr", "198.18.0.1/24", "subnets[0].cidr", "not an IPv4 network"),
        ("subnets.0.cidr", "2001:db8::/64", "subnets[0].cidr", "not an IPv4 network"),
        ("subnets.0.gateway", "198.18.9.1", "subnets[0].gateway", "outside the subnet"),
        ("subnets.0.gateway", "gw", "subnets[0].gateway", "not an IPv4 address"),
        ("subnets.0.lease_time", 10, "subnets[0].lease_time", "at least 60"),
        ("subnets.0.lease_time", True, "subnets[0].lease_time", "not a boolean"),
        ("subnets.0.dns_servers", ["x"], "subnets[0].dns_servers[0]", "not an IPv4 address"),
        ("subnets.0.lease_tme", 600, "subnets[0].lease_tme", "did you mean 'lease_time'"),
        ("subnets.0.pools.0.end", "198.18.2.10", "subnets[0].pools[0].end", "outside the subnet"),
        ("subnets.0.pools.0.end", "198.18.0.255", "subnets[0].pools[0].end", "broadcast"),
        ("subnets.0.pools.0.start", "198.18.0.0", "subnets[0].pools[0].start", "network"),
        ("subnets.0.pools.0.end", "198.18.0.50", "subnets[0].pools[0].end", "before start"),
        ("subnets.1.name", "lan", "subnets[1].name", "also subnets[0]"),
        ("subnets.1.cidr", "198.18.0.128/25", "subnets[1].cidr", "overlaps subnets[0]"),
        ("subnets.1.boot", "pxe", "subnets[1].boot", "no [boot.profiles.pxe]"),
        ("subnets.1.mtu", 20, "subnets[1].mtu", "at least 68"),
        ("api.listen", "127.0.0.1:99999", "api.listen", "port"),
        ("api.tls_cert", "cert.pem", "api.tls_cert", "together"),
        ("api.tls", "no", "api.tls", "true or false"),
        ("dhcp.port", 70000, "dhcp.port", "at most 65535"),
        ("dhcp.enabled", "yes", "dhcp.enabled", "true or false"),
        ("dns.forwarders", ["resolver"], "dns.forwarders[0]", "not an IP address"),
        ("sync.central_url", "http://c.example", "sync.central_url", "insecure_http"),
        ("ipam.retention_days", -1, "ipam.retention_days", "at least 0"),
        ("ipam.retention_entries", "many", "ipam.retention_entries", "must be an integer"),
        ("ipam.renewal_log_intervall", 60, "ipam.renewal_log_intervall", "did you mean"),
    ],
)
def test_invalid_key_is_named_with_its_reason(path: str, value: Any, key: str, reason: str) -> None:
    data = with_value(path, value)
    with pytest.raises(ConfigError) as caught:
        parse_config(data, path=PATH)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{key}: ")


def test_unknown_top_level_key_without_a_near_match() -> None:
    data = base() | {"zzz": 1}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, path=PATH)
    assert (caught.value.key, caught.value.reason) == ("zzz", "unknown key")


def test_load_config_refuses_unreadable_and_non_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\nid = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "api.token").write_text("s3cret\n")
    (folder / "ddi.toml").write_text(
        '[site]\nid = "s"\ndomain = "s.example"\ndata_dir = "data"\n'
        '[api]\nsocket = "run/ddi.sock"\nlisten = "127.0.0.1:8053"\ntoken_file = "api.token"\n'
    )
    config = load_config(folder / "ddi.toml")
    assert config.site.data_dir == folder / "data"
    assert config.api.socket == folder / "run" / "ddi.sock"
    assert config.api.token == "s3cret"
    assert config.api.listen == ("127.0.0.1", 8053)


def test_api_tls_and_tokens_file(tmp_path: Path) -> None:
    def api(text: str) -> ApiConfig:
        path = tmp_path / "ddi.toml"
        path.write_text(f'[site]\nid = "s"\ndomain = "s.example"\n[api]\n{text}\n')
        return load_config(path).api

    plain = api('listen = "198.18.0.1:8053"\ntokens_file = "t.json"')
    assert (plain.tls, plain.tokens_file, plain.token) == (True, tmp_path / "t.json", None)
    assert api('listen = "127.0.0.1:8053"\ntls = false').tls is False
    assert api('listen = "[::1]:8053"\ntls = false').tls is False
    for listen in ("198.18.0.1:8053", "0.0.0.0:8053", "[::]:8053"):
        with pytest.raises(ConfigError, match="only allowed on a loopback") as caught:
            api(f'listen = "{listen}"\ntls = false')
        assert caught.value.key == "api.tls"
    pair = api('listen = "198.18.0.1"\ntls_cert = "c.pem"\ntls_key = "k.pem"')
    assert (pair.tls_cert, pair.tls_key) == (tmp_path / "c.pem", tmp_path / "k.pem")
    with pytest.raises(ConfigError, match="which one"):
        api('listen = "127.0.0.1"\ntls = false\ntls_cert = "c.pem"\ntls_key = "k.pem"')


def test_config_is_not_changed_by_parsing() -> None:
    data = base()
    before = copy.deepcopy(data)
    parse_config(data, path=PATH)
    assert data == before


# Each section's dataclass declares its defaults and bounds once; the parser reads them from
# there. These tests hold the two together: an empty section parses to the declared defaults,
# and every declared bound is refused one step outside it.

MINIMAL: dict[str, Any] = {"site": {"id": "s", "domain": "s.example"}}
SYNC = {
    "central_url": "https://central.example",
    "site_key": "k.pem",
    "central_public_key": "c.pem",
    "ca_file": "ca.pem",
}
SECTIONS: list[tuple[str, type, dict[str, Any]]] = [
    ("api", ApiConfig, {}),
    ("dhcp", DhcpConfig, {}),
    ("boot", BootConfig, {}),
    ("dns", DnsConfig, {}),
    ("sync", SyncConfig, SYNC),
]


def parsed_section(name: str, section: dict[str, Any]) -> Any:
    return getattr(parse_config(MINIMAL | {name: section}, path=PATH), name)


def declared_defaults(cls: type) -> dict[str, Any]:
    found = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            found[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            found[f.name] = f.default_factory()
    return found


@pytest.mark.parametrize(("name", "cls", "required"), SECTIONS, ids=[s[0] for s in SECTIONS])
def test_an_empty_section_parses_to_the_declared_defaults(
    name: str, cls: type, required: dict[str, Any]
) -> None:
    section = parsed_section(name, dict(required))
    defaults = {k: v for k, v in declared_defaults(cls).items() if k not in required}
    assert defaults, cls
    assert {k: getattr(section, k) for k in defaults} == defaults


def test_empty_subnet_profile_and_keys_parse_to_the_declared_defaults() -> None:
    data = MINIMAL | {
        "subnets": [{"name": "lan", "cidr": "198.18.0.0/24"}],
        "boot": {"profiles": {"p": {}}},
        "dns": {
            "tsig": {"k": {"secret": "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA="}},
            "secondaries": [{"address": "198.18.0.53"}],
        },
    }
    config = parse_config(data, path=PATH)
    parsed = [
        (config.subnets[0], Subnet),
        (config.boot.profiles["p"], BootProfileConfig),
        (config.dns.tsig_keys["k"], TsigKeyConfig),
        (config.dns.secondaries[0], SecondaryConfig),
    ]
    for value, cls in parsed:
        defaults = declared_defaults(cls)
        if cls is Subnet:  # a subnet without a domain takes the site's
            assert defaults.pop("domain") is None
            assert config.subnets[0].domain == "s.example"
        assert {k: getattr(value, k) for k in defaults} == defaults, cls


def test_missing_sections_are_the_declared_defaults() -> None:
    config = parse_config(MINIMAL, path=PATH)
    assert config.api == ApiConfig()
    assert config.dhcp == DhcpConfig()
    assert config.dns == DnsConfig(enabled=False)
    assert config.boot == BootConfig(
        root=PATH.parent / "boot", tftp_enabled=False, http_enabled=False
    )
    assert config.site.data_dir == PATH.parent / "var" / "lib" / "ddi"
    assert config.sync is None


def declared_bounds() -> list[tuple[str, str, float, str]]:
    """(section, key, value one step outside a bound, the reason the parser gives)."""
    cases = []
    for name, cls, _ in [*SECTIONS, ("subnets", Subnet, {})]:
        for f in dataclasses.fields(cls):
            lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
            step = 1 if isinstance(f.default, int) or f.default is None else lo or 0.5
            if lo is not None:
                cases.append((name, f.name, lo - step, f"must be at least {lo}, not {lo - step}"))
            if hi is not None:
                cases.append((name, f.name, hi + 1, f"must be at most {hi}, not {hi + 1}"))
    return cases


@pytest.mark.parametrize(("name", "key", "value", "reason"), declared_bounds())
def test_every_declared_bound_is_refused_one_step_outside(
    name: str, key: str, value: float, reason: str
) -> None:
    data: dict[str, Any]
    if name == "subnets":
        data = MINIMAL | {"subnets": [{"name": "lan", "cidr": "198.18.0.0/24", key: value}]}
        where = f"subnets[0].{key}"
    else:
        data = MINIMAL | {name: dict(SYNC if name == "sync" else {}, **{key: value})}
        where = f"{name}.{key}"
    with pytest.raises(ConfigError) as caught:
        parse_config(data, path=PATH)
    assert (caught.value.key, caught.value.reason) == (where, reason)
