"""``[dns]``: the authoritative server's listeners, forwarders, TSIG keys and secondaries."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_network
from typing import Any

from ddi.config.table import Later, Table, domain, endpoint, setting, toml_type
from ddi.errors import ConfigError

DNS_PORT = 53
"""Port of a forwarder or secondary given without one."""

Network = IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True, kw_only=True)
class TsigKeyConfig:
    name: str
    algorithm: str = "hmac-sha256"
    """Only ``hmac-sha256``."""
    secret: bytes
    """The decoded base64 secret."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SecondaryConfig:
    address: tuple[str, int]
    """Where NOTIFY goes (``"198.18.0.53:53"``)."""
    key: str | None = None
    """TSIG key name for NOTIFY and for this secondary's transfers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsConfig:
    enabled: bool = True
    listen: tuple[tuple[str, int], ...] = ()
    """UDP and TCP listeners; empty means ``127.0.0.1:<port>``."""
    port: int = setting(DNS_PORT, lo=0, hi=65535)
    """Default port for ``listen`` entries given without one."""
    ttl: int = setting(300, lo=0, hi=2**31 - 1)
    """TTL of records derived from IPAM, and the SOA minimum (negative-caching TTL)."""
    ns_name: str = "ns"
    """The appliance's own name in the site zone (NS target)."""
    ns_address: IPv4Address | None = None
    """The appliance's address for the NS glue A record."""
    forwarders: tuple[tuple[str, int], ...] = ()
    """Upstream resolvers for names outside the local zones; none means REFUSED."""
    forward_timeout: float = setting(2.0, lo=0.05, hi=60)
    """Seconds before an unanswered forwarded query gets SERVFAIL."""
    recursion_from: tuple[Network, ...] = ()
    """Clients allowed to use the forwarders (IPv4 and IPv6 networks; an IPv4 peer on a
    dual-stack socket matches the IPv4 ones); empty means the site's subnets and loopback."""
    tsig_keys: Mapping[str, TsigKeyConfig] = field(default_factory=dict)
    secondaries: tuple[SecondaryConfig, ...] = ()
    allow_transfer: tuple[Network, ...] = ()
    """Peers allowed AXFR/IXFR without TSIG (keyed transfers are always allowed)."""
    tcp_max_connections: int = setting(128, lo=1, hi=100_000)
    tcp_idle_timeout: float = setting(10.0, lo=0.1, hi=3600)
    cache_size: int = setting(10_000, lo=0, hi=10_000_000)
    """Encoded answers kept in the wire cache: what the compiled answers leave to the full
    resolver (CNAME chains, referrals, ANY, errors). Local names never depend on it."""
    journal_size: int = setting(100, lo=0, hi=100_000)
    """Zone changes kept per zone for IXFR; a secondary further behind gets a full AXFR."""
    edns_udp_size: int = setting(1232, lo=512, hi=65535)
    """Largest UDP reply sent to an EDNS client (RFC 6891; 1232 avoids fragmentation)."""
    rrl_ratelimit: int = setting(200, lo=0, hi=1_000_000)
    """Response-rate limiting: UDP responses per second to one client prefix outside the
    site's own networks; 0 turns it off. NSD's default (``rrl-ratelimit``)."""
    rrl_slip: int = setting(2, lo=0, hi=10)
    """Every Nth response withheld by the limit goes out truncated (TC=1) instead, so a real
    client behind a spoofed flood retries over TCP; 0 never. NSD's and BIND's default."""
    rrl_ipv4_prefix: int = setting(24, lo=8, hi=32)
    """IPv4 clients are counted per prefix of this length (NSD's and BIND's /24)."""
    rrl_ipv6_prefix: int = setting(56, lo=16, hi=128)
    """IPv6 clients are counted per prefix of this length (BIND's /56; NSD's is /64)."""
    rrl_exempt: tuple[Network, ...] = ()
    """Networks exempt from the limit besides the site's subnets and loopback."""


def network(key: str, value: Any) -> Network:
    """An IPv4 or IPv6 network in CIDR form (host bits clear)."""
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a CIDR string, not {toml_type(value)}")
    try:
        return ip_network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(key, f"{value!r} is not a network in CIDR form: {exc}") from None


def _tsig_key(name: str, t: Table) -> TsigKeyConfig:
    algorithm = t.field(TsigKeyConfig, "algorithm").lower()
    if algorithm != "hmac-sha256":
        raise ConfigError(t.key("algorithm"), f"{algorithm!r} is not supported (hmac-sha256)")
    secret_text = t.str_("secret")
    try:
        secret = base64.b64decode(secret_text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(t.key("secret"), "must be base64") from None
    if len(secret) < 16:
        raise ConfigError(t.key("secret"), "must decode to at least 16 bytes")
    t.done()
    return TsigKeyConfig(name=domain(t.key(""), name), algorithm=algorithm, secret=secret)


def _secondary(t: Table, keys: Mapping[str, TsigKeyConfig]) -> SecondaryConfig:
    key = t.field(SecondaryConfig, "key")
    if key is not None and key.rstrip(".").lower() not in keys:
        raise ConfigError(t.key("key"), f"no [dns.tsig.{key}] key is defined")
    secondary = SecondaryConfig(
        address=endpoint(t.key("address"), t.str_("address"), DNS_PORT),
        key=None if key is None else key.rstrip(".").lower(),
    )
    t.done()
    return secondary


def parse_dns(t: Table | None) -> DnsConfig:
    if t is None:
        return DnsConfig(enabled=False)
    port = t.field(DnsConfig, "port")
    keys = {k.name: k for k in (_tsig_key(name, kt) for name, kt in t.named_tables("tsig"))}
    secondaries = tuple(_secondary(st, keys) for st in t.tables("secondaries"))
    ns_name = t.field(DnsConfig, "ns_name")
    cfg = t.read(
        DnsConfig,
        listen=Later(lambda: t.list_("listen", lambda k, v: endpoint(k, v, port))),
        port=port,
        ns_name=Later(lambda: domain(t.key("ns_name"), ns_name)),
        forwarders=Later(lambda: t.list_("forwarders", lambda k, v: endpoint(k, v, DNS_PORT))),
        recursion_from=Later(lambda: t.list_("recursion_from", network)),
        tsig_keys=keys,
        secondaries=secondaries,
        allow_transfer=Later(lambda: t.list_("allow_transfer", network)),
        rrl_exempt=Later(lambda: t.list_("rrl_exempt", network)),
    )
    t.done()
    return cfg
