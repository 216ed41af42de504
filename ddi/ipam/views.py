"""In-memory read views of the IPAM, what the DHCP and DNS engines read (never the database).

Rules:
* :class:`IpamView` is the read-only seam the engines take; tests pass an :class:`IpamIndex`
  built from values, or any small fake.
* :class:`IpamIndex` changes only through :meth:`IpamIndex.apply` with committed changes
  (``store.subscribe(index.apply)``), so it always equals what :meth:`IpamIndex.load` would
  build from the store at the same seq.
* Lookups are dict hits; nothing here does I/O except :meth:`IpamIndex.load`.
* What follows the IPAM beyond these lookups (the DNS zones) subscribes to the index
  (:meth:`IpamIndex.subscribe`): it reads the objects here rather than keeping copies, and is
  told what each applied change replaced.
* Who owns a name is :mod:`ddi.ipam.owner`'s rule; :meth:`IpamIndex.name_owned` asks it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from itertools import chain
from typing import TYPE_CHECKING, Protocol, assert_never

from ddi.ipam.models import (
    Change,
    Host,
    Kind,
    Lease,
    LeaseState,
    Op,
    Record,
    Subnet,
)
from ddi.ipam.models6 import Lease6, Lease6Kind, Subnet6, parse_lease6_id
from ddi.ipam.multimap import MultiMap
from ddi.ipam.owner import name_owner
from ddi.ipam.validate import host_names
from ddi.ipam.validate6 import duid_mac
from ddi.ipam.views6 import Index6

if TYPE_CHECKING:
    from ddi.ipam.store import Store

__all__ = ["Applied", "IpamIndex", "IpamView", "name_key"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """One change the index applied, with the object it replaced (None when there was none)."""

    change: Change
    before: Subnet | Host | Lease | Record | Subnet6 | Lease6 | None
    lease: Lease | None = None
    """For a lease upserted, the lease now in the index (spares a listener parsing its image)."""


AppliedListener = Callable[[Sequence[Applied]], None]


def name_key(name: str) -> str:
    """A hostname or owner name as the index keys it: lower case, no trailing dot; ``name``
    itself when it already is (no second copy of the string is kept)."""
    key = name.lower().rstrip(".")
    return name if key == name else key


class IpamView(Protocol):
    """What the engines may read of the IPAM, and how they hear that it changed."""

    def subnets(self) -> Sequence[Subnet]: ...
    def subnet(self, name: str) -> Subnet | None: ...
    def host_by_mac(self, mac: str) -> Host | None: ...
    def host_by_client_id(self, client_id: str) -> Host | None: ...
    def host_by_circuit_id(self, circuit_id: str) -> Host | None: ...
    def host_by_ip(self, ip: IPv4Address) -> Host | None: ...
    def host_by_name(self, hostname: str) -> Host | None: ...
    def hosts(self) -> Iterable[Host]: ...
    def lease_by_ip(self, ip: IPv4Address) -> Lease | None: ...
    def host_at(self, value: int) -> Host | None: ...
    def lease_at(self, value: int) -> Lease | None: ...
    def lease_by_client(self, mac: str | None, client_id: str | None) -> Lease | None: ...
    def leases(self) -> Iterable[Lease]: ...
    def lease_count(self) -> int: ...
    def records(self) -> Iterable[Record]: ...
    def name_owned(self, name: str) -> bool: ...
    def subnets6(self) -> Sequence[Subnet6]: ...
    def subnet6(self, name: str) -> Subnet6 | None: ...
    def host_by_ip6(self, ip: IPv6Address) -> Host | None: ...
    def host_by_duid(self, duid: str) -> Host | None: ...
    def host6_for(self, duid: str, mac: str | None = None) -> Host | None: ...
    def lease6(self, kind: Lease6Kind, prefix: IPv6Network) -> Lease6 | None: ...
    def leases6_of(self, kind: Lease6Kind, duid: str, iaid: int) -> list[Lease6]: ...
    def leases6(self) -> Iterable[Lease6]: ...
    def subscribe(self, listener: AppliedListener) -> None: ...
    def unsubscribe(self, listener: AppliedListener) -> None: ...


def _lease_rank(lease: Lease) -> tuple[bool, float, float]:
    """Which of a client's leases to prefer: bound first, then the latest ending."""
    return (lease.state is LeaseState.BOUND, lease.end, lease.start)


