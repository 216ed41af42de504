"""ddi as a contender: its config, its store pre-loaded in-process, its process in a namespace.

Loading 10,000-100,000 objects through the CLI would take longer than the benchmarks, so the
loader opens ``ddi.ipam.store.Store`` directly (the one writer, with its normal checks and change
log) before the daemon starts. A loaded store is kept under ``bench/results/cache/`` keyed by
the data set and a hash of the store's code, and copied for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from bench import data
from bench.common import descendant_pids, stop
from ddi.lab import Lab

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "results" / "cache"
SITE_ID = "bench1"
PROFILE_DIR: Path | None = None
"""When set (``--py-spy``), every ddi daemon runs under ``py-spy record`` and leaves its
collapsed stacks there (RSS figures are then py-spy's, not ddi's)."""
TRACE_STALLS_MS: int | None = None
"""When set (``--trace-stalls MS``), every ddi daemon runs with ``--trace-stalls MS`` and the
stops it logs are copied to ``STALLS_DIR`` when it stops (the figures then include the
tracer's own cost)."""
STALLS_DIR = ROOT / "bench" / "results" / "stalls"


SERVICES = {
    "dns": ("ddi.dns.server", "dns.server.service("),
    "dhcp": ("ddi.dhcp.server", "dhcp.server.service("),
    "sync": ("sync.agent", "agent.service("),
    "central": ("central.app", ""),
}


def missing(*services: str) -> str | None:
    """Why ddi cannot run ``services`` (see ``SERVICES``) yet, or None when it can: the module
    must exist and, for a daemon service, ``ddi/app.py`` must start it."""
    app_py = ROOT / "ddi" / "app.py"
    app_text = app_py.read_text() if app_py.exists() else ""
    for service in services:
        module, marker = SERVICES[service]
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            spec = None
        if spec is None:
            return f"{module} has not landed"
        if marker and marker not in app_text:
            return f"ddi/app.py does not start {module} yet"
    return None


@dataclass(frozen=True, slots=True)
class SubnetSpec:
    name: str
    cidr: str
    pools: tuple[tuple[str, str], ...] = ()
    interface: str | None = None
    relay_agents: tuple[str, ...] = ()
    lease_time: int = 86400


def config_text(
    workdir: Path,
    *,
    subnets: Sequence[SubnetSpec],
    dhcp: dict[str, Any] | None = None,
    dns: dict[str, Any] | None = None,
    extra: str = "",
) -> str:
    """A ddi config: [site]/[api] in ``workdir``, the subnets, [dhcp] (off when None), [dns]
    (absent, so off, when None)."""
    lines = [
        "[site]",
        f'id = "{SITE_ID}"',
        f'domain = "{data.DOMAIN}"',
        f'data_dir = "{workdir / "var"}"',
        "",
        "[api]",
        f'socket = "{workdir / "ddi.sock"}"',
        "",
    ]
    for s in subnets:
        lines += ["[[subnets]]", f'name = "{s.name}"', f'cidr = "{s.cidr}"']
        lines.append(f"lease_time = {s.lease_time}")
        if s.interface:
            lines.append(f'interface = "{s.interface}"')
        if s.relay_agents:
            lines.append("relay_agents = [" + ", ".join(f'"{a}"' for a in s.relay_agents) + "]")
        for start, end in s.pools:
            lines += ["[[subnets.pools]]", f'start = "{start}"', f'end = "{end}"']
        lines.append("")
    lines.append("[dhcp]")
    lines += _toml_items(dhcp if dhcp is not None else {"enabled": False})
    lines.append("")
    if dns is not None:
        lines.append("[dns]")
        lines += _toml_items(dns)
        lines.append("")
    return "\n".join(lines) + extra


def _toml_items(items: dict[str, Any]) -> list[str]:
    return [f"{k} = {json.dumps(v)}" for k, v in items.items()]


@dataclass(slots=True)
class Dataset:
    """What the loader puts in the store before the daemon starts."""

    key: str
    """Names the data set in the cache (with the profile's sizes)."""
    subnets: list[SubnetSpec]
    hosts: list[data.Name] = field(default_factory=list)
    leases: list[tuple[IPv4Address, str, str | None]] = field(default_factory=list)
    records: list[data.Name] = field(default_factory=list)
    lease_subnet: str = ""


def _code_hash() -> str:
    """The store's schema version: a cached store of that version opens as it is (and an
    older one would be migrated by ``Store.open``, but is rebuilt to be sure)."""
    from ddi.ipam.schema import SCHEMA_VERSION

    return f"v{SCHEMA_VERSION}"


async def _load(path: Path, ds: Dataset, log: Any) -> None:
    from ddi.ipam.models import Host, Lease, Pool, Record, Subnet
    from ddi.ipam.store import Store

    store = await Store.open(path, domain=data.DOMAIN)
    try:
        subnets = [
            Subnet(
                name=s.name,
                cidr=IPv4Network(s.cidr),
                pools=tuple(Pool(start=IPv4Address(a), end=IPv4Address(b)) for a, b in s.pools),
                interface=s.interface,
                relay_agents=tuple(IPv4Address(a) for a in s.relay_agents),
                domain=data.DOMAIN,
                lease_time=s.lease_time,
            )
            for s in ds.subnets
        ]
        await store.sync_subnets(subnets, actor="bench", reason="bench load")
        started = time.monotonic()
        for i, n in enumerate(ds.hosts):
            host = Host(id="", ip=n.ip, hostname=n.hostname, mac=n.mac)
            await store.add_host(host, actor="bench", reason="bench load")
            if i % 10_000 == 9_999:
                log(f"    loaded {i + 1} reservations ({time.monotonic() - started:.0f} s)")
        now = time.time()
        batch: list[Any] = []
        for ip, mac, hostname in ds.leases:
            batch.append(
                Lease(
                    ip=ip,
                    mac=mac,
                    hostname=hostname,
                    start=now,
                    end=now + 7 * 86400,
                    subnet=ds.lease_subnet,
                )
            )
            if len(batch) == 5_000:
                await store.commit_leases(batch)
                batch = []
        if batch:
            await store.commit_leases(batch)
        for i, n in enumerate(ds.records):
            record = Record(id="", name=n.fqdn, rtype="A", value=str(n.ip))
            await store.add_record(record, actor="bench", reason="bench load")
            if i % 10_000 == 9_999:
                log(f"    loaded {i + 1} records ({time.monotonic() - started:.0f} s)")
    finally:
        await store.close()


def prepare_store(data_dir: Path, ds: Dataset, log: Any = print) -> float:
    """Put the data set's store at ``data_dir/ddi.sqlite`` (from the cache when it has it).
    Returns the seconds spent loading (0 when it came from the cache)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "ddi.sqlite"
    cached = CACHE / f"{ds.key}-{_code_hash()}.sqlite"
    older = sorted(CACHE.glob(f"{ds.key}-v*.sqlite"))
    if not cached.exists() and older:
        # An older schema version: let the store migrate a copy, as it would at a site.
        log(f"  migrating the cached {ds.key} store to the current schema")
        work = Path(tempfile.mkdtemp(prefix="ddi-bench-load-", dir="/dev/shm"))
        shutil.copyfile(older[-1], work / "ddi.sqlite")
        asyncio.run(_open_close(work / "ddi.sqlite"))
        _checkpoint(work / "ddi.sqlite")
        shutil.move(work / "ddi.sqlite", cached)
        shutil.rmtree(work, ignore_errors=True)
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        for stale in CACHE.glob(f"{ds.key}-*.sqlite*"):
            stale.unlink()
        # Built on tmpfs: the fsync per transaction is not what is measured here.
        building = Path(tempfile.mkdtemp(prefix="ddi-bench-load-", dir="/dev/shm"))
        log(f"  loading the {ds.key} data set into a ddi store (cached afterwards)")
        started = time.monotonic()
        asyncio.run(_load(building / "ddi.sqlite", ds, log))
        spent = time.monotonic() - started
        _checkpoint(building / "ddi.sqlite")
        shutil.move(building / "ddi.sqlite", cached)
        shutil.rmtree(building, ignore_errors=True)
    else:
        spent = 0.0
    shutil.copyfile(cached, target)
    return spent


async def _open_close(path: Path) -> None:
    from ddi.ipam.store import Store

    store = await Store.open(path)
    await store.close()


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the main file so that one file is the whole store."""
    import sqlite3

    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self._path))
        self.sock = sock


