"""The fleet console's reads at fleet scale: ``python -m bench.fleet_search [--sites 50]
[--objects 10000] [--database URL]``.

A central store (SQLite in a temporary folder unless ``--database`` names an empty
PostgreSQL database) gets ``--sites`` sites of ``--objects`` objects each (a subnet, 30 % hosts,
60 % leases, 10 % records), through ``apply_batch`` as the edges' batches would bring them.
Then, each timed as the median of ``--repeat`` runs:

* search (``central.console.reads.search`` over every site) for a MAC held at two sites, an
  IPv4 address (its lease and the subnet holding it), a hostname, and a MAC nobody has;
* the same MAC lookup with the indexes bypassed (SQLite ``NOT INDEXED``), the scan it avoids;
* the sites overview (``reads.overview``: counts, open conflicts, newest change per site);
* one site's hosts page (``reads.site_objects``), unfiltered and filtered.

And the write side: ingesting ``--ingest-sites`` more sites with the search indexes and,
side by side in the same run, with them dropped, so that their cost on central's apply path
is a ratio of two numbers taken together.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from central.console import fleet, reads
from central.schema import SEARCH_KEYS
from central.store import CentralStore, open_store
from ddi.ipam.models import Change, Host, Kind, Lease, LeaseState, Op, Record, Subnet
from sync import protocol

BATCH = 5000
"""Entries per batch: an edge's batches are up to ``batch_max_bytes`` (1 MB), about this."""


def _ip(site: int, n: int) -> IPv4Address:
    # 198.18.0.0/15 holds 131072 addresses: site s gets the /24s from s * 64 (wrapping).
    return IPv4Address(int(IPv4Address("198.18.0.0")) + ((site * 64 * 256 + n) % 131072))


def _mac(site: int, n: int) -> str:
    value = site * 65536 + n
    return "52:54:00:" + ":".join(f"{(value >> s) & 255:02x}" for s in (16, 8, 0))


def site_changes(site: int, count: int, now: float) -> list[dict[str, Any]]:
    def change(seq: int, kind: Kind, oid: str, image: dict[str, Any]) -> dict[str, Any]:
        return Change(epoch=1, seq=seq, kind=kind, object_id=oid, op=Op.UPSERT, image=image,
                      actor="bench", time=now).to_image()  # fmt: skip

    base = _ip(site, 0)
    out = [change(1, Kind.SUBNET, "lab", Subnet(name="lab", cidr=IPv4Network(f"{base}/18",
                                                strict=False)).to_image())]  # fmt: skip
    hosts, leases = count * 3 // 10, count * 6 // 10
    for n in range(1, count):
        seq = n + 1
        if n <= hosts:
            image = Host(id=f"h{n}", ip=_ip(site, n), hostname=f"s{site}-h{n}",
                         mac=_mac(site, n)).to_image()  # fmt: skip
            out.append(change(seq, Kind.HOST, f"h{n}", image))
        elif n <= hosts + leases:
            # Site 1's leases include site 0's MACs: a laptop that moved.
            mac = _mac(0, n - hosts) if site == 1 else _mac(site, n)
            lease = Lease(ip=_ip(site, n), mac=mac, hostname=f"dyn{n}", state=LeaseState.BOUND,
                          start=now - 60, end=now + 3600, subnet="lab")  # fmt: skip
            out.append(change(seq, Kind.LEASE, str(_ip(site, n)), lease.to_image()))
        else:
            record = Record(id=f"r{n}", name=f"svc{n}.s{site}.example", rtype="A",
                            value=str(_ip(site, n)))  # fmt: skip
            out.append(change(seq, Kind.RECORD, f"r{n}", record.to_image()))
    return out


async def load(store: CentralStore, first: int, sites: int, count: int) -> float:
    """Enrol and fill ``sites`` sites; returns the seconds ``apply_batch`` took in all."""
    now = time.time()
    spent = 0.0
    for site in range(first, first + sites):
        name = f"site{site:03d}"
        key = protocol.generate_key()
        await store.add_site(name, protocol.public_key_raw(key.public_key()))
        entries = site_changes(site, count, now)
        for start in range(0, len(entries), BATCH):
            part = entries[start : start + BATCH]
            batch = protocol.make_batch(site=name, epoch=1, from_seq=part[0]["seq"],
                                        to_seq=part[-1]["seq"], entries=part, key=key)  # fmt: skip
            began = time.perf_counter()
            await store.apply_batch(name, batch)
            spent += time.perf_counter() - began
    return spent


async def timed(work: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = await work()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ddi-bench-fleet-"))
    url = args.database or f"sqlite://{folder}/central.sqlite"
    store = await open_store(url)
    try:
        print(f"store {store.dialect}: {args.sites} sites x {args.objects} objects")
        spent = await load(store, 0, args.sites, args.objects)
        total = args.sites * args.objects
        print(f"  loaded {total} objects in {spent:.1f} s of apply_batch ({total / spent:.0f}/s)")
        names = [s.site for s in await store.sites()]
        queries = {
            "MAC at two sites": _mac(0, 5),
            "IPv4 (lease + subnet)": str(_ip(7, args.objects * 3 // 10 + 5)),
            "hostname": f"s9-h{args.objects // 10}",
            "MAC nobody has": "52:54:00:ff:ff:fe",
        }
        for label, text in queries.items():
            term = fleet.classify(text)

            async def search(term: fleet.Term = term) -> list[reads.Found]:
                return await reads.search(store, term, names)

            median, found = await timed(search, args.repeat)
            print(f"  search {label:<22} {median * 1000:8.2f} ms  ({len(found)} found)")
        if store.dialect == "sqlite":
            median, rows = await timed(
                lambda: store.query(
                    "SELECT site, kind, object_id FROM object NOT INDEXED"
                    " WHERE json_extract(image, '$.mac') = ?",
                    _mac(0, 5),
                ),
                max(1, args.repeat // 5),
            )
            print(f"  same MAC, indexes bypassed    {median * 1000:8.2f} ms  ({len(rows)} found)")
        infos = await store.sites()
        median, rows = await timed(
            lambda: reads.overview(store, infos, now=time.time(), stale_after=300), args.repeat
        )
        print(f"  overview of {len(rows)} sites         {median * 1000:8.2f} ms")
        for needle in ("", "h12"):

            async def page(needle: str = needle) -> tuple[list[dict[str, Any]], int, int]:
                return await reads.site_objects(store, names[0], "host", needle)

            median, (_, matched, _) = await timed(page, args.repeat)
            label = f"site page, hosts{' filtered' if needle else ''}"
            print(f"  {label:<29} {median * 1000:8.2f} ms  ({matched} shown)")
        with_indexes = await load(store, 1000, args.ingest_sites, args.objects)
        async with store.transaction() as tx:  # store.query is read-only
            for key in SEARCH_KEYS:
                await tx.execute(f"DROP INDEX object_by_{key}")
        without = await load(store, 2000, args.ingest_sites, args.objects)
        count = args.ingest_sites * args.objects
        print(
            f"  ingest {count} objects: {count / with_indexes:.0f}/s with the search indexes,"
            f" {count / without:.0f}/s without (ratio {with_indexes / without:.2f})"
        )
    finally:
        await store.close()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_search", description=__doc__)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--ingest-sites", type=int, default=3)
    parser.add_argument("--database", default=None, help="an empty postgresql:// database")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
