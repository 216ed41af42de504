"""Zones derived from IPAM: the site domain and the reverse zones of its subnets.

Theory of operation: :class:`Zones` keeps the IPAM objects that produce DNS data (reservations,
bound leases, static records, subnets) and the RRsets they produce, grouped by zone. A committed
``Change`` updates the source object, marks the owner names it touches "dirty", and only those
names are recomputed and diffed; each zone whose content moved gets one new serial and one
journal entry (the IXFR delta) per applied batch.

Rules:
* Zones: the site domain, plus one ``in-addr.arpa`` zone per octet boundary covering a subnet
  (a /24 or longer prefix: its /24; a /16: one zone; a /23: two /24 zones; RFC 2317 classless
  delegation is not used).
* A reservation owns ``<hostname>.<domain>``: A at that name and PTR at its address.
* A bound lease with a hostname gets A and PTR only if the name is not owned by a reservation
  or a static record, and its address is not a reservation's; otherwise it is a *collision*,
  reported to the caller (which counts and logs it) and gets no record.
* A static CNAME excludes every other type at its name (RFC 1034 §3.6.2).
* The SOA serial of a zone increases on every change to that zone: it becomes
  ``max(serial + 1, seq)`` of the last change applied, so it keeps growing across restarts when
  the initial serial is the store's last change sequence number.
* Pure: no I/O, no clock; records are dnslib values.

Memory: a name's records are kept as compact keys ``(type, TTL, rdata text)`` (the SOA as a
marker standing for the zone's current SOA); dnslib RRs are built when a node is read (answers
for hot names are cached as wire bytes by the caller), and for the journal's deltas.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Protocol

from dnslib import AAAA, CNAME, MX, NS, PTR, QTYPE, RD, RR, SOA, SRV, TXT, A, DNSLabel

from ddi.dns.wire import QType
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
from ddi.ipam.multimap import MultiMap

SOA_TYPE = int(QType.SOA)
NS_TYPE = int(QType.NS)
CNAME_TYPE = int(QType.CNAME)

Key = tuple[int, int, str]
"""A record's identity and content: type, TTL and rdata in presentation form."""


