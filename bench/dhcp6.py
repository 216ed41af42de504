"""DHCPv6: ``perfdhcp -6`` against Kea's kea-dhcp6 (memfile) and ddi through the lab's veth pair.

Lab: namespace ``d6srv`` (``srv0``: 2001:db8:1::1/64 and its link-local address) and namespace
``d6cli`` (``cli0``, link-local only), DAD off on both (``ddi.lab``). ``perfdhcp -6 -l cli0``
multicasts SOLICITs to All_DHCP_Relay_Agents_and_Servers (ff02::1:2) from ``cli0``'s link-local
address, as a client on the link does; the server answers on ``srv0``.

The exchange is the 4-way one, SOLICIT/ADVERTISE/REQUEST/REPLY (no Rapid Commit), one IA_NA
per client. The rate ``-r`` doubles from ``dhcp_start_rate`` while the exchanges lost stay under
1% (and perfdhcp keeps up with the rate asked), then bisects between the last rate that passed
and the first that failed, as ``bench.dhcp`` does for DHCPv4; the table gives the highest rate
of completed 4-way exchanges with under 1% lost, and the average SOLICIT→ADVERTISE and
REQUEST→REPLY delays at that rate. Each contender starts from an empty lease database; ddi
runs its default ``[dhcp6]`` settings (rate limits and group commit included).

``python -m bench.engine_dhcp6`` times the engine alone (decode, decide, encode).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import ddi_site
from bench.common import (
    Context,
    Row,
    cpu_figures,
    measure_step,
    missing_tools,
    step_text,
    stop,
    unavailable,
    wait_until,
)

SECTION = "dhcp6"
SCENARIO = "direct"
SERVER_IP = "2001:db8:1::1"
NET = "2001:db8:1::/64"
POOL = ("2001:db8:1::1:0", "2001:db8:1::ffff:ffff")
MAX_DROPS_PCT = 1.0
MIN_RATE = 20


@dataclass(slots=True)
class Lab2:
    server: str
    client: str


def build_lab(ctx: Context) -> Lab2:
    lab = ctx.lab
    srv, cli = lab.namespace("d6srv"), lab.namespace("d6cli")
    lab.link(srv, "srv0", f"{SERVER_IP}/64", cli, "cli0", None)
    return Lab2(srv, cli)


@dataclass(slots=True)
class Running:
    proc: subprocess.Popen[str] | None = None
    daemon: ddi_site.DdiDaemon | None = None

    @property
    def pid(self) -> int | None:
        """The server's process (ddi's own, not py-spy's, when profiling)."""
        if self.daemon is not None:
            return self.daemon.server_pid
        return None if self.proc is None else self.proc.pid

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        stop(self.proc)


def kea_config(folder: Path) -> dict[str, Any]:
    return {
        "Dhcp6": {
            "interfaces-config": {"interfaces": ["srv0"]},
            # Its DUID in memory: the default writes /var/lib/kea/kea-dhcp6-serverid.
            "server-id": {"type": "LLT", "persist": False},
            "lease-database": {
                "type": "memfile",
                "persist": True,
                "name": str(folder / "leases6.csv"),
                "lfc-interval": 0,
            },
            "preferred-lifetime": 43200,
            "valid-lifetime": 86400,
            "subnet6": [
                {
                    "id": 1,
                    "subnet": NET,
                    "interface": "srv0",
                    "pools": [{"pool": " - ".join(POOL)}],
                }
            ],
            "loggers": [
                {
                    "name": "kea-dhcp6",
                    "output_options": [{"output": str(folder / "kea.log")}],
                    "severity": "WARN",
                }
            ],
        }
    }


