"""Memory: resident set size with the same reservations, leases and DNS records loaded.

dnsmasq gets ``--dhcp-hostsfile`` (reservations with names), a lease file and
``--addn-hosts`` (A records); ddi gets the same objects in its store (loaded in-process, see
``ddi_site``). Each serves DHCP on a lab interface in 198.18.0.0/15 and DNS on loopback; RSS
(VmRSS) is read once the server answers a query for the last record and has idled a second
(``rss_mb``, settled), with the process's peak resident set since it started (``hwm_mb``,
VmHWM: the start-up's temporaries included); ``load_s`` is the start-up, from the process's
start until it answers for the last record. Both in MiB (2^20 bytes). The full data set runs
first, then a tenth of it (dnsmasq may not load the full set in time).
"""

from __future__ import annotations

import subprocess
import time
from ipaddress import IPv4Address
from pathlib import Path

from bench import data, ddi_site
from bench.common import (
    Context,
    Row,
    missing_tools,
    rss_bytes,
    stop,
    unavailable,
    wait_until,
)

SECTION = "memory"
DNSMASQ_WAIT = 150.0
"""Seconds dnsmasq gets to load the data: its start-up grows with the square of the hosts and
leases (each is checked against the ones before), so the full set can take far longer."""
POLL = 0.05
"""Seconds between the queries that wait for a server to answer for the last record: the
start-up (``load_s``) is known to within this (a dig to a port not yet open returns at once)."""
NET = "198.18.0.0/15"
POOL_END = "198.19.255.254"


def _answers(ctx: Context, ns: str, port: int, name: str, want: IPv4Address) -> bool:
    out = ctx.lab.run(
        ns, "dig", "@127.0.0.1", "-p", str(port), "+short", "+tries=1", "+time=2", name, "A",
        check=False,
    )  # fmt: skip
    return str(want) in out.stdout.split()


def _settled_rss(pid: int) -> int | None:
    time.sleep(1.0)
    return rss_bytes(pid)


