"""The IPAM store: the one writer of the site database (SQLite; the writer connection in a
thread of its own, the reader through aiosqlite).

This module is the transaction machinery, opening and closing, listeners and reads; the writes
of each kind of object are in ``store_hosts``, ``store_leases``, ``store_records`` and
``store_subnets`` (each a function run inside a :class:`Transaction`), the sync agent's in
``store_sync`` (``store.sync``).

Rules:
* Every mutation is one ``BEGIN IMMEDIATE … COMMIT`` on the single writer connection that
  writes the row(s) *and* their change-log entries: a :meth:`Store.transaction`, or for the
  DHCP lease hot paths one call of the writer's thread per batch (:meth:`Store.commit_leases`,
  :meth:`Store.commit_leases6`: BEGIN, the rows and their changes, COMMIT), under the same lock.
  A refusal (Conflict, NotFound, Invalid) or any other failure rolls the whole transaction
  back: neither row nor change remains.
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
* A write the disk refuses (SQLITE_FULL, SQLITE_IOERR) is rolled back and raised as
  ``ddi.errors.StoreWriteFailed``; ``store.health`` counts it and logs it rate-limited
  (``ddi.ipam.store_health``). Serving resumes by itself once the disk has room again.
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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence, Set
from contextlib import asynccontextmanager, suppress
from ipaddress import IPv4Address, IPv6Network
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import aiosqlite

from ddi import metrics
from ddi.errors import Invalid, NotFound
from ddi.ipam import (
    schema,
    store_hosts,
    store_import,
    store_leases,
    store_records,
    store_subnets,
    store_v6,
)
from ddi.ipam.change_query import ChangeQuery
from ddi.ipam.import_plan import ImportPlan
from ddi.ipam.models import (
    Change,
    Host,
    Kind,
    Lease,
    LeaseImage,
    LeaseState,
    Op,
    Record,
    Subnet,
)
from ddi.ipam.models6 import Lease6, Lease6Image, Lease6Kind, Subnet6
from ddi.ipam.rows import (
    CHANGE_COLUMNS,
    HOST_COLUMNS,
    LEASE_COLUMNS,
    RECORD_COLUMNS,
    Shared,
    change_from_row,
    host_from_row,
    lease_from_row,
    record_from_row,
)
from ddi.ipam.rows6 import LEASE6_COLUMNS, lease6_batch, lease6_from_row
from ddi.ipam.store_health import DiskSpace, WriteHealth, disk_space
from ddi.ipam.store_retention import ChangeLog
from ddi.ipam.store_sync import StoreSync
from ddi.ipam.transaction import (
    BUSY_TIMEOUT_MS,
    Transaction,
    Writer,
    commit_lease6_rows,
    commit_lease_rows,
    lease6_changes,
    lease_batch,
    lease_changes,
    statement,
    write_failure,
)
from ddi.ipam.write_checks import check_subnets
from ddi.migrate.items import HostItem, LeaseItem, RecordItem

__all__ = ["LeaseImage", "Listener", "LoadSink", "Snapshot", "Store", "Transaction"]

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[Change]], None]
_T = TypeVar("_T")

READ_CHUNK = 2000
"""Rows per fetch when loading a whole table."""
LOAD_CHUNK = 8000
"""Rows per fetch in :meth:`Store.load`: fewer trips to the reader's thread at start-up, a few
MiB of rows in flight."""


def _lease_identity(lease: Lease) -> tuple[Any, ...]:
    return (lease.mac, lease.client_id, lease.circuit_id, lease.hostname, lease.subnet)


def _ip_key(value: Host | Lease) -> tuple[int, int]:
    """By IPv4 address; IPv6-only hosts after, by their IPv6 address."""
    if isinstance(value, Host) and value.ip is None:
        return (1, int(value.ip6 or 0))
    assert value.ip is not None
    return (0, int(value.ip))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """All objects of the store as of change ``last_seq`` (no write in between)."""

    subnets: list[Subnet]
    hosts: list[Host]
    leases: list[Lease]
    records: list[Record]
    last_seq: int
    subnets6: list[Subnet6] = dataclasses.field(default_factory=list)
    leases6: list[Lease6] = dataclasses.field(default_factory=list)


class LoadSink(Protocol):
    """What :meth:`Store.load` hands the objects to, a chunk at a time."""

    def subnets(self, subnets: list[Subnet]) -> None: ...
    def subnets6(self, subnets: list[Subnet6]) -> None: ...
    def hosts(self, hosts: list[Host]) -> None: ...
    def leases(self, leases: list[Lease]) -> None: ...
    def records(self, records: list[Record]) -> None: ...
    def leases6(self, leases: list[Lease6]) -> None: ...


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
        writer: Writer,
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
        self.name_server: str | None = None
        """``dns.ns_name`` as an absolute name, owned like a reservation's name: set by the
        daemon from the config (None: no DNS, nothing reserved)."""
        self.renewal_log_interval = 0.0
        """Seconds a renewal may move a lease's end past the end last logged before it is
        logged again; 0 logs every renewal. Set from ``[ipam] renewal_log_interval``."""
        self._lease_logged: dict[IPv4Address, tuple[tuple[Any, ...], float]] = {}
        """ip -> (the client, hostname, state and subnet of the lease's last logged change,
        and the end it logged): what a quiet renewal is measured against."""
        self.health = WriteHealth()
        """Writes the disk refused: counted, the last kept, logged rate-limited."""
        self.sync = StoreSync(
            transaction=self.transaction,
            read=self._read,
            check_host=functools.partial(store_hosts.check_host, domain=self.domain),
        )
        """The sync agent's reads and writes."""
        self.log = ChangeLog(transaction=self.transaction, read=self._read)
        """The change log's size and its local retention."""

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
        writer = await Writer.open(path)
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

    async def subnets6(self) -> list[Subnet6]:
        rows = await self._read("SELECT image FROM subnet6")
        subnets = [Subnet6.from_image(json.loads(image)) for (image,) in rows]
        return sorted(subnets, key=lambda s: (s.cidr, s.name))

    async def leases6(self) -> list[Lease6]:
        """Every DHCPv6 lease, by kind then prefix."""
        leases = await self._read_each(f"SELECT {LEASE6_COLUMNS} FROM lease6", lease6_from_row)
        return sorted(leases, key=lambda lease: (lease.kind, lease.prefix))

    async def lease6(self, kind: Lease6Kind, prefix: IPv6Network) -> Lease6 | None:
        rows = await self._read(
            f"SELECT {LEASE6_COLUMNS} FROM lease6 WHERE kind = ? AND prefix = ?",
            (kind.value, str(prefix)),
        )
        return lease6_from_row(rows[0]) if rows else None

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

    async def find_changes(self, query: ChangeQuery) -> list[Change]:
        """Change-log entries matching ``query``, oldest first."""
        sql, params = query.sql()
        entries = [change_from_row(row) for row in await self._read(sql, params)]
        return entries if query.after is not None else entries[::-1]

    async def last_seq(self) -> int:
        """The highest seq ever written (0 for a new store), even if its entry was deleted."""
        rows = await self._read("SELECT seq FROM sqlite_sequence WHERE name = 'change'")
        return int(rows[0][0]) if rows else 0

    async def epoch(self) -> int:
        rows = await self._read("SELECT value FROM meta WHERE key = 'epoch'")
        return int(rows[0][0])

    async def load(self, sink: LoadSink) -> int:
        """Hand every object to ``sink`` (subnets first, then hosts, leases and records, a
        chunk of values at a time), with no write committing in between; returns the seq they
        reflect. Nothing holds all the rows at once: each chunk is converted and handed over
        (the start-up load of the index), and values repeated across rows are loaded once."""
        async with self._lock:
            sink.subnets(await self.subnets())
            sink.subnets6(await self.subnets6())
            shared = Shared()
            tables: tuple[tuple[str, Callable[[Any], Any], Callable[[list[Any]], None]], ...] = (
                (
                    f"SELECT {HOST_COLUMNS} FROM host",
                    functools.partial(host_from_row, shared=shared),
                    sink.hosts,
                ),
                (
                    f"SELECT {LEASE_COLUMNS} FROM lease",
                    functools.partial(lease_from_row, shared=shared),
                    sink.leases,
                ),
                (f"SELECT {RECORD_COLUMNS} FROM record", record_from_row, sink.records),
                (f"SELECT {LEASE6_COLUMNS} FROM lease6", lease6_from_row, sink.leases6),
            )
            for sql, convert, take in tables:
                async with self._reader.execute(sql) as cursor:
                    while rows := await cursor.fetchmany(LOAD_CHUNK):
                        take(list(map(convert, rows)))
                        del rows
            del shared
            # A one-off read of every table: its pages need not stay in the reader's cache.
            await self._reader.execute("PRAGMA shrink_memory")
            return await self.last_seq()

    async def snapshot(self) -> Snapshot:
        """Every object and the seq they reflect, with no write committing in between."""
        async with self._lock:
            # The snapshot feeds long-lived indexes: rows are read in chunks (no peak of
            # temporaries to fragment the heap) and repeated values are loaded once.
            shared = Shared()
            hosts = await self.hosts(shared=shared)
            leases = await self.leases(shared=shared)
            records = await self.records()
            leases6 = await self.leases6()
            # A one-off read of every table: its pages need not stay in the reader's cache.
            await self._reader.execute("PRAGMA shrink_memory")
            return Snapshot(
                subnets=await self.subnets(),
                hosts=hosts,
                leases=leases,
                records=records,
                last_seq=await self.last_seq(),
                subnets6=await self.subnets6(),
                leases6=leases6,
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
            tx.name_server = self.name_server
            try:
                yield tx
                await tx._flush()
                await self._before_commit(tx)
            except BaseException as exc:
                if tx.begun:
                    await self._rollback()
                failed = write_failure(exc)
                if failed is None:
                    raise
                self.health.failed(failed)
                raise failed from None
            if not tx.begun:  # no statement ran: nothing to commit
                return
            if dry_run:
                await self._rollback()
                tx.changes[:] = [dataclasses.replace(c, seq=0) for c in tx.changes]
                return
            await asyncio.shield(asyncio.ensure_future(self._commit(tx.changes)))
            self._note_logged_leases(tx.changes, tx.unlogged)

    def _note_logged_leases(self, changes: Sequence[Change], unlogged: Set[int]) -> None:
        """Remember what the change log last says of each lease (:meth:`_renewal_flags`);
        ``unlogged`` are the seqs of quiet renewals (no change row)."""
        for change in changes:
            if change.kind is not Kind.LEASE or change.seq in unlogged:
                continue
            image = change.image
            lease = image.lease if isinstance(image, LeaseImage) else None
            if change.op is Op.DELETE or image.get("state") != LeaseState.BOUND.value:
                self._lease_logged.pop(IPv4Address(change.object_id), None)
                continue
            if lease is None:
                lease = Lease.from_image(image)
            self._lease_logged[lease.ip] = (_lease_identity(lease), lease.end)

    def _renewal_flags(self, leases: Sequence[Lease]) -> list[bool] | None:
        """Which of ``leases`` go into the change log: all but quiet renewals, a bound lease
        whose client, hostname and subnet are those last logged and whose end is at or past
        the end last logged and less than :attr:`renewal_log_interval` past it. Central (and
        ``ddi changes``) so learn a renewed end at least every interval, and everything else
        at once; the lease table, snapshots and the index always have the exact end."""
        interval = self.renewal_log_interval
        if interval <= 0:
            return None
        logged = self._lease_logged
        flags = []
        for lease in leases:
            seen = logged.get(lease.ip)
            flags.append(
                seen is None
                or lease.state is not LeaseState.BOUND
                or lease.end >= seen[1] + interval
                or lease.end < seen[1]  # shortened: central must not think it lasts longer
                or seen[0] != _lease_identity(lease)
            )
        return None if all(flags) else flags

    async def _commit(self, changes: Sequence[Change]) -> None:
        try:
            await self._writer.run(statement, "COMMIT")
        except BaseException as exc:
            # SQLite leaves the transaction open after some failed COMMITs (SQLITE_BUSY);
            # nothing of it may linger into the next writer's transaction.
            await self._rollback()
            failed = write_failure(exc)
            if failed is None:
                log.exception("commit failed")
                raise
            self.health.failed(failed)
            raise failed from None
        self.health.succeeded()
        if changes:
            self._notify(changes)

    async def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it to zero bytes (what the daemon does
        when the data directory runs low on space; SQLite's own checkpoints keep the file).

        Raises:
            StoreWriteFailed: the disk refused (a checkpoint grows the database file first).
        """
        async with self._lock:
            if self._closed:
                return
            try:
                await self._writer.run(statement, "PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                failed = write_failure(exc)
                if failed is None:
                    raise
                self.health.failed(failed)
                raise failed from None

    def disk_space(self) -> DiskSpace:
        """Free and total space where the database lives."""
        return disk_space(self.path.parent)

    def wal_bytes(self) -> int:
        """The size of the write-ahead log file (0 when there is none)."""
        try:
            return self.path.with_name(self.path.name + "-wal").stat().st_size
        except FileNotFoundError:
            return 0

    async def _rollback(self) -> None:
        """ROLLBACK, quietly accepting that no transaction was open (SQLite already rolled
        back after an I/O error, or a cancelled BEGIN never ran)."""
        with suppress(sqlite3.OperationalError):
            await self._writer.run(statement, "ROLLBACK")

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

    async def sync_subnets6(
        self, subnets: Sequence[Subnet6], *, actor: str, reason: str
    ) -> list[Change]:
        """Make the stored IPv6 subnets exactly ``subnets`` (from the configuration), as
        :meth:`sync_subnets` does for IPv4 (the configuration parser has checked them)."""
        async with self.transaction() as tx:
            await store_v6.sync_subnets6(tx, subnets, actor=actor, reason=reason)
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
        images, texts, rows = lease_batch(leases)
        async with self._lock:
            logged = self._renewal_flags(leases)
            if self._closed:
                raise RuntimeError("store is closed")
            now = self._clock()
            # Shielded: a caller cancelled while the batch is in the writer's thread must not
            # leave a committed change unannounced (as Store.transaction's commit).
            return await asyncio.shield(
                asyncio.ensure_future(
                    self._commit_lease_rows(images, texts, rows, actor, now, logged)
                )
            )

    async def _commit_lease_rows(
        self,
        images: Sequence[LeaseImage],
        texts: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        actor: str,
        now: float,
        logged: Sequence[bool] | None,
    ) -> list[Change]:
        """One writer call (BEGIN, the rows, COMMIT: ``commit_lease_rows``), then the
        listeners."""
        seq, epoch = await self._write_lease_batch(
            "leases", len(rows), commit_lease_rows, rows, texts, actor, now, logged,
            self._lease_commit_hook,
        )  # fmt: skip
        changes = lease_changes(images, epoch=epoch, first=seq + 1, actor=actor, now=now)
        unlogged = set()
        if logged is not None:
            unlogged = {c.seq for c, keep in zip(changes, logged, strict=True) if not keep}
        self._note_logged_leases(changes, unlogged)
        self._notify(changes)
        return changes

    async def _write_lease_batch(
        self, what: str, size: int, commit: Callable[..., tuple[int, int]], *args: Any
    ) -> tuple[int, int]:
        """``commit(connection, *args)`` in the writer's thread: the last seq before the batch
        and the epoch. A refused batch is ``Invalid``; a failed write marks the store's health.
        """
        try:
            seq, epoch = await self._writer.run(commit, *args)
        except sqlite3.IntegrityError as exc:
            raise Invalid(what, f"batch of {size}", f"refused: {exc}") from None
        except BaseException as exc:
            failed = write_failure(exc)
            if failed is None:
                raise
            self.health.failed(failed)
            raise failed from None
        self.health.succeeded()
        return seq, epoch

    _lease_commit_hook: Callable[[], None] | None = None
    """Run in the writer's thread between a lease batch's rows and its COMMIT (a test seam)."""

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

    async def commit_leases6(
        self, leases: Sequence[Lease6], *, actor: str = "dhcp6"
    ) -> list[Change]:
        """Upsert DHCPv6 ``leases`` (by kind and prefix) in ONE transaction with one fsync:
        the group commit of :meth:`commit_leases`, one change entry per lease.

        Raises:
            Invalid: a lease the database refuses; the whole batch is then rolled back.
        """
        if not leases:
            return []
        batch = lease6_batch(leases)
        async with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            work = self._commit_lease6_rows(*batch, actor, self._clock())
            return await asyncio.shield(asyncio.ensure_future(work))  # as commit_leases

    async def _commit_lease6_rows(
        self,
        images: Sequence[Lease6Image],
        ids: Sequence[str],
        texts: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        actor: str,
        now: float,
    ) -> list[Change]:
        """One writer call (``commit_lease6_rows``), then the listeners."""
        seq, epoch = await self._write_lease_batch(
            "leases6", len(rows), commit_lease6_rows, rows, ids, texts, actor, now,
            self._lease_commit_hook,
        )  # fmt: skip
        changes = lease6_changes(images, ids, epoch=epoch, first=seq + 1, actor=actor, now=now)
        self._notify(changes)
        return changes

    async def release_lease6(
        self,
        kind: Lease6Kind,
        prefix: IPv6Network,
        *,
        actor: str,
        reason: str,
        dry_run: bool = False,
    ) -> Change:
        """Mark the bound v6 lease on (``kind``, ``prefix``) released, ending now.

        Raises:
            NotFound: no such lease.
            Invalid: the lease is not bound.
        """
        async with self.transaction(dry_run=dry_run) as tx:
            await store_v6.release_lease6(tx, kind, prefix, actor=actor, reason=reason)
        return tx.changes[0]

    async def expire_leases6(self, now: float) -> list[Change]:
        """Mark every bound v6 lease with ``end <= now`` expired; one change per lease."""
        async with self.transaction() as tx:
            await store_v6.expire_leases6(tx, now)
        return tx.changes

    # --- imports ---

    async def import_items(
        self,
        *,
        hosts: Sequence[HostItem],
        leases: Sequence[LeaseItem],
        records: Sequence[RecordItem],
        actor: str,
        reason: str,
        dry_run: bool = False,
    ) -> ImportPlan:
        """Add or change every reservation, record and lease given, in ONE transaction, or
        none of them: when the plan refuses anything, nothing is written
        (``ddi.ipam.import_plan`` has the rules). A dry run writes and rolls back."""
        async with self.transaction(dry_run=dry_run) as tx:
            return await store_import.import_items(
                tx, hosts=hosts, leases=leases, records=records, domain=self.domain,
                actor=actor, reason=reason,
            )  # fmt: skip

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
