"""NOTIFY to a secondary, on the loop the daemon runs (uvloop), at start and on reload."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import uvloop
from dnslib import DNSRecord

from ddi.dns.wire import Opcode
from ddi.metrics import REGISTRY

pytestmark = pytest.mark.asyncio


def _notifies(result: str) -> float:
    return REGISTRY.get_sample_value("ddi_dns_notifies_total", {"result": result}) or 0.0


async def test_the_network_tests_run_on_the_daemons_loop() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


async def test_notify_goes_out_at_start_and_on_reload(tmp_path: Path, h: Any) -> None:
    secondary = await h.datagrams(local_addr=("127.0.0.1", 0))
    secondary_port = secondary.transport.get_extra_info("sockname")[1]
    notifies: list[DNSRecord] = []

    async def answer() -> None:
        while True:
            data, addr = await secondary.received.get()
            message = DNSRecord.parse(data)
            notifies.append(message)
            secondary.sendto(message.reply().pack(), addr)

    task = asyncio.create_task(answer())
    port = h.free_port()
    cfg = h.config(tmp_path, port, secondaries=[{"address": f"127.0.0.1:{secondary_port}"}])
    ok = _notifies("ok")
    try:
        async with h.running(cfg, port) as r:
            zones = {f"{origin}." for origin in r.server.zones.zones}
            assert "site.example." in zones
            await h.until(lambda: _notifies("ok") >= ok + len(zones))
            assert {m.header.opcode for m in notifies} == {Opcode.NOTIFY}
            assert {str(m.q.qname) for m in notifies} == zones
            before = len(notifies)
            await r.server.reload(cfg)  # SIGHUP's path
            await h.until(lambda: len(notifies) >= 2 * before)
            await h.until(lambda: _notifies("ok") >= ok + 2 * before)
    finally:
        task.cancel()
        secondary.close()
