"""Entry point: ``python -m bench`` (``make bench``) builds the lab, runs every benchmark with
every contender, prints the tables and writes ``bench/results/bench-<date>.json``.

    python -m bench                       # the full run the README quotes
    python -m bench --profile smoke       # a tiny load, to check the harness
    python -m bench --only dns,memory --contenders nsd,ddi

Needs root (network namespaces) and the Debian tools: nsd, dnsmasq, kea-dhcp4, kea-dhcp6, perfdhcp
(kea-admin), dnsperf, dig; PostgreSQL for the sync benchmark's second backend.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import ddi_site, dhcp, dhcp6, dns, memory, storm, syncbench
from bench.common import PROFILES, Context, Row, machine, tool_versions, unavailable
from ddi.lab import Lab

RESULTS = Path(__file__).resolve().parent / "results"

SECTIONS: dict[str, Callable[[Context], list[Row]]] = {
    "dns": dns.run,
    "dhcp": dhcp.run,
    "dhcp6": dhcp6.run,
    "storm": storm.run,
    "memory": memory.run,
    "sync": syncbench.run,
}

# section -> (metric compared, True when more is better, columns shown)
TABLES: dict[str, tuple[str, bool, list[str]]] = {
    "dns": (
        "qps",
        True,
        [
            "qps",
            "loss_pct",
            "avg_ms",
            "p50_ms",
            "p99_ms",
            "cpu_us",
            "dnsperf_cores",
            "eq_qps",
            "eq_avg_ms",
            "eq_p99_ms",
            "rcodes",
        ],
    ),
    "dhcp": (
        "rate",
        True,
        ["rate", "drops_pct", "do_ms", "ra_ms", "cpu_us", "perfdhcp_cores", "steps"],
    ),
    "dhcp6": (
        "rate",
        True,
        ["rate", "drops_pct", "sa_ms", "rr_ms", "cpu_us", "perfdhcp_cores", "steps"],
    ),
    "storm": (
        "seconds",
        False,
        ["seconds", "dora_s", "resolve_s", "bound", "named_bound", "resolved"],
    ),
    "memory": ("rss_mb", False, ["rss_mb", "hwm_mb", "hosts", "leases", "records", "load_s"]),
    "sync": ("seconds", False, ["seconds", "changes", "rate", "start_s"]),
}


def add_ratios(rows: Sequence[Row]) -> None:
    """Set ``ddi_ratio`` on every contender's row: ddi's value over the contender's, for the
    section's metric (above 1 is ddi ahead for rates, behind for times and memory)."""
    for row in rows:
        spec = TABLES.get(row.section)
        if spec is None or row.contender == "ddi" or not row.available:
            continue
        metric = spec[0]
        ddi_row = next(
            (r for r in rows if r.section == row.section and r.scenario == row.scenario
             and r.contender == "ddi" and r.available),
            None,
        )  # fmt: skip
        mine = row.metrics.get(metric)
        if ddi_row is None or not isinstance(mine, int | float) or not mine:
            row.metrics["ddi_ratio"] = None
            continue
        theirs = ddi_row.metrics.get(metric)
        ok = isinstance(theirs, int | float)
        row.metrics["ddi_ratio"] = round(theirs / mine, 2) if ok else None  # type: ignore[operator]


def _find(
    rows: Sequence[Row], section: str, contender: str, scenario: str | None = None
) -> list[Row]:
    return [
        r
        for r in rows
        if r.section == section
        and r.contender == contender
        and (scenario is None or r.scenario.startswith(scenario))
    ]


