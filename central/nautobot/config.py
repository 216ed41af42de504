"""``[nautobot]`` in central's config file: where Nautobot is, how to authenticate, and where
each site's objects go.

```toml
[nautobot]
url = "https://nautobot.example.net"
token_file = "nautobot.token"      # relative to the config file
ca_file = "nautobot-ca.pem"        # or verify = false (labs only)
batch_size = 500                   # feed entries per round
interval = 2.0                     # seconds between looks at the feed when idle
reconcile_interval = 3600          # seconds between full comparisons with Nautobot; 0: none
location_type = "ddi site"

[nautobot.sites.s1]                # default: a Location and a Namespace named after the site
location = "Paris"
namespace = "Paris"
```
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ddi.errors import ConfigError
from sync.protocol import valid_site_id

BATCH_RANGE = (1, 10_000)
INTERVAL_RANGE = (0.05, 3600.0)
RECONCILE_RANGE = (10.0, 7 * 86400.0)
MAX_NAME = 100
"""Nautobot's name columns (Location, Namespace, LocationType) hold 100 characters."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Where a site's objects live in Nautobot."""

    location: str
    namespace: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NautobotConfig:
    url: str
    """Nautobot's base URL (``https://host[:port]``), without ``/api``."""
    token: str = field(repr=False)
    """The API token (read from ``token_file``)."""
    verify: bool | str = True
    """True, False (labs only), or the path of a CA bundle (``ca_file``)."""
    batch_size: int = 500
    interval: float = 2.0
    reconcile_interval: float = 3600.0
    """Seconds between two full comparisons of Nautobot with central's objects (0: never),
    which remove what nothing claims and restore what was changed or deleted by hand."""
    location_type: str = "ddi site"
    sites: Mapping[str, Placement] = field(default_factory=dict)

    def placement(self, site: str) -> Placement:
        """Where ``site`` goes: its ``[nautobot.sites.NAME]`` entry, else its own name."""
        return self.sites.get(site) or Placement(location=site, namespace=site)


_KEYS = {
    "url", "token_file", "verify", "ca_file", "batch_size", "interval", "reconcile_interval",
    "location_type", "sites",
}  # fmt: skip


def _name(where: str, value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME or not value.isprintable():
        raise ConfigError(where, f"must be a printable string of 1 to {MAX_NAME} characters")
    return value


def parse(table: object, base: Path) -> NautobotConfig:
    """``[nautobot]`` (``table``) of the config file in folder ``base``.

    Raises:
        ConfigError: an unknown key, a wrong type or range, an unreadable token file.
    """
    if not isinstance(table, dict):
        raise ConfigError("nautobot", "must be a table")
    for key in table:
        if key not in _KEYS:
            raise ConfigError(f"nautobot.{key}", "unknown key")
    url = table.get("url")
    if not isinstance(url, str) or len(url) > 2000:
        raise ConfigError("nautobot.url", "is required (https://host[:port])")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("nautobot.url", f"{url!r} is not an http(s):// URL")
    token = _token(table.get("token_file"), base)
    verify: bool | str = table.get("verify", True)
    if not isinstance(verify, bool):
        raise ConfigError("nautobot.verify", "must be true or false")
    ca_file = table.get("ca_file")
    if ca_file is not None:
        if not isinstance(ca_file, str) or not ca_file:
            raise ConfigError("nautobot.ca_file", "must be a path")
        if verify is False:
            raise ConfigError("nautobot.ca_file", "give ca_file or verify = false, not both")
        path = Path(ca_file)
        verify = str(path if path.is_absolute() else base / path)
    batch = table.get("batch_size", 500)
    if isinstance(batch, bool) or not isinstance(batch, int):
        raise ConfigError("nautobot.batch_size", "must be an integer")
    if not BATCH_RANGE[0] <= batch <= BATCH_RANGE[1]:
        raise ConfigError("nautobot.batch_size", f"must be in [{BATCH_RANGE[0]}, {BATCH_RANGE[1]}]")
    interval = table.get("interval", 2.0)
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        raise ConfigError("nautobot.interval", "must be a number of seconds")
    if not (math.isfinite(interval) and INTERVAL_RANGE[0] <= interval <= INTERVAL_RANGE[1]):
        raise ConfigError(
            "nautobot.interval", f"must be in [{INTERVAL_RANGE[0]}, {INTERVAL_RANGE[1]}] seconds"
        )
    reconcile = table.get("reconcile_interval", 3600.0)
    if isinstance(reconcile, bool) or not isinstance(reconcile, int | float):
        raise ConfigError("nautobot.reconcile_interval", "must be a number of seconds")
    low, high = RECONCILE_RANGE
    if reconcile != 0 and not (math.isfinite(reconcile) and low <= reconcile <= high):
        raise ConfigError(
            "nautobot.reconcile_interval", f"must be 0 (never) or in [{low:g}, {high:g}] seconds"
        )
    location_type = _name("nautobot.location_type", table.get("location_type", "ddi site"))
    return NautobotConfig(
        url=url.rstrip("/"),
        token=token,
        verify=verify,
        batch_size=batch,
        interval=float(interval),
        reconcile_interval=float(reconcile),
        location_type=location_type,
        sites=_sites(table.get("sites", {})),
    )


def _token(value: object, base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError("nautobot.token_file", "is required (a file holding the API token)")
    path = Path(value)
    path = path if path.is_absolute() else base / path
    try:
        token = path.read_text()[:1000].strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("nautobot.token_file", f"cannot read {path}: {exc}") from None
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError("nautobot.token_file", f"{path} holds no token (printable ASCII)")
    return token


def _sites(value: Any) -> dict[str, Placement]:
    if not isinstance(value, dict):
        raise ConfigError("nautobot.sites", "must be a table of site tables")
    sites: dict[str, Placement] = {}
    for site, entry in value.items():
        where = f"nautobot.sites.{site}"
        if not valid_site_id(site):
            raise ConfigError(where, "is not a site id (letters, digits, '-', '_')")
        if not isinstance(entry, dict) or set(entry) - {"location", "namespace"}:
            raise ConfigError(where, "takes location and namespace")
        sites[site] = Placement(
            location=_name(f"{where}.location", entry.get("location", site)),
            namespace=_name(f"{where}.namespace", entry.get("namespace", site)),
        )
    return sites
