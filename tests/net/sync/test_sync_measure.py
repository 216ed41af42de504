"""How long 100,000 queued changes take to reach central (a measurement, not a check).

Run with ``DDI_SYNC_MEASURE=1`` (optionally ``DDI_SYNC_MEASURE_N``):
``DDI_SYNC_MEASURE=1 .venv/bin/python -m pytest -q -s tests/net/sync/test_sync_measure.py``
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from ddi.ipam.models import Lease
from ddi.ipam.store import Store

_spec = importlib.util.spec_from_file_location(
    "sync_harness", Path(__file__).with_name("harness.py")
)
assert _spec is not None
assert _spec.loader is not None
h = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("sync_harness", h)
_spec.loader.exec_module(h)

N = int(os.environ.get("DDI_SYNC_MEASURE_N", "100000"))


@pytest.mark.asyncio
async def test_time_for_queued_changes_to_reach_central(central_db: str, tmp_path: Path) -> None:
    if os.environ.get("DDI_SYNC_MEASURE") != "1":
        print("skipping the sync measurement: set DDI_SYNC_MEASURE=1 to run it")
        pytest.skip("set DDI_SYNC_MEASURE=1 to run the sync measurement")
    central_key = h.write_key(tmp_path / "central.key")
    edge = h.Edge(tmp_path / "edge", "http://127.0.0.1:1", Path(f"{central_key}.pub"))
    central = h.Central(tmp_path / "central", central_db, Path(f"{edge.key}.pub"))
    central.key.write_bytes(central_key.read_bytes())
    edge.set_central(central.url)
    try:
        await edge.start()  # creates the store and its subnet
        await edge.stop()
        store = await Store.open(edge.db)
        now = time.time()
        try:
            for start in range(0, N, 1000):
                await store.commit_leases(
                    [
                        Lease(
                            ip=IPv4Address(h.ip_of(n)),
                            mac=f"02:00:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
                            start=now,
                            end=now + 3600,
                            subnet="lab",
                        )
                        for n in range(start, min(N, start + 1000))
                    ]
                )
        finally:
            await store.close()
        await central.start()
        t0 = time.monotonic()
        await edge.start()
        await h.wait_synced(edge, central, within=1800)
        elapsed = time.monotonic() - t0
        backend = central_db.split(":", 1)[0]
        print(f"\n{N} queued changes reached central ({backend}) in {elapsed:.1f} s "
              f"({N / elapsed:.0f} changes/s, edge start included)")  # fmt: skip
        await h.assert_same(edge, central)
    finally:
        await edge.stop()
        await central.stop()
