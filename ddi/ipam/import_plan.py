"""What an import would do to the store: each item added, changed, left as it is, skipped or
refused, and why. The store runs :func:`plan_import` inside the import's transaction, over
every row it holds, and writes the plan only when nothing is refused (one transaction:
everything or nothing).

Rules (the same as one ``reserve add`` / ``dns add`` / DHCP lease each, checked in memory so
that 50,000 items cost one read of each table, not one query each):
* A reservation matches an existing one by client-id, then MAC: it then changes that host
  (its address and name; its boot settings stay). Otherwise it is new. Any other host holding
  its address, MAC, client-id or name refuses it, as does an active lease of another client
  on its address or an address record (A, AAAA, CNAME) at its name.
* An A or AAAA record at a reservation's name with the reservation's address *is* that
  reservation's name (a hosts file beside a dhcp-host line): skipped, not refused. At another
  address it is refused. RFC 1034 §3.6.2: a CNAME shares its name with nothing.
* A lease keeps its address and its end, so the client renews it at ddi. A lease that has
  ended is skipped; one on an address reserved for another client, held by another client's
  active lease, or outside the subnet's pools (unless reserved for its client: ddi would not
  renew it) is refused.
* Pure: the store passes the rows, the clock (``now``) and the id maker (``new_id``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Address
from typing import Any

from ddi.errors import Invalid
from ddi.ipam.models import Host, HostDhcpOptions, Lease, LeaseState, Record, Subnet
from ddi.ipam.owner import ADDRESS_TYPES
from ddi.ipam.validate import (
    check_host_address,
    host_names,
    parse_client_id,
    parse_dns_name,
    parse_ipv4,
    parse_mac,
    parse_record_value,
    parse_rtype,
    parse_ttl,
    sanitize_hostname,
    subnet_for,
)
from ddi.ipam.write_checks import (
    check_edge_may_change,
    describe_host,
    describe_lease,
    describe_record,
    normalise_host,
    same_client,
)
from ddi.migrate.items import HostItem, LeaseItem, RecordItem

__all__ = ["ImportPlan", "Outcome", "absolute_name", "plan_import"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One item's fate: ``kind`` host, lease or record; ``key`` what it is (an address, a
    name); ``what`` a summary, or why it was skipped or refused."""

    source: str
    kind: str
    key: str
    what: str

    def to_image(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "key": self.key, "what": self.what}


@dataclass(slots=True, kw_only=True)
class ImportPlan:
    added: list[Outcome] = field(default_factory=list)
    changed: list[Outcome] = field(default_factory=list)
    unchanged: list[Outcome] = field(default_factory=list)
    skipped: list[Outcome] = field(default_factory=list)
    refused: list[Outcome] = field(default_factory=list)
    new_hosts: list[Host] = field(default_factory=list)
    changed_hosts: list[Host] = field(default_factory=list)
    new_records: list[Record] = field(default_factory=list)
    leases: list[Lease] = field(default_factory=list)

    def to_image(self) -> dict[str, Any]:
        return {
            name: [o.to_image() for o in getattr(self, name)]
            for name in ("added", "changed", "unchanged", "skipped", "refused")
        }


def absolute_name(name: str, domain: str | None) -> str:
    """An item's record name as an absolute one: a trailing dot is absolute; ``@`` and a name
    without a dot are relative to the site ``domain``."""
    name = name.strip()
    if name.endswith(".") or ("." in name and name != "@"):
        return name
    if not domain:
        raise Invalid("name", name, "relative, and the site has no domain")
    return domain if name == "@" else f"{name}.{domain}"


def _host_text(host: Host) -> str:
    key = host.mac or host.client_id or host.circuit_id
    return f"{host.hostname} {host.ip} {key}"