class ZoneSource(Protocol):
    """The part of ``IpamView`` the zone builder reads."""

    def subnets(self) -> Sequence[Subnet]: ...
    def hosts(self) -> Iterable[Host]: ...
    def leases(self) -> Iterable[Lease]: ...
    def records(self) -> Iterable[Record]: ...


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
class Delta:
    """One IXFR step (RFC 1995 §4): the zone moved from ``old_serial`` to ``new_serial`` by
    removing then adding these records (SOA excluded)."""

    old_serial: int
    new_serial: int
    removed: tuple[Any, ...]
    added: tuple[Any, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    changed: frozenset[str]
    """Origins of the zones whose serial moved."""
    collisions: tuple[str, ...] = ()
    """Lease names refused because a reservation or static record owns them."""


def absolute(name: str) -> str:
    """``Host.Site.Example.`` → ``host.site.example`` (the key form used throughout)."""
    return name.rstrip(".").lower()


def reverse_name(ip: IPv4Address) -> str:
    return ".".join(reversed(str(ip).split("."))) + ".in-addr.arpa"


def reverse_networks(cidr: IPv4Network) -> list[IPv4Network]:
    """The octet-boundary networks whose reverse zones cover ``cidr``."""
    boundary = max(8, min(24, -(-cidr.prefixlen // 8) * 8))
    if cidr.prefixlen >= boundary:
        return [cidr.supernet(new_prefix=boundary)]
    return list(cidr.subnets(new_prefix=boundary))


def reverse_origin(net: IPv4Network) -> str:
    octets = str(net.network_address).split(".")[: net.prefixlen // 8]
    return ".".join(reversed(octets)) + ".in-addr.arpa"


def record_rdata(rtype: str, value: str) -> RD:
    """Presentation-form rdata of a static record → dnslib rdata. Names in ``value`` are absolute.

    Raises:
        ValueError: the value does not fit the type.
    """
    parts = value.split()
    try:
        match rtype:
            case "A":
                return A(str(IPv4Address(value.strip())))
            case "AAAA":
                return AAAA(value.strip())
            case "CNAME":
                return CNAME(label(absolute(value.strip())))
            case "PTR":
                return PTR(label(absolute(value.strip())))
            case "NS":
                return NS(label(absolute(value.strip())))
            case "MX":
                pref, host = parts
                return MX(label(absolute(host)), int(pref))
            case "SRV":
                prio, weight, port, target = parts
                return SRV(int(prio), int(weight), int(port), label(absolute(target)))
            case "TXT":
                return TXT(_txt_strings(value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{rtype} {value!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - dnslib raises its own DNSError on bad rdata
        raise ValueError(f"{rtype} {value!r}: {exc}") from None
    raise ValueError(f"unsupported record type {rtype}")


def _txt_strings(value: str) -> list[bytes]:
    """``"a b" "c"`` → [b"a b", b"c"]; unquoted text is one string (split at 255 bytes)."""
    text = value.strip()
    if not text.startswith('"'):
        raw = text.encode()
        return [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    out: list[bytes] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        if text[i] != '"':
            raise ValueError("text outside quotes")
        j = i + 1
        buf = []
        while j < len(text) and text[j] != '"':
            if text[j] == "\\" and j + 1 < len(text):
                j += 1
            buf.append(text[j])
            j += 1
        if j >= len(text):
            raise ValueError("unclosed quote")
        chunk = "".join(buf).encode()
        if len(chunk) > 255:
            raise ValueError("a TXT string is longer than 255 bytes")
        out.append(chunk)
        i = j + 1
    return out


def make_rr(owner: DNSLabel, key: Key) -> Any:
    """The dnslib RR of ``key`` (valid by construction: built from rdata that parsed)."""
    rtype, ttl, text = key
    return RR(owner, rtype, ttl=ttl, rdata=record_rdata(QTYPE[rtype], text))


def label(name: str) -> DNSLabel:
    """A dnslib label for an absolute name (already validated: letters, digits, '-', '_').

    Built from a tuple of labels: dnslib's parsing of a ``str`` name compares bytes with str,
    which ``python -bb`` turns into an error."""
    return DNSLabel(tuple(part.encode() for part in name.split(".") if part))


@dataclass(slots=True)
class Zone:
    """One zone's current content. Names are keys in :func:`absolute` form."""

    origin: str
    serial: int
    soa: Any
    """The SOA RR (rebuilt on every serial change)."""
    data: dict[str, str | Key | tuple[Key, ...]] = field(default_factory=dict)
    """Each owner name's records as keys, grouped by type; an SOA key stands for ``soa``.
    Nearly every name has one record: one key is held bare, and one record of ``plain_type``
    with ``plain_ttl`` (a host's A or PTR) as its rdata text alone. See :meth:`keys`."""
    plain_type: int = 1
    plain_ttl: int = 300
    children: dict[str, int] = field(default_factory=dict)
    """Count of owner names strictly below each name: a name with children exists (RFC 8020
    empty non-terminal) even without RRsets."""
    journal: deque[Delta] = field(default_factory=deque)
    delegations: set[str] = field(default_factory=set)
    """Non-apex names with NS RRsets: zone cuts."""

    def contains(self, name: str) -> bool:
        return name == self.origin or name.endswith("." + self.origin)

    @property
    def rrsets(self) -> Mapping[str, dict[int, list[Any]]]:
        """Every node, as :meth:`node` builds it (read-only)."""
        return _Nodes(self)

    def keys(self, name: str) -> tuple[Key, ...]:
        """``name``'s record keys (empty when it has none)."""
        held = self.data.get(name)
        if held is None:
            return ()
        if isinstance(held, str):
            return ((self.plain_type, self.plain_ttl, held),)
        return (held,) if isinstance(held[0], int) else held

    def node(self, name: str) -> dict[int, list[Any]] | None:
        """The RRsets at ``name`` (dnslib RRs built on each call), or None."""
        keys = self.keys(name)
        if not keys:
            return None
        owner = label(name)
        out: dict[int, list[Any]] = {}
        for key in keys:
            rr = self.soa if key[0] == SOA_TYPE else make_rr(owner, key)
            out.setdefault(key[0], []).append(rr)
        return out

    def exists(self, name: str) -> bool:
        return name in self.data or name in self.children

    def cut_above(self, name: str) -> str | None:
        """The closest zone cut at or above ``name`` (below the apex), if any."""
        if not self.delegations:
            return None
        while name != self.origin and name:
            if name in self.delegations:
                return name
            name = name.partition(".")[2]
        return None

    def all_records(self) -> Iterator[Any]:
        """Every RR except the SOA, in a stable order (for AXFR)."""
        for name in sorted(self.data):
            for rtype, rrs in sorted(self.node(name).items()):  # type: ignore[union-attr]
                if rtype == SOA_TYPE and name == self.origin:
                    continue
                yield from rrs

    def deltas_since(self, serial: int) -> list[Delta] | None:
        """The journal steps from ``serial`` to now, or None when it does not reach back."""
        steps = list(self.journal)
        for i, d in enumerate(steps):
            if d.old_serial == serial:
                return steps[i:]
        return None

    def _set(self, name: str, keys: tuple[Key, ...]) -> None:
        had = name in self.data
        if keys:
            self.data[name] = self._compact(keys)
            if not had:
                self._count_ancestors(name, 1)
        elif had:
            del self.data[name]
            self._count_ancestors(name, -1)
        if name != self.origin and any(k[0] == NS_TYPE for k in keys):
            self.delegations.add(name)
        else:
            self.delegations.discard(name)

    def _compact(self, keys: tuple[Key, ...]) -> str | Key | tuple[Key, ...]:
        if len(keys) != 1:
            return keys
        key = keys[0]
        if key[0] == self.plain_type and key[1] == self.plain_ttl:
            return key[2]
        return key

    def _count_ancestors(self, name: str, step: int) -> None:
        while name != self.origin:
            name = name.partition(".")[2]
            count = self.children.get(name, 0) + step
            if count:
                self.children[name] = count
            else:
                self.children.pop(name, None)


class _Nodes(Mapping[str, dict[int, list[Any]]]):
    """A zone's nodes as a read-only mapping of name → RRsets."""

    __slots__ = ("_zone",)

    def __init__(self, zone: Zone) -> None:
        self._zone = zone

    def __getitem__(self, name: str) -> dict[int, list[Any]]:
        node = self._zone.node(name)
        if node is None:
            raise KeyError(name)
        return node

    def __iter__(self) -> Iterator[str]:
        return iter(self._zone.data)

    def __len__(self) -> int:
        return len(self._zone.data)


Touched = dict[str, tuple[list[tuple[str, Key]], list[tuple[str, Key]]]]


class Zones:
    """Every local zone, kept in step with IPAM by :meth:`apply`."""

    def __init__(self, settings: ZoneSettings, source: ZoneSource, *, serial: int) -> None:
        self.settings = settings
        self._serial_floor = max(1, serial)
        self._hosts: dict[str, Host] = {}
        self._leases: dict[IPv4Address, Lease] = {}
        """Bound leases with a hostname: the only ones that make DNS data."""
        self._records: dict[str, Record] = {}
        self._subnets: dict[str, Subnet] = {}
        # Indexes of the sources by name / address.
        self._host_names: MultiMap[str, str] = MultiMap()
        self._host_ips: MultiMap[IPv4Address, str] = MultiMap()
        self._lease_names: MultiMap[str, IPv4Address] = MultiMap()
        self._record_names: MultiMap[str, str] = MultiMap()
        self.zones: dict[str, Zone] = {}
        self.collisions = 0
        self.bad_records = 0
        for subnet in source.subnets():
            self._subnets[subnet.name] = subnet
        for host in source.hosts():
            self._add_host(host)
        for lease in source.leases():
            self._add_lease(lease)
        for record in source.records():
            self._add_record(record)
        self._add_zone(settings.domain, self._serial_floor)
        for origin in sorted(self._reverse_origins()):
            self._add_zone(origin, self._serial_floor)
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

    def owns(self, name: str) -> bool:
        """True when a reservation or a static record owns ``name`` (absolute form)."""
        return name in self._host_names or name in self._record_names

    def statistics(self) -> dict[str, Any]:
        return {
            "zones": {origin: z.serial for origin, z in sorted(self.zones.items())},
            "names": sum(len(z.data) for z in self.zones.values()),
            "collisions": self.collisions,
            "bad_records": self.bad_records,
        }

    # --- changes -------------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> ApplyResult:
        """Update the zones from committed changes (one store transaction).

        Returns:
            The zones whose content (and so serial) changed, and the lease names refused.
        """
        dirty: set[str] = set()
        collisions: list[str] = []
        subnets_moved = False
        last_seq = 0
        for change in changes:
            last_seq = max(last_seq, change.seq)
            match change.kind:
                case Kind.HOST:
                    old_host = self._hosts.get(change.object_id)
                    if old_host is not None:
                        dirty |= self._host_names_of(old_host)
                        self._drop_host(old_host)
                    if change.op is Op.UPSERT:
                        host = Host.from_image(change.image)
                        self._add_host(host)
                        dirty |= self._host_names_of(host)
                case Kind.LEASE:
                    ip = IPv4Address(change.object_id)
                    old_lease = self._leases.get(ip)
                    if old_lease is not None:
                        dirty |= self._lease_names_of(old_lease)
                        self._drop_lease(old_lease)
                    if change.op is Op.UPSERT:
                        lease = Lease.from_image(change.image)
                        self._add_lease(lease)
                        dirty |= self._lease_names_of(lease)
                        name = self._lease_fqdn(lease)
                        if name is not None and self._lease_refused(lease, name):
                            collisions.append(name)
                case Kind.RECORD:
                    old_record = self._records.get(change.object_id)
                    if old_record is not None:
                        dirty.add(old_record.name)
                        self._drop_record(old_record)
                    if change.op is Op.UPSERT:
                        record = _normalised(Record.from_image(change.image))
                        self._add_record(record)
                        dirty.add(record.name)
                case Kind.SUBNET:
                    subnets_moved = True
                    self._subnets.pop(change.object_id, None)
                    if change.op is Op.UPSERT:
                        subnet = Subnet.from_image(change.image)
                        self._subnets[subnet.name] = subnet
        # A forward name's ownership decides its leases' PTRs too.
        for name in list(dirty):
            for ip in self._lease_names.get(name):
                dirty.add(reverse_name(ip))
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
        return ApplyResult(changed=frozenset(changed), collisions=tuple(collisions))

    # --- sources -------------------------------------------------------------------------------

    def _host_fqdn(self, host: Host) -> str:
        return sys.intern(f"{absolute(host.hostname)}.{self.settings.domain}")

    def _lease_fqdn(self, lease: Lease) -> str | None:
        if lease.state is not LeaseState.BOUND or not lease.hostname:
            return None
        return sys.intern(f"{absolute(lease.hostname)}.{self.settings.domain}")

    def _host_names_of(self, host: Host) -> set[str]:
        return {self._host_fqdn(host), reverse_name(host.ip)}

    def _lease_names_of(self, lease: Lease) -> set[str]:
        names = {reverse_name(lease.ip)}
        fqdn = self._lease_fqdn(lease)
        if fqdn is not None:
            names.add(fqdn)
        return names

    def _lease_refused(self, lease: Lease, name: str) -> bool:
        """True when the lease's name collides with a name it does not own."""
        holders = self._host_names.get(name)
        if any(self._hosts[h].ip == lease.ip for h in holders):
            return False  # the reservation's own client: its record already covers it
        return bool(holders) or name in self._record_names or lease.ip in self._host_ips

    def _add_host(self, host: Host) -> None:
        self._hosts[host.id] = host
        self._host_names.add(self._host_fqdn(host), host.id)
        self._host_ips.add(host.ip, host.id)

    def _drop_host(self, host: Host) -> None:
        del self._hosts[host.id]
        self._host_names.discard(self._host_fqdn(host), host.id)
        self._host_ips.discard(host.ip, host.id)

    def _add_lease(self, lease: Lease) -> None:
        fqdn = self._lease_fqdn(lease)
        if fqdn is not None:
            self._leases[lease.ip] = lease
            self._lease_names.add(fqdn, lease.ip)

    def _drop_lease(self, lease: Lease) -> None:
        fqdn = self._lease_fqdn(lease)
        if fqdn is not None:
            del self._leases[lease.ip]
            self._lease_names.discard(fqdn, lease.ip)

    def _add_record(self, record: Record) -> None:
        record = _normalised(record)
        self._records[record.id] = record
        self._record_names.add(record.name, record.id)

    def _drop_record(self, record: Record) -> None:
        record = self._records.pop(record.id)
        self._record_names.discard(record.name, record.id)

    # --- zone set ------------------------------------------------------------------------------

    _fresh: set[str]

    def _reverse_origins(self) -> set[str]:
        return {
            reverse_origin(net)
            for subnet in self._subnets.values()
            for net in reverse_networks(subnet.cidr)
        }

    def _add_zone(self, origin: str, serial: int) -> Zone:
        plain = QTYPE.PTR if origin.endswith(".in-addr.arpa") else QTYPE.A
        zone = Zone(
            origin=origin,
            serial=serial,
            soa=self._soa(origin, serial),
            plain_type=plain,
            plain_ttl=self.settings.ttl,
        )
        zone.journal = deque(maxlen=self.settings.journal_size)
        self.zones[origin] = zone
        return zone

    def _move_reverse_zones(self, seq: int, touched: Touched) -> None:
        wanted = self._reverse_origins()
        current = {o for o in self.zones if o != self.settings.domain}
        for origin in current - wanted:
            del self.zones[origin]
        for origin in sorted(wanted - current):
            self._add_zone(origin, max(self._serial_floor, seq))
            self._fresh.add(origin)
            touched[origin] = ([], [])
            for name in self._names_under(origin):
                self._recompute(name, touched)

    def _names_under(self, origin: str) -> set[str]:
        names = {origin}
        names |= {reverse_name(ip) for ip in self._host_ips}
        names |= {reverse_name(ip) for ip in self._leases}
        names |= set(self._record_names)
        suffix = "." + origin
        return {n for n in names if n == origin or n.endswith(suffix)}

    def _recompute_all(self) -> None:
        self._fresh = set()
        names = {self.settings.domain, absolute(self.settings.ns_name)}
        names |= set(self._host_names) | set(self._lease_names) | set(self._record_names)
        names |= {reverse_name(ip) for ip in self._host_ips}
        names |= {reverse_name(ip) for ip in self._leases}
        names |= set(self.zones)
        for name in names:
            self._recompute(name, None)
        for origin, zone in self.zones.items():
            if not zone.keys(origin):
                raise AssertionError(f"zone {origin} has no apex")
        for name in self._lease_names:
            for ip in self._lease_names.get(name):
                if self._lease_refused(self._leases[ip], name):
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
        old = zone.keys(name)
        zone._set(name, new)
        if touched is None or old == new:
            return
        removed = [(name, k) for k in old if k[0] != SOA_TYPE and k not in new]
        added = [(name, k) for k in new if k[0] != SOA_TYPE and k not in old]
        if removed or added:
            acc = touched.setdefault(zone.origin, ([], []))
            acc[0].extend(removed)
            acc[1].extend(added)

    def _keys_for(self, name: str, zone: Zone) -> tuple[Key, ...]:
        """``name``'s records as keys, grouped by type in the order they first appear."""
        s = self.settings
        ttl = s.ttl
        out: dict[int, list[Key]] = {}
        seen: set[Key] = set()

        def put(rtype: int, text: str, rttl: int = ttl) -> None:
            key = (rtype, rttl, text)
            if key in seen:
                return
            seen.add(key)
            out.setdefault(rtype, []).append(key)

        if name == zone.origin:
            out[SOA_TYPE] = [(SOA_TYPE, s.ttl, "")]
            put(NS_TYPE, s.ns_name)
        if name == absolute(s.ns_name) and s.ns_address is not None:
            put(QTYPE.A, str(s.ns_address))
        for rid in sorted(self._record_names.get(name)):
            record = self._records[rid]
            try:
                record_rdata(record.rtype, record.value)
            except ValueError:
                self.bad_records += 1
                continue
            rttl = ttl if record.ttl is None else record.ttl
            put(getattr(QTYPE, record.rtype), record.value, rttl)
        for hid in sorted(self._host_names.get(name)):
            put(QTYPE.A, str(self._hosts[hid].ip))
        if not self.owns(name):
            for lip in sorted(self._lease_names.get(name)):
                if lip not in self._host_ips:
                    put(QTYPE.A, str(lip))
        if name.endswith(".in-addr.arpa"):
            rev = _ip_of_reverse(name)
            if rev is not None:
                for hid in sorted(self._host_ips.get(rev)):
                    put(QTYPE.PTR, self._host_fqdn(self._hosts[hid]))
                lease = self._leases.get(rev)
                if lease is not None and rev not in self._host_ips:
                    fqdn = self._lease_fqdn(lease)
                    if fqdn is not None and not self.owns(fqdn):
                        put(QTYPE.PTR, fqdn)
        if CNAME_TYPE in out and len(out) > 1 and name != zone.origin:
            # RFC 1034 §3.6.2: a CNAME owner has no other data.
            out = {CNAME_TYPE: out[CNAME_TYPE]}
        return tuple(k for keys in out.values() for k in keys)


def _normalised(record: Record) -> Record:
    name = absolute(record.name)
    rtype = record.rtype.upper()
    if name == record.name and rtype == record.rtype:
        return record
    return Record(
        id=record.id,
        name=name,
        rtype=rtype,
        value=record.value,
        ttl=record.ttl,
        owner=record.owner,
        version=record.version,
    )


def _ip_of_reverse(name: str) -> IPv4Address | None:
    octets = name[: -len(".in-addr.arpa")].split(".")
    if len(octets) != 4 or not all(o.isdigit() and len(o) <= 3 for o in octets):
        return None
    values = [int(o) for o in reversed(octets)]
    if max(values) > 255:
        return None
    return IPv4Address(bytes(values))