def targets(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The performance targets (the first speed issue's, and the default-config one's that
    raised some), each with the measured value and met / not met / not measured."""
    found: list[dict[str, Any]] = []

    def add(target: str, values: list[Any], ok: Callable[[float], bool]) -> None:
        measured = [v for v in values if isinstance(v, int | float)]
        if not values or len(measured) < len(values):
            verdict = "not measured"
        else:
            verdict = "met" if all(ok(v) for v in measured) else "not met"
        shown = ", ".join(_cell(v) for v in values) if values else "-"
        found.append({"target": target, "measured": shown, "verdict": verdict})

    def ratios(section: str, contender: str) -> list[Any]:
        return [r.metrics.get("ddi_ratio") if r.available else None
                for r in _find(rows, section, contender)]  # fmt: skip

    def metric(section: str, scenario: str | None, name: str) -> list[Any]:
        return [r.metrics.get(name) if r.available else None
                for r in _find(rows, section, "ddi", scenario)]  # fmt: skip

    # Issue 13: both DNS scenarios (the mix, 100k names with distinct questions), default config.
    add("DNS qps >= 1.0x NSD (udp, udp-100k)", ratios("dns", "nsd"), lambda v: v >= 1.0)
    add("DNS qps >= 1.3x dnsmasq (udp, udp-100k)", ratios("dns", "dnsmasq"), lambda v: v >= 1.3)
    for name in ("avg_ms", "p99_ms"):
        add(f"DNS {name} <= NSD's (udp, udp-100k)", _versus(rows, "dns", "nsd", name),
            lambda v: v <= 1.0)  # fmt: skip
    for name in ("avg_ms", "p99_ms"):
        add(f"DNS {name} <= NSD's at equal load (udp, udp-100k)",
            _versus(rows, "dns", "nsd", f"eq_{name}"), lambda v: v <= 1.0)  # fmt: skip
    add("DHCP rate >= 1.0x Kea (direct, relay)", ratios("dhcp", "kea"), lambda v: v >= 1.0)
    add("DHCPv6 rate >= 1.0x Kea (direct)", ratios("dhcp6", "kea"), lambda v: v >= 1.0)
    add("boot storm < 10 s", metric("storm", None, "seconds"), lambda v: v < 10)
    add(
        "memory settled < 200 MiB (full set)",
        metric("memory", None, "rss_mb")[:1],
        lambda v: v < 200,
    )
    add("memory peak (VmHWM) < 150 MiB (full set)", metric("memory", None, "hwm_mb")[:1],
        lambda v: v < 150)  # fmt: skip
    add("start-up < 5 s (full memory set)", metric("memory", None, "load_s")[:1],
        lambda v: v < 5)  # fmt: skip
    add("100k changes at central < 60 s (SQLite, PostgreSQL)",
        [r.metrics.get("seconds") if r.available else None
         for r in _find(rows, "sync", "ddi") if "queued" in r.scenario],
        lambda v: v < 60)  # fmt: skip
    return found


def _versus(rows: Sequence[Row], section: str, contender: str, metric: str) -> list[Any]:
    """ddi's ``metric`` over ``contender``'s, per scenario (None where either is missing)."""
    out: list[Any] = []
    for row in _find(rows, section, contender):
        mine = next((r for r in _find(rows, section, "ddi", row.scenario) if r.available), None)
        theirs = row.metrics.get(metric) if row.available else None
        ours = None if mine is None else mine.metrics.get(metric)
        ok = isinstance(ours, int | float) and isinstance(theirs, int | float) and theirs
        out.append(round(ours / theirs, 2) if ok else None)  # type: ignore[operator]
    return out


def format_targets(found: Sequence[dict[str, Any]]) -> str:
    if not found:
        return ""
    width = max(len(t["target"]) for t in found)
    lines = ["\n== targets =="]
    lines += [f"{t['target'].ljust(width)}  {t['verdict']:<12}  {t['measured']}" for t in found]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_tables(rows: Sequence[Row]) -> str:
    out = []
    for section, (metric, higher, columns) in TABLES.items():
        mine = [r for r in rows if r.section == section]
        if not mine:
            continue
        ratio_head = f"ddi/x {metric}"
        head = ["scenario", "contender", *columns, ratio_head, "note"]
        body = []
        for r in mine:
            if r.available:
                cells = [_cell(r.metrics.get(c)) for c in columns]
                ratio = "" if r.contender == "ddi" else _cell(r.metrics.get("ddi_ratio"))
            else:
                cells = ["n/a"] * len(columns)
                ratio = ""
            body.append([r.scenario, r.contender, *cells, ratio, r.note])
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
        better = "higher" if higher else "lower"
        out.append(f"\n== {section} ({metric}: {better} is better) ==")
        for line in [head, *body]:
            padded = [str(c).ljust(w) for c, w in zip(line[:-1], widths[:-1], strict=True)]
            out.append("  ".join([*padded, str(line[-1])]).rstrip())
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument(
        "--only", default="", help="sections, comma-separated: " + ",".join(SECTIONS)
    )
    parser.add_argument("--contenders", default="", help="e.g. nsd,dnsmasq,kea,ddi (default all)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default bench/results/)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="run ddi under py-spy; collapsed stacks go to bench/results/profiles/",
    )
    parser.add_argument(
        "--trace-stalls",
        type=int,
        default=None,
        metavar="MS",
        help="run ddi with --trace-stalls MS; its event-loop stops go to bench/results/stalls/",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=N",
        help="override a profile size, e.g. --set dns_rounds=1 (see bench/common.py Profile)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench needs root: it builds network namespaces", file=sys.stderr)
        return 1
    sections = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    contenders = frozenset(c for c in args.contenders.split(",") if c) or None
    if args.py_spy:
        ddi_site.PROFILE_DIR = RESULTS / "profiles"
    if args.trace_stalls is not None:
        if args.trace_stalls < 1:
            parser.error("--trace-stalls: at least 1 ms")
        ddi_site.TRACE_STALLS_MS = args.trace_stalls
    profile = PROFILES[args.profile]
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        current = getattr(profile, key, None)
        if current is None or key == "name" or not value:
            parser.error(f"--set {item}: not a profile field")
        overrides[key] = type(current)(value)
    if overrides:
        profile = dataclasses.replace(profile, name=f"{profile.name}+custom", **overrides)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    out = args.out or RESULTS / f"bench-{stamp}.json"

    def save(report: dict[str, Any]) -> None:
        out.write_text(json.dumps(report, indent=2) + "\n")

    report = run_benchmarks(profile, sections, contenders, keep=args.keep, progress=save)
    save(report)
    print(report["table"])
    print(f"\nwritten to {out}")
    return 0


def run_benchmarks(
    profile: Any,
    sections: Sequence[str],
    contenders: frozenset[str] | None,
    *,
    keep: bool = False,
    log: Callable[[str], None] | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``sections`` and return the report (machine, rows, formatted table).

    A section that fails in the harness itself gives a "not available" row with the error and
    the run goes on; ``progress`` gets the report so far after each section."""
    say = log or (lambda text: print(text, flush=True))
    workdir = Path(tempfile.mkdtemp(prefix="ddi-bench-", dir="/var/tmp"))
    shmdir = Path(tempfile.mkdtemp(prefix="ddi-bench-", dir="/dev/shm"))
    rows: list[Row] = []
    started = time.monotonic()
    info = machine()
    tools = tool_versions()
    say(f"bench {profile.name}: {info['nproc']} x {info['cpu_model']}, kernel {info['kernel']}")
    try:
        for section in sections:
            lab = Lab(f"bn{os.getpid() % 100000}{section[:2]}")
            folder = workdir / section
            folder.mkdir()
            ctx = Context(profile, lab, folder, shmdir, contenders, say)
            say(f"[{section}]")
            t0 = time.monotonic()
            try:
                rows += SECTIONS[section](ctx)
            except Exception as exc:  # noqa: BLE001 - one broken section must not lose the rest
                say(f"[{section}] harness error: {exc!r}")
                rows.append(unavailable(section, "-", "harness", f"error: {exc!r}"))
            finally:
                lab.close()
            say(f"[{section}] done in {time.monotonic() - t0:.0f} s")
            if progress is not None:
                progress(_report(profile, info, tools, started, rows, workdir if keep else None))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(shmdir, ignore_errors=True)
    return _report(profile, info, tools, started, rows, workdir if keep else None)


def _report(
    profile: Any,
    info: dict[str, Any],
    tools: dict[str, str],
    started: float,
    rows: list[Row],
    workdir: Path | None,
) -> dict[str, Any]:
    add_ratios(rows)
    found = targets(rows)
    if profile.name != "full":
        for t in found:
            t["verdict"] = f"({t['verdict']} at {profile.name} size: not the target's load)"
    return {
        "profile": profile.name,
        "machine": info,
        "tools": tools,
        "elapsed_s": round(time.monotonic() - started, 1),
        "workdir": None if workdir is None else str(workdir),
        "rows": [r.to_json() for r in rows],
        "targets": found,
        "table": format_tables(rows) + "\n" + format_targets(found),
    }


if __name__ == "__main__":
    sys.exit(main())
