"""``[dhcp]``: the DHCP server's ports, queue and commit batching."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from ddi.config.table import Table, setting
from ddi.dhcp.classes import ClientClass
from ddi.dhcp.option_defs import OptionDef, OptionValue
from ddi.dhcp.shared_networks import SharedNetwork


@dataclass(frozen=True, slots=True, kw_only=True)
class DhcpConfig:
    enabled: bool = True
    port: int = setting(67, lo=1, hi=65535)
    """Server port (RFC 2131: 67). Loopback tests use a high port."""
    client_port: int = setting(68, lo=1, hi=65535)
    """Port replies go to (RFC 2131: 68)."""
    interfaces: tuple[str, ...] = ()
    """Interfaces to listen on; empty means the ``interface`` of every subnet."""
    offer_ttl: float = setting(30.0, lo=1, hi=3600)
    """Seconds an unanswered OFFER holds its address (in memory only)."""
    decline_quarantine: int = setting(600, lo=0, hi=30 * 86400)
    """Seconds a DECLINEd address stays out of the pool (RFC 2131 §3.1.5)."""
    queue_size: int = setting(4096, lo=1, hi=1_000_000)
    """Packets waiting for the engine; a burst beyond this is shed and counted."""
    queue_max_age: float = setting(2.0, lo=0.01, hi=60)
    """Seconds a received packet may wait for the engine; older ones are dropped as stale
    (counted): the client has retransmitted by then, and answering old packets first is how an
    overloaded server stops answering anyone."""
    commit_batch: int = setting(256, lo=1, hi=100_000)
    """Leases committed together in one transaction and one fsync at most."""
    commit_delay: float = setting(0.002, lo=0, hi=1)
    """Seconds the group committer waits to gather a batch after the first lease."""
    server_id: IPv4Address | None = None
    """Server identifier (option 54); default: the address of the ingress interface."""
    authoritative: bool = False
    """NAK INIT-REBOOT/RENEWING requests from clients this server has no record of, as ISC
    dhcpd's ``authoritative``; by default it stays silent, as RFC 2131 §4.3.2 says it MUST."""
    max_offers_per_link: int = setting(1000, lo=1, hi=1_000_000)
    """OFFERs outstanding per relay (giaddr) or interface at most; past it the link's oldest is
    forgotten, so clients new to one link cannot hold a pool with OFFERs alone. 1000 is the
    figure dnsmasq ships as its lease limit (``dhcp-lease-max``)."""
    client_rate: float = setting(1.0, lo=0, hi=1_000_000)
    """Packets per second one hardware address may send, sustained (0: no limit). RFC 2131
    §4.1 clients retransmit after 4 s, then back off: a conforming client stays far below."""
    client_burst: int = setting(8, lo=1, hi=1_000_000)
    """Packets one hardware address may send at once: a netboot hands over from the PXE ROM
    to iPXE to the installed system, each with its own exchange, within seconds."""
    link_rate: float = setting(1000.0, lo=0, hi=1_000_000)
    """Packets per second, per relay (giaddr) or interface, from clients the server does not
    know (no reservation, lease or outstanding offer for the hardware address; 0: no limit),
    charged only while the server is backlogged (64 packets waiting, the oldest for 0.1 s, or
    1024 waiting): a boot storm the server keeps up with is answered whole, as by Kea and
    dnsmasq, which limit nothing by default. Once packets queue, known clients are served
    first and each link's new clients share this rate, so a flood on one link cannot starve
    the others."""
    link_burst: int = setting(1000, lo=1, hi=1_000_000)
    """Packets from unknown clients one link may send at once while the server is backlogged
    (a boot storm's first second)."""
    expire_interval: float = setting(10.0, lo=0.1, hi=3600)
    """Seconds between sweeps that mark ended leases expired (and refresh the pool gauges)."""
    option_defs: tuple[OptionDef, ...] = ()
    """``[[dhcp.option_defs]]``: name, code, type (ip-address, ip-addresses, uint8/16/32,
    int8/16/32, boolean, string, fqdn, fqdn-list, binary, empty, record with record_types),
    array; besides the standard definitions (``ddi.dhcp.option_defs.STANDARD_DEFS``)."""
    options: tuple[OptionValue, ...] = ()
    """``[[dhcp.options]]``: name (or code), value, always_send: options for every subnet,
    below a subnet's, a class's and a reservation's own."""
    classes: tuple[ClientClass, ...] = ()
    """``[[dhcp.classes]]``: name, ``[dhcp.classes.match]`` (vendor_class, vendor_class_prefix,
    user_class, mac_prefix, circuit_id: all must hold), boot, ``[[dhcp.classes.options]]``."""
    shared_networks: tuple[SharedNetwork, ...] = ()
    """``[[dhcp.shared_networks]]``: name, interface or relay_agents, subnets (two or more)."""


def parse_dhcp(t: Table | None, **given: object) -> DhcpConfig:
    """The section; ``given`` holds what was read before (definitions, classes, networks)."""
    if t is None:
        return DhcpConfig(**given)  # type: ignore[arg-type]
    cfg = t.read(DhcpConfig, **given)
    t.done()
    return cfg
