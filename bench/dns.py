"""DNS: dnsperf against NSD, dnsmasq and ddi serving the same zone, in interleaved rounds.

Two scenarios, each with every server started afresh on its zone:

* ``udp``: ``dns_names`` names (10,000) and the README's mix (``data.query_lines``: 80% A,
  10% NXDOMAIN, 10% NODATA, drawn at random, so questions repeat);
* ``udp-100k``: ``dns_large_names`` names (100,000) and ``dns_large_queries`` (200,000)
  distinct questions in the same proportions (``data.distinct_query_lines``: A, then PTR, for
  existing names): no answer is asked for twice in a pass, so a cache of past answers
  cannot be what is measured.

ddi runs with its default DNS config (only ``listen`` and the NS glue address are set).

Every server listens on 127.0.0.1 inside one lab namespace and dnsperf runs there too, so
the servers and the load generator share the machine's cores, as they would in production on
a small appliance. Each server is warmed up first (once through the whole query file, then a
few seconds at full load); then ``rounds`` rounds run every
contender in turn (``-c clients -q outstanding -l seconds``), and the table quotes the median
qps, loss and average latency, with the server's CPU per query (``cpu_us``) and the cores
dnsperf itself kept busy (``dnsperf_cores``): on two shared cores, a server's CPU is time the
load generator and the replies wait for. Latency percentiles come from one more run per
contender with ``-v`` (dnsperf prints every reply's latency; that costs the client some
speed, so neither qps nor the average is taken from it, and its percentiles are at a lighter
load than the rounds' average).

At full load both the server and dnsperf keep a core busy, so a query's latency there is
mostly its wait in queues, and the server that answers more queries a second also has more
of them waiting. Latency is also measured at **equal load**: one more ``-v`` run per
contender with dnsperf's rate limit (``-Q``) at ``EQUAL_LOAD`` of the lower of NSD's and ddi's
median qps (``eq_qps``, the same offered rate for every server), giving ``eq_avg_ms`` and
``eq_p99_ms``. A server whose median is below that rate is not run at it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import data, ddi_site
from bench.common import (
    Context,
    Row,
    children_cpu_seconds,
    cpu_seconds,
    median,
    missing_tools,
    percentile,
    rss_bytes,
    stop,
    udp_dns_answers,
    unavailable,
    wait_until,
)

SECTION = "dns"
EQUAL_LOAD = 0.5
"""The equal-load runs' rate, as a share of the lower of NSD's and ddi's median qps."""
PORTS = {"nsd": 5301, "dnsmasq": 5302, "ddi": 5303}


@dataclass(slots=True)
class Server:
    name: str
    port: int
    proc: subprocess.Popen[str] | None = None
    daemon: ddi_site.DdiDaemon | None = None
    note: str = ""

    def pid(self) -> int | None:
        if self.daemon is not None:
            return self.daemon.pid
        return None if self.proc is None else self.proc.pid

    def server_pid(self) -> int | None:
        """The process whose CPU is the server's (not py-spy's, under ``--py-spy``)."""
        if self.daemon is not None:
            return self.daemon.server_pid
        return self.pid()

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        stop(self.proc)


