"""The IPAM database schema and its migrations, versioned by ``PRAGMA user_version``.

Rules:
* ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``; a new version is a new
  entry appended to the list, never an edit of a released one.
* The store (the only module that talks to SQLite) runs every pending step and the version
  bump in one transaction, so a database is always at exactly one version, and refuses a
  database newer than this code rather than guessing at it.

Layout choices:
* Pools live inside the subnet row (its JSON image), not in a table of their own: subnets come
  whole from the configuration, a pool is never addressed on its own, and one subnet row then
  maps to exactly one change-log image.
* Addresses are stored as dotted text so the database reads well in ``sqlite3``; ordering by
  address is done by the store.
* ``change.seq`` is ``INTEGER PRIMARY KEY AUTOINCREMENT``: SQLite keeps the highest seq ever
  used in ``sqlite_sequence``, so a seq is never reused, even after the outbox is compacted.
* CHECK constraints guard what the store writes on its hot path (leases) without a round trip.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE subnet (
    name  TEXT PRIMARY KEY,
    cidr  TEXT NOT NULL UNIQUE,
    image TEXT NOT NULL                 -- Subnet.to_image() as JSON, pools included
);

CREATE TABLE host (
    id          TEXT PRIMARY KEY,
    ip          TEXT NOT NULL,
    hostname    TEXT NOT NULL,
    mac         TEXT,
    client_id   TEXT,
    circuit_id  TEXT,
    boot        TEXT,
    boot_file   TEXT,
    boot_script TEXT,
    owner       TEXT NOT NULL DEFAULT 'edge' CHECK (owner IN ('edge', 'central')),
    version     INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    CHECK (mac IS NOT NULL OR client_id IS NOT NULL OR circuit_id IS NOT NULL)
);
CREATE UNIQUE INDEX host_ip ON host (ip);
CREATE UNIQUE INDEX host_hostname ON host (hostname);
CREATE UNIQUE INDEX host_mac ON host (mac);
CREATE UNIQUE INDEX host_client_id ON host (client_id);
CREATE UNIQUE INDEX host_circuit_id ON host (circuit_id);

CREATE TABLE lease (
    ip         TEXT PRIMARY KEY,
    mac        TEXT,
    client_id  TEXT,
    circuit_id TEXT,
    hostname   TEXT,
    state      TEXT NOT NULL CHECK (state IN ('bound', 'released', 'expired', 'declined')),
    start      REAL NOT NULL,
    "end"      REAL NOT NULL,
    subnet     TEXT NOT NULL,
    CHECK ("end" >= start)
) WITHOUT ROWID;
CREATE INDEX lease_bound_end ON lease ("end") WHERE state = 'bound';

CREATE TABLE record (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    rtype   TEXT NOT NULL
            CHECK (rtype IN ('A', 'AAAA', 'CNAME', 'MX', 'TXT', 'SRV', 'NS', 'PTR')),
    value   TEXT NOT NULL,
    ttl     INTEGER CHECK (ttl IS NULL OR ttl >= 0),
    owner   TEXT NOT NULL DEFAULT 'edge' CHECK (owner IN ('edge', 'central')),
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    UNIQUE (name, rtype, value)
);
CREATE INDEX record_name ON record (name);

CREATE TABLE change (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    epoch     INTEGER NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('subnet', 'host', 'lease', 'record')),
    object_id TEXT NOT NULL,
    op        TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    image     TEXT NOT NULL,            -- the object's JSON post-image (pre-image for a delete)
    actor     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    time      REAL NOT NULL
);
CREATE INDEX change_object ON change (kind, object_id);

CREATE TABLE conflict (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL,
    object_id     TEXT NOT NULL,
    field         TEXT NOT NULL,
    value         TEXT NOT NULL,
    edge_image    TEXT,                 -- JSON, NULL when the edge has no such object
    central_image TEXT,                 -- JSON, NULL when central deleted it
    detected_at   REAL NOT NULL,
    resolved_at   REAL
);
CREATE INDEX conflict_open ON conflict (kind, object_id) WHERE resolved_at IS NULL;

INSERT INTO meta (key, value) VALUES ('epoch', '1');
"""

_V2 = """
-- HostDhcpOptions.to_image() as JSON; NULL: every option comes from the subnet.
ALTER TABLE host ADD COLUMN dhcp TEXT;
"""