def hwm_bytes(pid: int) -> int | None:
    """Peak resident set size of ``pid`` (VmHWM), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


def run(ctx: Context) -> list[Row]:
    p = ctx.profile
    rows: list[Row] = []
    sizes = [
        (p.mem_hosts, p.mem_leases, p.mem_records),
        (p.mem_hosts // 10, p.mem_leases // 10, p.mem_records // 10),
    ]
    wanted = [c for c in ("dnsmasq", "ddi") if ctx.wants(c)]
    if missing_tools("dig"):
        return [unavailable(SECTION, _scenario(*sizes[0]), n, "missing dig") for n in wanted]
    ns, peer = ctx.lab.namespace("msrv"), ctx.lab.namespace("mcli")
    ctx.lab.link(ns, "mem0", "198.18.0.1/15", peer, "cli0", None)
    for n_hosts, n_leases, n_records in sizes:
        scenario = _scenario(n_hosts, n_leases, n_records)
        hosts = data.mem_hosts(n_hosts)
        leases = list(data.mem_leases(hosts, n_leases))
        records = data.mem_records(n_records)
        last = records[-1]
        counts = {"hosts": len(hosts), "leases": len(leases), "records": len(records)}
        args = (ns, scenario, hosts, leases, records, last, counts)
        if "dnsmasq" in wanted:
            if missing_tools("dnsmasq"):
                rows.append(unavailable(SECTION, scenario, "dnsmasq", "missing dnsmasq"))
            else:
                rows.append(_dnsmasq(ctx, *args))
        if "ddi" in wanted:
            why = ddi_site.missing("dns")
            if why:
                rows.append(unavailable(SECTION, scenario, "ddi", why))
            else:
                rows.append(_ddi(ctx, *args))
    return rows


def _scenario(hosts: int, leases: int, records: int) -> str:
    def short(n: int) -> str:
        return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)

    return f"{short(hosts)}/{short(leases)}/{short(records)}"


def _dnsmasq(
    ctx: Context,
    ns: str,
    scenario: str,
    hosts: list[data.Name],
    leases: list[tuple[IPv4Address, str, str | None]],
    records: list[data.Name],
    last: data.Name,
    counts: dict[str, int],
) -> Row:
    folder = ctx.workdir / f"dnsmasq-{len(hosts)}"
    folder.mkdir()
    with (folder / "dhcp-hosts").open("w") as f:
        for n in hosts:
            f.write(f"{n.mac},{n.ip},{n.hostname}\n")
    expiry = int(time.time()) + 7 * 86400
    with (folder / "leases").open("w") as f:
        for ip, mac, hostname in leases:
            f.write(f"{expiry} {mac} {ip} {hostname or '*'} *\n")
    data.write_hosts_file(folder / "records", records)
    port = 5311
    started = time.monotonic()
    out = (folder / "stdout").open("w")
    proc = ctx.lab.popen(
        ns,
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        f"--addn-hosts={folder / 'records'}",
        f"--dhcp-hostsfile={folder / 'dhcp-hosts'}",
        f"--dhcp-leasefile={folder / 'leases'}",
        f"--dhcp-range=198.18.1.0,{POOL_END},255.254.0.0,7d",
        "--dhcp-lease-max=1000000",
        f"--domain={data.DOMAIN}",
        f"--local=/{data.DOMAIN}/",
        "--interface=mem0",
        "--interface=lo",
        "--bind-interfaces",
        f"--port={port}",
        "--no-ping",
        "--quiet-dhcp",
        "--user=root",
        "--group=root",
        f"--pid-file={folder / 'pid'}",
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    try:
        if not wait_until(lambda: _answers(ctx, ns, port, last.fqdn, last.ip), DNSMASQ_WAIT, POLL):
            why = f"did not load this data within {DNSMASQ_WAIT:.0f} s (still starting)"
            return unavailable(SECTION, scenario, "dnsmasq", why)
        load_s = time.monotonic() - started
        lease_name = hosts[-1].fqdn if hosts else last.fqdn
        leased_ok = not hosts or _answers(ctx, ns, port, lease_name, hosts[-1].ip)
        rss = _settled_rss(proc.pid)
        return Row(
            SECTION,
            scenario,
            "dnsmasq",
            {
                "rss_mb": _mib(rss),
                "hwm_mb": _mib(hwm_bytes(proc.pid)),
                **counts,
                "load_s": round(load_s, 1),
            },
            note="dhcp-hostsfile + leasefile + addn-hosts"
            + ("" if leased_ok else "; a reserved host's name did not resolve"),
        )
    finally:
        stop(proc)


def _ddi(
    ctx: Context,
    ns: str,
    scenario: str,
    hosts: list[data.Name],
    leases: list[tuple[IPv4Address, str, str | None]],
    records: list[data.Name],
    last: data.Name,
    counts: dict[str, int],
) -> Row:
    workdir = ctx.workdir / f"ddi-{len(hosts)}"
    pool_start = str(IPv4Address(int(hosts[-1].ip) + 1)) if hosts else "198.18.1.0"
    dhcp_ready = ddi_site.missing("dhcp") is None
    subnet = ddi_site.SubnetSpec(
        "bench",
        NET,
        pools=((pool_start, POOL_END),),
        interface="mem0" if dhcp_ready else None,
        lease_time=7 * 86400,
    )
    ds = ddi_site.Dataset(
        key=f"mem{len(hosts)}-{len(leases)}-{len(records)}",
        subnets=[subnet],
        hosts=hosts,
        leases=leases,
        records=records,
        lease_subnet="bench",
    )
    try:
        spent = ddi_site.prepare_store(Path(workdir / "var"), ds, ctx.log)
    except Exception as exc:  # noqa: BLE001 - any loader failure makes the row unavailable
        return unavailable(SECTION, scenario, "ddi", f"loading the store failed: {exc!r}")
    if spent:
        ctx.log(f"  ddi store loaded in {spent:.0f} s")
    port = 5312
    cfg = ddi_site.config_text(
        workdir,
        subnets=[subnet],
        dhcp={"interfaces": ["mem0"]} if dhcp_ready else None,
        dns={"listen": [f"127.0.0.1:{port}"], "ns_address": "198.18.0.1"},
    )
    daemon = ddi_site.DdiDaemon(ctx.lab, ns, workdir, cfg)
    started = time.monotonic()
    try:
        try:
            daemon.start(timeout=300)
        except RuntimeError as exc:
            return unavailable(SECTION, scenario, "ddi", f"did not start: {exc}")
        if not wait_until(lambda: _answers(ctx, ns, port, last.fqdn, last.ip), 300, POLL):
            return unavailable(SECTION, scenario, "ddi", "did not answer for its records")
        load_s = time.monotonic() - started
        assert daemon.pid is not None
        rss = _settled_rss(daemon.pid)
        hwm = hwm_bytes(daemon.pid)
        store = daemon.status().get("store", {})
        loaded = {k: store.get(k) for k in ("hosts", "leases", "records")}
        note = "store + index + zones" + ("" if dhcp_ready else "; DHCP off (not landed)")
        if loaded != counts:
            note += f"; status shows {loaded}"
        return Row(
            SECTION,
            scenario,
            "ddi",
            {
                "rss_mb": _mib(rss),
                "hwm_mb": _mib(hwm),
                **counts,
                "load_s": round(load_s, 1),
            },
            note=note,
        )
    finally:
        daemon.stop()
