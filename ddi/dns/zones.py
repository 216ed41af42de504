"""Zones derived from IPAM: the site domain and the reverse zones of its subnets.

Theory of operation: :class:`Zones` reads the IPAM objects that produce DNS data (reservations,
bound leases, static records, subnets) from the IPAM index and keeps only the RRsets they
produce, grouped by zone (each a :class:`~ddi.dns.zone.Zone`). The index tells it each change it
applied with the object that change replaced (``index.subscribe(zones.apply)``): the owner names
the old and the new object touch are "dirty", and only those names are recomputed from the index
and diffed; each zone whose content moved gets one new serial and one journal entry (the IXFR
delta) per applied batch.

Rules:
* Zones: the site domain, plus one ``in-addr.arpa`` zone per octet boundary covering a subnet
  (a /24 or longer prefix: its /24; a /16: one zone; a /23: two /24 zones; RFC 2317 classless
  delegation is not used), and one ``ip6.arpa`` zone per IPv6 subnet, at the nibble boundary
  at or above its prefix (``ddi.dns.zone6``).
* A reservation owns ``<hostname>.<domain>``: A and AAAA at that name, PTRs at its addresses.
* A bound lease (DHCPv4, or DHCPv6 IA_NA) with a hostname gets A or AAAA and PTR only if the
  name is not owned by a reservation
  or a static record, and its address is not a reservation's; otherwise it is a *collision*,
  reported to the caller (which counts and logs it) and gets no record
  (:mod:`ddi.ipam.owner`).
* A static CNAME excludes every other type at its name (RFC 1034 §3.6.2).
* The SOA serial of a zone increases on every change to that zone: it becomes
  ``max(serial + 1, seq)`` of the last change applied, so it keeps growing across restarts when
  the initial serial is the store's last change sequence number.
* Pure: no I/O, no clock; records are dnslib values.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import Any, Protocol

from dnslib import QTYPE, RR, SOA

from ddi.dns.zone import (
    A_TYPE,
    AAAA_TYPE,
    CNAME_TYPE,
    NS_TYPE,
    PTR_TYPE,
    SOA_TYPE,
    Delta,
    Key,
    Plain,
    Zone,
    absolute,
    canonical_ipv4,
    label,
    make_rr,
    name_wire,
    record_rdata,
    reverse_name,
    reverse_networks,
    reverse_origin,
    under,
)
from ddi.dns.zone6 import ip_of_reverse6, reverse_name6, reverse_network6, reverse_origin6
from ddi.ipam.models import Host, Kind, Lease, LeaseState, Op, Record, Subnet
from ddi.ipam.models6 import Lease6, Lease6Kind, Subnet6
from ddi.ipam.owner import lease_collides, lease_publishes, name_owner
from ddi.ipam.views import Applied
from ddi.numbers import decimal


class ZoneSource(Protocol):
    """The part of :class:`~ddi.ipam.views.IpamIndex` the zones read."""

    def subnets(self) -> Sequence[Subnet]: ...
    def hosts(self) -> Iterable[Host]: ...
    def leases(self) -> Iterable[Lease]: ...
    def records(self) -> Iterable[Record]: ...
    def host_by_name(self, hostname: str) -> Host | None: ...
    def host_by_ip(self, ip: IPv4Address) -> Host | None: ...
    def lease_by_ip(self, ip: IPv4Address) -> Lease | None: ...
    def leases_named(self, hostname: str) -> list[Lease]: ...
    def records_at(self, name: str) -> Iterable[Record]: ...
    def subnets6(self) -> Sequence[Subnet6]: ...
    def host_by_ip6(self, ip: IPv6Address) -> Host | None: ...
    def lease6(self, kind: Lease6Kind, prefix: IPv6Network) -> Lease6 | None: ...
    def leases6(self) -> Iterable[Lease6]: ...
    def leases6_named(self, hostname: str) -> list[Lease6]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneSettings:
    domain: str
    """The site zone's origin, lower case, no trailing dot."""
    ns_name: str
    """The appliance's absolute name (NS target and SOA MNAME)."""
    ns_address: IPv4Address | None = None
    """Glue A for ``ns_name`` when it lies inside the site zone."""
    ttl: int = 300
    """TTL of derived records; also the SOA minimum (RFC 2308 negative-caching TTL)."""
    refresh: int = 3600
    retry: int = 600
    expire: int = 1_209_600
    hostmaster: str = ""
    """SOA RNAME; default ``hostmaster.<domain>``."""
    journal_size: int = 100
    """IXFR deltas kept per zone; older serials fall back to AXFR."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    changed: frozenset[str]
    """Origins of the zones whose serial moved."""
    collisions: tuple[str, ...] = ()
    """Lease names refused because a reservation or static record owns them."""
    names: frozenset[str] = frozenset()
    """The names whose records were recomputed (the compiled answers follow them)."""
    rebuilt: bool = False
    """The set of zones moved (a subnet change): every name may have changed zone."""


Touched = dict[str, tuple[list[tuple[str, Key]], list[tuple[str, Key]]]]


class Zones:
    """Every local zone, derived from the IPAM index and kept in step by :meth:`apply`."""

    def __init__(self, settings: ZoneSettings, source: ZoneSource, *, serial: int) -> None:
        self.settings = settings
        self.source = source
        """The index the zones read: reservations, leases, records and subnets live there."""
        self._serial_floor = max(1, serial)
        self._suffix = "." + settings.domain
        self._ns_name = absolute(settings.ns_name)
        self._v6_leases = True
        """False while the start-up build knows the index holds no DHCPv6 lease (no lookup
        of a name's IPv6 leases then)."""
        self.zones: dict[str, Zone] = {}
        self.plain: Plain = {}
        """Every zone's plain names (:attr:`Zone.plain`)."""
        self.collisions = 0
        self.bad_records = 0
        self._add_zone(settings.domain, self._serial_floor)
        for origin in sorted(self._reverse_origins()):
            self._add_zone(origin, self._serial_floor)
        self._nest()
        self._recompute_all()

    # --- lookups -------------------------------------------------------------------------------

    def find(self, name: str) -> Zone | None:
        """The closest enclosing local zone of ``name`` (absolute form), or None."""
        zones = self.zones
        while True:
            zone = zones.get(name)
            if zone is not None:
                return zone
            if not name:
                return None
            name = name.partition(".")[2]

    def statistics(self) -> dict[str, Any]:
        return {
            "zones": {origin: z.serial for origin, z in sorted(self.zones.items())},
            "names": sum(len(z.data) for z in self.zones.values()) + len(self.plain),
            "collisions": self.collisions,
            "bad_records": self.bad_records,
        }

    # --- changes -------------------------------------------------------------------------------

    def apply(self, applied: Sequence[Applied]) -> ApplyResult:
        """Update the zones from changes the index has applied (one store transaction):
        ``source.subscribe(zones.apply)``. The index already shows them; each one's ``before``
        says which names the replaced object had.

        Returns:
            The zones whose content (and so serial) changed, and the lease names refused.
        """
        dirty: set[str] = set()
        leases: list[Lease] = []
        leases6: list[Lease6] = []
        subnets_moved = False
        last_seq = 0
        for step in applied:
            change, before = step.change, step.before
            last_seq = max(last_seq, change.seq)
            upsert = change.op is Op.UPSERT
            match change.kind:
                case Kind.HOST:
                    if isinstance(before, Host):
                        dirty |= self._host_names_of(before)
                    if upsert:
                        dirty |= self._host_names_of(Host.from_image(change.image))
                case Kind.LEASE:
                    if isinstance(before, Lease):
                        dirty |= self._lease_names_of(before)
                    if upsert:
                        lease = Lease.from_image(change.image)
                        dirty |= self._lease_names_of(lease)
                        leases.append(lease)
                case Kind.RECORD:
                    if isinstance(before, Record):
                        dirty.add(absolute(before.name))
                    if upsert:
                        dirty.add(absolute(str(change.image["name"])))
                case Kind.LEASE6:
                    if isinstance(before, Lease6):
                        dirty |= self._lease6_names_of(before)
                    if upsert:
                        lease6 = Lease6.from_image(change.image)
                        dirty |= self._lease6_names_of(lease6)
                        leases6.append(lease6)
                case Kind.SUBNET | Kind.SUBNET6:
                    subnets_moved = True
        collisions = [
            name
            for lease in leases
            if (name := self._lease_fqdn(lease)) is not None and self._lease_collides(lease, name)
        ]
        collisions += [
            name
            for lease6 in leases6
            if (name := self._lease6_fqdn(lease6)) is not None
            and self._lease6_collides(lease6, name)
        ]
        # A forward name's ownership decides its leases' PTRs too.
        for name in list(dirty):
            for lease in self._leases_at(name):
                dirty.add(reverse_name(lease.ip))
            for lease6 in self._leases6_at(name):
                dirty.add(reverse_name6(lease6.address))
        self.collisions += len(collisions)
        touched: Touched = {}
        if subnets_moved:
            self._move_reverse_zones(last_seq, touched)
        for name in dirty:
            self._recompute(name, touched)
        changed = set()
        for origin, (removed, added) in touched.items():
            zone = self.zones.get(origin)
            if zone is None or (not removed and not added and origin not in self._fresh):
                continue
            old = zone.serial
            self._bump(zone, last_seq)
            if origin not in self._fresh:
                zone.journal.append(
                    Delta(
                        old_serial=old,
                        new_serial=zone.serial,
                        removed=tuple(make_rr(label(n), k) for n, k in removed),
                        added=tuple(make_rr(label(n), k) for n, k in added),
                    )
                )
            changed.add(origin)
        self._fresh.clear()
        return ApplyResult(
            changed=frozenset(changed),
            collisions=tuple(collisions),
            names=frozenset(dirty),
            rebuilt=subnets_moved,
        )

    # --- sources -------------------------------------------------------------------------------

    def _host_fqdn(self, host: Host) -> str:
        return f"{absolute(host.hostname)}{self._suffix}"

    def _lease_fqdn(self, lease: Lease) -> str | None:
        if lease.state is not LeaseState.BOUND or not lease.hostname:
            return None
        return f"{absolute(lease.hostname)}{self._suffix}"

    def _host_names_of(self, host: Host) -> set[str]:
        """The reservation's names, and the name of a lease at its address (which the
        reservation keeps from publishing)."""
        names = {self._host_fqdn(host)}
        if host.ip6 is not None:
            names.add(reverse_name6(host.ip6))
            lease6 = self.source.lease6(Lease6Kind.NA, IPv6Network(host.ip6))
            fqdn6 = None if lease6 is None else self._lease6_fqdn(lease6)
            if fqdn6 is not None:
                names.add(fqdn6)
        if host.ip is None:
            return names
        names.add(reverse_name(host.ip))
        lease = self.source.lease_by_ip(host.ip)
        fqdn = None if lease is None else self._lease_fqdn(lease)
        if fqdn is not None:
            names.add(fqdn)
        return names

    def _lease6_fqdn(self, lease: Lease6) -> str | None:
        """A DHCPv6 lease's name: only a bound IA_NA address with a hostname has one."""
        if lease.kind is not Lease6Kind.NA or lease.state is not LeaseState.BOUND:
            return None
        return None if not lease.hostname else f"{absolute(lease.hostname)}{self._suffix}"

    def _lease6_names_of(self, lease: Lease6) -> set[str]:
        if lease.kind is not Lease6Kind.NA:
            return set()
        names = {reverse_name6(lease.address)}
        fqdn = self._lease6_fqdn(lease)
        if fqdn is not None:
            names.add(fqdn)
        return names

    def _leases6_at(self, name: str) -> list[Lease6]:
        hostname = self._hostname_of(name)
        return [] if hostname is None else self.source.leases6_named(hostname)

    def _lease6_collides(self, lease: Lease6, name: str) -> bool:
        ip = lease.address
        return lease_collides(ip, self._owner(name), self.source.host_by_ip6(ip))

    def _lease_names_of(self, lease: Lease) -> set[str]:
        names = {reverse_name(lease.ip)}
        fqdn = self._lease_fqdn(lease)
        if fqdn is not None:
            names.add(fqdn)
        return names

    def _hostname_of(self, name: str) -> str | None:
        """The hostname whose reservation or lease would sit at ``name`` in the site zone."""
        if not name.endswith(self._suffix):
            return None
        return name[: -len(self._suffix)] or None

    def _hosts_named(self, hostname: str | None) -> tuple[Host, ...]:
        """The reservation of that hostname, if any."""
        host = None if hostname is None else self.source.host_by_name(hostname)
        return () if host is None else (host,)

    def _leases_at(self, name: str) -> list[Lease]:
        hostname = self._hostname_of(name)
        return [] if hostname is None else self.source.leases_named(hostname)

    def _owner(self, name: str) -> Host | Record | None:
        if name == self._ns_name:
            return self._name_server_record()
        hosts = self._hosts_named(self._hostname_of(name))
        return name_owner(hosts=hosts, records=self.source.records_at(name))

    def _name_server_record(self) -> Record:
        """The name server's own claim on ``dns.ns_name``: a lease named so never publishes
        there (a second A beside the server's would send secondaries to a client)."""
        s = self.settings
        address = "0.0.0.0" if s.ns_address is None else str(s.ns_address)
        return Record(id="dns-ns-name", name=absolute(s.ns_name), rtype="A", value=address)

    def _lease_collides(self, lease: Lease, name: str) -> bool:
        """True when the lease's name collides with a name it does not own."""
        return lease_collides(lease.ip, self._owner(name), self.source.host_by_ip(lease.ip))

    # --- zone set ------------------------------------------------------------------------------

    _fresh: set[str]

    def _reverse_origins(self) -> set[str]:
        origins = {
            reverse_origin(net)
            for subnet in self.source.subnets()
            for net in reverse_networks(subnet.cidr)
        }
        origins |= {reverse_origin6(reverse_network6(s.cidr)) for s in self.source.subnets6()}
        return origins

    def _add_zone(self, origin: str, serial: int) -> Zone:
        plain = QTYPE.PTR if origin.endswith((".in-addr.arpa", ".ip6.arpa")) else QTYPE.A
        zone = Zone(
            origin=origin,
            serial=serial,
            soa=self._soa(origin, serial),
            plain_type=plain,
            plain_ttl=self.settings.ttl,
            plain=self.plain,
            origin_wire=name_wire(origin) or b"",
        )
        zone.journal = deque(maxlen=self.settings.journal_size)
        self.zones[origin] = zone
        return zone

    def _move_reverse_zones(self, seq: int, touched: Touched) -> None:
        wanted = self._reverse_origins()
        current = {o for o in self.zones if o != self.settings.domain}
        gone = current - wanted
        for origin in gone:
            del self.zones[origin]
        added = sorted(wanted - current)
        self._nest()
        if gone:
            # Their plain names go with them (as their ``data`` does).
            suffixes = tuple(w for o in gone if (w := name_wire(o)) is not None)
            for wire in [w for w in self.plain if any(under(w, x) for x in suffixes)]:
                del self.plain[wire]
        if not added:
            return
        names = self._source_names(forward=False)
        for origin in added:
            self._add_zone(origin, max(self._serial_floor, seq))
            self._fresh.add(origin)
            touched[origin] = ([], [])
            suffix = "." + origin
            for name in {origin} | {n for n in names if n.endswith(suffix)}:
                self._recompute(name, touched)

    def _nest(self) -> None:
        """Tell each zone which zones are nested in it (their names are not its names)."""
        for zone in self.zones.values():
            zone.inner = tuple(
                other.origin_wire
                for other in self.zones.values()
                if other is not zone and other.origin.endswith("." + zone.origin)
            )

    def _source_names(self, *, forward: bool = True) -> set[str]:
        """Every name the IPAM objects put data at (with ``forward`` False, only the reverse
        names of addresses and the records' names)."""
        return set(self._stream_names(forward=forward))

    def _stream_names(self, *, forward: bool = True) -> Iterator[str]:
        """The names of :meth:`_source_names`, some more than once, read from the index as
        they are yielded (no set of every name at start-up)."""
        for host in self.source.hosts():
            if host.ip is not None:
                yield reverse_name(host.ip)
            if host.ip6 is not None:
                yield reverse_name6(host.ip6)
            if forward:
                yield self._host_fqdn(host)
        for lease in self.source.leases():
            fqdn = self._lease_fqdn(lease)
            if fqdn is not None:
                yield reverse_name(lease.ip)
                if forward:
                    yield fqdn
        for lease6 in self.source.leases6():
            fqdn = self._lease6_fqdn(lease6)
            if fqdn is not None:
                yield reverse_name6(lease6.address)
                if forward:
                    yield fqdn
        for record in self.source.records():
            yield absolute(record.name)

    def _recompute_all(self) -> None:
        self._fresh = set()
        self._v6_leases = any(True for _ in self.source.leases6())
        for name in (self.settings.domain, self._ns_name, *self.zones):
            self._recompute(name, None)
        plain = self.plain
        for name in self._stream_names():
            # A name's records depend on the index alone: one that has them is done (the
            # plain ones, most of them, are seen before looking for the zone).
            wire = name_wire(name)
            if wire is not None and wire in plain:
                continue
            zone = self.find(name)
            if zone is None or name in zone.data:
                continue
            zone._set(name, self._keys_for(name, zone), wire)
        self._v6_leases = True  # from now on the index changes
        for origin, zone in self.zones.items():
            if not zone.keys(origin):
                raise AssertionError(f"zone {origin} has no apex")
        for lease in self.source.leases():
            fqdn = self._lease_fqdn(lease)
            if fqdn is not None and self._lease_collides(lease, fqdn):
                self.collisions += 1
        for lease6 in self.source.leases6():
            fqdn = self._lease6_fqdn(lease6)
            if fqdn is not None and self._lease6_collides(lease6, fqdn):
                self.collisions += 1

    def _bump(self, zone: Zone, seq: int) -> None:
        zone.serial = max(zone.serial + 1, seq) & 0xFFFFFFFF
        zone.soa = self._soa(zone.origin, zone.serial)

    def _soa(self, origin: str, serial: int) -> Any:
        s = self.settings
        rname = s.hostmaster or f"hostmaster.{s.domain}"
        times = (serial, s.refresh, s.retry, s.expire, s.ttl)
        rdata = SOA(label(absolute(s.ns_name)), label(absolute(rname)), times)
        return RR(label(origin), SOA_TYPE, ttl=s.ttl, rdata=rdata)

    def _recompute(self, name: str, touched: Touched | None) -> None:
        """Rebuild ``name``'s records; with ``touched``, collect what moved per zone."""
        zone = self.find(name)
        if zone is None:
            return
        new = self._keys_for(name, zone)
        old = () if touched is None else zone.keys(name)
        zone._set(name, new, name_wire(name))
        if touched is None or old == new:
            return
        removed = [(name, k) for k in old if k[0] != SOA_TYPE and k not in new]
        added = [(name, k) for k in new if k[0] != SOA_TYPE and k not in old]
        if removed or added:
            acc = touched.setdefault(zone.origin, ([], []))
            acc[0].extend(removed)
            acc[1].extend(added)

    def _keys_for(self, name: str, zone: Zone) -> tuple[Key, ...]:
        """``name``'s records as keys, grouped by type in the order they first appear.

        Run for every name at start-up (a few hundred thousand on a large site), so written
        lean: no closure or set per call, no sort of an empty or one-item list."""
        s = self.settings
        source = self.source
        ttl = s.ttl
        out: dict[int, list[Key]] = {}

        if name == zone.origin:
            out[SOA_TYPE] = [(SOA_TYPE, s.ttl, "")]
            _put(out, (NS_TYPE, ttl, s.ns_name))
        if name == self._ns_name and s.ns_address is not None:
            _put(out, (A_TYPE, ttl, str(s.ns_address)))
        records = source.records_at(name)
        if records:
            records = sorted(records, key=_record_id)
            for record in records:
                if not _valid(record):
                    self.bad_records += 1
                    continue
                rttl = ttl if record.ttl is None else record.ttl
                _put(out, (getattr(QTYPE, record.rtype.upper()), rttl, record.value))
        hostname = self._hostname_of(name)
        if hostname is not None:
            hosts = self._hosts_named(hostname)
            for host in hosts:
                if host.ip is not None:
                    _put(out, (A_TYPE, ttl, str(host.ip)))
                if host.ip6 is not None:
                    _put(out, (AAAA_TYPE, ttl, str(host.ip6)))
            leases = source.leases_named(hostname)
            leases6 = source.leases6_named(hostname) if self._v6_leases else ()
            if leases or leases6:
                owner = (
                    self._name_server_record()
                    if name == self._ns_name
                    else name_owner(hosts=hosts, records=records)
                )
                for lease in sorted(leases, key=_lease_ip) if len(leases) > 1 else leases:
                    if lease_publishes(owner, source.host_by_ip(lease.ip)):
                        _put(out, (A_TYPE, ttl, str(lease.ip)))
                for lease6 in sorted(leases6, key=_lease6_ip):
                    if lease_publishes(owner, source.host_by_ip6(lease6.address)):
                        _put(out, (AAAA_TYPE, ttl, str(lease6.address)))
        elif name.endswith(".in-addr.arpa"):
            rev = _ip_of_reverse(name)
            if rev is not None:
                reserved = source.host_by_ip(rev)
                if reserved is not None:
                    _put(out, (PTR_TYPE, ttl, self._host_fqdn(reserved)))
                at = source.lease_by_ip(rev)
                if at is not None and reserved is None:
                    fqdn = self._lease_fqdn(at)
                    if fqdn is not None and lease_publishes(self._owner(fqdn), reserved):
                        _put(out, (PTR_TYPE, ttl, fqdn))
        elif (rev6 := ip_of_reverse6(name)) is not None:
            reserved = source.host_by_ip6(rev6)
            if reserved is not None:
                _put(out, (PTR_TYPE, ttl, self._host_fqdn(reserved)))
            at6 = source.lease6(Lease6Kind.NA, IPv6Network(rev6))
            if at6 is not None and reserved is None:
                fqdn = self._lease6_fqdn(at6)
                if fqdn is not None and lease_publishes(self._owner(fqdn), reserved):
                    _put(out, (PTR_TYPE, ttl, fqdn))
        if len(out) == 1:
            (keys,) = out.values()
            return tuple(keys)
        if CNAME_TYPE in out and len(out) > 1 and name != zone.origin:
            # RFC 1034 §3.6.2: a CNAME owner has no other data.
            out = {CNAME_TYPE: out[CNAME_TYPE]}
        return tuple(k for keys in out.values() for k in keys)


def _put(out: dict[int, list[Key]], key: Key) -> None:
    """Add ``key`` under its type unless it is there already (a type holds a few keys)."""
    keys = out.get(key[0])
    if keys is None:
        out[key[0]] = [key]
    elif key not in keys:
        keys.append(key)


def _valid(record: Record) -> bool:
    """The record's value fits its type (an A in canonical form checked without dnslib)."""
    rtype = record.rtype.upper()
    if rtype == "A" and canonical_ipv4(record.value) is not None:
        return True
    try:
        record_rdata(rtype, record.value)
    except ValueError:
        return False
    return True


def _record_id(record: Record) -> str:
    return record.id


def _lease_ip(lease: Lease) -> IPv4Address:
    return lease.ip


def _lease6_ip(lease: Lease6) -> IPv6Address:
    return lease.address


def _ip_of_reverse(name: str) -> IPv4Address | None:
    octets = name[: -len(".in-addr.arpa")].split(".")
    if len(octets) != 4:
        return None
    value = canonical_ipv4(".".join(reversed(octets)))
    if value is not None:
        return IPv4Address(value)
    values = [decimal(o, max_digits=3) for o in reversed(octets)]
    if any(v is None or v > 255 for v in values):
        return None
    return IPv4Address(bytes(v for v in values if v is not None))
