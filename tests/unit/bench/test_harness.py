"""The benchmark harness, end to end with a tiny load against a real server (NSD), plus its
table and ratio logic. No timing assertions: the numbers are whatever this machine gives.

Needs root (namespaces) and the Debian tools; outside CI it is skipped with the reason,
under CI=true their absence is a failure (the integration rule).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.ci import require_root, require_tools
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]


def require(*tools: str) -> None:
    require_root("needs root for network namespaces")
    require_tools(*tools, "ip")


def bench_module(name: str) -> ModuleType:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(name)


def test_smoke_run_measures_nsd_and_writes_the_report(tmp_path: Path) -> None:
    require("nsd", "dnsperf", "dig")
    out = tmp_path / "bench.json"
    argv = [sys.executable, "-m", "bench", "--profile", "smoke", "--only", "dns",
            "--contenders", "nsd", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, stdout + stderr
    report = json.loads(out.read_text())
    assert report["profile"] == "smoke"
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["cpu_model"]
    assert report["machine"]["kernel"]
    rows = report["rows"]
    assert [r["scenario"] for r in rows] == ["udp", "udp-100k"]  # the two DNS scenarios
    for row in rows:
        assert (row["section"], row["contender"], row["available"]) == ("dns", "nsd", True)
        assert row["metrics"]["qps"] > 0
        assert "NOERROR" in row["metrics"]["rcodes"]
        assert "NXDOMAIN" in row["metrics"]["rcodes"]
        assert row["metrics"]["p99_ms"] is not None
        # The equal-load run: at half its own median (the only contender), with its latency.
        assert 0 < row["metrics"]["eq_qps"] <= row["metrics"]["qps"]
        assert row["metrics"]["eq_avg_ms"] > 0
        assert row["metrics"]["eq_p99_ms"] is not None
    assert "== dns" in stdout
    assert "nsd" in report["table"]
    verdicts = {t["target"]: t["verdict"] for t in report["targets"]}
    # ddi was not in this run
    assert "not measured" in verdicts["DNS qps >= 1.0x NSD (udp, udp-100k)"]
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"bn{proc.pid % 100000}" not in namespaces


def test_table_says_not_available_and_ratios_compare_ddi() -> None:
    common = bench_module("bench.common")
    run = bench_module("bench.run")
    rows = [
        common.Row("dns", "udp", "nsd", {"qps": 100_000.0}),
        common.Row("dns", "udp", "ddi", {"qps": 50_000.0}),
        common.unavailable("dhcp", "relay", "ddi", "ddi.dhcp.server has not landed"),
        common.Row("dhcp", "relay", "kea", {"rate": 2_000.0}),
    ]
    run.add_ratios(rows)
    assert rows[0].metrics["ddi_ratio"] == 0.5
    assert rows[3].metrics["ddi_ratio"] is None
    table = run.format_tables(rows)
    assert "not available: ddi.dhcp.server has not landed" in table
    assert "100,000" in table


def test_equal_load_is_half_the_slower_of_nsd_and_ddi() -> None:
    dns = bench_module("bench.dns")
    # dnsmasq's rate on the large zone would make the comparison meaningless: not counted.
    assert dns.equal_rate({"nsd": 152_403.0, "dnsmasq": 1_113.0, "ddi": 166_652.0}) == 76_000
    assert dns.equal_rate({"dnsmasq": 40_000.0}) == 20_000  # neither ran: whoever did
    assert dns.equal_rate({"nsd": 3_000.0}) == 1_500  # small rates are not rounded to 0
    assert dns.equal_rate({"nsd": None, "ddi": None}) is None


def test_parsers_read_dnsperf_and_perfdhcp_reports() -> None:
    dns = bench_module("bench.dns")
    dhcp = bench_module("bench.dhcp")
    parsed = dns.parse_dnsperf(
        "  Queries sent:         1000\n  Queries completed:    990 (99.00%)\n"
        "  Queries lost:         10 (1.00%)\n"
        "  Response codes:       NOERROR 891 (90.00%), NXDOMAIN 99 (10.00%)\n"
        "  Queries per second:   12345.6\n"
        "  Average Latency (s):  0.002000 (min 0.000010, max 0.010000)\n"
    )
    assert parsed["qps"] == 12345.6
    assert parsed["loss_pct"] == 1.0
    assert parsed["avg_latency_ms"] == pytest.approx(2.0)
    perf = dhcp.parse_perfdhcp(
        "Rate: 99.5 4-way exchanges/second, expected rate: 100\n"
        "***Statistics for: DISCOVER-OFFER***\nsent packets: 200\nreceived packets: 199\n"
        "avg delay: 0.700 ms\n"
        "***Statistics for: REQUEST-ACK***\nsent packets: 199\nreceived packets: 198\n"
        "avg delay: 0.500 ms\n"
    )
    assert perf["do_ms"] == 0.7
    assert perf["ra_ms"] == 0.5
    assert perf["drops_pct"] == pytest.approx(1.0)


def test_parser_reads_perfdhcp_6_reports() -> None:
    dhcp6 = bench_module("bench.dhcp6")
    perf = dhcp6.parse_perfdhcp6(
        "Rate: 6.18 4-way exchanges/second, expected rate: 10\n"
        "***Statistics for: SOLICIT-ADVERTISE***\nsent packets: 400\nreceived packets: 398\n"
        "drops: 2\nmin delay: 0.2 ms\navg delay: 0.772 ms\n"
        "***Statistics for: REQUEST-REPLY***\nsent packets: 398\nreceived packets: 396\n"
        "avg delay: 0.811 ms\n"
    )
    assert perf["sa_ms"] == 0.772
    assert perf["rr_ms"] == 0.811
    assert perf["drops_pct"] == pytest.approx(1.0)  # REPLYs received over SOLICITs sent
    assert not dhcp6.passed({**perf, "asked": 80, "rate": 79.2})  # 1% lost is not under 1%
    assert dhcp6.passed({**perf, "drops_pct": 0.5, "asked": 80, "rate": 79.2})


def test_kea_dhcp6_config_is_memfile_4_way_without_a_duid_file(tmp_path: Path) -> None:
    dhcp6 = bench_module("bench.dhcp6")
    conf = dhcp6.kea_config(tmp_path)["Dhcp6"]
    assert conf["lease-database"]["type"] == "memfile"
    assert conf["server-id"]["persist"] is False
    assert "rapid-commit" not in conf["subnet6"][0]


def test_cpu_seconds_counts_a_child_and_the_figures_divide_by_exchanges() -> None:
    common = bench_module("bench.common")
    dhcp = bench_module("bench.dhcp")
    # A child that burns CPU for a while: counted under the parent's pid (its descendants).
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    # The child stays (asleep) after burning, so its CPU is there to be read when polled.
    shell = subprocess.Popen(
        ["sh", "-c", f"{sys.executable} -c '{burn}\ntime.sleep(30)'"], start_new_session=True
    )
    try:
        wait_until(lambda: common.cpu_seconds(shell.pid) >= 0.25, "the child's CPU", 20)
    finally:
        os.killpg(shell.pid, signal.SIGKILL)  # the shell and its child
        shell.wait()
    before = common.children_cpu_seconds()
    subprocess.run([sys.executable, "-c", burn], check=True)
    assert common.children_cpu_seconds() - before >= 0.25
    figures = common.cpu_figures(
        {"server_cpu_s": 0.9, "perfdhcp_cpu_s": 4.0}, exchanges=5_000.0, period=5.0
    )
    assert figures == {"cpu_us": 180.0, "perfdhcp_cores": 0.8}
    assert common.cpu_figures({"server_cpu_s": 0.9}, exchanges=0.0, period=5.0) == {}
    assert dhcp.cpu_figures is common.cpu_figures  # the DHCPv4 table's figures
    assert bench_module("bench.dhcp6").cpu_figures is common.cpu_figures


def test_losses_read_the_kernels_udp_counters_and_the_steps_say_where_exchanges_were_lost() -> None:
    common = bench_module("bench.common")

    class Daemon:
        def __init__(self, dropped: dict[str, int]) -> None:
            self.dropped = dropped

        def status(self) -> dict[str, object]:
            return {"statistics": {"dhcp": {"dropped": self.dropped}}}

    # This process's own namespace: the counter is read from /proc/<pid>/net/snmp.
    counts = common.loss_counts(os.getpid(), "dhcp", Daemon({"overload": 3, "stale": 1}))
    assert counts["rcvbuf"] >= 0
    assert counts["overload"] == 3
    assert counts["stale"] == 1
    assert "rcvbuf" in common.loss_counts(os.getpid(), "dhcp6")
    assert common.loss_counts(None, "dhcp") == {}

    # A daemon that cannot answer leaves only the kernel's figures.
    class Down(Daemon):
        def status(self) -> dict[str, object]:
            raise RuntimeError("down")

    assert set(common.loss_counts(os.getpid(), "dhcp", Down({}))) == {"rcvbuf"}

    delta = common.loss_delta({"rcvbuf": 10, "stale": 2}, {"rcvbuf": 1_510, "stale": 2, "x": 4})
    assert delta == {"rcvbuf": 1_500, "x": 4}
    lost = {"asked": 8000, "drops_pct": 22.61, "server_losses": delta}
    assert common.step_text(lost) == "8000:22.6% (rcvbuf 1,500, x 4)"
    clean = {"asked": 4000, "drops_pct": 0.0, "server_losses": {"rcvbuf": 2}}
    assert common.step_text(clean) == "4000:0.0%"
    assert common.step_text({"asked": 250}) == "250:100.0%"


def test_a_step_is_measured_with_its_cpu_and_where_the_server_lost_datagrams() -> None:
    common = bench_module("bench.common")
    burn = "import time\nend = time.process_time() + 0.2\nwhile time.process_time() < end: pass"

    class Daemon:
        def __init__(self) -> None:
            self.dropped = {"stale": 1}

        def status(self) -> dict[str, object]:
            return {"statistics": {"dhcp": {"dropped": dict(self.dropped)}}}

    daemon = Daemon()

    def run() -> dict[str, object]:  # the step: a child (perfdhcp) burns CPU, the server drops
        subprocess.run([sys.executable, "-c", burn], check=True)
        daemon.dropped["overload"] = 7
        return {"asked": 100}

    result = common.measure_step(run, server=os.getpid(), service="dhcp", daemon=daemon)
    assert result["asked"] == 100
    assert result["perfdhcp_cpu_s"] >= 0.15
    assert result["server_cpu_s"] >= 0.0
    assert result["server_losses"] == {"overload": 7}  # the stale drop was there before
    alone = common.measure_step(lambda: {"asked": 1}, server=None, service="dhcp")
    assert "server_cpu_s" not in alone
    assert alone["server_losses"] == {}
