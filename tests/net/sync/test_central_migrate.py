"""A central database made by the previous version opens: the site table gets
``last_contact`` and the object table its search indexes, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import sqlite3

import pytest

from central.schema import DDL, SEARCH_KEYS, image_field
from central.store import open_store
from sync import protocol

OLD_DDL = DDL.replace(",\n    last_contact DOUBLE PRECISION", "")
KEY = protocol.public_key_raw(protocol.generate_key().public_key())


async def _make_old(url: str) -> None:
    assert "last_contact" not in OLD_DDL
    if url.startswith("sqlite://"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as db:
            db.executescript(OLD_DDL.format(blob="BLOB"))
            db.execute("INSERT INTO site (id, public_key, enrolled_at) VALUES ('s1', ?, 1.0)",
                       (KEY,))  # fmt: skip
        return
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(OLD_DDL.format(blob="BYTEA"))
        await conn.execute(
            "INSERT INTO site (id, public_key, enrolled_at) VALUES ('s1', $1, 1.0)", KEY
        )
    finally:
        await conn.close()


@pytest.mark.asyncio
async def test_an_old_database_gains_last_contact_and_search(central_db: str) -> None:
    await _make_old(central_db)
    store = await open_store(central_db)
    try:
        info = await store.site("s1")
        assert info is not None
        assert info.last_contact is None
        assert info.heard_from is None
        await store.touch("s1", 100.0)
        await store.touch("s1", 50.0)  # never moves back
        info = await store.site("s1")
        assert info is not None
        assert info.last_contact == 100.0
        assert info.heard_from == 100.0
        assert info.to_image()["last_contact"] == 100.0
        image = {"id": "h1", "ip": "198.18.0.5", "mac": "52:54:00:00:00:05", "hostname": "web"}
        await _put(central_db, image)
        for key, value in (("mac", image["mac"]), ("ip", image["ip"]), ("hostname", "web")):
            rows = await store.query(
                f"SELECT object_id FROM object WHERE {image_field(store.dialect, key)} = ?", value
            )
            assert rows == [("h1",)], key
    finally:
        await store.close()
    # Opening again is a no-op (the column and indexes exist).
    store = await open_store(central_db)
    try:
        assert (await store.site("s1")).last_contact == 100.0  # type: ignore[union-attr]
        if store.dialect == "sqlite":
            for key in SEARCH_KEYS:
                plan = await store.query(
                    "EXPLAIN QUERY PLAN SELECT object_id FROM object"
                    f" WHERE {image_field('sqlite', key)} = ?",
                    "x",
                )
                assert any(f"object_by_{key}" in str(row) for row in plan), plan
        else:
            names = {
                name
                for (name,) in await store.query(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'object'"
                )
            }
            assert {f"object_by_{key}" for key in SEARCH_KEYS} <= names
    finally:
        await store.close()


async def _put(url: str, image: dict[str, str]) -> None:
    """An object row as a batch would leave it (the search reads rows, whoever wrote them)."""
    text = json.dumps(image)
    if url.startswith("sqlite://"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as db:
            db.execute("INSERT INTO object VALUES ('s1', 'host', 'h1', ?, 1)", (text,))
        return
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO object VALUES ('s1', 'host', 'h1', $1, 1)", text)
    finally:
        await conn.close()