def _start_nsd(ctx: Context, ns: str, names: list[data.Name]) -> Server:
    folder = ctx.workdir / f"nsd-{len(names)}"
    folder.mkdir()
    forward, reverse = data.write_nsd_zones(folder, names)
    port = PORTS["nsd"]
    conf = folder / "nsd.conf"
    conf.write_text(
        "server:\n"
        "  server-count: 1\n"
        f"  ip-address: 127.0.0.1@{port}\n"
        "  rrl-ratelimit: 0\n"
        f'  zonesdir: "{folder}"\n'
        '  database: ""\n'
        f'  pidfile: "{folder}/nsd.pid"\n'
        f'  xfrdfile: "{folder}/xfrd.state"\n'
        f'  zonelistfile: "{folder}/zone.list"\n'
        '  username: ""\n'
        '  chroot: ""\n'
        f'  logfile: "{folder}/nsd.log"\n'
        "  verbosity: 0\n"
        "remote-control:\n"
        "  control-enable: no\n"
        f"zone:\n  name: {data.DOMAIN}\n  zonefile: {forward.name}\n"
        + "".join(f"zone:\n  name: {r.stem}\n  zonefile: {r.name}\n" for r in reverse)
    )
    out = (folder / "stdout").open("w")
    proc = ctx.lab.popen(ns, "nsd", "-d", "-c", str(conf), stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return Server("nsd", port, proc=proc, note="1 server process, RRL off")


def _start_dnsmasq(ctx: Context, ns: str, names: list[data.Name]) -> Server:
    folder = ctx.workdir / f"dnsmasq-dns-{len(names)}"
    folder.mkdir()
    hosts = data.write_hosts_file(folder / "hosts", names)
    port = PORTS["dnsmasq"]
    out = (folder / "stdout").open("w")
    proc = ctx.lab.popen(
        ns,
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        f"--addn-hosts={hosts}",
        f"--local=/{data.DOMAIN}/",
        *(f"--local=/{zone}/" for zone in data.reverse_zones(names)),
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        f"--port={port}",
        "--cache-size=10000",
        "--user=root",
        "--group=root",
        f"--pid-file={folder}/pid",
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    return Server("dnsmasq", port, proc=proc, note="addn-hosts, --local zones")


def _start_ddi(ctx: Context, ns: str, names: list[data.Name]) -> Server:
    workdir = ctx.workdir / f"ddi-dns-{len(names)}"
    port = PORTS["ddi"]
    subnet = ddi_site.SubnetSpec(name="bench", cidr="198.18.0.0/15")
    ds = ddi_site.Dataset(key=f"dns{len(names)}", subnets=[subnet], hosts=names)
    spent = ddi_site.prepare_store(workdir / "var", ds, ctx.log)
    if spent:
        ctx.log(f"  ddi store loaded in {spent:.0f} s")
    # The default config: no DNS setting but where to listen and the NS glue address.
    dns = {"listen": [f"127.0.0.1:{port}"], "ns_address": "198.18.0.1"}
    cfg = ddi_site.config_text(workdir, subnets=[subnet], dns=dns)
    daemon = ddi_site.DdiDaemon(ctx.lab, ns, workdir, cfg)
    daemon.start()
    return Server("ddi", port, daemon=daemon, note="reservations → A + PTR; default config")


STARTERS: dict[str, Callable[[Context, str, list[data.Name]], Server]] = {
    "nsd": _start_nsd,
    "dnsmasq": _start_dnsmasq,
    "ddi": _start_ddi,
}

_NUM = r"([0-9.]+)"


def parse_dnsperf(text: str) -> dict[str, Any]:
    """The summary numbers of a dnsperf run."""
    result: dict[str, Any] = {}
    patterns = {
        "sent": rf"Queries sent:\s+{_NUM}",
        "completed": rf"Queries completed:\s+{_NUM}",
        "lost": rf"Queries lost:\s+{_NUM}",
        "qps": rf"Queries per second:\s+{_NUM}",
        "avg_latency_ms": rf"Average Latency \(s\):\s+{_NUM}",
    }
    for key, pattern in patterns.items():
        m = re.search(pattern, text)
        if m:
            result[key] = float(m.group(1))
    if "avg_latency_ms" in result:
        result["avg_latency_ms"] *= 1000
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        result["rcodes"] = m.group(1).strip()
    if result.get("sent"):
        result["loss_pct"] = 100.0 * result.get("lost", 0.0) / result["sent"]
    return result


def dnsperf(
    ctx: Context,
    ns: str,
    port: int,
    queries: Path,
    seconds: float,
    *,
    verbose_to: Path | None,
    passes: int | None = None,
    server_pid: int | None = None,
    rate: int | None = None,
) -> dict[str, Any]:
    """One dnsperf run of ``seconds`` (or ``passes`` times through the file, if sooner), at
    most ``rate`` queries a second when given; with ``server_pid``, also the server's CPU per
    completed query (``cpu_us``, all its threads, user and system) and the cores dnsperf kept
    busy (``dnsperf_cores``)."""
    p = ctx.profile
    argv = [
        "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries),
        "-c", str(p.dns_clients), "-q", str(p.dns_outstanding), "-l", f"{seconds:g}",
    ]  # fmt: skip
    if passes is not None:
        argv += ["-n", str(passes)]
    if rate is not None:
        argv += ["-Q", str(rate)]
    if verbose_to is None:
        server_cpu = None if server_pid is None else cpu_seconds(server_pid)
        client_cpu = children_cpu_seconds()
        started = time.monotonic()
        out = ctx.lab.run(ns, *argv, check=False, timeout=seconds + 60)
        elapsed = time.monotonic() - started
        result = parse_dnsperf(out.stdout)
        result["dnsperf_cores"] = round((children_cpu_seconds() - client_cpu) / elapsed, 2)
        if server_cpu is not None and server_pid is not None and result.get("completed"):
            spent = cpu_seconds(server_pid) - server_cpu
            result["cpu_us"] = round(1e6 * spent / result["completed"], 2)
        return result
    with verbose_to.open("w") as f:
        proc = ctx.lab.popen(ns, *argv, "-v", stdout=f, stderr=subprocess.STDOUT)
        proc.wait(timeout=seconds + 60)
    latencies = []
    summary_lines = []
    with verbose_to.open() as f:
        for line in f:
            if line.startswith("> "):
                parts = line.split()
                if len(parts) >= 5:
                    with contextlib.suppress(ValueError):
                        latencies.append(float(parts[-1]))
            else:
                summary_lines.append(line)
    verbose_to.unlink()
    latencies.sort()
    result = parse_dnsperf("".join(summary_lines))
    for q in (50, 90, 99, 99.9):
        value = percentile(latencies, q)
        result[f"p{q:g}_ms"] = None if value is None else round(value * 1000, 3)
    return result


def run(ctx: Context) -> list[Row]:
    p = ctx.profile
    wanted = [name for name in STARTERS if ctx.wants(name)]
    lacking = missing_tools("dnsperf", "dig")
    scenarios = ("udp", "udp-100k")
    if lacking:
        why = f"missing {', '.join(lacking)}"
        return [unavailable(SECTION, s, n, why) for s in scenarios for n in wanted]
    ns = ctx.lab.namespace("dns")
    rows: list[Row] = []
    names = data.dns_names(p.dns_names)
    rows += _scenario(ctx, ns, "udp", names, data.query_lines(names, p.dns_queries), wanted)
    names = data.dns_names(p.dns_large_names)
    lines = data.distinct_query_lines(names, p.dns_large_queries)
    rows += _scenario(ctx, ns, "udp-100k", names, lines, wanted)
    return rows


def _scenario(
    ctx: Context,
    ns: str,
    scenario: str,
    names: list[data.Name],
    lines: list[str],
    wanted: list[str],
) -> list[Row]:
    """Every wanted server on ``names``, measured with the query file ``lines``."""
    p = ctx.profile
    rows: list[Row] = []
    queries = ctx.workdir / f"queries-{scenario}.txt"
    queries.write_text("\n".join(lines) + "\n")
    distinct = len(set(lines))
    ctx.log(f"  {scenario}: {len(names):,} names, {len(lines):,} questions ({distinct:,} distinct)")
    servers: dict[str, Server] = {}
    try:
        for name in wanted:
            tool = {"nsd": "nsd", "dnsmasq": "dnsmasq"}.get(name)
            if tool and missing_tools(tool):
                rows.append(unavailable(SECTION, scenario, name, f"missing {tool}"))
                continue
            if name == "ddi":
                why = ddi_site.missing("dns")
                if why:
                    rows.append(unavailable(SECTION, scenario, name, why))
                    continue
            ctx.log(f"  starting {name}")
            try:
                server = STARTERS[name](ctx, ns, names)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                rows.append(unavailable(SECTION, scenario, name, f"did not start: {exc}"))
                continue
            servers[name] = server
            answers = functools.partial(udp_dns_answers, ns, "127.0.0.1", server.port)
            if not wait_until(answers, 120, 0.2):
                rows.append(unavailable(SECTION, scenario, name, "no answer to a SOA query"))
                server.close()
                del servers[name]
        for server in servers.values():
            # Warm-up: once through the whole query file (a contender's own caches see every
            # question once), then dns_warmup seconds at full load.
            ctx.log(f"  warm-up {server.name}")
            dnsperf(ctx, ns, server.port, queries, 120, verbose_to=None, passes=1)
            dnsperf(ctx, ns, server.port, queries, p.dns_warmup, verbose_to=None)
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        for round_no in range(p.dns_rounds):
            for server in servers.values():
                r = dnsperf(ctx, ns, server.port, queries, p.dns_seconds, verbose_to=None,
                            server_pid=server.server_pid())  # fmt: skip
                ctx.log(
                    f"  {scenario} round {round_no + 1} {server.name}: {r.get('qps', 0):,.0f}"
                    f" qps, avg {r.get('avg_latency_ms', 0):.2f} ms,"
                    f" loss {r.get('loss_pct', 0):.2f}%"
                )
                results[server.name].append(r)
        latency: dict[str, dict[str, Any]] = {}
        seconds = min(p.dns_seconds, 5.0)
        for server in servers.values():
            latency[server.name] = dnsperf(
                ctx, ns, server.port, queries, seconds, verbose_to=ctx.shmdir / "dnsperf-v.txt"
            )
        medians = {name: median([r["qps"] for r in runs if "qps" in r])
                   for name, runs in results.items()}  # fmt: skip
        equal = equal_rate(medians)
        at_equal: dict[str, dict[str, Any]] = {}
        for server in servers.values():
            best = medians.get(server.name)
            if equal is None or best is None or best < equal:
                continue
            at_equal[server.name] = r = dnsperf(
                ctx, ns, server.port, queries, seconds, rate=equal,
                verbose_to=ctx.shmdir / "dnsperf-v.txt",
            )  # fmt: skip
            ctx.log(
                f"  {scenario} at {equal:,} qps {server.name}: avg"
                f" {r.get('avg_latency_ms', 0):.3f} ms, p99 {r.get('p99_ms')} ms"
            )
        for name, server in servers.items():
            runs = results[name]
            lat = latency[name]
            eq = at_equal.get(name, {})
            pid = server.pid()
            rss = rss_bytes(pid) if pid else None
            rows.append(
                Row(
                    SECTION,
                    scenario,
                    name,
                    {
                        "qps": _round(median([r["qps"] for r in runs if "qps" in r])),
                        "qps_runs": ", ".join(f"{r.get('qps', 0):.0f}" for r in runs),
                        "loss_pct": _round(median([r.get("loss_pct", 0.0) for r in runs]), 3),
                        "avg_ms": _round(median([r.get("avg_latency_ms", 0.0) for r in runs]), 3),
                        "cpu_us": _round(median([r["cpu_us"] for r in runs if "cpu_us" in r]), 2),
                        "dnsperf_cores": _round(
                            median([r["dnsperf_cores"] for r in runs if "dnsperf_cores" in r]), 2
                        ),
                        "p50_ms": lat.get("p50_ms"),
                        "p99_ms": lat.get("p99_ms"),
                        "p99.9_ms": lat.get("p99.9_ms"),
                        "eq_qps": equal if eq else None,
                        "eq_avg_ms": eq.get("avg_latency_ms"),
                        "eq_p99_ms": eq.get("p99_ms"),
                        "rcodes": lat.get("rcodes", runs[-1].get("rcodes") if runs else None),
                        "rss_mb": None if rss is None else round(rss / 2**20, 1),
                    },
                    note=server.note,
                )
            )
    finally:
        for server in servers.values():
            server.close()
        time.sleep(0.2)
    return rows


def equal_rate(medians: dict[str, float | None]) -> int | None:
    """The equal-load runs' offered rate: ``EQUAL_LOAD`` of the lower of NSD's and ddi's
    median qps (of every contender's when neither ran), rounded down to a thousand from 10,000
    up."""
    pair = [q for name, q in medians.items() if name in ("nsd", "ddi") and q]
    known = pair or [q for q in medians.values() if q]
    if not known:
        return None
    rate = int(EQUAL_LOAD * min(known))
    return rate // 1000 * 1000 if rate >= 10_000 else max(1, rate)


def _round(value: float | None, digits: int = 0) -> float | None:
    return None if value is None else round(value, digits)
