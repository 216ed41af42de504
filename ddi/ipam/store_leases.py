"""The store's writes of leases other than the DHCP group commit (that one is
:meth:`~ddi.ipam.store.Transaction.write_leases`), each run inside one
:meth:`~ddi.ipam.store.Store.transaction`; :class:`~ddi.ipam.store.Store` documents them."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address

from ddi.errors import Invalid, NotFound
from ddi.ipam.models import Kind, LeaseState, Op
from ddi.ipam.rows import LEASE_COLUMNS, LEASE_UPSERT, lease_from_row, lease_row
from ddi.ipam.transaction import Transaction

__all__ = ["expire_leases", "release_lease"]


async def release_lease(tx: Transaction, ip: IPv4Address, *, actor: str, reason: str) -> None:
    rows = await tx.fetch(f"SELECT {LEASE_COLUMNS} FROM lease WHERE ip = ?", (str(ip),))
    if not rows:
        raise NotFound("lease", str(ip))
    lease = lease_from_row(rows[0])
    if lease.state is not LeaseState.BOUND:
        raise Invalid("ip", str(ip), f"the lease is {lease.state.value}, not bound")
    released = dataclasses.replace(
        lease, state=LeaseState.RELEASED, end=max(lease.start, min(lease.end, tx.now))
    )
    await tx.execute(LEASE_UPSERT, lease_row(released))
    tx.log(Kind.LEASE, str(ip), Op.UPSERT, released.to_image(), actor=actor, reason=reason)


async def expire_leases(tx: Transaction, now: float) -> None:
    rows = await tx.fetch(
        f"SELECT {LEASE_COLUMNS} FROM lease WHERE state = 'bound' AND \"end\" <= ?", (now,)
    )
    if rows:
        await tx.execute(
            "UPDATE lease SET state = 'expired' WHERE state = 'bound' AND \"end\" <= ?", (now,)
        )
    for row in rows:
        lease = dataclasses.replace(lease_from_row(row), state=LeaseState.EXPIRED)
        tx.log(Kind.LEASE, str(lease.ip), Op.UPSERT, lease.to_image(), actor="dhcp",
               reason="expired")  # fmt: skip