_V3 = """
-- IPv6 (issue 14). SQLite cannot relax a NOT NULL or a CHECK in place: the host and change
-- tables are rebuilt (https://sqlite.org/lang_altertable.html, "other kinds of table schema
-- changes"), keeping every row, every index and the highest seq ever used.
CREATE TABLE host_v3 (
    id          TEXT PRIMARY KEY,
    ip          TEXT,
    ip6         TEXT,
    hostname    TEXT NOT NULL,
    mac         TEXT,
    client_id   TEXT,
    circuit_id  TEXT,
    duid        TEXT,
    boot        TEXT,
    boot_file   TEXT,
    boot_script TEXT,
    owner       TEXT NOT NULL DEFAULT 'edge' CHECK (owner IN ('edge', 'central')),
    version     INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    dhcp        TEXT,
    CHECK (ip IS NOT NULL OR ip6 IS NOT NULL),
    CHECK (mac IS NOT NULL OR client_id IS NOT NULL OR circuit_id IS NOT NULL
           OR duid IS NOT NULL)
);
INSERT INTO host_v3 (id, ip, hostname, mac, client_id, circuit_id, boot, boot_file,
                     boot_script, owner, version, dhcp)
    SELECT id, ip, hostname, mac, client_id, circuit_id, boot, boot_file, boot_script, owner,
           version, dhcp FROM host;
DROP TABLE host;
ALTER TABLE host_v3 RENAME TO host;
CREATE UNIQUE INDEX host_ip ON host (ip);
CREATE UNIQUE INDEX host_ip6 ON host (ip6);
CREATE UNIQUE INDEX host_hostname ON host (hostname);
CREATE UNIQUE INDEX host_mac ON host (mac);
CREATE UNIQUE INDEX host_client_id ON host (client_id);
CREATE UNIQUE INDEX host_circuit_id ON host (circuit_id);
CREATE UNIQUE INDEX host_duid ON host (duid);

CREATE TABLE change_v3 (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    epoch     INTEGER NOT NULL,
    kind      TEXT NOT NULL
              CHECK (kind IN ('subnet', 'host', 'lease', 'record', 'subnet6', 'lease6')),
    object_id TEXT NOT NULL,
    op        TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    image     TEXT NOT NULL,
    actor     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    time      REAL NOT NULL
);
INSERT INTO change_v3 SELECT seq, epoch, kind, object_id, op, image, actor, reason, time
    FROM change;
-- The highest seq ever used, even of entries since compacted away: never reused.
DELETE FROM sqlite_sequence WHERE name = 'change_v3';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'change_v3', seq FROM sqlite_sequence WHERE name = 'change';
DROP TABLE change;
ALTER TABLE change_v3 RENAME TO change;
CREATE INDEX change_object ON change (kind, object_id);

CREATE TABLE subnet6 (
    name  TEXT PRIMARY KEY,
    cidr  TEXT NOT NULL UNIQUE,
    image TEXT NOT NULL                 -- Subnet6.to_image() as JSON, pools included
);

CREATE TABLE lease6 (
    kind          TEXT NOT NULL CHECK (kind IN ('na', 'pd')),
    prefix        TEXT NOT NULL,        -- compressed text: 2001:db8::5/128, 2001:db8:100::/56
    duid          TEXT NOT NULL,
    iaid          INTEGER NOT NULL CHECK (iaid BETWEEN 0 AND 4294967295),
    mac           TEXT,
    hostname      TEXT,
    state         TEXT NOT NULL CHECK (state IN ('bound', 'released', 'expired', 'declined')),
    start         REAL NOT NULL,
    "end"         REAL NOT NULL,
    preferred_end REAL NOT NULL,
    subnet        TEXT NOT NULL,
    CHECK ("end" >= start),
    CHECK (preferred_end <= "end"),
    PRIMARY KEY (kind, prefix)
) WITHOUT ROWID;
CREATE INDEX lease6_bound_end ON lease6 ("end") WHERE state = 'bound';
CREATE INDEX lease6_client ON lease6 (duid, iaid);
"""

MIGRATIONS: Sequence[str] = (_V1, _V2, _V3)
"""SQL scripts; entry ``i`` migrates from ``user_version`` i to i + 1."""

SCHEMA_VERSION = len(MIGRATIONS)
