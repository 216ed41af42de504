"""The store's transaction machinery: the writer connection in a thread of its own and the
:class:`Transaction` every write of ``ddi.ipam.store`` runs in (see its docstring for the rules)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TypeVar

from ddi.errors import Invalid, StoreWriteFailed
from ddi.ipam.models import (
    Change,
    Kind,
    Lease,
    LeaseImage,
    Op,
    Subnet,
)
from ddi.ipam.models6 import Lease6
from ddi.ipam.rows import (
    CHANGE_INSERT,
    LEASE_UPSERT,
    encode_json,
    image_texts,
    rows_sql,
)
from ddi.ipam.rows6 import LEASE6_UPSERT, lease6_batch
from ddi.values import slot_builder

_T = TypeVar("_T")

BUSY_TIMEOUT_MS = 5000
WAL_SIZE_LIMIT = 4 * 1024 * 1024
_BATCH_ROWS = 500
"""Rows per multi-row INSERT in a lease batch (9 bound values a row, well under SQLite's
32766-variable limit)."""
_SEQ_AND_EPOCH = (
    "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'change'),"
    " (SELECT value FROM meta WHERE key = 'epoch')"
)
_SEQ_BUMP = "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'change'"
_LEASE_KIND = Kind.LEASE.value
_LEASE6_KIND = Kind.LEASE6.value
_UPSERT_OP = Op.UPSERT.value
_new_change = slot_builder(Change)


# --- errors the disk causes ---

_WRITE_FAILURES = {sqlite3.SQLITE_FULL: "disk full", sqlite3.SQLITE_IOERR: "I/O error"}


def write_failure(exc: BaseException) -> StoreWriteFailed | None:
    """The named error for a SQLite error that means the disk refused the write, else None.

    Extended result codes (``SQLITE_IOERR_WRITE``, ``SQLITE_IOERR_FSYNC``...) carry the
    primary code in their low byte.
    """
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    cause = _WRITE_FAILURES.get(code & 0xFF)
    return None if cause is None else StoreWriteFailed(cause)


# --- the writer ---------------------------------------------------------------------------------


class Writer:
    """The writer connection, in a thread of its own: each call runs a function of the
    connection there, in the order the calls were made. One function may run several
    statements for one round trip, so the event loop (and the GIL) is waited for once, not once
    a statement: what keeps the lease group commit fast when the loop is busy.

    The thread takes jobs from a queue and hands each result back with one
    ``call_soon_threadsafe``: no executor, no concurrent future chained to an asyncio one, on
    the path every lease batch takes."""

    def __init__(self, jobs: SimpleQueue[_Job | None], thread: threading.Thread) -> None:
        self._jobs = jobs
        self._thread = thread

    @classmethod
    async def open(cls, path: Path) -> Writer:
        jobs: SimpleQueue[_Job | None] = SimpleQueue()
        opened: asyncio.Future[sqlite3.Connection] = asyncio.get_running_loop().create_future()
        # The connection is made in the writer's thread, the only one that ever uses it.
        thread = threading.Thread(
            target=_open_then_serve, args=(path, jobs, opened), name="ddi-store-writer",
            daemon=True,
        )  # fmt: skip
        thread.start()
        await opened
        return cls(jobs, thread)

    async def run(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(connection, *args)`` in the writer's thread. A call cancelled before its
        turn does not run; one already running completes."""
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._jobs.put((future, function, args))
        return await future

    async def close(self) -> None:
        await self.run(sqlite3.Connection.close)
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)


_Job = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _open_then_serve(
    path: Path, jobs: SimpleQueue[_Job | None], opened: asyncio.Future[sqlite3.Connection]
) -> None:
    loop = opened.get_loop()
    try:
        db = _connect(path)
    except BaseException as exc:  # noqa: BLE001 - handed to the opener, raised there
        loop.call_soon_threadsafe(_settle, opened, None, exc)
        return
    loop.call_soon_threadsafe(_settle, opened, db, None)
    _serve(db, jobs)


