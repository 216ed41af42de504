"""Where the daemon's memory goes with the memory section's data set, in one process.

``python -m bench.memory_profile [--tracemalloc] [--small]`` opens a copy of the memory section's
store (built and cached by ``bench.ddi_site`` as ``bench.memory`` does), then does what
``ddi serve`` does at start-up, phase by phase: load the site (store + IPAM index), build the
DHCP engine (its free-address ledger) and the DNS zones. After each phase it prints the
seconds, VmRSS and VmHWM (the peak resident set, from ``/proc/self/status``); at the end the
settled RSS (after a collection and ``malloc_trim``) and the bytes held by each structure of the
index and the ledger (objects reachable from it and from nothing counted before it).

With ``--tracemalloc`` it also prints the top allocation sites still alive, by module and by
line (tracing costs memory and time: the RSS figures of that run are not the daemon's).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from bench import data, ddi_site

MIB = 2**20


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def deep_size(root: object, seen: set[int]) -> int:
    """Bytes of ``root`` and everything it reaches that ``seen`` does not hold yet (types,
    modules and functions are not followed: they are not data)."""
    total = 0
    stack = [root]
    skip = (type, type(sys), type(deep_size))
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def structures(owner: object, names: Iterable[str], seen: set[int]) -> list[tuple[str, int]]:
    return [(name, deep_size(getattr(owner, name), seen)) for name in names]


def _sizes(small: bool) -> tuple[int, int, int]:
    return (5_000, 10_000, 10_000) if small else (50_000, 100_000, 100_000)


def _subnet(small: bool) -> ddi_site.SubnetSpec:
    """The memory section's subnet: its pool starts after the reservations."""
    from bench import memory

    pool_start = str(IPv4Address(int(data.mem_hosts(1)[0].ip) + _sizes(small)[0]))
    return ddi_site.SubnetSpec(
        "bench", memory.NET, pools=((pool_start, memory.POOL_END),), lease_time=7 * 86400
    )


def prepare(argv: list[str]) -> None:
    """Put the data set's store (from ``bench.ddi_site``'s cache) in the folder ``argv[0]``."""
    small = "--small" in argv
    n_hosts, n_leases, n_records = _sizes(small)
    hosts = data.mem_hosts(n_hosts)
    ds = ddi_site.Dataset(
        key=f"mem{n_hosts}-{n_leases}-{n_records}",
        subnets=[_subnet(small)],
        hosts=hosts,
        leases=list(data.mem_leases(hosts, n_leases)),
        records=data.mem_records(n_records),
        lease_subnet="bench",
    )
    ddi_site.prepare_store(Path(argv[0]), ds, print)


