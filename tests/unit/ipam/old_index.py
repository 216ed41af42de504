"""The IPAM index and pool scan as they were with ``IPv4Address`` keys: the reference the
integer-keyed ones must answer like (``test_int_index``)."""

# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address
from itertools import chain
from typing import Any, assert_never

from ddi.ipam.allocator import Client, Problem, in_pool, pool_ranges, quarantined
from ddi.ipam.models import Change, Host, Kind, Lease, LeaseState, Op, Record, Subnet
from ddi.ipam.multimap import MultiMap
from ddi.ipam.owner import name_owner
from ddi.ipam.validate import host_names
from ddi.ipam.views import name_key

AllocationView = Any
AppliedListener = Any
Applied = Any


def _lease_rank(lease: Lease) -> tuple[bool, float, float]:
    """Which of a client's leases to prefer: bound first, then the latest ending."""
    return (lease.state is LeaseState.BOUND, lease.end, lease.start)


class OldIpamIndex:
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
        self._by_ip: dict[IPv4Address, Host] = {}
        self._by_name: dict[str, Host] = {}
        self._leases: dict[IPv4Address, Lease] = {}
        self._leases_by_mac: MultiMap[str, IPv4Address] = MultiMap()
        self._leases_by_client_id: MultiMap[str, IPv4Address] = MultiMap()
        self._lease_names: MultiMap[str, IPv4Address] = MultiMap()
        """Hostname → addresses of the bound leases that carry it (the ones DNS publishes)."""
        self._records: dict[str, Record] = {}
        self._record_names: MultiMap[str, str] = MultiMap()
        """Owner name → record ids."""
        self._listeners: list[AppliedListener] = []
        for subnet in subnets:
            self._subnets[subnet.name] = subnet
        self._sort_subnets()
        for host in hosts:
            self._put_host(host)
        for lease in leases:
            self._put_lease(lease)
        for record in records:
            self._put_record(record)

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
        return self._by_ip.get(ip)

    def host_by_name(self, hostname: str) -> Host | None:
        return self._by_name.get(name_key(hostname))

    def hosts(self) -> Iterable[Host]:
        return self._hosts.values()

    def host(self, host_id: str) -> Host | None:
        return self._hosts.get(host_id)

    def lease_by_ip(self, ip: IPv4Address) -> Lease | None:
        return self._leases.get(ip)

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
            before: Subnet | Host | Lease | Record | None
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
                        before = self._drop_lease(lease.ip)
                        self._put_lease(lease)
                        if applied is not None:
                            applied.append(Applied(change=change, before=before, lease=lease))
                        continue
                    before = self._drop_lease(IPv4Address(change.object_id))
                case Kind.RECORD:
                    before = self._drop_record(change.object_id)
                    if change.op is Op.UPSERT:
                        self._put_record(Record.from_image(change.image))
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
        self._by_ip[host.ip] = host
        self._by_name[name_key(host.hostname)] = host

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
        if (held_ip := self._by_ip.get(old.ip)) is not None and held_ip.id == host_id:
            del self._by_ip[old.ip]
        return old

    def _put_lease(self, lease: Lease) -> None:
        self._leases[lease.ip] = lease
        if lease.mac is not None:
            self._leases_by_mac.add(lease.mac, lease.ip)
        if lease.client_id is not None:
            self._leases_by_client_id.add(lease.client_id, lease.ip)
        if lease.hostname and lease.state is LeaseState.BOUND:
            self._lease_names.add(name_key(lease.hostname), lease.ip)

    def _drop_lease(self, ip: IPv4Address) -> Lease | None:
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


def old_taken(
    ip: IPv4Address,
    view: AllocationView,
    now: float,
    client: Client,
    offered: Mapping[IPv4Address, str],
) -> Problem | None:
    host = view.host_by_ip(ip)
    if host is not None and not client.is_host(host):
        return Problem.RESERVED
    lease = view.lease_by_ip(ip)
    if lease is not None:
        if quarantined(lease, now):
            return Problem.QUARANTINED
        if lease.active(now) and not client.owns(lease):
            return Problem.LEASED
    holder = offered.get(ip)
    if holder is not None and holder != client.key:
        return Problem.OFFERED
    return None


def old_next_free(
    subnet: Subnet,
    view: AllocationView,
    now: float,
    *,
    client: Client,
    offered: Mapping[IPv4Address, str],
    start: IPv4Address | None = None,
) -> IPv4Address | None:
    """The first usable pool address at or after ``start`` (wrapping), or None when the
    subnet's pools are exhausted.

    Pools are scanned in address order; ``start`` outside every pool means "from the lowest".
    """
    ranges = pool_ranges(subnet)
    if not ranges:
        return None
    first = int(start) if start is not None and in_pool(start, subnet) else ranges[0][0]
    gateway = -1 if subnet.gateway is None else int(subnet.gateway)
    # Two passes over the pool list: from ``first`` to the end, then from the start up to it.
    segments: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if hi >= first:
            segments.append((max(lo, first), hi))
    for lo, hi in ranges:
        if lo >= first:
            break
        segments.append((lo, min(hi, first - 1)))
    for lo, hi in segments:
        for value in range(lo, hi + 1):
            if value == gateway:
                continue
            ip = IPv4Address(value)
            if old_taken(ip, view, now, client, offered) is None:
                return ip
    return None
