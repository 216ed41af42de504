"""The store's writes of static DNS records, each run inside one
:meth:`~ddi.ipam.store.Store.transaction`; :class:`~ddi.ipam.store.Store` documents them."""

from __future__ import annotations

import dataclasses
import uuid

from ddi.errors import Conflict, Invalid, NotFound
from ddi.ipam.models import Kind, Op, Owner, Record
from ddi.ipam.rows import HOST_COLUMNS, RECORD_COLUMNS, host_from_row, record_from_row, record_row
from ddi.ipam.transaction import Transaction
from ddi.ipam.validate import (
    host_names,
    parse_dns_name,
    parse_record_value,
    parse_rtype,
    parse_ttl,
)
from ddi.ipam.write_checks import (
    OBJECT_ID,
    check_edge_may_change,
    check_name_server,
    check_record_name,
    check_record_placement,
    describe_record,
)

__all__ = ["add_record", "new_record", "remove_record"]


def new_record(record: Record) -> Record:
    """``record`` checked and normalised, with a new id if it has none (before the
    transaction)."""
    rtype = parse_rtype(record.rtype)
    record = dataclasses.replace(
        record,
        id=record.id or uuid.uuid4().hex,
        name=parse_dns_name(record.name),
        rtype=rtype,
        value=parse_record_value(rtype, record.value),
        ttl=parse_ttl(record.ttl),
        owner=Owner(record.owner),
    )
    if not OBJECT_ID.match(record.id):
        raise Invalid("id", record.id, "1 to 64 letters, digits, '-' or '_'")
    if record.version < 1:
        raise Invalid("version", str(record.version), "must be 1 or more")
    return record


async def add_record(
    tx: Transaction, record: Record, *, domain: str | None, actor: str, reason: str
) -> None:
    if await tx.fetch("SELECT 1 FROM record WHERE id = ?", (record.id,)):
        raise Conflict("id", record.id, "another record")
    await _check_record(tx, record, domain)
    await tx.execute(
        f"INSERT INTO record ({RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", record_row(record)
    )
    tx.log(Kind.RECORD, record.id, Op.UPSERT, record.to_image(), actor=actor, reason=reason)


async def remove_record(tx: Transaction, key: str, *, actor: str, reason: str) -> None:
    rows = await tx.fetch(f"SELECT {RECORD_COLUMNS} FROM record WHERE id = ?", (key,))
    if not rows:
        raise NotFound("record", key)
    record = record_from_row(rows[0])
    check_edge_may_change(record, describe_record(record), actor)
    await tx.execute("DELETE FROM record WHERE id = ?", (record.id,))
    tx.log(Kind.RECORD, record.id, Op.DELETE, record.to_image(), actor=actor, reason=reason)


async def _check_record(tx: Transaction, record: Record, domain: str | None) -> None:
    check_record_placement(record, domain)
    check_name_server(record, (record.name,), tx.name_server)
    at_name = [
        record_from_row(row)
        for row in await tx.fetch(
            f"SELECT {RECORD_COLUMNS} FROM record WHERE name = ? AND id != ? ORDER BY rtype, value",
            (record.name, record.id),
        )
    ]
    for other in at_name:
        if (other.rtype, other.value) == (record.rtype, record.value):
            raise Conflict("record", f"{record.name} {record.rtype}", describe_record(other))
    for other in at_name:
        if record.rtype == "CNAME" or other.rtype == "CNAME":
            # RFC 1034 §3.6.2: a CNAME name has no other data.
            raise Conflict("name", record.name, describe_record(other))
    label = record.name.split(".", 1)[0]
    subnets = await tx.subnets()
    rows = await tx.fetch(f"SELECT {HOST_COLUMNS} FROM host WHERE hostname = ?", (label,))
    named = (
        h
        for h in map(host_from_row, rows)
        if record.name in host_names(h.hostname, h.ip, subnets, domain)
    )
    check_record_name(record, named)
