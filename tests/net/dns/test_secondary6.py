"""IPv6 names on a real NSD secondary: the site zone's AAAA and the ip6.arpa zone's PTRs
transfer with TSIG, NOTIFY brings changes to both zones, and IXFR of the ip6.arpa zone carries
exactly the PTR that changed."""

from __future__ import annotations

import asyncio
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest

from ddi.ipam.models import Host
from tests.nsd import write_secondary_conf

pytestmark = pytest.mark.asyncio

ORIGIN6 = "0.0.0.0.0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
SUBNETS6 = [{"name": "lan6", "cidr": "2001:db8:10::/64"}]


def _start_nsd(conf: Path) -> subprocess.Popen[str]:
    argv = ["nsd", "-d", "-c", str(conf)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _ask(port: int, name: str, rtype: str) -> str:
    argv = ["dig", "@127.0.0.1", "-p", str(port), "+short", "+tries=1", "+time=1", name, rtype]
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout


async def _wait_for(port: int, name: str, rtype: str, want: str, within: float = 15.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    out = ""
    while loop.time() < deadline:
        out = (await asyncio.to_thread(_ask, port, name, rtype)).strip()
        if out == want:
            return out
        await asyncio.sleep(0.2)
    return out


def _host(name: str, n: int) -> Host:
    return Host(
        id="", ip=IPv4Address(f"198.18.0.{n}"), ip6=IPv6Address(f"2001:db8:10::{n}"),
        hostname=name, mac=f"52:54:00:00:00:{n:02x}",
    )  # fmt: skip


async def test_nsd_follows_aaaa_and_ip6_arpa(tmp_path: Path, h: Any) -> None:
    h.need("dig", "nsd")
    port, nsd_port = h.free_port(), h.free_port()
    conf = write_secondary_conf(
        tmp_path / "nsd", port=nsd_port, primary=port, key=h.KEY, secret=h.SECRET,
        zones=("site.example", ORIGIN6),
    )  # fmt: skip
    secondary = [{"address": f"127.0.0.1:{nsd_port}", "key": h.KEY}]
    cfg = h.config(tmp_path, port, subnets6=SUBNETS6, secondaries=secondary)
    async with h.running(cfg, port) as r:
        await r.store.add_host(_host("web", 10), actor="t", reason="t")
        nsd = _start_nsd(conf)
        try:
            ptr10 = IPv6Address("2001:db8:10::10").reverse_pointer
            assert await _wait_for(nsd_port, "web.site.example", "AAAA", "2001:db8:10::10") == (
                "2001:db8:10::10"
            )
            assert await _wait_for(nsd_port, ptr10, "PTR", "web.site.example.") == (
                "web.site.example."
            )
            serial = int((await h.dig(r, "+short", "SOA", ORIGIN6)).split()[2])
            await r.store.add_host(_host("db", 11), actor="t", reason="t")
            ptr11 = IPv6Address("2001:db8:10::11").reverse_pointer
            # NSD refreshes hourly: only the NOTIFY of each zone brings the change this fast.
            assert await _wait_for(nsd_port, ptr11, "PTR", "db.site.example.") == "db.site.example."
            assert await _wait_for(nsd_port, "db.site.example", "AAAA", "2001:db8:10::11") == (
                "2001:db8:10::11"
            )
            ixfr = await h.dig(
                r, "-y", f"hmac-sha256:{h.KEY}:{h.SECRET}", f"IXFR={serial}", ORIGIN6
            )
        finally:
            nsd.terminate()
            try:
                log, _ = nsd.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                nsd.kill()
                log, _ = nsd.communicate()
        assert "TSIG verified with key xfr.site.example" in log, log
        # RFC 1995 §4: SOA(new), SOA(old), removed, SOA(new), added, SOA(new).
        records = [line.split() for line in ixfr.splitlines() if line and line[0] != ";"]
        ptrs = [r for r in records if r[3] == "PTR"]
        assert ptrs == [[f"{ptr11}.", "300", "IN", "PTR", "db.site.example."]], ixfr
        assert [r[3] for r in records].count("SOA") == 4, ixfr