def _until(end: float) -> str:
    return datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _State:
    """The store's objects as the import goes, keyed the ways the checks look them up."""

    def __init__(
        self,
        hosts: Iterable[Host],
        leases: Iterable[Lease],
        records: Iterable[Record],
        subnets: Sequence[Subnet],
        domain: str | None,
        now: float,
    ) -> None:
        self.subnets = subnets
        self.now = now
        self.domain = domain
        self.by_field: dict[str, dict[object, Host]] = {
            name: {} for name in ("ip", "mac", "client_id", "circuit_id", "hostname")
        }
        self.by_name: dict[str, Host] = {}
        self.source: dict[str, str] = {}
        """Host id -> where the import gave it (for "twice in this import")."""
        for host in hosts:
            self.put(host)
        self.leases = {lease.ip: lease for lease in leases}
        self.records: dict[str, list[Record]] = {}
        for record in records:
            self.records.setdefault(record.name, []).append(record)
        self.imported_leases: dict[IPv4Address, str] = {}
        """Address -> where the import gave its lease."""

    def host_subnet(self, ip: IPv4Address) -> Subnet:
        """``check_host_address(ip, subnets)``, with the common case (an address inside a
        subnet, neither its network nor its broadcast address) decided without netaddr."""
        best = None
        for subnet in self.subnets:
            if ip in subnet.cidr and (best is None or subnet.cidr.prefixlen > best.cidr.prefixlen):
                best = subnet
        if best is not None and (
            best.cidr.prefixlen >= 31
            or ip not in (best.cidr.network_address, best.cidr.broadcast_address)
        ):
            return best
        return check_host_address(ip, self.subnets)  # raises Invalid with the reason

    def names(self, host: Host) -> set[str]:
        return host_names(host.hostname, host.ip, self.subnets, self.domain)

    def put(self, host: Host, names: set[str] | None = None) -> None:
        for name, index in self.by_field.items():
            value = getattr(host, name)
            if value is not None:
                index[value] = host
        for name in self.names(host) if names is None else names:
            self.by_name[name] = host

    def drop(self, host: Host) -> None:
        for name, index in self.by_field.items():
            value = getattr(host, name)
            if value is not None and index.get(value) is host:
                del index[value]
        for name in self.names(host):
            if self.by_name.get(name) is host:
                del self.by_name[name]

    def holder(self, host: Host) -> str | None:
        """Why ``host`` cannot be written beside the others, or None."""
        for name, index in self.by_field.items():
            value = getattr(host, name)
            other = index.get(value) if value is not None else None
            if other is not None and other.id != host.id:
                where = self.source.get(other.id)
                also = f" (given at {where})" if where else ""
                return f"{name} {value} is held by {describe_host(other)}{also}"
        lease = self.leases.get(host.ip) if host.ip is not None else None
        if lease is not None and lease.active(self.now) and not same_client(lease, host):
            return f"{host.ip} is {describe_lease(lease)}"
        return None


def plan_import(
    *,
    hosts: Sequence[HostItem],
    leases: Sequence[LeaseItem],
    records: Sequence[RecordItem],
    stored_hosts: Iterable[Host],
    stored_leases: Iterable[Lease],
    stored_records: Iterable[Record],
    subnets: Sequence[Subnet],
    domain: str | None,
    now: float,
    actor: str,
    new_id: Callable[[], str],
) -> ImportPlan:
    """The plan for importing ``hosts``, ``leases`` and ``records`` into the stored objects
    (see the module docstring for the rules)."""
    plan = ImportPlan()
    state = _State(stored_hosts, stored_leases, stored_records, subnets, domain, now)
    for item in hosts:
        _plan_host(item, state, plan, actor, new_id)
    for record_item in records:
        _plan_record(record_item, state, plan, new_id)
    for lease_item in leases:
        _plan_lease(lease_item, state, plan, now)
    return plan


def _plan_host(
    item: HostItem, state: _State, plan: ImportPlan, actor: str, new_id: Callable[[], str]
) -> None:
    def refuse(why: str) -> None:
        plan.refused.append(Outcome(source=item.source, kind="host", key=item.ip, what=why))

    try:
        dhcp = None if item.lease_time is None else HostDhcpOptions(lease_time=item.lease_time)
        # A new id now (unused when the host turns out to be a known one): one copy less.
        host = normalise_host(
            Host(id=new_id(), ip=parse_ipv4(item.ip), hostname=item.hostname, mac=item.mac,
                 client_id=item.client_id, dhcp=dhcp)
        )  # fmt: skip
        assert host.ip is not None  # imports are IPv4 reservations
        subnet = state.host_subnet(host.ip)
    except (Invalid, ValueError) as exc:
        refuse(str(exc))
        return
    if subnet.gateway == host.ip:
        refuse(f"{host.ip} is the gateway of subnet {subnet.name}")
        return
    match = None
    if host.client_id is not None:
        match = state.by_field["client_id"].get(host.client_id)
    if match is None and host.mac is not None:
        match = state.by_field["mac"].get(host.mac)
    if match is not None and match.id in state.source:
        refuse(f"the same client as {state.source[match.id]}")
        return
    if match is not None:
        try:
            check_edge_may_change(match, describe_host(match), actor)
        except Invalid as exc:
            refuse(str(exc))
            return
        host = dataclasses.replace(
            match, ip=host.ip, hostname=host.hostname, mac=host.mac or match.mac,
            client_id=host.client_id or match.client_id,
            dhcp=host.dhcp if host.dhcp is not None else match.dhcp, version=match.version + 1,
        )  # fmt: skip
        if dataclasses.replace(host, version=match.version) == match:
            plan.unchanged.append(
                Outcome(source=item.source, kind="host", key=str(host.ip), what=_host_text(host))
            )
            state.source[match.id] = item.source
            return
        state.drop(match)
    names = state.names(host)
    problem = state.holder(host) or _name_problem(names, state)
    if problem is not None:
        if match is not None:
            state.put(match)
        refuse(problem)
        return
    state.put(host, names)
    state.source[host.id] = item.source
    if match is None:
        plan.new_hosts.append(host)
        plan.added.append(
            Outcome(source=item.source, kind="host", key=str(host.ip), what=_host_text(host))
        )
    else:
        plan.changed_hosts.append(host)
        plan.changed.append(
            Outcome(source=item.source, kind="host", key=str(host.ip),
                    what=f"{_host_text(match)} -> {_host_text(host)}")
        )  # fmt: skip


