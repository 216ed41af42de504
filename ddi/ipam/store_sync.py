"""The edge side of replication, as the store's own methods: what the sync agent
(sync/agent.py) reads and writes through the one writer.

Rules:
* The acknowledged cursor and other sync state live in ``meta``; the outbox is the change log
  (coalesced, trimmed once acknowledged, dropped at an epoch roll-over); snapshot reads walk
  every table by object id.
* Central-owned reservations from the down log are applied with conflict detection: nothing
  the edge owns is overwritten, a ``conflict`` row is recorded instead.
* Each write is one transaction of :class:`~ddi.ipam.store.Store` (its ``_transaction``), so the
  store stays the one writer; this class is only ever used as a base of ``Store``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from ddi.errors import Conflict, Invalid, NotFound
from ddi.ipam.models import Host, Kind, Op, Owner
from ddi.ipam.rows import (
    HOST_COLUMNS,
    HOST_INSERT,
    HOST_UPDATE,
    LEASE_COLUMNS,
    RECORD_COLUMNS,
    host_from_row,
    host_row,
    lease_from_row,
    record_from_row,
)
from ddi.ipam.write_checks import normalise_host

if TYPE_CHECKING:
    from ddi.ipam.store import _Tx

__all__ = ["SyncStore"]


class SyncStore:
    """The store's sync methods; :class:`~ddi.ipam.store.Store` provides the rest."""

    if TYPE_CHECKING:  # defined by Store
        _clock: Callable[[], float]

        async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

        def _transaction(self, *, dry_run: bool = False) -> AbstractAsyncContextManager[_Tx]: ...

        async def _check_host(self, tx: _Tx, host: Host) -> None: ...

        async def epoch(self) -> int: ...

        async def last_seq(self) -> int: ...

    async def sync_state(self) -> dict[str, int]:
        """``cursor`` (seq central acknowledged), ``down_cursor`` (last down-log entry
        applied), ``floor`` (entries up to it were compacted away), ``snapshot_seq`` (the
        as-of seq of the current epoch's snapshot), ``conflicts_reported`` (highest
        conflict id reported to central), ``resolutions_reported`` (resolutions up to this
        unix time in milliseconds were reported), ``epoch`` and ``last_seq``."""
        rows = await self._read("SELECT key, value FROM meta WHERE key LIKE 'sync.%'")
        state = {k.removeprefix("sync."): int(v) for k, v in rows}
        result = {
            name: state.get(name, 0)
            for name in (
                "cursor",
                "down_cursor",
                "floor",
                "snapshot_seq",
                "conflicts_reported",
                "resolutions_reported",
            )
        }
        result["epoch"] = await self.epoch()
        result["last_seq"] = await self.last_seq()
        return result

    async def set_sync_state(self, **values: int) -> None:
        """Record sync state (see :meth:`sync_state`); writes no change-log entry."""
        async with self._transaction() as tx:
            await tx.db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [(f"sync.{name}", str(int(value))) for name, value in values.items()],
            )

    async def outbox_backlog(self, after: int) -> tuple[int, float | None]:
        """How many change-log entries have ``seq > after``, and the time of the oldest."""
        rows = await self._read("SELECT COUNT(*), MIN(time) FROM change WHERE seq > ?", (after,))
        count, oldest = rows[0]
        return int(count), None if oldest is None else float(oldest)

    async def coalesce_outbox(self, after: int) -> int:
        """Delete entries past ``after`` that a newer entry for the same object supersedes.

        Returns:
            The number of entries deleted.
        """
        async with self._transaction() as tx:
            cursor = await tx.db.execute(
                "DELETE FROM change WHERE seq > ? AND seq NOT IN"
                " (SELECT MAX(seq) FROM change WHERE seq > ? GROUP BY kind, object_id)",
                (after, after),
            )
            deleted = cursor.rowcount
        return int(deleted)

    async def trim_acknowledged(self, cursor: int, *, keep: int) -> int:
        """Delete the entries central has acknowledged (``seq <= cursor``) beyond the newest
        ``keep`` of them, so the log stays bounded; unacknowledged entries are never touched.
        The floor rises to the highest seq deleted.

        Returns:
            The number of entries deleted.
        """
        async with self._transaction() as tx:
            rows = await tx.fetch(
                "SELECT seq FROM change WHERE seq <= ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                (cursor, keep),
            )
            if not rows:
                return 0
            upto = int(rows[0][0])
            deleted = (await tx.db.execute("DELETE FROM change WHERE seq <= ?", (upto,))).rowcount
            floor = await tx.fetch("SELECT value FROM meta WHERE key = 'sync.floor'")
            await tx.db.execute(
                "INSERT INTO meta (key, value) VALUES ('sync.floor', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(max(upto, int(floor[0][0]) if floor else 0)),),
            )
        return int(deleted)

    async def roll_epoch(self, *, at_least: int = 0) -> tuple[int, int]:
        """Start a new epoch: the change log so far is dropped and central will be brought in
        line by a snapshot as of the last seq. Seqs keep counting up.

        Returns:
            The new epoch and the snapshot's as-of seq.
        """
        async with self._transaction() as tx:
            rows = await tx.fetch("SELECT value FROM meta WHERE key = 'epoch'")
            epoch = max(int(rows[0][0]) + 1, at_least)
            as_of = await self._last_seq_in(tx)
            await tx.db.execute("DELETE FROM change WHERE seq <= ?", (as_of,))
            await tx.db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [
                    ("epoch", str(epoch)),
                    ("sync.snapshot_seq", str(as_of)),
                    ("sync.floor", str(as_of)),
                ],
            )
        return epoch, as_of

    @staticmethod
    async def _last_seq_in(tx: _Tx) -> int:
        rows = await tx.fetch("SELECT seq FROM sqlite_sequence WHERE name = 'change'")
        return int(rows[0][0]) if rows else 0

    async def snapshot_page(
        self, after: tuple[str, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` objects ``{kind, object_id, image}`` after the key ``after``,
        walking subnets, hosts, records, then leases, each by object id (short reads)."""
        order = [Kind.SUBNET, Kind.HOST, Kind.RECORD, Kind.LEASE]
        start = 0 if after is None else order.index(Kind(after[0]))
        result: list[dict[str, Any]] = []
        for i, kind in enumerate(order[start:], start=start):
            key = after[1] if after is not None and i == start else None
            want = limit - len(result)
            if want <= 0:
                break
            result.extend(await self._objects_after(kind, key, want))
        return result

    async def _objects_after(self, kind: Kind, key: str | None, limit: int) -> list[dict[str, Any]]:
        table, column, columns = {
            Kind.SUBNET: ("subnet", "name", "name, image"),
            Kind.HOST: ("host", "id", HOST_COLUMNS),
            Kind.RECORD: ("record", "id", RECORD_COLUMNS),
            Kind.LEASE: ("lease", "ip", LEASE_COLUMNS),
        }[kind]
        where = "" if key is None else f" WHERE {column} > ?"
        rows = await self._read(
            f"SELECT {columns} FROM {table}{where} ORDER BY {column} LIMIT ?",
            (limit,) if key is None else (key, limit),
        )
        out: list[dict[str, Any]] = []
        for row in rows:
            image: dict[str, Any]
            if kind is Kind.SUBNET:
                oid, image = row[0], json.loads(row[1])
            elif kind is Kind.HOST:
                host = host_from_row(row)
                oid, image = host.id, host.to_image()
            elif kind is Kind.RECORD:
                record = record_from_row(row)
                oid, image = record.id, record.to_image()
            else:
                lease = lease_from_row(row)
                oid, image = str(lease.ip), lease.to_image()
            out.append({"kind": kind.value, "object_id": oid, "image": image})
        return out

    async def apply_central_host(self, op: Op, image: Mapping[str, Any]) -> dict[str, Any] | None:
        """Apply one central-owned reservation from the down log (owner = central).

        Nothing is overwritten that the edge owns: if the reservation's IP is reserved by
        another host or actively leased to another client, or its MAC, client-id, circuit-id
        or hostname is held by another host or a record, or the id names an edge-owned
        host, a conflict row is recorded instead (once per object, field and value) and the
        edge keeps serving what it has. Applying cleanly resolves the object's open conflicts.

        Returns:
            The conflict recorded (or already open), or None when applied (or unchanged).
        """
        now = self._clock()
        central = dict(image) | {"owner": Owner.CENTRAL.value}
        async with self._transaction() as tx:
            object_id = str(central.get("id", ""))
            existing_rows = await tx.fetch(
                f"SELECT {HOST_COLUMNS} FROM host WHERE id = ?", (object_id,)
            )
            existing = host_from_row(existing_rows[0]) if existing_rows else None
            if existing is not None and existing.owner is Owner.EDGE:
                return await self._sync_conflict(
                    tx, object_id, "id", object_id, existing.to_image(), central, now
                )
            if op is Op.DELETE:
                if existing is not None:
                    await tx.db.execute("DELETE FROM host WHERE id = ?", (object_id,))
                    tx.log(
                        Kind.HOST,
                        object_id,
                        Op.DELETE,
                        existing.to_image(),
                        actor="central",
                        reason="central reservation removed",
                    )
                await self._resolve_sync_conflicts(tx, object_id, now)
                return None
            try:
                host = normalise_host(Host.from_image(central))
            except (Invalid, KeyError, ValueError, TypeError) as exc:  # a malformed image
                field = exc.field if isinstance(exc, Invalid) else "image"
                return await self._sync_conflict(tx, object_id, field, str(exc), None, central, now)
            if existing is not None and existing.to_image() == host.to_image():
                await self._resolve_sync_conflicts(tx, object_id, now)
                return None
            try:
                await self._check_host(tx, host)
            except (Conflict, Invalid) as exc:
                field = exc.field
                value = exc.value
                edge_image = await self._edge_holder(tx, host, field)
                return await self._sync_conflict(
                    tx, object_id, field, value, edge_image, central, now
                )
            if existing is None:
                await tx.db.execute(
                    HOST_INSERT,
                    host_row(host),
                )
            else:
                await tx.db.execute(
                    HOST_UPDATE,
                    (*host_row(host)[1:], host.id),
                )
            tx.log(
                Kind.HOST,
                host.id,
                Op.UPSERT,
                host.to_image(),
                actor="central",
                reason="central reservation",
            )
            await self._resolve_sync_conflicts(tx, object_id, now)
        return None

    async def _edge_holder(self, tx: _Tx, host: Host, field: str) -> dict[str, Any] | None:
        """The image of what the edge holds that ``host`` collides with on ``field``."""
        if field in ("ip", "mac", "client_id", "circuit_id", "hostname"):
            value = str(host.ip) if field == "ip" else getattr(host, field)
            rows = await tx.fetch(
                f"SELECT {HOST_COLUMNS} FROM host WHERE {field} = ? AND id != ?",
                (value, host.id),
            )
            if rows:
                return host_from_row(rows[0]).to_image()
        if field == "ip":
            rows = await tx.fetch(
                f"SELECT {LEASE_COLUMNS} FROM lease WHERE ip = ?", (str(host.ip),)
            )
            if rows:
                return lease_from_row(rows[0]).to_image()
        if field == "hostname":
            rows = await tx.fetch(
                f"SELECT {RECORD_COLUMNS} FROM record WHERE name LIKE ? ORDER BY name LIMIT 1",
                (f"{host.hostname}.%",),
            )
            if rows:
                return record_from_row(rows[0]).to_image()
        return None

    async def _sync_conflict(
        self,
        tx: _Tx,
        object_id: str,
        field: str,
        value: str,
        edge_image: Mapping[str, Any] | None,
        central_image: Mapping[str, Any],
        now: float,
    ) -> dict[str, Any]:
        rows = await tx.fetch(
            "SELECT id, detected_at FROM conflict WHERE kind = 'host' AND object_id = ?"
            " AND field = ? AND value = ? AND resolved_at IS NULL",
            (object_id, field, value),
        )
        edge_text = None if edge_image is None else json.dumps(edge_image, sort_keys=True)
        central_text = json.dumps(central_image, sort_keys=True)
        if rows:
            conflict_id, detected_at = int(rows[0][0]), float(rows[0][1])
            await tx.db.execute(
                "UPDATE conflict SET edge_image = ?, central_image = ? WHERE id = ?",
                (edge_text, central_text, conflict_id),
            )
        else:
            cursor = await tx.db.execute(
                "INSERT INTO conflict (kind, object_id, field, value, edge_image, central_image,"
                " detected_at) VALUES ('host', ?, ?, ?, ?, ?, ?)",
                (object_id, field, value, edge_text, central_text, now),
            )
            conflict_id, detected_at = int(cursor.lastrowid or 0), now
        return {
            "id": conflict_id,
            "kind": "host",
            "object_id": object_id,
            "field": field,
            "value": value,
            "edge_image": edge_image,
            "central_image": dict(central_image),
            "detected_at": detected_at,
            "resolved_at": None,
        }

    @staticmethod
    async def _resolve_sync_conflicts(tx: _Tx, object_id: str, now: float) -> None:
        await tx.db.execute(
            "UPDATE conflict SET resolved_at = ? WHERE kind = 'host' AND object_id = ?"
            " AND resolved_at IS NULL",
            (now, object_id),
        )

    async def resolve_sync_conflict(
        self, conflict_id: int, *, keep: Owner, actor: str, reason: str
    ) -> dict[str, Any]:
        """Resolve an open conflict, in one transaction.

        ``keep=EDGE``: the edge's object stays and central's reservation is set aside.
        ``keep=CENTRAL``: the edge-owned hosts that collide with central's reservation are
        removed and the reservation is applied (each with its change-log entry).

        Returns:
            The conflict row, now resolved.

        Raises:
            NotFound: no open conflict ``conflict_id``.
            Conflict, Invalid: central's reservation still cannot apply (an active lease of
                another client, a static record, an address outside every subnet); nothing
                is changed.
        """
        rows = await self._read(
            "SELECT object_id, central_image FROM conflict WHERE id = ? AND resolved_at IS NULL",
            (conflict_id,),
        )
        if not rows or rows[0][1] is None:
            raise NotFound("open conflict", str(conflict_id))
        object_id, central_text = rows[0]
        now = self._clock()
        async with self._transaction() as tx:
            if keep is Owner.CENTRAL:
                host = normalise_host(Host.from_image(json.loads(central_text)))
                for row in await tx.fetch(
                    f"SELECT {HOST_COLUMNS} FROM host WHERE owner = 'edge' AND (id = ? OR ip = ?"
                    " OR hostname = ? OR mac = ? OR client_id = ? OR circuit_id = ?)",
                    (host.id, str(host.ip), host.hostname, host.mac, host.client_id,
                     host.circuit_id),
                ):  # fmt: skip
                    holder = host_from_row(row)
                    await tx.db.execute("DELETE FROM host WHERE id = ?", (holder.id,))
                    tx.log(Kind.HOST, holder.id, Op.DELETE, holder.to_image(), actor=actor,
                           reason=reason)  # fmt: skip
                existing = await tx.fetch("SELECT 1 FROM host WHERE id = ?", (host.id,))
                await self._check_host(tx, host)
                if existing:
                    await tx.db.execute(
                        HOST_UPDATE,
                        (*host_row(host)[1:], host.id),
                    )
                else:
                    await tx.db.execute(
                        HOST_INSERT,
                        host_row(host),
                    )
                tx.log(Kind.HOST, host.id, Op.UPSERT, host.to_image(), actor=actor, reason=reason)
                await self._resolve_sync_conflicts(tx, object_id, now)
            else:
                await tx.db.execute(
                    "UPDATE conflict SET resolved_at = ? WHERE id = ?", (now, conflict_id)
                )
        (resolved,) = [c for c in await self.sync_conflicts() if c["id"] == conflict_id]
        return resolved

    async def sync_conflicts(
        self, *, after_id: int = 0, open_only: bool = False
    ) -> list[dict[str, Any]]:
        """Conflict rows with ``id > after_id`` (open ones only if asked), oldest first."""
        where = " AND resolved_at IS NULL" if open_only else ""
        rows = await self._read(
            "SELECT id, kind, object_id, field, value, edge_image, central_image, detected_at,"
            f" resolved_at FROM conflict WHERE id > ?{where} ORDER BY id",
            (after_id,),
        )
        return [
            {
                "id": int(r[0]),
                "kind": r[1],
                "object_id": r[2],
                "field": r[3],
                "value": r[4],
                "edge_image": None if r[5] is None else json.loads(r[5]),
                "central_image": None if r[6] is None else json.loads(r[6]),
                "detected_at": float(r[7]),
                "resolved_at": r[8],
            }
            for r in rows
        ]
