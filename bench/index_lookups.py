"""The IPAM index and the pool scan with integer keys against the ``IPv4Address``-keyed
reference (``tests/unit/ipam/old_index.py``), side by side in one process.

``python -m bench.index_lookups [--leases 20000] [--rounds 5]``: microseconds per lookup
(``lease_by_ip`` and ``host_by_ip``, hits and misses) and per ``next_free`` over a pool whose
first ``--leases`` addresses are leased; the best of ``--rounds`` interleaved rounds each.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ddi.ipam.allocator import Client, next_free
from ddi.ipam.models import Host, Lease, Pool, Subnet
from ddi.ipam.views import IpamIndex
from tests.unit.ipam.old_index import OldIpamIndex, old_next_free

NOW = 1_800_000_000.0
FIRST = int(IPv4Address("198.18.0.10"))


def _best(fn: Callable[[], Any], count: int, rounds: list[float]) -> None:
    started = time.perf_counter()
    fn()
    rounds.append((time.perf_counter() - started) / count * 1e6)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.index_lookups", description=__doc__)
    parser.add_argument("--leases", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    n = args.leases
    subnet = Subnet(
        name="lan",
        cidr=IPv4Network("198.18.0.0/15"),
        pools=(Pool(start=IPv4Address(FIRST), end=IPv4Address(FIRST + 4 * n)),),
    )
    leases = [
        Lease(
            ip=IPv4Address(FIRST + i), mac=f"02:00:{i:08x}", start=NOW, end=NOW + 3600, subnet="lan"
        )
        for i in range(n)
    ]
    hosts = [
        Host(id=f"h{i}", ip=IPv4Address(FIRST + n + 2 * i), hostname=f"h{i}", mac=f"04:{i:08x}")
        for i in range(n // 10)
    ]
    new = IpamIndex(subnets=[subnet], hosts=hosts, leases=leases)
    old = OldIpamIndex(subnets=[subnet], hosts=hosts, leases=leases)
    probes = [IPv4Address(FIRST + i) for i in range(2 * n)]
    client = Client(mac="02:ff:ff:ff:ff:ff", client_id=None)
    offered = {IPv4Address(FIRST + n + 1): "hw:02:00:00:00:00:01"}
    start = IPv4Address(FIRST + n - 2000)
    times: dict[str, dict[str, list[float]]] = {}

    def lookups(index: Any) -> Callable[[], None]:
        def run() -> None:
            lease_by_ip, host_by_ip = index.lease_by_ip, index.host_by_ip
            for ip in probes:
                lease_by_ip(ip)
                host_by_ip(ip)

        return run

    def scans(index: Any, scan: Any) -> Callable[[], None]:
        def run() -> None:
            for _ in range(20):
                scan(subnet, index, NOW, client=client, offered=offered, start=start)

        return run

    for _ in range(args.rounds):
        for name, index, scan in (("ipv4address", old, old_next_free), ("int", new, next_free)):
            row = times.setdefault(name, {"lookup": [], "next_free": []})
            _best(lookups(index), 2 * len(probes), row["lookup"])
            _best(scans(index, scan), 20, row["next_free"])
    print(f"{n} leases, best of {args.rounds} interleaved rounds (us):")
    print(f"{'keys':<12} {'lookup':>8} {'next_free (2,000 taken first)':>30}")
    for name, row in times.items():
        print(f"{name:<12} {min(row['lookup']):8.3f} {min(row['next_free']):30.1f}")


if __name__ == "__main__":
    main()
