"""The store's writer thread and the lease batch's one-call commit (``ddi.ipam.transaction``),
on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import pytest_asyncio

from ddi.ipam.models import Lease, Subnet
from ddi.ipam.store import Store
from ddi.ipam.transaction import Writer, commit_lease_rows, lease_batch

NOW = 1_800_000_000.0


def leases(first: int, count: int) -> list[Lease]:
    """Leases on 198.18.1.0 + ``first`` on, one MAC each."""
    return [
        Lease(
            ip=IPv4Address("198.18.1.0") + n,
            mac=f"02:00:00:00:{n >> 8:02x}:{n & 255:02x}",
            start=NOW,
            end=NOW + 600,
            subnet="lan",
        )
        for n in range(first, first + count)
    ]


@pytest_asyncio.fixture
async def writer(tmp_path: Path) -> AsyncIterator[Writer]:
    path = tmp_path / "ddi.sqlite"
    async with await Store.open(path) as store:  # creates the schema
        await store.sync_subnets([Subnet(name="lan", cidr=IPv4Network("198.18.0.0/16"))],
                                 actor="config", reason="")  # fmt: skip
    opened = await Writer.open(path)
    yield opened
    await opened.close()


async def commit(writer: Writer, batch: list[Lease]) -> tuple[int, int]:
    _, texts, rows = lease_batch(batch)
    return await writer.run(commit_lease_rows, rows, texts, "dhcp", NOW)


@pytest.mark.asyncio
async def test_the_writer_runs_each_call_in_one_thread_of_its_own(writer: Writer) -> None:
    def where(db: sqlite3.Connection) -> int:
        return threading.get_ident()

    first, second = await asyncio.gather(writer.run(where), writer.run(where))
    assert first == second != threading.get_ident()


@pytest.mark.asyncio
async def test_a_lease_batch_compiles_its_statements_once(writer: Writer) -> None:
    # SQLite calls the authorizer while it compiles a statement, never when it runs a prepared
    # one: a batch of a size seen before must compile nothing.
    compiled: list[str] = []

    def watch(db: sqlite3.Connection) -> None:
        def authorize(action: int, table: str | None, *_: object) -> int:
            if action == sqlite3.SQLITE_INSERT:
                compiled.append(str(table))
            return sqlite3.SQLITE_OK

        db.set_authorizer(authorize)

    await writer.run(watch)
    before, _ = await commit(writer, leases(0, 16))
    assert sorted(set(compiled)) == ["change", "lease"]
    compiled.clear()
    seq, _ = await commit(writer, leases(16, 16))
    assert compiled == []
    assert seq == before + 16  # the change log numbering followed the first batch
    await commit(writer, leases(32, 3))  # a new size: compiled once, then kept
    assert compiled
    compiled.clear()
    await commit(writer, leases(35, 3))
    assert compiled == []


@pytest.mark.asyncio
async def test_a_batch_that_fails_before_its_commit_leaves_nothing(writer: Writer) -> None:
    def count(db: sqlite3.Connection) -> tuple[int, int, bool]:
        leases_n = db.execute("SELECT count(*) FROM lease").fetchone()[0]
        changes_n = db.execute("SELECT count(*) FROM change WHERE kind = 'lease'").fetchone()[0]
        return leases_n, changes_n, db.in_transaction

    def fail() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    _, texts, rows = lease_batch(leases(0, 8))
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        await writer.run(commit_lease_rows, rows, texts, "dhcp", NOW, None, fail)
    assert await writer.run(count) == (0, 0, False)
    await commit(writer, leases(0, 8))  # the writer goes on
    assert await writer.run(count) == (8, 8, False)


@pytest.mark.asyncio
async def test_a_call_cancelled_before_its_turn_does_not_run(writer: Writer) -> None:
    ran: list[str] = []
    gate = threading.Event()

    def block(db: sqlite3.Connection) -> None:
        gate.wait(5)

    def mark(db: sqlite3.Connection, name: str) -> None:
        ran.append(name)

    blocking = asyncio.ensure_future(writer.run(block))
    cancelled = asyncio.ensure_future(writer.run(mark, "cancelled"))
    await asyncio.sleep(0)  # both queued behind the blocking call
    cancelled.cancel()
    gate.set()
    await blocking
    await writer.run(mark, "after")
    assert ran == ["after"]
