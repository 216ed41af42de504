"""``[site]`` and ``[api]``: who this appliance is and where its admin API listens."""

from __future__ import annotations

import ipaddress
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


TOKENS_FILE = "tokens.json"
"""The tokens file's name in ``[site] data_dir`` when ``[api] tokens_file`` is not given."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiConfig:
    socket: Path = Path("/run/ddi/ddi.sock")
    """Unix socket of the admin API (mode 0660); the CLI talks to it."""
    listen: tuple[str, int] | None = None
    """Optional TCP listener (``"198.18.0.1:8053"``), with TLS and the tokens of ``tokens_file``."""
    token: str | None = None
    """The single bearer token of earlier versions (or ``token_file``, a file holding it): kept
    for compatibility, a ``write`` token named ``api-token``; named tokens replace it."""
    tokens_file: Path | None = None
    """The named, scoped tokens (``ddi token add``); None: ``<data_dir>/tokens.json``."""
    tls: bool = True
    """TLS on the TCP listener; ``false`` is refused unless ``listen`` is a loopback address."""
    tls_cert: Path | None = None
    """PEM certificate (chain) of the TCP listener; without it a self-signed pair is made in
    ``data_dir`` at first start and kept."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


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
    where = None if listen is None else endpoint(t.key("listen"), listen, API_PORT)
    api = t.read(
        ApiConfig,
        listen=where,
        token=token,
    )
    t.done()
    if (api.tls_cert is None) != (api.tls_key is None):
        raise ConfigError(t.key("tls_cert"), "give tls_cert and tls_key together")
    if not api.tls and api.tls_cert is not None:
        raise ConfigError(t.key("tls"), "tls = false with tls_cert: which one is meant?")
    if not api.tls and where is not None and not _loopback(where[0]):
        # A token crossing a network in the clear is a token given away.
        raise ConfigError(t.key("tls"), "tls = false is only allowed on a loopback listen")
    return api