def api_get(sock_path: Path, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = _UnixHTTPConnection(sock_path, timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class DdiDaemon:
    """``python -m ddi serve`` in a namespace (or, without a lab, on the machine's loopback),
    started after its store is prepared."""

    def __init__(self, lab: Lab | None, ns: str | None, workdir: Path, config: str) -> None:
        self.lab = lab
        self.ns = ns
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "ddi.toml"
        self.config_path.write_text(config)
        self.socket = workdir / "ddi.sock"
        self.log_path = workdir / "daemon.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 120.0) -> None:
        """Start and wait for /healthz. Raises RuntimeError with the log's tail on failure."""
        self.spawn()
        self.wait_healthy(timeout)

    def spawn(self) -> None:
        log = self.log_path.open("a")
        argv = [sys.executable, "-m", "ddi", "serve", "--config", str(self.config_path)]
        if TRACE_STALLS_MS is not None:
            argv += ["--trace-stalls", str(TRACE_STALLS_MS)]
        if PROFILE_DIR is not None:
            PROFILE_DIR.mkdir(parents=True, exist_ok=True)
            out = PROFILE_DIR / f"{self.workdir.parent.name}-{self.workdir.name}.txt"
            pyspy = str(Path(sys.executable).parent / "py-spy")
            argv = [pyspy, "record", "-f", "raw", "-r", "250", "-o", str(out), "--", *argv]
        if self.lab is None or self.ns is None:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True
            )
        else:
            self.proc = self.lab.popen(self.ns, *argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def wait_healthy(self, timeout: float = 120.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ddi serve exited ({self.proc.returncode}): {self.tail()}")
            try:
                status, _ = api_get(self.socket, "/healthz", timeout=1.0)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"ddi serve not healthy in {timeout:.0f} s: {self.tail()}")

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def server_pid(self) -> int | None:
        """The ``ddi serve`` process itself: under py-spy (``--py-spy``) ``pid`` is py-spy's,
        whose own sampling must not count as the server's CPU."""
        if self.proc is None or PROFILE_DIR is None:
            return self.pid
        below = descendant_pids(self.proc.pid)[1:]
        return below[0] if below else None

    def status(self) -> dict[str, Any]:
        code, body = api_get(self.socket, "/v1/status")
        if code != 200:
            raise RuntimeError(f"/v1/status answered {code}")
        result: dict[str, Any] = json.loads(body)
        return result

    def tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text().strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def stop(self) -> None:
        if PROFILE_DIR is not None and self.proc is not None and self.proc.poll() is None:
            # Stop the daemon under py-spy, so that py-spy sees it exit and writes its stacks.
            for pid in descendant_pids(self.proc.pid)[1:]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        stop(self.proc, timeout=20)
        self.proc = None
        if TRACE_STALLS_MS is not None:
            self._keep_stalls()

    def _keep_stalls(self) -> None:
        """The log's stall reports (each a WARNING line and its stack) to ``STALLS_DIR``."""
        try:
            lines = self.log_path.read_text().splitlines()
        except OSError:
            return
        kept: list[str] = []
        inside = False
        for line in lines:
            if " ddi.stalls: " in line:
                inside = True
            elif line[:4].isdigit() or not line.startswith(" "):
                inside = False
            if inside:
                kept.append(line)
        STALLS_DIR.mkdir(parents=True, exist_ok=True)
        out = STALLS_DIR / f"{self.workdir.parent.name}-{self.workdir.name}.log"
        out.write_text("\n".join(kept) + "\n")
