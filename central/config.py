"""The collector's configuration file: ``[central]`` (where it listens, its database, its
signing key, TLS, who may read) and ``[nautobot]`` (``central.nautobot.config``), read and
checked whole before anything starts; every mistake is a ``ConfigError`` naming its key."""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.nautobot import config as nautobot_config
from central.nautobot.config import NautobotConfig
from ddi.errors import ConfigError
from sync import protocol

DEFAULT_MAX_BODY = 16 * 1024 * 1024
"""An edge's batches are at most ``batch_max_bytes`` (1,000,000 by default) plus one entry:
16 MiB leaves room for an edge that raised it sixteenfold."""
DEFAULT_MAX_UNAUTHENTICATED = 100
"""Requests between arrival and authentication at once: NSD's default ``tcp-count``."""
DEFAULT_STALE_AFTER = 300.0
"""An edge polls every ``[sync] poll_interval`` (5 s by default): five minutes of silence is
sixty missed rounds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CentralConfig:
    path: Path
    listen: tuple[str, int] = ("127.0.0.1", 8443)
    """Address and port the collector listens on (``"0.0.0.0:8443"``)."""
    database: str = "sqlite://central.sqlite"
    """``sqlite:///abs/path`` or ``sqlite://relative/to/config`` or ``postgresql://…``."""
    signing_key: Path
    """Central's Ed25519 private key (PEM); edges hold its public key."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False
    """Serve plain HTTP (labs only); otherwise tls_cert and tls_key are required."""
    max_body_bytes: int = DEFAULT_MAX_BODY
    """Largest batch, snapshot page or conflict report accepted, in bytes: at least every
    edge's ``[sync] batch_max_bytes``."""
    max_unauthenticated: int = DEFAULT_MAX_UNAUTHENTICATED
    """Requests not yet authenticated at once; more are answered 503."""
    read_token: str | None = None
    """Bearer token central IPAM consumers and Prometheus must send to read the pull feed,
    the objects, the conflicts and the metrics (``read_token_file`` reads it from a file): a
    ``read`` token for every site, named ``read-token``."""
    tokens_file: Path | None = None
    """Named tokens with scopes and sites (``ddi-central token add``); this or ``read_token``
    is required unless ``listen`` is a loopback address."""
    stale_after: float = DEFAULT_STALE_AFTER
    """Seconds without a word from a site before the console calls its link stale."""
    nautobot: NautobotConfig | None = None
    """``[nautobot]``: keep a Nautobot in step with every site (``central.nautobot``)."""


_CENTRAL_KEYS = {
    "listen",
    "database",
    "signing_key",
    "tls_cert",
    "tls_key",
    "insecure_http",
    "max_body_bytes",
    "max_unauthenticated",
    "read_token",
    "read_token_file",
    "tokens_file",
    "stale_after",
}


def load_central_config(path: Path) -> CentralConfig:
    """Parse ``[central]`` from a TOML file.

    Raises:
        ConfigError: unreadable file, unknown key, wrong type, missing TLS material.
    """
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("", f"cannot read {path}: {exc}") from None
    extra = set(data) - {"central", "nautobot"}
    if extra:
        raise ConfigError(sorted(extra)[0], "unknown section (expected [central], [nautobot])")
    table = data.get("central")
    if not isinstance(table, dict):
        raise ConfigError("central", "is required")
    for key in table:
        if key not in _CENTRAL_KEYS:
            raise ConfigError(f"central.{key}", "unknown key")
    base = path.parent

    def text(name: str, default: str | None) -> str | None:
        value = table.get(name, default)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"central.{name}", "must be a non-empty string")
        return value

    def file(name: str, required: bool = False) -> Path | None:
        value = text(name, None)
        if value is None:
            if required:
                raise ConfigError(f"central.{name}", "is required")
            return None
        p = Path(value)
        return p if p.is_absolute() else base / p

    listen_text = text("listen", "127.0.0.1:8443")
    assert listen_text is not None
    host, _, port_text = listen_text.rpartition(":")
    port = protocol.parse_count(port_text)
    if not host or port is None or port > 65535:
        raise ConfigError("central.listen", f"{listen_text!r} is not HOST:PORT")
    insecure = table.get("insecure_http", False)
    if not isinstance(insecure, bool):
        raise ConfigError("central.insecure_http", "must be true or false")
    max_body = table.get("max_body_bytes", DEFAULT_MAX_BODY)
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1024:
        raise ConfigError("central.max_body_bytes", "must be an integer >= 1024")
    gate = table.get("max_unauthenticated", DEFAULT_MAX_UNAUTHENTICATED)
    if isinstance(gate, bool) or not isinstance(gate, int) or not 1 <= gate <= 100_000:
        raise ConfigError("central.max_unauthenticated", "must be an integer in [1, 100000]")
    read_token = text("read_token", None)
    token_file = file("read_token_file")
    if token_file is not None:
        if read_token is not None:
            raise ConfigError("central.read_token_file", "give read_token or read_token_file")
        try:
            read_token = token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                "central.read_token_file", f"cannot read {token_file}: {exc}"
            ) from None
    if read_token is not None and not _token_ok(read_token):
        raise ConfigError("central.read_token", "must be printable ASCII without spaces")
    tokens_file = file("tokens_file")
    stale_after = table.get("stale_after", DEFAULT_STALE_AFTER)
    if (
        isinstance(stale_after, bool)
        or not isinstance(stale_after, int | float)
        or not 1 <= stale_after <= 7 * 86400
    ):
        raise ConfigError("central.stale_after", "must be a number of seconds in [1, 604800]")
    listen_host = host.strip("[]")
    if read_token is None and tokens_file is None and not _loopback(listen_host):
        raise ConfigError(
            "central.tokens_file",
            f"or read_token is required to listen on {listen_host} (beyond loopback): without"
            " them the feed, every site's objects and the metrics are open to anyone who can"
            " connect (set tokens_file, or listen on 127.0.0.1)",
        )
    config = CentralConfig(
        path=path,
        read_token=read_token,
        tokens_file=tokens_file,
        stale_after=float(stale_after),
        listen=(listen_host, port),
        database=text("database", "sqlite://central.sqlite") or "",
        signing_key=file("signing_key", required=True) or Path(),
        tls_cert=file("tls_cert"),
        tls_key=file("tls_key"),
        insecure_http=insecure,
        max_body_bytes=max_body,
        max_unauthenticated=gate,
        nautobot=None if "nautobot" not in data else nautobot_config.parse(data["nautobot"], base),
    )
    if not insecure and (config.tls_cert is None or config.tls_key is None):
        raise ConfigError(
            "central.tls_cert", "tls_cert and tls_key are required without insecure_http"
        )
    return config


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token_ok(token: str) -> bool:
    return token.isascii() and token.isprintable() and " " not in token


def load_signing_key(config: CentralConfig) -> Ed25519PrivateKey:
    try:
        return protocol.load_private_key(config.signing_key.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            "central.signing_key", f"cannot load {config.signing_key}: {exc}"
        ) from None
