"""TOML configuration → frozen, validated config objects.

Rules:
* Parsed once, at start-up (and on SIGHUP); nothing reads configuration from a global.
* Every refusal is a ``ConfigError`` whose key is the dotted path of the offending key
  (``subnets[1].pools[0].end``) and whose reason says what was expected.
* Unknown keys are refused, with a hint when one is close to a known key.
* Relative paths resolve against the folder of the configuration file.
* Each setting is declared once, as a field of its section's dataclass: its type, default and
  bounds are what the parser reads (``ddi.config.table``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddi.config.boot import BOOT_ARCH_KEYS, BootConfig, BootProfileConfig, parse_boot
from ddi.config.dhcp import DhcpConfig, parse_dhcp
from ddi.config.dhcp6 import Dhcp6Config, parse_dhcp6
from ddi.config.dhcp_options import (
    check_pool_classes,
    parse_classes,
    parse_option_defs,
    parse_option_values,
    parse_shared_networks,
)
from ddi.config.dns import DnsConfig, SecondaryConfig, TsigKeyConfig, parse_dns
from ddi.config.ipam import IpamConfig, parse_ipam
from ddi.config.site import ApiConfig, SiteConfig, parse_api, parse_site
from ddi.config.subnets import parse_subnets
from ddi.config.subnets6 import parse_subnets6
from ddi.config.sync import SyncConfig, parse_sync
from ddi.config.table import Table
from ddi.errors import ConfigError
from ddi.ipam.models import Subnet
from ddi.ipam.models6 import Subnet6

__all__ = [
    "BOOT_ARCH_KEYS",
    "ApiConfig",
    "BootConfig",
    "BootProfileConfig",
    "Config",
    "Dhcp6Config",
    "DhcpConfig",
    "DnsConfig",
    "IpamConfig",
    "SecondaryConfig",
    "SiteConfig",
    "SyncConfig",
    "TsigKeyConfig",
    "load_config",
    "parse_config",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    path: Path
    site: SiteConfig
    api: ApiConfig
    subnets: tuple[Subnet, ...]
    subnets6: tuple[Subnet6, ...] = ()
    dhcp: DhcpConfig
    boot: BootConfig
    dns: DnsConfig
    sync: SyncConfig | None
    dhcp6: Dhcp6Config
    ipam: IpamConfig = field(default_factory=IpamConfig)


def parse_config(data: Mapping[str, Any], *, path: Path) -> Config:
    """Validate a parsed TOML document. Raises ConfigError naming the first bad key."""
    base = path.parent
    top = Table(data, "", base)
    site_table = top.table("site", required=True)
    assert site_table is not None
    site = parse_site(site_table)
    dhcp_table = top.table("dhcp")
    # Definitions first: subnets, classes and [[dhcp.options]] encode their values by them.
    option_defs, defs = parse_option_defs(dhcp_table)
    subnets = parse_subnets(top.tables("subnets"), site, defs)
    subnets6 = parse_subnets6(top.tables("subnets6"), site)
    boot = parse_boot(top.table("boot"), base)
    boots: list[tuple[str, str | None]] = [(f"subnets[{i}]", s.boot) for i, s in enumerate(subnets)]
    boots += [(f"subnets6[{i}]", s.boot) for i, s in enumerate(subnets6)]
    for where, profile in boots:
        if profile is not None and profile not in boot.profiles:
            raise ConfigError(f"{where}.boot", f"no [boot.profiles.{profile}] is defined")
    classes = parse_classes(dhcp_table, defs, tuple(boot.profiles))
    check_pool_classes(subnets, classes)
    shared, subnets = parse_shared_networks(dhcp_table, subnets)
    options = () if dhcp_table is None else parse_option_values(dhcp_table.tables("options"), defs)
    config = Config(
        path=path,
        site=site,
        api=parse_api(top.table("api")),
        subnets=subnets,
        subnets6=subnets6,
        dhcp=parse_dhcp(
            dhcp_table,
            option_defs=option_defs,
            options=options,
            classes=classes,
            shared_networks=shared,
        ),
        boot=boot,
        dns=parse_dns(top.table("dns")),
        sync=parse_sync(top.table("sync")),
        dhcp6=parse_dhcp6(top.table("dhcp6")),
        ipam=parse_ipam(top.table("ipam")),
    )
    top.done()
    return config


def load_config(path: Path) -> Config:
    """Read and validate a TOML configuration file.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or a key is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, path=path.resolve())
