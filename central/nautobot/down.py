"""The down direction of ``[nautobot]``: reservations an operator makes in Nautobot reach the
site, sent down signed exactly as ``ddi-central reserve add`` sends them (``add_down``).

A look (every ``interval`` seconds): list every address tagged ``ddi-reserve`` in the sites'
namespaces, compare with the reservations made before (table ``ipam_reserve``), and let
``reserve.plan`` say what to queue and withdraw. A full list each time, not a
``last_updated`` cursor: Nautobot keeps no trace of a deleted address or a removed tag that
such a cursor could find, the list is of operator-made reservations (small), and a full
comparison heals whatever a crash or a change of leader left half done. Queuing the same
reservation twice is harmless (the down log's upsert by id), so a look cut short is simply
redone.

Loops: only ``ddi-reserve`` addresses come down; what the up direction writes carries the tag
``ddi`` alone. The operator's address is never changed (Notes aside): when the site reports
the reservation back, the up direction finds its address in ``ipam_reserve`` (``state.marked``)
and writes nothing there, for the reservation or for the client's lease on it. An operator who tags
one of ddi's own addresses ``ddi-reserve`` asks for what the site already reserves: nothing
is sent (``reserve.Served``).

Conflicts: central refuses to queue a reservation whose IP, MAC or name another reservation
of the site holds (``add_down``); the refusal is recorded as a conflict of the site
(``ddi-central conflicts``, id ``nautobot-<reservation>-<field>``) and retried each look; a
conflict the site itself reports (an address it leased to another client) is already there.
Either is written once as a Note (Nautobot's journal) on the address; the keys of what was
written are kept in ``ipam_reserve.noted`` so no later look, restart or other collector
writes it again.

With several collectors on one database, one runs the looks at a time (the lease
``nautobot-down`` in ``ipam_sync``, ``state.acquire``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from central.nautobot import state
from central.nautobot.adapter import IpamError
from central.nautobot.reserve import Held, Marked, host_id, plan
from central.store import CentralStore
from ddi.errors import Conflict, Invalid, NotFound
from ddi.ipam.models import Host, Kind, Op, Owner
from sync.backoff import Backoff

log = logging.getLogger(__name__)

TARGET = "nautobot-down"
"""The lease's name in ``ipam_sync`` (the up direction's is ``nautobot``)."""
LEASE_TTL = 15.0
BACKOFF = Backoff(base=0.5, cap=60.0)
CONFLICT_PREFIX = "nautobot-"
"""Ids of the conflicts central records itself (a site's own ids are numbers)."""


class ReserveSource(Protocol):
    """What the down direction needs of an IPAM (Nautobot: ``reserve_client``)."""

    async def marked(self, namespaces: Mapping[str, str]) -> list[Marked]:
        """Every address marked for ddi in each site's namespace (site → namespace)."""

    async def note(self, ipam_id: str, text: str) -> None:
        """Write ``text`` to the address's journal."""

    async def forget(self) -> None: ...
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LookResult:
    marked: int
    queued: int
    withdrawn: int
    refused: int
    noted: int


# --- the table ---


def _host(text: str) -> Host | None:
    return Host.from_image(json.loads(text)) if text else None


def _text(host: Host | None) -> str:
    return "" if host is None else json.dumps(host.to_image(), sort_keys=True)


async def load(store: CentralStore) -> dict[str, Held]:
    async with store.transaction() as tx:
        rows = await tx.fetchall(
            "SELECT ipam_id, site, image, noted, refused, refused_at FROM ipam_reserve"
        )
    return {
        str(r[0]): Held(
            ipam_id=str(r[0]),
            site=str(r[1]),
            host=_host(r[2]),
            noted=frozenset(json.loads(r[3])),
            refused=_host(r[4]),
            refused_at=str(r[5]),
        )
        for r in rows
    }


async def _save(store: CentralStore, held: Held) -> None:
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO ipam_reserve (ipam_id, site, image, noted, refused, refused_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ipam_id) DO UPDATE SET"
            " site = excluded.site, image = excluded.image, noted = excluded.noted,"
            " refused = excluded.refused, refused_at = excluded.refused_at",
            held.ipam_id,
            held.site,
            _text(held.host),
            json.dumps(sorted(held.noted)),
            _text(held.refused),
            held.refused_at,
        )


async def _drop(store: CentralStore, ipam_id: str) -> None:
    async with store.transaction() as tx:
        await tx.execute("DELETE FROM ipam_reserve WHERE ipam_id = ?", ipam_id)


async def _resolve(store: CentralStore, site: str, host_id: str, now: float) -> None:
    """Close central's own conflicts on ``host_id``: the reservation went down after all."""
    async with store.transaction() as tx:
        await tx.execute(
            "UPDATE conflict SET resolved_at = ? WHERE site = ? AND object_id = ?"
            " AND resolved_at IS NULL AND id LIKE ?",
            now,
            site,
            host_id,
            f"{CONFLICT_PREFIX}%",
        )


# --- what a note says ---


