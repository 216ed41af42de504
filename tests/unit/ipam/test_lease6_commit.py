"""The DHCPv6 group commit: one writer call (BEGIN, rows, COMMIT) per batch, nothing left of a
batch that fails, and a change image that keeps its value (``Lease6Image``): the committed
change, the row, the object id and the JSON text agree with ``Lease6.to_image`` and
``lease6_id``, and the index and DNS listeners are handed the value itself."""

from __future__ import annotations

import json
from collections.abc import Sequence
from ipaddress import IPv6Network
from pathlib import Path
from typing import Any

import pytest

from ddi.ipam.models import Change, LeaseState
from ddi.ipam.models6 import Lease6, Lease6Image, Lease6Kind, lease6_id
from ddi.ipam.rows import encode_json
from ddi.ipam.rows6 import image_texts6, lease6_batch, lease6_from_row, lease6_row
from ddi.ipam.store import Store, Transaction
from ddi.ipam.views import IpamIndex

from .conftest import T0, Clock
from .test_store_v6 import na, pd, v6_store


def odd() -> Lease6:
    """A lease whose strings hold the batch separator and characters JSON escapes."""
    return Lease6(
        kind=Lease6Kind.NA, prefix=IPv6Network("2001:db8:10::1fff/128"), duid="00:01",
        iaid=4_294_967_295, mac=None, hostname='we"},{"kind":ird\u00e9', state=LeaseState.DECLINED,
        start=T0, end=T0 + 0.5, preferred_end=T0, subnet='s},{"kind":',
    )  # fmt: skip


def batch() -> list[Lease6]:
    return [na("2001:db8:10::1001", hostname="laptop"), pd("2001:db8:100::/56"), odd()]


def test_the_image_is_the_plain_image_and_keeps_its_lease() -> None:
    for lease in batch():
        image = Lease6Image(lease)
        assert image == lease.to_image()
        assert json.loads(json.dumps(image)) == lease.to_image()
        assert image.lease is lease
        assert Lease6.from_image(image) is lease
        assert Lease6.from_image(dict(image)) == lease
        assert image.object_id == lease6_id(lease.kind, lease.prefix)


@pytest.mark.parametrize("size", [1, 2, 3, 40])
def test_a_batch_is_one_formatting_with_the_same_rows_ids_and_texts(size: int) -> None:
    leases = [*batch(), *(na(f"2001:db8:10::{n + 0x2000:x}") for n in range(40))][:size]
    images, ids, texts, rows = lease6_batch(leases)
    assert [image.lease for image in images] == leases
    assert ids == [lease.object_id for lease in leases]
    assert texts == [encode_json(lease.to_image()) for lease in leases]
    assert rows == [lease6_row(lease) for lease in leases]
    assert [lease6_from_row(row) for row in rows] == leases


def test_texts_of_plain_images_fall_back_to_one_encoding_each() -> None:
    images: Any = [{"not": "a lease"}, {"kind": "na"}]
    assert image_texts6(images) == [encode_json(i) for i in images]


@pytest.mark.asyncio
async def test_committed_v6_leases_reach_the_index_as_the_values_themselves(
    store: Store,
) -> None:
    await v6_store(store)
    index = await IpamIndex.load(store)
    store.subscribe(index.apply)
    seen: list[Change] = []
    store.subscribe(seen.extend)
    leases = batch()
    changes = await store.commit_leases6(leases)
    assert changes == seen
    for change, lease in zip(changes, leases, strict=True):
        assert change.image == lease.to_image()
        assert change.object_id == lease6_id(lease.kind, lease.prefix)
        assert index.lease6(lease.kind, lease.prefix) is lease
    # The change log holds the same JSON a plain image gives, and the index equals a reload.
    stored = await store.changes(after=changes[0].seq - 1)
    assert [c.image for c in stored] == [lease.to_image() for lease in leases]
    assert not any(isinstance(c.image, Lease6Image) for c in stored)
    assert index.state() == (await IpamIndex.load(store)).state()


@pytest.mark.asyncio
async def test_a_v6_batch_is_one_writer_call_with_its_own_commit(
    db_path: Path, clock: Clock
) -> None:
    commits: list[int] = []

    class CountingStore(Store):
        async def _before_commit(self, tx: Transaction) -> None:  # a Store.transaction commit
            commits.append(len(tx.changes))

        def _lease_commit_hook(self) -> None:  # in the writer's thread, just before COMMIT
            commits.append(-1)

    async with await CountingStore.open(db_path, clock=clock) as store:
        await v6_store(store)
        commits.clear()
        notified: list[Sequence[Change]] = []
        store.subscribe(notified.append)
        last = await store.last_seq()
        leases = [na(f"2001:db8:10::{0x1000 + i:x}") for i in range(600)]
        changes = await store.commit_leases6(leases)
        assert commits == [-1]
        assert [len(n) for n in notified] == [600]
        assert [c.seq for c in changes] == list(range(last + 1, last + 601))
        assert await store.leases6() == leases
        assert await store.changes(after=last, limit=1000) == changes
        assert await store.commit_leases6([]) == []


@pytest.mark.asyncio
async def test_a_v6_batch_failing_before_its_commit_leaves_nothing(
    db_path: Path, clock: Clock
) -> None:
    class FailingStore(Store):
        fail = False

        def _lease_commit_hook(self) -> None:
            if self.fail:
                raise OSError("disk on fire")

    async with await FailingStore.open(db_path, clock=clock) as store:
        await v6_store(store)
        seen: list[Sequence[Change]] = []
        store.subscribe(seen.append)
        last = await store.last_seq()
        store.fail = True
        with pytest.raises(OSError, match="disk on fire"):
            await store.commit_leases6(batch())
        assert (await store.leases6(), await store.last_seq(), seen) == ([], last, [])
        store.fail = False
        changes = await store.commit_leases6(batch())
        assert [c.seq for c in changes] == [last + 1, last + 2, last + 3]
        assert seen == [changes]
