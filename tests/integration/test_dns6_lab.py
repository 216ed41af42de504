"""IPv6 in DNS in the namespace lab: a dual-stack reservation made with one ``ddi reserve
add`` gets A, AAAA and both PTRs, asked for by a real dig over IPv6 (UDP and TCP) from the
client side of a veth pair, the daemon listening on 2001:db8:10::1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ddi.lab import Lab

from .conftest import DaemonHandle, require

SERVER6 = "2001:db8:10::1"
BODY = """
[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
interface = "ddi0"

[[subnets6]]
name = "lan6"
cidr = "2001:db8:10::/64"
interface = "ddi0"

[dhcp]
enabled = false

[dns]
listen = ["198.18.0.1:53", "[2001:db8:10::1]:53"]
ns_address = "198.18.0.1"
"""
WEB = [
    "--mac", "52:54:00:12:34:56", "--duid", "00030001525400123456", "--ip", "198.18.0.20",
    "--ip6", "2001:db8:10::20", "--hostname", "web",
]  # fmt: skip


def _setup(
    lab: Lab, ddi_daemon: Callable[[str | None, str], DaemonHandle]
) -> tuple[str, DaemonHandle]:
    srv = lab.namespace("srv")
    cli = lab.namespace("cli")
    lab.link(srv, "ddi0", "198.18.0.1/24", cli, "eth0", "198.18.0.250/24")
    # nodad: the addresses are usable at once (no duplicate address detection wait).
    lab.run(srv, "ip", "addr", "add", f"{SERVER6}/64", "dev", "ddi0", "nodad")
    lab.run(cli, "ip", "addr", "add", "2001:db8:10::250/64", "dev", "eth0", "nodad")
    return cli, ddi_daemon(srv, BODY)


def _dig(lab: Lab, ns: str, *args: str) -> str:
    out = lab.run(ns, "dig", f"@{SERVER6}", "+tries=2", "+time=1", *args, check=False)
    return out.stdout


def test_a_dual_stack_reservation_resolves_over_ipv6(lab: Lab, ddi_daemon: Any) -> None:
    require("dig")
    cli, daemon = _setup(lab, ddi_daemon)
    done = daemon.cli("reserve", "add", *WEB)
    assert done.returncode == 0, done.stderr
    assert "198.18.0.20 2001:db8:10::20" in done.stdout
    assert _dig(lab, cli, "+short", "AAAA", "web.site1.example").strip() == "2001:db8:10::20"
    assert _dig(lab, cli, "+short", "A", "web.site1.example").strip() == "198.18.0.20"
    assert _dig(lab, cli, "+short", "-x", "2001:db8:10::20").strip() == "web.site1.example."
    assert _dig(lab, cli, "+short", "-x", "198.18.0.20").strip() == "web.site1.example."
    assert "2001:db8:10::20" in _dig(lab, cli, "+tcp", "+short", "AAAA", "web.site1.example")
    soa = _dig(lab, cli, "+short", "SOA", "0.0.0.0.0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa")
    assert soa.split()[:2] == ["ns.site1.example.", "hostmaster.site1.example."]
    # One object: show finds it by its IPv6 address and its DUID.
    for key in ("2001:db8:10::20", "00:03:00:01:52:54:00:12:34:56"):
        host = daemon.cli_json("reserve", "show", key)
        assert (host["hostname"], host["ip"], host["ip6"]) == (
            "web",
            "198.18.0.20",
            "2001:db8:10::20",
        )
    [lan6] = daemon.cli_json("subnet", "list", "-6")
    assert (lan6["name"], lan6["cidr"]) == ("lan6", "2001:db8:10::/64")
    assert "2001:db8:10::/64" in daemon.cli("subnet", "list", "-6").stdout
    assert [s["name"] for s in daemon.cli_json("subnet", "list")] == ["lan"]
    [listed] = daemon.cli_json("reserve", "list")
    assert listed["duid"] == "00:03:00:01:52:54:00:12:34:56"
    table = daemon.cli("reserve", "list").stdout.splitlines()
    assert table[0].split()[-2:] == ["IP6", "DUID"]
    # Dropping the IPv4 address leaves an IPv6-only host: no A, the AAAA stays.
    changed = daemon.cli("reserve", "set", "web", "--clear", "ip")
    assert changed.returncode == 0, changed.stderr
    assert _dig(lab, cli, "+short", "A", "web.site1.example").strip() == ""
    assert _dig(lab, cli, "+short", "AAAA", "web.site1.example").strip() == "2001:db8:10::20"
    assert _dig(lab, cli, "+short", "-x", "198.18.0.20").strip() == ""
    gone = daemon.cli("reserve", "rm", "2001:db8:10::20")
    assert gone.returncode == 0, gone.stderr
    assert "status: NXDOMAIN" in _dig(lab, cli, "AAAA", "web.site1.example")
    assert "status: NXDOMAIN" in _dig(lab, cli, "-x", "2001:db8:10::20")


def test_reserve_add_refuses_what_cannot_be_a_host(lab: Lab, ddi_daemon: Any) -> None:
    _, daemon = _setup(lab, ddi_daemon)
    cases = [
        (["--duid", "0003000152540012", "--hostname", "x"], "--ip, --ip6 or both"),
        (["--ip6", "2001:db8:10::5", "--hostname", "x"], "--duid"),
        (["--ip6", "2001:db8:99::5", "--duid", "000300015254", "--hostname", "x"], "outside"),
        (["--ip6", "2001:db8:10::5", "--duid", "zz", "--hostname", "x"], "DUID"),
    ]
    for args, words in cases:
        result = daemon.cli("reserve", "add", *args)
        assert result.returncode != 0, args
        assert words in result.stdout + result.stderr, (args, result.stdout, result.stderr)
