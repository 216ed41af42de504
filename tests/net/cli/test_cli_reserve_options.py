"""``ddi reserve`` with per-host DHCP options, against a real ``ddi serve`` process (the
harness of test_cli.py)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.ci import require_root
from tests.net.cli.test_cli import ROOT, Daemon, add

OPTION_FLAGS = (
    "--lease-time", "600", "--router", "198.18.0.254",
    "--dns-server", "198.18.0.53", "--dns-server", "198.18.0.54",
    "--domain", "lab.site.example", "--mtu", "9000",
    "--route", "10.0.0.0/8=198.18.0.3", "--ntp-server", "198.18.0.123",
)  # fmt: skip


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("ddi"))
    d.start()
    yield d
    assert d.stop() == 0, d.log.read_text()


def test_add_with_dhcp_options_and_show_them(daemon: Daemon) -> None:
    result = add(daemon, 10, *OPTION_FLAGS)
    assert result.returncode == 0, result.stderr
    host = daemon.json("reserve", "show", "host10")
    assert host["dhcp"] == {
        "lease_time": 600,
        "gateway": "198.18.0.254",
        "dns_servers": ["198.18.0.53", "198.18.0.54"],
        "domain": "lab.site.example",
        "mtu": 9000,
        "routes": [{"destination": "10.0.0.0/8", "gateway": "198.18.0.3"}],
        "ntp_servers": ["198.18.0.123"],
    }
    shown = daemon.cli("reserve", "show", "host10")
    assert shown.returncode == 0, shown.stderr
    lines = {
        line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in shown.stdout.splitlines()
    }
    assert lines["lease_time"] == "600"
    assert lines["router"] == "198.18.0.254"
    assert lines["dns_servers"] == "198.18.0.53,198.18.0.54"
    assert lines["routes"] == "10.0.0.0/8=198.18.0.3"
    assert lines["mtu"] == "9000"


def test_set_and_clear_single_options(daemon: Daemon) -> None:
    assert add(daemon, 20).returncode == 0
    plain = daemon.cli("reserve", "show", "host20")
    assert any(line.split() == ["router:", "(subnet)"] for line in plain.stdout.splitlines())
    result = daemon.cli("reserve", "set", "host20", "--mtu", "1400", "--lease-time", "900")
    assert result.returncode == 0, result.stderr
    assert "(subnet) -> 1400" in result.stdout
    assert daemon.json("reserve", "show", "host20")["dhcp"] == {"lease_time": 900, "mtu": 1400}
    cleared = daemon.cli("reserve", "set", "host20", "--clear", "mtu")
    assert cleared.returncode == 0, cleared.stderr
    assert daemon.json("reserve", "show", "host20")["dhcp"] == {"lease_time": 900}
    assert daemon.cli("reserve", "set", "host20", "--clear", "dhcp").returncode == 0
    assert daemon.json("reserve", "show", "host20")["dhcp"] is None
    contradiction = daemon.cli("reserve", "set", "host20", "--mtu", "1400", "--clear", "mtu")
    assert contradiction.returncode == 2


def test_bad_options_exit_2_naming_the_flag_and_change_nothing(daemon: Daemon) -> None:
    assert add(daemon, 30).returncode == 0
    for flags in (
        ("--lease-time", "5"),
        ("--router", "198.18.9.1"),
        ("--mtu", "40"),
        ("--route", "10.0.0.1/8=198.18.0.3"),
        ("--dns-server", "nope"),
    ):
        result = daemon.cli("reserve", "set", "host30", *flags)
        assert result.returncode == 2, (flags, result.stdout)
        # The flag the operator typed, not the API's field (gateway, dns_servers...).
        assert result.stderr.startswith(f"invalid value for {flags[0]} "), (flags, result.stderr)
    assert daemon.json("reserve", "show", "host30")["version"] == 1
    malformed = daemon.cli("reserve", "set", "host30", "--route", "10.0.0.0/8")
    assert malformed.returncode == 2


def test_set_with_nothing_changing_writes_nothing_and_says_so(daemon: Daemon) -> None:
    assert add(daemon, 40, "--mtu", "1400").returncode == 0
    last_seq = daemon.json("status")["store"]["last_seq"]
    same = daemon.cli("reserve", "set", "host40", "--ip", "198.18.0.40", "--mtu", "1400")
    assert same.returncode == 0, same.stderr
    assert same.stdout.strip() == "no change: host40 already has these values"
    answer = daemon.json("reserve", "set", "host40", "--hostname", "host40")
    assert answer["change"] is None
    assert answer["host"]["version"] == 1
    assert daemon.json("status")["store"]["last_seq"] == last_seq
    assert daemon.json("reserve", "show", "host40")["version"] == 1


def test_root_through_sudo_is_recorded_as_acting_for_the_sudo_user(daemon: Daemon) -> None:
    require_root("needs root: the socket peer must be uid 0")
    result = subprocess.run(
        [sys.executable, "-m", "ddi", "--socket", str(daemon.socket), "reserve", "add",
         "--mac", "52:54:00:00:01:32", "--ip", "198.18.0.50", "--hostname", "host50"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "SUDO_USER": "alice"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    entries = daemon.json("changes", "list")
    root = pwd.getpwuid(0).pw_name
    assert [c["actor"] for c in entries if c["image"].get("hostname") == "host50"] == [
        f"{root} as alice"
    ]


def test_options_by_definition_with_add_set_and_clear(daemon: Daemon) -> None:
    result = add(daemon, 60, "--option", "tftp-server-address=198.18.0.5,198.18.0.6",
                 "--option", "66=tftp.site.example")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert daemon.json("reserve", "show", "host60")["dhcp"] == {
        "options": [
            {"code": 150, "data": "c6120005c6120006", "name": "tftp-server-address"},
            {"code": 66, "data": b"tftp.site.example".hex(), "name": "tftp-server-name"},
        ]
    }
    shown = daemon.cli("reserve", "show", "host60")
    assert "tftp-server-address=0xc6120005c6120006" in shown.stdout
    replaced = daemon.cli("reserve", "set", "host60", "--option", "wpad=http://198.18.0.1/w")
    assert replaced.returncode == 0, replaced.stderr
    assert [o["code"] for o in daemon.json("reserve", "show", "host60")["dhcp"]["options"]] == [252]
    bad = daemon.cli("reserve", "set", "host60", "--option", "ntp-servers=198.18.0.300")
    assert bad.returncode != 0
    assert "not an IPv4 address" in bad.stderr
    malformed = daemon.cli("reserve", "set", "host60", "--option", "ntp-servers")
    assert malformed.returncode == 2
    assert "--option" in malformed.stderr
    assert daemon.cli("reserve", "set", "host60", "--clear", "option").returncode == 0
    assert daemon.json("reserve", "show", "host60")["dhcp"] is None
