"""``python -m fuzz [--target NAME]... [--runs N] [--smoke] [--engine E]``: fuzz each wire entry
point and report, per target, the inputs run, the crashes found and the slowest input.

Exit status 1 when a crash was found that ``fuzz.pending_regressions.KNOWN`` does not list (a
listed one is a fault already reported to the module's owner, with its regression test waiting
in that file), else 0. ``--smoke`` is the CI check: a few thousand hypothesis-driven inputs per
target in this process. Crash inputs are written to ``var/fuzz/crashes/<target>/<sha1>`` and the
whole report to ``var/fuzz/report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fuzz.core import REPO, retime
from fuzz.engines import atheris_available, run_atheris_child, run_hypothesis
from fuzz.minimize import minimize
from fuzz.pending_regressions import is_known
from fuzz.targets import TARGETS

SMOKE_RUNS = 3000
OUT = REPO / "var" / "fuzz"
INSTRUMENTED = ["ddi", "sync", "central"]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), default=None)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_RUNS} inputs per target")
    parser.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    parser.add_argument("--seed", type=int, default=0, help="0: a new one per run (atheris)")
    parser.add_argument(
        "--no-minimize", dest="minimize", action="store_false", help="report inputs as found"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    names = args.target or list(TARGETS)
    if args.child is not None:
        import atheris

        with atheris.instrument_imports(include=INSTRUMENTED):
            target = TARGETS[names[0]]()
        run_atheris_child(target, args.runs, args.child, seed=args.seed)
        return 0  # not reached: libFuzzer exits the process
    runs = SMOKE_RUNS if args.smoke else args.runs
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if atheris_available() and not args.smoke else "hypothesis"
    print(f"fuzz: engine {engine}, {runs} inputs per target: {', '.join(names)}", flush=True)
    reports = []
    for name in names:
        started = time.monotonic()
        if engine == "atheris":
            report = _atheris(name, runs, args.seed)
        else:
            tally = run_hypothesis(TARGETS[name](), runs, seed=args.seed)
            report = tally.report() | {"engine": "hypothesis"}
        report["seconds"] = round(time.monotonic() - started, 1)
        _retime(name, report)
        if args.minimize:
            _minimize(name, report)
        reports.append(report)
        _print(report)
    return _finish(reports)


def _atheris(name: str, runs: int, seed: int) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.partial.json"
    path.unlink(missing_ok=True)
    log = OUT / f"{name}.libfuzzer.log"
    command = [sys.executable, "-m", "fuzz", "--child", str(path), "--target", name]
    command += ["--runs", str(runs), "--seed", str(seed)]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    with log.open("w") as out:
        code = subprocess.run(command, cwd=REPO, env=env, stdout=out, stderr=out).returncode
    report: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"target": name}
    report["libfuzzer_exit"] = code
    report["libfuzzer_log"] = str(log.relative_to(REPO))
    if report.get("runs", 0) < runs:
        report["stopped_early"] = log.read_text()[-2000:]
    return report


def _retime(name: str, report: dict[str, Any]) -> None:
    """Time the slowest inputs again, here and uninstrumented; the report's slowest is the one
    still slowest (the slowest single run on a shared machine is often a pause)."""
    inputs = [bytes.fromhex(h) for h in report.get("slow_inputs", [])]
    if not inputs:
        return
    seconds, data = retime(TARGETS[name](), inputs)
    report["slowest_observed_ms"] = report.get("slowest_ms")
    report["slowest_ms"] = round(seconds * 1000, 3)
    report["slowest_input"] = data.hex()


def _minimize(name: str, report: dict[str, Any]) -> None:
    """Shrink each crash's input (``fuzz.minimize``), keeping its signature."""
    found = report.get("found", [])
    if not found:
        return
    target = TARGETS[name]()
    for crash in found:
        crash["input"] = minimize(target, bytes.fromhex(crash["input"])).hex()


def _print(report: dict[str, Any]) -> None:
    found = report.get("found", [])
    print(
        f"{report['target']:>10}: {report.get('runs', 0):>9} inputs, {len(found)} crashes, "
        f"slowest {report.get('slowest_ms', 0)} ms (observed once: "
        f"{report.get('slowest_observed_ms', '-')} ms), mean {report.get('mean_us', 0)} us, "
        f"{report.get('seconds', 0)} s ({report.get('engine', '?')})",
        flush=True,
    )
    for crash in found:
        known = " (known, pending)" if is_known(report["target"], crash) else ""
        print(f"{'':>12}{crash['signature']} in {crash['function']}: x{crash['count']}{known}")
        print(f"{'':>14}{crash['error'][:150]}")
        print(f"{'':>14}input {crash['input'][:160]}{'...' if len(crash['input']) > 160 else ''}")
    if "stopped_early" in report:
        print(f"{'':>12}stopped early; see {report['libfuzzer_log']}")


def _finish(reports: list[dict[str, Any]]) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(reports, indent=1))
    new = 0
    for report in reports:
        for crash in report.get("found", []):
            folder = OUT / "crashes" / report["target"]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / crash["sha1"]).write_bytes(bytes.fromhex(crash["input"]))
            new += not is_known(report["target"], crash)
    total = sum(r.get("runs", 0) for r in reports)
    crashes = sum(len(r.get("found", [])) for r in reports)
    print(
        f"fuzz: {total} inputs, {crashes} distinct crashes ({new} not known); "
        f"report in {(OUT / 'report.json').relative_to(REPO)}"
    )
    short = [r["target"] for r in reports if "stopped_early" in r]
    return 1 if new or short else 0


if __name__ == "__main__":
    sys.exit(main())
