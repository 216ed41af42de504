"""Sync: how long a site's queued changes take to reach the central collector, and how fast
central ingests when many sites push at once; SQLite and PostgreSQL central stores.

The "WAN comes back" scenario: each edge (``ddi serve`` with ``[sync]``, DHCP and DNS off)
starts with its change log already holding the queued changes (lease changes, written by the
loader through the store's group commit) while central is down; once every edge serves,
``ddi-central serve`` starts, and the clock runs from its start until central reports every
site's ``applied_seq`` at the edge's last change (``GET /v1/sites``, polled every 0.1 s).
The edges' backoff is capped at 0.5 s so that reconnecting costs at most that. Everything runs
on loopback (PostgreSQL too, a throwaway cluster on a free port).
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import data, ddi_site
from bench.common import Context, Row, free_port, reserved_port, stop, unavailable

SECTION = "sync"
BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("DDI_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUBNET = ddi_site.SubnetSpec("lab", "198.18.0.0/15")


def _write_key(path: Path) -> Path:
    from sync import protocol

    key = protocol.generate_key()
    path.write_bytes(protocol.private_key_pem(key))
    path.with_name(path.name + ".pub").write_bytes(protocol.public_key_pem(key.public_key()))
    return path


async def _last_seq(path: Path) -> int:
    from ddi.ipam.store import Store

    store = await Store.open(path)
    try:
        return await store.last_seq()
    finally:
        await store.close()


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1 in ``folder`` (an empty folder, given to
    the postgres user when we are root)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.prefix: list[str] = []
        self.started = False

    def start(self) -> str:
        """Start it; returns the base URL. Raises RuntimeError with the reason."""
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"{PG_BIN}/initdb not found")
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        data_dir = self.folder / "data"
        try:
            subprocess.run(
                [*self.prefix, str(PG_BIN / "initdb"), "-D", str(data_dir), "-A", "trust",
                 "-U", "postgres", "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            options = (
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
                " -c max_connections=100"
            )
            subprocess.run(
                [*self.prefix, str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-l",
                 str(self.folder / "log"), "-o", options, "-w", "-t", "60", "start"],
                check=True, capture_output=True, text=True, timeout=90,
            )  # fmt: skip
        except (subprocess.CalledProcessError, KeyError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise RuntimeError(f"PostgreSQL did not start: {detail.strip()[-300:]}") from None
        self.started = True
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def database(self, name: str) -> str:
        subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-q", "-c", f"CREATE DATABASE {name}"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.started:
            subprocess.run(
                [*self.prefix, str(PG_BIN / "pg_ctl"), "-D", str(self.folder / "data"),
                 "-m", "immediate", "-w", "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
            self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(slots=True)
class Edge:
    site: str
    daemon: ddi_site.DdiDaemon
    last_seq: int


def _popen(argv: list[str], log: Path) -> subprocess.Popen[str]:
    with log.open("a") as f:
        return subprocess.Popen(
            argv, stdout=f, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )


class Central:
    def __init__(self, folder: Path, database: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        # Central starts after the edges, whose connection attempts take ephemeral ports.
        self.port = reserved_port()
        self.key = _write_key(folder / "central.key")
        self.config = folder / "central.toml"
        self.config.write_text(
            "[central]\n"
            f'listen = "127.0.0.1:{self.port}"\n'
            f'database = "{database}"\n'
            'signing_key = "central.key"\n'
            "insecure_http = true\n"
        )
        self.log = folder / "central.log"
        self.proc: subprocess.Popen[str] | None = None
        self.answered = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def enrol(self, site: str, public_key: Path) -> None:
        argv = [str(BIN / "ddi-central"), "site", "add", "--config", str(self.config),
                "--id", site, "--public-key", str(public_key)]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"ddi-central site add: {(out.stdout + out.stderr).strip()}")

    def start(self) -> None:
        self.proc = _popen([str(BIN / "ddi-central"), "serve", "--config", str(self.config)],
                           self.log)  # fmt: skip

    def applied(self) -> dict[str, int]:
        """Each site's applied_seq at central ({} while it does not answer)."""
        try:
            with urllib.request.urlopen(f"{self.url}/v1/sites", timeout=5) as resp:
                body = json.load(resp)
        except OSError:
            return {}
        self.answered = True
        return {s.get("site", s.get("id", "")): int(s["applied_seq"]) for s in body["sites"]}

    def tail(self) -> str:
        try:
            return " | ".join(self.log.read_text().strip().splitlines()[-5:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop(self.proc, timeout=20)


def run(ctx: Context) -> list[Row]:
    p = ctx.profile
    if not ctx.wants("ddi"):
        return []
    scenarios = [
        (f"{p.sync_changes:,} queued, 1 site", 1, p.sync_changes),
        (f"{p.sync_sites} sites x {p.sync_site_changes:,}", p.sync_sites, p.sync_site_changes),
    ]
    backends = ("sqlite", "postgresql")
    why = ddi_site.missing("sync", "central")
    if why is None and not (BIN / "ddi-central").exists():
        why = f"{BIN / 'ddi-central'} is not installed"
    if why:
        return [
            unavailable(SECTION, f"{s[0]}, {b}", "ddi", why) for s in scenarios for b in backends
        ]
    rows = []
    pg = Postgres(Path(tempfile.mkdtemp(prefix="ddi-bench-pg-", dir="/var/tmp")))
    pg_error = None
    try:
        try:
            pg.start()
        except RuntimeError as exc:
            pg_error = str(exc)
        for backend in backends:
            for label, sites, changes in scenarios:
                scenario = f"{label}, {backend}"
                if backend == "postgresql" and pg_error:
                    rows.append(unavailable(SECTION, scenario, "ddi", pg_error))
                    continue
                folder = ctx.workdir / f"{backend}-{sites}"
                if backend == "sqlite":
                    database = f"sqlite://{folder / 'central' / 'central.sqlite'}"
                else:
                    database = pg.database(f"bench_{sites}_{os.getpid()}")
                ctx.log(f"  {scenario}")
                rows.append(_scenario(ctx, scenario, folder, database, sites, changes))
    finally:
        pg.stop()
    return rows


def _scenario(
    ctx: Context, scenario: str, folder: Path, database: str, sites: int, changes: int
) -> Row:
    central = Central(folder / "central", database)
    edges: list[Edge] = []
    try:
        ds = ddi_site.Dataset(
            key=f"sync{changes}",
            subnets=[SUBNET],
            leases=list(data.mem_leases([], changes)),
            lease_subnet=SUBNET.name,
        )
        for i in range(sites):
            site = f"bench{i + 1}"
            workdir = folder / site
            ddi_site.prepare_store(workdir / "var", ds, ctx.log)
            last = asyncio.run(_last_seq(workdir / "var" / "ddi.sqlite"))
            key = _write_key(workdir / "site.key")
            central.enrol(site, key.with_name(key.name + ".pub"))
            settings = {
                "central_url": central.url,
                "insecure_http": True,
                "site_key": str(key),
                "central_public_key": str(central.key.with_name("central.key.pub")),
                "backoff_base": 0.05,
                "backoff_cap": 0.5,
            }
            extra = "[sync]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
            cfg = ddi_site.config_text(workdir, subnets=[SUBNET], extra=extra)
            cfg = cfg.replace(f'id = "{ddi_site.SITE_ID}"', f'id = "{site}"', 1)
            daemon = ddi_site.DdiDaemon(None, None, workdir, cfg)
            edges.append(Edge(site, daemon, last))
            daemon.spawn()
        for e in edges:
            e.daemon.wait_healthy(180)
        target = {e.site: e.last_seq for e in edges}
        total = sum(target.values())
        spawned = time.monotonic()
        central.start()
        listening: float | None = None
        applied: dict[str, int] = {}
        deadline = spawned + 600
        while time.monotonic() < deadline:
            applied = central.applied()
            now = time.monotonic()
            if listening is None and central.answered:
                listening = now
            if all(applied.get(s, -1) >= seq for s, seq in target.items()):
                break
            time.sleep(0.1)
        else:
            got = sum(min(applied.get(s, 0), seq) for s, seq in target.items())
            return Row(SECTION, scenario, "ddi", {"seconds": None, "changes": got},
                       note=f"not caught up in 600 s; central: {central.tail()}")  # fmt: skip
        assert listening is not None
        seconds = now - listening
        return Row(
            SECTION,
            scenario,
            "ddi",
            {
                "seconds": round(seconds, 2),
                "changes": total,
                "rate": round(total / seconds) if seconds > 0 else None,
                "start_s": round(listening - spawned, 2),
            },
            note="from central listening to all applied (start_s: its start-up before that)",
        )
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return unavailable(SECTION, scenario, "ddi", f"failed: {exc}")
    finally:
        central.stop()
        for e in edges:
            e.daemon.stop()
