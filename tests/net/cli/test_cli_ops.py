"""Day-one operations against a real ``python -m ddi serve``: reloads that say whether they took
(and refuse to orphan reservations), start-up config failures exiting 2, pool usage, MAC
vendors, JSON errors, client-id and reason rules, and tables that escape control characters."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from ipaddress import IPv4Address
from pathlib import Path

from ddi.ipam.models import Lease, LeaseState
from ddi.ipam.store import Store
from tests.net.cli.test_cli import CONFIG, Daemon, add, ddi, own_daemon
from tests.waiting import wait_until

__all__ = ["own_daemon"]  # the fixture, shared with test_cli

SHRUNK = CONFIG.replace('cidr = "198.18.0.0/24"', 'cidr = "198.18.0.0/25"').replace(
    'end = "198.18.0.199"', 'end = "198.18.0.120"'
)


def metric(d: Daemon, name: str) -> float:
    status, _, body = d.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def test_a_reload_that_would_orphan_a_reservation_is_refused_unless_forced(
    own_daemon: Daemon,
) -> None:
    own_daemon.start()
    assert add(own_daemon, 150).returncode == 0
    assert own_daemon.json("status")["reload"] is None
    own_daemon.config.write_text(SHRUNK.format(api_extra="", subnets_extra=""))
    refused = own_daemon.cli("reload")
    assert refused.returncode == 1
    assert "would orphan 1: host host150 198.18.0.150" in refused.stderr
    assert "--force" in refused.stderr
    status = own_daemon.json("status")
    assert status["reload"]["outcome"] == "orphans"
    assert status["reload"]["orphans"] == ["host host150 198.18.0.150"]
    assert "REFUSED" in own_daemon.cli("status").stdout
    assert metric(own_daemon, "ddi_reload_last_success") == 0
    assert metric(own_daemon, "ddi_reload_last_orphans") == 1
    # The running config stayed: the subnet is still a /24.
    assert own_daemon.json("subnet", "list")[0]["cidr"] == "198.18.0.0/24"
    # --json: the refusal is JSON on stdout, with the same exit code.
    as_json = own_daemon.cli("reload", "--json")
    assert as_json.returncode == 1
    error = json.loads(as_json.stdout)
    assert error["error"] == "reload_refused"
    assert error["exit_code"] == 1
    assert error["reload"]["orphans"] == ["host host150 198.18.0.150"]
    forced = own_daemon.cli("reload", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "forced: orphaned host host150 198.18.0.150" in forced.stdout
    assert own_daemon.json("subnet", "list")[0]["cidr"] == "198.18.0.0/25"
    assert own_daemon.json("status")["reload"]["applied"] is True
    assert metric(own_daemon, "ddi_reload_last_success") == 1


def test_a_reload_of_an_invalid_file_says_why_and_sighup_records_it(own_daemon: Daemon) -> None:
    own_daemon.start()
    own_daemon.config.write_text(own_daemon.config.read_text() + "\n[dhcp.nope]\n")
    result = own_daemon.cli("reload")
    assert result.returncode == 1
    assert "config error: dhcp.nope" in result.stderr
    own_daemon.config.write_text(CONFIG.format(api_extra="", subnets_extra=""))
    at = own_daemon.json("status")["reload"]["at"]
    own_daemon.signal(signal.SIGHUP)
    wait_until(lambda: own_daemon.json("status")["reload"]["at"] > at, "the SIGHUP reload")
    assert own_daemon.json("status")["reload"]["applied"] is True


def test_a_start_up_config_failure_exits_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "site.toml"
    text = (
        CONFIG.format(api_extra="", subnets_extra="")
        .replace("[dhcp]\nenabled = false", "[dhcp]\nenabled = true")
        .replace('gateway = "198.18.0.1"', 'gateway = "198.18.0.1"\ninterface = "nosuch0"')
    )
    config.write_text(text.replace('data_dir = "data"', f'data_dir = "{data}"'))
    started = ddi("serve", "--config", str(config))
    assert started.returncode == 2, started.stderr
    assert "config error: subnets[0].interface: no interface 'nosuch0'" in started.stderr
    assert not data.exists()  # refused before touching anything
    check = ddi("serve", "--check", "--config", str(config))
    assert check.returncode == 2
    assert "nosuch0" in check.stderr


async def _seed(path: Path) -> None:
    now = time.time()
    store = await Store.open(path, domain="site.example")
    try:
        await store.commit_leases(
            [
                Lease(ip=IPv4Address("198.18.0.101"), mac="00:1b:21:00:00:01", start=now,
                      end=now + 3600, subnet="lan"),
                Lease(ip=IPv4Address("198.18.0.102"), mac="52:54:00:00:00:02", start=now,
                      end=now + 3600, subnet="lan", state=LeaseState.DECLINED),
            ]
        )  # fmt: skip
    finally:
        await store.close()


def test_pool_usage_and_vendors(own_daemon: Daemon) -> None:
    data = own_daemon.workdir / "data"
    data.mkdir()
    asyncio.run(_seed(data / "ddi.sqlite"))
    own_daemon.start()
    assert add(own_daemon, 110, "--reason", "rack 1").returncode == 0
    lan = own_daemon.json("subnet", "show", "lan")
    total = lan["usage"]["total"]
    assert (total["size"], total["used"], total["reserved"], total["declined"]) == (100, 1, 1, 1)
    assert total["free"] == 97
    table = own_daemon.cli("subnet", "list").stdout
    assert "3.0%" in table
    show = own_daemon.cli("subnet", "show", "lan").stdout
    assert "3.0% of 100" in show
    missing = own_daemon.cli("subnet", "show", "nosuch")
    assert missing.returncode == 1
    assert "(the site has: lan)" in missing.stderr
    status = own_daemon.cli("status").stdout
    assert "[pools]" in status
    assert "change log:" in status
    assert own_daemon.json("status")["store"]["change_log"]["entries"] >= 3
    leases = own_daemon.cli("lease", "list").stdout
    assert "Intel Corporate" in leases
    assert "(locally administered)" in leases
    shown = own_daemon.cli("reserve", "show", "host110").stdout
    assert "vendor:" in shown
    assert "(locally administered)" in shown


def test_client_ids_reasons_and_json_errors(own_daemon: Daemon) -> None:
    own_daemon.start()
    bare = own_daemon.cli("reserve", "add", "--client-id", "0152540aabbcc1", "--ip",
                          "198.18.0.40", "--hostname", "kea1")  # fmt: skip
    assert bare.returncode == 0, bare.stderr
    assert own_daemon.json("reserve", "show", "kea1")["client_id"] == "01:52:54:0a:ab:bc:c1"
    quoted = own_daemon.cli("reserve", "add", "--client-id", '"web1"', "--ip", "198.18.0.41",
                            "--hostname", "text1")  # fmt: skip
    assert quoted.returncode == 0, quoted.stderr
    assert own_daemon.json("reserve", "show", "text1")["client_id"] == "77:65:62:31"
    bare_text = own_daemon.cli("reserve", "add", "--client-id", "web1", "--ip", "198.18.0.42",
                               "--hostname", "text2")  # fmt: skip
    assert bare_text.returncode == 2
    assert "--client-id" in bare_text.stderr
    assert "neither hex bytes" in bare_text.stderr
    long_reason = add(own_daemon, 43, "--reason", "x" * 501)
    assert long_reason.returncode == 2
    assert "--reason" in long_reason.stderr
    # The usage error is JSON too when --json is given.
    as_json = add(own_daemon, 43, "--reason", "x" * 501, "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["exit_code"] == 2
    assert as_json.stderr == ""
    wrong = own_daemon.cli("reserve", "set", "kea1", "--router", "198.18.9.1", "--json")
    assert wrong.returncode == 2
    error = json.loads(wrong.stdout)
    assert error["field"] == "gateway"
    assert "--router" in error["message"]
    # A control character in a reason is escaped in tables, kept as given in JSON.
    assert add(own_daemon, 44, "--reason", "moved\x1b[31m\nfake row").returncode == 0
    table = own_daemon.cli("changes", "list").stdout
    assert "\x1b" not in table
    assert "moved\\x1b[31m\\nfake row" in table
    reasons = [c["reason"] for c in own_daemon.json("changes", "list")]
    assert "moved\x1b[31m\nfake row" in reasons
    assert os.environ.get("DDI_SOCKET") != str(own_daemon.socket)
