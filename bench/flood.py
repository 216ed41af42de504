"""DHCP flood: a reserved host renewing while thousands of random MACs send DISCOVERs.

Lab (as ``bench/dhcp.py``): namespace ``fsrv`` (``srv0`` 198.18.0.1/16) and ``fcli`` (``cli0``
198.18.0.2/16, plus 198.18.0.10/32, the reserved host's address). ddi serves 198.18.0.0/16
with one pool of 65,279 addresses (198.18.1.0 - 198.18.255.254, the size the issue measured)
and ``--hosts`` reservations 52:54:00:aa:00:NN -> 198.18.0.(10+NN).

1. The reserved hosts take their leases (INIT-REBOOT, RFC 2131 §4.3.2), then renew in turn
   (RENEWING: ciaddr set, unicast to the server, answered to ciaddr:68), one renewal every
   ``--interval`` seconds, so each host renews every ``hosts * interval`` seconds (2 s by
   default: well inside ``dhcp.client_rate``): first for ``--quiet`` seconds alone, then for
   ``--seconds`` during the flood.
2. The flood: ``perfdhcp -4 -i -r RATE -R 1000000 -l cli0``, DISCOVERs only (``-i``) from a
   million random MACs at ``--rate`` per second.
3. Meanwhile the daemon's resident memory is sampled from /proc, and ``/v1/status`` is timed
   once a second (the admin API shares the event loop with DHCP and DNS).

The report gives the renewal latency (median, p95, p99, max) and the renewals lost (no ACK
within 2 s) alone and under the flood, the daemon's memory before and at its peak, the status
call's latency, what perfdhcp sent and got back, and the daemon's DHCP drop counters.

Run as root from the repository: ``python -m bench.flood [--rate 5000] [--seconds 40]``. The
renewal probe itself runs in the client namespace as ``python -m bench.flood probe ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from bench import ddi_site
from bench.common import stop
from bench.dhcp import parse_perfdhcp
from ddi.lab import Lab

SERVER_IP = "198.18.0.1"
CLIENT_IP = "198.18.0.2"
NET = "198.18.0.0/16"
POOL = ("198.18.1.0", "198.18.255.254")
HOSTS = 20


def reserved(n: int) -> tuple[str, IPv4Address]:
    """The n-th reserved host's MAC and address."""
    return f"52:54:00:aa:00:{n:02x}", IPv4Address("198.18.0.10") + n


TIMEOUT = 2.0
"""Seconds the probe waits for an ACK before it counts the renewal lost."""

_MAGIC = b"\x63\x82\x53\x63"


def _request(xid: int, mac: bytes, *, ciaddr: IPv4Address, requested: IPv4Address | None) -> bytes:
    """A DHCPREQUEST (RFC 2131 §4.3.2): RENEWING with ciaddr, INIT-REBOOT with option 50 and
    the broadcast bit (the client has no address to be answered at yet)."""
    flags = 0x8000 if requested is not None else 0
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1, 1, 6, 0, xid, 0, flags, ciaddr.packed, bytes(4), bytes(4), bytes(4),
        mac + bytes(10), b"", b"",
    )  # fmt: skip
    options = bytes((53, 1, 3))
    if requested is not None:
        options += bytes((50, 4)) + requested.packed
    options += bytes((55, 3, 1, 3, 6)) + b"\xff"
    return header + _MAGIC + options


def _ack_xid(data: bytes) -> int | None:
    """The xid of a DHCPACK, else None."""
    if len(data) < 243 or data[0] != 2 or data[236:240] != _MAGIC:
        return None
    at = 240
    while at + 1 < len(data) and data[at] != 255:
        if data[at] == 0:
            at += 1
            continue
        code, size = data[at], data[at + 1]
        if code == 53 and size == 1 and data[at + 2] == 5:
            return int.from_bytes(data[4:8], "big")
        at += 2 + size
    return None


