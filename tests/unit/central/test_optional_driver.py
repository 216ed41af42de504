"""ddi-central on SQLite runs without the ``central`` extra (asyncpg, the PostgreSQL driver)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, sys
sys.modules["asyncpg"] = None  # not installed: every import of it raises ImportError
from central import cli, app
from central.store import open_store
from ddi.errors import ConfigError

async def main():
    store = await open_store(sys.argv[1])
    await store.add_site("s1", bytes(32))
    assert [s.site for s in await store.sites()] == ["s1"]
    await store.close()
    try:
        await open_store("postgresql://ddi@127.0.0.1:1/ddi")
    except ConfigError as exc:
        print("refused:", exc)

asyncio.run(main())
"""


def test_a_sqlite_collector_needs_no_postgresql_driver(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/central.sqlite"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, url], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "refused: central.database: postgresql:// needs the PostgreSQL driver" in result.stdout
