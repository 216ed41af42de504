"""Boot storm: N distinct clients at once (``perfdhcp --scenario avalanche -R N``), half of
them with reservations that carry a name, plus N/4 dynamic clients that send a hostname
(option 12); time until every client is bound and every name resolves: each reserved name to
its reserved address, each dynamic client's ``<hostname>.<domain>`` to the address it leased.

perfdhcp's avalanche sends one DISCOVER per client (MACs ``52:54:00:00:00:00`` + 0..N-1), then
retransmits with back-off per client until each has its ACK, and reports how long that took.
perfdhcp sends no option 12 or 81, so at the same time ``bench/named_clients.py`` (in the
client namespace, from MAC ``52:54:01:00:00:00``) runs a DORA with hostname ``d<i>`` for each
of the named dynamic clients. Then ``bench/resolve.py`` asks the server for every reserved
and dynamic name until all answer with their address; the time is measured from the first
DISCOVER to the last correct answer. Kea has no DNS: its row times the DHCP part only.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import data, ddi_site
from bench.common import Context, Row, missing_tools, stop, udp_dns_answers, unavailable
from bench.common import wait_until as _wait_until

SECTION = "storm"
SERVER_IP = "198.18.0.1"
NET = "198.18.0.0/16"
POOL = ("198.18.1.0", "198.18.127.255")
RESOLVE = Path(__file__).resolve().parent / "resolve.py"
NAMED_CLIENTS = Path(__file__).resolve().parent / "named_clients.py"
NAMED_BASE_MAC = "52:54:01:00:00:00"
"""The dynamic clients that send a hostname: a block apart from perfdhcp's."""
CONTENDERS = ("ddi", "dnsmasq", "kea")
STORM_TIMEOUT = 60.0
"""Seconds the avalanche may take before perfdhcp is stopped and the row says so."""


class Server:
    def __init__(
        self,
        proc: subprocess.Popen[str] | None = None,
        daemon: ddi_site.DdiDaemon | None = None,
        dns: bool = True,
    ) -> None:
        self.proc = proc
        self.daemon = daemon
        self.dns = dns

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        stop(self.proc)


def _ddi(ctx: Context, ns: str, reservations: list[data.Name]) -> Server:
    workdir = ctx.workdir / "ddi"
    subnet = ddi_site.SubnetSpec("storm", NET, pools=(POOL,), interface="srv0")
    ds = ddi_site.Dataset(key=f"storm{len(reservations)}", subnets=[subnet], hosts=reservations)
    ddi_site.prepare_store(workdir / "var", ds, ctx.log)
    cfg = ddi_site.config_text(
        workdir,
        subnets=[subnet],
        dhcp={"interfaces": ["srv0"]},
        dns={"listen": [f"{SERVER_IP}:53"], "ns_address": SERVER_IP},
    )
    daemon = ddi_site.DdiDaemon(ctx.lab, ns, workdir, cfg)
    daemon.start()
    return Server(daemon=daemon)


