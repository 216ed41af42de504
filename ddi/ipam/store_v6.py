"""The store's writes of IPv6 objects (subnets, DHCPv6 leases), each run inside one
:meth:`~ddi.ipam.store.Store.transaction`; :class:`~ddi.ipam.store.Store` documents them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from ipaddress import IPv6Network

from ddi.errors import Invalid, NotFound
from ddi.ipam.models import Kind, LeaseState, Op
from ddi.ipam.models6 import Lease6Image, Lease6Kind, Subnet6, lease6_id
from ddi.ipam.rows6 import LEASE6_COLUMNS, LEASE6_UPSERT, lease6_from_row, lease6_row
from ddi.ipam.transaction import Transaction

__all__ = ["expire_leases6", "release_lease6", "sync_subnets6"]


async def release_lease6(
    tx: Transaction, kind: Lease6Kind, prefix: IPv6Network, *, actor: str, reason: str
) -> None:
    rows = await tx.fetch(
        f"SELECT {LEASE6_COLUMNS} FROM lease6 WHERE kind = ? AND prefix = ?",
        (kind.value, str(prefix)),
    )
    if not rows:
        raise NotFound("lease6", lease6_id(kind, prefix))
    lease = lease6_from_row(rows[0])
    if lease.state is not LeaseState.BOUND:
        raise Invalid("prefix", str(prefix), f"the lease is {lease.state.value}, not bound")
    end = max(lease.start, min(lease.end, tx.now))
    released = dataclasses.replace(
        lease, state=LeaseState.RELEASED, end=end, preferred_end=min(lease.preferred_end, end)
    )
    await tx.execute(LEASE6_UPSERT, lease6_row(released))
    image = Lease6Image(released)
    tx.log(Kind.LEASE6, image.object_id, Op.UPSERT, image, actor=actor, reason=reason)


async def expire_leases6(tx: Transaction, now: float) -> None:
    rows = await tx.fetch(
        f"SELECT {LEASE6_COLUMNS} FROM lease6 WHERE state = 'bound' AND \"end\" <= ?", (now,)
    )
    if rows:
        await tx.execute(
            "UPDATE lease6 SET state = 'expired' WHERE state = 'bound' AND \"end\" <= ?", (now,)
        )
    for row in rows:
        image = Lease6Image(dataclasses.replace(lease6_from_row(row), state=LeaseState.EXPIRED))
        tx.log(Kind.LEASE6, image.object_id, Op.UPSERT, image, actor="dhcp6", reason="expired")


async def sync_subnets6(
    tx: Transaction, subnets: Sequence[Subnet6], *, actor: str, reason: str
) -> None:
    rows = await tx.fetch("SELECT name, image FROM subnet6")
    current = {name: json.loads(image) for name, image in rows}
    wanted = {s.name: s for s in subnets}
    for name, image in current.items():
        if name not in wanted:
            await tx.execute("DELETE FROM subnet6 WHERE name = ?", (name,))
            tx.log(Kind.SUBNET6, name, Op.DELETE, image, actor=actor, reason=reason)
    for name, subnet in wanted.items():
        image = subnet.to_image()
        if current.get(name) == image:
            continue
        await tx.execute(
            "INSERT INTO subnet6 (name, cidr, image) VALUES (?, ?, ?) ON CONFLICT (name)"
            " DO UPDATE SET cidr = excluded.cidr, image = excluded.image",
            (name, str(subnet.cidr), json.dumps(image)),
        )
        tx.log(Kind.SUBNET6, name, Op.UPSERT, image, actor=actor, reason=reason)
