"""Measure renewals through the store: every renewal logged (``renewal_log_interval = 0``)
against quiet renewals (the default 6 h), side by side in one run.

Not a test (pytest does not collect it). Run from the repository root:

    .venv/bin/python -m bench.renewals [--clients 256] [--rounds 200] [--repeat 3]

Each round renews every client once (one batch, one transaction, one fsync), moving each end
by one second; the report gives renewals per second and the change-log entries left. Compare
the two lines of one run, not numbers across runs or machines.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from ddi.ipam.models import Lease, Subnet
from ddi.ipam.store import Store

BASE = int(IPv4Address("198.18.0.0"))


def _batch(clients: int, now: float) -> list[Lease]:
    return [
        Lease(ip=IPv4Address(BASE + 10 + i), mac=f"52:54:00:00:{i >> 8:02x}:{i & 255:02x}",
              start=now, end=now + 3600, subnet="lan")
        for i in range(clients)
    ]  # fmt: skip


async def measure(path: Path, interval: float, clients: int, rounds: int) -> tuple[float, int]:
    async with await Store.open(path) as store:
        lan = Subnet(name="lan", cidr=IPv4Network("198.18.0.0/16"))
        await store.sync_subnets([lan], actor="bench", reason="")
        store.renewal_log_interval = interval
        now = time.time()
        await store.commit_leases(_batch(clients, now))
        start = time.perf_counter()
        for r in range(rounds):
            await store.commit_leases(_batch(clients, now + r + 1))
        elapsed = time.perf_counter() - start
        return rounds * clients / elapsed, (await store.log.size()).entries


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=".") as folder:
        for repeat in range(args.repeat):
            for interval in (0.0, 21600.0):
                path = Path(folder) / f"renewals-{repeat}-{interval:.0f}.db"
                rate, entries = await measure(path, interval, args.clients, args.rounds)
                print(f"renewal_log_interval={interval:>7.0f}: {rate:9.0f} renewals/s,"
                      f" change log {entries} entries")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
