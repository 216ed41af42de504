"""Central's storage, chosen by URL: two implementations behind one ``CentralStore`` Protocol.

``sqlite:///abs/path.db`` (or ``sqlite://relative.db``) for one collector, and
``postgresql://user@host:port/db`` (asyncpg) so several stateless collectors share one
database. Both run the same SQL (``central.sql``) through a small ``Tx`` seam
(``central.schema``); only the DDL, the placeholder style and the row locks differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import aiosqlite

from central.schema import DDL, SITE_LAST_CONTACT, Tx, search_ddl
from central.sql import Outcome, SiteInfo, SqlCentralStore
from ddi.errors import ConfigError
from ddi.ipam.models import Host, Kind, Op
from sync.protocol import Batch, DownEntry, JsonObject, SnapshotPage

if TYPE_CHECKING:
    # The PostgreSQL driver is the ``central`` extra: imported only for a postgresql:// store,
    # so a collector on SQLite runs without it.
    import asyncpg


class CentralStore(Protocol):
    async def close(self) -> None: ...
    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...
    async def add_site(self, site: str, public_key: bytes, *, replace: bool = False) -> None: ...
    async def touch(self, site: str, when: float) -> None: ...
    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]: ...

    @property
    def dialect(self) -> str: ...
    async def site(self, site: str) -> SiteInfo | None: ...
    async def sites(self) -> list[SiteInfo]: ...
    async def apply_batch(self, site: str, batch: Batch) -> Outcome: ...
    async def apply_snapshot_page(self, site: str, page: SnapshotPage) -> Outcome: ...
    async def count_refusal(self, site: str, reason: str) -> None: ...
    async def refusals(self) -> dict[str, dict[str, int]]: ...
    async def changes(
        self, *, after: int, limit: int, site: str | None = None
    ) -> list[dict[str, Any]]: ...
    async def objects(self, site: str | None, kind: Kind | None = None) -> list[dict[str, Any]]: ...
    async def add_down(self, site: str, op: Op, host: Host) -> DownEntry: ...
    async def down(self, site: str, *, after: int, limit: int) -> list[DownEntry]: ...
    async def central_host(self, site: str, key: str) -> Host: ...
    async def add_conflicts(self, site: str, conflicts: Sequence[JsonObject]) -> int: ...
    async def conflicts(self, site: str | None = None) -> list[dict[str, Any]]: ...


async def open_store(url: str, *, base: Path | None = None) -> CentralStore:
    """Open (and create or migrate) the store that ``url`` names.

    Raises:
        ConfigError: an unsupported URL.
    """
    if url.startswith("sqlite://"):
        path = Path(url.removeprefix("sqlite://"))
        if not path.is_absolute() and base is not None:
            path = base / path
        return await SqliteCentralStore.open(path)
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresCentralStore.open(url)
    raise ConfigError("central.database", f"{url!r}: use sqlite:///PATH or postgresql://...")


# --- SQLite ---


_OBJECT_UPSERT = (
    "INSERT INTO object (site, kind, object_id, image, gseq) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (site, kind, object_id) DO UPDATE"
    " SET image = excluded.image, gseq = excluded.gseq"
)


class _SqliteTx:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def upsert_objects(self, site: str, rows: Sequence[tuple[str, str, str, int]]) -> None:
        await self._db.executemany(_OBJECT_UPSERT, [(site, *r) for r in rows])

    async def delete_objects(self, site: str, keys: Sequence[tuple[str, str]]) -> None:
        await self._db.executemany(
            "DELETE FROM object WHERE site = ? AND kind = ? AND object_id = ?",
            [(site, *k) for k in keys],
        )

    async def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        marks = ", ".join("?" * len(columns))
        await self._db.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
        )

    async def execute(self, sql: str, *args: Any) -> None:
        await self._db.execute(sql, args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._db.executemany(sql, rows)

    async def fetchall(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self._db.execute(sql, args) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    async def fetchone(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        async with self._db.execute(sql, args) as cur:
            row = await cur.fetchone()
        return None if row is None else tuple(row)


class SqliteCentralStore(SqlCentralStore):
    """One collector process: WAL, synchronous=FULL, one write transaction at a time. Reads
    (the feed, objects, the consoles) go through a second, read-only connection: in WAL mode
    a reader sees the last commit and neither waits for a writer nor holds one up."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock)
        self._db = db
        self._lock = asyncio.Lock()
        self._reader = reader
        self._read_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteCentralStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=10000")
            await db.executescript(DDL.format(blob="BLOB"))
            async with db.execute("SELECT name FROM pragma_table_info('site')") as cur:
                columns = {row[0] for row in await cur.fetchall()}
            if "last_contact" not in columns:
                await db.execute(SITE_LAST_CONTACT)
            await db.executescript(search_ddl("sqlite"))
            reader = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await db.close()
            raise
        try:
            await reader.execute("PRAGMA query_only=ON")
            await reader.execute("PRAGMA busy_timeout=10000")
        except BaseException:
            await reader.close()
            await db.close()
            raise
        return cls(db, reader)

    async def close(self) -> None:
        try:
            await self._reader.close()
        finally:
            await self._db.close()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        # One read at a time on the connection: a transaction's statements must not
        # interleave with another's. BEGIN (deferred) takes the snapshot at the first read.
        async with self._read_lock:
            reader = self._reader
            if reader.in_transaction:  # a read cancelled during its BEGIN left one open
                await reader.execute("ROLLBACK")
            await reader.execute("BEGIN")
            try:
                yield _SqliteTx(reader)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await reader.execute("ROLLBACK")
                raise
            await reader.execute("COMMIT")

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self._db)
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")