def _who(image: Mapping[str, Any]) -> str:
    parts = [f"{k} {image[k]}" for k in ("mac", "hostname", "ip") if image.get(k)]
    return ", ".join(parts) or "another object"


def refused_note(site: str, field: str, value: str, holder: Mapping[str, Any] | None) -> str:
    held_by = "" if holder is None else f" (held by {_who(holder)})"
    return (
        f"ddi-central: site {site} cannot take this reservation: its {field} {value} belongs"
        f" to another reservation there{held_by}. It is tried again when this address or the"
        " site changes, and `ddi-central conflicts` lists it until then."
    )


def reported_note(site: str, conflict: Mapping[str, Any]) -> str:
    edge = conflict.get("edge_image") or {}
    since = " It is resolved since." if conflict.get("resolved_at") else ""
    return (
        f"ddi-central: site {site} reports a conflict with this reservation: its"
        f" {conflict['field']} {conflict['value']} is held there by {_who(edge)}; the site"
        f" keeps its own until an operator resolves conflict {conflict['id']} there"
        f" (`ddi sync resolve`).{since}"
    )


def served_note(site: str) -> str:
    return (
        f"ddi-central: site {site} reserves this address for this MAC itself; nothing is"
        " sent down for it (and what was sent before is withdrawn)."
    )


def unusable_note(field: str, value: str, reason: str) -> str:
    shown = f" {value!r}" if value else ""
    return f"ddi-central: this address cannot become a reservation: {field}{shown}: {reason}."


# --- the task ---


