"""The fleet console's reads from central's store: one statement per question, each bounded.

Counts come from the object table's primary key (``site, kind, object_id``), the newest change
of a site from ``change_site`` (``site, gseq``), and cross-site search from the partial
expression indexes of ``central.schema.SEARCH_KEYS``: a search is a few B-tree probes, not a
scan of every site's objects (``bench/fleet_search.py`` measures it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from central.console import fleet
from central.schema import image_field
from central.sql import SiteInfo
from central.store import CentralStore

MAX_RESULTS = 500
"""Rows a search or a site's object list shows at most (the page says how many more)."""

OBJECT_KINDS = ("subnet", "subnet6", "host", "lease", "lease6", "record")


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteRow:
    """One line of the sites overview."""

    site: str
    state: fleet.LinkState
    heard_from: float | None
    backlog_age: float | None
    epoch: int
    applied_seq: int
    conflicts: int
    hosts: int
    leases: int


async def overview(
    store: CentralStore, sites: Sequence[SiteInfo], *, now: float, stale_after: float
) -> list[SiteRow]:
    counts: dict[tuple[str, str], int] = {}
    for site, kind, count in await store.query(
        "SELECT site, kind, COUNT(*) FROM object GROUP BY site, kind"
    ):
        counts[(site, kind)] = int(count)
    conflicts = {
        site: int(count)
        for site, count in await store.query(
            "SELECT site, COUNT(*) FROM conflict WHERE resolved_at IS NULL GROUP BY site"
        )
    }
    rows = []
    for info in sites:
        state = fleet.link_state(info.heard_from, now=now, stale_after=stale_after)
        last = await store.query(
            "SELECT time, received_at FROM change WHERE site = ? ORDER BY gseq DESC LIMIT 1",
            info.site,
        )
        rows.append(
            SiteRow(
                site=info.site,
                state=state,
                heard_from=info.heard_from,
                backlog_age=fleet.backlog_age(
                    state, (float(last[0][0]), float(last[0][1])) if last else None
                ),
                epoch=info.epoch,
                applied_seq=info.applied_seq,
                conflicts=conflicts.get(info.site, 0),
                hosts=counts.get((info.site, "host"), 0),
                leases=counts.get((info.site, "lease"), 0) + counts.get((info.site, "lease6"), 0),
            )
        )
    return rows


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    site: str
    kind: str
    object_id: str
    image: dict[str, Any]
    matched: str
    """Which field matched (``mac``, ``ip``, ``hostname``...), or ``subnet`` for an address
    inside one of the site's subnets."""


async def search(store: CentralStore, term: fleet.Term, sites: Sequence[str]) -> list[Found]:
    """Every object of ``sites`` that ``term`` names exactly, and for an address the subnets
    that hold it; at most ``MAX_RESULTS``."""
    if not sites:
        return []
    visible = set(sites)
    found: list[Found] = []
    seen: set[tuple[str, str, str]] = set()
    for field, value in term.lookups:
        rows = await store.query(
            f"SELECT site, kind, object_id, image FROM object"
            f" WHERE {image_field(store.dialect, field)} = ? ORDER BY site, kind, object_id"
            " LIMIT ?",
            value,
            MAX_RESULTS + 1,
        )
        for site, kind, object_id, image in rows:
            key = (site, kind, object_id)
            if site in visible and key not in seen:
                seen.add(key)
                found.append(
                    Found(
                        site=site,
                        kind=kind,
                        object_id=object_id,
                        image=json.loads(image),
                        matched=field,
                    )
                )
    if term.address is not None:
        kind = "subnet" if term.what == "ipv4" else "subnet6"
        marks = ", ".join("?" * len(visible))
        for site, object_id, image in await store.query(
            f"SELECT site, object_id, image FROM object WHERE site IN ({marks}) AND kind = ?"
            " ORDER BY site, object_id",
            *sorted(visible),
            kind,
        ):
            decoded = json.loads(image)
            if fleet.contains(str(decoded.get("cidr", "")), term.address):
                found.append(
                    Found(
                        site=site, kind=kind, object_id=object_id, image=decoded, matched="subnet"
                    )
                )
    return found[: MAX_RESULTS + 1]


def matches(image: dict[str, Any], needle: str) -> bool:
    """Whether a site page's filter text appears in one of the object's searchable fields."""
    for key in ("mac", "ip", "ip6", "prefix", "hostname", "name", "cidr", "value", "duid"):
        value = image.get(key)
        if isinstance(value, str) and needle in value.lower():
            return True
    return False


async def site_objects(
    store: CentralStore, site: str, kind: str, needle: str
) -> tuple[list[dict[str, Any]], int, int]:
    """The site's objects of ``kind`` whose fields contain ``needle`` (all when empty): at most
    ``MAX_RESULTS`` of them, how many matched, and how many the site has."""
    rows = await store.query(
        "SELECT image FROM object WHERE site = ? AND kind = ? ORDER BY object_id", site, kind
    )
    needle = needle.strip().lower()
    images = (json.loads(image) for (image,) in rows)
    selected = [image for image in images if not needle or matches(image, needle)]
    return selected[:MAX_RESULTS], len(selected), len(rows)
