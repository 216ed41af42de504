"""Measure the DHCP group commit end to end: leases per second through GroupCommitter into a
real (durable) store.

Not a test (pytest does not collect it). Run from the repository root:

    .venv/bin/python -m bench.group_commit [--leases 20000] [--batch 64] [--busy]

All leases are submitted at once; the committer takes ``--batch`` at a time, each batch one
transaction and one fsync. ``--busy`` keeps the event loop busy with pure-Python work between
commits, as the DHCP engine does under load, so the cost of handing work to the writer thread
(the GIL) shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from ddi.dhcp.commit import GroupCommitter
from ddi.ipam.models import Lease, Subnet
from ddi.ipam.store import Store

BASE = int(IPv4Address("198.18.0.0"))


async def _spin(stop: asyncio.Event) -> None:
    while not stop.is_set():
        deadline = time.perf_counter() + 0.0005
        while time.perf_counter() < deadline:
            pass
        await asyncio.sleep(0)


async def measure(path: Path, count: int, batch: int, busy: bool) -> tuple[float, float]:
    """Leases per second (wall clock) and CPU microseconds per lease (every thread)."""
    async with await Store.open(path) as store:
        await store.sync_subnets(
            [Subnet(name="bench", cidr=IPv4Network("198.18.0.0/15"))], actor="bench", reason=""
        )
        committer = GroupCommitter(store, max_batch=batch, max_pending=count)
        done = asyncio.Event()
        acked = 0

        def ack() -> None:
            nonlocal acked
            acked += 1
            if acked == count:
                done.set()

        now = time.time()
        leases = [
            Lease(
                ip=IPv4Address(BASE + 1 + i),
                mac=f"02:00:00:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
                start=now,
                end=now + 3600,
                subnet="bench",
            )
            for i in range(count)
        ]
        stop = asyncio.Event()
        spinner = asyncio.create_task(_spin(stop)) if busy else None
        started = time.perf_counter()
        cpu = time.process_time()
        for lease in leases:
            committer.submit_nowait(lease, ack)
        task = asyncio.create_task(committer.run())
        await done.wait()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if spinner is not None:
            await spinner
        assert committer.failed == 0
        assert len(await store.leases()) == count
        return count / elapsed, cpu / count * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leases", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path.cwd())
    args = parser.parse_args()
    rates: list[float] = []
    cpus: list[float] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for run in range(args.runs):
            path = Path(folder) / f"bench-{run}.db"
            rate, cpu = await measure(path, args.leases, args.batch, args.busy)
            rates.append(rate)
            cpus.append(cpu)
    print(
        f"{args.leases} leases, batch {args.batch}{', busy loop' if args.busy else ''}: "
        f"median {statistics.median(rates):.0f} leases/s "
        f"(runs: {', '.join(f'{r:.0f}' for r in rates)}); "
        f"median CPU {statistics.median(cpus):.1f} µs a lease"
    )


if __name__ == "__main__":
    asyncio.run(main())
