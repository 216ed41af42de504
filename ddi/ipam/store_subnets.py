"""The store's write of the configured subnets, run inside one
:meth:`~ddi.ipam.store.Store.transaction`; :meth:`~ddi.ipam.store.Store.sync_subnets`
documents it."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ddi.ipam.models import Kind, Op, Subnet
from ddi.ipam.transaction import Transaction

__all__ = ["sync_subnets"]


async def sync_subnets(
    tx: Transaction, subnets: Sequence[Subnet], *, actor: str, reason: str
) -> None:
    rows = await tx.fetch("SELECT name, image FROM subnet")
    current = {name: json.loads(image) for name, image in rows}
    wanted = {s.name: s for s in subnets}
    for name, image in current.items():
        if name not in wanted:
            await tx.execute("DELETE FROM subnet WHERE name = ?", (name,))
            tx.log(Kind.SUBNET, name, Op.DELETE, image, actor=actor, reason=reason)
    for name, subnet in wanted.items():
        image = subnet.to_image()
        if current.get(name) == image:
            continue
        await tx.execute(
            "INSERT INTO subnet (name, cidr, image) VALUES (?, ?, ?) ON CONFLICT (name)"
            " DO UPDATE SET cidr = excluded.cidr, image = excluded.image",
            (name, str(subnet.cidr), json.dumps(image)),
        )
        tx.log(Kind.SUBNET, name, Op.UPSERT, image, actor=actor, reason=reason)
