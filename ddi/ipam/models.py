"""IPAM values: subnets, pools, hosts (reservations), leases, DNS records and changes.

Rules:
* Every value is frozen; a change to an object is a new value with ``version`` + 1.
* Addresses cross module boundaries as ``ipaddress`` types; MACs, client-ids and circuit-ids as
  normalised lower-case colon-separated hex strings (``52:54:00:00:00:01``), the same form the
  CLI prints and the change log stores.
* ``to_image``/``from_image`` give the JSON post-image of an object, the form it takes in the
  change log, the admin API and sync batches. ``from_image(x.to_image()) == x`` holds for all.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Any

from ddi.dhcp.option_defs import OptionValue

JsonObject = Mapping[str, Any]


class Owner(enum.StrEnum):
    """Which end may change an object: the site, or the central collector."""

    EDGE = "edge"
    CENTRAL = "central"


class Op(enum.StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


class Kind(enum.StrEnum):
    """What a change-log entry is about."""

    SUBNET = "subnet"
    HOST = "host"
    LEASE = "lease"
    RECORD = "record"
    SUBNET6 = "subnet6"
    LEASE6 = "lease6"


class LeaseState(enum.StrEnum):
    BOUND = "bound"
    RELEASED = "released"
    EXPIRED = "expired"
    DECLINED = "declined"


RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "PTR")


def _opt_ip(value: Any) -> IPv4Address | None:
    return None if value is None else IPv4Address(value)


def _opt_str(value: IPv4Address | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    """An inclusive range of addresses handed out dynamically."""

    start: IPv4Address
    end: IPv4Address
    client_class: str | None = None
    """Only members of this client class draw from the pool (Kea's ``client-class``)."""

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, IPv4Address) and self.start <= ip <= self.end

    @property
    def size(self) -> int:
        return int(self.end) - int(self.start) + 1

    def to_image(self) -> dict[str, Any]:
        image = {"start": str(self.start), "end": str(self.end)}
        if self.client_class is not None:  # absent otherwise: images stay as they were
            image["client_class"] = self.client_class
        return image

    @classmethod
    def from_image(cls, image: JsonObject) -> Pool:
        return cls(
            start=IPv4Address(image["start"]),
            end=IPv4Address(image["end"]),
            client_class=image.get("client_class"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A classless static route (RFC 3442, DHCP option 121)."""

    destination: IPv4Network
    gateway: IPv4Address

    def to_image(self) -> dict[str, Any]:
        return {"destination": str(self.destination), "gateway": str(self.gateway)}

    @classmethod
    def from_image(cls, image: JsonObject) -> Route:
        return cls(
            destination=IPv4Network(image["destination"]), gateway=IPv4Address(image["gateway"])
        )


LEASE_TIME_RANGE = (60, 365 * 86400)
"""Seconds a lease may last, for a subnet (in the config) and for a reservation alike."""
MTU_RANGE = (68, 65535)
"""RFC 2132 §5.1: the interface MTU option's minimum legal value is 68."""


def _bounds(bounds: tuple[int, int]) -> dict[str, int]:
    """Field metadata the config parser reads (``ddi.config.table.setting`` for sections)."""
    return {"lo": bounds[0], "hi": bounds[1]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Subnet:
    """A network the site serves, directly on ``interface`` or through relays inside ``cidr``."""

    name: str
    cidr: IPv4Network
    gateway: IPv4Address | None = None
    dns_servers: tuple[IPv4Address, ...] = ()
    domain: str | None = None
    lease_time: int = field(default=3600, metadata=_bounds(LEASE_TIME_RANGE))
    pools: tuple[Pool, ...] = ()
    interface: str | None = None
    relay_agents: tuple[IPv4Address, ...] = ()
    """giaddrs outside ``cidr`` that also relay for this subnet (a giaddr inside it always does)."""
    boot: str | None = None
    known_hosts_only: bool = False
    mtu: int | None = field(default=None, metadata=_bounds(MTU_RANGE))
    routes: tuple[Route, ...] = ()
    ntp_servers: tuple[IPv4Address, ...] = ()
    options: tuple[OptionValue, ...] = ()
    """Options by definition (``[[subnets.options]]``), encoded when the config is read."""

    def to_image(self) -> dict[str, Any]:
        image = {
            "name": self.name,
            "cidr": str(self.cidr),
            "gateway": _opt_str(self.gateway),
            "dns_servers": [str(a) for a in self.dns_servers],
            "domain": self.domain,
            "lease_time": self.lease_time,
            "pools": [p.to_image() for p in self.pools],
            "interface": self.interface,
            "relay_agents": [str(a) for a in self.relay_agents],
            "boot": self.boot,
            "known_hosts_only": self.known_hosts_only,
            "mtu": self.mtu,
            "routes": [r.to_image() for r in self.routes],
            "ntp_servers": [str(a) for a in self.ntp_servers],
        }
        if self.options:  # absent otherwise: images stay as they were
            image["options"] = [o.to_image() for o in self.options]
        return image

    @classmethod
    def from_image(cls, image: JsonObject) -> Subnet:
        return cls(
            name=image["name"],
            cidr=IPv4Network(image["cidr"]),
            gateway=_opt_ip(image.get("gateway")),
            dns_servers=tuple(IPv4Address(a) for a in image.get("dns_servers", ())),
            domain=image.get("domain"),
            lease_time=int(image.get("lease_time", 3600)),
            pools=tuple(Pool.from_image(p) for p in image.get("pools", ())),
            interface=image.get("interface"),
            relay_agents=tuple(IPv4Address(a) for a in image.get("relay_agents", ())),
            boot=image.get("boot"),
            known_hosts_only=bool(image.get("known_hosts_only", False)),
            mtu=image.get("mtu"),
            routes=tuple(Route.from_image(r) for r in image.get("routes", ())),
            ntp_servers=tuple(IPv4Address(a) for a in image.get("ntp_servers", ())),
            options=tuple(OptionValue.from_image(o) for o in image.get("options", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HostDhcpOptions:
    """A reservation's own DHCP options; each None (or empty list) inherits the subnet's.

    The image lists only the fields that are set, so ``{}`` and a missing ``dhcp`` key both
    mean "all from the subnet".
    """

    lease_time: int | None = None
    """Seconds; T1 and T2 follow from it as they do for the subnet's."""
    gateway: IPv4Address | None = None
    """Router (option 3), and the default route of option 121 when routes are sent."""
    dns_servers: tuple[IPv4Address, ...] | None = None
    domain: str | None = None
    mtu: int | None = field(default=None, metadata=_bounds(MTU_RANGE))
    routes: tuple[Route, ...] | None = None
    ntp_servers: tuple[IPv4Address, ...] | None = None
    options: tuple[OptionValue, ...] | None = None
    """Options by definition (``--option NAME=VALUE``), over the subnet's and the classes'."""

    def __post_init__(self) -> None:
        for name in ("dns_servers", "routes", "ntp_servers", "options"):
            if getattr(self, name) == ():
                object.__setattr__(self, name, None)
        if self.domain == "":
            object.__setattr__(self, "domain", None)

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in HOST_DHCP_FIELDS)

    def overlay(self, subnet: Subnet) -> Subnet:
        """``subnet`` with this host's values in place of the subnet's."""
        changes: dict[str, Any] = {
            name: getattr(self, name)
            for name in HOST_DHCP_FIELDS
            if getattr(self, name) is not None and name != "options"  # layered, not replaced
        }
        return replace(subnet, **changes) if changes else subnet

    def to_image(self) -> dict[str, Any]:
        image: dict[str, Any] = {}
        if self.lease_time is not None:
            image["lease_time"] = self.lease_time
        if self.gateway is not None:
            image["gateway"] = str(self.gateway)
        if self.dns_servers is not None:
            image["dns_servers"] = [str(a) for a in self.dns_servers]
        if self.domain is not None:
            image["domain"] = self.domain
        if self.mtu is not None:
            image["mtu"] = self.mtu
        if self.routes is not None:
            image["routes"] = [r.to_image() for r in self.routes]
        if self.ntp_servers is not None:
            image["ntp_servers"] = [str(a) for a in self.ntp_servers]
        if self.options is not None:
            image["options"] = [o.to_image() for o in self.options]
        return image

    @classmethod
    def from_image(cls, image: JsonObject) -> HostDhcpOptions:
        def addresses(name: str) -> tuple[IPv4Address, ...] | None:
            value = image.get(name)
            return None if value is None else tuple(IPv4Address(a) for a in value)

        routes = image.get("routes")
        lease_time = image.get("lease_time")
        mtu = image.get("mtu")
        options = image.get("options")
        return cls(
            lease_time=None if lease_time is None else int(lease_time),
            gateway=_opt_ip(image.get("gateway")),
            dns_servers=addresses("dns_servers"),
            domain=image.get("domain"),
            mtu=None if mtu is None else int(mtu),
            routes=None if routes is None else tuple(Route.from_image(r) for r in routes),
            ntp_servers=addresses("ntp_servers"),
            options=None if options is None else tuple(OptionValue.from_image(o) for o in options),
        )


HOST_DHCP_FIELDS = tuple(f.name for f in fields(HostDhcpOptions))
"""The per-host DHCP option fields, in declaration order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """A reservation: one host object. Its A and PTR records derive from it.

    At least one of ``mac``, ``client_id``, ``circuit_id`` and ``duid`` identifies the client; a
    DHCPv4 request matches by client-id first, then MAC, then relay circuit-id; a DHCPv6 one by
    DUID, then MAC. A host has ``ip``, ``ip6`` or both: a dual-stack host is one object.
    """

    id: str
    """Stable identifier (32 hex digits), the same at the edge and at central."""
    ip: IPv4Address | None = None
    ip6: IPv6Address | None = None
    hostname: str
    """One DNS label; the host's name is ``hostname.<site domain>``."""
    mac: str | None = None
    client_id: str | None = None
    circuit_id: str | None = None
    duid: str | None = None
    """DHCPv6 client DUID (RFC 8415 §11), lower-case colon-separated hex."""
    boot: str | None = None
    """Name of a boot profile; overrides the subnet's."""
    boot_file: str | None = None
    """Per-host override of the boot file the profile would give."""
    boot_script: str | None = None
    """Per-host override of the iPXE script URL the profile would give."""
    dhcp: HostDhcpOptions | None = None
    """Per-host DHCP options over the subnet's; None (never an empty value) when there are none."""
    owner: Owner = Owner.EDGE
    version: int = 1

    def __post_init__(self) -> None:
        if self.dhcp is not None and self.dhcp.is_empty():
            object.__setattr__(self, "dhcp", None)

    def to_image(self) -> dict[str, Any]:
        image: dict[str, Any] = {
            "id": self.id,
            "ip": _opt_str(self.ip),
            "hostname": self.hostname,
            "mac": self.mac,
            "client_id": self.client_id,
            "circuit_id": self.circuit_id,
            "boot": self.boot,
            "boot_file": self.boot_file,
            "boot_script": self.boot_script,
            "dhcp": None if self.dhcp is None else self.dhcp.to_image(),
            "owner": self.owner.value,
            "version": self.version,
        }
        # The IPv6 keys appear only when set, so an IPv4-only host's image is the one the
        # previous version wrote and read (an old central takes it unchanged).
        if self.ip6 is not None:
            image["ip6"] = str(self.ip6)
        if self.duid is not None:
            image["duid"] = self.duid
        return image

    @property
    def dual_stack(self) -> bool:
        return self.ip is not None and self.ip6 is not None

    @property
    def ipv6_only(self) -> bool:
        """Whether the image needs a reader that knows IPv6 hosts (it has no IPv4 address)."""
        return self.ip is None

    @classmethod
    def from_image(cls, image: JsonObject) -> Host:
        ip6 = image.get("ip6")
        return cls(
            id=image["id"],
            ip=_opt_ip(image.get("ip")),
            ip6=None if ip6 is None else IPv6Address(ip6),
            hostname=image["hostname"],
            mac=image.get("mac"),
            client_id=image.get("client_id"),
            circuit_id=image.get("circuit_id"),
            duid=image.get("duid"),
            boot=image.get("boot"),
            boot_file=image.get("boot_file"),
            boot_script=image.get("boot_script"),
            # Images written before per-host options existed have no "dhcp" key.
            dhcp=None if image.get("dhcp") is None else HostDhcpOptions.from_image(image["dhcp"]),
            owner=Owner(image.get("owner", "edge")),
            version=int(image.get("version", 1)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """An address bound (or once bound) to a client. Its object id is the address."""

    ip: IPv4Address
    mac: str | None
    client_id: str | None = None
    hostname: str | None = None
    """Sanitised name from option 81/12; None when the client sent none or it was refused."""
    state: LeaseState = LeaseState.BOUND
    start: float
    end: float
    subnet: str
    circuit_id: str | None = None

    def active(self, now: float) -> bool:
        return self.state is LeaseState.BOUND and self.end > now

    def to_image(self) -> dict[str, Any]:
        return {
            "ip": str(self.ip),
            "mac": self.mac,
            "client_id": self.client_id,
            "hostname": self.hostname,
            "state": self.state.value,
            "start": self.start,
            "end": self.end,
            "subnet": self.subnet,
            "circuit_id": self.circuit_id,
        }

    @classmethod
    def from_image(cls, image: JsonObject) -> Lease:
        if isinstance(image, LeaseImage):
            return image.lease  # committed in this process: the value itself, no parsing
        return cls(
            ip=IPv4Address(image["ip"]),
            mac=image.get("mac"),
            client_id=image.get("client_id"),
            hostname=image.get("hostname"),
            state=LeaseState(image["state"]),
            start=float(image["start"]),
            end=float(image["end"]),
            subnet=image["subnet"],
            circuit_id=image.get("circuit_id"),
        )


class LeaseImage(dict[str, Any]):
    """A lease's change image (exactly ``lease.to_image()``) that also keeps the ``Lease``
    value it came from, so that in-process listeners (the IPAM index, the DNS zones) share that
    value instead of parsing the image back (``Lease.from_image``). Everything else sees a
    plain JSON object."""

    __slots__ = ("lease",)

    def __init__(self, lease: Lease) -> None:
        super().__init__(lease.to_image())
        self.lease = lease


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """A static DNS record. ``name`` is absolute, lower case, without the trailing dot;
    ``value`` is the rdata in zone-file presentation form (``10 mail.site.example`` for MX)."""

    id: str
    name: str
    rtype: str
    value: str
    ttl: int | None = None
    owner: Owner = Owner.EDGE
    version: int = 1

    def to_image(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "rtype": self.rtype,
            "value": self.value,
            "ttl": self.ttl,
            "owner": self.owner.value,
            "version": self.version,
        }

    @classmethod
    def from_image(cls, image: JsonObject) -> Record:
        return cls(
            id=image["id"],
            name=image["name"],
            rtype=image["rtype"],
            value=image["value"],
            ttl=image.get("ttl"),
            owner=Owner(image.get("owner", "edge")),
            version=int(image.get("version", 1)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One change-log (outbox) entry: the full image of the object after an upsert, or as it
    was before a delete. ``(epoch, seq)`` is monotonic per site and never reused."""

    epoch: int
    seq: int
    kind: Kind
    object_id: str
    op: Op
    image: JsonObject = field(default_factory=dict)
    actor: str = ""
    reason: str = ""
    time: float = 0.0

    def to_image(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "kind": self.kind.value,
            "object_id": self.object_id,
            "op": self.op.value,
            "image": dict(self.image),
            "actor": self.actor,
            "reason": self.reason,
            "time": self.time,
        }

    @classmethod
    def from_image(cls, image: JsonObject) -> Change:
        return cls(
            epoch=int(image["epoch"]),
            seq=int(image["seq"]),
            kind=Kind(image["kind"]),
            object_id=str(image["object_id"]),
            op=Op(image["op"]),
            image=dict(image.get("image") or {}),
            actor=str(image.get("actor", "")),
            reason=str(image.get("reason", "")),
            time=float(image.get("time", 0.0)),
        )
