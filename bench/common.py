"""Shared pieces of the benchmark harness: sizes, result rows, processes, machine facts."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddi.lab import Lab

NOT_AVAILABLE = "not available"


@dataclass(frozen=True, slots=True)
class Profile:
    """How big each benchmark is. ``full`` is what the README quotes; ``smoke`` is for the
    harness's own test and quick checks."""

    name: str
    dns_names: int
    dns_queries: int
    dns_seconds: float
    dns_warmup: float
    dns_rounds: int
    dns_clients: int
    dns_outstanding: int
    dns_large_names: int
    """The second DNS scenario: this many names, and ``dns_large_queries`` distinct questions."""
    dns_large_queries: int
    dhcp_period: float
    dhcp_start_rate: int
    dhcp_max_rate: int
    dhcp_bisect: int
    dhcp_clients: int
    storm_clients: int
    mem_hosts: int
    mem_leases: int
    mem_records: int
    sync_changes: int
    sync_sites: int
    sync_site_changes: int


FULL = Profile(
    name="full",
    dns_names=10_000,
    dns_queries=100_000,
    dns_seconds=10.0,
    dns_warmup=2.0,
    dns_rounds=3,
    dns_clients=4,
    dns_outstanding=500,
    dns_large_names=100_000,
    dns_large_queries=200_000,
    dhcp_period=5.0,
    dhcp_start_rate=250,
    dhcp_max_rate=32_000,
    dhcp_bisect=2,
    dhcp_clients=30_000,
    storm_clients=2_000,
    mem_hosts=50_000,
    mem_leases=100_000,
    mem_records=100_000,
    sync_changes=100_000,
    sync_sites=20,
    sync_site_changes=5_000,
)

SMOKE = Profile(
    name="smoke",
    dns_names=200,
    dns_queries=1_000,
    dns_seconds=1.0,
    dns_warmup=0.5,
    dns_rounds=1,
    dns_clients=2,
    dns_outstanding=20,
    dns_large_names=500,
    dns_large_queries=1_000,
    dhcp_period=1.0,
    dhcp_start_rate=50,
    dhcp_max_rate=100,
    dhcp_bisect=0,
    dhcp_clients=500,
    storm_clients=20,
    mem_hosts=500,
    mem_leases=1_000,
    mem_records=1_000,
    sync_changes=1_000,
    sync_sites=2,
    sync_site_changes=200,
)

PROFILES = {p.name: p for p in (FULL, SMOKE)}


@dataclass(slots=True)
class Row:
    """One line of a result table: a contender in a scenario, its numbers or why it has none."""

    section: str
    scenario: str
    contender: str
    metrics: dict[str, float | int | str | None] = field(default_factory=dict)
    note: str = ""
    available: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "scenario": self.scenario,
            "contender": self.contender,
            "available": self.available,
            "metrics": self.metrics,
            "note": self.note,
        }


def unavailable(section: str, scenario: str, contender: str, why: str) -> Row:
    """A row without numbers, saying why (one line: a traceback's last line, at most 240
    characters)."""
    if "Traceback" in why:
        head = why.split("Traceback", 1)[0].strip()
        last = [line for line in why.splitlines() if line.strip()][-1]
        why = f"{head} {last.strip()}"
    why = " ".join(why.split())
    if len(why) > 240:
        why = why[:237] + "..."
    return Row(section, scenario, contender, note=f"{NOT_AVAILABLE}: {why}", available=False)


