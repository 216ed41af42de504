"""The IPAM store: the one writer of the site database (SQLite; the writer connection in a
thread of its own, the reader through aiosqlite).

This module is the transaction machinery, opening and closing, listeners and reads; the writes
of each kind of object are in ``store_hosts``, ``store_leases``, ``store_records`` and
``store_subnets`` (each a function run inside a :class:`Transaction`), the sync agent's in
``store_sync`` (``store.sync``).

Rules:
* Every mutation is one :meth:`Store.transaction`: one ``BEGIN IMMEDIATE … COMMIT`` on the
  single writer connection that writes the row(s) *and* their change-log entries. A refusal
  (Conflict, NotFound, Invalid) or any other failure rolls the whole transaction back: neither
  row nor change remains. There is no other way to write, the DHCP lease hot path included.
* Writes are serialised by one ``asyncio.Lock``; listeners (``subscribe``) are called after each
  commit, synchronously and in commit order, with that transaction's changes.
* ``change.seq`` comes from SQLite's AUTOINCREMENT sequence: strictly increasing, never reused,
  across restarts and after old entries are deleted.
* Durability: WAL with ``synchronous=FULL``; a method returns only once its commit is on disk.
  Lease throughput comes from :meth:`Store.commit_leases` committing a whole batch at once
  (:meth:`Transaction.write_leases`: a few multi-row statements per batch).
* ``dry_run=True`` runs the same transaction, then rolls it back: the returned change (seq 0) is
  exactly what would have been written, checked by the same code and the same constraints.
* Reads use a second, read-only connection, so they only ever see committed state.
* Only the public API of sqlite3, aiosqlite and asyncio is used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiosqlite

from ddi import metrics
from ddi.errors import Invalid, NotFound
from ddi.ipam import schema, store_hosts, store_leases, store_records, store_subnets
from ddi.ipam.models import (
    Change,
    Host,
    Kind,
    Lease,
    LeaseImage,
    Op,
    Record,
    Subnet,
)
from ddi.ipam.rows import (
    CHANGE_COLUMNS,
    CHANGE_INSERT,
    HOST_COLUMNS,
    LEASE_COLUMNS,
    LEASE_UPSERT,
    RECORD_COLUMNS,
    Shared,
    change_from_row,
    encode_json,
    host_from_row,
    image_texts,
    lease_from_row,
    record_from_row,
    rows_sql,
)
from ddi.ipam.store_sync import StoreSync
from ddi.ipam.write_checks import check_subnets
from ddi.values import slot_builder

__all__ = ["LeaseImage", "Listener", "Snapshot", "Store", "Transaction"]

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[Change]], None]
_T = TypeVar("_T")

BUSY_TIMEOUT_MS = 5000
READ_CHUNK = 2000
"""Rows per fetch when loading a whole table."""
_BATCH_ROWS = 500
"""Rows per multi-row INSERT in a lease batch (9 bound values a row, well under SQLite's
32766-variable limit)."""
_SEQ_AND_EPOCH = (
    "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'change'),"
    " (SELECT value FROM meta WHERE key = 'epoch')"
)
_LEASE_KIND = Kind.LEASE.value
_UPSERT_OP = Op.UPSERT.value
_new_change = slot_builder(Change)


def _ip_key(value: Host | Lease) -> int:
    return int(value.ip)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """All objects of the store as of change ``last_seq`` (no write in between)."""

    subnets: list[Subnet]
    hosts: list[Host]
    leases: list[Lease]
    records: list[Record]
    last_seq: int


# --- the writer ---------------------------------------------------------------------------------


class _Writer:
    """The writer connection, in a thread of its own (a one-worker executor): each call runs a
    function of the connection there, in the order the calls were made. One function may run
    several statements for one round trip, so the event loop (and the GIL) is waited for once,
    not once a statement: what keeps the lease group commit fast when the loop is busy.
    (aiosqlite, which the reader uses, runs one statement a call in public.)"""

    def __init__(self, executor: ThreadPoolExecutor, db: sqlite3.Connection) -> None:
        self._executor = executor
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> _Writer:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ddi-store-writer")
        try:
            db = await asyncio.get_running_loop().run_in_executor(executor, _connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, db)

    async def run(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(connection, *args)`` in the writer's thread. A call cancelled before its
        turn does not run; one already running completes."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, self._db, *args)

    async def close(self) -> None:
        await self.run(sqlite3.Connection.close)
        self._executor.shutdown(wait=True)  # the worker is idle: it only exits


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        db.close()
        raise
    return db


# Functions run in the writer's thread, each one round trip.


def _statement(db: sqlite3.Connection, sql: str) -> None:
    db.execute(sql)


def _fetch(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    return db.execute(sql, params).fetchall()


def _execute(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> tuple[int, int]:
    cursor = db.execute(sql, params)
    return cursor.rowcount, cursor.lastrowid or 0


def _executemany(db: sqlite3.Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    db.executemany(sql, rows)


def _begin(db: sqlite3.Connection) -> tuple[int, int]:
    """BEGIN IMMEDIATE; the last seq written and the epoch."""
    db.execute("BEGIN IMMEDIATE")
    seq, epoch = db.execute(_SEQ_AND_EPOCH).fetchone()
    return int(seq or 0), int(epoch)


def _begin_then(
    db: sqlite3.Connection, function: Callable[..., _T], *args: Any
) -> tuple[int, int, _T | None, sqlite3.Error | None]:
    """:func:`_begin`, then ``function(db, *args)``: a transaction's first call. A database
    error of ``function`` is returned with the seq and epoch read."""
    seq, epoch = _begin(db)
    try:
        return seq, epoch, function(db, *args), None
    except sqlite3.Error as exc:
        return seq, epoch, None, exc


def _begin_then_leases(
    db: sqlite3.Connection,
    rows: Sequence[tuple[Any, ...]],
    texts: Sequence[str],
    actor: str,
    now: float,
) -> tuple[int, int, None, sqlite3.Error | None]:
    """:func:`_begin`, then :func:`_write_lease_rows` from the seq read."""
    seq, epoch = _begin(db)
    try:
        _write_lease_rows(db, rows, texts, actor, now, seq + 1, epoch)
    except sqlite3.Error as exc:
        return seq, epoch, None, exc
    return seq, epoch, None, None


def _write_lease_rows(
    db: sqlite3.Connection,
    rows: Sequence[tuple[Any, ...]],
    texts: Sequence[str],
    actor: str,
    now: float,
    first: int,
    epoch: int,
) -> None:
    """The lease rows and their change rows (seq ``first`` on), one multi-row statement per
    table for up to :data:`_BATCH_ROWS` leases."""
    for start in range(0, len(rows), _BATCH_ROWS):
        chunk = rows[start : start + _BATCH_ROWS]
        db.execute(rows_sql(LEASE_UPSERT, 9, len(chunk)), [v for row in chunk for v in row])
        values: list[Any] = []
        for i in range(start, start + len(chunk)):
            values += (first + i, epoch, _LEASE_KIND, rows[i][0], _UPSERT_OP, texts[i], actor,
                       "", now)  # fmt: skip
        db.execute(rows_sql(CHANGE_INSERT, 9, len(chunk)), values)


# --- transactions -----------------------------------------------------------------------------


class Transaction:
    """One open write transaction (from :meth:`Store.transaction`): statements run on the
    writer connection, and the change entries it logs, written with the rest before the
    commit. ``BEGIN IMMEDIATE`` runs with the first statement, in the same round trip."""

    def __init__(self, writer: _Writer, *, now: float) -> None:
        self._writer = writer
        self.now = now
        """The store's clock when the transaction began."""
        self._epoch: int | None = None
        self._seq = 0
        self._sent = False
        self.changes: list[Change] = []
        self._flushed = 0

    @property
    def epoch(self) -> int:
        if self._epoch is None:
            raise RuntimeError("the transaction has run no statement yet")
        return self._epoch

    @property
    def begun(self) -> bool:
        """Whether a statement (and so BEGIN) may have run: a rollback is then due."""
        return self._sent

    def log(
        self,
        kind: Kind,
        object_id: str,
        op: Op,
        image: Mapping[str, Any],
        *,
        actor: str,
        reason: str,
    ) -> Change:
        """Queue a change entry; it is written with the rest before the commit. Only after a
        statement has run (the seq and epoch are read with the first)."""
        epoch = self.epoch
        self._seq += 1
        change = Change(
            epoch=epoch,
            seq=self._seq,
            kind=kind,
            object_id=object_id,
            op=op,
            image=image,
            actor=actor,
            reason=reason,
            time=self.now,
        )
        self.changes.append(change)
        return change

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._run(_fetch, sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        rowcount, _ = await self._run(_execute, sql, params)
        return rowcount

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT; returns the new row's id."""
        _, rowid = await self._run(_execute, sql, params)
        return rowid

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._run(_executemany, sql, list(rows))

    async def subnets(self) -> list[Subnet]:
        rows = await self.fetch("SELECT image FROM subnet")
        return [Subnet.from_image(json.loads(image)) for (image,) in rows]

    async def write_leases(self, leases: Sequence[Lease], *, actor: str) -> list[Change]:
        """Upsert ``leases`` by IP, each with its change entry: the DHCP group commit.

        The hot path: one multi-row statement per table for up to :data:`_BATCH_ROWS` leases,
        all in one call to the writer's thread (with BEGIN when it is the transaction's first),
        so a batch costs a handful of SQLite steps and one round trip; the images are encoded
        in one call.

        Raises:
            Invalid: a lease the database refuses (unknown state, end before start); the
                transaction must then be rolled back (``Store.transaction`` does).
        """
        await self._flush()
        images = [LeaseImage(lease) for lease in leases]
        texts = image_texts(images)
        rows = [
            (image["ip"], lease.mac, lease.client_id, lease.circuit_id, lease.hostname,
             image["state"], lease.start, lease.end, lease.subnet)
            for lease, image in zip(leases, images, strict=True)
        ]  # fmt: skip
        try:
            if self._epoch is None:  # the first statement: BEGIN and the seq in the same call
                self._sent = True
                header = await self._writer.run(_begin_then_leases, rows, texts, actor, self.now)
                self._seq, self._epoch, _, error = header
                if error is not None:
                    raise error
            else:
                await self._writer.run(
                    _write_lease_rows, rows, texts, actor, self.now, self._seq + 1, self._epoch
                )
        except sqlite3.IntegrityError as exc:
            raise Invalid("leases", f"batch of {len(leases)}", f"refused: {exc}") from None
        epoch, first, now = self.epoch, self._seq + 1, self.now
        changes = [
            _new_change(  # every field given: built through its slots (ddi.values)
                epoch=epoch,
                seq=first + i,
                kind=Kind.LEASE,
                object_id=image["ip"],
                op=Op.UPSERT,
                image=image,
                actor=actor,
                reason="",
                time=now,
            )
            for i, image in enumerate(images)
        ]
        self._seq += len(changes)
        self.changes += changes
        self._flushed = len(self.changes)
        return changes

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(connection, *args)`` in the writer's thread; the transaction's first
        call runs BEGIN IMMEDIATE and reads the seq and epoch in the same round trip."""
        if self._epoch is not None:
            return await self._writer.run(function, *args)
        self._sent = True
        seq, epoch, result, error = await self._writer.run(_begin_then, function, *args)
        self._seq, self._epoch = seq, epoch
        if error is not None:
            raise error
        return result  # type: ignore[return-value]  # None only with an error

    async def _flush(self) -> None:
        """Write the change entries logged since the last flush."""
        pending = self.changes[self._flushed :]
        if not pending:
            return
        await self.executemany(
            CHANGE_INSERT,
            [
                (c.seq, c.epoch, c.kind.value, c.object_id, c.op.value, encode_json(c.image),
                 c.actor, c.reason, c.time)
                for c in pending
            ],
        )  # fmt: skip
        self._flushed = len(self.changes)


def migrate(db: sqlite3.Connection) -> int:
    """Bring ``db`` (opened with ``isolation_level=None``) to :data:`schema.SCHEMA_VERSION`,
    running each pending migration and the version bump in one transaction.

    Returns:
        The version the database was at before.

    Raises:
        RuntimeError: the database was written by a newer ddi.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        (found,) = db.execute("PRAGMA user_version").fetchone()
        if found > schema.SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema version {found} is newer than this ddi ({schema.SCHEMA_VERSION})"
            )
        for version in range(found, schema.SCHEMA_VERSION):
            for statement in _statements(schema.MIGRATIONS[version]):
                db.execute(statement)
        # PRAGMA takes no bound parameters; the value is our own integer.
        db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION:d}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return int(found)