def _dnsmasq(ctx: Context, ns: str, reservations: list[data.Name]) -> Server:
    folder = ctx.workdir / "dnsmasq"
    folder.mkdir()
    with (folder / "dhcp-hosts").open("w") as f:
        for n in reservations:
            f.write(f"{n.mac},{n.ip},{n.hostname}\n")
    out = (folder / "stdout").open("w")
    proc = ctx.lab.popen(
        ns,
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        f"--dhcp-hostsfile={folder / 'dhcp-hosts'}",
        f"--dhcp-leasefile={folder / 'leases'}",
        f"--dhcp-range={POOL[0]},{POOL[1]},255.255.0.0,24h",
        "--dhcp-lease-max=1000000",
        "--dhcp-authoritative",
        f"--domain={data.DOMAIN}",
        f"--local=/{data.DOMAIN}/",
        "--interface=srv0",
        "--bind-interfaces",
        "--no-ping",
        "--quiet-dhcp",
        "--user=root",
        "--group=root",
        f"--pid-file={folder / 'pid'}",
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    return Server(proc=proc)


def _kea(ctx: Context, ns: str, reservations: list[data.Name]) -> Server:
    folder = ctx.workdir / "kea"
    folder.mkdir()
    conf = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": ["srv0"], "dhcp-socket-type": "raw"},
            "lease-database": {
                "type": "memfile",
                "persist": True,
                "name": str(folder / "leases.csv"),
                "lfc-interval": 0,
            },
            "valid-lifetime": 86400,
            "subnet4": [
                {
                    "id": 1,
                    "subnet": NET,
                    "pools": [{"pool": " - ".join(POOL)}],
                    "reservations": [
                        {"hw-address": n.mac, "ip-address": str(n.ip), "hostname": n.fqdn}
                        for n in reservations
                    ],
                }
            ],
            "loggers": [
                {
                    "name": "kea-dhcp4",
                    "output_options": [{"output": str(folder / "kea.log")}],
                    "severity": "WARN",
                }
            ],
        }
    }
    (folder / "kea.json").write_text(json.dumps(conf))
    out = (folder / "stdout").open("w")
    proc = ctx.lab.popen(
        ns, "env", f"KEA_PIDFILE_DIR={folder}", f"KEA_LOCKFILE_DIR={folder}",
        "kea-dhcp4", "-c", str(folder / "kea.json"), stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out.close()
    return Server(proc=proc, dns=False)


STARTERS: dict[str, Callable[[Context, str, list[data.Name]], Server]] = {
    "ddi": _ddi,
    "dnsmasq": _dnsmasq,
    "kea": _kea,
}
TOOLS = {"dnsmasq": "dnsmasq", "kea": "kea-dhcp4"}
NOTES = {
    "ddi": "DHCP + DNS in one daemon, leases fsync-durable",
    "dnsmasq": "DHCP + DNS, dhcp-hostsfile",
    "kea": "DHCP only (no DNS): seconds = DORA",
}


def _provision_seconds(text: str) -> float | None:
    m = re.search(r"It took (\d+):(\d+):([0-9.]+) to provision (\d+) clients", text)
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def run(ctx: Context) -> list[Row]:
    p = ctx.profile
    wanted = [c for c in CONTENDERS if ctx.wants(c)]
    if missing_tools("perfdhcp"):
        return [unavailable(SECTION, "avalanche", c, "missing perfdhcp") for c in wanted]
    rows = []
    reservations = data.storm_reservations(p.storm_clients)
    names_file = ctx.workdir / "names.txt"
    names_file.write_text("".join(f"{n.fqdn} {n.ip}\n" for n in reservations))
    scenario = f"{p.storm_clients} clients"
    for name in wanted:
        tool = TOOLS.get(name)
        if tool and missing_tools(tool):
            rows.append(unavailable(SECTION, scenario, name, f"missing {tool}"))
            continue
        if name == "ddi":
            why = ddi_site.missing("dhcp", "dns")
            if why:
                rows.append(unavailable(SECTION, scenario, name, why))
                continue
        # A fresh pair of namespaces per contender: no ARP or conntrack state carried over.
        srv = ctx.lab.namespace(f"s{name[:3]}")
        cli = ctx.lab.namespace(f"c{name[:3]}")
        ctx.lab.link(srv, "srv0", f"{SERVER_IP}/16", cli, "cli0", "198.18.0.2/16")
        try:
            server = STARTERS[name](ctx, srv, reservations)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            rows.append(unavailable(SECTION, scenario, name, f"did not start: {exc}"))
            continue
        try:
            rows.append(_storm(ctx, scenario, name, server, cli, names_file, len(reservations)))
        finally:
            server.close()
    return rows


def _storm(
    ctx: Context,
    scenario: str,
    name: str,
    server: Server,
    cli: str,
    names_file: Path,
    reserved: int,
) -> Row:
    p = ctx.profile
    if server.dns and not _wait_until(lambda: udp_dns_answers(cli, SERVER_IP, 53), 30, 0.2):
        return unavailable(SECTION, scenario, name, "DNS did not answer")
    time.sleep(0.5)  # DHCP sockets up (no probe: it would add a lease before the storm)
    started = time.monotonic()
    argv = [
        "perfdhcp", "-4", "-l", "cli0", "--scenario", "avalanche",
        "-R", str(p.storm_clients), "-b", f"mac={data.STORM_BASE_MAC}",
    ]  # fmt: skip
    log_path = ctx.workdir / f"perfdhcp-{name}.txt"
    named_count = p.storm_clients // 4
    named_file = ctx.workdir / f"named-{name}.txt"
    named = ctx.lab.popen(
        cli, sys.executable, str(NAMED_CLIENTS), "cli0", str(named_count), NAMED_BASE_MAC, "d",
        data.DOMAIN, str(named_file), str(STORM_TIMEOUT), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    with log_path.open("w") as log:
        proc = ctx.lab.popen(cli, *argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=STORM_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # perfdhcp prints its report on SIGINT
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    named_out, _ = named.communicate(timeout=STORM_TIMEOUT + 30)
    try:
        named_result = json.loads(named_out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        ctx.log(f"  named clients failed: {named_out[-300:]}")
        named_result = {"bound": 0, "seconds": None}
    dora_wall = time.monotonic() - started
    text = log_path.read_text()
    provision = _provision_seconds(text)
    received = re.search(r"REQUEST-ACK\*\*\*\s*sent packets: \d+\s*received packets: (\d+)", text)
    bound = int(received.group(1)) if received else 0
    metrics: dict[str, Any] = {
        "dora_s": round(
            max(provision if provision is not None else dora_wall, named_result["seconds"] or 0),
            2,
        ),
        "bound": bound,
        "clients": p.storm_clients,
        "reserved": reserved,
        "named": named_count,
        "named_bound": named_result["bound"],
    }
    if provision is None:
        return Row(SECTION, scenario, name, {**metrics, "seconds": None},
                   note=f"not all clients bound within {STORM_TIMEOUT:.0f} s")  # fmt: skip
    if not server.dns:
        metrics.update(seconds=None, resolve_s=None, resolved=None)
        return Row(SECTION, scenario, name, metrics, note=NOTES[name])
    all_names = ctx.workdir / f"names-{name}.txt"
    dynamic = named_file.read_text() if named_file.exists() else ""
    all_names.write_text(names_file.read_text() + dynamic)
    res = ctx.lab.run(
        cli, sys.executable, str(RESOLVE), SERVER_IP, "53", str(all_names), "30",
        check=False, timeout=90,
    )  # fmt: skip
    total = time.monotonic() - started
    try:
        resolved = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Row(SECTION, scenario, name, metrics, note=f"resolver failed: {res.stderr[-200:]}")
    done = (
        resolved["resolved"] == reserved + named_count
        and bound == p.storm_clients
        and named_result["bound"] == named_count
    )
    metrics.update(
        seconds=round(total, 2) if done else None,
        resolve_s=resolved["seconds"],
        resolved=resolved["resolved"],
    )
    note = NOTES[name]
    if resolved["wrong"]:
        note += f"; {resolved['wrong']} names gave a wrong address"
    if not done:
        note += "; not all bound and resolvable"
    return Row(SECTION, scenario, name, metrics, note=note)
