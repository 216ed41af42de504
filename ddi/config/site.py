"""``[site]`` and ``[api]``: who this appliance is and where its admin API listens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ddi.config.table import Table, domain, endpoint, file_default, label
from ddi.errors import ConfigError

API_PORT = 8053
"""Port of the API's TCP listener when ``listen`` gives none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteConfig:
    id: str
    """The site's identifier at central: letters, digits, '-' and '_'."""
    domain: str
    """The site's DNS domain (``site1.example``): hosts are named ``<hostname>.<domain>``."""
    data_dir: Path = field(metadata=file_default("var/lib/ddi"))
    """Where the SQLite store lives (``ddi.sqlite``); in a file, relative to it."""


def parse_site(t: Table) -> SiteConfig:
    site = t.read(
        SiteConfig,
        id=label(t.key("id"), t.field(SiteConfig, "id")),
        domain=domain(t.key("domain"), t.field(SiteConfig, "domain")),
    )
    t.done()
    return site


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiConfig:
    socket: Path = Path("/run/ddi/ddi.sock")
    """Unix socket of the admin API (mode 0660); the CLI talks to it."""
    listen: tuple[str, int] | None = None
    """Optional TCP listener (``"127.0.0.1:8053"``); needs ``token`` or ``token_file``."""
    token: str | None = None
    """Bearer token required on the TCP listener."""


def parse_api(t: Table | None) -> ApiConfig:
    if t is None:
        return ApiConfig()
    listen = t.str_("listen", None)
    token = t.field(ApiConfig, "token")
    token_file = t.path_("token_file", None)
    if token is not None and token_file is not None:
        raise ConfigError(t.key("token_file"), "give token or token_file, not both")
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(t.key("token_file"), f"cannot read {token_file}: {exc}") from None
        if not token:
            raise ConfigError(t.key("token_file"), f"{token_file} is empty")
    if listen is not None and token is None:
        raise ConfigError(t.key("listen"), "a TCP listener needs token or token_file")
    api = t.read(
        ApiConfig,
        listen=None if listen is None else endpoint(t.key("listen"), listen, API_PORT),
        token=token,
    )
    t.done()
    return api