def _name_problem(names: set[str], state: _State) -> str | None:
    for name in sorted(names):
        for record in state.records.get(name, ()):
            if record.rtype in ADDRESS_TYPES:
                return f"the name {name} has {describe_record(record)}"
    return None


def _plan_record(
    item: RecordItem, state: _State, plan: ImportPlan, new_id: Callable[[], str]
) -> None:
    key = f"{item.name} {item.rtype}"

    def outcome(what: str) -> Outcome:
        return Outcome(source=item.source, kind="record", key=key, what=what)

    try:
        rtype = parse_rtype(item.rtype)
        name = parse_dns_name(absolute_name(item.name, state.domain))
        record = Record(id="", name=name, rtype=rtype, value=parse_record_value(rtype, item.value),
                        ttl=parse_ttl(item.ttl))  # fmt: skip
    except Invalid as exc:
        plan.refused.append(outcome(str(exc)))
        return
    key = f"{name} {rtype} {record.value}"
    host = state.by_name.get(name)
    if host is not None and rtype in ADDRESS_TYPES:
        if rtype == "A" and record.value == str(host.ip):
            plan.skipped.append(outcome(f"the name of {describe_host(host)}"))
        else:
            plan.refused.append(outcome(f"{name} is the name of {describe_host(host)}"))
        return
    at_name = state.records.get(name, [])
    for other in at_name:
        if (other.rtype, other.value) == (rtype, record.value):
            plan.unchanged.append(outcome("already there"))
            return
    for other in at_name:
        if rtype == "CNAME" or other.rtype == "CNAME":
            why = f"a CNAME shares its name with nothing: {describe_record(other)}"
            plan.refused.append(outcome(why))
            return
    record = dataclasses.replace(record, id=new_id())
    state.records.setdefault(name, []).append(record)
    plan.new_records.append(record)
    plan.added.append(outcome(f"ttl {record.ttl}" if record.ttl is not None else "added"))


def _plan_lease(item: LeaseItem, state: _State, plan: ImportPlan, now: float) -> None:
    def outcome(what: str) -> Outcome:
        return Outcome(source=item.source, kind="lease", key=item.ip, what=what)

    try:
        ip = parse_ipv4(item.ip)
        mac = None if item.mac is None else parse_mac(item.mac)
        client_id = None if item.client_id is None else parse_client_id(item.client_id)
    except Invalid as exc:
        plan.refused.append(outcome(str(exc)))
        return
    if mac is None and client_id is None:
        plan.refused.append(outcome("no MAC and no client-id"))
        return
    if not (0 <= item.end < 2**40 and 0 <= item.start < 2**40):
        plan.refused.append(outcome("start or end out of range"))
        return
    if item.end <= now:
        plan.skipped.append(outcome(f"ended {_until(item.end)}"))
        return
    subnet = subnet_for(ip, state.subnets)
    if subnet is None:
        plan.refused.append(outcome("outside every subnet the site serves"))
        return
    start = item.start if 0 < item.start <= item.end else min(now, item.end)
    hostname = None if item.hostname is None else sanitize_hostname(item.hostname)
    lease = Lease(
        ip=ip,
        mac=mac,
        client_id=client_id,
        hostname=hostname,
        state=LeaseState.BOUND,
        start=start,
        end=item.end,
        subnet=subnet.name,
    )
    if ip in state.imported_leases:
        plan.refused.append(outcome(f"a lease for {ip} is also at {state.imported_leases[ip]}"))
        return
    reserved = state.by_field["ip"].get(ip)
    if reserved is not None and not same_client(lease, reserved):
        plan.refused.append(outcome(f"reserved for {describe_host(reserved)}"))
        return
    if reserved is None and not any(ip in pool for pool in subnet.pools):
        # The engine renews a dynamic lease only inside a pool (it would NAK the client).
        why = f"outside the pools of subnet {subnet.name}: widen a pool or reserve it"
        plan.refused.append(outcome(why))
        return
    old = state.leases.get(ip)
    if old is not None and old.active(now) and not _same_lease_client(old, lease):
        plan.refused.append(outcome(f"{ip} is {describe_lease(old)}"))
        return
    client = client_id or mac
    what = f"{client} until {_until(item.end)}"
    if old is not None and dataclasses.replace(old, start=start) == lease:
        plan.unchanged.append(outcome(what))
        return
    state.leases[ip] = lease
    state.imported_leases[ip] = item.source
    plan.leases.append(lease)
    (plan.changed if old is not None else plan.added).append(outcome(what))


def _same_lease_client(a: Lease, b: Lease) -> bool:
    if a.client_id and b.client_id:
        return a.client_id == b.client_id
    return a.mac is not None and a.mac == b.mac
