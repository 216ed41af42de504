"""IPv6 IPAM values: subnets with address and prefix-delegation pools, and DHCPv6 leases.

The same rules as :mod:`ddi.ipam.models`: frozen values, ``ipaddress`` types across module
boundaries, DUIDs as lower-case colon-separated hex (as Kea prints them), and
``from_image(x.to_image()) == x``.

A :class:`Subnet6` is configured in ``[[subnets6]]`` tables, apart from the IPv4 ``[[subnets]]``
(as Kea keeps ``subnet6`` apart from ``subnet4``): a dual-stack link is one of each. A
:class:`Lease6` is one IA_NA address (a /128) or one IA_PD prefix; its change-log object id is
``lease6_id(kind, prefix)``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from ddi.ipam.models import JsonObject, LeaseState
from ddi.ra.settings import RaSettings

__all__ = [
    "LIFETIME_RANGE",
    "Lease6",
    "Lease6Image",
    "Lease6Kind",
    "PdPool",
    "Pool6",
    "Subnet6",
    "lease6_id",
    "parse_lease6_id",
]

LIFETIME_RANGE = (60, 365 * 86400)
"""Seconds a preferred or valid lifetime may be, for a subnet (in the config)."""


class Lease6Kind(enum.StrEnum):
    """What a DHCPv6 lease holds: an IA_NA address or an IA_PD prefix (RFC 8415 §21.4, §21.21)."""

    NA = "na"
    PD = "pd"


def lease6_id(kind: Lease6Kind, prefix: IPv6Network) -> str:
    """A v6 lease's object id in the change log and on the wire: ``na:2001:db8::5/128``."""
    return f"{kind.value}:{prefix}"


def parse_lease6_id(object_id: str) -> tuple[Lease6Kind, IPv6Network]:
    """The (kind, prefix) of :func:`lease6_id`. Raises ValueError for anything else."""
    kind, sep, prefix = object_id.partition(":")
    if not sep or len(object_id) > 64:
        raise ValueError(f"not a v6 lease id: {object_id!r}")
    return Lease6Kind(kind), IPv6Network(prefix)


