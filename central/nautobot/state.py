"""The IPAM sync's durable state in central's database (tables ``ipam_sync`` and
``ipam_claim``, ``central.schema``), one row set per target (``"nautobot"``):

* the cursor: the feed's ``gseq`` up to which the IPAM confirmed every write;
* the lease: which collector runs the task (``holder``) and until when. Collectors sharing one
  PostgreSQL take the lease in turn; one whose lease ran out (it died, or lost the database)
  is replaced by the next to look. The cursor only moves in a transaction that also proves
  the lease is still the mover's, so a collector that lost it cannot move the cursor;
* the claims: which IPAM keys each ddi object claims (``central.nautobot.mapping``), so a
  change is merged with what else holds its address, and a moved or deleted object's old
  key is known.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from central.nautobot.mapping import Claim, ObjectKey, SiteKey
from central.schema import Tx
from central.store import CentralStore

CHUNK = 400
"""Keys per ``IN (...)`` list: far below SQLite's 32,766 parameters."""


class LostLease(Exception):
    """Another collector holds the task's lease now: this one must stop writing."""


async def _ensure_row(tx: Tx, target: str) -> None:
    await tx.execute(
        "INSERT INTO ipam_sync (name, gseq, holder, lease_until) VALUES (?, 0, '', 0)"
        " ON CONFLICT (name) DO NOTHING",
        target,
    )


async def acquire(store: CentralStore, target: str, holder: str, *, now: float, ttl: float) -> bool:
    """Take or renew the lease for ``ttl`` seconds; whether ``holder`` has it."""
    async with store.transaction() as tx:
        await _ensure_row(tx, target)
        # One statement: under PostgreSQL the row lock makes a second taker re-read the row
        # and find the lease taken.
        await tx.execute(
            "UPDATE ipam_sync SET holder = ?, lease_until = ?"
            " WHERE name = ? AND (holder = ? OR holder = '' OR lease_until < ?)",
            holder,
            now + ttl,
            target,
            holder,
            now,
        )
        row = await tx.fetchone("SELECT holder FROM ipam_sync WHERE name = ?", target)
    return row is not None and row[0] == holder


async def release(store: CentralStore, target: str, holder: str) -> None:
    """Give the lease up (a clean stop): another collector takes over at once."""
    async with store.transaction() as tx:
        await tx.execute(
            "UPDATE ipam_sync SET holder = '', lease_until = 0 WHERE name = ? AND holder = ?",
            target,
            holder,
        )


async def cursor(store: CentralStore, target: str) -> int:
    async with store.transaction() as tx:
        row = await tx.fetchone("SELECT gseq FROM ipam_sync WHERE name = ?", target)
    return 0 if row is None else int(row[0])


async def head(store: CentralStore) -> int:
    """The feed's newest ``gseq``."""
    async with store.transaction() as tx:
        row = await tx.fetchone("SELECT value FROM counter WHERE name = 'gseq'")
    return 0 if row is None else int(row[0])


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


async def _rows_in(
    tx: Tx, select: str, args: Sequence[object], column: str, by_site: Mapping[str, set[str]]
) -> list[tuple[str, tuple[object, ...]]]:
    """``(site, row)`` for each row of ``select`` (ending in ``WHERE`` or ``AND``) whose site
    is a key of ``by_site`` and whose ``column`` is among that site's values, in chunks of
    bound parameters."""
    out: list[tuple[str, tuple[object, ...]]] = []
    for site, values in by_site.items():
        for chunk in _chunks(sorted(values)):
            rows = await tx.fetchall(
                f"{select} site = ? AND {column} IN ({', '.join('?' * len(chunk))})",
                *args,
                site,
                *chunk,
            )
            out.extend((site, row) for row in rows)
    return out