@dataclass(slots=True)
class Context:
    """What every benchmark gets: the profile, a lab to make namespaces in, a work folder on
    disk (fsync means something there) and one on tmpfs, and a log sink."""

    profile: Profile
    lab: Lab
    workdir: Path
    shmdir: Path
    only_contenders: frozenset[str] | None = None
    log: Callable[[str], None] = print

    def wants(self, contender: str) -> bool:
        return self.only_contenders is None or contender in self.only_contenders


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_total = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem_total = int(first.split()[1]) * 1024
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "memory_bytes": mem_total,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def tool_versions() -> dict[str, str]:
    probes = {
        "nsd": ["nsd", "-v"],
        "dnsmasq": ["dnsmasq", "-v"],
        "kea-dhcp4": ["kea-dhcp4", "-v"],
        "kea-dhcp6": ["kea-dhcp6", "-v"],
        "dnsperf": ["dnsperf", "-h"],
        "perfdhcp": ["perfdhcp", "-v"],
    }
    versions = {}
    for name, argv in probes.items():
        if shutil.which(argv[0]) is None:
            versions[name] = "missing"
            continue
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            versions[name] = "unknown"
            continue
        text = (out.stdout + out.stderr).strip().splitlines()
        line = next((t for t in text if "ersion" in t or t[:1].isdigit()), text[0] if text else "")
        versions[name] = line.split("  ")[0].strip()
    return versions


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` (VmRSS), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def descendant_pids(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    result, todo = [], [pid]
    while todo:
        p = todo.pop()
        result.append(p)
        todo.extend(children.get(p, ()))
    return result


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` and every process below it (all their threads),
    in seconds; a process gone meanwhile counts for nothing."""
    ticks = 0
    for p in descendant_pids(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (proc(5) fields 14, 15)
    return ticks / CLOCK_TICKS


def children_cpu_seconds() -> float:
    """User plus system CPU of this process's children that have been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def loss_counts(pid: int | None, service: str, daemon: Any = None) -> dict[str, int]:
    """Where a DHCP server's datagrams were lost, as counters to diff around a step: the
    kernel's UDP receive-buffer overflows in the server's namespace (``/proc/<pid>/net/snmp``
    ``RcvbufErrors``, or ``Udp6RcvbufErrors`` for ``dhcp6``: datagrams the server never read)
    and, with a ``ddi_site.DdiDaemon``, ddi's own drops by reason (``service``'s ``dropped``
    in ``/v1/status``)."""
    counts: dict[str, int] = {}
    if pid is not None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            if service == "dhcp6":
                for line in Path(f"/proc/{pid}/net/snmp6").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "Udp6RcvbufErrors":
                        counts["rcvbuf"] = int(value)
            else:
                rows = [
                    line.split()
                    for line in Path(f"/proc/{pid}/net/snmp").read_text().splitlines()
                    if line.startswith("Udp:")
                ]
                counts["rcvbuf"] = int(rows[1][rows[0].index("RcvbufErrors")])
    if daemon is not None:
        with contextlib.suppress(OSError, RuntimeError, ValueError, KeyError, TypeError):
            for reason, n in daemon.status()["statistics"][service]["dropped"].items():
                counts[str(reason)] = int(n)
    return counts


def loss_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The counters of ``loss_counts`` that moved between two snapshots."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


def measure_step(
    run: Callable[[], dict[str, Any]], *, server: int | None, service: str, daemon: Any = None
) -> dict[str, Any]:
    """``run()``'s result (one perfdhcp step) with what the step cost around it: the server's
    CPU (``server_cpu_s``, with the ``server``'s pid), perfdhcp's (``perfdhcp_cpu_s``) and where
    the server lost datagrams (``server_losses``, ``loss_counts``). The server's CPU is read
    before its drop counters, whose ``/v1/status`` call it would otherwise count."""
    lost = loss_counts(server, service, daemon)
    server_cpu = None if server is None else cpu_seconds(server)
    client_cpu = children_cpu_seconds()
    result = run()
    result["perfdhcp_cpu_s"] = children_cpu_seconds() - client_cpu
    if server is not None and server_cpu is not None:
        result["server_cpu_s"] = cpu_seconds(server) - server_cpu
    result["server_losses"] = loss_delta(lost, loss_counts(server, service, daemon))
    return result


def step_text(step: dict[str, Any]) -> str:
    """A ladder step for the ``steps`` column: ``rate:lost%``, and where exchanges were lost,
    where the server lost them (``loss_delta``)."""
    text = f"{step['asked']}:{step.get('drops_pct', 100):.1f}%"
    losses = step.get("server_losses")
    if losses and step.get("drops_pct", 100) > 0:
        text += " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(losses.items())) + ")"
    return text


def cpu_figures(step: dict[str, Any], exchanges: float, period: float) -> dict[str, float]:
    """At a perfdhcp step (its ``server_cpu_s`` and ``perfdhcp_cpu_s``): the server's CPU per
    completed exchange (``cpu_us``, microseconds, all its threads, user and system) and the
    cores perfdhcp itself kept busy (``perfdhcp_cores``). On a 2-core machine these two say
    how far a server can go."""
    figures: dict[str, float] = {}
    if exchanges and step.get("server_cpu_s") is not None:
        figures["cpu_us"] = round(1e6 * step["server_cpu_s"] / exchanges, 1)
    if step.get("perfdhcp_cpu_s") is not None:
        figures["perfdhcp_cores"] = round(step["perfdhcp_cpu_s"] / period, 2)
    return figures


def stop(proc: subprocess.Popen[str] | None, timeout: float = 10.0) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def udp_dns_answers(ns: str, host: str, port: int, name: str = "site1.example") -> bool:
    """True once a DNS server in ``ns`` answers a SOA query (dig, inside the namespace)."""
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "dig",
            f"@{host}",
            "-p",
            str(port),
            "+tries=1",
            "+time=1",
            name,
            "SOA",
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return "status: NOERROR" in out.stdout or "status: NXDOMAIN" in out.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def reserved_port() -> int:
    """A free TCP port on 127.0.0.1 below the kernel's ephemeral range, for a server that
    starts only after its clients: an outgoing connection of theirs could otherwise take a
    port picked from the ephemeral range (``free_port``) before the server binds it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for port in random.Random().sample(range(10_000, max(10_001, low)), 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def missing_tools(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]
