"""The store's write of an import: every reservation, record and lease of it in one
:meth:`~ddi.ipam.store.Store.transaction`, or none of them.

The rows are read once, the plan is made in memory (:func:`~ddi.ipam.import_plan.plan_import`)
and, when it refuses nothing, written with a few multi-row statements; leases go through the
same write as the DHCP group commit (:meth:`Transaction.write_leases`), so the index and the
allocator see them exactly as leases they granted themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from ddi.ipam.import_plan import ImportPlan, plan_import
from ddi.ipam.models import Kind, Op
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
    record_row,
)
from ddi.ipam.transaction import Transaction
from ddi.migrate.items import HostItem, LeaseItem, RecordItem

__all__ = ["import_items"]

_RECORD_INSERT = f"INSERT INTO record ({RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"


def _new_id() -> str:
    return uuid.uuid4().hex


async def import_items(
    tx: Transaction,
    *,
    hosts: Sequence[HostItem],
    leases: Sequence[LeaseItem],
    records: Sequence[RecordItem],
    domain: str | None,
    actor: str,
    reason: str,
) -> ImportPlan:
    """Plan the import against the rows in ``tx``; write it when nothing is refused."""
    stored_hosts = map(host_from_row, await tx.fetch(f"SELECT {HOST_COLUMNS} FROM host"))
    stored_leases = map(lease_from_row, await tx.fetch(f"SELECT {LEASE_COLUMNS} FROM lease"))
    stored_records = map(record_from_row, await tx.fetch(f"SELECT {RECORD_COLUMNS} FROM record"))
    plan = plan_import(
        hosts=hosts,
        leases=leases,
        records=records,
        stored_hosts=stored_hosts,
        stored_leases=stored_leases,
        stored_records=stored_records,
        subnets=await tx.subnets(),
        domain=domain,
        now=tx.now,
        actor=actor,
        new_id=_new_id,
    )
    if plan.refused:
        return plan
    if plan.changed_hosts:
        # Changed first: a host moved off an address or name frees it for a new one.
        await tx.executemany(HOST_UPDATE, [(*host_row(h)[1:], h.id) for h in plan.changed_hosts])
    if plan.new_hosts:
        await tx.executemany(HOST_INSERT, [host_row(h) for h in plan.new_hosts])
    if plan.new_records:
        await tx.executemany(_RECORD_INSERT, [record_row(r) for r in plan.new_records])
    for host in (*plan.changed_hosts, *plan.new_hosts):
        tx.log(Kind.HOST, host.id, Op.UPSERT, host.to_image(), actor=actor, reason=reason)
    for record in plan.new_records:
        tx.log(Kind.RECORD, record.id, Op.UPSERT, record.to_image(), actor=actor, reason=reason)
    if plan.leases:
        await tx.write_leases(plan.leases, actor=actor)
    return plan
