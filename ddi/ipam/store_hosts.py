"""The store's writes of reservations, each run inside one
:meth:`~ddi.ipam.store.Store.transaction`; :class:`~ddi.ipam.store.Store` documents them.

The checks that need the database (collisions with other hosts, active leases, static
records) are here; the ones that need only the value are in :mod:`ddi.ipam.write_checks`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from ipaddress import IPv4Address
from typing import Any

from ddi.errors import Conflict, Invalid, NotFound
from ddi.ipam.models import Host, Kind, Op
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
from ddi.ipam.write_checks import (
    check_edge_may_change,
    check_host_name,
    check_name_server,
    describe_host,
    describe_lease,
    normalise_host,
    same_client,
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
    {"ip", "hostname", "mac", "client_id", "circuit_id", "boot", "boot_file", "boot_script", "dhcp"}
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
    subnet = check_host_address(host.ip, subnets)
    if subnet.gateway == host.ip:
        raise Conflict("ip", str(host.ip), f"the gateway of subnet {subnet.name}")
    if host.dhcp is not None:
        check_host_dhcp(host.dhcp, subnet)
    others = [
        host_from_row(row)
        for row in await tx.fetch(
            f"SELECT {HOST_COLUMNS} FROM host WHERE id != ? AND (ip = ? OR hostname = ?"
            " OR mac = ? OR client_id = ? OR circuit_id = ?)",
            (host.id, str(host.ip), host.hostname, host.mac, host.client_id, host.circuit_id),
        )
    ]
    for field in ("ip", "mac", "client_id", "circuit_id", "hostname"):
        mine = getattr(host, field)
        for other in others:
            if mine is not None and getattr(other, field) == mine:
                raise Conflict(field, str(mine), describe_host(other))
    rows = await tx.fetch(f"SELECT {LEASE_COLUMNS} FROM lease WHERE ip = ?", (str(host.ip),))
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


async def find_host(fetch: Fetch, key: str) -> Host:
    """The host whose id, MAC, IP, hostname, client-id or circuit-id is ``key``, read with
    ``fetch`` (a transaction's or the store's read connection). Raises NotFound."""
    text = key.strip()
    candidates: list[tuple[str, str]] = [("id", text)]
    with suppress(ValueError):
        candidates.append(("ip", str(IPv4Address(text))))
    for column, parse in (
        ("mac", parse_mac),
        ("hostname", parse_hostname),
        ("client_id", parse_client_id),
        ("circuit_id", parse_circuit_id),
    ):
        with suppress(Invalid):
            candidates.append((column, parse(text)))
    for column, value in candidates:
        rows = await fetch(f"SELECT {HOST_COLUMNS} FROM host WHERE {column} = ?", (value,))
        if rows:
            return host_from_row(rows[0])
    raise NotFound("host", key)
