"""The sync block of the IPAM store: cursor state, coalescing, epoch roll-over, snapshot
pages, and central-owned reservations with conflict detection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import pytest_asyncio

from ddi.errors import Conflict, NotFound
from ddi.ipam.models import Host, Kind, Lease, Op, Owner, Subnet
from ddi.ipam.store import Store
from ddi.ipam.sync_values import Backlog, CentralApply, DownResult, EpochRoll

APPLIED = CentralApply(result=DownResult.APPLIED)

NOW = 1_800_000_000.0


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "ddi.sqlite", clock=lambda: NOW, domain="s1.example")
    await s.sync_subnets(
        [Subnet(name="lab", cidr=IPv4Network("198.18.0.0/24"))], actor="t", reason="r"
    )
    try:
        yield s
    finally:
        await s.close()


def host(n: int, **kw: object) -> Host:
    values: dict[str, object] = {
        "id": "",
        "ip": IPv4Address(f"198.18.0.{n}"),
        "hostname": f"h{n}",
        "mac": f"52:54:00:00:00:{n:02x}",
    } | kw
    return Host(**values)  # type: ignore[arg-type]


async def lease_30_to_another_client(store: Store) -> None:
    """198.18.0.30 actively leased to a client no reservation names."""
    lease = Lease(ip=IPv4Address("198.18.0.30"), mac="02:00:00:00:00:09", start=NOW,
                  end=NOW + 60, subnet="lab")  # fmt: skip
    await store.commit_leases([lease])


@pytest.mark.asyncio
async def test_sync_state_defaults_and_updates(store: Store) -> None:
    state = await store.sync.cursors()
    assert state.cursor == 0
    assert state.epoch == 1
    await store.sync.set_cursors(cursor=1, down_cursor=4)
    state = await store.sync.cursors()
    assert (state.cursor, state.down_cursor) == (1, 4)
    assert await store.changes(after=1) == []


@pytest.mark.asyncio
async def test_trimming_deletes_only_acknowledged_history_beyond_what_is_kept(
    store: Store,
) -> None:
    for n in range(10, 20):  # seq 2..11 (seq 1 is the subnet)
        await store.add_host(host(n), actor="t", reason="r")
    assert await store.sync.trim_acknowledged(8, keep=3) == 5  # acked 1..8, newest 3 (6..8) stay
    assert [c.seq for c in await store.changes(after=0, limit=100)] == [6, 7, 8, 9, 10, 11]
    assert (await store.sync.cursors()).floor == 5
    assert await store.sync.trim_acknowledged(8, keep=3) == 0  # nothing more to trim
    assert await store.sync.trim_acknowledged(11, keep=0) == 6  # all acknowledged, none kept
    assert await store.changes(after=0) == []
    assert (await store.sync.cursors()).floor == 11
    assert await store.last_seq() == 11


@pytest.mark.asyncio
async def test_coalescing_keeps_the_newest_entry_per_object_past_the_cursor(store: Store) -> None:
    change = await store.add_host(host(10), actor="t", reason="r")
    for name in ("a", "b", "c"):
        await store.update_host(change.object_id, {"hostname": name}, actor="t", reason="r")
    await store.add_host(host(11), actor="t", reason="r")
    assert await store.sync.backlog(0) == Backlog(count=6, oldest=NOW)
    assert await store.sync.coalesce(0) == 3
    kept = await store.changes(after=0)
    assert [(c.kind, c.image.get("hostname", c.image.get("name"))) for c in kept] == [
        (Kind.SUBNET, "lab"),
        (Kind.HOST, "c"),
        (Kind.HOST, "h11"),
    ]


@pytest.mark.asyncio
async def test_coalescing_leaves_acknowledged_entries_alone(store: Store) -> None:
    change = await store.add_host(host(10), actor="t", reason="r")
    await store.update_host(change.object_id, {"hostname": "b"}, actor="t", reason="r")
    assert await store.sync.coalesce(change.seq) == 0
    assert len(await store.changes(after=0)) == 3


@pytest.mark.asyncio
async def test_roll_epoch_drops_the_log_and_keeps_counting(store: Store) -> None:
    await store.add_host(host(10), actor="t", reason="r")
    last = await store.last_seq()
    assert await store.sync.roll_epoch(at_least=5) == EpochRoll(epoch=5, as_of=last)
    assert await store.changes(after=0) == []
    state = await store.sync.cursors()
    assert (state.epoch, state.floor, state.snapshot_seq) == (5, last, last)
    change = await store.add_host(host(11), actor="t", reason="r")
    assert (change.epoch, change.seq) == (5, last + 1)


@pytest.mark.asyncio
async def test_snapshot_pages_walk_every_object_once(store: Store) -> None:
    for n in range(10, 15):
        await store.add_host(host(n), actor="t", reason="r")
    await store.commit_leases(
        [
            Lease(
                ip=IPv4Address("198.18.0.100"),
                mac="02:00:00:00:00:01",
                start=NOW,
                end=NOW + 60,
                subnet="lab",
            )
        ]
    )
    seen: list[tuple[str, str]] = []
    after = None
    while True:
        page = await store.sync.snapshot_page(after, 2)
        seen.extend((o["kind"], o["object_id"]) for o in page)
        if len(page) < 2:
            break
        after = (page[-1]["kind"], page[-1]["object_id"])
    kinds = [k for k, _ in seen]
    assert kinds == ["subnet"] + ["host"] * 5 + ["lease"]
    assert len(set(seen)) == len(seen)


@pytest.mark.asyncio
async def test_central_reservation_is_applied_with_owner_central(store: Store) -> None:
    central = host(20, id="c" * 32, owner=Owner.CENTRAL, boot="uefi").to_image()
    assert await store.sync.apply_central_host(Op.UPSERT, central) == APPLIED
    applied = await store.find_host("c" * 32)
    assert applied.owner is Owner.CENTRAL
    assert applied.boot == "uefi"
    last = await store.last_seq()
    assert await store.sync.apply_central_host(Op.UPSERT, central) == APPLIED
    assert await store.last_seq() == last
    assert await store.sync.apply_central_host(Op.DELETE, central) == CentralApply(
        result=DownResult.DELETED
    )
    assert [c.op for c in await store.changes(after=last)] == [Op.DELETE]


@pytest.mark.asyncio
async def test_central_reservation_colliding_with_edge_state_is_a_conflict(store: Store) -> None:
    mine = await store.add_host(host(10), actor="t", reason="r")
    await lease_30_to_another_client(store)
    last = await store.last_seq()
    same_mac = host(21, id="d" * 32, mac="52:54:00:00:00:0a").to_image()
    leased_ip = host(30, id="e" * 32, mac="52:54:00:00:00:77").to_image()
    edge_id = host(31, id=mine.object_id, mac="52:54:00:00:00:78").to_image()
    outside = host(31, id="f" * 32).to_image() | {"ip": "198.19.0.1"}
    results = [
        (await store.sync.apply_central_host(Op.UPSERT, image)).conflict
        for image in (same_mac, leased_ip, edge_id, outside)
    ]
    assert [r.field if r else None for r in results] == ["mac", "ip", "id", "ip"]
    assert results[0] is not None
    assert results[0].edge_image is not None
    assert results[0].edge_image["id"] == mine.object_id
    assert results[1] is not None
    assert results[1].edge_image is not None
    assert results[1].edge_image["mac"] == "02:00:00:00:00:09"
    assert await store.last_seq() == last
    assert (await store.find_host("52:54:00:00:00:0a")).owner is Owner.EDGE
    again = await store.sync.apply_central_host(Op.UPSERT, same_mac)
    assert again.result is DownResult.CONFLICT
    assert again.conflict is not None
    assert again.conflict.id == results[0].id
    assert len(await store.sync.conflicts(open_only=True)) == 4
    await store.remove_host(mine.object_id, actor="t", reason="r")
    assert await store.sync.apply_central_host(Op.UPSERT, same_mac) == APPLIED
    open_ = await store.sync.conflicts(open_only=True)
    assert sorted(c.object_id for c in open_) == sorted(["e" * 32, mine.object_id, "f" * 32])


@pytest.mark.asyncio
async def test_malformed_central_image_is_a_conflict_not_a_crash(store: Store) -> None:
    last = await store.last_seq()
    bad_options = host(22, id="b" * 32, mac="52:54:00:00:00:22").to_image() | {"dhcp": {"mtu": [1]}}
    missing_ip = {k: v for k, v in host(23, id="a" * 32).to_image().items() if k != "ip"}
    results = [
        (await store.sync.apply_central_host(Op.UPSERT, i)).conflict
        for i in (bad_options, missing_ip)
    ]
    assert [r.field if r else None for r in results] == ["image", "ip"]
    assert await store.last_seq() == last
    assert {c.object_id for c in await store.sync.conflicts(open_only=True)} == {
        "b" * 32,
        "a" * 32,
    }


@pytest.mark.asyncio
async def test_resolving_a_conflict_keeps_edge_or_takes_central(store: Store) -> None:
    mine = await store.add_host(host(10), actor="t", reason="r")
    await lease_30_to_another_client(store)
    clash = host(21, id="d" * 32, mac=host(10).mac)
    by_mac = (await store.sync.apply_central_host(Op.UPSERT, clash.to_image())).conflict
    by_lease = (
        await store.sync.apply_central_host(Op.UPSERT, host(30, id="e" * 32).to_image())
    ).conflict
    assert by_mac is not None
    assert by_lease is not None
    last = await store.last_seq()
    with pytest.raises(Conflict, match=r"198\.18\.0\.30"):
        await store.sync.resolve_conflict(by_lease.id, keep=Owner.CENTRAL, actor="t", reason="r")
    assert await store.last_seq() == last
    kept = await store.sync.resolve_conflict(by_lease.id, keep=Owner.EDGE, actor="t", reason="r")
    assert kept.resolved_at == NOW
    taken = await store.sync.resolve_conflict(by_mac.id, keep=Owner.CENTRAL, actor="op",
                                              reason="rack moved")  # fmt: skip
    assert taken.resolved_at == NOW
    changes = await store.changes(after=last)
    assert [(c.op, c.object_id) for c in changes] == [
        (Op.DELETE, mine.object_id),
        (Op.UPSERT, "d" * 32),
    ]
    assert (await store.find_host(host(10).mac or "")).owner is Owner.CENTRAL
    assert await store.sync.conflicts(open_only=True) == []
    with pytest.raises(NotFound):
        await store.sync.resolve_conflict(by_mac.id, keep=Owner.EDGE, actor="t", reason="r")