# --- PostgreSQL ---


def _numbered(sql: str) -> str:
    """``?`` placeholders → ``$1, $2, …`` (no literal in our SQL holds a ``?``)."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)


class _PostgresTx:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def upsert_objects(self, site: str, rows: Sequence[tuple[str, str, str, int]]) -> None:
        # One statement over arrays: one round trip instead of one per row.
        kinds, ids, images, gseqs = (list(column) for column in zip(*rows, strict=True))
        await self._conn.execute(
            "INSERT INTO object (site, kind, object_id, image, gseq)"
            " SELECT $1, k, o, i, g FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[])"
            " AS t(k, o, i, g) ON CONFLICT (site, kind, object_id) DO UPDATE"
            " SET image = excluded.image, gseq = excluded.gseq",
            site, kinds, ids, images, gseqs,
        )  # fmt: skip

    async def delete_objects(self, site: str, keys: Sequence[tuple[str, str]]) -> None:
        kinds, ids = (list(column) for column in zip(*keys, strict=True))
        await self._conn.execute(
            "DELETE FROM object WHERE site = $1 AND (kind, object_id) IN"
            " (SELECT k, o FROM unnest($2::text[], $3::text[]) AS t(k, o))",
            site, kinds, ids,
        )  # fmt: skip

    async def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        await self._conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(_numbered(sql), *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(_numbered(sql), rows)

    async def fetchall(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self._conn.fetch(_numbered(sql), *args)]

    async def fetchone(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        row = await self._conn.fetchrow(_numbered(sql), *args)
        return None if row is None else tuple(row)


class PostgresCentralStore(SqlCentralStore):
    """Shared by stateless collectors: row locks (``FOR UPDATE``) serialise each site and
    the feed counter, so any collector may take any batch."""

    _for_update = " FOR UPDATE"
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresCentralStore:
        """Raises: ConfigError: the ``central`` extra (asyncpg) is not installed."""
        try:
            import asyncpg  # the optional driver, for this store only
        except ImportError:
            raise ConfigError(
                "central.database",
                "postgresql:// needs the PostgreSQL driver: pip install 'ddi[central]'",
            ) from None
        pool = await asyncpg.create_pool(url, min_size=1, max_size=8)
        try:
            # One collector creates the schema; others wait on the advisory lock.
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(4242001)")
                await conn.execute(DDL.format(blob="BYTEA"))
                await conn.execute(
                    SITE_LAST_CONTACT.replace("ADD COLUMN", "ADD COLUMN IF NOT EXISTS")
                )
                await conn.execute(search_ddl("postgresql"))
        except BaseException:
            await pool.close()
            raise
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PostgresTx(conn)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            yield _PostgresTx(conn)


def new_host_id() -> str:
    return uuid.uuid4().hex


__all__ = [
    "CentralStore",
    "PostgresCentralStore",
    "SqliteCentralStore",
    "new_host_id",
    "open_store",
]