def _serve(db: sqlite3.Connection, jobs: SimpleQueue[_Job | None]) -> None:
    """The writer thread: run each job, hand its result or error back to the job's loop."""
    while True:
        job = jobs.get()
        if job is None:
            return
        future, function, args = job
        if future.cancelled():  # cancelled before its turn: it does not run
            continue
        result, error = None, None
        try:
            result = function(db, *args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            error = exc
        with suppress(RuntimeError):  # the caller's loop is closed: nobody waits any more
            future.get_loop().call_soon_threadsafe(_settle, future, result, error)


STATEMENT_CACHE = 512
"""Prepared statements the writer connection keeps (sqlite3's cache, keyed by the SQL text):
room for the lease batch's multi-row statements of every size up to ``dhcp.commit_batch``'s
default and the rest of the writes, so a batch never prepares its statements again."""


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, cached_statements=STATEMENT_CACHE)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        # After a checkpoint the WAL file is cut back to this size instead of keeping the
        # largest it ever grew to: SQLite's auto-checkpoint size (1000 pages of 4 KiB).
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT:d}")
    except BaseException:
        db.close()
        raise
    return db


# Functions run in the writer's thread, each one round trip.


def statement(db: sqlite3.Connection, sql: str) -> None:
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
    logged: Sequence[bool] | None,
) -> tuple[int, int, None, sqlite3.Error | None]:
    """:func:`_begin`, then :func:`_write_lease_rows` from the seq read."""
    seq, epoch = _begin(db)
    try:
        _write_lease_rows(db, rows, texts, actor, now, seq + 1, epoch, logged)
    except sqlite3.Error as exc:
        return seq, epoch, None, exc
    return seq, epoch, None, None


