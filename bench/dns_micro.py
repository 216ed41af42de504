"""The DNS responder's query paths timed in-process, without sockets: a cheap check between
full runs of ``python -m bench --only dns``.

    python -m bench.dns_micro [--names 100000] [--queries 200000] [--distinct]

Builds the zones of ``--names`` reservations (A + PTR, as ``bench.dns`` loads them), the query
file of ``bench.data`` (the README's mix, or with ``--distinct`` one of distinct questions),
and times each path over every query:

* ``compiled``: ``Compiled.write`` into a batch-sized buffer, what the UDP loop runs (both
  batch paths include copying the query into the buffer and reading it back out);
* ``compiled_bytes``: ``Compiled.answer`` (a reply as new bytes: TCP and the recvfrom loop);
* ``cache_hit``: the encoded-answer cache's hit (a dict lookup by the bytes after the ID, the
  body written after the ID in the batch buffer), the hot path before the compiled answers,
  with every answer cached;
* ``full``: ``Responder.resolve`` (decode, engine, encode), what a cache miss cost.

Prints the time a query per path, the zones' build and compile times (the plain names are
stored by the zones, read as they are), the compiled answers' size (its
``statistics()['bytes']`` and the traced allocation of the build), as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc
from ipaddress import IPv4Network

from bench import data
from ddi.dns.cache import AnswerCache
from ddi.dns.compiled import Compiled
from ddi.dns.engine import LOCAL, DnsEngine, EngineSettings, Transport
from ddi.dns.responder import Reply, Responder
from ddi.dns.zones import Zones, ZoneSettings
from ddi.ipam.models import Host, Subnet
from ddi.ipam.views import IpamIndex

UDP = Transport.UDP


def wire(line: str, msg_id: int) -> bytes:
    name, qtype = line.split()
    code = {"A": 1, "PTR": 12, "AAAA": 28}[qtype]
    labels = b"".join(bytes((len(p),)) + p.encode() for p in name.split("."))
    header = msg_id.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    return header + labels + b"\x00" + code.to_bytes(2, "big") + b"\x00\x01"


def build(count: int) -> tuple[Responder, tuple[float, float], int]:
    names = data.dns_names(count)
    index = IpamIndex(
        subnets=[Subnet(name="bench", cidr=IPv4Network("198.18.0.0/15"))],
        hosts=[
            Host(id=f"h{i}", ip=n.ip, hostname=n.hostname, mac=n.mac) for i, n in enumerate(names)
        ],
        domain=data.DOMAIN,
    )
    settings = ZoneSettings(
        domain=data.DOMAIN, ns_name=f"ns.{data.DOMAIN}", ns_address=data.NS_ADDRESS
    )
    zones_start = time.perf_counter()
    zones = Zones(settings, index, serial=1)
    zones_s = time.perf_counter() - zones_start
    engine = DnsEngine(EngineSettings(), zones)
    gc.collect()
    start = time.perf_counter()
    responder = Responder(engine, {}, AnswerCache(0))
    spent = time.perf_counter() - start
    gc.collect()
    tracemalloc.start()
    Compiled(engine)  # again, traced: what the table holds once built
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return responder, (zones_s, spent), traced


def timed(fn: object, queries: list[bytes]) -> float:
    start = time.perf_counter()
    fn(queries)  # type: ignore[operator]
    return (time.perf_counter() - start) / len(queries) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200_000)
    parser.add_argument("--distinct", action="store_true", help="distinct questions only")
    args = parser.parse_args()
    responder, (zones_s, compile_s), traced = build(args.names)
    names = data.dns_names(args.names)
    if args.distinct:
        lines = data.distinct_query_lines(names, args.queries)
    else:
        lines = data.query_lines(names, args.queries)
    queries = [wire(line, i & 0xFFFF) for i, line in enumerate(lines)]
    compiled: Compiled = responder.compiled
    buffer = bytearray(64 * 4096)
    view = memoryview(buffer)

    def run_compiled(qs: list[bytes]) -> None:
        write = compiled.write
        for i, q in enumerate(qs):
            o = (i & 63) * 4096
            n = len(q)
            view[o : o + n] = q  # what recvmmsg does
            got = view[o : o + n].tobytes()  # BatchSocket.datagrams
            if not write(got, view, o, o + 4096, True):
                raise AssertionError(f"not compiled: {q!r}")

    def run_bytes(qs: list[bytes]) -> None:
        answer = compiled.answer
        for q in qs:
            if answer(q, UDP) is None:
                raise AssertionError(f"not compiled: {q!r}")

    table = {}
    for q in queries:
        reply = responder.resolve(q, LOCAL, UDP, 0.0)
        assert isinstance(reply, Reply)
        table[q[2:]] = reply.data[2:]

    def run_cache(qs: list[bytes]) -> None:
        get = table.get
        for i, q in enumerate(qs):
            o = (i & 63) * 4096
            n = len(q)
            view[o : o + n] = q  # what recvmmsg does
            key = view[o + 2 : o + n].tobytes()  # BatchSocket.keys, before
            body = get(key)
            if body is not None:
                view[o + 2 : o + 2 + len(body)] = body  # BatchSocket.queue_body

    def run_full(qs: list[bytes]) -> None:
        resolve = responder.resolve
        for q in qs:
            resolve(q, LOCAL, UDP, 0.0)

    result = {
        "names": args.names,
        "queries": len(queries),
        "distinct_questions": len({q[2:] for q in queries}),
        "zones_s": round(zones_s, 2),
        "compile_s": round(compile_s, 2),
        "table_names": len(compiled.table),
        "plain_names": len(compiled.plain),
        "table_mib": round(compiled.size() / 2**20, 1),
        "traced_build_mib": round(traced / 2**20, 1),
        "us_per_query": {
            "compiled": round(timed(run_compiled, queries), 3),
            "compiled_bytes": round(timed(run_bytes, queries), 3),
            "cache_hit": round(timed(run_cache, queries), 3),
            "full": round(timed(run_full, queries[:20_000]), 3),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