def _by_site(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for site, value in pairs:
        grouped.setdefault(site, set()).add(value)
    return grouped


async def marked(store: CentralStore) -> set[SiteKey]:
    """``(site, "ip:ADDRESS")`` of each reservation the down direction made from an address an
    operator marked in the IPAM (table ``ipam_reserve``): that address is the IPAM's own
    object, which the up direction neither makes a second time nor changes."""
    async with store.transaction() as tx:
        rows = await tx.fetchall("SELECT site, image FROM ipam_reserve WHERE image <> ''")
    keys: set[SiteKey] = set()
    for site, image in rows:
        ip = json.loads(image).get("ip")
        if ip:
            keys.add((str(site), f"ip:{ip}"))
    return keys


async def claims_of(
    store: CentralStore, target: str, objects: Iterable[ObjectKey]
) -> dict[ObjectKey, tuple[Claim, ...]]:
    """The claims held now by each of ``objects``."""
    wanted = set(objects)
    found: dict[ObjectKey, list[Claim]] = {}
    async with store.transaction() as tx:
        rows = await _rows_in(
            tx,
            "SELECT kind, object_id, image FROM ipam_claim WHERE target = ? AND",
            (target,),
            "object_id",
            _by_site((site, object_id) for site, _, object_id in wanted),
        )
    for site, (kind, object_id, image) in rows:
        key = (site, str(kind), str(object_id))
        if key in wanted:
            found.setdefault(key, []).append(Claim.from_image(json.loads(str(image))))
    return {k: tuple(v) for k, v in found.items()}


async def current(
    store: CentralStore, objects: Iterable[ObjectKey]
) -> dict[ObjectKey, dict[str, object]]:
    """The current image at central of each of ``objects`` that still exists."""
    wanted = set(objects)
    found: dict[ObjectKey, dict[str, object]] = {}
    async with store.transaction() as tx:
        rows = await _rows_in(
            tx,
            "SELECT kind, object_id, image FROM object WHERE",
            (),
            "object_id",
            _by_site((site, object_id) for site, _, object_id in wanted),
        )
    for site, (kind, object_id, image) in rows:
        key = (site, str(kind), str(object_id))
        if key in wanted:
            found[key] = json.loads(str(image))
    return found


async def claims_on(
    store: CentralStore, target: str, keys: Iterable[SiteKey]
) -> dict[SiteKey, list[Claim]]:
    """Every claim held now on each of ``keys`` (an empty list for a key nobody claims)."""
    result: dict[SiteKey, list[Claim]] = {k: [] for k in keys}
    async with store.transaction() as tx:
        rows = await _rows_in(
            tx,
            "SELECT image FROM ipam_claim WHERE target = ? AND",
            (target,),
            "key",
            _by_site(result),
        )
    for site, (image,) in rows:
        claim = Claim.from_image(json.loads(str(image)))
        result[(site, claim.key)].append(claim)
    return result


async def commit(
    store: CentralStore,
    target: str,
    holder: str,
    *,
    gseq: int,
    claims: Mapping[ObjectKey, tuple[Claim, ...]],
) -> None:
    """Record what the IPAM confirmed: the objects' claims after the page and the cursor at
    ``gseq``, in one transaction.

    Raises:
        LostLease: ``holder`` no longer holds the lease (nothing is written).
    """
    async with store.transaction() as tx:
        # Moving the cursor first takes the row lock (PostgreSQL) and proves the lease.
        await tx.execute(
            "UPDATE ipam_sync SET gseq = ? WHERE name = ? AND holder = ? AND gseq < ?",
            gseq,
            target,
            holder,
            gseq,
        )
        row = await tx.fetchone("SELECT holder, gseq FROM ipam_sync WHERE name = ?", target)
        if row is None or row[0] != holder or int(row[1]) != gseq:
            raise LostLease(f"lease held by {row[0] if row else 'nobody'!r}")
        await tx.executemany(
            "DELETE FROM ipam_claim WHERE target = ? AND site = ? AND kind = ? AND object_id = ?",
            [(target, *obj) for obj in claims],
        )
        rows = [
            (target, obj[0], obj[1], obj[2], c.key, json.dumps(c.to_image(), sort_keys=True))
            for obj, found in claims.items()
            for c in found
        ]
        if rows:
            await tx.executemany(
                "INSERT INTO ipam_claim (target, site, kind, object_id, key, image)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (target, site, kind, object_id, key) DO UPDATE"
                " SET image = excluded.image",
                rows,
            )


async def rewind(store: CentralStore, target: str, gseq: int = 0) -> None:
    """Move the cursor back to ``gseq`` (0: replay the whole feed; the claims stay, and the
    replay merges with them, so it writes nothing the IPAM already holds)."""
    async with store.transaction() as tx:
        await _ensure_row(tx, target)
        await tx.execute("UPDATE ipam_sync SET gseq = ? WHERE name = ?", gseq, target)