def _statements(script: str) -> list[str]:
    """Split a script into statements (``executescript`` would commit our transaction)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


def _prepare(path: Path) -> None:
    """Create or migrate the database file (blocking; run in a thread)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"{path}: cannot use WAL journal mode (got {mode})")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        migrate(db)
    finally:
        db.close()


class Store:
    """The site's IPAM database. Open with ``await Store.open(path)``; close with
    :meth:`close` or ``async with await Store.open(path) as store:``. The sync agent's reads
    and writes are ``store.sync`` (:class:`~ddi.ipam.store_sync.StoreSync`)."""

    def __init__(
        self,
        path: Path,
        writer: _Writer,
        reader: aiosqlite.Connection,
        *,
        clock: Callable[[], float],
        domain: str | None,
    ) -> None:
        self.path = path
        self.domain = domain.lower().rstrip(".") if domain else None
        """The site domain; a reservation's name is ``hostname.<domain>``."""
        self._writer = writer
        self._reader = reader
        self._clock = clock
        self._lock = asyncio.Lock()
        self._listeners: list[Listener] = []
        self._closed = False
        self.sync = StoreSync(
            transaction=self.transaction,
            read=self._read,
            check_host=functools.partial(store_hosts.check_host, domain=self.domain),
        )
        """The sync agent's reads and writes."""

    # --- lifecycle ---

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        domain: str | None = None,
    ) -> Store:
        """Open (creating or migrating) the database at ``path``.

        Args:
            clock: wall-clock seconds, used for change times and "active lease" checks.
            domain: the site domain, so that records and reservations can be checked for
                names they would share.
        """
        path = Path(path)
        await asyncio.to_thread(_prepare, path)
        writer = await _Writer.open(path)
        try:
            reader = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await writer.close()
            raise
        try:
            for pragma in (
                f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}",
                "PRAGMA query_only = ON",
            ):
                await reader.execute(pragma)
        except BaseException:
            await reader.close()
            await writer.close()
            raise
        return cls(path, writer, reader, clock=clock, domain=domain)

    async def close(self) -> None:
        """Wait for the write in progress, if any, then close both connections."""
        if self._closed:
            return
        async with self._lock:
            self._closed = True
            await self._reader.close()
            await self._writer.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(changes)`` after every committed transaction, in commit order."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    # --- reads (committed state only) ---

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self._reader.execute_fetchall(sql, params))

    async def _read_each(self, sql: str, convert: Callable[[Any], _T]) -> list[_T]:
        """Every row of ``sql`` through ``convert``, fetched :data:`READ_CHUNK` rows at a time."""
        out: list[_T] = []
        async with self._reader.execute(sql) as cursor:
            while rows := await cursor.fetchmany(READ_CHUNK):
                out.extend(map(convert, rows))
        return out

    async def subnets(self) -> list[Subnet]:
        rows = await self._read("SELECT image FROM subnet")
        subnets = [Subnet.from_image(json.loads(image)) for (image,) in rows]
        return sorted(subnets, key=lambda s: (s.cidr, s.name))

    async def hosts(self, *, shared: Shared | None = None) -> list[Host]:
        """Every reservation by address; ``shared`` loads one copy of values repeated across
        the rows read with it (the start-up snapshot)."""
        convert = functools.partial(host_from_row, shared=shared)
        hosts = await self._read_each(f"SELECT {HOST_COLUMNS} FROM host", convert)
        return sorted(hosts, key=_ip_key)

    async def leases(self, *, shared: Shared | None = None) -> list[Lease]:
        convert = functools.partial(lease_from_row, shared=shared)
        leases = await self._read_each(f"SELECT {LEASE_COLUMNS} FROM lease", convert)
        return sorted(leases, key=_ip_key)

    async def records(self) -> list[Record]:
        records = await self._read_each(f"SELECT {RECORD_COLUMNS} FROM record", record_from_row)
        return sorted(records, key=lambda r: (r.name, r.rtype, r.value))

    async def find_host(self, key: str) -> Host:
        """The host whose id, MAC, IP, hostname, client-id or circuit-id is ``key``.

        Raises:
            NotFound: no host matches.
        """
        return await store_hosts.find_host(self._read, key)

    async def find_record(self, key: str) -> Record:
        """The record with id ``key``. Raises NotFound."""
        rows = await self._read(f"SELECT {RECORD_COLUMNS} FROM record WHERE id = ?", (key,))
        if not rows:
            raise NotFound("record", key)
        return record_from_row(rows[0])

    async def lease(self, ip: IPv4Address) -> Lease | None:
        rows = await self._read(f"SELECT {LEASE_COLUMNS} FROM lease WHERE ip = ?", (str(ip),))
        return lease_from_row(rows[0]) if rows else None

    async def changes(self, *, after: int = 0, limit: int = 1000) -> list[Change]:
        """Change-log entries with ``seq > after``, oldest first, at most ``limit``."""
        rows = await self._read(
            f"SELECT {CHANGE_COLUMNS} FROM change WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [change_from_row(row) for row in rows]

    async def last_seq(self) -> int:
        """The highest seq ever written (0 for a new store), even if its entry was deleted."""
        rows = await self._read("SELECT seq FROM sqlite_sequence WHERE name = 'change'")
        return int(rows[0][0]) if rows else 0

    async def epoch(self) -> int:
        rows = await self._read("SELECT value FROM meta WHERE key = 'epoch'")
        return int(rows[0][0])

    async def snapshot(self) -> Snapshot:
        """Every object and the seq they reflect, with no write committing in between."""
        async with self._lock:
            # The snapshot feeds long-lived indexes: rows are read in chunks (no peak of
            # temporaries to fragment the heap) and repeated values are loaded once.
            shared = Shared()
            hosts = await self.hosts(shared=shared)
            leases = await self.leases(shared=shared)
            records = await self.records()
            # A one-off read of every table: its pages need not stay in the reader's cache.
            await self._reader.execute("PRAGMA shrink_memory")
            return Snapshot(
                subnets=await self.subnets(),
                hosts=hosts,
                leases=leases,
                records=records,
                last_seq=await self.last_seq(),
            )

    # --- the write path ---

    @asynccontextmanager
    async def transaction(self, *, dry_run: bool = False) -> AsyncIterator[Transaction]:
        """One ``BEGIN IMMEDIATE … COMMIT`` under the writer lock; rolled back on any
        exception or for a dry run (the changes then carry seq 0).

        After a commit the listeners get the changes. The commit and the notification run in
        a shielded task, so a caller cancelled while awaiting the commit cannot leave a
        committed change unannounced. A caller cancelled earlier gets a rollback: the writer
        runs calls in the order they were made (one cancelled before its turn does not run),
        so the ROLLBACK runs after whatever statement the cancelled await had started.

        Raises:
            RuntimeError: the store is closed.
        """
        async with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            tx = Transaction(self._writer, now=self._clock())
            try:
                yield tx
                await tx._flush()
                await self._before_commit(tx)
            except BaseException:
                if tx.begun:
                    await self._rollback()
                raise
            if not tx.begun:  # no statement ran: nothing to commit
                return
            if dry_run:
                await self._rollback()
                tx.changes[:] = [dataclasses.replace(c, seq=0) for c in tx.changes]
                return
            await asyncio.shield(asyncio.ensure_future(self._commit(tx.changes)))

    async def _commit(self, changes: Sequence[Change]) -> None:
        try:
            await self._writer.run(_statement, "COMMIT")
        except BaseException:
            # SQLite leaves the transaction open after some failed COMMITs (SQLITE_BUSY);
            # nothing of it may linger into the next writer's transaction.
            log.exception("commit failed")
            await self._rollback()
            raise
        if changes:
            self._notify(changes)

    async def _rollback(self) -> None:
        """ROLLBACK, quietly accepting that no transaction was open (SQLite already rolled
        back after an I/O error, or a cancelled BEGIN never ran)."""
        with suppress(sqlite3.OperationalError):
            await self._writer.run(_statement, "ROLLBACK")

    def _notify(self, changes: Sequence[Change]) -> None:
        # The changes are committed: one broken view must not hide that from the caller or from
        # the other listeners. A failure is logged with its traceback, never silent.
        for listener in list(self._listeners):
            try:
                listener(changes)
            except Exception:  # a listener bug (R9): logged with traceback, counted
                log.exception("change listener %r failed", listener)
                metrics.INTERNAL_ERRORS.labels(area="store").inc()

    async def _before_commit(self, tx: Transaction) -> None:
        """Called with every row and change written, just before COMMIT (a test seam)."""

    # --- subnets ---

    async def sync_subnets(
        self, subnets: Sequence[Subnet], *, actor: str, reason: str
    ) -> list[Change]:
        """Make the stored subnets exactly ``subnets`` (from the configuration).

        New and changed subnets are upserted, missing ones deleted; unchanged ones write
        nothing. Reservations and leases in a removed subnet are kept (a configuration typo must
        not delete reservations); they are refused nothing and served nothing until it returns.

        Raises:
            Invalid: duplicate names, overlapping networks, a gateway or pool outside its subnet.
        """
        check_subnets(subnets)
        async with self.transaction() as tx:
            await store_subnets.sync_subnets(tx, subnets, actor=actor, reason=reason)
        return tx.changes

    # --- hosts ---

    async def add_host(
        self, host: Host, *, actor: str, reason: str, dry_run: bool = False
    ) -> Change:
        """Add a reservation; ``host.id == ""`` gets a new id.

        Raises:
            Invalid: a malformed field, no client key, an IP outside every subnet or a
                network/broadcast address.
            Conflict: the IP is the subnet's gateway, reserved by another host or actively
                leased to another client; the MAC, client-id, circuit-id or hostname is held by
                another host; or a static A/AAAA/CNAME record has the host's name.
        """
        host = store_hosts.new_host(host)
        async with self.transaction(dry_run=dry_run) as tx:
            await store_hosts.add_host(tx, host, domain=self.domain, actor=actor, reason=reason)
        return tx.changes[0]

    async def update_host(
        self,
        key: str,
        fields: Mapping[str, Any],
        *,
        actor: str,
        reason: str,
        dry_run: bool = False,
    ) -> Change | None:
        """Change some fields of the host found by ``key``; its version goes up by one.

        ``fields`` may hold ip, hostname, mac, client_id, circuit_id, boot, boot_file,
        boot_script and dhcp; an empty string or None clears an optional field. ``dhcp`` is
        merged into the host's options: each key given is set, a key given as None returns
        to the subnet's value, and ``dhcp`` None (or ``{}``) returns them all. The result is
        validated as :meth:`add_host` does, ignoring the host itself.

        Returns:
            The change written, or None when the fields already hold these values: then
            nothing is written, the version stays and no change-log entry is made.

        Raises:
            NotFound: no host matches ``key``.
            Invalid, Conflict: as for :meth:`add_host`, a field that cannot be changed, or a
                central-owned host changed by an actor other than ``central``.
        """
        store_hosts.check_update_fields(fields)
        async with self.transaction(dry_run=dry_run) as tx:
            await store_hosts.update_host(
                tx, key, fields, domain=self.domain, actor=actor, reason=reason
            )
        return tx.changes[0] if tx.changes else None

    async def remove_host(
        self, key: str, *, actor: str, reason: str, dry_run: bool = False
    ) -> Change:
        """Delete the host found by ``key``; the change carries its last image.

        Raises:
            NotFound: no host matches ``key``.
            Invalid: the host is central-owned and ``actor`` is not ``central``.
        """
        async with self.transaction(dry_run=dry_run) as tx:
            await store_hosts.remove_host(tx, key, actor=actor, reason=reason)
        return tx.changes[0]

    # --- leases ---

    async def commit_leases(self, leases: Sequence[Lease], *, actor: str = "dhcp") -> list[Change]:
        """Upsert ``leases`` (by IP) in ONE transaction with one fsync: the group commit.

        Each lease gets its own change entry. Leases come from the DHCP engine, which has
        already decided them; the database's CHECK constraints guard their shape.

        Raises:
            Invalid: a lease the database refuses (unknown state, end before start); the
                whole batch is then rolled back.
        """
        if not leases:
            return []
        async with self.transaction() as tx:
            await tx.write_leases(leases, actor=actor)
        return tx.changes

    async def release_lease(
        self, ip: IPv4Address, *, actor: str, reason: str, dry_run: bool = False
    ) -> Change:
        """Mark the bound lease on ``ip`` released, ending now.

        Raises:
            NotFound: no lease on ``ip``.
            Invalid: the lease is not bound.
        """
        async with self.transaction(dry_run=dry_run) as tx:
            await store_leases.release_lease(tx, ip, actor=actor, reason=reason)
        return tx.changes[0]

    async def expire_leases(self, now: float) -> list[Change]:
        """Mark every bound lease with ``end <= now`` expired; one change per lease."""
        async with self.transaction() as tx:
            await store_leases.expire_leases(tx, now)
        return tx.changes

    # --- records ---

    async def add_record(
        self, record: Record, *, actor: str, reason: str, dry_run: bool = False
    ) -> Change:
        """Add a static DNS record; ``record.id == ""`` gets a new id.

        Raises:
            Invalid: unknown type, bad name, a value that does not fit the type, bad TTL.
            Conflict: the same record exists; a CNAME would share its name with other records
                or another record a CNAME's name (RFC 1034 §3.6.2); an A, AAAA or CNAME would
                take a reservation's name.
        """
        record = store_records.new_record(record)
        async with self.transaction(dry_run=dry_run) as tx:
            await store_records.add_record(
                tx, record, domain=self.domain, actor=actor, reason=reason
            )
        return tx.changes[0]

    async def remove_record(
        self, key: str, *, actor: str, reason: str, dry_run: bool = False
    ) -> Change:
        """Delete the record with id ``key``.

        Raises:
            NotFound: no such record.
            Invalid: the record is central-owned and ``actor`` is not ``central``.
        """
        async with self.transaction(dry_run=dry_run) as tx:
            await store_records.remove_record(tx, key, actor=actor, reason=reason)
        return tx.changes[0]