def commit_lease_rows(
    db: sqlite3.Connection,
    rows: Sequence[tuple[Any, ...]],
    texts: Sequence[str],
    actor: str,
    now: float,
    logged: Sequence[bool] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """A whole lease batch in one call of the writer's thread: BEGIN IMMEDIATE, the rows and
    their change entries (:func:`_write_lease_rows`), COMMIT (the fsync). Returns the last seq
    before the batch and the epoch. On any error the transaction is rolled back before the
    error is raised: nothing of a failed batch stays, and no reply waits on it.
    ``before_commit`` runs (in this thread) between the last row and COMMIT: a test seam.

    Each statement here is one SQLite step, and each step lets go of the GIL and takes it back:
    a handful a batch, whatever its size, instead of two a row with ``executemany``, and each
    take-back may wait for the busy event loop's switch interval."""
    return _committed(
        db,
        lambda first, epoch: _write_lease_rows(db, rows, texts, actor, now, first, epoch, logged),
        before_commit,
    )


def _committed(
    db: sqlite3.Connection,
    write: Callable[[int, int], None],
    before_commit: Callable[[], None] | None,
) -> tuple[int, int]:
    """BEGIN IMMEDIATE, ``write(first seq, epoch)``, COMMIT; rolled back before any error is
    raised. Returns the last seq before the batch and the epoch."""
    seq, epoch = _begin(db)
    try:
        write(seq + 1, epoch)
        if before_commit is not None:
            before_commit()
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with suppress(sqlite3.Error):  # SQLite rolled back already (an I/O error)
                db.execute("ROLLBACK")
        raise
    return seq, epoch


def lease_batch(
    leases: Sequence[Lease],
) -> tuple[list[LeaseImage], list[str], list[tuple[Any, ...]]]:
    """The images, their JSON texts and the rows of a lease batch, made on the caller's side
    (the writer's thread then runs only statements)."""
    images = [LeaseImage(lease) for lease in leases]
    texts = image_texts(images)
    rows = [
        (image["ip"], lease.mac, lease.client_id, lease.circuit_id, lease.hostname,
         image["state"], lease.start, lease.end, lease.subnet)
        for lease, image in zip(leases, images, strict=True)
    ]  # fmt: skip
    return images, texts, rows


def lease_changes(
    images: Sequence[LeaseImage], *, epoch: int, first: int, actor: str, now: float
) -> list[Change]:
    """The change entries of a committed lease batch, seq ``first`` on."""
    return [
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


def _write_lease_rows(
    db: sqlite3.Connection,
    rows: Sequence[tuple[Any, ...]],
    texts: Sequence[str],
    actor: str,
    now: float,
    first: int,
    epoch: int,
    logged: Sequence[bool] | None = None,
) -> None:
    """The lease rows and their change rows (seq ``first`` on), one multi-row statement per
    table for up to :data:`_BATCH_ROWS` leases. A lease whose ``logged`` flag is False (a
    quiet renewal) gets its seq but no change row; the seq counter still moves past it."""
    for start in range(0, len(rows), _BATCH_ROWS):
        chunk = rows[start : start + _BATCH_ROWS]
        db.execute(rows_sql(LEASE_UPSERT, 9, len(chunk)), [v for row in chunk for v in row])
        values: list[Any] = []
        count = 0
        for i in range(start, start + len(chunk)):
            if logged is not None and not logged[i]:
                continue
            values += (first + i, epoch, _LEASE_KIND, rows[i][0], _UPSERT_OP, texts[i], actor,
                       "", now)  # fmt: skip
            count += 1
        if count:
            db.execute(rows_sql(CHANGE_INSERT, 9, count), values)
    if logged is not None and rows and not logged[-1]:
        # AUTOINCREMENT moves only on an insert: a seq is never reused (the index and the
        # listeners saw it), so the counter is moved past the last quiet renewal by hand.
        db.execute(_SEQ_BUMP, (first + len(rows) - 1,))


def commit_lease6_rows(
    db: sqlite3.Connection,
    rows: Sequence[tuple[Any, ...]],
    ids: Sequence[str],
    texts: Sequence[str],
    actor: str,
    now: float,
    before_commit: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """A whole DHCPv6 lease batch in one call of the writer's thread, as
    :func:`commit_lease_rows`: BEGIN IMMEDIATE, :func:`_write_lease6_rows`, COMMIT (the
    fsync); rolled back before any error is raised. Returns the last seq before the batch and
    the epoch."""
    return _committed(
        db,
        lambda first, epoch: _write_lease6_rows(db, rows, ids, texts, actor, now, first, epoch),
        before_commit,
    )


def lease6_changes(
    images: Sequence[Mapping[str, Any]],
    ids: Sequence[str],
    *,
    epoch: int,
    first: int,
    actor: str,
    now: float,
) -> list[Change]:
    """The change entries of a committed DHCPv6 lease batch, seq ``first`` on."""
    return [
        _new_change(  # every field given: built through its slots (ddi.values)
            epoch=epoch, seq=first + i, kind=Kind.LEASE6, object_id=ids[i], op=Op.UPSERT,
            image=image, actor=actor, reason="", time=now,
        )
        for i, image in enumerate(images)
    ]  # fmt: skip


def _begin_then_leases6(
    db: sqlite3.Connection,
    rows: Sequence[tuple[Any, ...]],
    ids: Sequence[str],
    texts: Sequence[str],
    actor: str,
    now: float,
) -> tuple[int, int, None, sqlite3.Error | None]:
    """:func:`_begin`, then :func:`_write_lease6_rows` from the seq read."""
    seq, epoch = _begin(db)
    try:
        _write_lease6_rows(db, rows, ids, texts, actor, now, seq + 1, epoch)
    except sqlite3.Error as exc:
        return seq, epoch, None, exc
    return seq, epoch, None, None


def _write_lease6_rows(
    db: sqlite3.Connection,
    rows: Sequence[tuple[Any, ...]],
    ids: Sequence[str],
    texts: Sequence[str],
    actor: str,
    now: float,
    first: int,
    epoch: int,
) -> None:
    """The DHCPv6 lease rows and their change rows, as :func:`_write_lease_rows` does."""
    for start in range(0, len(rows), _BATCH_ROWS):
        chunk = rows[start : start + _BATCH_ROWS]
        db.execute(rows_sql(LEASE6_UPSERT, 11, len(chunk)), [v for row in chunk for v in row])
        values: list[Any] = []
        for i in range(start, start + len(chunk)):
            values += (first + i, epoch, _LEASE6_KIND, ids[i], _UPSERT_OP, texts[i], actor,
                       "", now)  # fmt: skip
        db.execute(rows_sql(CHANGE_INSERT, 9, len(chunk)), values)


# --- transactions -----------------------------------------------------------------------------


class Transaction:
    """One open write transaction (from :meth:`Store.transaction`): statements run on the
    writer connection, and the change entries it logs, written with the rest before the
    commit. ``BEGIN IMMEDIATE`` runs with the first statement, in the same round trip."""

    def __init__(self, writer: Writer, *, now: float) -> None:
        self._writer = writer
        self.now = now
        """The store's clock when the transaction began."""
        self._epoch: int | None = None
        self._seq = 0
        self._sent = False
        self.changes: list[Change] = []
        self.name_server: str | None = None
        """The site's name server name (``dns.ns_name``, absolute): no reservation or address
        record may take it (``write_checks.check_name_server``)."""
        self.unlogged: set[int] = set()
        """Seqs of :attr:`changes` kept out of the change log (quiet renewals)."""
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

    async def write_leases(
        self, leases: Sequence[Lease], *, actor: str, logged: Sequence[bool] | None = None
    ) -> list[Change]:
        """Upsert ``leases`` by IP, each with its change entry: the DHCP group commit.

        ``logged[i]`` False makes lease ``i`` a quiet renewal: its row is written and its
        change goes to the listeners (with its own seq) but not into the change log
        (:attr:`unlogged` holds those seqs).

        The hot path: one multi-row statement per table for up to :data:`_BATCH_ROWS` leases,
        all in one call to the writer's thread (with BEGIN when it is the transaction's first),
        so a batch costs a handful of SQLite steps and one round trip; the images are encoded
        in one call.

        Raises:
            Invalid: a lease the database refuses (unknown state, end before start); the
                transaction must then be rolled back (``Store.transaction`` does).
        """
        await self._flush()
        images, texts, rows = lease_batch(leases)
        try:
            if self._epoch is None:  # the first statement: BEGIN and the seq in the same call
                self._sent = True
                header = await self._writer.run(
                    _begin_then_leases, rows, texts, actor, self.now, logged
                )
                self._seq, self._epoch, _, error = header
                if error is not None:
                    raise error
            else:
                await self._writer.run(
                    _write_lease_rows, rows, texts, actor, self.now, self._seq + 1, self._epoch,
                    logged,
                )  # fmt: skip
        except sqlite3.IntegrityError as exc:
            raise Invalid("leases", f"batch of {len(leases)}", f"refused: {exc}") from None
        changes = lease_changes(
            images, epoch=self.epoch, first=self._seq + 1, actor=actor, now=self.now
        )
        if logged is not None:
            self.unlogged.update(c.seq for c, keep in zip(changes, logged, strict=True) if not keep)
        self._seq += len(changes)
        self.changes += changes
        self._flushed = len(self.changes)
        return changes

    async def write_leases6(self, leases: Sequence[Lease6], *, actor: str) -> list[Change]:
        """Upsert DHCPv6 ``leases`` by (kind, prefix), each with its change entry: the
        DHCPv6 group commit, in one round trip like :meth:`write_leases`.

        Raises:
            Invalid: a lease the database refuses; the transaction must then be rolled back.
        """
        await self._flush()
        images, ids, texts, rows = lease6_batch(leases)
        try:
            if self._epoch is None:
                self._sent = True
                header = await self._writer.run(
                    _begin_then_leases6, rows, ids, texts, actor, self.now
                )
                self._seq, self._epoch, _, error = header
                if error is not None:
                    raise error
            else:
                await self._writer.run(
                    _write_lease6_rows, rows, ids, texts, actor, self.now, self._seq + 1,
                    self._epoch,
                )  # fmt: skip
        except sqlite3.IntegrityError as exc:
            raise Invalid("leases6", f"batch of {len(leases)}", f"refused: {exc}") from None
        changes = lease6_changes(
            images, ids, epoch=self.epoch, first=self._seq + 1, actor=actor, now=self.now
        )
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