async def _measure(workdir: Path, subnet: ddi_site.SubnetSpec, trace: bool) -> None:
    from ddi.config import load_config
    from ddi.dhcp.server import DhcpServer
    from ddi.dns.engine import DnsEngine
    from ddi.dns.responder import Responder, engine_settings, tsig_keys, zone_settings
    from ddi.dns.server import DnsServer
    from ddi.dns.zones import Zones
    from ddi.heap import release_free_memory
    from ddi.site import open_site

    cfg = workdir / "ddi.toml"
    cfg.write_text(
        ddi_site.config_text(
            workdir,
            subnets=[subnet],
            dhcp={"interfaces": ["lo"]},
            dns={"listen": ["127.0.0.1:0"], "ns_address": "198.18.0.1"},
        )
    )
    config = load_config(cfg)
    phases: list[tuple[str, float, dict[str, int]]] = []
    t0 = time.perf_counter()

    def mark(name: str) -> None:
        phases.append((name, time.perf_counter() - t0, proc_status()))

    mark("start")
    async with open_site(config) as site:
        mark("site (store + index)")
        dhcp = DhcpServer(site)
        mark("dhcp engine (ledger)")
        dns = DnsServer(site)
        serial = await site.store.last_seq()
        # What DnsServer.start builds (``responder.build``), in its two steps.
        zones = Zones(zone_settings(site.config), site.index, serial=serial)
        mark("dns zones")
        engine = DnsEngine(engine_settings(site.config), zones)
        dns.responder = Responder(engine, tsig_keys(site.config), dns.cache, dns.replays)
        release_free_memory()
        mark("dns compiled answers")
        gc.collect()
        release_free_memory()
        mark("settled")
        print(f"{'phase':<24} {'s':>6} {'RSS MiB':>8} {'HWM MiB':>8}")
        for name, at, status in phases:
            print(f"{name:<24} {at:6.2f} {status['VmRSS'] / MIB:8.1f} {status['VmHWM'] / MIB:8.1f}")
        if trace:
            _top(tracemalloc.take_snapshot())
            tracemalloc.stop()
        index = site.index
        ledger = dhcp.engine._ledger
        # Owners are not followed (the engine reaches the index through its view); what is
        # shared (subnets, interned strings) counts for the first structure reaching it, and
        # the objects themselves for the primary maps, listed first.
        seen = {id(index), id(ledger), id(dhcp.engine), id(dhcp), id(dns), id(site)}
        seen.add(id(index._listeners))
        first = [n for n in ("_hosts", "_leases", "_records") if hasattr(index, n)]
        rest = sorted(n for n in _fields(index) if n not in first and n != "_listeners")
        sizes = structures(index, first + rest, seen)
        sizes_l = structures(ledger, [n for n in _fields(ledger) if n != "_view"], seen)
        compiled = dns.responder.compiled
        seen.update((id(zones), id(engine), id(dns.responder), id(compiled)))
        zone_sizes = [
            (f"{origin} {part}", deep_size(getattr(zone, part), seen))
            for origin, zone in zones.zones.items()
            for part in ("data", "children")
        ]
        plain_size = deep_size(zones.plain, seen)
        table_size = deep_size(compiled.table, seen)
        zone_size = deep_size(zones, seen) + deep_size(compiled, seen)
        print("\nstructure                         MiB")
        for name, size in sizes:
            print(f"index.{name:<28} {size / MIB:6.1f}")
        for name, size in sizes_l:
            print(f"ledger.{name:<27} {size / MIB:6.1f}")
        for name, size in zone_sizes:
            print(f"zone {name:<29} {size / MIB:6.1f}")
        stats = compiled.statistics()
        print(f"{'zones plain names':<34} {plain_size / MIB:6.1f}")
        print(f"{'compiled table':<34} {table_size / MIB:6.1f}")
        print(f"  ({stats['names']} names, {stats['bytes'] / MIB:.1f} MiB by its own count)")
        print(f"{'dns (the rest)':<34} {zone_size / MIB:6.1f}")


def _fields(obj: object) -> list[str]:
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        names += [n for n in getattr(cls, "__slots__", ()) if n not in names]
    return [n for n in names if hasattr(obj, n) and not n.startswith("__")]


def _top(snap: tracemalloc.Snapshot, limit: int = 25) -> None:
    snap = snap.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    total = sum(s.size for s in snap.statistics("filename"))
    peak = tracemalloc.get_traced_memory()[1]
    print(f"\ntraced, alive: {total / MIB:.1f} MiB; traced peak: {peak / MIB:.1f} MiB\n")
    print("by module:")
    for stat in snap.statistics("filename")[:limit]:
        print(f"{stat.size / MIB:7.1f} MiB {stat.count:9d}  {_short(stat.traceback[0].filename)}")
    print("\nby line:")
    for stat in snap.statistics("lineno")[:limit]:
        frame = stat.traceback[0]
        where = f"{_short(frame.filename)}:{frame.lineno}"
        print(f"{stat.size / MIB:7.1f} MiB {stat.count:9d}  {where}")


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/ddi/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1] if marker != "/ddi/" else "ddi/" + path.split(marker)[1]
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_profile")
    parser.add_argument("--tracemalloc", action="store_true", help="top allocation sites")
    parser.add_argument("--small", action="store_true", help="the tenth data set (5k/10k/10k)")
    parser.add_argument("--store", type=Path, help="a store file to copy instead of the cache")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="ddi-memprof-", dir="/dev/shm"))
    try:
        var = workdir / "var"
        var.mkdir(parents=True)
        if args.store is not None:
            shutil.copyfile(args.store, var / "ddi.sqlite")
        else:
            # In a child: the data set's lists must not count in this process's peak.
            flags = ["--small"] if args.small else []
            code = "import sys; from bench import memory_profile as m; m.prepare(sys.argv[1:])"
            subprocess.run([sys.executable, "-c", code, str(var), *flags], check=True)
        subnet = _subnet(args.small)
        import ddi.app  # noqa: F401 - the modules the daemon has loaded

        if args.tracemalloc:
            tracemalloc.start(1)
        run: Callable[[], Any] = lambda: _measure(workdir, subnet, args.tracemalloc)  # noqa: E731
        asyncio.run(run())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
