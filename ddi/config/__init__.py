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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddi.config.boot import BOOT_ARCH_KEYS, BootConfig, BootProfileConfig, parse_boot
from ddi.config.dhcp import DhcpConfig, parse_dhcp
from ddi.config.dhcp_options import (
    check_pool_classes,
    parse_classes,
    parse_option_defs,
    parse_option_values,
    parse_shared_networks,
)
from ddi.config.dns import DnsConfig, SecondaryConfig, TsigKeyConfig, parse_dns
from ddi.config.site import ApiConfig, SiteConfig, parse_api, parse_site
from ddi.config.subnets import parse_subnets
from ddi.config.sync import SyncConfig, parse_sync
from ddi.config.table import Table
from ddi.errors import ConfigError
from ddi.ipam.models import Subnet

__all__ = [
    "BOOT_ARCH_KEYS",
    "ApiConfig",
    "BootConfig",
    "BootProfileConfig",
    "Config",
    "DhcpConfig",
    "DnsConfig",
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
    dhcp: DhcpConfig
    boot: BootConfig
    dns: DnsConfig
    sync: SyncConfig | None


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
    boot = parse_boot(top.table("boot"), base)
    for i, s in enumerate(subnets):
        if s.boot is not None and s.boot not in boot.profiles:
            raise ConfigError(f"subnets[{i}].boot", f"no [boot.profiles.{s.boot}] is defined")
    classes = parse_classes(dhcp_table, defs, tuple(boot.profiles))
    check_pool_classes(subnets, classes)
    shared, subnets = parse_shared_networks(dhcp_table, subnets)
    options = () if dhcp_table is None else parse_option_values(dhcp_table.tables("options"), defs)
    config = Config(
        path=path,
        site=site,
        api=parse_api(top.table("api")),
        subnets=subnets,
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
