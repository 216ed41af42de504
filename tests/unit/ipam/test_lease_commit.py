"""The lease group commit's fast path: multi-row statements, images, and the index fed from
the committed Lease values."""

from __future__ import annotations

import asyncio
import contextlib
import json
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from ddi.ipam.models import Kind, Lease, LeaseState, Op, Subnet
from ddi.ipam.rows import image_texts as _image_texts
from ddi.ipam.store import LeaseImage, Store
from ddi.ipam.views import IpamIndex

BIG = Subnet(name="big", cidr=IPv4Network("198.18.0.0/16"))


def leases(n: int, now: float, *, offset: int = 0, **fields: Any) -> list[Lease]:
    return [
        Lease(
            ip=IPv4Address(0xC6120000 + 256 + i),
            mac=f"02:00:00:00:{(i + offset) >> 8 & 0xFF:02x}:{(i + offset) & 0xFF:02x}",
            client_id=None if i % 3 else f"01:02:00:00:00:00:{i & 0xFF:02x}",
            hostname=None if i % 2 else f"h{i}",
            start=now,
            end=now + 600.5,
            subnet="big",
            circuit_id=None if i % 5 else "70:6f:72:74",
            **fields,
        )
        for i in range(n)
    ]


@pytest.mark.asyncio
async def test_batch_larger_than_one_statement_writes_every_row_and_change(
    db_path: Path, clock: Any
) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        await store.sync_subnets([BIG], actor="config", reason="")
        index = await IpamIndex.load(store)
        store.subscribe(index.apply)
        last = await store.last_seq()
        batch = leases(1234, clock.now)
        changes = await store.commit_leases(batch)
        assert [c.seq for c in changes] == list(range(last + 1, last + 1235))
        assert await store.leases() == sorted(batch, key=lambda x: int(x.ip))
        stored = await store.changes(after=last, limit=5000)
        assert stored == changes
        for change, lease in zip(stored, batch, strict=True):
            assert change.object_id == str(lease.ip)
            assert Lease.from_image(change.image) == lease
        # The same leases again, now released: upserts, not duplicates.
        again = leases(1234, clock.now, state=LeaseState.RELEASED)
        await store.commit_leases(again)
        assert await store.leases() == sorted(again, key=lambda x: int(x.ip))
        # The index fed from the committed values equals one loaded from the database.
        assert index.state() == (await IpamIndex.load(store)).state()


def test_lease_image_is_the_plain_image_and_keeps_its_lease(now: float) -> None:
    [lease] = leases(1, now)
    image = LeaseImage(lease)
    assert image == lease.to_image()
    assert json.loads(json.dumps(image)) == lease.to_image()
    assert image.lease is lease


def test_batch_image_texts_equal_one_encoding_each(now: float) -> None:
    odd = leases(3, now)
    odd[1] = Lease(ip=IPv4Address("198.18.0.7"), mac=None, hostname='we"},{"ip":ird\u00e9',
                   start=now, end=now + 1, subnet='s},{"ip":')  # fmt: skip
    for batch in (leases(1, now), leases(7, now), odd):
        images = [LeaseImage(x) for x in batch]
        expected = [json.dumps(i, separators=(",", ":")) for i in images]
        assert _image_texts(images) == expected


@pytest.mark.asyncio
async def test_lease_rows_and_other_writes_share_one_transaction_and_seq_run(
    db_path: Path, clock: Any
) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        seen: list[int] = []
        store.subscribe(lambda changes: seen.append(len(changes)))
        last = await store.last_seq()
        async with store.transaction() as tx:
            first = await tx.write_leases(leases(3, clock.now), actor="dhcp")
            await tx.execute(
                "INSERT INTO subnet (name, cidr, image) VALUES (?, ?, ?)",
                ("big", str(BIG.cidr), json.dumps(BIG.to_image())),
            )
            tx.log(Kind.SUBNET, "big", Op.UPSERT, BIG.to_image(), actor="t", reason="")
            second = await tx.write_leases(leases(2, clock.now, offset=3), actor="dhcp")
        assert [c.seq for c in tx.changes] == list(range(last + 1, last + 7))
        assert tx.changes == [*first, tx.changes[3], *second]
        assert await store.changes(after=last) == tx.changes
        assert seen == [6]
        async with store.transaction() as empty:  # no statement: nothing begun or committed
            pass
        assert empty.changes == []
        assert seen == [6]
        assert await store.last_seq() == last + 6


@pytest.mark.asyncio
async def test_cancelled_lease_commits_leave_store_and_index_agreeing(
    db_path: Path, clock: Any
) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        await store.sync_subnets([BIG], actor="config", reason="")
        index = await IpamIndex.load(store)
        store.subscribe(index.apply)
        for yields in range(0, 40, 2):
            task = asyncio.create_task(store.commit_leases(leases(50, clock.now, offset=yields)))
            for _ in range(yields):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await store.commit_leases([])
            await store.expire_leases(0)  # waits for whatever the cancelled one left in flight
            assert index.state() == (await IpamIndex.load(store)).state()
        assert index.seq == await store.last_seq()
