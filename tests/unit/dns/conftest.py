"""A small in-memory IPAM view for the DNS unit tests."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

import pytest

from ddi.dns.engine import DnsEngine, EngineSettings
from ddi.dns.zones import ApplyResult, Zones, ZoneSettings
from ddi.ipam.models import Change, Host, Kind, Lease, LeaseState, Op, Record, Subnet
from ddi.ipam.views import Applied, IpamIndex

DOMAIN = "site.example"


@dataclass
class FakeView:
    subnet_list: list[Subnet] = field(default_factory=list)
    host_list: list[Host] = field(default_factory=list)
    lease_list: list[Lease] = field(default_factory=list)
    record_list: list[Record] = field(default_factory=list)

    def subnets(self) -> Sequence[Subnet]:
        return self.subnet_list

    def hosts(self) -> Iterable[Host]:
        return self.host_list

    def leases(self) -> Iterable[Lease]:
        return self.lease_list

    def records(self) -> Iterable[Record]:
        return self.record_list


def subnet(cidr: str = "198.18.0.0/24", name: str = "lan") -> Subnet:
    return Subnet(name=name, cidr=IPv4Network(cidr))


def host(hostname: str, ip: str, hid: str | None = None) -> Host:
    return Host(
        id=hid or f"h-{hostname}", ip=IPv4Address(ip), hostname=hostname, mac="52:54:00:00:00:01"
    )


def lease(ip: str, hostname: str | None, state: LeaseState = LeaseState.BOUND) -> Lease:
    return Lease(
        ip=IPv4Address(ip),
        mac="52:54:00:00:01:01",
        hostname=hostname,
        state=state,
        start=1000.0,
        end=5000.0,
        subnet="lan",
    )


def record(
    name: str, rtype: str, value: str, rid: str | None = None, ttl: int | None = None
) -> Record:
    return Record(id=rid or f"r-{name}-{rtype}", name=name, rtype=rtype, value=value, ttl=ttl)


def settings(**kw: object) -> ZoneSettings:
    base: dict[str, object] = {
        "domain": DOMAIN,
        "ns_name": f"ns.{DOMAIN}",
        "ns_address": IPv4Address("198.18.0.1"),
        "ttl": 300,
        "journal_size": 4,
    }
    base.update(kw)
    return ZoneSettings(**base)  # type: ignore[arg-type]


def zones(view: FakeView | None = None, *, serial: int = 10, **kw: object) -> Zones:
    """Zones over an index holding ``view``'s objects (one /24 subnet by default)."""
    view = view or FakeView(subnet_list=[subnet()])
    index = IpamIndex(
        subnets=view.subnet_list,
        hosts=view.host_list,
        leases=view.lease_list,
        records=view.record_list,
        domain=DOMAIN,
    )
    return Zones(settings(**kw), index, serial=serial)


def apply(z: Zones, changes: Sequence[Change]) -> ApplyResult:
    """Commit ``changes`` to the zones' index; the zones follow it as in the daemon."""
    index = z.source
    assert isinstance(index, IpamIndex)
    results: list[ApplyResult] = []

    def follow(applied: Sequence[Applied]) -> None:
        results.append(z.apply(applied))

    index.subscribe(follow)
    try:
        index.apply(changes)
    finally:
        index.unsubscribe(follow)
    return results[0] if results else ApplyResult(changed=frozenset())


def engine(z: Zones, **kw: object) -> DnsEngine:
    return DnsEngine(EngineSettings(**kw), z)  # type: ignore[arg-type]


_seq = [100]


def change(
    obj: Host | Lease | Record | Subnet, op: Op = Op.UPSERT, seq: int | None = None
) -> Change:
    if seq is None:
        _seq[0] += 1
        seq = _seq[0]
    match obj:
        case Host():
            kind, oid = Kind.HOST, obj.id
        case Lease():
            kind, oid = Kind.LEASE, str(obj.ip)
        case Record():
            kind, oid = Kind.RECORD, obj.id
        case Subnet():
            kind, oid = Kind.SUBNET, obj.name
    return Change(epoch=1, seq=seq, kind=kind, object_id=oid, op=op, image=obj.to_image())


@pytest.fixture
def h() -> types.ModuleType:
    """This module's helpers (test modules cannot import a conftest by name)."""
    return sys.modules[__name__]