class ReserveSync:
    """Looks at the IPAM's marked addresses and sends them down, one collector at a time."""

    def __init__(
        self,
        store: CentralStore,
        make_source: Callable[[], ReserveSource],
        *,
        namespace_of: Callable[[str], str],
        interval: float,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._make_source = make_source
        self._source: ReserveSource | None = None
        self._namespace_of = namespace_of
        self._interval = interval
        self.holder = holder or uuid.uuid4().hex
        self._clock = clock
        self._random = random.Random()

    def _get_source(self) -> ReserveSource:
        if self._source is None:
            self._source = self._make_source()
        return self._source

    async def run(self, stop: asyncio.Event) -> None:
        """Looks until ``stop`` is set; errors are logged and retried after a backoff."""
        attempt = 0
        try:
            while not stop.is_set():
                wait = self._interval
                try:
                    if await state.acquire(
                        self._store, TARGET, self.holder, now=self._clock(), ttl=LEASE_TTL
                    ):
                        result = await self.look()
                        if result.queued or result.withdrawn or result.noted:
                            log.info("nautobot reservations: %s", result)
                    elif self._source is not None:
                        await self._source.forget()  # another collector looks meanwhile
                    attempt = 0
                except (IpamError, OSError, state.LostLease) as exc:
                    attempt += 1
                    wait = BACKOFF.delay(attempt, self._random.random())
                    log.warning("nautobot reservations: %s; again in %.1f s", exc, wait)
                    if self._source is not None:
                        await self._source.forget()
                except Exception:
                    # The database or a bug: the collector keeps serving the edges and the
                    # looks go on (a crash here would take the whole collector down).
                    attempt += 1
                    wait = BACKOFF.delay(attempt, self._random.random())
                    log.exception("nautobot reservations: look failed; again in %.1f s", wait)
                    if self._source is not None:
                        await self._source.forget()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
        finally:
            with contextlib.suppress(Exception):
                await state.release(self._store, TARGET, self.holder)
            if self._source is not None:
                await self._source.close()

    async def look(self) -> LookResult:
        """One comparison of the IPAM's marked addresses with the reservations sent down.

        Raises:
            IpamError: the IPAM is unreachable or refused (what was done stays done).
        """
        source = self._get_source()
        cursors = {s.site: f"{s.epoch}:{s.applied_seq}" for s in await self._store.sites()}
        marked = await source.marked({site: self._namespace_of(site) for site in cursors})
        held = await load(self._store)
        todo = plan(marked, held, {}, cursors)
        if todo.queue:
            # Only for what would be sent: the sites' own reservations, read whole.
            own = await self._own({q.site for q in todo.queue})
            todo = plan(marked, held, own, cursors)
        rows = dict(held)
        queued = withdrawn = refused = noted = 0
        for w in todo.withdraw:
            with contextlib.suppress(NotFound):  # the site was removed
                await self._fence()
                await self._store.add_down(w.site, Op.DELETE, w.host)
            rows[w.ipam_id] = replace(rows[w.ipam_id], host=None)
            await _save(self._store, rows[w.ipam_id])
            withdrawn += 1
        for q in todo.queue:
            before = rows.get(q.ipam_id)
            # Refused, the down log keeps what it had for this address (withdrawn above when
            # the address moved to another site).
            kept = None if before is None or before.site != q.site else before.host
            row = Held(ipam_id=q.ipam_id, site=q.site, host=kept,
                       noted=frozenset() if before is None else before.noted)  # fmt: skip
            try:
                await self._fence()
                await self._store.add_down(q.site, Op.UPSERT, q.host)
            except (Conflict, Invalid) as exc:
                refused += 1
                row, wrote = await self._refused(source, row, q.host, exc)
                row = replace(row, refused=q.host, refused_at=cursors.get(q.site, ""))
                noted += wrote
            else:
                row = replace(row, host=q.host)
                await _resolve(self._store, q.site, q.host.id, self._clock())
                queued += 1
            rows[q.ipam_id] = row
            await _save(self._store, row)
        for u in todo.unusable:
            before = rows.get(u.ipam_id)
            row = Held(ipam_id=u.ipam_id, site=u.site, host=None,
                       noted=frozenset() if before is None else before.noted)  # fmt: skip
            if u.key not in row.noted:
                await self._fence()
                await source.note(u.ipam_id, unusable_note(u.field, u.value, u.reason))
                row = replace(row, noted=row.noted | {u.key})
                noted += 1
            if row != before:
                rows[u.ipam_id] = row
                await _save(self._store, row)
        for served in todo.served:
            before = rows.get(served.ipam_id)
            row = Held(ipam_id=served.ipam_id, site=served.site, host=None,
                       noted=frozenset() if before is None else before.noted)  # fmt: skip
            if served.key not in row.noted:
                await self._fence()
                await source.note(served.ipam_id, served_note(served.site))
                row = replace(row, noted=row.noted | {served.key})
                noted += 1
            if row != before:
                rows[served.ipam_id] = row
                await _save(self._store, row)
        noted += await self._note_reported(source, rows)
        present = {m.ipam_id for m in marked}
        for ipam_id, row in rows.items():
            if ipam_id not in present and row.host is None:
                await _drop(self._store, ipam_id)
        return LookResult(marked=len(present), queued=queued, withdrawn=withdrawn,
                          refused=refused, noted=noted)  # fmt: skip

    async def _fence(self) -> None:
        """Renew the lease before a write: a look that outlived it (another collector looks
        now) stops rather than write what the other one writes too.

        Raises:
            state.LostLease: another collector holds it.
        """
        if not await state.acquire(
            self._store, TARGET, self.holder, now=self._clock(), ttl=LEASE_TTL
        ):
            raise state.LostLease(TARGET)

    async def _own(self, sites: set[str]) -> dict[tuple[str, str], tuple[str, str]]:
        """``(site, ip)`` → ``(id, MAC)`` of the sites' own (edge-owned) reservations."""
        own: dict[tuple[str, str], tuple[str, str]] = {}
        for site in sorted(sites):
            for obj in await self._store.objects(site, Kind.HOST):
                image = obj["image"]
                if image.get("owner") == Owner.EDGE.value and image.get("ip"):
                    own[(site, str(image["ip"]))] = (obj["object_id"], str(image.get("mac")))
        return own

    async def _refused(
        self, source: ReserveSource, row: Held, host: Host, exc: Conflict | Invalid
    ) -> tuple[Held, int]:
        """Record central's refusal as a conflict of the site and note it once."""
        field, value = exc.field, str(exc.value)
        holder = await self._holder(row.site, host.id, field, value)
        conflict_id = f"{CONFLICT_PREFIX}{host.id}-{field}"
        await self._store.add_conflicts(
            row.site,
            [
                {
                    "id": conflict_id,
                    "kind": "host",
                    "object_id": host.id,
                    "field": field,
                    "value": value,
                    "edge_image": holder or {},
                    "central_image": host.to_image() | {"owner": Owner.CENTRAL.value},
                    "detected_at": self._clock(),
                    "resolved_at": None,
                }
            ],
        )
        key = f"conflict:{conflict_id}"
        if key in row.noted:
            return row, 0
        await self._fence()
        await source.note(row.ipam_id, refused_note(row.site, field, value, holder))
        return replace(row, noted=row.noted | {key}), 1

    async def _holder(
        self, site: str, host_id: str, field: str, value: str
    ) -> dict[str, Any] | None:
        """The site's object holding ``field`` = ``value`` (central's copy), if any."""
        for obj in await self._store.objects(site, Kind.HOST):
            image = obj["image"]
            if obj["object_id"] != host_id and str(image.get(field)) == value:
                return dict(image)
        return None

    async def _note_reported(self, source: ReserveSource, rows: dict[str, Held]) -> int:
        """Note, once each, the conflicts sites reported on these addresses' reservations
        (resolved ones too: a conflict may be over before a look sees it)."""
        by_host = {host_id(r.ipam_id): r.ipam_id for r in rows.values()}
        wrote = 0
        for c in await self._store.conflicts():
            ipam_id = by_host.get(str(c["object_id"]))
            if ipam_id is None or str(c["id"]).startswith(CONFLICT_PREFIX):
                continue
            row = rows[ipam_id]
            key = f"site:{c['id']}"
            if row.site != c["site"] or key in row.noted:
                continue
            await self._fence()
            await source.note(ipam_id, reported_note(row.site, c))
            rows[ipam_id] = row = replace(row, noted=row.noted | {key})
            await _save(self._store, row)
            wrote += 1
        return wrote
