"""The edge side of replication, composed into the store as ``store.sync``: what the sync
agent (sync/agent.py) and the API read and write through the store's one writer.

Rules:
* The acknowledged cursor and other sync state live in ``meta``; the outbox is the change log
  (coalesced, trimmed once acknowledged, dropped at an epoch roll-over); snapshot reads walk
  every table by object id.
* Central-owned reservations from the down log are applied with conflict detection: nothing
  the edge owns is overwritten, a ``conflict`` row is recorded instead.
* Every write is one :meth:`~ddi.ipam.store.Store.transaction`, so the store stays the one
  writer; reads go through the store's read-only connection. Answers are the frozen values of
  :mod:`ddi.ipam.sync_values`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from ddi.errors import Conflict, Invalid, NotFound
from ddi.ipam.models import Host, JsonObject, Kind, Op, Owner
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
from ddi.ipam.rows6 import LEASE6_COLUMNS, lease6_from_row
from ddi.ipam.sync_values import (
    Backlog,
    CentralApply,
    DownResult,
    EpochRoll,
    SyncConflict,
    SyncCursors,
)
from ddi.ipam.transaction import Transaction
from ddi.ipam.write_checks import normalise_host

__all__ = ["StoreSync"]

Read = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]
"""A read of committed state: ``read(sql, params)`` → rows."""
CheckHost = Callable[["Transaction", Host], Awaitable[None]]
"""The store's reservation checks, inside a transaction (raises Conflict or Invalid)."""

_META_UPSERT = (
    "INSERT INTO meta (key, value) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_CONFLICT_COLUMNS = (
    "id, kind, object_id, field, value, edge_image, central_image, detected_at, resolved_at"
)


def _conflict_from_row(r: Sequence[Any]) -> SyncConflict:
    return SyncConflict(
        id=int(r[0]),
        kind=r[1],
        object_id=r[2],
        field=r[3],
        value=r[4],
        edge_image=None if r[5] is None else json.loads(r[5]),
        central_image=None if r[6] is None else json.loads(r[6]),
        detected_at=float(r[7]),
        resolved_at=None if r[8] is None else float(r[8]),
    )


