"""The store's writes of reservations, each run inside one
:meth:`~ddi.ipam.store.Store.transaction`; :class:`~ddi.ipam.store.Store` documents them.

The checks that need the database (collisions with other hosts, active leases, static
records) are here; the ones that need only the value are in :mod:`ddi.ipam.write_checks`.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from ddi.errors import Conflict, Invalid, NotFound
from ddi.ipam.models import Host, Kind, Op
from ddi.ipam.models6 import Subnet6
from ddi.ipam.rows import (
    HOST_COLUMNS,
    HOST_INSERT,
    HOST_UPDATE,
    LEASE_COLUMNS,
    RECORD_COLUMNS,
    host_from_row,
    host_row,
    lease_from_row,
    record_from_row,
)
from ddi.ipam.rows6 import LEASE6_COLUMNS, lease6_from_row
from ddi.ipam.transaction import Transaction
from ddi.ipam.validate import (
    check_host_address,
    check_host_dhcp,
    host_names,
    parse_circuit_id,
    parse_client_id,
    parse_hostname,
    parse_mac,
)
from ddi.ipam.validate6 import check_host_address6, parse_duid
from ddi.ipam.write_checks import (
    check_edge_may_change,
    check_host_name,
    check_name_server,
    describe_host,
    describe_lease,
    describe_lease6,
    normalise_host,
    same_client,
    same_client6,
    updated_host,
)

__all__ = [
    "add_host",
    "check_host",
    "check_update_fields",
    "find_host",
    "new_host",
    "remove_host",
    "update_host",
]

Fetch = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]

_UPDATABLE_FIELDS = frozenset(
    {
        "ip",
        "ip6",
        "hostname",
        "mac",
        "client_id",
        "circuit_id",
        "duid",
        "boot",
        "boot_file",
        "boot_script",
        "dhcp",
    }
)


def new_host(host: Host) -> Host:
    """``host`` checked and normalised, with a new id if it has none (before the transaction)."""
    host = normalise_host(host)
    if not host.id:
        host = dataclasses.replace(host, id=uuid.uuid4().hex)
    return host


def check_update_fields(fields: Mapping[str, Any]) -> None:
    """Refuse a field :func:`update_host` cannot change (before the transaction)."""
    for name, value in fields.items():
        if name not in _UPDATABLE_FIELDS:
            why = "cannot be changed" if name in Host.__dataclass_fields__ else "unknown field"
            raise Invalid(name, str(value), why)


async def add_host(
    tx: Transaction, host: Host, *, domain: str | None, actor: str, reason: str
) -> None:
    if await tx.fetch("SELECT 1 FROM host WHERE id = ?", (host.id,)):
        raise Conflict("id", host.id, "another host")
    await check_host(tx, host, domain=domain)
    await tx.execute(HOST_INSERT, host_row(host))
    tx.log(Kind.HOST, host.id, Op.UPSERT, host.to_image(), actor=actor, reason=reason)


async def update_host(
    tx: Transaction,
    key: str,
    fields: Mapping[str, Any],
    *,
    domain: str | None,
    actor: str,
    reason: str,
) -> None:
    """Logs nothing when the fields already hold these values."""
    old = await find_host(tx.fetch, key)
    check_edge_may_change(old, describe_host(old), actor)
    host = updated_host(old, fields)
    if dataclasses.replace(host, version=old.version) == old:
        return
    await check_host(tx, host, domain=domain)
    await tx.execute(HOST_UPDATE, (*host_row(host)[1:], host.id))
    tx.log(Kind.HOST, host.id, Op.UPSERT, host.to_image(), actor=actor, reason=reason)


async def remove_host(tx: Transaction, key: str, *, actor: str, reason: str) -> None:
    host = await find_host(tx.fetch, key)
    check_edge_may_change(host, describe_host(host), actor)
    await tx.execute("DELETE FROM host WHERE id = ?", (host.id,))
    tx.log(Kind.HOST, host.id, Op.DELETE, host.to_image(), actor=actor, reason=reason)


async def check_host(tx: Transaction, host: Host, *, domain: str | None) -> None:
    """Refuse ``host`` if it does not fit the site's subnets or collides with another host,
    an active lease of another client, or a static record (see ``Store.add_host``)."""
    subnets = await tx.subnets()
    if host.ip is not None:
        subnet = check_host_address(host.ip, subnets)
        if subnet.gateway == host.ip:
            raise Conflict("ip", str(host.ip), f"the gateway of subnet {subnet.name}")
        if host.dhcp is not None:
            check_host_dhcp(host.dhcp, subnet)
    elif host.dhcp is not None:
        raise Invalid("dhcp", str(host.dhcp.to_image()), "DHCPv4 options need an IPv4 address")
    if host.ip6 is not None:
        await check_host6(tx, host)
    ip6 = None if host.ip6 is None else str(host.ip6)
    ip = None if host.ip is None else str(host.ip)
    others = [
        host_from_row(row)
        for row in await tx.fetch(
            f"SELECT {HOST_COLUMNS} FROM host WHERE id != ? AND (ip = ? OR hostname = ?"
            " OR mac = ? OR client_id = ? OR circuit_id = ? OR ip6 = ? OR duid = ?)",
            (host.id, ip, host.hostname, host.mac, host.client_id, host.circuit_id, ip6,
             host.duid),
        )
    ]  # fmt: skip
    for field in ("ip", "ip6", "mac", "client_id", "circuit_id", "duid", "hostname"):
        mine = getattr(host, field)
        for other in others:
            if mine is not None and getattr(other, field) == mine:
                raise Conflict(field, str(mine), describe_host(other))
    rows = await tx.fetch(f"SELECT {LEASE_COLUMNS} FROM lease WHERE ip = ?", (ip,))
    if rows:
        lease = lease_from_row(rows[0])
        if lease.active(tx.now) and not same_client(lease, host):
            raise Conflict("ip", str(host.ip), describe_lease(lease))
    names = sorted(host_names(host.hostname, host.ip, subnets, domain))
    check_name_server(host, names, tx.name_server)
    if names:
        marks = ", ".join("?" * len(names))
        rows = await tx.fetch(
            f"SELECT {RECORD_COLUMNS} FROM record WHERE name IN ({marks}) ORDER BY name, rtype",
            names,
        )
        check_host_name(host, map(record_from_row, rows))


async def check_host6(tx: Transaction, host: Host) -> None:
    """Refuse ``host.ip6`` outside every IPv6 subnet, or held by an active v6 lease of
    another client."""
    assert host.ip6 is not None
    rows = await tx.fetch("SELECT image FROM subnet6")
    check_host_address6(host.ip6, [Subnet6.from_image(json.loads(image)) for (image,) in rows])
    rows = await tx.fetch(
        f"SELECT {LEASE6_COLUMNS} FROM lease6 WHERE kind = 'na' AND prefix = ?",
        (f"{host.ip6}/128",),
    )
    if rows:
        lease = lease6_from_row(rows[0])
        if lease.active(tx.now) and not same_client6(lease, host):
            raise Conflict("ip6", str(host.ip6), describe_lease6(lease))


async def find_host(fetch: Fetch, key: str) -> Host:
    """The host whose id, MAC, IP, IPv6 address, hostname, client-id, circuit-id or DUID is
    ``key``, read with ``fetch`` (a transaction's or the store's read connection). Raises
    NotFound."""
    text = key.strip()
    candidates: list[tuple[str, str]] = [("id", text)]
    with suppress(ValueError):
        candidates.append(("ip", str(IPv4Address(text))))
    if len(text) <= 45:
        with suppress(ValueError):
            candidates.append(("ip6", str(IPv6Address(text))))
    for column, parse in (
        ("mac", parse_mac),
        ("hostname", parse_hostname),
        ("client_id", parse_client_id),
        ("circuit_id", parse_circuit_id),
        ("duid", parse_duid),
    ):
        with suppress(Invalid):
            candidates.append((column, parse(text)))
    for column, value in candidates:
        rows = await fetch(f"SELECT {HOST_COLUMNS} FROM host WHERE {column} = ?", (value,))
        if rows:
            return host_from_row(rows[0])
    raise NotFound("host", key)