def probe(seconds: float, interval: float, interface: str, hosts: int) -> dict[str, Any]:
    """In the client namespace: the reserved hosts take their leases, then renew in turn for
    ``seconds``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    sock.bind(("0.0.0.0", 68))

    def exchange(xid: int, packet: bytes, to: str) -> float | None:
        start = time.monotonic()
        sock.sendto(packet, (to, 67))
        deadline = start + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                break
            if _ack_xid(data) == xid:
                return time.monotonic() - start
        return None

    xid = int.from_bytes(os.urandom(4), "big") & 0x7FFF0000
    macs = []
    for n in range(hosts):
        text, ip = reserved(n)
        mac = bytes.fromhex(text.replace(":", ""))
        macs.append((mac, ip))
        xid += 1
        packet = _request(xid, mac, ciaddr=IPv4Address(0), requested=ip)
        if exchange(xid, packet, "255.255.255.255") is None:
            return {"error": f"no ACK for {text}'s INIT-REBOOT"}
    latencies: list[float] = []
    lost = 0
    end = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < end:
        mac, ip = macs[turn % hosts]
        turn += 1
        xid += 1
        began = time.monotonic()
        took = exchange(xid, _request(xid, mac, ciaddr=ip, requested=None), SERVER_IP)
        if took is None:
            lost += 1
        else:
            latencies.append(took)
        time.sleep(max(0.0, interval - (time.monotonic() - began)))
    return {"renewals": len(latencies) + lost, "lost": lost, **_quantiles(latencies)}


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(1000 * ordered[-1], 2),
    }


def _rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def _run_probe(lab: Lab, ns: str, seconds: float, interval: float, hosts: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.flood", "probe", "--seconds", str(seconds),
            "--interval", str(interval), "--hosts", str(hosts)]  # fmt: skip
    done = lab.run(ns, *argv, check=False, timeout=seconds + 60)
    try:
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (done.stdout + done.stderr).strip()[-400:]}
    return result


def flood(
    rate: int, seconds: float, quiet: float, interval: float, hosts: int, dhcp: dict[str, Any]
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "rate": rate, "seconds": seconds, "pool": 65_279, "hosts": hosts, "dhcp": dhcp
    }  # fmt: skip
    with Lab(f"fl{os.getpid() % 100000}") as lab, tempfile.TemporaryDirectory() as tmp:
        srv, cli = lab.namespace("fsrv"), lab.namespace("fcli")
        lab.link(srv, "srv0", f"{SERVER_IP}/16", cli, "cli0", f"{CLIENT_IP}/16")
        for n in range(hosts):
            lab.run(cli, "ip", "addr", "add", f"{reserved(n)[1]}/32", "dev", "cli0")
        folder = Path(tmp) / "ddi"
        subnet = ddi_site.SubnetSpec("lan", NET, pools=(POOL,), interface="srv0")
        cfg = ddi_site.config_text(folder, subnets=[subnet], dhcp={"interfaces": ["srv0"], **dhcp})
        daemon = ddi_site.DdiDaemon(lab, srv, folder, cfg)
        daemon.start()
        try:
            env = {**os.environ, "DDI_SOCKET": str(daemon.socket)}
            for n in range(hosts):
                mac, ip = reserved(n)
                subprocess.run(
                    [sys.executable, "-m", "ddi", "reserve", "add", "--mac", mac,
                     "--ip", str(ip), "--hostname", f"reserved{n}"],
                    check=True, env=env, capture_output=True, text=True,
                )  # fmt: skip
            assert daemon.pid is not None
            report["rss_start_mib"] = round(_rss_kib(daemon.pid)[0] / 1024, 1)
            report["alone"] = _run_probe(lab, cli, quiet, interval, hosts)
            samples: list[int] = []
            status_ms: list[float] = []
            running = threading.Event()
            running.set()

            def watch() -> None:
                assert daemon.pid is not None
                while running.is_set():
                    samples.append(_rss_kib(daemon.pid)[0])
                    began = time.monotonic()
                    with contextlib.suppress(OSError):
                        ddi_site.api_get(daemon.socket, "/v1/status", timeout=30)
                    status_ms.append(1000 * (time.monotonic() - began))
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))

            watcher = threading.Thread(target=watch, daemon=True)
            perf = lab.popen(
                cli, "perfdhcp", "-4", "-i", "-r", str(rate), "-R", "1000000",
                "-p", f"{seconds:g}", "-l", "cli0",
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )  # fmt: skip
            watcher.start()
            time.sleep(1.0)  # the flood is under way before the first renewal
            report["flood"] = _run_probe(lab, cli, seconds - 2, interval, hosts)
            try:
                out, _ = perf.communicate(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                stop(perf)
                out = ""
            running.clear()
            watcher.join(timeout=40)
            perf_stats = parse_perfdhcp(out or "")
            report["perfdhcp"] = {
                "discovers_sent": perf_stats.get("do_sent"),
                "offers_received": perf_stats.get("do_received"),
            }
            report["rss_peak_mib"] = round(max(samples, default=0) / 1024, 1)
            report["status_ms"] = _quantiles([ms / 1000 for ms in status_ms])
            status = daemon.status()
            dhcp = status.get("statistics", {}).get("dhcp", {})
            report["dropped"] = dhcp.get("dropped")
            report["offers_outstanding"] = dhcp.get("offers_outstanding")
        finally:
            daemon.stop()
    return report


def format_report(r: dict[str, Any]) -> str:
    lines = [f"flood: {r['rate']}/s DISCOVERs from random MACs for {r['seconds']:g} s, "
             f"pool of {r['pool']:,}, {r['hosts']} reserved hosts renewing, "
             f"[dhcp] {r['dhcp'] or 'defaults'}"]  # fmt: skip
    for name in ("alone", "flood"):
        p = r.get(name, {})
        lines.append(
            f"  renewals {name:5}: {p.get('renewals')} sent, {p.get('lost')} lost; "
            f"p50 {p.get('p50_ms')} ms, p95 {p.get('p95_ms')} ms, p99 {p.get('p99_ms')} ms, "
            f"max {p.get('max_ms')} ms" + (f" ({p['error']})" if "error" in p else "")
        )
    s = r.get("status_ms", {})
    lines += [
        f"  /v1/status during the flood: p50 {s.get('p50_ms')} ms, max {s.get('max_ms')} ms",
        f"  daemon RSS: {r.get('rss_start_mib')} MiB at start, {r.get('rss_peak_mib')} MiB peak",
        f"  perfdhcp: {r.get('perfdhcp')}",
        f"  offers outstanding at the end: {r.get('offers_outstanding')}",
        f"  dropped: {r.get('dropped')}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("probe")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--interface", default="cli0")
    p.add_argument("--hosts", type=int, default=HOSTS)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--quiet", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--hosts", type=int, default=HOSTS)
    parser.add_argument(
        "--dhcp",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a [dhcp] setting for the daemon (a JSON value), e.g. --dhcp link_rate=500",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "probe":
        print(json.dumps(probe(args.seconds, args.interval, args.interface, args.hosts)))
        return 0
    if os.geteuid() != 0:
        print("bench.flood needs root: it builds network namespaces", file=sys.stderr)
        return 1
    settings = {k: json.loads(v) for k, _, v in (item.partition("=") for item in args.dhcp)}
    report = flood(args.rate, args.seconds, args.quiet, args.interval, args.hosts, settings)
    print(format_report(report))
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