class StoreSync:
    """The store's sync block; built by :class:`~ddi.ipam.store.Store` from its transaction,
    its read connection and its reservation checks."""

    def __init__(
        self,
        *,
        transaction: Callable[[], AbstractAsyncContextManager[Transaction]],
        read: Read,
        check_host: CheckHost,
    ) -> None:
        self._transaction = transaction
        self._read = read
        self._check_host = check_host

    # --- cursors and the outbox ---

    async def cursors(self) -> SyncCursors:
        """The sync state, with the current epoch and the last seq written."""
        rows = await self._read(
            "SELECT key, value FROM meta WHERE key LIKE 'sync.%' OR key = 'epoch'"
            " UNION ALL SELECT 'last_seq', seq FROM sqlite_sequence WHERE name = 'change'",
            (),
        )
        values = {k.removeprefix("sync."): int(v) for k, v in rows}
        return SyncCursors(
            cursor=values.get("cursor", 0),
            down_cursor=values.get("down_cursor", 0),
            floor=values.get("floor", 0),
            snapshot_seq=values.get("snapshot_seq", 0),
            conflicts_reported=values.get("conflicts_reported", 0),
            resolutions_reported=values.get("resolutions_reported", 0),
            withheld=values.get("withheld", 0),
            epoch=values["epoch"],
            last_seq=values.get("last_seq", 0),
        )

    async def set_cursors(
        self,
        *,
        cursor: int | None = None,
        down_cursor: int | None = None,
        conflicts_reported: int | None = None,
        resolutions_reported: int | None = None,
        withheld: int | None = None,
    ) -> None:
        """Record the cursors given (see :class:`SyncCursors`); writes no change-log entry."""
        given = {
            "cursor": cursor,
            "down_cursor": down_cursor,
            "conflicts_reported": conflicts_reported,
            "resolutions_reported": resolutions_reported,
            "withheld": withheld,
        }
        values = [(f"sync.{k}", str(int(v))) for k, v in given.items() if v is not None]
        if not values:
            return
        async with self._transaction() as tx:
            await tx.executemany(_META_UPSERT, values)

    async def backlog(self, after: int) -> Backlog:
        """The change-log entries with ``seq > after``."""
        rows = await self._read("SELECT COUNT(*), MIN(time) FROM change WHERE seq > ?", (after,))
        count, oldest = rows[0]
        return Backlog(count=int(count), oldest=None if oldest is None else float(oldest))

    async def coalesce(self, after: int) -> int:
        """Delete entries past ``after`` that a newer entry for the same object supersedes.

        Returns:
            The number of entries deleted.
        """
        async with self._transaction() as tx:
            return await tx.execute(
                "DELETE FROM change WHERE seq > ? AND seq NOT IN"
                " (SELECT MAX(seq) FROM change WHERE seq > ? GROUP BY kind, object_id)",
                (after, after),
            )

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
            deleted = await tx.execute("DELETE FROM change WHERE seq <= ?", (upto,))
            floor = await tx.fetch("SELECT value FROM meta WHERE key = 'sync.floor'")
            await tx.execute(
                _META_UPSERT, ("sync.floor", str(max(upto, int(floor[0][0]) if floor else 0)))
            )
        return deleted

    async def roll_epoch(self, *, at_least: int = 0) -> EpochRoll:
        """Start a new epoch: the change log so far is dropped and central will be brought in
        line by a snapshot as of the last seq. Seqs keep counting up."""
        async with self._transaction() as tx:
            rows = await tx.fetch("SELECT value FROM meta WHERE key = 'epoch'")
            epoch = max(int(rows[0][0]) + 1, at_least)
            seq = await tx.fetch("SELECT seq FROM sqlite_sequence WHERE name = 'change'")
            as_of = int(seq[0][0]) if seq else 0
            await tx.execute("DELETE FROM change WHERE seq <= ?", (as_of,))
            await tx.executemany(
                _META_UPSERT,
                [("epoch", str(epoch)), ("sync.snapshot_seq", str(as_of)),
                 ("sync.floor", str(as_of))],
            )  # fmt: skip
        return EpochRoll(epoch=epoch, as_of=as_of)

    # --- snapshot ---

    async def snapshot_page(
        self, after: tuple[str, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` objects ``{kind, object_id, image}`` (the snapshot's wire objects)
        after the key ``after``, walking subnets, hosts, records, leases, IPv6 subnets, then
        IPv6 leases, each by object id (short reads)."""
        order = [Kind.SUBNET, Kind.HOST, Kind.RECORD, Kind.LEASE, Kind.SUBNET6, Kind.LEASE6]
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
            Kind.SUBNET6: ("subnet6", "name", "name, image"),
            Kind.LEASE6: ("lease6", "(kind || ':' || prefix)", LEASE6_COLUMNS),
        }[kind]
        where = "" if key is None else f" WHERE {column} > ?"
        rows = await self._read(
            f"SELECT {columns} FROM {table}{where} ORDER BY {column} LIMIT ?",
            (limit,) if key is None else (key, limit),
        )
        out: list[dict[str, Any]] = []
        for row in rows:
            image: dict[str, Any]
            if kind in (Kind.SUBNET, Kind.SUBNET6):
                oid, image = row[0], json.loads(row[1])
            elif kind is Kind.LEASE6:
                lease6 = lease6_from_row(row)
                oid, image = lease6.object_id, lease6.to_image()
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

    # --- central-owned reservations ---

    async def apply_central_host(self, op: Op, image: JsonObject) -> CentralApply:
        """Apply one central-owned reservation from the down log (owner = central).

        Nothing is overwritten that the edge owns: if the reservation's IP is reserved by
        another host or actively leased to another client, or its MAC, client-id, circuit-id
        or hostname is held by another host or a record, or the id names an edge-owned
        host, a conflict row is recorded instead (once per object, field and value) and the
        edge keeps serving what it has. Applying cleanly resolves the object's open conflicts.
        """
        central = dict(image) | {"owner": Owner.CENTRAL.value}
        done = CentralApply(result=DownResult.DELETED if op is Op.DELETE else DownResult.APPLIED)
        async with self._transaction() as tx:
            object_id = str(central.get("id", ""))
            existing_rows = await tx.fetch(
                f"SELECT {HOST_COLUMNS} FROM host WHERE id = ?", (object_id,)
            )
            existing = host_from_row(existing_rows[0]) if existing_rows else None
            if existing is not None and existing.owner is Owner.EDGE:
                return await _conflict(tx, object_id, "id", object_id, existing.to_image(), central)
            if op is Op.DELETE:
                if existing is not None:
                    await tx.execute("DELETE FROM host WHERE id = ?", (object_id,))
                    tx.log(Kind.HOST, object_id, Op.DELETE, existing.to_image(), actor="central",
                           reason="central reservation removed")  # fmt: skip
                await _resolve_conflicts(tx, object_id)
                return done
            try:
                host = normalise_host(Host.from_image(central))
            except (Invalid, KeyError, ValueError, TypeError) as exc:  # a malformed image
                field = exc.field if isinstance(exc, Invalid) else "image"
                return await _conflict(tx, object_id, field, str(exc), None, central)
            if existing is not None and existing.to_image() == host.to_image():
                await _resolve_conflicts(tx, object_id)
                return done
            try:
                await self._check_host(tx, host)
            except (Conflict, Invalid) as exc:
                edge_image = await _edge_holder(tx, host, exc.field)
                return await _conflict(tx, object_id, exc.field, exc.value, edge_image, central)
            if existing is None:
                await tx.execute(HOST_INSERT, host_row(host))
            else:
                await tx.execute(HOST_UPDATE, (*host_row(host)[1:], host.id))
            tx.log(Kind.HOST, host.id, Op.UPSERT, host.to_image(), actor="central",
                   reason="central reservation")  # fmt: skip
            await _resolve_conflicts(tx, object_id)
        return done

    async def resolve_conflict(
        self, conflict_id: int, *, keep: Owner, actor: str, reason: str
    ) -> SyncConflict:
        """Resolve an open conflict, in one transaction.

        ``keep=EDGE``: the edge's object stays and central's reservation is set aside.
        ``keep=CENTRAL``: the edge-owned hosts that collide with central's reservation are
        removed and the reservation is applied (each with its change-log entry).

        Returns:
            The conflict, now resolved.

        Raises:
            NotFound: no open conflict ``conflict_id``.
            Conflict, Invalid: central's reservation still cannot apply (an active lease of
                another client, a static record, an address outside every subnet); nothing
                is changed.
        """
        found = await self._conflict(conflict_id)
        if found is None or found.resolved_at is not None or found.central_image is None:
            raise NotFound("open conflict", str(conflict_id))
        async with self._transaction() as tx:
            if keep is Owner.CENTRAL:
                host = normalise_host(Host.from_image(found.central_image))
                for row in await tx.fetch(
                    f"SELECT {HOST_COLUMNS} FROM host WHERE owner = 'edge' AND (id = ? OR ip = ?"
                    " OR hostname = ? OR mac = ? OR client_id = ? OR circuit_id = ? OR ip6 = ?"
                    " OR duid = ?)",
                    (host.id, _text(host.ip), host.hostname, host.mac, host.client_id,
                     host.circuit_id, _text(host.ip6), host.duid),
                ):  # fmt: skip
                    holder = host_from_row(row)
                    await tx.execute("DELETE FROM host WHERE id = ?", (holder.id,))
                    tx.log(Kind.HOST, holder.id, Op.DELETE, holder.to_image(), actor=actor,
                           reason=reason)  # fmt: skip
                existing = await tx.fetch("SELECT 1 FROM host WHERE id = ?", (host.id,))
                await self._check_host(tx, host)
                if existing:
                    await tx.execute(HOST_UPDATE, (*host_row(host)[1:], host.id))
                else:
                    await tx.execute(HOST_INSERT, host_row(host))
                tx.log(Kind.HOST, host.id, Op.UPSERT, host.to_image(), actor=actor, reason=reason)
                await _resolve_conflicts(tx, found.object_id)
            else:
                await tx.execute(
                    "UPDATE conflict SET resolved_at = ? WHERE id = ?", (tx.now, conflict_id)
                )
        resolved = await self._conflict(conflict_id)
        assert resolved is not None
        return resolved

    async def conflicts(self, *, after_id: int = 0, open_only: bool = False) -> list[SyncConflict]:
        """Conflicts with ``id > after_id`` (open ones only if asked), oldest first."""
        where = " AND resolved_at IS NULL" if open_only else ""
        rows = await self._read(
            f"SELECT {_CONFLICT_COLUMNS} FROM conflict WHERE id > ?{where} ORDER BY id",
            (after_id,),
        )
        return [_conflict_from_row(r) for r in rows]

    async def _conflict(self, conflict_id: int) -> SyncConflict | None:
        rows = await self._read(
            f"SELECT {_CONFLICT_COLUMNS} FROM conflict WHERE id = ?", (conflict_id,)
        )
        return _conflict_from_row(rows[0]) if rows else None


# --- inside a transaction ---


def _text(address: object) -> str | None:
    return None if address is None else str(address)


async def _edge_holder(tx: Transaction, host: Host, field: str) -> dict[str, Any] | None:
    """The image of what the edge holds that ``host`` collides with on ``field``."""
    if field in ("ip", "ip6", "mac", "client_id", "circuit_id", "duid", "hostname"):
        value = getattr(host, field)
        value = _text(value) if field in ("ip", "ip6") else value
        rows = await tx.fetch(
            f"SELECT {HOST_COLUMNS} FROM host WHERE {field} = ? AND id != ?", (value, host.id)
        )
        if rows:
            return host_from_row(rows[0]).to_image()
    if field == "ip":
        rows = await tx.fetch(f"SELECT {LEASE_COLUMNS} FROM lease WHERE ip = ?", (_text(host.ip),))
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


async def _conflict(
    tx: Transaction,
    object_id: str,
    field: str,
    value: str,
    edge_image: Mapping[str, Any] | None,
    central_image: Mapping[str, Any],
) -> CentralApply:
    """Record (or refresh) the open conflict for ``object_id``, ``field`` and ``value``."""
    rows = await tx.fetch(
        "SELECT id, detected_at FROM conflict WHERE kind = 'host' AND object_id = ?"
        " AND field = ? AND value = ? AND resolved_at IS NULL",
        (object_id, field, value),
    )
    edge_text = None if edge_image is None else json.dumps(edge_image, sort_keys=True)
    central_text = json.dumps(central_image, sort_keys=True)
    if rows:
        conflict_id, detected_at = int(rows[0][0]), float(rows[0][1])
        await tx.execute(
            "UPDATE conflict SET edge_image = ?, central_image = ? WHERE id = ?",
            (edge_text, central_text, conflict_id),
        )
    else:
        conflict_id = await tx.insert(
            "INSERT INTO conflict (kind, object_id, field, value, edge_image, central_image,"
            " detected_at) VALUES ('host', ?, ?, ?, ?, ?, ?)",
            (object_id, field, value, edge_text, central_text, tx.now),
        )
        detected_at = tx.now
    conflict = SyncConflict(
        id=conflict_id,
        kind="host",
        object_id=object_id,
        field=field,
        value=value,
        edge_image=edge_image,
        central_image=dict(central_image),
        detected_at=detected_at,
        resolved_at=None,
    )
    return CentralApply(result=DownResult.CONFLICT, conflict=conflict)


async def _resolve_conflicts(tx: Transaction, object_id: str) -> None:
    await tx.execute(
        "UPDATE conflict SET resolved_at = ? WHERE kind = 'host' AND object_id = ?"
        " AND resolved_at IS NULL",
        (tx.now, object_id),
    )
