"""Measure the store's lease group commit: leases committed per second by batch size.

Not a test (pytest does not collect it). Run from the repository root:

    .venv/bin/python tests/unit/ipam/commit_throughput.py [--seconds 3] [--dir PATH]

``--dir`` picks the file system (the fsync cost is what is measured); default: a temporary
folder under the current directory.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ddi.ipam.models import Lease, Subnet
from ddi.ipam.store import Store

BASE = int(IPv4Address("198.18.0.0"))


async def measure(folder: Path, batch: int, seconds: float) -> tuple[float, float]:
    async with await Store.open(folder / f"bench-{batch}.db") as store:
        await store.sync_subnets(
            [Subnet(name="bench", cidr=IPv4Network("198.18.0.0/15"))], actor="bench", reason=""
        )
        committed = 0
        latencies: list[float] = []
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            now = time.time()
            leases = [
                Lease(
                    ip=IPv4Address(BASE + 1 + (committed + i) % 130_000),
                    mac=f"02:00:00:{(committed + i) >> 16 & 0xFF:02x}:"
                    f"{(committed + i) >> 8 & 0xFF:02x}:{(committed + i) & 0xFF:02x}",
                    start=now,
                    end=now + 3600,
                    subnet="bench",
                )
                for i in range(batch)
            ]
            t0 = time.perf_counter()
            await store.commit_leases(leases)
            latencies.append(time.perf_counter() - t0)
            committed += batch
        elapsed = time.perf_counter() - started
        latencies.sort()
        return committed / elapsed, latencies[len(latencies) // 2] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--dir", type=Path, default=Path.cwd())
    parser.add_argument("--batches", default="1,64,256")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        print(f"{'batch':>6} {'leases/s':>10} {'median commit ms':>17}")
        for batch in (int(b) for b in args.batches.split(",")):
            rate, median = await measure(Path(folder), batch, args.seconds)
            print(f"{batch:>6} {rate:>10.0f} {median:>17.2f}")


if __name__ == "__main__":
    asyncio.run(main())
