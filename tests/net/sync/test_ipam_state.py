"""The IPAM sync's durable state in central's store (central.nautobot.state): the cursor, the
lease that lets one collector run the task, and the claims; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from central.nautobot import mapping, state
from central.store import open_store

T = "nautobot"
HOST = {"id": "a" * 32, "ip": "198.18.0.10", "hostname": "h", "mac": "52:54:00:00:00:10"}


@pytest.mark.asyncio
async def test_one_holder_at_a_time_and_takeover_after_expiry(central_db: str) -> None:
    one, two = await open_store(central_db), await open_store(central_db)
    try:
        assert await state.acquire(one, T, "a", now=100.0, ttl=15)
        assert not await state.acquire(two, T, "b", now=101.0, ttl=15)
        assert await state.acquire(one, T, "a", now=110.0, ttl=15)  # renewed to 125
        assert not await state.acquire(two, T, "b", now=120.0, ttl=15)
        assert await state.acquire(two, T, "b", now=126.0, ttl=15)  # a died: b takes over
        # a comes back and tries to record a round: refused, the cursor stays.
        with pytest.raises(state.LostLease):
            await state.commit(one, T, "a", gseq=5, claims={})
        assert await state.cursor(two, T) == 0
        await state.commit(two, T, "b", gseq=5, claims={})
        assert await state.cursor(one, T) == 5
        await state.release(two, T, "b")
        assert await state.acquire(one, T, "a", now=127.0, ttl=15)  # at once after a release
    finally:
        await one.close()
        await two.close()


@pytest.mark.asyncio
async def test_racing_takers_get_one_lease(central_db: str) -> None:
    stores = [await open_store(central_db) for _ in range(4)]
    try:
        won = await asyncio.gather(
            *(state.acquire(s, T, f"c{i}", now=100.0, ttl=15) for i, s in enumerate(stores))
        )
        assert sorted(won) == [False, False, False, True]
    finally:
        for s in stores:
            await s.close()


@pytest.mark.asyncio
async def test_claims_are_recorded_with_the_cursor_and_survive_a_rewind(central_db: str) -> None:
    store = await open_store(central_db)
    try:
        assert await state.acquire(store, T, "a", now=100.0, ttl=15)
        obj = ("s1", "host", HOST["id"])
        claims = mapping.claims("host", HOST["id"], HOST)
        await state.commit(store, T, "a", gseq=3, claims={obj: claims})
        assert await state.claims_of(store, T, [obj]) == {obj: claims}
        on = await state.claims_on(store, T, [("s1", "ip:198.18.0.10"), ("s1", "ip:198.18.0.11")])
        assert on == {("s1", "ip:198.18.0.10"): list(claims), ("s1", "ip:198.18.0.11"): []}
        # Moving the cursor back is refused by commit (it only moves forward) but not by
        # rewind, which keeps the claims: a replay merges with them.
        await state.rewind(store, T, 0)
        assert await state.cursor(store, T) == 0
        assert await state.claims_of(store, T, [obj]) == {obj: claims}
        await state.commit(store, T, "a", gseq=1, claims={obj: ()})
        assert await state.claims_of(store, T, [obj]) == {}
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_database_of_the_previous_version_gains_the_tables(central_db: str) -> None:
    store = await open_store(central_db)
    async with store.transaction() as tx:
        await tx.execute("DROP TABLE ipam_claim")
        await tx.execute("DROP TABLE ipam_sync")
    await store.close()
    store = await open_store(central_db)
    try:
        assert await state.cursor(store, T) == 0
        assert await state.acquire(store, T, "a", now=1.0, ttl=15)
    finally:
        await store.close()
