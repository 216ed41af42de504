"""``[dhcp6]``: the DHCPv6 server (RFC 8415): off unless enabled, its ports, queue and commits."""

from __future__ import annotations

from dataclasses import dataclass

from ddi.config.table import Table, setting
from ddi.errors import ConfigError

MAX_DUID_OCTETS = 130
"""RFC 8415 §11.1: a 2-octet type and at most 128 octets."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Dhcp6Config:
    enabled: bool = False
    port: int = setting(547, lo=1, hi=65535)
    """Server port (RFC 8415 §7.2: 547). Loopback tests use a high port."""
    client_port: int = setting(546, lo=1, hi=65535)
    """Port replies to clients go to (546); relays get theirs at ``port``."""
    interfaces: tuple[str, ...] = ()
    """Interfaces to listen on; empty means the ``interface`` of every ``[[subnets6]]``."""
    server_duid: str | None = None
    """The server's DUID as hex (colons allowed); default: a DUID-LLT made from the first
    interface's MAC (else a DUID-EN) at first start, kept in ``<data_dir>/dhcp6-server-duid``."""
    decline_quarantine: int = setting(600, lo=0, hi=30 * 86400)
    """Seconds a DECLINEd address stays out of the pool (RFC 8415 §18.3.8)."""
    queue_size: int = setting(4096, lo=1, hi=1_000_000)
    """Messages waiting for the engine; a burst beyond this is shed and counted."""
    queue_max_age: float = setting(2.0, lo=0.01, hi=60)
    """Seconds a received message may wait; older ones are dropped as stale."""
    commit_batch: int = setting(256, lo=1, hi=100_000)
    commit_delay: float = setting(0.002, lo=0, hi=1)
    client_rate: float = setting(1.0, lo=0, hi=1_000_000)
    """Messages per second one client may send, sustained (0: no limit). A client is its DUID
    (option 1, read through any relays), else its source address."""
    client_burst: int = setting(8, lo=1, hi=1_000_000)
    link_rate: float = setting(1000.0, lo=0, hi=1_000_000)
    """SOLICITs per second per interface or relay from clients the site does not know (no
    reservation or lease for the DUID; 0: no limit), charged only while the server is
    backlogged (64 messages waiting, the oldest for 0.1 s, or 1024 waiting): a storm the
    server keeps up with is answered whole, as by Kea, which limits nothing by default. Once
    messages queue, known clients' SOLICITs go first and each link's new clients share this
    rate."""
    link_burst: int = setting(1000, lo=1, hi=1_000_000)
    """SOLICITs from unknown clients one link may send at once while the server is
    backlogged."""
    expire_interval: float = setting(10.0, lo=0.1, hi=3600)


def parse_duid(text: str, key: str) -> bytes:
    """A DUID from hex, with or without colons.

    Raises:
        ConfigError: not hex, or not 3 to 130 octets.
    """
    cleaned = text.replace(":", "").replace("-", "")
    if len(cleaned) > 2 * MAX_DUID_OCTETS or len(cleaned) % 2:
        raise ConfigError(key, "is not a DUID (hex octets, 3 to 130 of them)")
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError:
        raise ConfigError(key, "is not a DUID (hex octets, 3 to 130 of them)") from None
    if len(raw) < 3:
        raise ConfigError(key, "is not a DUID (hex octets, 3 to 130 of them)")
    return raw


def parse_dhcp6(t: Table | None) -> Dhcp6Config:
    if t is None:
        return Dhcp6Config()
    cfg = t.read(Dhcp6Config)
    if cfg.server_duid is not None:
        parse_duid(cfg.server_duid, t.key("server_duid"))
    t.done()
    return cfg