class IpamIndex:
    """Dictionaries over the IPAM objects, kept current by :meth:`apply`. Implements IpamView.

    ``domain`` is the site domain: a reservation ``web1`` owns ``web1.<domain>`` (and
    ``web1.<subnet domain>`` when its subnet sets another one).
    """

    def __init__(
        self,
        *,
        subnets: Iterable[Subnet] = (),
        hosts: Iterable[Host] = (),
        leases: Iterable[Lease] = (),
        records: Iterable[Record] = (),
        domain: str | None = None,
        seq: int = 0,
        subnets6: Iterable[Subnet6] = (),
        leases6: Iterable[Lease6] = (),
    ) -> None:
        self.domain = domain.lower().rstrip(".") if domain else None
        self.seq = seq
        """The last change this index reflects; :meth:`apply` skips changes at or below it."""
        self._subnets: dict[str, Subnet] = {}
        self._subnet_list: list[Subnet] = []
        self._zones: list[str] = []
        """The site domain and every subnet's domain: where a hostname label lives."""
        self._hosts: dict[str, Host] = {}
        self._by_mac: dict[str, Host] = {}
        self._by_client_id: dict[str, Host] = {}
        self._by_circuit_id: dict[str, Host] = {}
        # Addresses are keyed as ints (``int(ip)`` is the address's own int, no new object):
        # an int hashes and compares in C, an IPv4Address in Python.
        self._by_ip: dict[int, Host] = {}
        self._by_name: dict[str, Host] = {}
        self._leases: dict[int, Lease] = {}
        self._leases_by_mac: MultiMap[str, int] = MultiMap()
        self._leases_by_client_id: MultiMap[str, int] = MultiMap()
        self._lease_names: MultiMap[str, int] = MultiMap()
        """Hostname → addresses of the bound leases that carry it (the ones DNS publishes)."""
        self._records: dict[str, Record] = {}
        self._record_names: MultiMap[str, str] = MultiMap()
        """Owner name → record ids."""
        self._listeners: list[AppliedListener] = []
        self._v6 = Index6()
        for subnet6 in subnets6:
            self._v6.subnets[subnet6.name] = subnet6
        self._v6.sort_subnets()
        for lease6 in leases6:
            self._v6.put_lease(lease6)
        for subnet in subnets:
            self._subnets[subnet.name] = subnet
        self._sort_subnets()
        for host in hosts:
            self._put_host(host)
        for lease in leases:
            self._put_lease(lease)
        for record in records:
            self._put_record(record)

    @classmethod
    async def load(cls, store: Store) -> IpamIndex:
        """Build the index from ``store``'s committed state.

        Subscribe right after (``store.subscribe(index.apply)``, with no ``await`` in between):
        changes at or below the loaded seq are skipped, so nothing is applied twice.
        """
        index = cls(domain=store.domain)
        index.seq = await store.load(_Loader(index))
        return index

    # --- IpamView ---

    def subnets(self) -> Sequence[Subnet]:
        return self._subnet_list

    def subnet(self, name: str) -> Subnet | None:
        return self._subnets.get(name)

    def host_by_mac(self, mac: str) -> Host | None:
        return self._by_mac.get(mac)

    def host_by_client_id(self, client_id: str) -> Host | None:
        return self._by_client_id.get(client_id)

    def host_by_circuit_id(self, circuit_id: str) -> Host | None:
        return self._by_circuit_id.get(circuit_id)

    def host_by_ip(self, ip: IPv4Address) -> Host | None:
        return self._by_ip.get(int(ip))

    def host_at(self, value: int) -> Host | None:
        """:meth:`host_by_ip` for the address as an int (the allocator's scan)."""
        return self._by_ip.get(value)

    def host_by_name(self, hostname: str) -> Host | None:
        return self._by_name.get(name_key(hostname))

    def hosts(self) -> Iterable[Host]:
        return self._hosts.values()

    def host(self, host_id: str) -> Host | None:
        return self._hosts.get(host_id)

    def lease_by_ip(self, ip: IPv4Address) -> Lease | None:
        return self._leases.get(int(ip))

    def lease_at(self, value: int) -> Lease | None:
        """:meth:`lease_by_ip` for the address as an int (the allocator's scan)."""
        return self._leases.get(value)

    def lease_by_client(self, mac: str | None, client_id: str | None) -> Lease | None:
        """The client's lease: by client-id when it sent one (RFC 2131 §4.2), else by MAC.

        A lease recorded with a client-id is not matched by MAC alone from a client that now
        sends a different client-id. Bound leases are preferred, then the latest ending.
        """
        if client_id is not None:
            found = self._leases_by_client_id.get(client_id)
            if found:
                return max((self._leases[ip] for ip in found), key=_lease_rank)
        if mac is None:
            return None
        leases = self._leases
        candidates = [
            lease
            for lease in (leases[ip] for ip in self._leases_by_mac.get(mac))
            if lease.client_id is None or client_id is None or lease.client_id == client_id
        ]
        return max(candidates, key=_lease_rank) if candidates else None

    def leases(self) -> Iterable[Lease]:
        return self._leases.values()

    def lease_count(self) -> int:
        """How many leases (any state) the index holds."""
        return len(self._leases)

    def leases_named(self, hostname: str) -> list[Lease]:
        """The bound leases whose hostname is ``hostname``."""
        leases = self._leases
        return [leases[ip] for ip in self._lease_names.get(name_key(hostname))]

    def records(self) -> Iterable[Record]:
        return self._records.values()

    def records_at(self, name: str) -> Iterable[Record]:
        """Static records whose owner name is ``name`` (absolute, without the trailing dot)."""
        records = self._records
        return [records[rid] for rid in self._record_names.get(name_key(name))]

    def name_owned(self, name: str) -> bool:
        """Whether a reservation or a static record owns ``name`` (:func:`name_owner`).

        ``name`` is either one label (``web1``: claimed by a reservation with that hostname and
        by static records at ``web1.<site domain>`` and ``web1.<a subnet's domain>``) or an
        absolute name (claimed by the static records at it and a reservation whose name it is).
        """
        text = name_key(name)
        if "." not in text:
            named = self._by_name.get(text)
            zones = (self.records_at(f"{text}.{zone}") for zone in self._zones)
            hosts = () if named is None else (named,)
            return name_owner(hosts=hosts, records=chain.from_iterable(zones)) is not None
        host = self._by_name.get(text.split(".", 1)[0])
        if host is not None and text not in host_names(
            host.hostname, host.ip, self._subnet_list, self.domain
        ):
            host = None
        hosts = () if host is None else (host,)
        return name_owner(hosts=hosts, records=self.records_at(text)) is not None

    # --- IPv6 (ddi.ipam.views6) ---

    def subnets6(self) -> Sequence[Subnet6]:
        return self._v6.subnet_list

    def subnet6(self, name: str) -> Subnet6 | None:
        return self._v6.subnets.get(name)

    def subnet6_for(self, ip: IPv6Address) -> Subnet6 | None:
        """The most specific IPv6 subnet whose CIDR holds ``ip``."""
        return self._v6.subnet_for(ip)

    def host_by_ip6(self, ip: IPv6Address) -> Host | None:
        return self._v6.by_ip6.get(int(ip))

    def host_by_duid(self, duid: str) -> Host | None:
        return self._v6.by_duid.get(duid)

    def host6_for(self, duid: str, mac: str | None = None) -> Host | None:
        """The reservation of a DHCPv6 client: by DUID, else by MAC (the relay's client
        link-layer address option, RFC 6939, given as ``mac``; else the one a DUID-LLT or
        DUID-LL carries). Only hosts with an IPv6 address are DHCPv6 reservations."""
        host = self._v6.by_duid.get(duid)
        if host is None:
            mac = mac or duid_mac(duid)
            host = None if mac is None else self._by_mac.get(mac)
        return host if host is not None and host.ip6 is not None else None

    def lease6(self, kind: Lease6Kind, prefix: IPv6Network) -> Lease6 | None:
        return self._v6.lease(kind, prefix)

    def host_at6(self, ip: int) -> Host | None:
        """:meth:`host_by_ip6` by the address as an integer (the DHCPv6 allocator's probes)."""
        return self._v6.by_ip6.get(ip)

    def na_lease_at(self, ip: int) -> Lease6 | None:
        """The IA_NA lease on the address ``ip`` (an integer), as :meth:`lease6` of its /128."""
        return self._v6.na_at.get(ip)

    def leases6_of(self, kind: Lease6Kind, duid: str, iaid: int) -> list[Lease6]:
        """The leases of the IA (``kind``, ``duid``, ``iaid``): bound first, then the latest
        ending."""
        return self._v6.leases_of(kind, duid, iaid)

    def leases6_of_duid(self, kind: Lease6Kind, duid: str) -> list[Lease6]:
        """Every lease of ``kind`` of the client ``duid``, any IA, best first."""
        return self._v6.leases_of_duid(kind, duid)

    def leases6(self) -> Iterable[Lease6]:
        return self._v6.all_leases()

    def leases6_named(self, hostname: str) -> list[Lease6]:
        """The bound NA leases whose hostname is ``hostname``."""
        return self._v6.leases_named(hostname)

    # --- updates ---

    def subscribe(self, listener: AppliedListener) -> None:
        """Call ``listener`` with what each :meth:`apply` applied, once the index shows it."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: AppliedListener) -> None:
        self._listeners.remove(listener)

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply committed changes in order; those at or below :attr:`seq` are skipped."""
        applied: list[Applied] | None = [] if self._listeners else None
        for change in changes:
            if change.seq <= self.seq:
                continue
            self.seq = change.seq
            before: Subnet | Host | Lease | Record | Subnet6 | Lease6 | None
            match change.kind:
                case Kind.SUBNET:
                    before = self._apply_subnet(change)
                case Kind.HOST:
                    before = self._drop_host(change.object_id)
                    if change.op is Op.UPSERT:
                        self._put_host(Host.from_image(change.image))
                case Kind.LEASE:
                    # Leases are moved to another state rather than deleted; a lease the store
                    # committed in this process is its value (``Lease.from_image``).
                    if change.op is Op.UPSERT:
                        lease = Lease.from_image(change.image)
                        before = self._drop_lease(int(lease.ip))
                        self._put_lease(lease)
                        if applied is not None:
                            applied.append(Applied(change=change, before=before, lease=lease))
                        continue
                    before = self._drop_lease(int(IPv4Address(change.object_id)))
                case Kind.RECORD:
                    before = self._drop_record(change.object_id)
                    if change.op is Op.UPSERT:
                        self._put_record(Record.from_image(change.image))
                case Kind.SUBNET6:
                    before = self._v6.drop_subnet(change.object_id)
                    if change.op is Op.UPSERT:
                        self._v6.put_subnet(Subnet6.from_image(change.image))
                case Kind.LEASE6:
                    if change.op is Op.UPSERT:
                        before = self._v6.put_lease(Lease6.from_image(change.image))
                    else:
                        before = self._v6.drop_lease(parse_lease6_id(change.object_id))
                case _:
                    assert_never(change.kind)
            if applied is not None:
                applied.append(Applied(change=change, before=before))
        if applied:
            for listener in list(self._listeners):
                listener(applied)

    def _apply_subnet(self, change: Change) -> Subnet | None:
        old = self._subnets.pop(change.object_id, None)
        if change.op is Op.UPSERT:
            subnet = Subnet.from_image(change.image)
            self._subnets[subnet.name] = subnet
        self._sort_subnets()
        return old

    def _sort_subnets(self) -> None:
        self._subnet_list = sorted(self._subnets.values(), key=lambda s: (s.cidr, s.name))
        zones = {s.domain.lower().rstrip(".") for s in self._subnet_list if s.domain}
        if self.domain:
            zones.add(self.domain)
        self._zones = sorted(zones)

    def _put_host(self, host: Host) -> None:
        self._hosts[host.id] = host
        if host.mac is not None:
            self._by_mac[host.mac] = host
        if host.client_id is not None:
            self._by_client_id[host.client_id] = host
        if host.circuit_id is not None:
            self._by_circuit_id[host.circuit_id] = host
        if host.ip is not None:
            self._by_ip[int(host.ip)] = host
        self._by_name[name_key(host.hostname)] = host
        self._v6.put_host(host)

    def _drop_host(self, host_id: str) -> Host | None:
        old = self._hosts.pop(host_id, None)
        if old is None:
            return None
        for table, key in (
            (self._by_mac, old.mac),
            (self._by_client_id, old.client_id),
            (self._by_circuit_id, old.circuit_id),
            (self._by_name, name_key(old.hostname)),
        ):
            if key is not None and (held := table.get(key)) is not None and held.id == host_id:
                del table[key]
        if old.ip is not None:
            value = int(old.ip)
            if (held_ip := self._by_ip.get(value)) is not None and held_ip.id == host_id:
                del self._by_ip[value]
        self._v6.drop_host(old)
        return old

    def _put_lease(self, lease: Lease) -> None:
        ip = int(lease.ip)
        self._leases[ip] = lease
        if lease.mac is not None:
            self._leases_by_mac.add(lease.mac, ip)
        if lease.client_id is not None:
            self._leases_by_client_id.add(lease.client_id, ip)
        if lease.hostname and lease.state is LeaseState.BOUND:
            self._lease_names.add(name_key(lease.hostname), ip)

    def _drop_lease(self, ip: int) -> Lease | None:
        old = self._leases.pop(ip, None)
        if old is None:
            return None
        if old.mac is not None:
            self._leases_by_mac.discard(old.mac, ip)
        if old.client_id is not None:
            self._leases_by_client_id.discard(old.client_id, ip)
        if old.hostname and old.state is LeaseState.BOUND:
            self._lease_names.discard(name_key(old.hostname), ip)
        return old

    def _put_record(self, record: Record) -> None:
        self._records[record.id] = record
        self._record_names.add(name_key(record.name), record.id)

    def _drop_record(self, record_id: str) -> Record | None:
        old = self._records.pop(record_id, None)
        if old is None:
            return None
        self._record_names.discard(name_key(old.name), record_id)
        return old

    # --- comparison (tests, diagnostics) ---

    def counts(self) -> dict[str, int]:
        """How many objects of each kind the index holds."""
        return {
            "subnets": len(self._subnets),
            "hosts": len(self._hosts),
            "leases": len(self._leases),
            "records": len(self._records),
        }

    def state(self) -> tuple[object, ...]:
        """Every object and every secondary index, for comparing two indexes."""
        return (
            self._subnet_list,
            sorted(self._hosts.items()),
            sorted(self._by_mac.items()),
            sorted(self._by_client_id.items()),
            sorted(self._by_circuit_id.items()),
            sorted(self._by_ip.items()),
            sorted(self._by_name.items()),
            sorted(self._leases.items()),
            sorted((k, sorted(v)) for k, v in self._leases_by_mac.items()),
            sorted((k, sorted(v)) for k, v in self._leases_by_client_id.items()),
            sorted((k, sorted(v)) for k, v in self._lease_names.items()),
            sorted(self._records.items()),
            sorted((k, sorted(v)) for k, v in self._record_names.items()),
            self._v6.state(),
        )


class _Loader:
    """The store's :meth:`~ddi.ipam.store.Store.load` filling an index, chunk by chunk."""

    def __init__(self, index: IpamIndex) -> None:
        self._index = index

    def subnets(self, subnets: list[Subnet]) -> None:
        index = self._index
        for subnet in subnets:
            index._subnets[subnet.name] = subnet
        index._sort_subnets()

    def subnets6(self, subnets: list[Subnet6]) -> None:
        v6 = self._index._v6
        for subnet in subnets:
            v6.subnets[subnet.name] = subnet
        v6.sort_subnets()

    def leases6(self, leases: list[Lease6]) -> None:
        for lease in leases:
            self._index._v6.put_lease(lease)

    def hosts(self, hosts: list[Host]) -> None:
        for host in hosts:
            self._index._put_host(host)

    def leases(self, leases: list[Lease]) -> None:
        for lease in leases:
            self._index._put_lease(lease)

    def records(self, records: list[Record]) -> None:
        for record in records:
            self._index._put_record(record)
