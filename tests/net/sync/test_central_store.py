"""The central store, the same suite against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio

from central.store import CentralStore, open_store
from ddi.errors import Conflict, Invalid, NotFound
from ddi.ipam.models import Change, Host, Kind, Op, Owner
from sync import protocol
from sync.protocol import Apply, Duplicate, Gap, NeedSnapshot, Refuse, RefuseReason

KEY = protocol.generate_key()
OTHER = protocol.generate_key()
RAW = protocol.public_key_raw(KEY.public_key())
RAW_OTHER = protocol.public_key_raw(OTHER.public_key())


def host_change(seq: int, n: int, *, epoch: int = 1, op: Op = Op.UPSERT) -> dict[str, Any]:
    oid = f"{n:032x}"
    image = Host(id=oid, ip=f"198.18.{n // 250}.{n % 250 + 2}", hostname=f"h{n}",  # type: ignore[arg-type]
                 mac=f"52:54:00:00:{n // 256:02x}:{n % 256:02x}").to_image()  # fmt: skip
    return Change(epoch=epoch, seq=seq, kind=Kind.HOST, object_id=oid, op=op, image=image,
                  actor="t", time=1.5).to_image()  # fmt: skip


def make(site: str, from_seq: int, entries: Sequence[dict[str, Any]], *, epoch: int = 1,
         key: Any = KEY, to_seq: int | None = None) -> protocol.Batch:  # fmt: skip
    last = to_seq if to_seq is not None else (entries[-1]["seq"] if entries else from_seq)
    return protocol.make_batch(site=site, epoch=epoch, from_seq=from_seq, to_seq=last,
                               entries=entries, key=key)  # fmt: skip


@pytest_asyncio.fixture
async def store(central_db: str) -> AsyncIterator[CentralStore]:
    s = await open_store(central_db)
    await s.add_site("s1", RAW)
    await s.add_site("s2", RAW_OTHER)
    try:
        yield s
    finally:
        await s.close()


async def hosts(store: CentralStore, site: str) -> dict[str, Any]:
    return {o["object_id"]: o["image"] for o in await store.objects(site, Kind.HOST)}


@pytest.mark.asyncio
async def test_batches_apply_in_order_and_duplicates_are_noops(store: CentralStore) -> None:
    first = make("s1", 1, [host_change(s, s) for s in range(1, 6)])
    out = await store.apply_batch("s1", first)
    assert (out.decision, out.applied_seq) == (Apply(), 5)
    again = await store.apply_batch("s1", first)
    assert (again.decision, again.applied_seq) == (Duplicate(), 5)
    gap = await store.apply_batch("s1", make("s1", 8, [host_change(8, 8)]))
    assert gap.decision == Gap(expected=6)
    out = await store.apply_batch("s1", make("s1", 6, [host_change(7, 1, op=Op.DELETE)]))
    assert (out.decision, out.applied_seq) == (Apply(), 7)
    assert sorted(await hosts(store, "s1")) == [f"{n:032x}" for n in range(2, 6)]
    feed = await store.changes(after=0, limit=100)
    assert [c["seq"] for c in feed] == [1, 2, 3, 4, 5, 7]
    assert [c["gseq"] for c in feed] == list(range(1, 7))


@pytest.mark.asyncio
async def test_refused_batches_change_nothing_and_are_counted(store: CentralStore) -> None:
    await store.apply_batch("s1", make("s1", 1, [host_change(1, 1), host_change(2, 2)]))
    cases = {
        "forged": make("s1", 3, [host_change(3, 3)], key=OTHER),
        "other_site": make("s2", 3, [host_change(3, 3)], key=OTHER),
        "replay": make("s1", 1, [host_change(1, 1)]),
    }
    reasons = {}
    for name, batch in cases.items():
        out = await store.apply_batch("s1", batch)
        assert isinstance(out.decision, Refuse)
        reasons[name] = out.decision.reason
        await store.count_refusal("s1", out.decision.reason.value)
    unknown = await store.apply_batch("nosuch", make("nosuch", 1, [host_change(1, 1)]))
    assert isinstance(unknown.decision, Refuse)
    assert unknown.decision.reason is RefuseReason.UNKNOWN_SITE
    assert reasons == {
        "forged": RefuseReason.BAD_SIGNATURE,
        "other_site": RefuseReason.WRONG_SITE,
        "replay": RefuseReason.REPLAY,
    }
    assert len(await store.changes(after=0, limit=100)) == 2
    assert (await store.site("s1")).applied_seq == 2  # type: ignore[union-attr]
    assert (await store.refusals())["s1"] == {"bad_signature": 1, "wrong_site": 1, "replay": 1}


@pytest.mark.asyncio
async def test_feed_interleaves_sites_in_commit_order(store: CentralStore) -> None:
    await store.apply_batch("s1", make("s1", 1, [host_change(1, 1)]))
    await store.apply_batch("s2", make("s2", 1, [host_change(1, 9)], key=OTHER))
    await store.apply_batch("s1", make("s1", 2, [host_change(2, 2)]))
    feed = await store.changes(after=0, limit=10)
    assert [(c["site"], c["seq"]) for c in feed] == [("s1", 1), ("s2", 1), ("s1", 2)]
    assert [c["gseq"] for c in await store.changes(after=1, limit=10, site="s1")] == [3]


@pytest.mark.asyncio
async def test_newer_epoch_needs_a_snapshot_which_replaces_the_site(store: CentralStore) -> None:
    await store.apply_batch("s1", make("s1", 1, [host_change(s, s) for s in range(1, 4)]))
    out = await store.apply_batch("s1", make("s1", 11, [host_change(11, 4, epoch=2)], epoch=2))
    assert out.decision == NeedSnapshot()
    objects = [
        {"kind": "host", "object_id": c["object_id"], "image": c["image"]}
        for c in (host_change(0, 2), host_change(0, 3), host_change(0, 4))
    ]
    pages = [objects[:2], objects[2:]]
    p0 = protocol.make_snapshot_page(site="s1", epoch=2, as_of_seq=10, page=0, after=None,
                                     objects=pages[0], last=False, key=KEY)  # fmt: skip
    out = await store.apply_snapshot_page("s1", p0)
    assert (out.decision, out.snapshot_next_page, out.epoch) == (Apply(), 1, 1)
    assert (await store.apply_snapshot_page("s1", p0)).decision == Duplicate()
    info = await store.site("s1")
    assert info is not None
    assert (info.snapshot_next_page, info.snapshot_after) == (1, p0.last_key)
    p1 = protocol.make_snapshot_page(site="s1", epoch=2, as_of_seq=10, page=1, after=p0.last_key,
                                     objects=pages[1], last=True, key=KEY)  # fmt: skip
    out = await store.apply_snapshot_page("s1", p1)
    assert (out.decision, out.epoch, out.applied_seq) == (Apply(), 2, 10)
    assert sorted(await hosts(store, "s1")) == [f"{n:032x}" for n in (2, 3, 4)]
    feed = await store.changes(after=3, limit=10)
    assert [(c["op"], c["object_id"][-1]) for c in feed] == [("delete", "1"), ("upsert", "4")]
    out = await store.apply_batch("s1", make("s1", 11, [host_change(11, 5, epoch=2)], epoch=2))
    assert (out.decision, out.applied_seq) == (Apply(), 11)


@pytest.mark.asyncio
async def test_two_collectors_apply_a_batch_once(central_db: str, store: CentralStore) -> None:
    other = await open_store(central_db)
    try:
        batch = make("s1", 1, [host_change(s, s) for s in range(1, 50)])
        results = await asyncio.gather(
            store.apply_batch("s1", batch), other.apply_batch("s1", batch)
        )
        assert sorted(type(r.decision).__name__ for r in results) == ["Apply", "Duplicate"]
        assert len(await store.changes(after=0, limit=1000)) == 49
    finally:
        await other.close()


@pytest.mark.asyncio
async def test_down_log_and_conflicts(store: CentralStore) -> None:
    await store.apply_batch("s1", make("s1", 1, [host_change(1, 1)]))
    taken = Host.from_image(host_change(1, 1)["image"])
    clash = Host(id="c" * 32, ip=taken.ip, hostname="other", mac="52:54:00:aa:00:01")
    with pytest.raises(Conflict, match="ip"):
        await store.add_down("s1", Op.UPSERT, clash)
    with pytest.raises(NotFound):
        await store.add_down("nosuch", Op.UPSERT, clash)
    subnet = {"name": "lab", "cidr": "198.18.0.0/16"}
    entry = Change(epoch=1, seq=2, kind=Kind.SUBNET, object_id="lab", op=Op.UPSERT, image=subnet)
    await store.apply_batch("s1", make("s1", 2, [entry.to_image()]))
    far = Host(id="f" * 32, ip="198.51.100.7", hostname="far", mac="52:54:00:aa:00:09")  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="outside every subnet"):
        await store.add_down("s1", Op.UPSERT, far)
    fine = Host(id="d" * 32, ip="198.18.9.9", hostname="pxe1", mac="52:54:00:aa:00:02")  # type: ignore[arg-type]
    entry = await store.add_down("s1", Op.UPSERT, fine)
    assert entry.dseq == 1
    assert entry.image["owner"] == Owner.CENTRAL.value
    assert [e.dseq for e in await store.down("s1", after=0, limit=10)] == [1]
    assert await store.down("s1", after=1, limit=10) == []
    assert (await store.central_host("s1", "pxe1")).id == fine.id
    conflict = {"id": 7, "object_id": fine.id, "field": "ip", "value": "198.18.9.9",
                "edge_image": {}, "central_image": entry.image, "detected_at": 5.0}  # fmt: skip
    await store.add_conflicts("s1", [conflict])
    await store.add_conflicts("s1", [conflict])
    rows = await store.conflicts()
    assert [(r["site"], r["id"], r["field"]) for r in rows] == [("s1", "7", "ip")]


@pytest.mark.asyncio
async def test_reads_do_not_wait_for_a_write_in_progress(store: CentralStore) -> None:
    """The feed, the objects and the consoles' reads see the last commit while a write
    transaction is open (an ingest in progress), instead of queueing behind it."""
    await store.apply_batch("s1", make("s1", 1, [host_change(1, 1)]))
    inside, release = asyncio.Event(), asyncio.Event()

    async def long_write() -> None:
        async with store.transaction() as tx:
            await tx.execute("UPDATE site SET last_contact = 1 WHERE id = 's2'")
            inside.set()
            await release.wait()

    writer = asyncio.create_task(long_write())
    try:
        await asyncio.wait_for(inside.wait(), 10)
        reads = asyncio.gather(
            store.changes(after=0, limit=10),
            store.objects("s1", Kind.HOST),
            store.sites(),
            store.query("SELECT count(*) FROM change"),
            store.conflicts(),
        )
        changes, objects, sites, counted, conflicts = await asyncio.wait_for(reads, 10)
        assert [c["seq"] for c in changes] == [1]
        assert [o["object_id"] for o in objects] == [f"{1:032x}"]
        assert [s.site for s in sites] == ["s1", "s2"]
        assert counted == [(1,)]
        assert conflicts == []
    finally:
        release.set()
        await writer
    # Reads are read-only: a write slipped into one is refused, on either database.
    with pytest.raises(Exception, match=r"(?i)read.only|readonly"):
        await store.query("DELETE FROM change")
    assert [c["seq"] for c in await store.changes(after=0, limit=10)] == [1]


@pytest.mark.asyncio
async def test_a_read_cut_short_leaves_the_reads_working(tmp_path: Any) -> None:
    """SQLite: a read whose BEGIN ran but whose task was cancelled before it could end its
    transaction (aiosqlite's thread runs the statement regardless) must not wedge every later
    read with "cannot start a transaction within a transaction"; an error inside a read
    rolls it back and is the error raised."""
    store = await open_store(f"sqlite://{tmp_path / 'central.sqlite'}")
    try:
        await store.add_site("s1", RAW)
        reader = store._reader  # type: ignore[attr-defined]
        await reader.execute("BEGIN")  # what a cancelled read leaves behind
        assert [s.site for s in await store.sites()] == ["s1"]
        with pytest.raises(Exception, match="no such table"):
            await store.query("SELECT * FROM no_such_table")
        assert not reader.in_transaction
        assert [s.site for s in await store.sites()] == ["s1"]
    finally:
        await store.close()
