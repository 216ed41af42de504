"""``[sync]``: the link to the central collector, and the outbox bounds behind it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ddi.config.table import Table, setting
from ddi.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncConfig:
    central_url: str
    """Base URL of the central collector (``https://central.example:8443``)."""
    site_key: Path
    """This site's Ed25519 private key (PEM); central holds its public key."""
    central_public_key: Path
    """Central's Ed25519 public key (PEM): what central sends down must carry its signature."""
    ca_file: Path | None = None
    """CA (or self-signed certificate) that central's TLS certificate must chain to, and the
    only one trusted: required for an https:// central_url. To trust the system's public CAs
    instead, name their bundle (``/etc/ssl/certs/ca-certificates.crt``)."""
    insecure_http: bool = False
    """Allow a plain ``http://`` central_url (labs only)."""
    batch_max_entries: int = setting(500, lo=1, hi=100_000)
    batch_max_bytes: int = setting(1_000_000, lo=1024, hi=100_000_000)
    outbox_soft_limit: int = setting(100_000, lo=1)
    """Past this many unsent entries, entries for the same object coalesce to the newest."""
    outbox_hard_limit: int = setting(1_000_000, lo=1)
    """Past this many, a new epoch starts and central is brought in line by a snapshot."""
    history_keep: int = setting(100_000, lo=0)
    """Acknowledged change-log entries kept (for ``ddi changes list``); older ones are deleted
    once central has them, so the log stays bounded."""
    backoff_base: float = setting(1.0, lo=0.01, hi=3600)
    backoff_cap: float = setting(300.0, lo=0.01, hi=86400)
    poll_interval: float = setting(5.0, lo=0.01, hi=3600)
    """Seconds between polls of central's down log while idle."""
    timeout: float = setting(30.0, lo=0.1, hi=3600)
    """Seconds one HTTP exchange with central may take."""


def parse_sync(t: Table | None) -> SyncConfig | None:
    if t is None:
        return None
    url = t.field(SyncConfig, "central_url")
    insecure = t.field(SyncConfig, "insecure_http")
    if url.startswith("http://") and not insecure:
        raise ConfigError(t.key("central_url"), "plain http:// needs insecure_http = true")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(t.key("central_url"), "must be an https:// URL")
    cfg = t.read(SyncConfig, central_url=url.rstrip("/"), insecure_http=insecure)
    if cfg.central_url.startswith("https://") and cfg.ca_file is None:
        # Without it every public CA could vouch for central: the README promises a pin.
        raise ConfigError(
            t.key("ca_file"),
            "is required for an https:// central_url: central's CA or its own certificate"
            " (the system's bundle, /etc/ssl/certs/ca-certificates.crt, to trust public CAs)",
        )
    if cfg.outbox_hard_limit < cfg.outbox_soft_limit:
        raise ConfigError(t.key("outbox_hard_limit"), "must be at least outbox_soft_limit")
    t.done()
    return cfg
