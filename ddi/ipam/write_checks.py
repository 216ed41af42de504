"""The checks the store runs on what it is asked to write, and how a refusal names the holder.

Rules:
* Pure: no database, no clock. The store calls these inside or before its transaction; what
  needs other rows (collisions with hosts, leases, records) is checked by the store itself.
* Each check raises :class:`~ddi.errors.Invalid` or :class:`~ddi.errors.Conflict` naming the
  field; a Conflict names its holder with the ``describe_*`` functions (``host web1 (…)``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ddi.errors import Conflict, Invalid
from ddi.ipam.models import Host, Lease, Owner, Record, Subnet
from ddi.ipam.models6 import Lease6
from ddi.ipam.owner import ADDRESS_TYPES, write_conflict
from ddi.ipam.validate import (
    host_address_problem,
    parse_circuit_id,
    parse_client_id,
    parse_host_dhcp,
    parse_hostname,
    parse_ipv4,
    parse_mac,
)
from ddi.ipam.validate6 import parse_duid, parse_ipv6

__all__ = [
    "CENTRAL_ACTOR",
    "OBJECT_ID",
    "check_edge_may_change",
    "check_host_name",
    "check_name_server",
    "check_record_name",
    "check_record_placement",
    "check_subnets",
    "describe_host",
    "describe_lease",
    "describe_lease6",
    "describe_record",
    "host_from_image",
    "merge_dhcp",
    "normalise_host",
    "same_client",
    "same_client6",
]

CENTRAL_ACTOR = "central"
"""The actor of changes that come down from central; only it may change central-owned objects."""
OBJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def describe_host(host: Host) -> str:
    """``host web1 (52:54:00:00:00:01, 198.18.0.10)``: how a conflict names a reservation."""
    key = host.mac or host.client_id or host.circuit_id or host.duid
    addresses = ", ".join(str(a) for a in (host.ip, host.ip6) if a is not None)
    return f"host {host.hostname} ({key}, {addresses})"


def describe_lease6(lease: Lease6) -> str:
    until = datetime.fromtimestamp(lease.end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"the active lease of DUID {lease.duid} (until {until})"


def same_client6(lease: Lease6, host: Host) -> bool:
    """Whether ``lease`` belongs to the client ``host`` identifies: by DUID, else by MAC."""
    if host.duid and lease.duid:
        return host.duid == lease.duid
    if host.mac and lease.mac:
        return host.mac == lease.mac
    return False


def describe_lease(lease: Lease) -> str:
    until = datetime.fromtimestamp(lease.end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    client = lease.client_id or lease.mac or lease.circuit_id or "an unknown client"
    return f"the active lease of {client} (until {until})"


def describe_record(record: Record) -> str:
    return f"record {record.name} {record.rtype} {record.value}"


def same_client(lease: Lease, host: Host) -> bool:
    """Whether ``lease`` belongs to the client ``host`` identifies (client-id first, RFC 2131
    §4.2; then MAC; then circuit-id)."""
    if host.client_id and lease.client_id:
        return host.client_id == lease.client_id
    if host.mac and lease.mac:
        return host.mac == lease.mac
    if host.circuit_id and lease.circuit_id:
        return host.circuit_id == lease.circuit_id
    return False


def check_host_name(host: Host, records: Iterable[Record]) -> None:
    """Refuse ``host`` when an address record sits at one of its names (``records``: the
    static records at them, in the order to name the first)."""
    held = write_conflict(host, records=records)
    if held is not None:
        raise Conflict("hostname", host.hostname, _describe(held))


def check_name_server(
    claimant: Host | Record, names: Iterable[str], name_server: str | None
) -> None:
    """Refuse a reservation (or an address record) at the site's name server name: the zone
    gives that name its own A (``dns.ns_address``) and a secondary checks the NS target's
    address against it (RFC 1034 §4.2.1: the glue is the server's, not a client's)."""
    if name_server is None:
        return
    if isinstance(claimant, Record) and claimant.rtype.upper() not in ADDRESS_TYPES:
        return
    if name_server in names:
        field, value = (
            ("hostname", claimant.hostname)
            if isinstance(claimant, Host)
            else ("name", claimant.name)
        )
        raise Conflict(field, value, f"the name server {name_server} (dns.ns_name)")


def check_record_placement(record: Record, domain: str | None) -> None:
    """Refuse a CNAME at the zone apex: the apex holds the SOA and NS, and a CNAME name holds
    no other data (RFC 1034 §3.6.2); a secondary refuses such a zone."""
    if record.rtype.upper() == "CNAME" and domain is not None and record.name == domain:
        raise Invalid(
            "name",
            record.name,
            "a CNAME cannot sit at the zone apex, beside its SOA and NS (RFC 1034 §3.6.2)",
        )


def check_record_name(record: Record, hosts: Iterable[Host]) -> None:
    """Refuse an address ``record`` at a name a reservation owns (``hosts``: the
    reservations whose names include it)."""
    held = write_conflict(record, hosts=hosts)
    if held is not None:
        raise Conflict("name", record.name, _describe(held))


def _describe(holder: Host | Record) -> str:
    return describe_host(holder) if isinstance(holder, Host) else describe_record(holder)


def check_edge_may_change(thing: Host | Record, description: str, actor: str) -> None:
    """Central-owned objects change only through central (the down log), never locally."""
    if thing.owner is Owner.CENTRAL and actor != CENTRAL_ACTOR:
        raise Invalid(
            "owner", thing.owner.value, f"{description} is owned by central; change it there"
        )


def normalise_host(host: Host) -> Host:
    """Validate each field of ``host`` on its own and return it in normalised form."""

    def optional(value: str | None, parse: Callable[[str], str]) -> str | None:
        return None if value is None or value == "" else parse(value)

    host = dataclasses.replace(
        host,
        ip=None if host.ip is None or host.ip == "" else parse_ipv4(host.ip),
        ip6=None if host.ip6 is None or host.ip6 == "" else parse_ipv6(host.ip6),
        duid=optional(host.duid, parse_duid),
        hostname=parse_hostname(host.hostname),
        mac=optional(host.mac, parse_mac),
        client_id=optional(host.client_id, parse_client_id),
        circuit_id=optional(host.circuit_id, parse_circuit_id),
        boot=host.boot or None,
        boot_file=host.boot_file or None,
        boot_script=host.boot_script or None,
        dhcp=parse_host_dhcp(host.dhcp),
        owner=Owner(host.owner),
    )
    if host.ip is None and host.ip6 is None:
        raise Invalid("ip", "", "a reservation needs an IPv4 or an IPv6 address (or both)")
    if all(k is None for k in (host.mac, host.client_id, host.circuit_id, host.duid)):
        raise Invalid("mac", "", "a reservation needs a MAC, a client-id, a circuit-id or a DUID")
    if host.id and not OBJECT_ID.match(host.id):
        raise Invalid("id", host.id, "1 to 64 letters, digits, '-' or '_'")
    if host.version < 1:
        raise Invalid("version", str(host.version), "must be 1 or more")
    return host


def merge_dhcp(old: Host, given: Any) -> dict[str, Any] | None:
    """``update_host``'s ``dhcp`` field: the host's options with the given keys set (a None
    value returns that key to the subnet's); None or ``{}`` alone clears them all."""
    if given is None or given == {}:
        return None
    if not isinstance(given, Mapping):
        raise Invalid("dhcp", str(given), "an object of DHCP options is expected")
    merged = {} if old.dhcp is None else old.dhcp.to_image()
    for name, value in given.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def updated_host(old: Host, fields: Mapping[str, Any]) -> Host:
    """``old`` with ``fields`` applied (``None`` or ``""`` clears one; ``dhcp`` merges) and
    its version moved on, normalised as a new host would be.

    Raises:
        Invalid: the update would leave no address or no hostname, or a value is malformed.
    """
    image = old.to_image()
    for name, value in fields.items():
        if name == "dhcp":
            image["dhcp"] = merge_dhcp(old, value)
            continue
        image[name] = None if value is None or value == "" else str(value)
    if image["ip"] is None and image.get("ip6") is None:
        raise Invalid("ip", "", "a reservation needs an IPv4 or an IPv6 address (or both)")
    if image["hostname"] is None:
        raise Invalid("hostname", "", "a reservation needs a hostname")
    if image["ip"] is not None:
        image["ip"] = str(parse_ipv4(image["ip"]))
    if image.get("ip6") is not None:
        image["ip6"] = str(parse_ipv6(image["ip6"]))
    if image.get("duid") is not None:
        image["duid"] = parse_duid(image["duid"])
    image["version"] = old.version + 1
    return normalise_host(host_from_image(image))


def host_from_image(image: Mapping[str, Any]) -> Host:
    """``Host.from_image`` for an image whose ``dhcp`` part is not yet validated."""
    host = Host.from_image({**image, "dhcp": None})
    return dataclasses.replace(host, dhcp=parse_host_dhcp(image.get("dhcp")))


def check_subnets(subnets: Iterable[Subnet]) -> None:
    seen: dict[str, Subnet] = {}
    for subnet in subnets:
        if subnet.name in seen:
            raise Invalid("subnet", subnet.name, "the name is used twice")
        for other in seen.values():
            if subnet.cidr.overlaps(other.cidr):
                raise Invalid(
                    "subnet",
                    subnet.name,
                    f"{subnet.cidr} overlaps subnet {other.name} ({other.cidr})",
                )
        seen[subnet.name] = subnet
        if subnet.gateway is not None and subnet.gateway not in subnet.cidr:
            raise Invalid(
                "subnet", subnet.name, f"gateway {subnet.gateway} is outside {subnet.cidr}"
            )
        for pool in subnet.pools:
            if pool.start > pool.end:
                raise Invalid("subnet", subnet.name, f"pool {pool.start}-{pool.end} is reversed")
            for end in (pool.start, pool.end):
                problem = host_address_problem(end, subnet)
                if problem is not None:
                    raise Invalid(
                        "subnet", subnet.name, f"pool {pool.start}-{pool.end}: {end} is {problem}"
                    )