def _bounds(bounds: tuple[int, int]) -> dict[str, int]:
    return {"lo": bounds[0], "hi": bounds[1]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool6:
    """An inclusive range of IPv6 addresses handed out in IA_NA."""

    start: IPv6Address
    end: IPv6Address

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, IPv6Address) and self.start <= ip <= self.end

    @property
    def size(self) -> int:
        return int(self.end) - int(self.start) + 1

    def to_image(self) -> dict[str, Any]:
        return {"start": str(self.start), "end": str(self.end)}

    @classmethod
    def from_image(cls, image: JsonObject) -> Pool6:
        return cls(start=IPv6Address(image["start"]), end=IPv6Address(image["end"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class PdPool:
    """Prefixes of ``delegated_length`` carved out of ``prefix``, handed out in IA_PD
    (RFC 8415 §6.3; Kea's ``pd-pools``: prefix, prefix-len, delegated-len)."""

    prefix: IPv6Network
    delegated_length: int

    def __contains__(self, prefix: object) -> bool:
        return (
            isinstance(prefix, IPv6Network)
            and prefix.prefixlen == self.delegated_length
            and prefix.subnet_of(self.prefix)
        )

    @property
    def size(self) -> int:
        """How many prefixes the pool holds."""
        return 1 << (self.delegated_length - self.prefix.prefixlen)

    def to_image(self) -> dict[str, Any]:
        return {"prefix": str(self.prefix), "delegated_length": self.delegated_length}

    @classmethod
    def from_image(cls, image: JsonObject) -> PdPool:
        return cls(
            prefix=IPv6Network(image["prefix"]), delegated_length=int(image["delegated_length"])
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Subnet6:
    """An IPv6 network the site serves, directly on ``interface`` or through relays whose
    link-address is inside ``cidr`` or listed in ``relay_links``."""

    name: str
    cidr: IPv6Network
    pools: tuple[Pool6, ...] = ()
    pd_pools: tuple[PdPool, ...] = ()
    dns_servers: tuple[IPv6Address, ...] = ()
    domain: str | None = None
    search: tuple[str, ...] = ()
    """Domain search list (option 24); empty: the subnet's domain alone."""
    ntp_servers: tuple[IPv6Address, ...] = ()
    interface: str | None = None
    relay_links: tuple[IPv6Address, ...] = ()
    """Relay link-addresses outside ``cidr`` that also relay for this subnet."""
    preferred_lifetime: int = field(default=3600, metadata=_bounds(LIFETIME_RANGE))
    valid_lifetime: int = field(default=7200, metadata=_bounds(LIFETIME_RANGE))
    rapid_commit: bool = False
    """Answer a SOLICIT carrying Rapid Commit with a REPLY (RFC 8415 §18.3.1)."""
    known_hosts_only: bool = False
    boot: str | None = None
    ra: RaSettings = field(default_factory=RaSettings)
    """``[subnets6.ra]``: the link's router advertisements. Config only, like the interface's
    sockets: not in the image (not IPAM data, never in the change log or synced)."""

    def to_image(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cidr": str(self.cidr),
            "pools": [p.to_image() for p in self.pools],
            "pd_pools": [p.to_image() for p in self.pd_pools],
            "dns_servers": [str(a) for a in self.dns_servers],
            "domain": self.domain,
            "search": list(self.search),
            "ntp_servers": [str(a) for a in self.ntp_servers],
            "interface": self.interface,
            "relay_links": [str(a) for a in self.relay_links],
            "preferred_lifetime": self.preferred_lifetime,
            "valid_lifetime": self.valid_lifetime,
            "rapid_commit": self.rapid_commit,
            "known_hosts_only": self.known_hosts_only,
            "boot": self.boot,
        }

    @classmethod
    def from_image(cls, image: JsonObject) -> Subnet6:
        return cls(
            name=image["name"],
            cidr=IPv6Network(image["cidr"]),
            pools=tuple(Pool6.from_image(p) for p in image.get("pools", ())),
            pd_pools=tuple(PdPool.from_image(p) for p in image.get("pd_pools", ())),
            dns_servers=tuple(IPv6Address(a) for a in image.get("dns_servers", ())),
            domain=image.get("domain"),
            search=tuple(str(s) for s in image.get("search", ())),
            ntp_servers=tuple(IPv6Address(a) for a in image.get("ntp_servers", ())),
            interface=image.get("interface"),
            relay_links=tuple(IPv6Address(a) for a in image.get("relay_links", ())),
            preferred_lifetime=int(image.get("preferred_lifetime", 3600)),
            valid_lifetime=int(image.get("valid_lifetime", 7200)),
            rapid_commit=bool(image.get("rapid_commit", False)),
            known_hosts_only=bool(image.get("known_hosts_only", False)),
            boot=image.get("boot"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease6:
    """An IA_NA address (``prefix`` a /128) or an IA_PD prefix bound to (``duid``, ``iaid``).

    ``end`` is the end of the valid lifetime, ``preferred_end`` of the preferred one
    (RFC 8415 §6.3, §21.6).
    """

    kind: Lease6Kind
    prefix: IPv6Network
    duid: str
    iaid: int
    mac: str | None = None
    """From the relay's client link-layer address option (RFC 6939) or a DUID-LL/LLT."""
    hostname: str | None = None
    """Sanitised name from option 39; None when the client sent none or it was refused."""
    state: LeaseState = LeaseState.BOUND
    start: float
    end: float
    preferred_end: float
    subnet: str

    @property
    def object_id(self) -> str:
        return lease6_id(self.kind, self.prefix)

    @property
    def address(self) -> IPv6Address:
        """The address of an NA lease (the prefix's first address for a PD one)."""
        return self.prefix.network_address

    def active(self, now: float) -> bool:
        return self.state is LeaseState.BOUND and self.end > now

    def to_image(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "prefix": str(self.prefix),
            "duid": self.duid,
            "iaid": self.iaid,
            "mac": self.mac,
            "hostname": self.hostname,
            "state": self.state.value,
            "start": self.start,
            "end": self.end,
            "preferred_end": self.preferred_end,
            "subnet": self.subnet,
        }

    @classmethod
    def from_image(cls, image: JsonObject) -> Lease6:
        if isinstance(image, Lease6Image):
            return image.lease  # committed in this process: the value itself, no parsing
        return cls(
            kind=Lease6Kind(image["kind"]),
            prefix=IPv6Network(image["prefix"]),
            duid=str(image["duid"]),
            iaid=int(image["iaid"]),
            mac=image.get("mac"),
            hostname=image.get("hostname"),
            state=LeaseState(image["state"]),
            start=float(image["start"]),
            end=float(image["end"]),
            preferred_end=float(image["preferred_end"]),
            subnet=image["subnet"],
        )


class Lease6Image(dict[str, Any]):
    """A v6 lease's change image (exactly ``lease.to_image()``) that also keeps the
    :class:`Lease6` it came from, as :class:`~ddi.ipam.models.LeaseImage` does for DHCPv4: the
    in-process listeners (the IPAM index, the DNS zones) take that value through
    :meth:`Lease6.from_image` instead of parsing the prefix back. Everything else sees a plain
    JSON object. The prefix is formatted once here; the row and the object id reuse it."""

    __slots__ = ("lease",)

    def __init__(self, lease: Lease6) -> None:
        super().__init__(lease.to_image())
        self.lease = lease

    @property
    def object_id(self) -> str:
        """:func:`lease6_id` of the lease, from the prefix already formatted."""
        return f"{self['kind']}:{self['prefix']}"