def start_kea(ctx: Context, lab2: Lab2, folder: Path) -> Running:
    folder.mkdir(parents=True)
    path = folder / "kea6.json"
    path.write_text(json.dumps(kea_config(folder), indent=1))
    out = (folder / "stdout").open("w")
    proc = ctx.lab.popen(
        lab2.server,
        "env",
        f"KEA_PIDFILE_DIR={folder}",
        f"KEA_LOCKFILE_DIR={folder}",
        "kea-dhcp6",
        "-c",
        str(path),
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    return Running(proc=proc)


DDI_SUBNET6 = f"""
[[subnets6]]
name = "direct6"
cidr = "{NET}"
interface = "srv0"
preferred_lifetime = 43200
valid_lifetime = 86400

[[subnets6.pools]]
start = "{POOL[0]}"
end = "{POOL[1]}"

[dhcp6]
enabled = true
interfaces = ["srv0"]
"""
# The default limits: per-client buckets are keyed by DUID (perfdhcp's clients each have their
# own, though they share one link-local source) and the per-link one applies only once the
# server is backlogged, so a storm the server keeps up with is what is measured.


def ddi_missing() -> str | None:
    """Why ddi cannot serve DHCPv6 here yet, or None."""
    if importlib.util.find_spec("ddi.dhcp6") is None:
        return "ddi.dhcp6 has not landed"
    app = (ddi_site.ROOT / "ddi" / "app.py").read_text()
    return None if "dhcp6" in app else "ddi/app.py does not start ddi.dhcp6 yet"


def start_ddi(ctx: Context, lab2: Lab2, folder: Path) -> Running:
    cfg = ddi_site.config_text(folder, subnets=(), extra=DDI_SUBNET6)
    daemon = ddi_site.DdiDaemon(ctx.lab, lab2.server, folder, cfg)
    daemon.start()
    return Running(daemon=daemon)


STARTERS: dict[str, Callable[[Context, Lab2, Path], Running]] = {
    "kea": start_kea,
    "ddi": start_ddi,
}
NOTES = {
    "kea": "kea-dhcp6, memfile, persist (CSV append, no fsync), default threading",
    "ddi": "durable: SQLite WAL synchronous=FULL, group commit (fsync before REPLY)",
}


def parse_perfdhcp6(text: str) -> dict[str, Any]:
    """Per-exchange counts and average delays from ``perfdhcp -6``'s final report."""
    result: dict[str, Any] = {}
    for key, title in (("sa", "SOLICIT-ADVERTISE"), ("rr", "REQUEST-REPLY")):
        block = text.split(f"***Statistics for: {title}***", 1)
        if len(block) < 2:
            continue
        body = block[1].split("***Statistics for:", 1)[0]
        for field_name, pattern in (
            ("sent", r"sent packets: (\d+)"),
            ("received", r"received packets: (\d+)"),
            ("ms", r"avg delay: ([0-9.]+) ms"),
        ):
            found = re.search(pattern, body)
            if found:
                result[f"{key}_{field_name}"] = float(found.group(1))
    sent = result.get("sa_sent", 0.0)
    if sent:
        result["drops_pct"] = 100.0 * (1 - result.get("rr_received", 0.0) / sent)
    return result


def perfdhcp6(
    ctx: Context,
    lab2: Lab2,
    rate: int,
    *,
    clients: int,
    period: float,
    server: int | None = None,
    daemon: ddi_site.DdiDaemon | None = None,
) -> dict[str, Any]:
    """One ``perfdhcp -6`` run; with the ``server``'s pid, also the CPU time the server and
    perfdhcp spent in it and where the server lost datagrams (as ``bench.dhcp.perfdhcp``)."""
    argv = ["perfdhcp", "-6", "-l", "cli0", "-r", str(rate), "-R", str(clients),
            "-p", f"{period:g}", "-W", "500000"]  # fmt: skip
    result = measure_step(
        lambda: parse_perfdhcp6(
            ctx.lab.run(lab2.client, *argv, check=False, timeout=period + 60).stdout
        ),
        server=server,
        service=SECTION,
        daemon=daemon,
    )
    result["asked"] = rate
    # perfdhcp's own rate divides by the run time including the -W wait: use the period.
    result["rate"] = result.get("rr_received", 0.0) / period
    return result


def passed(r: dict[str, Any]) -> bool:
    drops: float = r.get("drops_pct", 100.0)
    rate: float = r.get("rate", 0.0)
    sent: float = r.get("sa_sent", 0.0)
    return drops < MAX_DROPS_PCT and rate >= 0.9 * r["asked"] and sent > 0


def search(ctx: Context, name: str, measure: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """Double the rate while it passes, then bisect; the best passing run, with the steps."""
    p = ctx.profile
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    failed: int | None = None

    def attempt(r: int) -> bool:
        nonlocal best
        result = measure(r)
        steps.append(result)
        ok = passed(result)
        ctx.log(
            f"  {name} {SECTION} -r {r}: {result.get('rate', 0):.0f}/s,"
            f" lost {result.get('drops_pct', 100):.2f}% {'ok' if ok else 'FAIL'}"
        )
        if ok and (best is None or result["rate"] > best["rate"]):
            best = result
        return ok

    rate = p.dhcp_start_rate
    while rate <= p.dhcp_max_rate:
        if not attempt(rate):
            failed = rate
            break
        rate *= 2
    while best is None and failed is not None and failed > MIN_RATE:
        rate = max(MIN_RATE, failed // 2)
        if attempt(rate):
            break
        failed = rate
    if failed is not None and best is not None:
        lo, hi = best["asked"], failed
        for _ in range(p.dhcp_bisect):
            mid = (lo + hi) // 2
            if mid in (lo, hi):
                break
            if attempt(mid):
                lo = mid
            else:
                hi = mid
    return {"best": best, "steps": steps}


def run(ctx: Context) -> list[Row]:
    wanted = [n for n in STARTERS if ctx.wants(n)]
    if missing_tools("perfdhcp"):
        return [unavailable(SECTION, SCENARIO, n, "missing perfdhcp") for n in wanted]
    lab2 = build_lab(ctx)
    rows: list[Row] = []
    for name in wanted:
        why = ddi_missing() if name == "ddi" else None
        if name == "kea" and missing_tools("kea-dhcp6"):
            why = "missing kea-dhcp6 (Debian kea-dhcp6-server)"
        if why:
            rows.append(unavailable(SECTION, SCENARIO, name, why))
            continue
        try:
            running = STARTERS[name](ctx, lab2, ctx.workdir / f"{name}-dhcp6")
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            rows.append(unavailable(SECTION, SCENARIO, name, f"did not start: {exc}"))
            continue
        try:
            rows.append(_measure(ctx, lab2, name, running))
        finally:
            running.close()
    return rows


def _measure(ctx: Context, lab2: Lab2, name: str, running: Running) -> Row:
    p = ctx.profile

    def probe() -> bool:
        result = perfdhcp6(ctx, lab2, 10, clients=5, period=0.5)
        result["asked"] = 0
        return passed(result)

    # A few exchanges at a low rate show the server is up before the search starts.
    wait_until(probe, 30, 0.5)
    outcome = search(
        ctx,
        name,
        lambda r: perfdhcp6(
            ctx,
            lab2,
            r,
            clients=p.dhcp_clients,
            period=p.dhcp_period,
            server=running.pid,
            daemon=running.daemon,
        ),
    )
    best = outcome["best"]
    steps = ", ".join(step_text(s) for s in outcome["steps"])
    if best is None:
        return Row(SECTION, SCENARIO, name, {"rate": 0.0, "steps": steps},
                   note=f"no rate passed; {NOTES[name]}")  # fmt: skip
    return Row(
        SECTION,
        SCENARIO,
        name,
        {
            "rate": round(best["rate"], 0),
            "asked": best["asked"],
            "drops_pct": round(best.get("drops_pct", 0.0), 2),
            "sa_ms": best.get("sa_ms"),
            "rr_ms": best.get("rr_ms"),
            **cpu_figures(best, best.get("rr_received", 0.0), p.dhcp_period),
            "steps": steps,
        },
        note=NOTES[name],
    )
