"""A real NSD secondary transfers the site zone with TSIG and follows NOTIFY."""

from __future__ import annotations

import asyncio
import subprocess
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from ddi.ipam.models import Host
from ddi.metrics import REGISTRY
from tests.nsd import write_secondary_conf


def _notifies(result: str) -> float:
    value = REGISTRY.get_sample_value("ddi_dns_notifies_total", {"result": result})
    return value or 0.0


pytestmark = pytest.mark.asyncio


def _start_nsd(conf: Path) -> subprocess.Popen[str]:
    argv = ["nsd", "-d", "-c", str(conf)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _ask(port: int, name: str) -> str:
    argv = ["dig", "@127.0.0.1", "-p", str(port), "+short", "+tries=1", "+time=1", name, "A"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout


async def _wait_for(port: int, name: str, want: str, *, within: float = 15.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    out = ""
    while loop.time() < deadline:
        out = (await asyncio.to_thread(_ask, port, name)).strip()
        if out == want:
            return out
        await asyncio.sleep(0.2)
    return out


async def test_nsd_secondary_transfers_with_tsig_and_follows_notify(tmp_path: Path, h: Any) -> None:
    h.need("dig", "nsd")
    port, nsd_port = h.free_port(), h.free_port()
    conf = write_secondary_conf(
        tmp_path / "nsd", port=nsd_port, primary=port, key=h.KEY, secret=h.SECRET
    )
    cfg = h.config(tmp_path, port, secondaries=[{"address": f"127.0.0.1:{nsd_port}", "key": h.KEY}])
    ok_before, bad_before = _notifies("ok"), _notifies("bad_tsig")
    async with h.running(cfg, port) as r:
        await r.store.add_host(
            Host(id="", ip=IPv4Address("198.18.0.10"), hostname="web", mac="52:54:00:00:00:01"),
            actor="t",
            reason="t",
        )
        nsd = _start_nsd(conf)
        try:
            assert await _wait_for(nsd_port, "web.site.example", "198.18.0.10") == "198.18.0.10"
            await r.store.add_host(
                Host(id="", ip=IPv4Address("198.18.0.11"), hostname="db", mac="52:54:00:00:00:02"),
                actor="t",
                reason="t",
            )
            # NSD refreshes hourly (SOA refresh): only the NOTIFY brings the change this fast.
            assert await _wait_for(nsd_port, "db.site.example", "198.18.0.11") == "198.18.0.11"
        finally:
            nsd.terminate()
            try:
                log, _ = nsd.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                nsd.kill()
                log, _ = nsd.communicate()
        assert "TSIG verified with key xfr.site.example" in log, log
        assert _notifies("ok") > ok_before  # NSD answered our signed NOTIFY, signed
        assert _notifies("bad_tsig") == bad_before
