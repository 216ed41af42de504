"""Central's store, written once in SQL against the ``Tx`` seam (``central.schema``); a
subclass per database gives it transactions (``central.store``).

Rules:
* A batch or snapshot page is decided (``central.admission.check``) and applied inside ONE
  transaction that first locks the site's row, so two collectors never apply the same batch
  and a refused or failed batch leaves nothing behind.
* The global feed cursor ``gseq`` is allocated from a counter row locked for the rest of the
  transaction: feed rows become visible in ``gseq`` order, so a consumer paging with
  ``after=N`` never skips a row that commits later with a smaller number.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from central import admission
from central.admission import SiteState
from central.schema import CHANGE_COLUMNS, SITE_COLUMNS, Tx
from ddi.errors import Conflict, Invalid, NotFound
from ddi.ipam.models import Host, Kind, Op, Owner
from sync.protocol import (
    CAPABILITIES,
    KIND_ORDER,
    Apply,
    Batch,
    Decision,
    DownEntry,
    JsonObject,
    Refuse,
    SnapshotPage,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What central did with a batch or snapshot page, and its cursor afterwards."""

    decision: Decision
    epoch: int
    applied_seq: int
    snapshot_next_page: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteInfo:
    site: str
    public_key: bytes
    epoch: int
    applied_seq: int
    snapshot_epoch: int
    snapshot_as_of: int
    snapshot_next_page: int
    snapshot_after: tuple[str, str] | None
    last_seen: float | None
    """When central last took an upload (a batch or snapshot page) from the site."""
    enrolled_at: float
    last_contact: float | None = None
    """When the site last made an authenticated request (``SqlCentralStore.touch``)."""

    @property
    def heard_from(self) -> float | None:
        """The latest word from the site, upload or poll."""
        times = [t for t in (self.last_seen, self.last_contact) if t is not None]
        return max(times) if times else None

    def state(self) -> SiteState:
        return SiteState(
            site=self.site,
            public_key=self.public_key,
            epoch=self.epoch,
            applied_seq=self.applied_seq,
            snapshot_epoch=self.snapshot_epoch,
            snapshot_as_of=self.snapshot_as_of,
            snapshot_next_page=self.snapshot_next_page,
        )

    def to_image(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "epoch": self.epoch,
            "applied_seq": self.applied_seq,
            "snapshot": {
                "epoch": self.snapshot_epoch,
                "as_of_seq": self.snapshot_as_of,
                "next_page": self.snapshot_next_page,
                "after": None if self.snapshot_after is None else list(self.snapshot_after),
            },
            "last_seen": self.last_seen,
            "last_contact": self.last_contact,
            "enrolled_at": self.enrolled_at,
            # What this central takes beyond the previous version's kinds (sync.protocol).
            "accepts": list(CAPABILITIES),
        }


