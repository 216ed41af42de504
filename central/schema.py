"""The tables of central's database: every site's current objects, its inbound log (the pull
feed), the per-site down log of central-owned reservations, conflicts and refusal counts; the IPAM
sync's cursor, lease and claims (``central.nautobot.state``: new tables, so a database of the
previous version gains them on open); and
the ``Tx`` seam through which the store's SQL (``central.sql``) reaches a driver.

One DDL serves SQLite and PostgreSQL; only the blob type differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Tx(Protocol):
    async def upsert_objects(self, site: str, rows: Sequence[tuple[str, str, str, int]]) -> None:
        """Insert or replace ``(kind, object_id, image, gseq)`` objects of ``site``."""

    async def delete_objects(self, site: str, keys: Sequence[tuple[str, str]]) -> None:
        """Delete ``(kind, object_id)`` objects of ``site``."""

    async def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Append rows (PostgreSQL: COPY, the fast bulk path)."""

    async def execute(self, sql: str, *args: Any) -> None: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    async def fetchall(self, sql: str, *args: Any) -> list[tuple[Any, ...]]: ...
    async def fetchone(self, sql: str, *args: Any) -> tuple[Any, ...] | None: ...


SITE_COLUMNS = (
    "id, public_key, epoch, applied_seq, last_sha256, snapshot_epoch, snapshot_as_of, "
    "snapshot_next_page, snapshot_after, last_seen, enrolled_at, last_contact"
)

DDL = """
CREATE TABLE IF NOT EXISTS site (
    id TEXT PRIMARY KEY,
    public_key {blob} NOT NULL,
    epoch BIGINT NOT NULL DEFAULT 0,
    applied_seq BIGINT NOT NULL DEFAULT 0,
    last_sha256 TEXT NOT NULL DEFAULT '',
    snapshot_epoch BIGINT NOT NULL DEFAULT 0,
    snapshot_as_of BIGINT NOT NULL DEFAULT 0,
    snapshot_next_page BIGINT NOT NULL DEFAULT 0,
    snapshot_after TEXT,
    last_seen DOUBLE PRECISION,
    enrolled_at DOUBLE PRECISION NOT NULL,
    last_contact DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counter (name, value) VALUES ('gseq', 0) ON CONFLICT (name) DO NOTHING;
CREATE TABLE IF NOT EXISTS object (
    site TEXT NOT NULL REFERENCES site(id),
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    image TEXT NOT NULL,
    gseq BIGINT NOT NULL,
    PRIMARY KEY (site, kind, object_id)
);
CREATE TABLE IF NOT EXISTS change (
    gseq BIGINT PRIMARY KEY,
    site TEXT NOT NULL REFERENCES site(id),
    epoch BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    op TEXT NOT NULL,
    image TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL,
    received_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS change_site ON change (site, gseq);
CREATE TABLE IF NOT EXISTS snapshot_object (
    site TEXT NOT NULL REFERENCES site(id),
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    image TEXT NOT NULL,
    PRIMARY KEY (site, kind, object_id)
);
CREATE TABLE IF NOT EXISTS down (
    site TEXT NOT NULL REFERENCES site(id),
    dseq BIGINT NOT NULL,
    op TEXT NOT NULL,
    image TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (site, dseq)
);
CREATE TABLE IF NOT EXISTS conflict (
    site TEXT NOT NULL REFERENCES site(id),
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    edge_image TEXT NOT NULL,
    central_image TEXT NOT NULL,
    detected_at DOUBLE PRECISION NOT NULL,
    resolved_at DOUBLE PRECISION,
    reported_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (site, id)
);
CREATE TABLE IF NOT EXISTS ipam_sync (
    name TEXT PRIMARY KEY,
    gseq BIGINT NOT NULL DEFAULT 0,
    holder TEXT NOT NULL DEFAULT '',
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ipam_claim (
    target TEXT NOT NULL,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    key TEXT NOT NULL,
    image TEXT NOT NULL,
    PRIMARY KEY (target, site, kind, object_id, key)
);
CREATE INDEX IF NOT EXISTS ipam_claim_key ON ipam_claim (target, site, key);
CREATE TABLE IF NOT EXISTS refusal (
    site TEXT NOT NULL,
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (site, reason)
);
-- Reservations made from an IPAM's addresses (central.nautobot.down); new, so an older
-- database gains it on open.
CREATE TABLE IF NOT EXISTS ipam_reserve (
    ipam_id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    image TEXT NOT NULL,
    noted TEXT NOT NULL,
    refused TEXT NOT NULL DEFAULT '',
    refused_at TEXT NOT NULL DEFAULT ''
);
"""

CHANGE_COLUMNS = (
    "gseq", "site", "epoch", "seq", "kind", "object_id", "op", "image", "actor", "reason",
    "time", "received_at",
)  # fmt: skip

# --- migrations and the search indexes ---

SITE_LAST_CONTACT = "ALTER TABLE site ADD COLUMN last_contact DOUBLE PRECISION"
"""When the site last made an authenticated request (its cursor poll, every ``[sync]
poll_interval``), uploads or not: what tells a quiet site from a silent one. Databases made
before it get the column at open (SQLite has no ``ADD COLUMN IF NOT EXISTS``: the store looks
first; PostgreSQL adds ``IF NOT EXISTS``)."""

SEARCH_KEYS = ("mac", "ip", "ip6", "prefix", "hostname", "name")
"""Image fields the fleet search looks up across sites (``central.console.search``): hosts'
and leases' MAC, IPv4, IPv6 (a lease6's ``prefix``), hostnames, and records' and subnets'
names. One partial expression index each, so a lookup is a B-tree probe whatever the number of
sites and objects."""


def image_field(dialect: str, key: str) -> str:
    """The SQL expression for ``image``'s top-level text field ``key`` (``key`` is one of
    ``SEARCH_KEYS``, never user input): the same text in the index and in the query, or the
    planner does not match them."""
    assert key in SEARCH_KEYS
    if dialect == "sqlite":
        return f"json_extract(image, '$.{key}')"
    return f"((image::jsonb) ->> '{key}')"


def search_ddl(dialect: str) -> str:
    return "".join(
        f"CREATE INDEX IF NOT EXISTS object_by_{key} ON object ({image_field(dialect, key)})"
        f" WHERE {image_field(dialect, key)} IS NOT NULL;\n"
        for key in SEARCH_KEYS
    )