_KIND_RANK = {k.value: i for i, k in enumerate(KIND_ORDER)}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class SqlCentralStore:
    """The behaviour, written once against ``Tx``; subclasses give transactions."""

    _for_update = ""
    dialect = "sqlite"
    """Which SQL the expressions of ``central.schema.image_field`` are written in."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def _transaction(self) -> Any:  # an async context manager yielding a Tx
        raise NotImplementedError

    def _read(self) -> Any:
        """A read-only transaction (an async context manager yielding a ``Tx``): one
        consistent view of what is committed, which need not wait for the writers."""
        return self._transaction()

    async def close(self) -> None:
        raise NotImplementedError

    def transaction(self) -> Any:
        """One transaction (an async context manager yielding a ``Tx``) for tables the
        methods below do not cover: ``central.nautobot.state``."""
        return self._transaction()

    # --- sites ---

    async def add_site(self, site: str, public_key: bytes, *, replace: bool = False) -> None:
        """Enrol ``site`` with its raw Ed25519 public key.

        Raises:
            Conflict: the site is enrolled already (and ``replace`` is false).
        """
        async with self._transaction() as tx:
            row = await tx.fetchone("SELECT public_key FROM site WHERE id = ?", site)
            if row is not None:
                if not replace:
                    raise Conflict("site", site, "an enrolled site (use --replace to re-key)")
                await tx.execute("UPDATE site SET public_key = ? WHERE id = ?", public_key, site)
                return
            await tx.execute(
                "INSERT INTO site (id, public_key, enrolled_at) VALUES (?, ?, ?)",
                site,
                public_key,
                self._clock(),
            )

    @staticmethod
    def _site_info(row: Sequence[Any]) -> SiteInfo:
        after = json.loads(row[8]) if row[8] else None
        return SiteInfo(
            site=row[0],
            public_key=bytes(row[1]),
            epoch=int(row[2]),
            applied_seq=int(row[3]),
            snapshot_epoch=int(row[5]),
            snapshot_as_of=int(row[6]),
            snapshot_next_page=int(row[7]),
            snapshot_after=None if after is None else (after[0], after[1]),
            last_seen=row[9],
            enrolled_at=float(row[10]),
            last_contact=None if row[11] is None else float(row[11]),
        )

    async def _locked_state(self, tx: Tx, site: str) -> tuple[SiteState | None, str]:
        row = await tx.fetchone(
            f"SELECT {SITE_COLUMNS} FROM site WHERE id = ?{self._for_update}", site
        )
        if row is None:
            return None, ""
        info = self._site_info(row)
        return (
            SiteState(
                site=info.site,
                public_key=info.public_key,
                epoch=info.epoch,
                applied_seq=info.applied_seq,
                last_sha256=str(row[4]),
                snapshot_epoch=info.snapshot_epoch,
                snapshot_as_of=info.snapshot_as_of,
                snapshot_next_page=info.snapshot_next_page,
            ),
            str(row[4]),
        )

    async def site(self, site: str) -> SiteInfo | None:
        async with self._read() as tx:
            row = await tx.fetchone(f"SELECT {SITE_COLUMNS} FROM site WHERE id = ?", site)
        return None if row is None else self._site_info(row)

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """The rows of a read-only statement (``?`` placeholders): the fleet console's reads
        (``central.console.reads``)."""
        async with self._read() as tx:
            rows: list[tuple[Any, ...]] = await tx.fetchall(sql, *args)
        return rows

    async def touch(self, site: str, when: float) -> None:
        """Record an authenticated request from ``site`` at ``when`` (never moves back)."""
        async with self._transaction() as tx:
            await tx.execute(
                "UPDATE site SET last_contact = ? WHERE id = ?"
                " AND (last_contact IS NULL OR last_contact < ?)",
                when,
                site,
                when,
            )

    async def sites(self) -> list[SiteInfo]:
        async with self._read() as tx:
            rows = await tx.fetchall(f"SELECT {SITE_COLUMNS} FROM site ORDER BY id")
        return [self._site_info(r) for r in rows]

    # --- batches ---

    async def _next_gseq(self, tx: Tx, count: int) -> int:
        """Reserve ``count`` feed numbers; returns the first. Locks the counter row."""
        row = await tx.fetchone(f"SELECT value FROM counter WHERE name = 'gseq'{self._for_update}")
        assert row is not None, "the schema creates the counter row"
        first = int(row[0]) + 1
        await tx.execute("UPDATE counter SET value = ? WHERE name = 'gseq'", first + count - 1)
        return first

    async def _write_changes(self, tx: Tx, site: str, entries: Sequence[JsonObject]) -> None:
        """Append ``entries`` (Change images) to the feed and apply them to the objects."""
        if not entries:
            return
        now = self._clock()
        first = await self._next_gseq(tx, len(entries))
        rows = []
        final: dict[tuple[str, str], tuple[int, JsonObject]] = {}
        for i, e in enumerate(entries):
            gseq = first + i
            rows.append(
                (
                    gseq,
                    site,
                    int(e["epoch"]),
                    int(e["seq"]),
                    str(e["kind"]),
                    str(e["object_id"]),
                    str(e["op"]),
                    _dumps(e.get("image") or {}),
                    str(e.get("actor", "")),
                    str(e.get("reason", "")),
                    float(e.get("time", 0.0)),
                    now,
                )
            )
            final[(str(e["kind"]), str(e["object_id"]))] = (gseq, e)
        await tx.insert("change", CHANGE_COLUMNS, rows)
        upserts = [
            (site, kind, oid, _dumps(e.get("image") or {}), gseq)
            for (kind, oid), (gseq, e) in final.items()
            if e["op"] == Op.UPSERT.value
        ]
        deletes = [
            (site, kind, oid) for (kind, oid), (_, e) in final.items() if e["op"] == Op.DELETE.value
        ]
        if upserts:
            await tx.upsert_objects(site, [u[1:] for u in upserts])
        if deletes:
            await tx.delete_objects(site, [d[1:] for d in deletes])

    async def apply_batch(self, site: str, batch: Batch) -> Outcome:
        """Decide on ``batch`` and, when it is next in line, apply it, all in one transaction."""
        async with self._transaction() as tx:
            state, _ = await self._locked_state(tx, site)
            decision = admission.check(batch, state, site=site)
            if state is None:
                return Outcome(decision=decision, epoch=0, applied_seq=0)
            if not isinstance(decision, Apply):
                if not isinstance(decision, Refuse):
                    await tx.execute(
                        "UPDATE site SET last_seen = ? WHERE id = ?", self._clock(), site
                    )
                return Outcome(decision=decision, epoch=state.epoch, applied_seq=state.applied_seq)
            await self._write_changes(tx, site, batch.entries)
            await tx.execute(
                "UPDATE site SET epoch = ?, applied_seq = ?, last_sha256 = ?, last_seen = ?"
                " WHERE id = ?",
                batch.epoch,
                batch.to_seq,
                batch.sha256,
                self._clock(),
                site,
            )
            return Outcome(decision=decision, epoch=batch.epoch, applied_seq=batch.to_seq)

    async def apply_snapshot_page(self, site: str, page: SnapshotPage) -> Outcome:
        """Stage a snapshot page; the last one replaces the site's objects."""
        async with self._transaction() as tx:
            state, _ = await self._locked_state(tx, site)
            decision = admission.check_snapshot_page(page, state, site=site)
            if state is None:
                return Outcome(decision=decision, epoch=0, applied_seq=0)
            if not isinstance(decision, Apply):
                return Outcome(
                    decision=decision,
                    epoch=state.epoch,
                    applied_seq=state.applied_seq,
                    snapshot_next_page=state.snapshot_next_page,
                )
            if page.page == 0:
                await tx.execute("DELETE FROM snapshot_object WHERE site = ?", site)
            if page.objects:
                await tx.executemany(
                    "INSERT INTO snapshot_object (site, kind, object_id, image)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (site, kind, object_id)"
                    " DO UPDATE SET image = excluded.image",
                    [
                        (site, str(o["kind"]), str(o["object_id"]), _dumps(o["image"]))
                        for o in page.objects
                    ],
                )
            if not page.last:
                key = page.last_key
                await tx.execute(
                    "UPDATE site SET snapshot_epoch = ?, snapshot_as_of = ?,"
                    " snapshot_next_page = ?, snapshot_after = ?, last_seen = ? WHERE id = ?",
                    page.epoch,
                    page.as_of_seq,
                    page.page + 1,
                    None if key is None else _dumps(list(key)),
                    self._clock(),
                    site,
                )
                return Outcome(
                    decision=decision,
                    epoch=state.epoch,
                    applied_seq=state.applied_seq,
                    snapshot_next_page=page.page + 1,
                )
            await self._finish_snapshot(tx, site, page)
            return Outcome(decision=decision, epoch=page.epoch, applied_seq=page.as_of_seq)

    async def _finish_snapshot(self, tx: Tx, site: str, page: SnapshotPage) -> None:
        """Replace the site's objects by the staged snapshot; the feed gets the difference."""
        current = {
            (k, o): img
            for k, o, img in await tx.fetchall(
                "SELECT kind, object_id, image FROM object WHERE site = ?", site
            )
        }
        staged = {
            (k, o): img
            for k, o, img in await tx.fetchall(
                "SELECT kind, object_id, image FROM snapshot_object WHERE site = ?", site
            )
        }
        base = {
            "epoch": page.epoch,
            "seq": page.as_of_seq,
            "actor": "snapshot",
            "reason": "",
            "time": self._clock(),
        }
        entries: list[JsonObject] = []
        for key in sorted(staged.keys() | current.keys(), key=lambda k: (_KIND_RANK[k[0]], k[1])):
            if key in staged and (
                key not in current or json.loads(staged[key]) != json.loads(current[key])
            ):
                image = json.loads(staged[key])
                entries.append(
                    base | {"kind": key[0], "object_id": key[1], "op": "upsert"} | {"image": image}
                )
            elif key not in staged:
                image = json.loads(current[key])
                entries.append(
                    base | {"kind": key[0], "object_id": key[1], "op": "delete"} | {"image": image}
                )
        await self._write_changes(tx, site, entries)
        await tx.execute("DELETE FROM snapshot_object WHERE site = ?", site)
        await tx.execute(
            "UPDATE site SET epoch = ?, applied_seq = ?, last_sha256 = '', snapshot_epoch = 0,"
            " snapshot_as_of = 0, snapshot_next_page = 0, snapshot_after = NULL, last_seen = ?"
            " WHERE id = ?",
            page.epoch,
            page.as_of_seq,
            self._clock(),
            site,
        )

    async def count_refusal(self, site: str, reason: str) -> None:
        async with self._transaction() as tx:
            await tx.execute(
                "INSERT INTO refusal (site, reason, count) VALUES (?, ?, 1)"
                " ON CONFLICT (site, reason) DO UPDATE SET count = refusal.count + 1",
                site,
                reason,
            )

    async def refusals(self) -> dict[str, dict[str, int]]:
        async with self._read() as tx:
            rows = await tx.fetchall("SELECT site, reason, count FROM refusal ORDER BY site")
        result: dict[str, dict[str, int]] = {}
        for site, reason, count in rows:
            result.setdefault(site, {})[reason] = int(count)
        return result

    # --- reads for the pull feed and exports ---

    async def changes(
        self, *, after: int, limit: int, site: str | None = None
    ) -> list[dict[str, Any]]:
        """Feed entries with ``gseq > after``, oldest first, at most ``limit``."""
        where, args = (
            ("gseq > ?", [after]) if site is None else ("site = ? AND gseq > ?", [site, after])
        )
        async with self._read() as tx:
            rows = await tx.fetchall(
                "SELECT gseq, site, epoch, seq, kind, object_id, op, image, actor, reason, time"
                f" FROM change WHERE {where} ORDER BY gseq LIMIT ?",
                *args,
                limit,
            )
        return [
            {
                "gseq": int(r[0]),
                "site": r[1],
                "epoch": int(r[2]),
                "seq": int(r[3]),
                "kind": r[4],
                "object_id": r[5],
                "op": r[6],
                "image": json.loads(r[7]),
                "actor": r[8],
                "reason": r[9],
                "time": float(r[10]),
            }
            for r in rows
        ]

    async def objects(self, site: str | None, kind: Kind | None = None) -> list[dict[str, Any]]:
        """Current objects ``{site, kind, object_id, image}``, by site, kind and id."""
        clauses, args = [], []
        if site is not None:
            clauses.append("site = ?")
            args.append(site)
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind.value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        async with self._read() as tx:
            rows = await tx.fetchall(
                f"SELECT site, kind, object_id, image FROM object{where}"
                " ORDER BY site, kind, object_id",
                *args,
            )
        return [
            {"site": r[0], "kind": r[1], "object_id": r[2], "image": json.loads(r[3])} for r in rows
        ]

    # --- down log ---

    async def add_down(self, site: str, op: Op, host: Host) -> DownEntry:
        """Queue a central-owned reservation for ``site``.

        Raises:
            NotFound: unknown site.
            Invalid: the address is outside every subnet the site reported.
            Conflict: the site's IP, MAC or hostname is held by another of its hosts.
        """
        image = host.to_image() | {"owner": Owner.CENTRAL.value}
        async with self._transaction() as tx:
            row = await tx.fetchone(f"SELECT id FROM site WHERE id = ?{self._for_update}", site)
            if row is None:
                raise NotFound("site", site)
            if op is Op.UPSERT and host.ip is None:
                # Central's reservations are IPv4 (the down log of the previous version).
                raise Invalid("ip", "", "a central reservation needs an IPv4 address")
            if op is Op.UPSERT:
                cidrs = [
                    ipaddress.IPv4Network(json.loads(text)["cidr"])
                    for (text,) in await tx.fetchall(
                        "SELECT image FROM object WHERE site = ? AND kind = 'subnet'", site
                    )
                ]
                address = ipaddress.IPv4Address(str(host.ip))
                if cidrs and not any(address in cidr for cidr in cidrs):
                    served = ", ".join(str(c) for c in cidrs)
                    raise Invalid("ip", str(host.ip), f"outside every subnet of {site} ({served})")
                for (img_text,) in await tx.fetchall(
                    "SELECT image FROM object WHERE site = ? AND kind = 'host' AND object_id <> ?",
                    site,
                    host.id,
                ):
                    other = json.loads(img_text)
                    for name in ("ip", "mac", "hostname", "client_id"):
                        if image.get(name) is not None and other.get(name) == image[name]:
                            raise Conflict(name, str(image[name]), f"host {other.get('id')}")
            last = await tx.fetchone("SELECT MAX(dseq) FROM down WHERE site = ?", site)
            dseq = int(last[0] or 0) + 1 if last else 1
            await tx.execute(
                "INSERT INTO down (site, dseq, op, image, created_at) VALUES (?, ?, ?, ?, ?)",
                site,
                dseq,
                op.value,
                _dumps(image),
                self._clock(),
            )
        return DownEntry(dseq=dseq, op=op, image=image)

    async def down(self, site: str, *, after: int, limit: int) -> list[DownEntry]:
        async with self._read() as tx:
            rows = await tx.fetchall(
                "SELECT dseq, op, image FROM down WHERE site = ? AND dseq > ?"
                " ORDER BY dseq LIMIT ?",
                site,
                after,
                limit,
            )
        return [DownEntry(dseq=int(r[0]), op=Op(r[1]), image=json.loads(r[2])) for r in rows]

    async def central_host(self, site: str, key: str) -> Host:
        """The newest central-owned reservation of ``site`` whose id, MAC, IP or hostname
        is ``key``, from the down log.

        Raises:
            NotFound: no such reservation.
        """
        async with self._transaction() as tx:
            rows = await tx.fetchall(
                "SELECT op, image FROM down WHERE site = ? ORDER BY dseq", site
            )
        found: dict[str, Host] = {}
        for op, text in rows:
            host = Host.from_image(json.loads(text))
            if op == Op.DELETE.value:
                found.pop(host.id, None)
            else:
                found[host.id] = host
        for host in found.values():
            keys = (host.id, host.mac, host.ip, host.ip6, host.hostname, host.duid)
            if key in {str(k) for k in keys if k is not None}:
                return host
        raise NotFound("central reservation", key)

    # --- conflicts ---

    async def add_conflicts(self, site: str, conflicts: Sequence[JsonObject]) -> int:
        """Record conflicts a site reported (idempotent by the site's conflict id)."""
        now = self._clock()
        rows = [
            (
                site,
                str(c["id"]),
                str(c.get("kind", "host")),
                str(c.get("object_id", "")),
                str(c.get("field", "")),
                str(c.get("value", "")),
                _dumps(c.get("edge_image") or {}),
                _dumps(c.get("central_image") or {}),
                float(c.get("detected_at", now)),
                c.get("resolved_at"),
                now,
            )
            for c in conflicts
        ]
        async with self._transaction() as tx:
            await tx.executemany(
                "INSERT INTO conflict (site, id, kind, object_id, field, value, edge_image,"
                " central_image, detected_at, resolved_at, reported_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (site, id) DO UPDATE SET resolved_at = excluded.resolved_at",
                rows,
            )
        return len(rows)

    async def conflicts(self, site: str | None = None) -> list[dict[str, Any]]:
        where, args = ("", []) if site is None else (" WHERE site = ?", [site])
        async with self._read() as tx:
            rows = await tx.fetchall(
                "SELECT site, id, kind, object_id, field, value, edge_image, central_image,"
                f" detected_at, resolved_at FROM conflict{where} ORDER BY detected_at, id",
                *args,
            )
        return [
            {
                "site": r[0],
                "id": r[1],
                "kind": r[2],
                "object_id": r[3],
                "field": r[4],
                "value": r[5],
                "edge_image": json.loads(r[6]),
                "central_image": json.loads(r[7]),
                "detected_at": float(r[8]),
                "resolved_at": r[9],
            }
            for r in rows
        ]
